//! `decide_many`: several questions in one call (XACML `MultiRequests`), each answer matched to
//! its question by what the PDP echoes, never by position.

use crate::support::{OTHER_ORG, OWNER_ORG, RESOURCE, THIRD_ORG, attributes};
use crate::{about, body, echoed_result, question, setup};
use altinn_systemuser::pdp::{Decision, DecisionRequest, PdpErrorKind};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn decide_many_asks_once_with_multi_requests() {
    let (fakes, pdp) = setup().await;
    let altinn = &fakes.altinn;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    altinn.permit(a, "read", RESOURCE, OWNER_ORG);
    altinn.permit(b, "write", RESOURCE, THIRD_ORG);

    let asked = [question(a, "read", OWNER_ORG), question(a, "write", OWNER_ORG)];
    assert_eq!(pdp.decide_many(&asked).await, Ok(vec![Decision::Permit, Decision::NotApplicable]));
    assert_eq!(altinn.pdp_request_count(), 1);
    let body = altinn.pdp_requests()[0].json().unwrap();
    let references = body["Request"]["MultiRequests"]["RequestReference"].as_array().unwrap();
    assert_eq!(references.len(), 2, "{body}");
    for r in references {
        assert_eq!(r["ReferenceId"].as_array().unwrap().len(), 3, "{body}");
    }
    // Each subject category is still exactly one system-user attribute.
    for s in body["Request"]["AccessSubject"].as_array().unwrap() {
        assert_eq!(attributes(s), [("urn:altinn:systemuser:uuid".to_owned(), a.to_string())]);
    }

    // Both answers are cached now, in whatever order they are asked.
    let reversed = [question(a, "write", OWNER_ORG), question(a, "read", OWNER_ORG)];
    assert_eq!(
        pdp.decide_many(&reversed).await,
        Ok(vec![Decision::NotApplicable, Decision::Permit])
    );
    assert_eq!(altinn.pdp_request_count(), 1);

    // The not-permitted one first, a question repeated: one call, answers in the order asked.
    let mixed = [
        question(b, "read", THIRD_ORG),
        question(b, "write", THIRD_ORG),
        question(b, "read", THIRD_ORG),
        question(a, "read", OWNER_ORG),
    ];
    assert_eq!(
        pdp.decide_many(&mixed).await,
        Ok(vec![
            Decision::NotApplicable,
            Decision::Permit,
            Decision::NotApplicable,
            Decision::Permit
        ])
    );
    assert_eq!(altinn.pdp_request_count(), 2);
    let body = altinn.pdp_requests()[1].json().unwrap();
    assert_eq!(body["Request"]["MultiRequests"]["RequestReference"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn answers_in_reverse_order_are_matched_by_what_they_echo() {
    let (fakes, pdp) = setup().await;
    let su = Uuid::new_v4();
    let asked = [question(su, "read", OWNER_ORG), question(su, "write", OTHER_ORG)];
    let reversed = json!({ "response": [
        echoed_result("Deny", su, "write", OTHER_ORG),
        echoed_result("Permit", su, "read", OWNER_ORG),
    ]});
    fakes.altinn.push_answer(body(200, "application/json", reversed.to_string()));
    assert_eq!(pdp.decide_many(&asked).await, Ok(vec![Decision::Permit, Decision::Deny]));
}

#[tokio::test]
async fn answers_that_cannot_be_matched_are_malformed() {
    let (fakes, pdp) = setup().await;
    // An answer to a question not asked, a question answered twice, or no echo: no decisions.
    let other = Uuid::new_v4();
    let asked = [question(other, "read", OWNER_ORG), question(other, "write", OTHER_ORG)];
    for bad in [
        json!({ "response": [
            echoed_result("Permit", other, "read", OWNER_ORG),
            echoed_result("Permit", other, "write", THIRD_ORG),
        ]}),
        json!({ "response": [
            echoed_result("Permit", other, "read", OWNER_ORG),
            echoed_result("Permit", other, "read", OWNER_ORG),
        ]}),
        json!({ "response": [
            { "decision": "Permit" },
            { "decision": "Permit" },
        ]}),
        json!({ "response": [echoed_result("Permit", other, "read", OWNER_ORG)] }),
    ] {
        fakes.altinn.push_answer(body(200, "application/json", bad.to_string()));
        let e = pdp.decide_many(&asked).await.unwrap_err();
        assert_eq!(e.kind(), PdpErrorKind::Malformed, "{bad}");
    }
}

/// Five questions (one asked twice) with four different decisions, answered in reverse order.
fn mixed(su: Uuid, fakes: &crate::support::Fakes) -> [DecisionRequest; 5] {
    let altinn = &fakes.altinn;
    altinn.rule(su, "read", "resource-a", OWNER_ORG, "Permit");
    altinn.rule(su, "read", "deny-b", OWNER_ORG, "Deny");
    altinn.rule(su, "read", "ind-d", OWNER_ORG, "Indeterminate");
    altinn.set_results_reversed(true);
    [
        about(su, "resource-a", OWNER_ORG),
        about(su, "deny-b", OWNER_ORG),
        about(su, "na-c", OWNER_ORG),
        about(su, "resource-a", OWNER_ORG),
        about(su, "ind-d", OWNER_ORG),
    ]
}

const MIXED_DECISIONS: [Decision; 5] = [
    Decision::Permit,
    Decision::Deny,
    Decision::NotApplicable,
    Decision::Permit,
    Decision::Indeterminate,
];

#[tokio::test]
async fn each_decision_goes_to_its_question_whatever_the_order() {
    let (fakes, pdp) = setup().await;
    let reqs = mixed(Uuid::new_v4(), &fakes);
    assert_eq!(pdp.decide_many(&reqs).await, Ok(MIXED_DECISIONS.to_vec()));
    // One call: four distinct questions, one system user.
    assert_eq!(fakes.altinn.pdp_request_count(), 1);
    let body = fakes.altinn.pdp_requests()[0].json().unwrap();
    assert_eq!(body["Request"]["MultiRequests"]["RequestReference"].as_array().unwrap().len(), 4);
    assert_eq!(body["Request"]["AccessSubject"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn cached_answers_are_reused_and_an_indeterminate_is_asked_again_alone() {
    let (fakes, pdp) = setup().await;
    let reqs = mixed(Uuid::new_v4(), &fakes);
    assert_eq!(pdp.decide_many(&reqs).await, Ok(MIXED_DECISIONS.to_vec()));
    assert_eq!(fakes.altinn.pdp_request_count(), 1);

    assert_eq!(pdp.decide(&reqs[1]).await, Ok(Decision::Deny));
    assert_eq!(fakes.altinn.pdp_request_count(), 1);
    // Only the Indeterminate is asked again, as a single question (no MultiRequests).
    assert_eq!(pdp.decide_many(&reqs).await.unwrap()[4], Decision::Indeterminate);
    assert_eq!(fakes.altinn.pdp_request_count(), 2);
    let body = fakes.altinn.pdp_requests()[1].json().unwrap();
    assert!(body["Request"].get("MultiRequests").is_none(), "{body}");
}

#[tokio::test]
async fn nothing_asked_asks_nothing() {
    let (fakes, pdp) = setup().await;
    assert_eq!(pdp.decide_many(&[]).await, Ok(vec![]));
    assert_eq!((fakes.altinn.pdp_request_count(), fakes.mp.token_requests()), (0, 0));
}

#[tokio::test]
async fn a_failed_decide_many_caches_nothing() {
    let (fakes, pdp) = setup().await;
    let su = Uuid::new_v4();
    let reqs = [question(su, "read", OWNER_ORG), question(su, "write", OWNER_ORG)];
    let json = "application/json";
    // No echo, then one question answered twice.
    let unechoed = json!({ "response": [{ "decision": "Permit" }, { "decision": "Permit" }] });
    let twice = json!({ "response": [
        echoed_result("Permit", su, "read", OWNER_ORG),
        echoed_result("Permit", su, "read", OWNER_ORG),
    ]});
    for bad in [unechoed, twice] {
        fakes.altinn.push_answer(body(200, json, bad.to_string()));
        assert_eq!(pdp.decide_many(&reqs).await.unwrap_err().kind(), PdpErrorKind::Malformed, "{bad}");
    }
    // Nothing was cached by the failures: asked again, and answered.
    fakes.altinn.permit(su, "read", RESOURCE, OWNER_ORG);
    fakes.altinn.permit(su, "write", RESOURCE, OWNER_ORG);
    assert_eq!(pdp.decide_many(&reqs).await, Ok(vec![Decision::Permit, Decision::Permit]));
    assert_eq!(fakes.altinn.pdp_request_count(), 3);
}
