//! Shared helpers for the integration tests: an axum app behind the layers, driven over real
//! HTTP on 127.0.0.1:0 or with `oneshot`.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A response, read to the end.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: bytes::Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The RFC 9457 problem type, if the body is a problem.
    pub(crate) fn problem_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }

    pub(crate) fn challenge(&self) -> String {
        self.header("www-authenticate").unwrap_or_default().to_owned()
    }
}

pub(crate) fn problem(slug: &str) -> String {
    format!("urn:altinn-systemuser:problem:{slug}")
}

pub(crate) async fn read(res: Response<Body>) -> Reply {
    let (parts, body) = res.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// Sends `req` through `app` with `oneshot`.
pub(crate) async fn send(app: &Router, req: Request<Body>) -> Reply {
    read(app.clone().oneshot(req).await.unwrap()).await
}

/// GET `path` with `Authorization: Bearer <token>`.
pub(crate) async fn get_with_token(app: &Router, path: &str, token: &str) -> Reply {
    send(
        app,
        Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

/// Serves `app` on 127.0.0.1:0 (bound before serving) and returns its base URL.
pub(crate) async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------------------
// Both layers and the PDP against FakeMaskinporten and FakeAltinn
// ---------------------------------------------------------------------------------------------

use altinn_systemuser::maskinporten::MaskinportenLayer;
use altinn_systemuser::pdp::{AUTHORIZE_SCOPE, AltinnPdp, AltinnPdpBuilder, MaskinportenCredentials};
use altinn_systemuser::test_util::{ClientRegistration, FakeAltinn, FakeMaskinporten, KeyRole, TestKey};
use uuid::Uuid;

/// The scope the API under test requires of its callers.
pub(crate) const API_SCOPE: &str = "skatteetaten:kravogbetalinger";
/// The resource the API under test asks the PDP about.
pub(crate) const RESOURCE: &str = "kravogbetaling";
/// The customer that owns the system users in the tests.
pub(crate) const OWNER_ORG: &str = "310702641";
/// Another valid organisation number.
pub(crate) const OTHER_ORG: &str = "923609016";
/// A third valid organisation number.
pub(crate) const THIRD_ORG: &str = "974760673";
/// A synthetic national identity number with valid check digits.
pub(crate) const PERSON: &str = "01010012356";
/// The API provider's APIM subscription key.
pub(crate) const SUBSCRIPTION_KEY: &str = "apim-subscription-key-5c1f0e7a9b";
/// The API provider's own Maskinporten client (for the PDP credentials).
pub(crate) const PROVIDER_CLIENT_ID: &str = "provider-client-3f6d2a90";
/// The API provider's organisation.
pub(crate) const PROVIDER_ORG: &str = "974760673";
/// The XACML attribute of an organisation party, as the PDP request carries it.
pub(crate) const ORG_ATTR: &str = "urn:altinn:organization:identifier-no";
/// The XACML attribute of a person party.
pub(crate) const PERSON_ATTR: &str = "urn:altinn:person:identifier-no";

/// FakeMaskinporten and FakeAltinn on 127.0.0.1:0, with the API provider's client registered
/// for the PDP scope under its own key.
pub(crate) struct Fakes {
    pub(crate) mp: FakeMaskinporten,
    pub(crate) altinn: FakeAltinn,
    pub(crate) provider_key: TestKey,
}

impl Fakes {
    pub(crate) async fn start() -> Fakes {
        TestKey::pregenerate(&[KeyRole::Maskinporten, KeyRole::Altinn, KeyRole::Provider]);
        let mp = FakeMaskinporten::start().await;
        let altinn = FakeAltinn::start(&mp, SUBSCRIPTION_KEY).await;
        let provider_key = TestKey::for_role(KeyRole::Provider).with_kid("provider-key-1");
        mp.register_client(ClientRegistration::new(
            PROVIDER_CLIENT_ID,
            &provider_key,
            PROVIDER_ORG,
            &[AUTHORIZE_SCOPE],
        ));
        Fakes { mp, altinn, provider_key }
    }

    /// The provider's credentials: the fake's issuer, the registered client id, key and kid.
    pub(crate) fn credentials(&self) -> MaskinportenCredentials {
        MaskinportenCredentials::builder()
            .issuer(self.mp.issuer())
            .client_id(PROVIDER_CLIENT_ID)
            .private_key_pem(self.provider_key.private_key_pkcs8_pem().as_bytes())
            .key_id(self.provider_key.kid())
            .build()
            .expect("valid credentials")
    }

    /// A PDP builder pointed at FakeAltinn with the real credentials flow.
    pub(crate) fn pdp_builder(&self) -> AltinnPdpBuilder {
        AltinnPdp::builder()
            .platform_url(self.altinn.platform_url())
            .subscription_key(SUBSCRIPTION_KEY)
            .credentials(self.credentials())
    }

    /// A PDP client with the default settings.
    pub(crate) fn pdp(&self) -> AltinnPdp {
        self.pdp_builder().build().expect("valid PDP configuration")
    }

    /// Layer 1: FakeMaskinporten's issuer, requiring [`API_SCOPE`].
    pub(crate) fn maskinporten_layer(&self) -> MaskinportenLayer {
        MaskinportenLayer::builder()
            .issuer(self.mp.issuer())
            .require_scope(API_SCOPE)
            .build()
            .expect("valid Maskinporten layer")
    }

    /// The builder of [`system_user_token`](Self::system_user_token), to change it before signing.
    pub(crate) fn system_user_token_builder(&self, system_user: Uuid) -> altinn_systemuser::test_util::TokenBuilder {
        self.mp.system_user_token(system_user, OWNER_ORG).scope(API_SCOPE)
    }

    /// A caller's system-user token (owner [`OWNER_ORG`], scope [`API_SCOPE`]), minted now.
    pub(crate) fn system_user_token(&self, system_user: Uuid) -> String {
        self.mp.system_user_token(system_user, OWNER_ORG).scope(API_SCOPE).sign()
    }
}

/// A port on 127.0.0.1 that refuses connections for as long as this lives: bound, so that no
/// other socket (of this test or of a test process running beside it) can take it, but not
/// listening, so that connecting is refused at once.
pub(crate) struct ClosedPort {
    _socket: tokio::net::TcpSocket,
    addr: std::net::SocketAddr,
}

impl ClosedPort {
    pub(crate) fn new() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        ClosedPort { _socket: socket, addr }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A rejection with this status and problem type, as the layers render it.
pub(crate) fn assert_problem(r: &Reply, status: u16, slug: &str) {
    assert_eq!(r.status, status, "body: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.problem_type(), problem(slug), "body: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.json()["status"], status);
}

/// The attributes of one XACML category as `(AttributeId, Value)` pairs.
pub(crate) fn attributes(category: &serde_json::Value) -> Vec<(String, String)> {
    category["Attribute"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|a| {
                    (
                        a["AttributeId"].as_str().unwrap_or_default().to_owned(),
                        a["Value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `count` distinct valid organisation numbers from `from` on: numbers whose mod-11 check
/// digit is valid, as the crate's own parser checks it (about one in eleven is skipped).
pub(crate) fn valid_org_numbers(from: u32, count: usize) -> Vec<String> {
    (from..)
        .map(|n| n.to_string())
        .filter(|s| {
            matches!(
                altinn_systemuser::org::Party::parse_canonical(s),
                Ok(altinn_systemuser::org::Party::Organisation(_))
            )
        })
        .take(count)
        .collect()
}
