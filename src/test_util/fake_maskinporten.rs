//! [`FakeMaskinporten`]: RFC 8414 metadata, a JWKS, a JWT-bearer token endpoint, and tokens.

use super::jwt::{TokenBuilder, decode, now, random_jti};
use super::key_pool::KeyRole;
use super::keys::{TestKey, verify_with_jwk};
use super::server::{self, Bound, EndpointMode, ServerGuard, lock};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// The JWT-bearer grant type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The `scope` of tokens from [`FakeMaskinporten::token`] unless changed.
pub const DEFAULT_SCOPE: &str = "altinn:systembruker.demo";
/// The `client_id` of tokens from [`FakeMaskinporten::token`] (the vendor's client).
pub const DEFAULT_CLIENT_ID: &str = "a2ed712d-4144-4471-839f-80ae4a68146b";
/// The vendor organisation (`consumer`) of tokens from [`FakeMaskinporten::token`].
pub const DEFAULT_CONSUMER_ORG: &str = "991825827";
/// The `system_id` of tokens from [`FakeMaskinporten::system_user_token`].
pub const DEFAULT_SYSTEM_ID: &str = "991825827_smartcloud";
/// ISO 6523 authority of organisation identifiers.
const AUTHORITY: &str = "iso6523-actorid-upis";
/// Allowed clock difference for `iat` of client assertions, seconds.
const IAT_SKEW: i64 = 10;
/// Longest client-assertion lifetime (`exp - iat`), seconds.
const MAX_ASSERTION_LIFETIME: i64 = 120;

/// A client registered at [`FakeMaskinporten`] for the JWT-bearer grant.
///
/// Several registrations may share a `client_id` (one per key, as after a key rotation).
#[derive(Debug, Clone)]
pub struct ClientRegistration {
    /// The client id: the `iss` of its assertions.
    pub client_id: String,
    /// The `kid` its assertions carry.
    pub key_id: String,
    /// Its public key as an RSA JWK (`kty`, `n`, `e`).
    pub public_jwk: Value,
    /// The organisation that owns the client, nine digits; becomes `consumer` in its tokens.
    pub org: String,
    /// The scopes it may ask for.
    pub scopes: Vec<String>,
}

impl ClientRegistration {
    /// A registration for `key` (its kid and public JWK).
    pub fn new(client_id: impl Into<String>, key: &TestKey, org: impl Into<String>, scopes: &[&str]) -> Self {
        ClientRegistration {
            client_id: client_id.into(),
            key_id: key.kid().to_owned(),
            public_jwk: key.public_jwk(),
            org: org.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// A fake Maskinporten on `http://127.0.0.1:PORT/`.
///
/// Serves, under [`issuer`](Self::issuer):
///
/// - `GET .well-known/oauth-authorization-server`: RFC 8414 metadata shaped like
///   test.maskinporten.no's (`issuer`, `jwks_uri`, `token_endpoint`, supported grant types and
///   algorithms).
/// - `GET jwk`: the JWKS, `{"keys":[…]}` with every published key (see [`TestKey::public_jwk`])
///   followed by the entries of [`set_extra_jwks`](Self::set_extra_jwks).
/// - `POST token`: the JWT-bearer grant (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=…`),
///   checked the way Maskinporten does for clients added with [`register_client`](Self::register_client):
///   `alg` RS256/RS384/RS512; `kid` naming a key registered for the client in `iss`; a valid
///   signature; `aud` equal to the issuer (a string or a one-element array); `iat` within 10 s
///   of now; `exp` in the future and at most 120 s after `iat`; every space-separated `scope`
///   allowed for the client; a `jti` never seen before (only accepted assertions use up their
///   `jti`). Assertions with an `x5c` header
///   (enterprise certificates) are not supported and are refused. Success is `200`
///   `{"access_token","token_type":"Bearer","expires_in","scope"}`, the access token signed by the
///   current signing key; failure is `400` `{"error","error_description"}` with `error`
///   `invalid_request`, `unsupported_grant_type`, `invalid_grant`, `invalid_client` or
///   `invalid_scope`.
///
/// Tokens for the API under test are made directly with [`token`](Self::token) and
/// [`system_user_token`](Self::system_user_token), without the token endpoint.
///
/// The handle is cheap to clone. The server stops when the last clone is dropped (or at
/// [`shutdown`](Self::shutdown)); requests that hang are then answered 503. It never panics on
/// what clients send.
#[derive(Clone)]
pub struct FakeMaskinporten {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for FakeMaskinporten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMaskinporten")
            .field("issuer", &self.inner.state.issuer)
            .finish_non_exhaustive()
    }
}

struct Handle {
    state: Arc<MpState>,
    guard: ServerGuard,
}

pub(crate) struct MpState {
    issuer: String,
    keys: Mutex<Keys>,
    config: Mutex<Config>,
    clients: Mutex<Vec<ClientRegistration>>,
    seen_jti: Mutex<HashSet<String>>,
    assertions: Mutex<Vec<Value>>,
    metadata_requests: AtomicUsize,
    jwks_requests: AtomicUsize,
    token_requests: AtomicUsize,
    shutdown: watch::Receiver<bool>,
}

struct Keys {
    signing: Arc<TestKey>,
    published: Vec<Arc<TestKey>>,
    extra: Vec<Value>,
    /// Rotations so far (picks the next rotation key).
    rotations: u32,
}

struct Config {
    metadata_mode: EndpointMode,
    jwks_mode: EndpointMode,
    token_mode: EndpointMode,
    jwks_cache_control: Option<String>,
    metadata_issuer: Option<String>,
    access_token_lifetime: Duration,
    jwk_alg: Option<String>,
}

impl FakeMaskinporten {
    /// Starts the fake with one signing key: the pooled [`KeyRole::Maskinporten`] key under a
    /// random `kid` (so no key is generated; fakes in one process share that key material, never
    /// a `kid`).
    ///
    /// Must be called inside a Tokio runtime. The port is bound before this returns.
    ///
    /// # Panics
    ///
    /// If `127.0.0.1:0` cannot be bound.
    pub async fn start() -> FakeMaskinporten {
        let bound = Bound::bind().await;
        let issuer = format!("http://{}/", bound.addr);
        let key = Arc::new(TestKey::for_role(KeyRole::Maskinporten).with_kid(Uuid::new_v4().to_string()));
        let state = Arc::new(MpState {
            issuer,
            keys: Mutex::new(Keys {
                signing: key.clone(),
                published: vec![key],
                extra: Vec::new(),
                rotations: 0,
            }),
            config: Mutex::new(Config {
                metadata_mode: EndpointMode::Normal,
                jwks_mode: EndpointMode::Normal,
                token_mode: EndpointMode::Normal,
                jwks_cache_control: None,
                metadata_issuer: None,
                access_token_lifetime: Duration::from_secs(120),
                jwk_alg: Some("RS256".into()),
            }),
            clients: Mutex::new(Vec::new()),
            seen_jti: Mutex::new(HashSet::new()),
            assertions: Mutex::new(Vec::new()),
            metadata_requests: AtomicUsize::new(0),
            jwks_requests: AtomicUsize::new(0),
            token_requests: AtomicUsize::new(0),
            shutdown: bound.shutdown_signal(),
        });
        let router = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/jwk", get(jwks))
            .route("/token", post(token_endpoint))
            .with_state(state.clone());
        let guard = bound.serve(router);
        FakeMaskinporten {
            inner: Arc::new(Handle { state, guard }),
        }
    }

    pub(crate) fn state(&self) -> Arc<MpState> {
        self.inner.state.clone()
    }

    fn st(&self) -> &MpState {
        &self.inner.state
    }

    /// Stops the server now (it also stops when the last handle is dropped). Later requests
    /// fail to connect; requests that hang get 503.
    pub fn shutdown(&self) {
        self.inner.guard.stop();
    }

    /// The issuer, `http://127.0.0.1:PORT/` (with the trailing slash, like Maskinporten's).
    pub fn issuer(&self) -> String {
        self.st().issuer.clone()
    }

    /// `{issuer}.well-known/oauth-authorization-server`.
    pub fn metadata_url(&self) -> String {
        format!("{}.well-known/oauth-authorization-server", self.st().issuer)
    }

    /// `{issuer}jwk`.
    pub fn jwks_uri(&self) -> String {
        format!("{}jwk", self.st().issuer)
    }

    /// `{issuer}token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}token", self.st().issuer)
    }

    /// The key that signs tokens now.
    pub fn signing_key(&self) -> Arc<TestKey> {
        lock(&self.st().keys).signing.clone()
    }

    /// Key rotation: publishes another key under a new random `kid` and makes it the signing
    /// key. The old key stays published (remove it with [`remove_key`](Self::remove_key)).
    /// Returns the new `kid`.
    ///
    /// The `n`th rotation of a fake (from 0) switches to the pooled [`KeyRole::Rotation`]`(n)`
    /// key, so every rotation of a fake brings key material the fake has not used before.
    pub fn rotate_key(&self) -> String {
        let n = {
            let mut keys = lock(&self.st().keys);
            keys.rotations = keys.rotations.saturating_add(1);
            keys.rotations - 1
        };
        // Outside the lock: the first use of a rotation key generates it.
        let key = match u8::try_from(n) {
            Ok(n) => TestKey::for_role(KeyRole::Rotation(n)),
            Err(_) => TestKey::generate("rotation"),
        };
        let key = Arc::new(key.with_kid(Uuid::new_v4().to_string()));
        let kid = key.kid().to_owned();
        let mut keys = lock(&self.st().keys);
        keys.published.push(key.clone());
        keys.signing = key;
        kid
    }

    /// Publishes `key` in the JWKS (it does not sign). Several keys may share a `kid`.
    pub fn add_key(&self, key: TestKey) {
        lock(&self.st().keys).published.push(Arc::new(key));
    }

    /// Unpublishes every key with this `kid`. Removing the signing key keeps it signing, so
    /// tokens from [`token`](Self::token) then name a `kid` that is not in the JWKS.
    pub fn remove_key(&self, kid: &str) {
        lock(&self.st().keys).published.retain(|k| k.kid() != kid);
    }

    /// Raw JWK entries appended to the JWKS after the published keys, as given (EC keys,
    /// 1024-bit RSA keys, keys with `use: enc`, garbage…). Replaces earlier extras.
    pub fn set_extra_jwks(&self, keys: Vec<Value>) {
        lock(&self.st().keys).extra = keys;
    }

    /// How the JWKS endpoint answers.
    pub fn set_jwks_mode(&self, mode: EndpointMode) {
        lock(&self.st().config).jwks_mode = mode;
    }

    /// How the metadata endpoint answers.
    pub fn set_metadata_mode(&self, mode: EndpointMode) {
        lock(&self.st().config).metadata_mode = mode;
    }

    /// How the token endpoint answers. With [`EndpointMode::Empty`] it answers `{}` without
    /// looking at the request.
    pub fn set_token_mode(&self, mode: EndpointMode) {
        lock(&self.st().config).token_mode = mode;
    }

    /// The `Cache-Control` header of JWKS answers (none by default).
    pub fn set_jwks_cache_control(&self, value: Option<String>) {
        lock(&self.st().config).jwks_cache_control = value;
    }

    /// Overrides the `issuer` member of the metadata (to test an issuer mismatch); `None`
    /// restores the real one.
    pub fn set_metadata_issuer(&self, issuer: Option<String>) {
        lock(&self.st().config).metadata_issuer = issuer;
    }

    /// The `alg` member of the published keys' JWKs: `RS256` by default, as Maskinporten
    /// publishes them; `None` leaves it out. A verifier that binds each key to its `alg` (as
    /// RFC 7517 allows) refuses tokens made with [`TokenBuilder::alg`]`("RS384")` or `"RS512"`
    /// unless this is changed to match (or left out). Entries of
    /// [`set_extra_jwks`](Self::set_extra_jwks) are not touched.
    pub fn set_jwks_key_alg(&self, alg: Option<String>) {
        lock(&self.st().config).jwk_alg = alg;
    }

    /// Lifetime (`exp - iat` and `expires_in`) of access tokens from the token endpoint; 120 s by
    /// default.
    pub fn set_access_token_lifetime(&self, d: Duration) {
        lock(&self.st().config).access_token_lifetime = d;
    }

    /// Requests received by the metadata endpoint.
    pub fn metadata_requests(&self) -> usize {
        self.st().metadata_requests.load(Ordering::SeqCst)
    }

    /// Requests received by the JWKS endpoint.
    pub fn jwks_requests(&self) -> usize {
        self.st().jwks_requests.load(Ordering::SeqCst)
    }

    /// Requests received by the token endpoint.
    pub fn token_requests(&self) -> usize {
        self.st().token_requests.load(Ordering::SeqCst)
    }

    /// A Maskinporten access token as the API under test receives it, signed by the current
    /// signing key. Header `{"alg":"RS256","kid":…}` (no `typ`, like real tokens); claims `iss`,
    /// `client_amr` `private_key_jwt`, `token_type` `Bearer`, `iat` now, `exp` now + 120 s,
    /// `client_id` [`DEFAULT_CLIENT_ID`], a random `jti`, `consumer`
    /// `{"authority":"iso6523-actorid-upis","ID":"0192:991825827"}` and `scope`
    /// [`DEFAULT_SCOPE`]. No `aud`, no `nbf`.
    pub fn token(&self) -> TokenBuilder {
        let iat = now();
        let mut claims = Map::new();
        claims.insert("scope".into(), json!(DEFAULT_SCOPE));
        claims.insert("iss".into(), json!(self.st().issuer));
        claims.insert("client_amr".into(), json!("private_key_jwt"));
        claims.insert("token_type".into(), json!("Bearer"));
        claims.insert("exp".into(), json!(iat + 120));
        claims.insert("iat".into(), json!(iat));
        claims.insert("client_id".into(), json!(DEFAULT_CLIENT_ID));
        claims.insert("jti".into(), json!(random_jti()));
        claims.insert("consumer".into(), org_id(DEFAULT_CONSUMER_ORG));
        TokenBuilder::new(self.signing_key(), claims)
    }

    /// A system-user token: [`token`](Self::token) plus `authorization_details`, shaped exactly
    /// like a real test.maskinporten.no token:
    ///
    /// ```json
    /// "authorization_details": [ {
    ///   "type": "urn:altinn:systemuser",
    ///   "systemuser_org": { "authority": "iso6523-actorid-upis", "ID": "0192:<owner_org>" },
    ///   "systemuser_id": [ "<system_user_id>" ],
    ///   "system_id": "991825827_smartcloud",
    ///   "externalRef": "<random uuid>"
    /// } ]
    /// ```
    ///
    /// `owner_org` (nine digits) is not checked, so malformed ones can be tested.
    pub fn system_user_token(&self, system_user_id: Uuid, owner_org: &str) -> TokenBuilder {
        let details = json!([{
            "type": "urn:altinn:systemuser",
            "systemuser_org": org_id(owner_org),
            "systemuser_id": [system_user_id.hyphenated().to_string()],
            "system_id": DEFAULT_SYSTEM_ID,
            "externalRef": Uuid::new_v4().hyphenated().to_string(),
        }]);
        self.token().claim("authorization_details", details)
    }

    /// A client assertion for the token endpoint: header `{"alg":"RS256","kid":<key's kid>}`,
    /// claims `aud` (the issuer), `iss` `client_id`, `scope`, `iat` now, `exp` now + 60 s and a
    /// random `jti`, signed by `key`.
    pub fn client_assertion(&self, client_id: &str, key: &TestKey, scope: &str) -> TokenBuilder {
        let iat = now();
        let mut claims = Map::new();
        claims.insert("aud".into(), json!(self.st().issuer));
        claims.insert("iss".into(), json!(client_id));
        claims.insert("scope".into(), json!(scope));
        claims.insert("iat".into(), json!(iat));
        claims.insert("exp".into(), json!(iat + 60));
        claims.insert("jti".into(), json!(Uuid::new_v4().to_string()));
        TokenBuilder::new(Arc::new(key.clone()), claims)
    }

    /// Registers a client for the token endpoint. A registration with the same `client_id` and
    /// `key_id` as an earlier one replaces it.
    pub fn register_client(&self, reg: ClientRegistration) {
        let mut clients = lock(&self.st().clients);
        clients.retain(|c| !(c.client_id == reg.client_id && c.key_id == reg.key_id));
        clients.push(reg);
    }

    /// Every assertion the token endpoint received, in order, accepted or not, as
    /// `{"header": {…}, "claims": {…}, "error": null | "<error>: <description>"}` (`header` and
    /// `claims` are `null` when the assertion could not be decoded).
    pub fn grant_assertions(&self) -> Vec<Value> {
        lock(&self.st().assertions).clone()
    }

    /// Checks a token the way a resource server would, against the keys published now: `alg`
    /// RS256/RS384/RS512, `kid` of a published key, valid signature, `iss` equal to the issuer,
    /// `exp` in the future. Returns its claims.
    pub fn verify_access_token(&self, token: &str) -> Option<Value> {
        self.st().verify_access_token(token)
    }
}

impl MpState {
    pub(crate) fn verify_access_token(&self, token: &str) -> Option<Value> {
        let d = decode(token)?;
        let alg = d.header.get("alg")?.as_str()?;
        let kid = d.header.get("kid")?.as_str()?;
        let keys: Vec<Arc<TestKey>> = lock(&self.keys).published.iter().filter(|k| k.kid() == kid).cloned().collect();
        if !keys.iter().any(|k| k.verify_raw(alg, d.signing_input.as_bytes(), &d.signature)) {
            return None;
        }
        if d.claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return None;
        }
        if number(d.claims.get("exp")?)? <= now() {
            return None;
        }
        Some(Value::Object(d.claims))
    }

    fn sign_access_token(&self, client: &ClientRegistration, scope: &str, lifetime: i64) -> String {
        let iat = now();
        let mut claims = Map::new();
        claims.insert("scope".into(), json!(scope));
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("client_amr".into(), json!("private_key_jwt"));
        claims.insert("token_type".into(), json!("Bearer"));
        claims.insert("exp".into(), json!(iat + lifetime));
        claims.insert("iat".into(), json!(iat));
        claims.insert("client_id".into(), json!(client.client_id));
        claims.insert("jti".into(), json!(random_jti()));
        claims.insert("consumer".into(), org_id(&client.org));
        let key = lock(&self.keys).signing.clone();
        TokenBuilder::new(key, claims).sign()
    }
}

/// `{"authority":"iso6523-actorid-upis","ID":"0192:<org>"}`.
fn org_id(org: &str) -> Value {
    json!({ "authority": AUTHORITY, "ID": format!("0192:{org}") })
}

/// A JSON number as whole seconds.
fn number(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

async fn metadata(State(st): State<Arc<MpState>>) -> Response {
    st.metadata_requests.fetch_add(1, Ordering::SeqCst);
    let (mode, issuer) = {
        let c = lock(&st.config);
        (c.metadata_mode.clone(), c.metadata_issuer.clone())
    };
    if let Some(res) = server::fault(&mode, &st.shutdown).await {
        return res;
    }
    let doc = json!({
        "issuer": issuer.unwrap_or_else(|| st.issuer.clone()),
        "token_endpoint": format!("{}token", st.issuer),
        "jwks_uri": format!("{}jwk", st.issuer),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "grant_types_supported": [JWT_BEARER],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "RS384", "RS512"],
        "authorization_details_types_supported": ["urn:altinn:systemuser", "urn:altinn:consent"],
    });
    match mode {
        EndpointMode::Empty => server::json(200, &json!({})),
        EndpointMode::Oversized => server::json(200, &server::pad(doc)),
        _ => server::json(200, &doc),
    }
}

async fn jwks(State(st): State<Arc<MpState>>) -> Response {
    st.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let (mode, cache_control, jwk_alg) = {
        let c = lock(&st.config);
        (c.jwks_mode.clone(), c.jwks_cache_control.clone(), c.jwk_alg.clone())
    };
    if let Some(res) = server::fault(&mode, &st.shutdown).await {
        return res;
    }
    let set = {
        let keys = lock(&st.keys);
        let mut list: Vec<Value> = keys
            .published
            .iter()
            .map(|k| {
                let mut jwk = k.public_jwk();
                if let Some(obj) = jwk.as_object_mut() {
                    match &jwk_alg {
                        Some(alg) => obj.insert("alg".into(), json!(alg)),
                        None => obj.remove("alg"),
                    };
                }
                jwk
            })
            .collect();
        list.extend(keys.extra.iter().cloned());
        json!({ "keys": list })
    };
    let mut res = match mode {
        EndpointMode::Empty => server::json(200, &json!({ "keys": [] })),
        EndpointMode::Oversized => server::json(200, &server::pad(set)),
        _ => server::json(200, &set),
    };
    if let Some(v) = cache_control.and_then(|v| HeaderValue::from_str(&v).ok()) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}

/// An OAuth2 error: `(error, error_description)`.
type GrantError = (&'static str, String);

fn grant_error(error: &'static str, description: impl Into<String>) -> GrantError {
    (error, description.into())
}

async fn token_endpoint(State(st): State<Arc<MpState>>, headers: HeaderMap, body: Bytes) -> Response {
    st.token_requests.fetch_add(1, Ordering::SeqCst);
    let mode = lock(&st.config).token_mode.clone();
    if let Some(res) = server::fault(&mode, &st.shutdown).await {
        return res;
    }
    if mode == EndpointMode::Empty {
        return server::json(200, &json!({}));
    }
    let mut res = match grant(&st, &headers, &body) {
        Ok(answer) if mode == EndpointMode::Oversized => server::json(200, &server::pad(answer)),
        Ok(answer) => server::json(200, &answer),
        Err((error, description)) => server::json(400, &json!({ "error": error, "error_description": description })),
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Handles a token request: the form, then the assertion.
fn grant(st: &MpState, headers: &HeaderMap, body: &[u8]) -> Result<Value, GrantError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(grant_error(
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let mut grant_type = None;
    let mut assertion = None;
    for (name, value) in url::form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "grant_type" => &mut grant_type,
            "assertion" => &mut assertion,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(grant_error("invalid_request", format!("parameter {name} is repeated")));
        }
    }
    match grant_type.as_deref() {
        None => return Err(grant_error("invalid_request", "grant_type is missing")),
        Some(JWT_BEARER) => {}
        Some(other) => {
            return Err(grant_error(
                "unsupported_grant_type",
                format!("grant_type {other} is not supported"),
            ));
        }
    }
    let Some(assertion) = assertion else {
        return Err(grant_error("invalid_request", "assertion is missing"));
    };
    let Some(decoded) = decode(&assertion) else {
        let error = "invalid_grant: the assertion is not a JWT";
        lock(&st.assertions).push(json!({ "header": null, "claims": null, "error": error }));
        return Err(grant_error("invalid_grant", "the assertion is not a JWT"));
    };
    let result = check_assertion(st, &decoded);
    let error = result.as_ref().err().map(|(e, d)| format!("{e}: {d}"));
    lock(&st.assertions).push(json!({ "header": decoded.header, "claims": decoded.claims, "error": error }));
    result
}

fn check_assertion(st: &MpState, d: &super::jwt::Decoded<'_>) -> Result<Value, GrantError> {
    let alg = d.header.get("alg").and_then(Value::as_str).unwrap_or_default();
    if !matches!(alg, "RS256" | "RS384" | "RS512") {
        return Err(grant_error("invalid_grant", format!("alg {alg:?} is not allowed")));
    }
    let Some(kid) = d.header.get("kid").and_then(Value::as_str) else {
        if d.header.contains_key("x5c") {
            return Err(grant_error(
                "invalid_grant",
                "x5c assertions are not supported by this fake; use kid",
            ));
        }
        return Err(grant_error("invalid_grant", "the assertion has no kid"));
    };
    let Some(client_id) = d.claims.get("iss").and_then(Value::as_str) else {
        return Err(grant_error("invalid_grant", "iss is missing"));
    };
    let client = {
        let clients = lock(&st.clients);
        if !clients.iter().any(|c| c.client_id == client_id) {
            return Err(grant_error("invalid_client", format!("unknown client {client_id}")));
        }
        match clients.iter().find(|c| c.client_id == client_id && c.key_id == kid) {
            Some(c) => c.clone(),
            None => {
                return Err(grant_error(
                    "invalid_grant",
                    format!("kid {kid} is not registered for client {client_id}"),
                ));
            }
        }
    };
    if !verify_with_jwk(&client.public_jwk, alg, d.signing_input.as_bytes(), &d.signature) {
        return Err(grant_error("invalid_grant", "invalid signature"));
    }
    let aud_ok = match d.claims.get("aud") {
        Some(Value::String(a)) => *a == st.issuer,
        Some(Value::Array(a)) => a.len() == 1 && a[0].as_str() == Some(st.issuer.as_str()),
        _ => false,
    };
    if !aud_ok {
        return Err(grant_error("invalid_grant", format!("aud must be {}", st.issuer)));
    }
    let now = now();
    let Some(iat) = d.claims.get("iat").and_then(number) else {
        return Err(grant_error("invalid_grant", "iat is missing"));
    };
    if iat.saturating_sub(now).saturating_abs() > IAT_SKEW {
        return Err(grant_error("invalid_grant", "iat is not within 10 seconds of now"));
    }
    let Some(exp) = d.claims.get("exp").and_then(number) else {
        return Err(grant_error("invalid_grant", "exp is missing"));
    };
    if exp <= now {
        return Err(grant_error("invalid_grant", "the assertion has expired"));
    }
    if exp.saturating_sub(iat) > MAX_ASSERTION_LIFETIME {
        return Err(grant_error("invalid_grant", "exp is more than 120 seconds after iat"));
    }
    let scope = d.claims.get("scope").and_then(Value::as_str).unwrap_or_default();
    let scopes: Vec<&str> = scope.split(' ').collect();
    if scope.is_empty() || scopes.iter().any(|s| s.is_empty()) {
        return Err(grant_error("invalid_scope", "scope is missing or malformed"));
    }
    if let Some(bad) = scopes.iter().find(|s| !client.scopes.iter().any(|a| a == *s)) {
        return Err(grant_error("invalid_scope", format!("scope {bad} is not allowed for this client")));
    }
    let jti = match d.claims.get("jti").and_then(Value::as_str) {
        Some(j) if !j.is_empty() => j,
        _ => return Err(grant_error("invalid_grant", "jti is missing")),
    };
    if !lock(&st.seen_jti).insert(jti.to_owned()) {
        return Err(grant_error("invalid_grant", "jti has been used before"));
    }
    let lifetime = i64::try_from(lock(&st.config).access_token_lifetime.as_secs()).unwrap_or(i64::MAX / 2);
    let access_token = st.sign_access_token(&client, scope, lifetime);
    Ok(json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": lifetime, "scope": scope }))
}
