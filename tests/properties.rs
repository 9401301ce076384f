//! Property tests (proptest) over the public surface: a valid token (Maskinporten's, and one
//! issued by Altinn's platform) with any single byte changed is refused by the Maskinporten layer (real keys from FakeMaskinporten over loopback HTTP),
//! and the strict organisation-number parser accepts exactly the mod-11 numbers and spells them
//! back. The PDP-answer property is a unit test beside the evaluator (`src/pdp/decision/`).

mod support;

use altinn_systemuser::maskinporten::{AltinnTokens, MaskinportenLayer};
use altinn_systemuser::org::{OrgNumber, Party};
use altinn_systemuser::test_util::{FakeAltinn, FakeMaskinporten, KeyRole, TestKey};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderValue, Request, StatusCode};
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{API_SCOPE, OWNER_ORG};
use tower::ServiceExt;
use uuid::Uuid;

/// The Maskinporten layer in front of a handler that counts its calls, keys loaded, and a
/// valid token for it.
struct TokenBench {
    rt: tokio::runtime::Runtime,
    _mp: FakeMaskinporten,
    _altinn: Option<FakeAltinn>,
    app: Router,
    handled: Arc<AtomicUsize>,
    token: String,
}

impl TokenBench {
    /// With `altinn`, the layer also trusts Altinn-issued tokens and the token is one of those.
    fn start(altinn: bool) -> TokenBench {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        TestKey::pregenerate(&[KeyRole::Maskinporten, KeyRole::Altinn]);
        let (mp, fake_altinn, app, handled) = rt.block_on(async {
            let mp = FakeMaskinporten::start().await;
            let fake_altinn = if altinn {
                Some(FakeAltinn::start(&mp, "unused").await)
            } else {
                None
            };
            let mut builder = MaskinportenLayer::builder().issuer(mp.issuer()).require_scope(API_SCOPE);
            if let Some(a) = &fake_altinn {
                builder = builder.altinn_tokens(AltinnTokens::platform(a.platform_url()));
            }
            let layer = builder.build().unwrap();
            layer.keys().ready().await.unwrap();
            if let Some(keys) = layer.altinn_keys() {
                keys.ready().await.unwrap();
            }
            let handled = Arc::new(AtomicUsize::new(0));
            let counter = handled.clone();
            let app = Router::new()
                .route(
                    "/",
                    get(move || {
                        counter.fetch_add(1, Ordering::SeqCst);
                        async { "handled" }
                    }),
                )
                .route_layer(layer);
            (mp, fake_altinn, app, handled)
        });
        let token = match &fake_altinn {
            Some(a) => a.system_user_token(Uuid::new_v4(), OWNER_ORG).scope(API_SCOPE).sign(),
            None => mp.system_user_token(Uuid::new_v4(), OWNER_ORG).scope(API_SCOPE).sign(),
        };
        TokenBench {
            rt,
            _mp: mp,
            _altinn: fake_altinn,
            app,
            handled,
            token,
        }
    }

    /// The status for `Authorization: Bearer <token>`; `None` when HTTP cannot carry the value.
    fn status(&self, token: &[u8]) -> Option<StatusCode> {
        let value = HeaderValue::from_bytes(&[b"Bearer ", token].concat()).ok()?;
        let req = Request::get("/")
            .header(http::header::AUTHORIZATION, value)
            .body(Body::empty())
            .unwrap();
        Some(self.rt.block_on(self.app.clone().oneshot(req)).unwrap().status())
    }
}

#[test]
fn no_single_byte_change_of_a_valid_token_is_accepted() {
    single_byte_changes(TokenBench::start(false));
}

#[test]
fn no_single_byte_change_of_a_valid_altinn_token_is_accepted() {
    single_byte_changes(TokenBench::start(true));
}

fn single_byte_changes(bench: TokenBench) {
    let token = bench.token.as_bytes();
    assert_eq!(bench.status(token), Some(StatusCode::OK), "the unchanged token must pass");
    assert_eq!(bench.handled.load(Ordering::SeqCst), 1);

    // Every position, with a neighbouring character of the same alphabet (the change most
    // likely to keep the token well-formed), then random positions and bytes.
    for pos in 0..token.len() {
        let mut changed = token.to_vec();
        changed[pos] = match changed[pos] {
            b'z' => b'a',
            b'Z' => b'A',
            b'9' => b'0',
            b'.' => b'_',
            b => b + 1,
        };
        let status = bench.status(&changed);
        assert!(status != Some(StatusCode::OK), "byte {pos} changed and the token passed");
    }
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&(0..token.len(), any::<u8>()), |(pos, byte)| {
            prop_assume!(byte != token[pos]);
            let mut changed = token.to_vec();
            changed[pos] = byte;
            prop_assert_ne!(
                bench.status(&changed),
                Some(StatusCode::OK),
                "byte {} set to {:#04x} and the token passed",
                pos,
                byte
            );
            Ok(())
        })
        .unwrap();
    assert_eq!(bench.handled.load(Ordering::SeqCst), 1, "the handler ran for a changed token");
}

/// The mod-11 check digit of an organisation number's first eight digits, written out here
/// (weights 3 2 7 6 5 4 3 2; remainder 0 gives 0, remainder 1 no valid number).
fn check_digit(first8: &[u8]) -> Option<u8> {
    let sum: u32 = first8
        .iter()
        .zip([3u32, 2, 7, 6, 5, 4, 3, 2])
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    match sum % 11 {
        0 => Some(0),
        1 => None,
        r => Some(11 - r as u8),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn strict_org_numbers_have_a_valid_check_digit_and_spell_back(n in 0u32..1_000_000_000) {
        let s = format!("{n:09}");
        let valid = check_digit(&s.as_bytes()[..8]) == Some(s.as_bytes()[8] - b'0');
        match OrgNumber::parse_canonical(&s) {
            Ok(org) => {
                prop_assert!(valid, "{} accepted with a wrong check digit", s);
                prop_assert_eq!(org.to_string(), s.clone());
                prop_assert_eq!(org.as_u32(), n);
                prop_assert_eq!(Party::parse_canonical(&s), Ok(Party::Organisation(org)));
            }
            Err(_) => prop_assert!(!valid, "{} refused with a valid check digit", s),
        }
    }

    #[test]
    fn strict_parties_are_nine_or_eleven_ascii_digits(s in "[0-9０-９ +:\\-%a]{0,14}") {
        if let Ok(party) = Party::parse_canonical(&s) {
            prop_assert!(s.len() == 9 || s.len() == 11, "{:?} accepted", s);
            prop_assert!(s.bytes().all(|b| b.is_ascii_digit()), "{:?} accepted", s);
            let spelled = match party {
                Party::Organisation(o) => o.to_string(),
                Party::Person(p) => p.as_str().to_owned(),
            };
            prop_assert_eq!(spelled, s);
        }
    }
}
