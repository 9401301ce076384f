//! The table checked row by row: against itself, against the module docs, and by rendering
//! every kind.

use super::*;
use std::collections::HashSet;

const PROBLEM_PREFIX: &str = "urn:altinn-systemuser:problem:";

fn slug(kind: RejectionKind) -> &'static str {
    kind.problem_type()
        .strip_prefix(PROBLEM_PREFIX)
        .unwrap_or_else(|| panic!("{kind:?}"))
}

/// gRPC code names, from the gRPC status code list (not from our constants).
fn grpc_name(code: u8) -> &'static str {
    match code {
        3 => "INVALID_ARGUMENT",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        16 => "UNAUTHENTICATED",
        c => panic!("gRPC code {c} is not one the layers use"),
    }
}

#[test]
fn every_kind_answers_as_pinned() {
    // An independent list, pinned from the 0.1 table (which the README documents): a change to any
    // status, gRPC code, problem type or title (which clients may match on) fails here.
    use RejectionKind as K;
    let pinned: &[(RejectionKind, u16, u8, &str, &str)] = &[
        (K::MissingToken, 401, 16, "missing-token", "A bearer token is required"),
        (
            K::MalformedAuthorization,
            400,
            16,
            "malformed-authorization",
            "The Authorization header is malformed",
        ),
        (K::MalformedToken, 401, 16, "malformed-token", "The token is not a well-formed JWT"),
        (
            K::UnsupportedAlgorithm,
            401,
            16,
            "unsupported-algorithm",
            "The token's signature algorithm is not accepted",
        ),
        (
            K::UnsupportedTokenHeader,
            401,
            16,
            "unsupported-token-header",
            "The token's header is not accepted",
        ),
        (
            K::UnknownSigningKey,
            401,
            16,
            "unknown-signing-key",
            "The token was not signed by a known key of the issuer",
        ),
        (
            K::InvalidSignature,
            401,
            16,
            "invalid-signature",
            "The token's signature is invalid",
        ),
        (
            K::WrongIssuer,
            401,
            16,
            "wrong-issuer",
            "The token was not issued by the expected issuer",
        ),
        (K::TokenExpired, 401, 16, "token-expired", "The token has expired"),
        (K::TokenNotYetValid, 401, 16, "token-not-yet-valid", "The token is not valid yet"),
        (K::WrongAudience, 401, 16, "wrong-audience", "The token is not meant for this API"),
        (
            K::TokenLifetimeTooLong,
            401,
            16,
            "token-lifetime-too-long",
            "The token's lifetime is longer than allowed",
        ),
        (K::InvalidClaims, 401, 16, "invalid-claims", "The token's claims are invalid"),
        (
            K::InvalidSystemUser,
            401,
            16,
            "invalid-system-user",
            "The token's system user is malformed",
        ),
        (
            K::InsufficientScope,
            403,
            7,
            "insufficient-scope",
            "The token lacks a required scope",
        ),
        (
            K::KeysUnavailable,
            503,
            14,
            "keys-unavailable",
            "The token cannot be checked right now",
        ),
        (K::LayerMissing, 500, 13, "server-misconfigured", "The server is misconfigured"),
        (
            K::NotASystemUser,
            403,
            7,
            "not-a-system-user",
            "The token does not carry a system user",
        ),
        (K::InvalidParty, 400, 3, "invalid-party", "The party in the request is not valid"),
        (
            K::InvalidTarget,
            400,
            3,
            "invalid-target",
            "The requested resource or action is not valid",
        ),
        (K::Denied, 403, 7, "access-denied", "The system user is denied this access"),
        (
            K::NotApplicable,
            403,
            7,
            "access-not-granted",
            "The system user has not been granted this access",
        ),
        (K::Indeterminate, 403, 7, "access-indeterminate", "Access could not be determined"),
        (
            K::ObligationNotMet,
            403,
            7,
            "obligation-not-met",
            "Access requires conditions this system user does not meet",
        ),
        (
            K::PdpUnavailable,
            503,
            14,
            "authorization-unavailable",
            "Access cannot be decided right now",
        ),
        (
            K::TooManyDecisions,
            429,
            8,
            "too-many-decisions",
            "Too many new access decisions for this system user right now",
        ),
    ];
    assert_eq!(pinned.len(), RejectionKind::ALL.len(), "a kind was added or removed");
    for (i, &(kind, status, grpc, slug, title)) in pinned.iter().enumerate() {
        assert_eq!(RejectionKind::ALL[i], kind, "ALL keeps the documented order");
        assert_eq!(kind.status().as_u16(), status, "{kind:?}");
        assert_eq!(kind.grpc_code(), grpc, "{kind:?}");
        assert_eq!(kind.problem_type(), format!("urn:altinn-systemuser:problem:{slug}"), "{kind:?}");
        assert_eq!(kind.slug(), slug, "{kind:?}");
        assert_eq!(kind.title(), title, "{kind:?}");
    }
}

#[test]
fn every_kind_has_a_distinct_stable_problem_type_and_a_safe_title() {
    let mut slugs = HashSet::new();
    let mut titles = HashSet::new();
    for &k in RejectionKind::ALL {
        let s = slug(k);
        assert!(
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
            "{k:?}: {s}"
        );
        assert!(slugs.insert(s), "{k:?}: slug {s} used twice");
        assert!(titles.insert(k.title()), "{k:?}: title used twice");
        // Titles go into a quoted-string (`error_description`) and, as they are, into
        // `grpc-message`, which is percent-encoded: printable ASCII without `"`, `\` or `%`.
        assert!(
            !k.title().is_empty() && k.title().bytes().all(|b| (b' '..=b'~').contains(&b) && !b"\"\\%".contains(&b)),
            "{k:?}"
        );
    }
}

#[test]
fn http_and_grpc_agree_per_the_documented_mapping() {
    for &k in RejectionKind::ALL {
        let challenged = k.row().challenge != Challenge::None;
        let expect = match k.status().as_u16() {
            401 => 16,
            400 if challenged => 16,
            400 => 3,
            403 => 7,
            429 => 8,
            503 => 14,
            500 => 13,
            s => panic!("{k:?}: unexpected status {s}"),
        };
        assert_eq!(k.grpc_code(), expect, "{k:?}");
        // RFC 6750: a 401 always carries a challenge.
        if k.status() == StatusCode::UNAUTHORIZED {
            assert!(challenged, "{k:?}");
        }
    }
}

/// The module docs' table, row by row: (kind, HTTP, challenge, gRPC, slug) cells.
fn doc_table() -> Vec<Vec<String>> {
    include_str!("../reject.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//! | `"))
        .map(|row| {
            format!("`{row}")
                .trim_end_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

fn leading_number(cell: &str) -> u16 {
    let digits: String = cell.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no number in {cell:?}"))
}

#[test]
fn the_module_docs_table_agrees_with_the_rows() {
    let table = doc_table();
    assert_eq!(table.len(), RejectionKind::ALL.len(), "one documented row per kind");
    for (&k, cells) in RejectionKind::ALL.iter().zip(&table) {
        let [kind, http, challenge, grpc, slug_cell] = cells.as_slice() else {
            panic!("{k:?}: row {cells:?} does not have five cells");
        };
        let name = format!("`{k:?}`");
        assert!(
            kind == &name || kind.starts_with(&format!("{name} ")),
            "{kind} is documented where {k:?} is defined"
        );
        assert_eq!(leading_number(http), k.status().as_u16(), "{k:?}");
        let retried = [StatusCode::SERVICE_UNAVAILABLE, StatusCode::TOO_MANY_REQUESTS].contains(&k.status());
        assert_eq!(http.contains("Retry-After"), retried, "{k:?}");
        let documented = match k.row().challenge {
            Challenge::None => "",
            Challenge::Bare => "(none: bare `Bearer`)",
            Challenge::InvalidRequest => "`invalid_request`",
            Challenge::InvalidToken => "`invalid_token`",
            Challenge::InsufficientScope => "`insufficient_scope` + `scope=`",
        };
        assert_eq!(challenge, documented, "{k:?}");
        assert_eq!(grpc, &format!("{} `{}`", k.grpc_code(), grpc_name(k.grpc_code())), "{k:?}");
        assert_eq!(slug_cell, &format!("`{}`", slug(k)), "{k:?}");
    }
}

#[test]
fn every_kind_renders_a_valid_http_response() {
    for &k in RejectionKind::ALL {
        let res = Rejection::new(k).http_response();
        assert_eq!(res.status(), k.status(), "{k:?}");
        assert_eq!(res.headers()[CONTENT_TYPE], "application/problem+json", "{k:?}");
        assert_eq!(res.headers()[http::header::CACHE_CONTROL], "no-store", "{k:?}");
        let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"type": k.problem_type(), "title": k.title(), "status": k.status().as_u16()}),
            "{k:?}"
        );
        let challenge = res.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_owned());
        let expected = match k.row().challenge {
            Challenge::None => None,
            Challenge::Bare => Some("Bearer".to_owned()),
            Challenge::InvalidRequest => Some(format!("Bearer error=\"invalid_request\", error_description=\"{}\"", k.title())),
            Challenge::InvalidToken => Some(format!("Bearer error=\"invalid_token\", error_description=\"{}\"", k.title())),
            Challenge::InsufficientScope => Some("Bearer error=\"insufficient_scope\"".to_owned()),
        };
        assert_eq!(challenge, expected, "{k:?}");
        assert!(res.headers().get(RETRY_AFTER).is_none(), "{k:?}");
        // A default response is an HTTP response; the same through the responder.
        let via = ProblemResponder.respond(&Rejection::new(k), &HeaderMap::new());
        assert_eq!((via.status(), via.body()), (res.status(), res.body()), "{k:?}");
    }
}

#[test]
fn every_kind_renders_a_valid_grpc_response() {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc+proto"));
    for &k in RejectionKind::ALL {
        let res = Rejection::new(k).to_response(&h);
        assert_eq!(res.status(), StatusCode::OK, "{k:?}");
        assert_eq!(res.headers()[CONTENT_TYPE], "application/grpc", "{k:?}");
        assert_eq!(res.headers()["grpc-status"], k.grpc_code().to_string().as_str(), "{k:?}");
        assert_eq!(res.headers()["grpc-message"], k.title(), "{k:?}");
        // A 200 that no cache may keep, as the HTTP form.
        assert_eq!(res.headers()[http::header::CACHE_CONTROL], "no-store", "{k:?}");
        assert!(res.headers().get(WWW_AUTHENTICATE).is_none(), "{k:?}");
        assert!(res.body().is_empty(), "{k:?}");
    }
}

#[test]
fn scope_and_retry_after_are_rendered() {
    let r = Rejection::new(RejectionKind::InsufficientScope).with_scope(Arc::from("altinn:krav altinn:betaling"));
    assert_eq!(r.required_scope(), Some("altinn:krav altinn:betaling"));
    assert_eq!(
        r.http_response().headers()[WWW_AUTHENTICATE],
        "Bearer error=\"insufficient_scope\", scope=\"altinn:krav altinn:betaling\""
    );
    let r = Rejection::new(RejectionKind::PdpUnavailable).with_retry_after(Duration::from_millis(200));
    assert_eq!(r.retry_after(), Some(Duration::from_millis(200)));
    // Rounded up to a whole second, never 0.
    assert_eq!(r.http_response().headers()[RETRY_AFTER], "1");
    let r = r.with_retry_after(Duration::from_secs(7));
    assert_eq!(r.http_response().headers()[RETRY_AFTER], "7");
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    assert_eq!(r.to_response(&h).headers()[RETRY_AFTER], "7");
}

#[test]
fn a_rejection_is_an_error_that_says_its_title() {
    let r = Rejection::new(RejectionKind::Denied);
    assert_eq!(r.to_string(), "The system user is denied this access");
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(r);
    assert_eq!(e.to_string(), RejectionKind::Denied.title());
}

#[test]
fn grpc_detection_and_shape() {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc+proto"));
    let r = Rejection::new(RejectionKind::Denied).to_response(&h);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["grpc-status"], "7");
    let r = Rejection::new(RejectionKind::Denied).to_response(&HeaderMap::new());
    assert_eq!(r.status(), 403);
    assert!(r.headers().get(WWW_AUTHENTICATE).is_none());
    for (ct, grpc) in [
        ("application/grpc", true),
        ("Application/GRPC+proto", true),
        ("application/json", false),
        ("application/grp", false),
    ] {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        assert_eq!(is_grpc(&h), grpc, "{ct}");
    }
    assert!(!is_grpc(&HeaderMap::new()));
}

fn headers(content_type: Option<&'static str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(ct) = content_type {
        h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    h
}

/// Whether a response is the gRPC form (HTTP 200 with `grpc-status`) or the HTTP form.
fn is_grpc_form(res: &Response<Bytes>) -> bool {
    let grpc = res.headers().contains_key("grpc-status");
    assert_eq!(grpc, res.status() == StatusCode::OK, "{res:?}");
    assert_eq!(
        res.headers()[CONTENT_TYPE],
        if grpc { "application/grpc" } else { "application/problem+json" }
    );
    assert_eq!(res.headers()[http::header::CACHE_CONTROL], "no-store");
    grpc
}

#[test]
fn the_refusal_form_decides_whatever_the_request_says() {
    let requests = [
        (headers(None), false),
        (headers(Some("application/json")), false),
        (headers(Some("application/grpc")), true),
        (headers(Some("Application/GRPC+proto")), true),
        (headers(Some("application/grpc-web")), true),
    ];
    for &k in RejectionKind::ALL {
        for (h, says_grpc) in &requests {
            // Auto: chosen per request, as before the forms existed.
            let auto = Rejection::new(k);
            assert_eq!(auto.form(), RefusalForm::Auto);
            assert_eq!(is_grpc_form(&auto.to_response(h)), *says_grpc, "{k:?}");
            assert_eq!(is_grpc_form(&auto.clone().with_form(RefusalForm::Auto).to_response(h)), *says_grpc);
            // HTTP-only: never a 200, whatever the content type.
            let http = Rejection::new(k).with_form(RefusalForm::Http);
            assert_eq!(http.form(), RefusalForm::Http);
            let res = http.to_response(h);
            assert!(!is_grpc_form(&res), "{k:?}");
            assert_eq!(res.status(), k.status(), "{k:?}");
            // gRPC-only: always a grpc-status.
            let grpc = Rejection::new(k).with_form(RefusalForm::Grpc);
            let res = grpc.to_response(h);
            assert!(is_grpc_form(&res), "{k:?}");
            assert_eq!(res.headers()["grpc-status"], k.grpc_code().to_string().as_str(), "{k:?}");
        }
    }
}

#[test]
fn refusal_form_is_grpc() {
    for (h, says_grpc) in [(headers(None), false), (headers(Some("application/grpc")), true)] {
        assert_eq!(RefusalForm::Auto.is_grpc(&h), says_grpc);
        assert!(!RefusalForm::Http.is_grpc(&h));
        assert!(RefusalForm::Grpc.is_grpc(&h));
    }
    assert_eq!(RefusalForm::default(), RefusalForm::Auto);
}

#[test]
fn render_gives_the_layers_form_to_the_responder_and_the_extensions() {
    let grpc_request = headers(Some("application/grpc"));
    for form in [RefusalForm::Auto, RefusalForm::Http, RefusalForm::Grpc] {
        // The default responder answers in the layer's form.
        let res = render(&ProblemResponder, form, Rejection::new(RejectionKind::MissingToken), &grpc_request);
        assert_eq!(is_grpc_form(&res), form != RefusalForm::Http, "{form:?}");
        let seen = res.extensions().get::<Rejection>().expect("the rejection is in the extensions");
        assert_eq!(seen.form(), form);
        assert_eq!(seen.kind(), RejectionKind::MissingToken);
        // A custom responder is told the form.
        let custom = |r: &Rejection, _: &HeaderMap| {
            let mut res = Response::new(Bytes::from(format!("{:?}", r.form())));
            *res.status_mut() = StatusCode::IM_A_TEAPOT;
            res
        };
        let res = render(&custom, form, Rejection::new(RejectionKind::Denied), &grpc_request);
        assert_eq!(res.body(), format!("{form:?}").as_str());
    }
}
