//! The metrics under `metrics-util`'s debugging recorder, set for this thread only (the test's
//! current-thread runtime runs the spawned PDP calls and key refreshes here too). Each
//! snapshot holds what happened since the last one. The names and label values are written
//! out here, not taken from the crate's constants: they are a contract.

use super::{broken, setup, setup_with};
use crate::support::{Fakes, OTHER_ORG, OWNER_ORG, RESOURCE, THIRD_ORG, valid_org_numbers};
use altinn_systemuser::org::Party;
use altinn_systemuser::pdp::{Action, DecisionRequest, ResourceId};
use altinn_systemuser::test_util::{EndpointMode, PdpAnswer};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};
use uuid::Uuid;

/// What was recorded since the last snapshot: (name, labels) -> value.
struct Delta(Vec<(String, BTreeMap<String, String>, DebugValue)>);

impl Delta {
    fn take(snapshotter: &Snapshotter) -> Delta {
        let entries = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
                (key.name().to_owned(), labels, value)
            })
            .collect();
        Delta(entries)
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.0.iter().find(|(n, l, _)| n == name && *l == want).map(|(_, _, v)| v)
    }

    /// A counter's increase (0 when it was not touched).
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.find(name, labels) {
            Some(DebugValue::Counter(n)) => *n,
            None => 0,
            Some(other) => panic!("{name} is not a counter: {other:?}"),
        }
    }

    /// Every counter increase of `name`, by its labels.
    fn counters(&self, name: &str) -> BTreeMap<Vec<(String, String)>, u64> {
        self.0
            .iter()
            .filter(|(n, _, _)| n == name)
            .filter_map(|(_, l, v)| match v {
                DebugValue::Counter(c) if *c > 0 => Some((l.clone().into_iter().collect(), *c)),
                _ => None,
            })
            .collect()
    }

    fn histogram_samples(&self, name: &str) -> usize {
        match self.find(name, &[]) {
            Some(DebugValue::Histogram(v)) => v.len(),
            None => 0,
            Some(other) => panic!("{name} is not a histogram: {other:?}"),
        }
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, labels) {
            Some(DebugValue::Gauge(g)) => Some(g.into_inner()),
            _ => None,
        }
    }
}

/// Labels as `Delta::counters` keys them: sorted by name.
fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let sorted: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    sorted.into_iter().collect()
}

const REQUESTS: &str = "altinn_systemuser_requests_total";
const PDP: &str = "altinn_systemuser_pdp_requests_total";
const CACHE: &str = "altinn_systemuser_decision_cache_total";
const DURATION: &str = "altinn_systemuser_pdp_request_duration_seconds";

#[tokio::test]
async fn each_layer_counts_its_requests_by_outcome_and_reason() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let env = setup().await;
    let su = Uuid::new_v4();
    env.fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let token = env.fakes.system_user_token(su);
    Delta::take(&snapshots);

    for _ in 0..2 {
        assert_eq!(env.get(&format!("/krav/{OWNER_ORG}"), &token).await.status, 200);
    }
    assert_eq!(env.get(&format!("/krav/{OTHER_ORG}"), &token).await.status, 403);
    assert_eq!(env.get("/krav/310702640", &token).await.status, 400);
    assert_eq!(env.get(&format!("/krav/{OWNER_ORG}"), &broken(&token)).await.status, 401);
    assert_eq!(env.get(&format!("/krav/{OWNER_ORG}"), "not-a-jwt").await.status, 401);

    let d = Delta::take(&snapshots);
    let layer = |l: &str, outcome: &str, reason: &str| labels(&[("layer", l), ("outcome", outcome), ("reason", reason)]);
    let expected = BTreeMap::from([
        (layer("maskinporten", "allowed", "ok"), 4),
        (layer("maskinporten", "refused", "invalid-signature"), 1),
        (layer("maskinporten", "refused", "malformed-token"), 1),
        (layer("systemuser", "allowed", "ok"), 2),
        (layer("systemuser", "refused", "access-not-granted"), 1),
        (layer("systemuser", "refused", "invalid-party"), 1),
    ]);
    assert_eq!(d.counters(REQUESTS), expected);
}

#[tokio::test]
async fn pdp_questions_are_counted_by_result_and_lookups_by_how_they_were_found() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let env = setup().await;
    let (su, altinn) = (Uuid::new_v4(), &env.fakes.altinn);
    altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    altinn.rule(su, "read", RESOURCE, OTHER_ORG, "Deny");
    let token = env.fakes.system_user_token(su);
    let orgs = valid_org_numbers(811_000_000, 5);
    let get = |party: &str| {
        let (path, env, token) = (format!("/krav/{party}"), &env, &token);
        async move { env.get(&path, token).await }
    };
    Delta::take(&snapshots);

    // A permit from the PDP, then the same from the cache.
    assert_eq!(get(OWNER_ORG).await.status, 200);
    assert_eq!(get(OWNER_ORG).await.status, 200);
    let d = Delta::take(&snapshots);
    assert_eq!((d.counter(PDP, &[("result", "permit")]), d.counters(PDP).len()), (1, 1));
    assert_eq!(d.counter(CACHE, &[("result", "miss")]), 1);
    assert_eq!(d.counter(CACHE, &[("result", "hit")]), 1);

    // A deny; two identical questions at once: one call, one shared.
    assert_eq!(get(OTHER_ORG).await.status, 403);
    let (a, b) = tokio::join!(get(THIRD_ORG), get(THIRD_ORG));
    assert_eq!((a.status, b.status), (403, 403));
    let d = Delta::take(&snapshots);
    assert_eq!(d.counter(PDP, &[("result", "deny")]), 1);
    assert_eq!(d.counter(PDP, &[("result", "not_applicable")]), 1);
    assert_eq!(d.counter(CACHE, &[("result", "miss")]), 2);
    assert_eq!(d.counter(CACHE, &[("result", "shared")]), 1);
    assert_eq!(d.counter(CACHE, &[("result", "hit")]), 0);

    // Indeterminate, an obligation we cannot meet, and a failed call.
    altinn.set_answer(PdpAnswer::Decision("Indeterminate".into()));
    assert_eq!(get(&orgs[0]).await.status, 403);
    altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    altinn.set_permit_obligations(json!([{ "id": "urn:example:obligation:notify", "attributeAssignment": [] }]));
    assert_eq!(get(&orgs[1]).await.status, 403);
    altinn.set_answer(PdpAnswer::Status(400));
    assert_eq!(get(&orgs[2]).await.status, 503);
    let d = Delta::take(&snapshots);
    for result in ["indeterminate", "obligation_not_met", "error"] {
        assert_eq!(d.counter(PDP, &[("result", result)]), 1, "{result}");
    }

    // A 429 opens the breaker: the next new question is refused without a call.
    altinn.set_answer(PdpAnswer::TooManyRequests { retry_after_secs: 30 });
    assert_eq!(get(&orgs[3]).await.status, 503);
    let calls = altinn.pdp_request_count();
    assert_eq!(get(&orgs[4]).await.status, 503);
    assert_eq!(altinn.pdp_request_count(), calls, "the breaker held the call back");
    let d = Delta::take(&snapshots);
    assert_eq!(d.counter(PDP, &[("result", "error")]), 1);
    assert_eq!(d.counter(PDP, &[("result", "breaker_open")]), 1);
    assert_eq!(
        d.counter(
            REQUESTS,
            &[
                ("layer", "systemuser"),
                ("outcome", "refused"),
                ("reason", "authorization-unavailable")
            ]
        ),
        2
    );
}

#[tokio::test]
async fn every_http_request_to_the_pdp_is_timed() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let env = setup().await;
    let su = Uuid::new_v4();
    let token = env.fakes.system_user_token(su);
    Delta::take(&snapshots);
    for party in valid_org_numbers(822_000_000, 3) {
        assert_eq!(env.get(&format!("/krav/{party}"), &token).await.status, 403);
    }
    // A 503 is retried once: two requests for one question.
    env.fakes.altinn.set_answer(PdpAnswer::Status(503));
    assert_eq!(env.get(&format!("/krav/{OWNER_ORG}"), &token).await.status, 503);
    let d = Delta::take(&snapshots);
    assert_eq!(env.fakes.altinn.pdp_request_count(), 5);
    assert_eq!(d.histogram_samples(DURATION), 5);
    assert_eq!(d.counter(PDP, &[("result", "error")]), 1, "one question");
}

#[tokio::test]
async fn a_system_user_over_its_limit_is_counted_as_rate_limited() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let env = setup_with(|m| m, |s| s, |p| p.decision_rate_limit(1, 1)).await;
    let token = env.fakes.system_user_token(Uuid::new_v4());
    Delta::take(&snapshots);
    assert_eq!(env.get(&format!("/krav/{OWNER_ORG}"), &token).await.status, 403);
    assert_eq!(env.get(&format!("/krav/{OTHER_ORG}"), &token).await.status, 429);
    let d = Delta::take(&snapshots);
    assert_eq!(d.counter(PDP, &[("result", "not_applicable")]), 1);
    assert_eq!(d.counter(PDP, &[("result", "rate_limited")]), 1);
    assert_eq!(d.counter(CACHE, &[("result", "miss")]), 2);
    assert_eq!(
        d.counter(
            REQUESTS,
            &[("layer", "systemuser"), ("outcome", "refused"), ("reason", "too-many-decisions")]
        ),
        1
    );
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[tokio::test]
async fn key_refreshes_are_counted_and_the_last_success_is_a_timestamp() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let fakes = Fakes::start().await;
    let layer = fakes.maskinporten_layer();
    // The label names the kind of issuer (`maskinporten` or `altinn`), never a URL.
    let issuer = "maskinporten".to_owned();
    let by_issuer = |result| [("issuer", issuer.as_str()), ("result", result)];
    const REFRESH: &str = "altinn_systemuser_jwks_refresh_total";
    const LAST: &str = "altinn_systemuser_jwks_last_success_timestamp_seconds";

    let before = unix_now();
    layer.keys().refresh().await.unwrap();
    let after = unix_now();
    let d = Delta::take(&snapshots);
    assert_eq!(
        (d.counter(REFRESH, &by_issuer("ok")), d.counter(REFRESH, &by_issuer("error"))),
        (1, 0)
    );
    let last = d.gauge(LAST, &[("issuer", issuer.as_str())]).expect("the gauge is set");
    assert!(before.floor() <= last && last <= after.ceil(), "{before} <= {last} <= {after}");

    // A failed fetch: counted, and the gauge is not moved (the snapshot reset it to 0).
    fakes.mp.set_jwks_mode(EndpointMode::Status(500));
    assert!(layer.keys().refresh().await.is_err());
    let d = Delta::take(&snapshots);
    assert_eq!(
        (d.counter(REFRESH, &by_issuer("ok")), d.counter(REFRESH, &by_issuer("error"))),
        (0, 1)
    );
    assert_eq!(d.gauge(LAST, &[("issuer", issuer.as_str())]), Some(0.0));
}

#[tokio::test]
async fn credential_refreshes_are_counted_by_step() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let fakes = Fakes::start().await;
    let pdp = fakes.pdp();
    let ask = |party: &str| {
        DecisionRequest::new(
            Uuid::new_v4(),
            Action::read(),
            ResourceId::new(RESOURCE).unwrap(),
            Party::parse(party).unwrap(),
        )
    };
    const CREDENTIALS: &str = "altinn_systemuser_credentials_refresh_total";
    let step = |s: &str, result: &str| labels(&[("step", s), ("result", result)]);

    // The exchange fails once; the next question reuses the Maskinporten token.
    fakes.altinn.push_exchange_mode(EndpointMode::Status(500));
    assert!(pdp.decide(&ask(OWNER_ORG)).await.is_err());
    assert!(pdp.decide(&ask(OTHER_ORG)).await.is_ok());
    let d = Delta::take(&snapshots);
    assert_eq!(
        d.counters(CREDENTIALS),
        BTreeMap::from([
            (step("grant", "ok"), 1),
            (step("exchange", "error"), 1),
            (step("exchange", "ok"), 1)
        ])
    );

    // Maskinporten refuses the grant: no exchange is tried.
    fakes.mp.set_token_mode(EndpointMode::Status(500));
    let fresh = fakes.pdp();
    assert!(fresh.decide(&ask(OWNER_ORG)).await.is_err());
    let d = Delta::take(&snapshots);
    assert_eq!(d.counters(CREDENTIALS), BTreeMap::from([(step("grant", "error"), 1)]));
}

#[tokio::test]
async fn decide_many_counts_each_question() {
    let recorder = DebuggingRecorder::new();
    let snapshots = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let fakes = Fakes::start().await;
    let pdp = fakes.pdp();
    let su = Uuid::new_v4();
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    let ask = |party: &str| DecisionRequest::new(su, Action::read(), ResourceId::new(RESOURCE).unwrap(), Party::parse(party).unwrap());
    let questions = [ask(OWNER_ORG), ask(OWNER_ORG), ask(OTHER_ORG)];
    Delta::take(&snapshots);

    // Two distinct questions in one PDP call; the repeated one shares its answer.
    pdp.decide_many(&questions).await.unwrap();
    assert_eq!(fakes.altinn.pdp_request_count(), 1);
    let d = Delta::take(&snapshots);
    assert_eq!(d.counter(PDP, &[("result", "permit")]), 1);
    assert_eq!(d.counter(PDP, &[("result", "not_applicable")]), 1);
    assert_eq!(d.counter(CACHE, &[("result", "miss")]), 2);
    assert_eq!(d.counter(CACHE, &[("result", "shared")]), 1);
    assert_eq!(d.histogram_samples(DURATION), 1);

    // Again: all three from the cache, nothing asked.
    pdp.decide_many(&questions).await.unwrap();
    let d = Delta::take(&snapshots);
    assert_eq!(d.counter(CACHE, &[("result", "hit")]), 3);
    assert!(d.counters(PDP).is_empty());
}
