//! Real nginx (`auth_request`) and real Caddy (`forward_auth`), started with the README's
//! configurations (`deploy/nginx.conf`, `deploy/Caddyfile`), in front of an API that echoes
//! what it received: what reaches the API, and what a refused client sees.

use altinn_systemuser::test_util::PdpAnswer;

use crate::harness::{Api, PRINCIPAL_HEADERS, Proxy, Reply, Setup, THIRD_ORG, caddy, nginx, raw};
use crate::pep_fakes::{CLIENT_ORG, OWNER_ORG, SCOPE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Nginx,
    Caddy,
}

async fn start(which: Which, s: &Setup, api: &Api) -> Proxy {
    match which {
        Which::Nginx => nginx(&s.dir, &s.pep.decision, &api.addr).await,
        Which::Caddy => caddy(&s.dir, &s.pep.decision, &api.addr).await,
    }
}

/// Principal headers a client sends itself, in every spelling an upstream might read as ours.
fn spoofed() -> Vec<(&'static str, &'static str)> {
    vec![
        ("X-Altinn-SystemUser-Id", "00000000-0000-0000-0000-000000000000"),
        ("x-altinn-systemuser-org", THIRD_ORG),
        ("X-ALTINN-PARTY", THIRD_ORG),
        ("X-Altinn-Party", THIRD_ORG),
        ("X-Altinn-Resource", "spoofed"),
        ("X-Altinn-Action", "admin"),
        ("X-Altinn-Vendor-Org", THIRD_ORG),
        ("X-Altinn-Client-Id", "spoofed-client"),
        ("X-Altinn-Issuer", "spoofed"),
        ("X_Altinn_SystemUser_Id", "00000000-0000-0000-0000-000000000000"),
        ("x_altinn_party", THIRD_ORG),
        ("X-Altinn_Vendor-Org", THIRD_ORG),
    ]
}

/// The principal headers the API received, by any spelling (`_` read as `-`, any case).
fn principal_received(echo: &Reply) -> Vec<(String, String)> {
    let ours: Vec<String> = PRINCIPAL_HEADERS.iter().map(|h| h.to_ascii_lowercase()).collect();
    echo.echoed_headers()
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase().replace('_', "-"), v))
        .filter(|(n, _)| ours.contains(n))
        .collect()
}

fn assert_reached_with(echo: &Reply, principal: &[(String, String)], method: &str, uri: &str) {
    assert_eq!(echo.status, 200, "{echo:?} {}", String::from_utf8_lossy(&echo.body));
    let mut got = principal_received(echo);
    let mut want = principal.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want, "the API saw exactly the principal, once each");
    assert_eq!(echo.json()["method"], method);
    assert_eq!(echo.json()["uri"], uri, "the API gets the URI that was decided on");
}

/// A refusal as the proxy's client sees it.
fn assert_refused_via(which: Which, r: &Reply, status: u16, slug: &str) {
    assert_eq!(r.status, status, "{r:?} {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.problem(), slug, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    for h in PRINCIPAL_HEADERS {
        assert_eq!(r.header(h), None, "{h} on a refusal");
    }
    match which {
        // nginx keeps only the status and WWW-Authenticate of the answer; its configuration
        // writes the problem with altinn-pep's type.
        Which::Nginx => assert_eq!(r.json()["status"], status),
        // Caddy passes altinn-pep's answer on as it is.
        Which::Caddy => {
            assert_eq!(r.header("x-altinn-problem"), Some(slug));
            assert!(r.json()["title"].is_string());
        }
    }
}

async fn allowed_requests_reach_the_api_with_the_principal_and_no_spoofed_header(which: Which) {
    let s = Setup::start(&format!("{which:?}-allowed")).await;
    let api = Api::start().await;
    let proxy = start(which, &s, &api).await;
    let bearer = format!("Bearer {}", s.token());
    let mut headers = vec![("Authorization", bearer.as_str())];
    headers.extend(spoofed());

    let uri = format!("/krav/{CLIENT_ORG}?side=2&sort=desc");
    let r = raw(&proxy.addr, "GET", &uri, &headers).await;
    assert_reached_with(&r, &s.principal(CLIENT_ORG, "read"), "GET", &uri);
    let uri = format!("/krav/{CLIENT_ORG}");
    let r = raw(
        &proxy.addr,
        "POST",
        &uri,
        &[headers.as_slice(), &[("Content-Length", "0")]].concat(),
    )
    .await;
    assert_reached_with(&r, &s.principal(CLIENT_ORG, "write"), "POST", &uri);
    let r = raw(&proxy.addr, "GET", "/whoami", &headers).await;
    assert_reached_with(&r, &s.principal(OWNER_ORG, "read"), "GET", "/whoami");
    // A client that claims to speak gRPC, with a token: allowed the same way.
    let grpc = [headers.as_slice(), &[("Content-Type", "application/grpc")]].concat();
    let r = raw(&proxy.addr, "GET", "/whoami", &grpc).await;
    assert_reached_with(&r, &s.principal(OWNER_ORG, "read"), "GET", "/whoami");

    // A token naming no vendor and no client: X-Altinn-Vendor-Org and -Client-Id are absent,
    // not the client's values (Caddy 2.6 would otherwise pass a placeholder text on).
    let no_vendor = s
        .fakes
        .mp
        .system_user_token(s.system_user, OWNER_ORG)
        .scope(SCOPE)
        .remove_claim("consumer")
        .remove_claim("client_id")
        .sign();
    let bearer = format!("Bearer {no_vendor}");
    let mut headers = vec![("Authorization", bearer.as_str())];
    headers.extend(spoofed());
    let r = raw(&proxy.addr, "GET", "/whoami", &headers).await;
    let principal: Vec<_> = s
        .principal(OWNER_ORG, "read")
        .into_iter()
        .filter(|(n, _)| n != "x-altinn-vendor-org" && n != "x-altinn-client-id")
        .collect();
    assert_reached_with(&r, &principal, "GET", "/whoami");
    assert_eq!(api.hits(), 5);
}

async fn refused_requests_get_what_the_readme_promises(which: Which) {
    let s = Setup::start(&format!("{which:?}-refused")).await;
    let api = Api::start().await;
    let proxy = start(which, &s, &api).await;
    let token = s.token();
    let bearer = format!("Bearer {token}");
    let krav = format!("/krav/{CLIENT_ORG}");
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        let mut h = spoofed();
        h.extend_from_slice(extra);
        h
    };

    // No token, with and without a gRPC content type: 401 and the challenge, exactly once.
    for extra in [&[][..], &[("Content-Type", "application/grpc")][..]] {
        let r = raw(&proxy.addr, "GET", &krav, &with(extra)).await;
        assert_refused_via(which, &r, 401, "missing-token");
        assert_eq!(r.all("www-authenticate"), ["Bearer"]);
    }
    // A broken signature.
    let (rest, sig) = token.rsplit_once('.').unwrap();
    let broken = format!("Bearer {rest}.{}{}", if sig.starts_with('A') { "B" } else { "A" }, &sig[1..]);
    let mut h = spoofed();
    h.push(("Authorization", &broken));
    let r = raw(&proxy.addr, "GET", &krav, &h).await;
    assert_refused_via(which, &r, 401, "invalid-signature");
    assert!(r.header("www-authenticate").unwrap().contains("invalid_token"));

    let authorized = |path: &str| {
        let mut h = spoofed();
        h.push(("Authorization", bearer.as_str()));
        (path.to_owned(), h)
    };
    // Not granted by the PDP; no route; a party in another spelling.
    let (p, h) = authorized(&format!("/krav/{THIRD_ORG}"));
    assert_refused_via(which, &raw(&proxy.addr, "GET", &p, &h).await, 403, "access-not-granted");
    let (p, h) = authorized("/internal/admin");
    assert_refused_via(which, &raw(&proxy.addr, "GET", &p, &h).await, 403, "no-matching-route");
    let (p, h) = authorized(&format!("/krav/{CLIENT_ORG}"));
    assert_refused_via(which, &raw(&proxy.addr, "DELETE", &p, &h).await, 403, "no-matching-route");
    let (p, h) = authorized("/krav/0192:923609016");
    assert_refused_via(which, &raw(&proxy.addr, "GET", &p, &h).await, 400, "invalid-party");
    // Paths the proxy and the API could read differently from altinn-pep: 400.
    for path in [
        "/krav/../whoami",
        "/dokumenter/../krav/923609016",
        "/krav//923609016",
        "/krav%2F923609016",
        "/krav/923609016;v=1",
        "/dokumenter/%2e%2e/x",
    ] {
        let (p, h) = authorized(path);
        let r = raw(&proxy.addr, "GET", &p, &h).await;
        assert_refused_via(which, &r, 400, "invalid-forwarded-request");
    }

    // The PDP failing on a new question: 503 with Retry-After.
    s.fakes.altinn.set_answer(PdpAnswer::Raw {
        status: 503,
        headers: vec![("Retry-After".into(), "3".into())],
        body: String::new(),
    });
    let (p, h) = authorized("/whoami");
    let r = raw(&proxy.addr, "GET", &p, &h).await;
    assert_refused_via(which, &r, 503, "authorization-unavailable");
    assert!(
        r.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok_and(|n| n >= 1)),
        "{r:?}"
    );

    // None of it reached the API.
    assert_eq!(api.hits(), 0);
}

async fn too_many_questions_and_a_stopped_pep(which: Which) {
    let s = Setup::start_with(&format!("{which:?}-faults"), |c| {
        c.replace(
            "subscription_key = { env = \"ALTINN_SUBSCRIPTION_KEY\" }",
            "subscription_key = { env = \"ALTINN_SUBSCRIPTION_KEY\" }\ndecision_rate_limit = { per_second = 1, burst = 1 }",
        )
    })
    .await;
    let api = Api::start().await;
    let proxy = start(which, &s, &api).await;
    let bearer = format!("Bearer {}", s.token());
    let auth = [("Authorization", bearer.as_str())];
    let r = raw(&proxy.addr, "GET", &format!("/krav/{CLIENT_ORG}"), &auth).await;
    assert_eq!(r.status, 200);
    let r = raw(&proxy.addr, "GET", &format!("/krav/{OWNER_ORG}"), &auth).await;
    assert_refused_via(which, &r, 429, "too-many-decisions");
    assert!(
        r.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok_and(|n| n >= 1)),
        "{r:?}"
    );
    assert_eq!(api.hits(), 1);

    // altinn-pep stopped: never allowed.
    let Setup { pep, fakes, dir, .. } = s;
    assert!(pep.stop("TERM").await.success());
    let r = raw(&proxy.addr, "GET", &format!("/krav/{CLIENT_ORG}"), &auth).await;
    match which {
        Which::Nginx => {
            assert_refused_via(which, &r, 503, "authorization-unavailable");
            assert_eq!(r.header("retry-after"), Some("5"));
        }
        // Caddy's own answer when the authorizer cannot be reached.
        Which::Caddy => assert_eq!(r.status, 502, "{r:?}"),
    }
    assert_eq!(api.hits(), 1);
    drop((fakes, dir));
}

#[tokio::test]
async fn nginx_allowed_requests_reach_the_api_with_the_principal_and_no_spoofed_header() {
    allowed_requests_reach_the_api_with_the_principal_and_no_spoofed_header(Which::Nginx).await;
}

#[tokio::test]
async fn caddy_allowed_requests_reach_the_api_with_the_principal_and_no_spoofed_header() {
    allowed_requests_reach_the_api_with_the_principal_and_no_spoofed_header(Which::Caddy).await;
}

#[tokio::test]
async fn nginx_refused_requests_get_what_the_readme_promises() {
    refused_requests_get_what_the_readme_promises(Which::Nginx).await;
}

#[tokio::test]
async fn caddy_refused_requests_get_what_the_readme_promises() {
    refused_requests_get_what_the_readme_promises(Which::Caddy).await;
}

#[tokio::test]
async fn nginx_too_many_questions_and_a_stopped_pep() {
    too_many_questions_and_a_stopped_pep(Which::Nginx).await;
}

#[tokio::test]
async fn caddy_too_many_questions_and_a_stopped_pep() {
    too_many_questions_and_a_stopped_pep(Which::Caddy).await;
}
