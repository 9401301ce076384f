//! The decision listener itself, asked as a proxy asks it, over real HTTP.

use altinn_systemuser::test_util::PdpAnswer;

use crate::harness::{Kind, PERSON, Setup, THIRD_ORG, ask, assert_allowed, assert_refused, raw};
use crate::pep_fakes::{CLIENT_ORG, OWNER_ORG};

#[tokio::test]
async fn an_allowed_request_is_answered_with_the_principal() {
    let s = Setup::start("allowed").await;
    let token = format!("Bearer {}", s.token());
    let auth = [("Authorization", token.as_str())];
    for kind in [Kind::Forwarded, Kind::Original] {
        let r = ask(&s.pep, kind, "GET", &format!("/krav/{CLIENT_ORG}?side=2"), &auth).await;
        assert_allowed(&r, &s.principal(CLIENT_ORG, "read"));
        let r = ask(&s.pep, kind, "HEAD", &format!("/krav/{OWNER_ORG}"), &auth).await;
        assert_allowed(&r, &s.principal(OWNER_ORG, "read"));
        let r = ask(&s.pep, kind, "POST", &format!("/krav/{CLIENT_ORG}"), &auth).await;
        assert_allowed(&r, &s.principal(CLIENT_ORG, "write"));
        // Party: the system user's own organisation.
        let r = ask(&s.pep, kind, "GET", "/whoami", &auth).await;
        assert_allowed(&r, &s.principal(OWNER_ORG, "read"));
        // Party from a header, a person, below a {*rest} template.
        let r = ask(&s.pep, kind, "GET", "/dokumenter/2025/a.pdf", &[auth[0], ("X-Party", PERSON)]).await;
        assert_allowed(&r, &s.principal(PERSON, "read"));
    }
    // Both kinds, agreeing.
    let uri = format!("/krav/{CLIENT_ORG}");
    let both = [auth[0], ("X-Original-Method", "GET"), ("X-Original-URI", uri.as_str())];
    let r = ask(&s.pep, Kind::Forwarded, "GET", &uri, &both).await;
    assert_allowed(&r, &s.principal(CLIENT_ORG, "read"));
}

#[tokio::test]
async fn a_token_without_a_vendor_or_client_id_has_no_such_header() {
    let s = Setup::start("no-vendor").await;
    let token = s
        .fakes
        .mp
        .system_user_token(s.system_user, OWNER_ORG)
        .scope(crate::pep_fakes::SCOPE)
        .remove_claim("consumer")
        .remove_claim("client_id")
        .sign();
    let bearer = format!("Bearer {token}");
    let r = ask(&s.pep, Kind::Original, "GET", "/whoami", &[("Authorization", &bearer)]).await;
    let principal: Vec<_> = s
        .principal(OWNER_ORG, "read")
        .into_iter()
        .filter(|(n, _)| n != "x-altinn-vendor-org" && n != "x-altinn-client-id")
        .collect();
    assert_allowed(&r, &principal);
}

#[tokio::test]
async fn refusals_are_the_layers_answers_in_http_form() {
    let s = Setup::start("refusals").await;
    let token = format!("Bearer {}", s.token());
    let krav = format!("/krav/{CLIENT_ORG}");

    // No token, whatever the content type: 401 with the challenge, never a gRPC-shaped 200.
    for ct in [
        "application/json",
        "application/grpc",
        "application/grpc+proto",
        "application/grpc-web",
    ] {
        let r = ask(&s.pep, Kind::Forwarded, "POST", &krav, &[("Content-Type", ct)]).await;
        assert_refused(&r, 401, "missing-token");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        assert_eq!(r.header("grpc-status"), None);
    }
    // A broken signature.
    let broken = {
        let t = s.token();
        let (rest, sig) = t.rsplit_once('.').unwrap();
        format!("Bearer {rest}.{}{}", if sig.starts_with('A') { "B" } else { "A" }, &sig[1..])
    };
    let r = ask(
        &s.pep,
        Kind::Original,
        "GET",
        &krav,
        &[("Authorization", &broken), ("Content-Type", "application/grpc")],
    )
    .await;
    assert_refused(&r, 401, "invalid-signature");
    assert!(r.header("www-authenticate").unwrap().contains("invalid_token"));
    // The wrong scope.
    let other_scope = format!(
        "Bearer {}",
        s.fakes.mp.system_user_token(s.system_user, OWNER_ORG).scope("other:scope").sign()
    );
    let r = ask(&s.pep, Kind::Original, "GET", &krav, &[("Authorization", &other_scope)]).await;
    assert_refused(&r, 403, "insufficient-scope");
    assert!(r.header("www-authenticate").unwrap().contains("insufficient_scope"));
    // The PDP does not grant it.
    let r = ask(
        &s.pep,
        Kind::Original,
        "GET",
        &format!("/krav/{THIRD_ORG}"),
        &[("Authorization", &token)],
    )
    .await;
    assert_refused(&r, 403, "access-not-granted");
    // A party in another spelling.
    let r = ask(&s.pep, Kind::Original, "GET", "/krav/0192:923609016", &[("Authorization", &token)]).await;
    assert_refused(&r, 400, "invalid-party");
    // Write where only read is granted.
    let r = ask(
        &s.pep,
        Kind::Original,
        "POST",
        &format!("/krav/{OWNER_ORG}"),
        &[("Authorization", &token)],
    )
    .await;
    assert_refused(&r, 403, "access-not-granted");

    // Allowed, and now cached.
    let r = ask(&s.pep, Kind::Original, "GET", &krav, &[("Authorization", &token)]).await;
    assert_allowed(&r, &s.principal(CLIENT_ORG, "read"));

    // The PDP failing: 503 with Retry-After for a new question.
    s.fakes.altinn.set_answer(PdpAnswer::Raw {
        status: 503,
        headers: vec![("Retry-After".into(), "3".into())],
        body: String::new(),
    });
    let r = ask(&s.pep, Kind::Forwarded, "DELETE", &krav, &[("Authorization", &token)]).await;
    // DELETE is not in the example's routes: decided before any PDP call.
    assert_refused(&r, 403, "no-matching-route");
    let r = ask(
        &s.pep,
        Kind::Forwarded,
        "HEAD",
        &format!("/krav/{CLIENT_ORG}"),
        &[("Authorization", &token)],
    )
    .await;
    // HEAD and GET ask the same question: cached, still allowed while the PDP fails.
    assert_allowed(&r, &s.principal(CLIENT_ORG, "read"));
    let r = ask(
        &s.pep,
        Kind::Forwarded,
        "GET",
        "/dokumenter/x",
        &[("Authorization", &token), ("X-Party", OWNER_ORG)],
    )
    .await;
    assert_refused(&r, 503, "authorization-unavailable");
    assert!(r.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok()), "{r:?}");
}

#[tokio::test]
async fn too_many_new_questions_are_429_with_retry_after() {
    let s = Setup::start_with("too-many", |c| {
        c.replace(
            "subscription_key = { env = \"ALTINN_SUBSCRIPTION_KEY\" }",
            "subscription_key = { env = \"ALTINN_SUBSCRIPTION_KEY\" }\ndecision_rate_limit = { per_second = 1, burst = 1 }",
        )
    })
    .await;
    let token = format!("Bearer {}", s.token());
    let auth = [("Authorization", token.as_str())];
    let r = ask(&s.pep, Kind::Original, "GET", &format!("/krav/{CLIENT_ORG}"), &auth).await;
    assert_eq!(r.status, 200);
    let r = ask(&s.pep, Kind::Original, "GET", &format!("/krav/{OWNER_ORG}"), &auth).await;
    assert_refused(&r, 429, "too-many-decisions");
    assert!(r.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok_and(|n| n >= 1)));
}

/// Requests the decision listener must refuse with 400 whatever the token: it cannot know
/// which request it would be allowing.
#[tokio::test]
async fn an_original_request_that_cannot_be_read_safely_is_400() {
    let s = Setup::start("bad-forwarded").await;
    let token = format!("Bearer {}", s.token());
    let t = ("Authorization", token.as_str());
    let krav = format!("/krav/{CLIENT_ORG}");
    let k = krav.as_str();
    let header_cases: Vec<Vec<(&str, &str)>> = vec![
        vec![t],
        vec![t, ("X-Forwarded-Method", "GET")],
        vec![t, ("X-Forwarded-Uri", k)],
        vec![t, ("X-Original-Method", "GET")],
        vec![t, ("X-Original-URI", k)],
        vec![t, ("X-Forwarded-Method", "GET"), ("X-Original-URI", k)],
        vec![t, ("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", k), ("X-Original-URI", k)],
        // Both kinds, disagreeing on the URI or on the method.
        vec![
            t,
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", k),
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/whoami"),
        ],
        vec![
            t,
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", k),
            ("X-Original-Method", "POST"),
            ("X-Original-URI", k),
        ],
        // A principal header spelt with underscores, next to a good token and original.
        vec![
            t,
            ("X-Original-Method", "GET"),
            ("X-Original-URI", k),
            ("X_Altinn_Party", "310702641"),
        ],
        vec![
            t,
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", k),
            ("x-altinn_action", "write"),
        ],
        // Repeated.
        vec![t, ("X-Original-Method", "GET"), ("X-Original-URI", k), ("X-Original-URI", k)],
        vec![t, ("X-Original-Method", "GET"), ("X-Original-Method", "GET"), ("X-Original-URI", k)],
    ];
    for headers in &header_cases {
        let r = raw(&s.pep.decision, "GET", "/auth", headers).await;
        assert_refused(&r, 400, "invalid-forwarded-request");
        assert!(r.json()["detail"].is_string());
    }
    for uri in [
        "/krav/../whoami",
        "/whoami/..",
        "/krav/923609016/..%2F..%2Fwhoami",
        "/krav//923609016",
        "//whoami",
        "/krav%2F923609016",
        "/krav%2f923609016",
        "/krav;a=b/923609016",
        "/krav/923609016;jsessionid=1",
        "/krav/./923609016",
        "/krav/%2E%2E/whoami",
        "/krav\\923609016",
        "krav/923609016",
        "http://api.example/krav/923609016",
        "/krav/923609016#x",
        "/krav/%",
    ] {
        for kind in [Kind::Forwarded, Kind::Original] {
            let r = ask(&s.pep, kind, "GET", uri, &[t]).await;
            assert_refused(&r, 400, "invalid-forwarded-request");
        }
    }
    // Nothing reached the PDP.
    assert_eq!(s.fakes.altinn.pdp_request_count(), 0);
}

#[tokio::test]
async fn a_request_no_route_matches_is_403_without_asking_the_pdp() {
    let s = Setup::start("no-route").await;
    let token = format!("Bearer {}", s.token());
    let t = [("Authorization", token.as_str())];
    for (method, uri) in [
        ("GET", "/"),
        ("GET", "/krav"),
        ("GET", "/krav/"),
        ("GET", "/krav/923609016/"),
        ("GET", "/krav/923609016/saker"),
        ("GET", "/KRAV/923609016"),
        ("GET", "/kr%61v/923609016"),
        ("DELETE", "/krav/923609016"),
        ("PUT", "/krav/923609016"),
        ("OPTIONS", "/krav/923609016"),
        ("POST", "/whoami"),
        ("GET", "/dokumenter"),
        ("GET", "/dokumenter/"),
        ("get", "/whoami"),
    ] {
        let r = ask(&s.pep, Kind::Forwarded, method, uri, &t).await;
        assert_refused(&r, 403, "no-matching-route");
        // Without a token too: deny by default comes first.
        let r = ask(&s.pep, Kind::Original, method, uri, &[]).await;
        assert_refused(&r, 403, "no-matching-route");
    }
    assert_eq!(s.fakes.altinn.pdp_request_count(), 0);
}

#[tokio::test]
async fn the_decision_listener_answers_get_auth_only() {
    let s = Setup::start("only-auth").await;
    let token = format!("Bearer {}", s.token());
    let krav = format!("/krav/{CLIENT_ORG}");
    let allowed = [
        ("Authorization", token.as_str()),
        ("X-Original-Method", "GET"),
        ("X-Original-URI", krav.as_str()),
    ];
    // The same headers that are allowed on GET /auth...
    assert_eq!(raw(&s.pep.decision, "GET", "/auth", &allowed).await.status, 200);
    // ...on anything else are 404.
    for (method, path) in [
        ("POST", "/auth"),
        ("PUT", "/auth"),
        ("HEAD", "/auth"),
        ("OPTIONS", "/auth"),
        ("GET", "/auth/"),
        ("GET", "/Auth"),
        ("GET", "/auth/x"),
        ("GET", "//auth"),
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/krav/923609016"),
    ] {
        let r = raw(&s.pep.decision, method, path, &allowed).await;
        assert_eq!(r.status, 404, "{method} {path}");
        for h in crate::harness::PRINCIPAL_HEADERS {
            assert_eq!(r.header(h), None);
        }
        if method != "HEAD" {
            assert_refused(&r, 404, "not-found");
        }
    }
    // A query on /auth is ignored (Caddy passes the original query on).
    assert_eq!(raw(&s.pep.decision, "GET", "/auth?x=1", &allowed).await.status, 200);
}

#[tokio::test]
async fn health_readiness_and_metrics_are_on_the_admin_listener() {
    let s = Setup::start("admin").await;
    let token = format!("Bearer {}", s.token());
    let r = ask(&s.pep, Kind::Original, "GET", "/whoami", &[("Authorization", &token)]).await;
    assert_eq!(r.status, 200);
    let _ = ask(&s.pep, Kind::Original, "GET", "/nope", &[]).await;

    let r = raw(&s.pep.admin, "GET", "/healthz", &[]).await;
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));
    let r = raw(&s.pep.admin, "GET", "/readyz", &[]).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "ready");
    assert_eq!(r.json()["checks"]["pdp"], "ok");
    let r = raw(&s.pep.admin, "GET", "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body);
    for series in [
        "altinn_systemuser_requests_total{layer=\"systemuser\",outcome=\"allowed\",reason=\"ok\"} 1",
        "altinn_pep_refusals_total{reason=\"no-matching-route\"} 1",
        "altinn_systemuser_pdp_requests_total{result=\"permit\"}",
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }
    // The admin listener decides nothing.
    let r = raw(
        &s.pep.admin,
        "GET",
        "/auth",
        &[
            ("Authorization", &token),
            ("X-Original-Method", "GET"),
            ("X-Original-URI", "/whoami"),
        ],
    )
    .await;
    assert_eq!(r.status, 404);

    // Not ready when the PDP credentials fail (a fresh process: the result is kept 10 s).
    drop(s);
    let s = Setup::start("admin-not-ready").await;
    s.fakes.mp.set_token_mode(altinn_systemuser::test_util::EndpointMode::Status(500));
    let r = raw(&s.pep.admin, "GET", "/readyz", &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], "not_ready");
    assert!(r.json()["checks"]["pdp"].as_str().unwrap().contains("grant"), "{}", r.json());
}

/// With `[maskinporten.altinn_tokens]`, an Altinn-issued token is allowed with
/// `X-Altinn-Issuer: altinn`; without it, the same token is refused.
#[tokio::test]
async fn an_altinn_issued_token_is_named_as_such() {
    let s = Setup::start("altinn-issuer").await;
    let token = s
        .fakes
        .altinn
        .system_user_token(s.system_user, OWNER_ORG)
        .scope("skatteetaten:kravogbetalinger")
        .sign();
    let auth = format!("Bearer {token}");
    let r = ask(&s.pep, Kind::Forwarded, "GET", "/whoami", &[("Authorization", auth.as_str())]).await;
    assert_refused(&r, 401, "wrong-issuer");

    // The generated configuration names its own FakeAltinn's platform: trust that one's tokens.
    let s2 = Setup::start_with("altinn-issuer-trusted", |config| {
        let platform = config
            .lines()
            .find_map(|l| l.trim().strip_prefix("platform_url = \"").and_then(|v| v.split('"').next()))
            .expect("the configuration names the platform")
            .to_owned();
        format!("{config}\n[maskinporten.altinn_tokens]\nplatform = \"{platform}\"\n")
    })
    .await;
    let token = s2
        .fakes
        .altinn
        .system_user_token(s2.system_user, OWNER_ORG)
        .scope("skatteetaten:kravogbetalinger")
        .sign();
    let auth = format!("Bearer {token}");
    let r = ask(&s2.pep, Kind::Forwarded, "GET", "/whoami", &[("Authorization", auth.as_str())]).await;
    let mut principal = s2.principal(OWNER_ORG, "read");
    for (name, value) in principal.iter_mut() {
        match name.as_str() {
            "x-altinn-issuer" => *value = "altinn".into(),
            "x-altinn-client-id" => *value = r.header("x-altinn-client-id").unwrap_or_default().to_owned(),
            _ => {}
        }
    }
    assert_allowed(&r, &principal);
}
