//! The provider's own key: replaced at runtime through `MaskinportenCredentials::signer()` with
//! no request lost, and a signer of the user's own (as for an HSM or a key vault) end to end.

use crate::question;
use crate::support::{Fakes, OWNER_ORG, PROVIDER_CLIENT_ID, PROVIDER_ORG, SUBSCRIPTION_KEY};
use altinn_systemuser::ConfigErrorKind;
use altinn_systemuser::pdp::{
    AltinnPdp, AssertionSigner, CheckStep, Decision, KeyReference, MaskinportenCredentials, PdpErrorKind, SignFuture, SignerError,
};
use altinn_systemuser::test_util::{ClientRegistration, KeyRole, PdpAnswer, TestKey};
use futures_util::future::join_all;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use uuid::Uuid;

/// The `kid` of every grant assertion Maskinporten received, in order.
fn grant_kids(fakes: &Fakes) -> Vec<String> {
    fakes
        .mp
        .grant_assertions()
        .iter()
        .map(|a| a["header"]["kid"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `n` questions at once, each of its own system user (so no limit applies).
async fn burst(pdp: &AltinnPdp, n: usize) -> Vec<Result<Decision, altinn_systemuser::pdp::PdpError>> {
    let questions: Vec<_> = (0..n).map(|_| question(Uuid::new_v4(), "read", OWNER_ORG)).collect();
    join_all(questions.iter().map(|q| pdp.decide(q))).await
}

/// Forces a new grant: the PDP refuses the Altinn tokens issued so far, and the client's forced
/// refresh after a `401` grants anew.
fn force_new_grant(fakes: &Fakes) {
    fakes.altinn.revoke_tokens();
}

#[tokio::test]
async fn the_key_is_replaced_mid_traffic_without_losing_a_request() {
    let fakes = Fakes::start().await;
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    let old_kid = fakes.provider_key.kid().to_owned();
    // Rotation at Maskinporten, step 1: the new public key is registered beside the old one.
    TestKey::pregenerate(&[KeyRole::Rotation(7)]);
    let new_key = TestKey::for_role(KeyRole::Rotation(7)).with_kid("provider-key-2");
    fakes.mp.register_client(ClientRegistration::new(
        PROVIDER_CLIENT_ID,
        &new_key,
        PROVIDER_ORG,
        &["altinn:authorization/authorize"],
    ));
    let credentials = fakes.credentials();
    let handle = credentials.signer().clone();
    let pdp = AltinnPdp::builder()
        .platform_url(fakes.altinn.platform_url())
        .subscription_key(SUBSCRIPTION_KEY)
        .credentials(credentials)
        .build()
        .unwrap();

    let before = burst(&pdp, 20).await;
    assert!(before.iter().all(|r| *r == Ok(Decision::Permit)), "{before:?}");
    assert_eq!(grant_kids(&fakes), std::slice::from_ref(&old_kid));

    // Step 2: switch while questions are in flight, and make the next refresh grant anew.
    let in_flight = burst(&pdp, 20);
    let switch = async {
        handle
            .replace_pem(new_key.private_key_pkcs8_pem().as_bytes(), "provider-key-2")
            .unwrap();
        force_new_grant(&fakes);
    };
    let (during, ()) = tokio::join!(in_flight, switch);
    assert!(during.iter().all(|r| *r == Ok(Decision::Permit)), "{during:?}");
    assert_eq!(handle.key_reference(), KeyReference::KeyId("provider-key-2".into()));
    let after = burst(&pdp, 20).await;
    assert!(after.iter().all(|r| *r == Ok(Decision::Permit)), "{after:?}");
    let kids = grant_kids(&fakes);
    assert_eq!(kids.first(), Some(&old_kid));
    assert_eq!(kids.last().map(String::as_str), Some("provider-key-2"), "{kids:?}");
    assert!(
        kids.iter().skip_while(|k| **k == old_kid).all(|k| k == "provider-key-2"),
        "{kids:?}"
    );

    // Step 3: the old key is removed at Maskinporten; the credentials still work.
    fakes.mp.unregister_client_key(PROVIDER_CLIENT_ID, &old_kid);
    pdp.check_credentials().await.unwrap();
    force_new_grant(&fakes);
    let last = burst(&pdp, 5).await;
    assert!(last.iter().all(|r| *r == Ok(Decision::Permit)), "{last:?}");
    assert!(
        fakes.mp.grant_assertions().iter().all(|a| a["error"].is_null()),
        "every grant was accepted"
    );
}

#[tokio::test]
async fn a_replacement_that_is_not_a_key_leaves_the_signer_in_place() {
    let fakes = Fakes::start().await;
    let credentials = fakes.credentials();
    let e = credentials.signer().replace_pem(b"not a key", "k").unwrap_err();
    assert_eq!((e.field(), e.kind()), ("private_key_pem", ConfigErrorKind::Invalid));
    assert_eq!(
        credentials.signer().key_reference(),
        KeyReference::KeyId(fakes.provider_key.kid().into())
    );
}

/// A signer outside the crate's key handling, as an HSM would be: it only signs bytes.
struct TestSigner {
    key: TestKey,
    calls: Arc<AtomicUsize>,
    fail: bool,
}

impl AssertionSigner for TestSigner {
    fn key_reference(&self) -> KeyReference {
        KeyReference::KeyId(self.key.kid().to_owned())
    }

    fn sign<'a>(&'a self, message: &'a [u8]) -> SignFuture<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            if self.fail {
                return Err(SignerError::new("the HSM is unreachable"));
            }
            Ok(self.key.sign_raw("RS256", message))
        })
    }
}

fn signer_credentials(fakes: &Fakes, fail: bool) -> (MaskinportenCredentials, Arc<AtomicUsize>) {
    TestKey::pregenerate(&[KeyRole::Rotation(8)]);
    let key = TestKey::for_role(KeyRole::Rotation(8)).with_kid("hsm-key-1");
    fakes.mp.register_client(ClientRegistration::new(
        PROVIDER_CLIENT_ID,
        &key,
        PROVIDER_ORG,
        &["altinn:authorization/authorize"],
    ));
    let calls = Arc::new(AtomicUsize::new(0));
    let credentials = MaskinportenCredentials::builder()
        .issuer(fakes.mp.issuer())
        .client_id(PROVIDER_CLIENT_ID)
        .signer(TestSigner {
            key,
            calls: calls.clone(),
            fail,
        })
        .build()
        .unwrap();
    (credentials, calls)
}

#[tokio::test]
async fn a_signer_of_ones_own_works_end_to_end() {
    let fakes = Fakes::start().await;
    fakes.altinn.set_answer(PdpAnswer::Decision("Permit".into()));
    let (credentials, calls) = signer_credentials(&fakes, false);
    assert!(format!("{credentials:?}").contains("hsm-key-1"));
    let pdp = AltinnPdp::builder()
        .platform_url(fakes.altinn.platform_url())
        .subscription_key(SUBSCRIPTION_KEY)
        .credentials(credentials)
        .build()
        .unwrap();
    assert_eq!(pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await, Ok(Decision::Permit));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(grant_kids(&fakes), ["hsm-key-1"]);
    assert!(fakes.mp.grant_assertions()[0]["error"].is_null());
}

#[tokio::test]
async fn a_failing_signer_is_a_credentials_error_and_nothing_is_sent() {
    let fakes = Fakes::start().await;
    let (credentials, calls) = signer_credentials(&fakes, true);
    let pdp = AltinnPdp::builder()
        .platform_url(fakes.altinn.platform_url())
        .subscription_key(SUBSCRIPTION_KEY)
        .credentials(credentials)
        .build()
        .unwrap();
    let e = pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await.unwrap_err();
    assert_eq!(e.kind(), PdpErrorKind::Credentials);
    let check = pdp.check_credentials().await.unwrap_err();
    assert_eq!(check.step(), CheckStep::Grant, "{check}");
    assert!(check.reason().contains("signed"), "{check}");
    assert!(calls.load(Ordering::SeqCst) >= 2);
    assert_eq!(fakes.mp.token_requests(), 0, "no assertion was sent unsigned");
}

#[test]
fn a_signer_names_its_own_key_reference() {
    let key = TestKey::for_role(KeyRole::Provider);
    let signer = || TestSigner {
        key: key.with_kid("x"),
        calls: Arc::default(),
        fail: false,
    };
    let base = || {
        MaskinportenCredentials::builder()
            .issuer("https://test.maskinporten.no/")
            .client_id("c")
    };
    let e = base().signer(signer()).key_id("k").build().unwrap_err();
    assert_eq!((e.field(), e.kind()), ("key_id", ConfigErrorKind::Conflict));
    let e = base()
        .signer(signer())
        .private_key_pem(key.private_key_pkcs8_pem().as_bytes())
        .build()
        .unwrap_err();
    assert_eq!((e.field(), e.kind()), ("private_key_pem", ConfigErrorKind::Conflict));
    assert!(base().signer(signer()).build().is_ok());
}
