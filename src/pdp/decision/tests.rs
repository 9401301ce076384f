//! Tests of the deny-biased evaluation: Altinn's own test vectors (`tests/data/`) and cases
//! built here.

use super::Decision::*;
use super::*;
use crate::org::Party;
use crate::pdp::PdpErrorKind;
use crate::pdp::request::{Action, ResourceId};
use crate::pdp::xacml::parse_response;
use serde_json::json;
use std::path::{Path, PathBuf};

/// What we expect of a response body: an error, or one evaluation per result.
type Outcome = Result<Vec<Decision>, PdpErrorKind>;

fn run(body: &[u8]) -> Outcome {
    let results = parse_response(body).map_err(|e| e.kind())?;
    results.iter().map(|r| evaluate(r).map_err(|e| e.kind())).collect()
}

fn run_single(body: &[u8]) -> Result<Decision, PdpErrorKind> {
    let results = parse_response(body).map_err(|e| e.kind())?;
    single(&results).map_err(|e| e.kind())
}

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(rel)
}

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = shared(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("test vectors missing at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    out.sort();
    out
}

fn check_all(dir: &str, expected: &[(&str, Outcome)]) {
    let mut expected: HashMap<&str, &Outcome> = expected.iter().map(|(n, o)| (*n, o)).collect();
    let all = files(dir);
    assert!(!all.is_empty(), "{dir}");
    for path in all {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let body = std::fs::read(&path).unwrap();
        let got = run(&body);
        let want = expected
            .remove(name.as_str())
            .unwrap_or_else(|| panic!("no expectation for {dir}/{name}: got {got:?}"));
        assert_eq!(&got, want, "{dir}/{name}");
        // The single-question path agrees: one result is its evaluation, else malformed.
        let single = run_single(&body);
        match &got {
            Ok(d) if d.len() == 1 => assert_eq!(single, Ok(d[0]), "{name}"),
            Ok(_) => assert_eq!(single, Err(PdpErrorKind::Malformed), "{name}"),
            Err(k) => assert_eq!(single, Err(*k), "{name}"),
        }
    }
    assert!(expected.is_empty(), "expectations for missing files: {:?}", expected.keys());
}

const MALFORMED: Outcome = Err(PdpErrorKind::Malformed);

fn ok(d: &[Decision]) -> Outcome {
    Ok(d.to_vec())
}

#[test]
fn altinn_pdp_vectors() {
    let expected = [
        // Permit with the level-2 obligation: met by a system user (level 3).
        ("AltinnApps0007Response.json", ok(&[Permit])),
        ("AltinnApps0008Response.json", ok(&[Permit])),
        ("AltinnApps0009Response.json", ok(&[Permit])),
        ("AltinnApps0010Response.json", ok(&[Permit, Permit])),
        ("AltinnApps0011Response.json", ok(&[Permit])),
        ("AltinnApps0012Response.json", ok(&[NotApplicable])),
        ("AltinnApps0027Response.json", ok(&[Permit])),
        // Trailing commas: not JSON.
        ("AltinnApps0028Response.json", MALFORMED),
        // Permit, but authentication level 4 is required: a system user cannot meet it.
        ("AltinnAppsOrg1App1_KeyRoleUnitDelegationResponse.json", ok(&[ObligationNotMet])),
        (
            "AltinnAppsOrg1App1_KeyRoleUnitDelegation_MainUnitResponse.json",
            ok(&[ObligationNotMet]),
        ),
        ("AltinnAppsOrg1App1_UserDelegationResponse.json", ok(&[ObligationNotMet])),
        ("AltinnAppsOrg1App1_UserDelegation_DeletedResponse.json", ok(&[NotApplicable])),
        ("AltinnAppsOrg1App1_UserDelegation_MainUnitResponse.json", ok(&[ObligationNotMet])),
        ("AltinnApps_OedFormuesfullmakt_Json_PermitResponse.json", ok(&[Permit])),
        ("AltinnApps_SystemUserWithDelegation_PermitResponse.json", ok(&[ObligationNotMet])),
        ("AltinnResourceRegistry0002Response.json", ok(&[Permit])),
        ("AltinnResourceRegistry0003Response.json", ok(&[Permit])),
        ("AltinnResourceRegistry0004Response.json", ok(&[Permit])),
        ("AltinnResourceRegistry0005Response.json", ok(&[Permit])),
        ("AltinnResourceRegistry0006Response.json", ok(&[Permit])),
        ("AltinnResourceRegistry0007Response.json", ok(&[NotApplicable])),
        ("AltinnResourceRegistry0008Response.json", ok(&[NotApplicable])),
        ("AltinnResourceRegistry0009Response.json", ok(&[Permit])),
        ("AltinnResourceRegistry0010Response.json", ok(&[NotApplicable])),
        ("AltinnResourceRegistry0011Response.json", ok(&[Permit])),
        (
            "AltinnResourceRegistryMulti0012Response.json",
            ok(&[Permit, Permit, NotApplicable, NotApplicable]),
        ),
        (
            "AltinnResourceRegistry_RequestConsent_InValidAccessListResponse.json",
            ok(&[NotApplicable]),
        ),
        ("AltinnResourceRegistry_RequestConsent_ValidAccessListResponse.json", ok(&[Permit])),
        // Two level obligations, 3 and 2: both met.
        (
            "AltinnResourceRegistry_RequestConsent_ValidAccessList_Ver2Response.json",
            ok(&[Permit]),
        ),
        ("AltinnResourceRegistry_RequestConsent_ValidPartyTypeResponse.json", ok(&[Permit])),
        (
            "AltinnResourceRegistry_RequestConsent_ValidPartyType_Ver2Response.json",
            ok(&[Permit]),
        ),
        (
            "AltinnResourceRegistry_RequestConsent_ValidPartyType_Ver3Response.json",
            ok(&[Permit]),
        ),
        ("AppPolicy_AltinnAppsOrg1App1_DAGL_NotApplicableResponse.json", ok(&[NotApplicable])),
        // First result needs level 4, second level 2.
        (
            "DelegationPolicyMultiRequest_AltinnAppsOrg1App1AndApp2_UserDelegationResponse.json",
            ok(&[ObligationNotMet, Permit]),
        ),
        ("IIA001Response.json", ok(&[Permit])),
        ("IIA022Response.json", ok(&[Permit])),
        ("IIIE303Response.json", ok(&[Permit, NotApplicable])),
        (
            "InstanceDelegationPolicy_AltinnAppsInstanceOrg1App1_PermitResponse.json",
            ok(&[ObligationNotMet]),
        ),
        (
            "InstanceDelegationPolicy_AltinnAppsOrg1App1_PermitResponse.json",
            ok(&[ObligationNotMet]),
        ),
        (
            "InstanceDelegationPolicy_AltinnAppsResourceOrg1App1_DAGLOfOrgDelegation_PermitResponse.json",
            ok(&[ObligationNotMet]),
        ),
        (
            "InstanceDelegationPolicy_AltinnAppsResourceOrg1App1_OrgSubject_PermitResponse.json",
            ok(&[ObligationNotMet]),
        ),
        (
            "ResourceRegistry_AccessListAuthorization_Json_DenyAccessListDontSupportPersonResponse.json",
            ok(&[Deny]),
        ),
        (
            "ResourceRegistry_AccessListAuthorization_Json_DenyActionFilterNotMatchingResponse.json",
            ok(&[Deny]),
        ),
        ("ResourceRegistry_AccessListAuthorization_Json_DenyResponse.json", ok(&[Deny])),
        ("ResourceRegistry_AccessListAuthorization_Json_PermitResponse.json", ok(&[Permit])),
        (
            "ResourceRegistry_AccessListAuthorization_Json_PermitWithActionFilterMatchResponse.json",
            ok(&[Permit]),
        ),
        (
            "ResourceRegistry_AccessPackageUngrantedAction_NotApplicableResponse.json",
            ok(&[NotApplicable]),
        ),
        // The PDP's own errors: HTTP 200, Indeterminate, processing-error.
        ("ResourceRegistry_NoResource_IndeterminateResponse.json", ok(&[Indeterminate])),
        ("ResourceRegistry_NoSubject_IndeterminateResponse.json", ok(&[Indeterminate])),
        (
            "ResourceRegistry_NoSubject_MultiRequest_IndeterminateResponse.json",
            ok(&[Indeterminate]),
        ),
        (
            "ResourceRegistry_OedFormuesfullmakt_Json_IndeterminateResponse.json",
            ok(&[NotApplicable]),
        ),
        ("ResourceRegistry_OedFormuesfullmakt_Json_PermitResponse.json", ok(&[Permit])),
        ("ResourceRegistry_PersonWithAccessPackage_PermitResponse.json", ok(&[Permit])),
        (
            "ResourceRegistry_SubjectWithoutAccessPackage_NotApplicableResponse.json",
            ok(&[NotApplicable]),
        ),
        (
            "ResourceRegistry_SystemResourceClientAdministration_Admai_NotApplicableResponse.json",
            ok(&[NotApplicable]),
        ),
        (
            "ResourceRegistry_SystemResourceClientAdministration_Dagl_PermitResponse.json",
            ok(&[Permit]),
        ),
        ("ResourceRegistry_SystemResourceMainAdmin_Dagl_PermitResponse.json", ok(&[Permit])),
        ("ResourceRegistry_SystemUserWithDelegation_PermitResponse.json", ok(&[Permit])),
        (
            "ResourceRegistry_SystemUserWithDelegation_TooManyRequestSubjects_IndeterminateResponse.json",
            ok(&[Indeterminate]),
        ),
        (
            "ResourceRegistry_SystemUserWithDelegations_MultiRequest_PermitResponse.json",
            ok(&[Permit, Permit]),
        ),
        (
            "ResourceRegistry_SystemUserWithoutDelegation_NotApplicableResponse.json",
            ok(&[NotApplicable]),
        ),
        (
            "ResourceRegistry_SystemUser_WithAccessPackage_MultiRequest_PermitResponse.json",
            ok(&[Permit, Permit, Permit]),
        ),
    ];
    assert_eq!(expected.len(), 62);
    check_all("vectors/altinn-pdp/responses", &expected);
}

#[test]
fn authzforce_valid_vectors() {
    // Schema-valid responses; what a deny-biased PEP makes of them.
    let expected = [
        ("Category-value-array-empty.json", ok(&[Permit])),
        ("Category-value-array-single-item.json", ok(&[Permit])),
        ("Category-value-object.json", ok(&[Permit])),
        // Obligations that are not Altinn's authentication level cannot be fulfilled.
        ("Obligation-with-AttributeAssignment.json", ok(&[ObligationNotMet])),
        (
            "Obligations-value-array-multiple-items-without-AttributeAssignment.json",
            ok(&[ObligationNotMet]),
        ),
        ("PolicyIdentifierList-value-Policy(Set)IdReference-array-empty.json", ok(&[Permit])),
        ("PolicyIdentifierList-value-PolicyIdReference-single.json", ok(&[Permit])),
        ("PolicyIdentifierList-value-object-empty.json", ok(&[Permit])),
        ("StatusCode-nested.json", ok(&[Permit])),
        ("StatusCode-ok.json", ok(&[Permit])),
        ("multiple-Decisions.json", ok(&[Permit, Deny])),
        ("spec-8.2-response-example.json", ok(&[Permit])),
    ];
    check_all("vectors/authzforce-xacml-json/responses/valid", &expected);
}

#[test]
fn authzforce_invalid_vectors() {
    // Schema-invalid responses. Unknown members are tolerated (Altinn adds its own), but
    // nothing here may authorize more than its content says.
    let expected = [
        ("AttributeAssignment-additional-property.json", ok(&[ObligationNotMet])),
        ("Decision-value-invalid.json", ok(&[Indeterminate])),
        ("IdReference-additional-property.json", ok(&[Permit])),
        ("Obligation-additional-property.json", ok(&[ObligationNotMet])),
        ("Obligations-value-array-empty.json", ok(&[Permit])),
        ("PolicyIdentifierList-additional-property.json", ok(&[Permit])),
        // No results at all: the single path says malformed (wrong count).
        ("Response-value-array-empty.json", ok(&[])),
        ("Response-value-array-item-empty-object.json", MALFORMED),
        ("Response-value-null.json", MALFORMED),
        ("Result-additional-property.json", ok(&[Permit])),
        ("additional-property.json", ok(&[Permit])),
    ];
    check_all("vectors/authzforce-xacml-json/responses/invalid", &expected);
}

fn key(subject: &str, action: &str, resource: &str, org: &str) -> DecisionKey {
    DecisionKey {
        subject: subject.parse().unwrap(),
        action: Action::new(action).unwrap(),
        resource: ResourceId::new(resource).unwrap(),
        party: Party::Organisation(org.parse().unwrap()),
    }
}

fn results(rel: &str) -> Vec<Value> {
    parse_response(&std::fs::read(shared(rel)).unwrap()).unwrap()
}

const SU: &str = "47caea5b-a80b-4343-b1d3-31eb523a4e28";

#[test]
fn multi_results_are_mapped_by_echoed_categories() {
    let r = results("samples/pdp-response-systemuser-multirequest-permit.json");
    let k1 = key(SU, "read", "ttd-externalpdp-resource1", "910459880");
    let k2 = key(SU, "read", "ttd-externalpdp-resource2", "910459880");
    assert_eq!(multi(&r, &[k1.clone(), k2.clone()]).unwrap(), vec![Permit, Permit]);
    assert_eq!(multi(&r, &[k2.clone(), k1.clone()]).unwrap(), vec![Permit, Permit]);

    // Make the second result a Deny: the mapping must follow the categories, not positions.
    let mut r2 = r.clone();
    r2[1]["decision"] = json!("Deny");
    assert_eq!(multi(&r2, &[k1.clone(), k2.clone()]).unwrap(), vec![Permit, Deny]);
    assert_eq!(multi(&r2, &[k2.clone(), k1.clone()]).unwrap(), vec![Deny, Permit]);
    let mut swapped = r2.clone();
    swapped.swap(0, 1);
    assert_eq!(multi(&swapped, &[k1.clone(), k2.clone()]).unwrap(), vec![Permit, Deny]);

    // Wrong count, duplicates, answers to questions not asked: malformed.
    let kind = |res: Result<Vec<Decision>, PdpError>| res.unwrap_err().kind();
    assert_eq!(kind(multi(&r[..1], &[k1.clone(), k2.clone()])), PdpErrorKind::Malformed);
    assert_eq!(
        kind(multi(&[r[0].clone(), r[0].clone()], &[k1.clone(), k2.clone()])),
        PdpErrorKind::Malformed
    );
    let k3 = key(SU, "write", "ttd-externalpdp-resource2", "910459880");
    assert_eq!(kind(multi(&r, &[k1.clone(), k3])), PdpErrorKind::Malformed);
    let mut no_cat = r.clone();
    no_cat[1]["category"] = Value::Null;
    assert_eq!(kind(multi(&no_cat, &[k1, k2])), PdpErrorKind::Malformed);
}

#[test]
fn multi_vectors_that_cannot_be_mapped_are_malformed() {
    // The subject is not echoed here, so no result can be tied to a system-user question.
    let r = results("vectors/altinn-pdp/responses/AltinnResourceRegistryMulti0012Response.json");
    let keys = [
        key(SU, "read", "ttd-externalpdp-resource1", "310702641"),
        key(SU, "read", "ttd-externalpdp-resource1", "950474084"),
        key(SU, "read", "ttd-externalpdp-resource3", "950474084"),
        key(SU, "read", "ttd-externalpdp-resource3", "910459880"),
    ];
    assert_eq!(multi(&r, &keys).unwrap_err().kind(), PdpErrorKind::Malformed);

    // Parties given as party uuid / party id are not parties we ask about.
    let r = results("vectors/altinn-pdp/responses/ResourceRegistry_SystemUser_WithAccessPackage_MultiRequest_PermitResponse.json");
    let su = "e2eba2c3-b369-4ff9-8418-99a810d6bb58";
    let keys = [
        key(su, "read", "ttd-accesspackage-resource", "314242726"),
        key(su, "read", "ttd-accesspackage-resource", "310702641"),
        key(su, "read", "ttd-accesspackage-resource", "923609016"),
    ];
    assert_eq!(multi(&r, &keys).unwrap_err().kind(), PdpErrorKind::Malformed);

    // Two results that echo only the action.
    let r = results("vectors/authzforce-xacml-json/responses/valid/multiple-Decisions.json");
    let keys = [
        key(SU, "read", "resource-a", "910459880"),
        key(SU, "write", "resource-a", "910459880"),
    ];
    assert_eq!(multi(&r, &keys).unwrap_err().kind(), PdpErrorKind::Malformed);
}

#[test]
fn multi_vectors_with_mixed_obligation_levels() {
    // Both results of the system-user multi-request vector, mapped back by their categories.
    let r = results("vectors/altinn-pdp/responses/ResourceRegistry_SystemUserWithDelegations_MultiRequest_PermitResponse.json");
    let keys: Vec<DecisionKey> = r.iter().map(|x| echoed_key(x).unwrap().expect("mappable")).collect();
    assert_eq!(multi(&r, &keys).unwrap(), vec![Permit, Permit]);

    // The user-delegation multi-request vector (levels 4+3, then 2), with its categories
    // rewritten to system-user questions: each verdict follows its own result.
    let mut r = results("vectors/altinn-pdp/responses/DelegationPolicyMultiRequest_AltinnAppsOrg1App1AndApp2_UserDelegationResponse.json");
    let echo = |resource: &str| {
        json!([
            {"categoryId": "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject",
             "attribute": [{"attributeId": "urn:altinn:systemuser:uuid", "value": SU}]},
            {"categoryId": "urn:oasis:names:tc:xacml:3.0:attribute-category:action",
             "attribute": [{"attributeId": "urn:oasis:names:tc:xacml:1.0:action:action-id", "value": "read"}]},
            {"categoryId": "urn:oasis:names:tc:xacml:3.0:attribute-category:resource",
             "attribute": [{"attributeId": "urn:altinn:resource", "value": resource},
                           {"attributeId": "urn:altinn:organization:identifier-no", "value": "910459880"}]},
        ])
    };
    r[0]["category"] = echo("app_org1_app1");
    r[1]["category"] = echo("app_org1_app2");
    let app1 = key(SU, "read", "app_org1_app1", "910459880");
    let app2 = key(SU, "read", "app_org1_app2", "910459880");
    assert_eq!(multi(&r, &[app1.clone(), app2.clone()]).unwrap(), vec![ObligationNotMet, Permit]);
    assert_eq!(multi(&r, &[app2, app1]).unwrap(), vec![Permit, ObligationNotMet]);
}

#[test]
fn samples() {
    let r = results("samples/pdp-response-permit-obligations.tt02.json");
    assert_eq!(single(&r), Ok(Permit));
    let r = results("samples/pdp-response-indeterminate-processing-error.json");
    assert_eq!(single(&r), Ok(Indeterminate));
    let r = results("samples/pdp-response-systemuser-multirequest-permit.json");
    assert_eq!(single(&r).unwrap_err().kind(), PdpErrorKind::Malformed);
}

fn eval(v: Value) -> Result<Decision, PdpErrorKind> {
    evaluate(&v).map_err(|e| e.kind())
}

fn level(category: &str, value: Value) -> Value {
    json!({"decision": "Permit", "obligations": [{"id": "urn:altinn:obligation:x", "attributeAssignment": [
        {"attributeId": "a", "category": category, "value": value, "dataType": "http://www.w3.org/2001/XMLSchema#integer"}]}]})
}

#[test]
fn obligation_levels() {
    for (v, want) in [
        (json!("0"), Permit),
        (json!("2"), Permit),
        (json!("3"), Permit),
        (json!(3), Permit),
        (json!("4"), ObligationNotMet),
        (json!(4), ObligationNotMet),
        (json!("-1"), ObligationNotMet),
        (json!(-1), ObligationNotMet),
        (json!("3.0"), ObligationNotMet),
        (json!(3.0), ObligationNotMet),
        (json!(" 3"), ObligationNotMet),
        (json!("+3"), ObligationNotMet),
        (json!(""), ObligationNotMet),
        (json!("three"), ObligationNotMet),
        (json!(true), ObligationNotMet),
        (json!(null), ObligationNotMet),
        (json!("99999999999999999999999"), ObligationNotMet),
    ] {
        assert_eq!(eval(level(MIN_AUTH_LEVEL, v.clone())), Ok(want), "{v}");
        assert_eq!(eval(level(MIN_AUTH_LEVEL_ORG, v.clone())), Ok(want), "-org {v}");
    }
    assert_eq!(eval(level("urn:altinn:something-else", json!("1"))), Ok(ObligationNotMet));
    let mut wrong_type = level(MIN_AUTH_LEVEL, json!("2"));
    wrong_type["obligations"][0]["attributeAssignment"][0]["dataType"] = json!("http://www.w3.org/2001/XMLSchema#string");
    assert_eq!(eval(wrong_type), Ok(ObligationNotMet));
    let mut no_type = level(MIN_AUTH_LEVEL, json!("2"));
    no_type["obligations"][0]["attributeAssignment"][0]["dataType"] = Value::Null;
    assert_eq!(eval(no_type), Ok(Permit));
    // One unmet assignment among met ones spoils the obligation.
    let mut mixed = level(MIN_AUTH_LEVEL, json!("2"));
    mixed["obligations"][0]["attributeAssignment"]
        .as_array_mut()
        .unwrap()
        .push(json!({"category": MIN_AUTH_LEVEL_ORG, "value": "4"}));
    assert_eq!(eval(mixed), Ok(ObligationNotMet));
    // Obligations as a non-array, an obligation without assignments or not an object.
    assert_eq!(
        eval(json!({"decision": "Permit", "obligations": {"id": "x"}})),
        Ok(ObligationNotMet)
    );
    assert_eq!(
        eval(json!({"decision": "Permit", "obligations": [{"id": "x", "attributeAssignment": []}]})),
        Ok(ObligationNotMet)
    );
    assert_eq!(eval(json!({"decision": "Permit", "obligations": ["x"]})), Ok(ObligationNotMet));
    // Obligations are irrelevant to a Deny.
    assert_eq!(eval(json!({"decision": "Deny", "obligations": [{"id": "x"}]})), Ok(Deny));
    // Advice is ignored.
    assert_eq!(eval(json!({"decision": "Permit", "associateAdvice": [{"id": "x"}]})), Ok(Permit));
}

#[test]
fn decisions_and_status() {
    assert_eq!(eval(json!({"decision": "Permit"})), Ok(Permit));
    assert_eq!(eval(json!({"Decision": "Permit", "Status": null})), Ok(Permit));
    for d in ["permit", "PERMIT", "Permit ", "Allow", "", "Indeterminate{P}"] {
        assert_eq!(eval(json!({"decision": d})), Ok(Indeterminate), "{d}");
    }
    assert_eq!(eval(json!({"decision": true})), Ok(Indeterminate));
    assert_eq!(eval(json!({"decision": ["Permit"]})), Ok(Indeterminate));
    assert_eq!(eval(json!({"decision": "Deny"})), Ok(Deny));
    assert_eq!(eval(json!({"decision": "NotApplicable"})), Ok(NotApplicable));
    assert_eq!(eval(json!({"decision": "Indeterminate"})), Ok(Indeterminate));
    assert_eq!(eval(json!({})), Err(PdpErrorKind::Malformed));
    assert_eq!(eval(json!({"decision": null})), Err(PdpErrorKind::Malformed));
    assert_eq!(eval(json!("Permit")), Err(PdpErrorKind::Malformed));
    assert_eq!(
        eval(json!({"decision": "Deny", "Decision": "Permit"})),
        Err(PdpErrorKind::Malformed)
    );

    let with_status = |status: Value| eval(json!({"decision": "Permit", "status": status}));
    assert_eq!(with_status(json!({"statusCode": {"value": STATUS_OK}})), Ok(Permit));
    assert_eq!(
        with_status(json!({"statusCode": {"value": STATUS_OK, "statusCode": null}})),
        Ok(Permit)
    );
    assert_eq!(
        with_status(json!({"statusCode": {"value": "urn:oasis:names:tc:xacml:1.0:status:processing-error"}})),
        Ok(Indeterminate)
    );
    assert_eq!(
        with_status(json!({"statusCode": {"value": "urn:oasis:names:tc:xacml:1.0:status:OK"}})),
        Ok(Indeterminate)
    );
    assert_eq!(
        with_status(json!({"statusCode": {"value": STATUS_OK, "statusCode": {"value": "urn:x"}}})),
        Ok(Indeterminate)
    );
    assert_eq!(with_status(json!({"statusCode": null})), Ok(Indeterminate));
    assert_eq!(with_status(json!({"statusMessage": "fine"})), Ok(Indeterminate));
    assert_eq!(with_status(json!({"statusCode": {"value": 0}})), Ok(Indeterminate));
    assert_eq!(with_status(json!("ok")), Ok(Indeterminate));
}

#[test]
fn only_permit_authorizes() {
    assert!(Permit.is_permit());
    for d in [Deny, NotApplicable, Indeterminate, ObligationNotMet] {
        assert!(!d.is_permit(), "{d:?}");
    }
}
