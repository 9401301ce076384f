//! A stalled upstream holds a question for at most one time budget.
//!
//! An upstream that keeps the connection open without answering (the PDP, the token exchange,
//! the Maskinporten grant) while the same question keeps arriving every 200 ms: every caller
//! joins the call in flight, so before the single-flight rule the call lived as long as callers
//! kept coming, and the question was refused long after the upstream had recovered. Now a shared
//! call is abandoned one budget after it started, and the next caller starts afresh: once the
//! upstream recovers, the question is answered within one budget (the call in flight then still
//! runs to its deadline), one period (until the question is asked again) and a margin for a
//! busy machine.
//!
//! Real loopback HTTP against the fakes, so real time (paused time would fire the deadlines
//! before the answers arrive), with a short budget and margins that hold on a busy 2-core
//! machine. The stalled requests are never answered by the fakes (`Hang`); only the client's own
//! deadlines end them.

use crate::support::{Fakes, OWNER_ORG};
use crate::{question, setup_with};
use altinn_systemuser::org::Party;
use altinn_systemuser::pdp::{AltinnPdp, Decision, DecisionRequest, PdpError, PdpErrorKind};
use altinn_systemuser::test_util::{EndpointMode, PdpAnswer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// The decision's time budget, and so the deadline of a shared call.
const BUDGET: Duration = Duration::from_millis(600);
/// How often the watched question is asked.
const PERIOD: Duration = Duration::from_millis(200);
/// How often a question for another party (never asked before) is asked.
const OTHERS_PERIOD: Duration = Duration::from_millis(100);
/// How long the upstream stalls: more than two budgets, so that callers have joined the
/// stalled call again and again.
const STALL: Duration = Duration::from_millis(1500);
/// Margin for a busy machine, on top of one budget and one period.
const MARGIN: Duration = Duration::from_millis(700);

/// What one stream of questions got, and when.
#[derive(Default)]
struct Record {
    answers: Mutex<Vec<(Instant, Result<Decision, PdpError>)>>,
}

impl Record {
    /// When the first `Permit` came, if one did.
    fn first_permit(&self) -> Option<Instant> {
        let answers = self.answers.lock().unwrap();
        answers.iter().filter(|(_, r)| *r == Ok(Decision::Permit)).map(|(at, _)| *at).min()
    }

    /// Every answer that came before `until`.
    fn before(&self, until: Instant) -> Vec<Result<Decision, PdpError>> {
        let answers = self.answers.lock().unwrap();
        answers.iter().filter(|(at, _)| *at < until).map(|(_, r)| r.clone()).collect()
    }
}

/// Asks `ask(i)` every `period` (each in a task of its own, as concurrent requests would),
/// until dropped.
struct Asker {
    record: Arc<Record>,
    stop: Arc<AtomicBool>,
}

impl Asker {
    fn start(pdp: &AltinnPdp, period: Duration, ask: impl Fn(u32) -> DecisionRequest + Send + 'static) -> Asker {
        let (record, stop) = (Arc::new(Record::default()), Arc::new(AtomicBool::new(false)));
        let (pdp, rec, stopped) = (pdp.clone(), record.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            for i in 0.. {
                tick.tick().await;
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let (pdp, rec, q) = (pdp.clone(), rec.clone(), ask(i));
                tokio::spawn(async move {
                    let r = pdp.decide(&q).await;
                    rec.answers.lock().unwrap().push((Instant::now(), r));
                });
            }
        });
        Asker { record, stop }
    }
}

impl Drop for Asker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// An organisation number with a valid check digit, a different one for each `n` (from a range
/// no other test uses, so never a cached question).
fn other_party(n: u32) -> String {
    (0..)
        .map(|k| 81_000_000 + 2 * n + k)
        .flat_map(|base| (0..10).map(move |check| format!("{base}{check}")))
        .find(|s| Party::parse(s).is_ok())
        .expect("a valid organisation number")
}

/// Stalls an upstream with `stall`, asks the same question every [`PERIOD`] (and, if
/// `with_others`, a new question for another party every [`OTHERS_PERIOD`]), recovers it with
/// `recover` after [`STALL`], and checks that the question is answered within one budget, one
/// period and a margin of the recovery (and, if asked, questions for other parties too).
async fn answered_soon_after_recovery(
    fakes: &Fakes,
    pdp: &AltinnPdp,
    stall: impl FnOnce(&Fakes),
    recover: impl FnOnce(&Fakes),
    with_others: bool,
) {
    let watched = question(Uuid::new_v4(), "read", OWNER_ORG);
    stall(fakes);
    let started = Instant::now();
    let asker = Asker::start(pdp, PERIOD, move |_| watched.clone());
    let others = with_others.then(|| Asker::start(pdp, OTHERS_PERIOD, |i| question(Uuid::new_v4(), "read", &other_party(i))));
    tokio::time::sleep(STALL).await;

    // Meanwhile the question was refused, each time when its budget ran out.
    let recovered = Instant::now();
    recover(fakes);
    let meanwhile = asker.record.before(recovered);
    assert!(!meanwhile.is_empty(), "the question was asked during the stall");
    for r in &meanwhile {
        assert_eq!(r.as_ref().map_err(PdpError::kind), Err(PdpErrorKind::Timeout), "{meanwhile:?}");
    }

    // Answered within one budget (the call in flight runs to its deadline), one period and a
    // margin of the recovery; before the single-flight rule, never while callers kept coming.
    let within = BUDGET + PERIOD + MARGIN;
    while asker.record.first_permit().is_none() && recovered.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answered = asker.record.first_permit().map(|at| at - recovered);
    assert!(
        answered.is_some_and(|took| took <= within),
        "answered {answered:?} after the recovery (at most {within:?}); stalled for {:?}",
        recovered - started
    );
    if let Some(others) = &others {
        // The same bound; wait for it as for the watched question (on a busy machine the two
        // may be answered some milliseconds apart).
        while others.record.first_permit().is_none() && recovered.elapsed() < within {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let answered = others.record.first_permit().map(|at| at.saturating_duration_since(recovered));
        assert!(
            answered.is_some_and(|took| took <= within),
            "other parties answered {answered:?} after the recovery"
        );
    }
}

/// At most one call to a stalled upstream per budget, however many callers: nobody retries
/// while a call is in flight.
fn at_most_one_per_budget(calls: usize) {
    let most = (STALL.as_millis() / BUDGET.as_millis()) as usize + 2;
    assert!(
        (1..=most).contains(&calls),
        "{calls} calls to the stalled upstream (at most {most})"
    );
}

#[tokio::test]
async fn a_pdp_that_hangs_holds_a_question_for_at_most_one_budget() {
    let (fakes, pdp) = setup_with(|p| p.timeout(BUDGET)).await;
    // Tokens first, so that only the PDP stalls.
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(Decision::Permit));
    let before = fakes.altinn.pdp_request_count();
    answered_soon_after_recovery(
        &fakes,
        &pdp,
        |f| f.altinn.set_answer(PdpAnswer::Hang),
        |f| {
            at_most_one_per_budget(f.altinn.pdp_request_count() - before);
            f.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
        },
        false,
    )
    .await;
    assert_eq!((fakes.mp.token_requests(), fakes.altinn.exchange_count()), (1, 1));
}

#[tokio::test]
async fn a_token_exchange_that_hangs_holds_questions_for_at_most_one_budget() {
    let (fakes, pdp) = setup_with(|p| p.timeout(BUDGET)).await;
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    answered_soon_after_recovery(
        &fakes,
        &pdp,
        |f| f.altinn.set_exchange_mode(EndpointMode::Hang),
        |f| {
            at_most_one_per_budget(f.altinn.exchange_count());
            assert_eq!(f.altinn.pdp_request_count(), 0);
            f.altinn.set_exchange_mode(EndpointMode::Normal);
        },
        true,
    )
    .await;
    // The Maskinporten token from the first grant served every exchange.
    assert_eq!(fakes.mp.token_requests(), 1);
}

#[tokio::test]
async fn a_maskinporten_grant_that_hangs_holds_questions_for_at_most_one_budget() {
    let (fakes, pdp) = setup_with(|p| p.timeout(BUDGET)).await;
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    answered_soon_after_recovery(
        &fakes,
        &pdp,
        |f| f.mp.set_token_mode(EndpointMode::Hang),
        |f| {
            at_most_one_per_budget(f.mp.token_requests());
            assert_eq!((f.altinn.exchange_count(), f.altinn.pdp_request_count()), (0, 0));
            f.mp.set_token_mode(EndpointMode::Normal);
        },
        true,
    )
    .await;
}

/// A client whose own total timeout equals the budget races the budget: whichever ends the
/// wait, a decision whose budget is spent is a timeout, never a credentials or connection error.
#[tokio::test]
async fn a_stall_ended_by_the_clients_own_timeout_is_still_a_timeout() {
    let budget = Duration::from_millis(200);
    let client = || {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(budget)
            .build()
            .unwrap()
    };
    // The grant hangs.
    let (fakes, pdp) = setup_with(|p| p.timeout(budget).http_client(client())).await;
    fakes.mp.set_token_mode(EndpointMode::Hang);
    for _ in 0..3 {
        let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
        assert_eq!(e.kind(), PdpErrorKind::Timeout, "{e}");
    }
    // The PDP hangs.
    let fakes = Fakes::start().await;
    let pdp = crate::pdp_with_fixed_token(&fakes.altinn, |p| p.timeout(budget).http_client(client()));
    fakes.altinn.set_answer(PdpAnswer::Hang);
    for _ in 0..3 {
        let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
        assert_eq!(e.kind(), PdpErrorKind::Timeout, "{e}");
    }
}
