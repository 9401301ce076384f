//! The PDP client on its own, against FakeMaskinporten and FakeAltinn on 127.0.0.1:0: the
//! provider's credentials on the wire (JWT grant, token exchange, bearer and subscription key),
//! the token's life, `decide_many`, the decision cache, the time budget, stalled upstreams, how
//! failures are reported, that secrets stay secret, and the builder.

#[path = "../support/mod.rs"]
mod support;

mod ambiguous;
mod api;
mod breaker;
mod cache;
mod decide_many;
mod failures;
mod limits;
mod secrets;
mod signer;
mod stalls;
mod time_budget;
mod tokens;
mod wire;

use altinn_systemuser::org::Party;
use altinn_systemuser::pdp::{
    Action, AltinnPdp, AltinnPdpBuilder, AltinnToken, AltinnTokenSource, Decision, DecisionRequest, PdpError, ResourceId,
};
use altinn_systemuser::test_util::{FakeAltinn, PdpAnswer, STATUS_OK};
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{Fakes, OWNER_ORG, RESOURCE, SUBSCRIPTION_KEY};
use uuid::Uuid;

/// Something that only ever appears in the fakes' answers, never in our errors.
const MARKER: &str = "SECRET-BODY-MARKER-4f9a";

async fn setup() -> (Fakes, AltinnPdp) {
    setup_with(|p| p).await
}

async fn setup_with(pdp: impl FnOnce(AltinnPdpBuilder) -> AltinnPdpBuilder) -> (Fakes, AltinnPdp) {
    let fakes = Fakes::start().await;
    let pdp = pdp(fakes.pdp_builder()).build().unwrap();
    (fakes, pdp)
}

/// May `su` do `action` on the test resource for `party`?
fn question(su: Uuid, action: &str, party: &str) -> DecisionRequest {
    DecisionRequest::new(
        su,
        Action::new(action).unwrap(),
        ResourceId::new(RESOURCE).unwrap(),
        Party::parse(party).unwrap(),
    )
}

/// May `su` read `resource` for `party`?
fn about(su: Uuid, resource: &str, party: &str) -> DecisionRequest {
    DecisionRequest::new(su, Action::read(), ResourceId::new(resource).unwrap(), Party::parse(party).unwrap())
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn body(status: u16, content_type: &str, body: impl Into<String>) -> PdpAnswer {
    PdpAnswer::Body {
        status,
        content_type: content_type.to_owned(),
        body: body.into(),
    }
}

/// A result as the live PDP writes it, echoing the question's attributes.
fn echoed_result(decision: &str, su: Uuid, action: &str, party: &str) -> Value {
    let attr = |id: &str, value: &str| json!({ "attributeId": id, "value": value, "dataType": "http://www.w3.org/2001/XMLSchema#string" });
    json!({
        "decision": decision,
        "status": { "statusCode": { "value": STATUS_OK } },
        "obligations": null,
        "category": [
            { "categoryId": "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject",
              "attribute": [attr("urn:altinn:systemuser:uuid", &su.to_string())] },
            { "categoryId": "urn:oasis:names:tc:xacml:3.0:attribute-category:action",
              "attribute": [attr("urn:oasis:names:tc:xacml:1.0:action:action-id", action)] },
            { "categoryId": "urn:oasis:names:tc:xacml:3.0:attribute-category:resource",
              "attribute": [attr("urn:altinn:resource", RESOURCE), attr("urn:altinn:organization:identifier-no", party)] },
        ],
    })
}

/// Twenty different questions at once, each answered `Permit`.
pub(crate) async fn twenty_concurrent_permits(pdp: &AltinnPdp) {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let pdp = pdp.clone();
            tokio::spawn(async move { pdp.decide(&question(Uuid::new_v4(), "read", OWNER_ORG)).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(Decision::Permit));
    }
}

/// A token source that always hands out the same Altinn token: for tests of the PDP call
/// alone, without the grant and the exchange.
struct FixedToken(AltinnToken);

impl FixedToken {
    /// This token, valid 30 minutes.
    fn new(token: impl Into<String>) -> FixedToken {
        FixedToken(AltinnToken::new(token, SystemTime::now() + Duration::from_secs(1800)))
    }

    /// An Altinn token `altinn` issued (valid 30 minutes).
    fn from(altinn: &FakeAltinn) -> FixedToken {
        FixedToken::new(altinn.altinn_token())
    }
}

impl AltinnTokenSource for FixedToken {
    fn token(&self, _force_refresh: bool) -> Pin<Box<dyn Future<Output = Result<AltinnToken, PdpError>> + Send + '_>> {
        Box::pin(async move { Ok(self.0.clone()) })
    }
}

/// A PDP client for `altinn` with a [`FixedToken`] and the subscription key: no grant, no
/// exchange, so its time budget is all the PDP's.
fn pdp_with_fixed_token(altinn: &FakeAltinn, builder: impl FnOnce(AltinnPdpBuilder) -> AltinnPdpBuilder) -> AltinnPdp {
    let b = AltinnPdp::builder()
        .platform_url(altinn.platform_url())
        .subscription_key(SUBSCRIPTION_KEY)
        .token_source(FixedToken::from(altinn));
    builder(b).build().unwrap()
}
