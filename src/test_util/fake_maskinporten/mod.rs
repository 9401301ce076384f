//! [`FakeMaskinporten`]: RFC 8414 metadata, a JWKS, a JWT-bearer token endpoint, and tokens.
//!
//! - `mod.rs`: the fake, its state and its settings.
//! - `mint.rs`: tokens for the API under test and client assertions, and checking tokens.
//! - `metadata_jwks.rs`: the metadata and JWKS endpoints.
//! - `token_endpoint.rs`: the JWT-bearer grant.

mod metadata_jwks;
mod mint;
mod token_endpoint;

use super::key_pool::KeyRole;
use super::keys::TestKey;
use super::server::{Bound, EndpointMode, ServerGuard, lock};
use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;
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
    token_delay: Duration,
    jwks_cache_control: Option<String>,
    metadata_issuer: Option<String>,
    access_token_lifetime: Duration,
    jwk_alg: Option<String>,
    /// Served instead of the generated metadata, as written.
    metadata_body: Option<String>,
    /// Served instead of the generated JWKS, as written.
    jwks_body: Option<String>,
}

impl FakeMaskinporten {
    /// Starts the fake with one signing key: the pooled [`KeyRole::Maskinporten`] key under a
    /// random `kid` (so no key is generated; fakes in one process share that key material, never
    /// a `kid`). So a second fake's key is NOT a foreign key: a token signed by it under the
    /// first fake's `kid` verifies. For "a key nobody publishes", sign with
    /// `TestKey::for_role(KeyRole::Rogue)` (see [`TokenBuilder::signed_by`](crate::test_util::TokenBuilder::signed_by)).
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
                token_delay: Duration::ZERO,
                jwks_cache_control: None,
                metadata_issuer: None,
                access_token_lifetime: Duration::from_secs(120),
                jwk_alg: Some("RS256".into()),
                metadata_body: None,
                jwks_body: None,
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
            .route("/.well-known/oauth-authorization-server", get(metadata_jwks::metadata))
            .route("/jwk", get(metadata_jwks::jwks))
            .route("/token", post(token_endpoint::token_endpoint))
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

    /// Serves `body` as the JWKS (`200`, `application/json`, with the
    /// [`Cache-Control`](Self::set_jwks_cache_control) header) exactly as written, instead of
    /// the published keys: for documents a JSON value cannot hold, such as a member name
    /// repeated. The [mode](Self::set_jwks_mode) still applies first (its faults, delays and
    /// hangs); `None` restores the generated JWKS.
    pub fn set_jwks_body(&self, body: Option<String>) {
        lock(&self.st().config).jwks_body = body;
    }

    /// Serves `body` as the RFC 8414 metadata (`200`, `application/json`) exactly as written,
    /// instead of the generated document: for documents a JSON value cannot hold, such as a
    /// member name repeated. The [mode](Self::set_metadata_mode) still applies first; `None`
    /// restores the generated metadata.
    pub fn set_metadata_body(&self, body: Option<String>) {
        lock(&self.st().config).metadata_body = body;
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

    /// Delays every token endpoint answer by `d`, whatever the mode (zero by default): with
    /// [`set_token_mode`](Self::set_token_mode)`(EndpointMode::Status(400))`, a grant that fails
    /// slowly, so that concurrent callers of a client are all waiting for it.
    pub fn set_token_delay(&self, d: Duration) {
        lock(&self.st().config).token_delay = d;
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
    /// RFC 7517 allows) refuses tokens made with [`TokenBuilder::alg`](crate::test_util::TokenBuilder::alg)`("RS384")` or `"RS512"`
    /// unless this is changed to match (or left out). Entries of
    /// [`set_extra_jwks`](Self::set_extra_jwks) are not touched.
    pub fn set_jwks_key_alg(&self, alg: Option<String>) {
        lock(&self.st().config).jwk_alg = alg;
    }

    /// Lifetime (`exp - iat` and `expires_in`) of access tokens from the token endpoint; 120 s by
    /// default. `expires_in` is the whole seconds as they are (`Duration::MAX` sends
    /// `18446744073709551615`, to test clients against absurd values); `exp` saturates at
    /// `i64::MAX`.
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

    /// Registers a client for the token endpoint. A registration with the same `client_id` and
    /// `key_id` as an earlier one replaces it.
    pub fn register_client(&self, reg: ClientRegistration) {
        let mut clients = lock(&self.st().clients);
        clients.retain(|c| !(c.client_id == reg.client_id && c.key_id == reg.key_id));
        clients.push(reg);
    }

    /// Removes the registration of `client_id` under `key_id` (the old key after a rotation);
    /// its assertions are refused from then on (`invalid_grant`).
    pub fn unregister_client_key(&self, client_id: &str, key_id: &str) {
        lock(&self.st().clients).retain(|c| !(c.client_id == client_id && c.key_id == key_id));
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
