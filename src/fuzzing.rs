//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not part of the API, not
//! semver-stable, hidden from the docs).
//!
//! Each function takes the fuzzer's bytes, runs one of the crate's readers of untrusted input
//! exactly as the layers run it, and panics only when an invariant that must hold for every
//! input is broken (a panic is what libFuzzer reports). The readers themselves must never panic,
//! allocate without bound or loop: that is what the targets look for.
//!
//! | target | untrusted bytes | reader |
//! |---|---|---|
//! | [`authorization_header`] | an `Authorization` header value | `bearer`, `b64token`, `Validator::parse`, then a signature check that must fail |
//! | [`signed_token`] | a JWS header and payload, signed here | everything from the header value to verified claims |
//! | [`key_documents`] | a JWKS, RFC 8414 metadata, a `Cache-Control` value | `parse_jwks`, `jwks_uri_from_metadata`, `max_age` |
//! | [`pdp_answer`] | a PDP response body | `parse_response`, `decision::single`, `decision::multi` |
//! | [`party`] | a party, organisation number or path | the strict and lenient parsers, path templates |

use crate::maskinporten::TokenIssuer;
use crate::maskinporten::algorithm::Algorithm;
use crate::maskinporten::jwk::{VerifyingKey, parse_jwk, parse_jwks};
use crate::maskinporten::key_store::{jwks_uri_from_metadata, max_age};
use crate::maskinporten::service::{b64token, bearer};
use crate::maskinporten::validate::{AudiencePolicy, Validator, check_signature};
use crate::maskinporten::{MAX_TOKEN_BYTES, MaskinportenToken};
use crate::org::{OrgId, OrgNumber, Organisation, Party, PersonId};
use crate::pdp::request::DecisionKey;
use crate::pdp::{Action, Decision, ResourceId, decision, xacml};
use crate::systemuser::target::PathTemplate;
use crate::test_util::TestKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

/// The issuer the token targets' validator trusts (the issuer of the Maskinporten test samples).
pub const ISSUER: &str = "https://test.maskinporten.no/";
/// The audience required when a target's control byte asks for one.
pub const AUDIENCE: &str = "https://api.example.no/";
/// The `kid` of the targets' key; a token naming another `kid` stops before its signature.
pub const KID: &str = "fuzz";
/// "Now" for the token targets: 2023-11-14T22:13:20Z. Seeds carry times around it.
pub const NOW: i64 = 1_700_000_000;
/// The largest lifetime when a target's control byte asks for a limit.
pub const MAX_LIFETIME: i64 = 120;

/// The targets' RSA key, generated once per process (nothing is committed).
fn key() -> &'static (TestKey, VerifyingKey) {
    static KEY: OnceLock<(TestKey, VerifyingKey)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = TestKey::generate(KID);
        let verifying = parse_jwk(&key.public_jwk()).expect("a freshly generated RSA-2048 key is usable");
        (key, verifying)
    })
}

/// Creates the key now, so that the first input is not charged for it.
pub fn init() {
    key();
}

/// A validator for control byte `ctrl`: bit 0 requires [`AUDIENCE`], bit 1 limits the lifetime to
/// [`MAX_LIFETIME`], bits 2-3 pick a leeway of 0, 5, 30 or 60 s, bits 4-5 the allowed algorithms,
/// bit 6 adds the rules of Altinn-issued tokens.
fn validator(ctrl: u8) -> Validator {
    let algorithms = match (ctrl >> 4) & 3 {
        0 => vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
        1 => vec![Algorithm::RS256],
        2 => vec![Algorithm::RS384, Algorithm::RS512],
        _ => vec![Algorithm::RS512],
    };
    Validator {
        issuer: ISSUER.into(),
        // Bit 6: the checks of Altinn-issued tokens on top.
        kind: if ctrl & 0x40 != 0 {
            TokenIssuer::Altinn
        } else {
            TokenIssuer::Maskinporten
        },
        audience: if ctrl & 1 != 0 {
            AudiencePolicy::Require(vec![AUDIENCE.into()].into())
        } else {
            AudiencePolicy::Unrestricted
        },
        leeway_secs: [0, 5, 30, 60][usize::from((ctrl >> 2) & 3)],
        max_lifetime_secs: (ctrl & 2 != 0).then_some(MAX_LIFETIME),
        algorithms: Validator::allowed_bits(&algorithms),
        max_token_bytes: MAX_TOKEN_BYTES,
    }
}

/// What the Maskinporten layer does with an `Authorization` value, up to the key: the value's
/// shape, the token's shape and header. The key is the targets' own, so that a token that passes
/// is then checked against it; a signature the fuzzer wrote must never verify.
pub fn authorization_header(data: &[u8]) {
    let Some((&ctrl, value)) = data.split_first() else { return };
    // What hyper would not deliver is not a request.
    let Ok(value) = HeaderValue::from_bytes(value) else { return };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    let v = validator(ctrl);
    let Ok(raw) = bearer(&headers, v.max_token_bytes) else { return };
    let Ok(token) = b64token(raw) else { return };
    let Ok(unverified) = v.parse(token) else { return };
    assert!(
        !unverified.kid.is_empty() && unverified.kid.len() <= 256,
        "a kid outside 1..=256 bytes passed"
    );
    assert!(
        v.algorithms & unverified.alg.bit() != 0,
        "an algorithm outside the allow-list passed"
    );
    if check_signature(&unverified, &key().1).is_ok() {
        panic!("an RSA signature written by the fuzzer verified");
    }
}

/// The whole token path with a signature that verifies: `data` is a control byte (see
/// `validator`), the JWS header's JSON, a `0xFF` byte, and the payload's JSON. The target
/// encodes both, signs them with its key (the algorithm the header names when the header
/// passes, RS256 otherwise), and sends `Bearer <token>` through every check. A token that passes
/// must satisfy every claim rule, and the same token with its last signature byte changed must
/// not pass. Returns whether the token passed.
pub fn signed_token(data: &[u8]) -> bool {
    let Some((&ctrl, rest)) = data.split_first() else { return false };
    let (header, payload) = match rest.iter().position(|b| *b == 0xFF) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let v = validator(ctrl);
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    // The header's own algorithm when it passes the pre-signature checks (a placeholder
    // signature stands in); a header that does not pass never reaches the signature.
    let placeholder = format!("{signing_input}.AA");
    let Ok(pre) = v.parse(&placeholder) else { return false };
    let (key, verifying) = key();
    let signature = key.sign_raw(pre.alg.name(), signing_input.as_bytes());
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(&signature));
    let Some(verified) = verify_header_value(&v, &format!("Bearer {token}"), verifying) else {
        return false;
    };
    check_claim_rules(&v, ctrl, &verified);

    let mut forged = signature;
    if let Some(last) = forged.last_mut() {
        *last ^= 1;
    }
    let forged = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(&forged));
    assert!(
        verify_header_value(&v, &format!("Bearer {forged}"), verifying).is_none(),
        "a token with a changed signature passed"
    );
    true
}

/// The Maskinporten layer's checks on one header value, with `key` as the only key.
fn verify_header_value(v: &Validator, value: &str, key: &VerifyingKey) -> Option<MaskinportenToken> {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(value).ok()?);
    let raw = bearer(&headers, v.max_token_bytes).ok()?;
    let unverified = v.parse(b64token(raw).ok()?).ok()?;
    if *unverified.kid != *key.kid() {
        return None;
    }
    v.verify(&unverified, key, NOW).ok()
}

/// The claim rules, restated on the verified token.
fn check_claim_rules(v: &Validator, ctrl: u8, t: &MaskinportenToken) {
    let unix = |at: std::time::SystemTime| match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).expect("a verified time fits i64"),
        Err(_) => panic!("a verified time before 1970"),
    };
    let (iat, exp) = (unix(t.issued_at()), unix(t.expires_at()));
    assert_eq!(t.issuer(), ISSUER, "another issuer passed");
    assert!(NOW < exp + v.leeway_secs, "an expired token passed");
    assert!(iat <= NOW + v.leeway_secs, "a token issued in the future passed");
    assert!(iat <= exp, "a token expiring before it was issued passed");
    if ctrl & 2 != 0 {
        assert!(exp - iat <= MAX_LIFETIME, "a token living too long passed");
    }
    let audience: Vec<&str> = t.audience().collect();
    if ctrl & 1 != 0 {
        assert!(audience.contains(&AUDIENCE), "a token for another audience passed");
    } else {
        assert!(
            audience.is_empty() || audience == ["unspecified"],
            "an audience passed where none is configured"
        );
    }
    if let Some(su) = t.system_user() {
        assert!(
            !su.ids().is_empty() && su.ids()[0] == su.id(),
            "a system user without its id passed"
        );
    }
}

/// The key store's readers: control byte 0 mod 3 a JWKS, 1 RFC 8414 metadata, 2 a
/// `Cache-Control` value.
pub fn key_documents(data: &[u8]) {
    let Some((&ctrl, body)) = data.split_first() else { return };
    match ctrl % 3 {
        0 => {
            let Ok((keys, _skipped)) = parse_jwks(body) else { return };
            for (kid, key) in &keys {
                assert_eq!(&**kid, key.kid(), "a key filed under another kid");
                assert!(!kid.is_empty(), "a key without a kid");
                // A key from the document must not verify what the fuzzer never signed.
                assert!(!key.verify(Algorithm::RS256, b"a.b", &[0u8; 256]), "a zero signature verified");
            }
        }
        1 => {
            if let Ok(uri) = jwks_uri_from_metadata(body, ISSUER) {
                assert!(
                    uri.scheme() == "https" || (uri.scheme() == "http" && crate::error::is_loopback(&uri)),
                    "a jwks_uri that is neither https nor loopback http"
                );
            }
        }
        _ => {
            if let Ok(value) = std::str::from_utf8(body) {
                let _ = max_age(value);
            }
        }
    }
}

/// The PDP client's readers of an answer: `data` is a control byte and the body. The questions
/// asked are the ones the body's results echo, changed as the control byte says (bit 0-1: as
/// echoed, one dropped, one foreign question added, reversed), so that matching succeeds and
/// fails. A Permit must come from a body that says `"Permit"`, and every question gets exactly
/// one decision. Returns the decision of a single-question reading.
pub fn pdp_answer(data: &[u8]) -> Option<Decision> {
    let (&ctrl, body) = data.split_first()?;
    let results = xacml::parse_response(body).ok()?;
    let says_permit = body.windows(8).any(|w| w == b"\"Permit\"");
    let single = decision::single(&results).ok();
    if let Some(d) = single {
        assert!(results.len() == 1, "one decision from {} results", results.len());
        assert!(d != Decision::Permit || says_permit, "Permit from a body that never says Permit");
    }
    let mut keys: Vec<DecisionKey> = results.iter().filter_map(|r| xacml::echoed_key(r).ok().flatten()).collect();
    match ctrl & 3 {
        0 => {}
        1 => {
            keys.pop();
        }
        2 => keys.push(foreign_key()),
        _ => keys.reverse(),
    }
    if let Ok(decisions) = decision::multi(&results, &keys) {
        assert_eq!(decisions.len(), keys.len(), "not one decision per question");
        assert!(
            !decisions.contains(&Decision::Permit) || says_permit,
            "Permit from a body that never says Permit"
        );
    }
    single
}

/// A question no seed echoes.
fn foreign_key() -> DecisionKey {
    DecisionKey {
        subject: uuid::Uuid::nil(),
        action: Action::read(),
        resource: ResourceId::new("fuzz-resource").expect("a valid resource id"),
        party: Party::Organisation(OrgNumber::parse_canonical("310702641").expect("a valid organisation number")),
    }
}

/// The parsers of parties and organisation numbers, strict and lenient, and path templates:
/// `data` is text; when it holds a newline, the first line is a template and the second a path;
/// when it holds a space, an ISO 6523 authority and id. Whatever a parser accepts must spell back
/// to what it read.
pub fn party(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Some((template, path)) = s.split_once('\n') {
        if let Some(t) = PathTemplate::parse(template)
            && let Some(seg) = t.party_segment(path)
        {
            assert!(!seg.contains('/'), "a party segment with a slash");
            let _ = Party::parse_canonical(seg);
        }
        return;
    }
    if let Ok(org) = OrgNumber::parse_canonical(s) {
        assert_eq!(org.to_string(), s, "a canonical organisation number that spells otherwise");
        assert!(check_digit_ok(s), "an organisation number with a wrong check digit");
    }
    if let Ok(org) = OrgNumber::parse(s) {
        let shown = org.to_string();
        assert!(
            s == shown || s.strip_prefix("0192:") == Some(&shown),
            "a lenient read of {s:?} gave {shown}"
        );
    }
    if let Ok(person) = PersonId::parse(s) {
        assert_eq!(person.as_str(), s, "a person identifier that spells otherwise");
    }
    match Party::parse_canonical(s) {
        Ok(Party::Organisation(o)) => assert_eq!(o.to_string(), s),
        Ok(Party::Person(p)) => assert_eq!(p.as_str(), s),
        Err(_) => {}
    }
    if Party::parse(s).is_ok() {
        assert!(
            s.len() == 9 || s.len() == 11 || s.len() == 14,
            "a lenient party of {} bytes",
            s.len()
        );
    }
    if let Some((authority, id)) = s.split_once(' ')
        && let Ok(org) = Organisation::from_iso6523(authority, id)
        && let OrgId::Norwegian(n) = org.id()
    {
        assert_eq!(id, format!("0192:{n}"), "an ISO 6523 id that spells otherwise");
    }
}

/// The mod-11 rule for organisation numbers, written out again.
fn check_digit_ok(s: &str) -> bool {
    let d: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
    let sum: u32 = d[..8].iter().zip([3, 2, 7, 6, 5, 4, 3, 2]).map(|(a, w)| a * w).sum();
    let check = (11 - sum % 11) % 11;
    check != 10 && check == d[8]
}
