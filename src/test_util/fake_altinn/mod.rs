//! [`FakeAltinn`]: the Maskinporten → Altinn token exchange and the PDP.
//!
//! - `mod.rs`: the fake, its state and its settings.
//! - `exchange.rs`: the token exchange and the Altinn tokens it issues.
//! - `pdp.rs`: the authorize endpoint: its checks and its answers.
//! - `xacml.rs`: reading the XACML JSON request into decisions.
//! - `script.rs`: scripted answers and faults ([`PdpAnswer`]).
//! - `recorded.rs`: [`RecordedRequest`].
//! - `resource_registry.rs`: the resource registry's read API.

mod exchange;
mod openid;
mod pdp;
mod recorded;
mod resource_registry;
mod script;
mod xacml;

pub use recorded::RecordedRequest;
pub use script::{ExchangeFormat, PdpAnswer};

use super::fake_maskinporten::{FakeMaskinporten, MpState};
use super::jwt::TokenBuilder;
use super::key_pool::KeyRole;
use super::keys::TestKey;
use super::server::{Bound, EndpointMode, ServerGuard, lock};
use axum::Router;
use axum::routing::{get, post};
use script::Answers;
use serde_json::{Value, json};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

const XS_INTEGER: &str = "http://www.w3.org/2001/XMLSchema#integer";
/// XACML status `ok`.
pub const STATUS_OK: &str = "urn:oasis:names:tc:xacml:1.0:status:ok";
/// XACML status `syntax-error`.
pub const STATUS_SYNTAX_ERROR: &str = "urn:oasis:names:tc:xacml:1.0:status:syntax-error";
/// XACML status `processing-error`.
pub const STATUS_PROCESSING_ERROR: &str = "urn:oasis:names:tc:xacml:1.0:status:processing-error";

/// A fake Altinn platform on `http://127.0.0.1:PORT`, with the endpoints the crate calls.
///
/// **Token exchange**, `GET {platform}/authentication/api/v1/exchange/maskinporten`: needs
/// `Authorization: Bearer <token>` with a token that the paired
/// [`FakeMaskinporten::verify_access_token`] accepts (any scope), else `401`. Answers an Altinn
/// JWT signed by this fake's own key (issuer `{platform}/authentication/api/v1/openid/`, lifetime
/// 30 min by default, claims shaped like a real exchanged token) as `text/plain`, or as a JSON
/// string literal with `application/json` when the request has `Accept: application/json`
/// (see [`set_exchange_format`](Self::set_exchange_format)). Faults: [`set_exchange_mode`]
/// (every answer) and [`push_exchange_mode`] (the next answers, one each).
///
/// [`set_exchange_mode`]: Self::set_exchange_mode
/// [`push_exchange_mode`]: Self::push_exchange_mode
///
/// **PDP**, `POST {platform}/authorization/api/v1/authorize`, checked like the real one, in this
/// order: the subscription key in `Ocp-Apim-Subscription-Key` (`401` with an API Management
/// style JSON body); `Authorization: Bearer` with an Altinn token this fake issued, unexpired
/// and not revoked (`401`); `Content-Type: application/json` (`415`); a JSON body (`400`). Then
/// the XACML request is read with case-insensitive member names; categories may be objects or
/// arrays. Each decision needs exactly one subject attribute, `urn:altinn:systemuser:uuid`, with
/// a UUID; an `urn:oasis:names:tc:xacml:1.0:action:action-id`; one `urn:altinn:resource`; and
/// exactly one party, `urn:altinn:organization:identifier-no` (9 digits) or
/// `urn:altinn:person:identifier-no` (11 digits). A request that breaks any of this gets `200`
/// with a single `Indeterminate` result with status `syntax-error`. With
/// `MultiRequests.RequestReference` of two or more references each reference is one decision
/// (its `ReferenceId`s name category `Id`s) and the answer has one result per reference, in
/// order; otherwise the request must have exactly one category of each kind. Results are in the
/// live wire format (camelCase, `null` members written); attributes sent with
/// `IncludeInResult: true` are echoed in the result's `category`, as the real PDP does.
///
/// **Resource registry**, `GET {platform}/resourceregistry/api/v1/resource/{id}`, without
/// credentials: `200` with the resource's description (its `identifier`, `title`,
/// `resourceType`, …) for a resource this fake knows, `404` with a problem body otherwise. It
/// knows `kravogbetaling` and every resource named in a rule ([`permit`](Self::permit),
/// [`rule`](Self::rule)); [`add_resource`](Self::add_resource) and
/// [`remove_resource`](Self::remove_resource) change that.
///
/// Every request to the exchange and the PDP is recorded before it is answered. The handle is cheap to
/// clone; the server stops when the last clone is dropped. It never panics on what clients send.
#[derive(Clone)]
pub struct FakeAltinn {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for FakeAltinn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAltinn")
            .field("platform", &self.inner.state.platform)
            .finish_non_exhaustive()
    }
}

struct Handle {
    state: Arc<AltinnState>,
    guard: ServerGuard,
}

struct AltinnState {
    platform: String,
    subscription_key: String,
    maskinporten: Arc<MpState>,
    key: Arc<TestKey>,
    rules: Mutex<Vec<Rule>>,
    answers: Mutex<Answers>,
    config: Mutex<Config>,
    issued: Mutex<HashSet<String>>,
    /// The resource registry's resources.
    resources: Mutex<HashSet<String>>,
    pdp_requests: Mutex<Vec<RecordedRequest>>,
    exchange_requests: Mutex<Vec<RecordedRequest>>,
    /// Requests for the OpenID discovery document and the JWKS.
    openid_requests: AtomicUsize,
    shutdown: watch::Receiver<bool>,
}

/// One question and the PDP's decision on it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    system_user: Uuid,
    action: String,
    resource: String,
    party: String,
    decision: String,
}

struct Config {
    delay: Duration,
    permit_obligations: Value,
    reverse_results: bool,
    exchange_lifetime: Duration,
    exchange_mode: EndpointMode,
    exchange_queue: VecDeque<EndpointMode>,
    exchange_format: ExchangeFormat,
    openid_mode: EndpointMode,
}

/// The default obligation on permits: minimum authentication level 2 (a system user has 3).
fn default_obligations() -> Value {
    json!([{
        "id": "urn:altinn:obligation:authenticationLevel1",
        "attributeAssignment": [{
            "attributeId": "urn:altinn:obligation1-assignment1",
            "value": "2",
            "category": "urn:altinn:minimum-authenticationlevel",
            "dataType": XS_INTEGER,
            "issuer": null
        }]
    }])
}

impl FakeAltinn {
    /// Starts the fake. Exchanges accept tokens that `maskinporten` issued and still publishes
    /// keys for; the PDP requires `subscription_key`. Altinn tokens are signed by the pooled
    /// [`KeyRole::Altinn`] key under a random `kid` (no key is generated).
    ///
    /// Must be called inside a Tokio runtime. The port is bound before this returns.
    ///
    /// # Panics
    ///
    /// If `127.0.0.1:0` cannot be bound.
    pub async fn start(maskinporten: &FakeMaskinporten, subscription_key: &str) -> FakeAltinn {
        let bound = Bound::bind().await;
        let state = Arc::new(AltinnState {
            platform: format!("http://{}", bound.addr),
            subscription_key: subscription_key.to_owned(),
            maskinporten: maskinporten.state(),
            key: Arc::new(TestKey::for_role(KeyRole::Altinn).with_kid(Uuid::new_v4().to_string())),
            rules: Mutex::new(Vec::new()),
            answers: Mutex::new(Answers::default()),
            config: Mutex::new(Config {
                delay: Duration::ZERO,
                permit_obligations: default_obligations(),
                reverse_results: false,
                exchange_lifetime: Duration::from_secs(30 * 60),
                exchange_mode: EndpointMode::Normal,
                exchange_queue: VecDeque::new(),
                exchange_format: ExchangeFormat::Negotiated,
                openid_mode: EndpointMode::Normal,
            }),
            issued: Mutex::new(HashSet::new()),
            resources: Mutex::new(resource_registry::DEFAULT_RESOURCES.iter().map(|r| (*r).to_owned()).collect()),
            pdp_requests: Mutex::new(Vec::new()),
            exchange_requests: Mutex::new(Vec::new()),
            openid_requests: AtomicUsize::new(0),
            shutdown: bound.shutdown_signal(),
        });
        let router = Router::new()
            .route("/authentication/api/v1/exchange/maskinporten", get(exchange::exchange))
            .route("/authorization/api/v1/authorize", post(pdp::pdp))
            .route(
                "/authentication/api/v1/openid/.well-known/openid-configuration",
                get(openid::discovery),
            )
            .route(
                "/authentication/api/v1/openid/.well-known/openid-configuration/jwks",
                get(openid::jwks),
            )
            .route("/resourceregistry/api/v1/resource/{id}", get(resource_registry::resource))
            .with_state(state.clone());
        let guard = bound.serve(router);
        FakeAltinn {
            inner: Arc::new(Handle { state, guard }),
        }
    }

    fn st(&self) -> &AltinnState {
        &self.inner.state
    }

    /// Stops the server now (it also stops when the last handle is dropped).
    pub fn shutdown(&self) {
        self.inner.guard.stop();
    }

    /// The platform URL, `http://127.0.0.1:PORT` (no trailing slash).
    pub fn platform_url(&self) -> String {
        self.st().platform.clone()
    }

    /// A PDP client of this fake, wired as a service provider wires one: a Maskinporten client
    /// `client_id` registered at `maskinporten` (organisation 974760673, scope
    /// `altinn:authorization/authorize`) under the pooled [`KeyRole::Provider`] key with `kid`
    /// `client_id`, and this fake's subscription key. For benchmarks and examples that need the
    /// system-user layer against the fakes; `examples/quickstart.rs` shows the wiring itself.
    ///
    /// # Panics
    ///
    /// Never for the fakes' own URLs (the builders' errors are for bad configuration).
    pub fn pdp_client(&self, maskinporten: &FakeMaskinporten, client_id: &str) -> crate::pdp::AltinnPdp {
        let provider = TestKey::for_role(KeyRole::Provider).with_kid(client_id);
        maskinporten.register_client(super::ClientRegistration::new(
            client_id,
            &provider,
            "974760673",
            &[crate::pdp::AUTHORIZE_SCOPE],
        ));
        let credentials = crate::pdp::MaskinportenCredentials::builder()
            .issuer(maskinporten.issuer())
            .client_id(client_id)
            .key_id(provider.kid())
            .private_key_pem(provider.private_key_pkcs8_pem().as_bytes())
            .build()
            .expect("credentials for the fake Maskinporten");
        crate::pdp::AltinnPdp::builder()
            .platform_url(self.platform_url())
            .subscription_key(self.st().subscription_key.clone())
            .credentials(credentials)
            .build()
            .expect("a PDP client for the fake Altinn")
    }

    /// `{platform}/authorization/api/v1/authorize`.
    pub fn pdp_url(&self) -> String {
        format!("{}/authorization/api/v1/authorize", self.st().platform)
    }

    /// `{platform}/authentication/api/v1/exchange/maskinporten`.
    pub fn exchange_url(&self) -> String {
        format!("{}/authentication/api/v1/exchange/maskinporten", self.st().platform)
    }

    /// The issuer of Altinn tokens, `{platform}/authentication/api/v1/openid/`.
    pub fn token_issuer(&self) -> String {
        self.st().token_issuer()
    }

    /// An Altinn-issued system-user token for the API under test, as the exchange writes them
    /// (`authorization_details` one object, `nbf`, `urn:altinn:orgNumber` = `consumer` =
    /// 991825827, `urn:altinn:authenticatemethod` `maskinporten`, `urn:altinn:authlevel` 3, 30
    /// minutes; header `typ`, `kid`, `x5t`), signed by [`signing_key`](Self::signing_key), whose
    /// public key this fake publishes through OpenID Connect discovery at
    /// `{token_issuer}.well-known/openid-configuration`. Add the API's scope with
    /// [`TokenBuilder::scope`].
    pub fn system_user_token(&self, system_user: Uuid, owner_org: &str) -> TokenBuilder {
        self.st().system_user_token(system_user, owner_org)
    }

    /// Faults for the OpenID discovery document and the JWKS.
    pub fn set_openid_mode(&self, mode: EndpointMode) {
        lock(&self.st().config).openid_mode = mode;
    }

    /// Requests for the OpenID discovery document and the JWKS so far.
    pub fn openid_requests(&self) -> usize {
        self.st().openid_requests.load(Ordering::SeqCst)
    }

    /// The key that signs Altinn tokens.
    pub fn signing_key(&self) -> Arc<TestKey> {
        self.st().key.clone()
    }

    /// Adds a rule: `system_user` may do `action` on `resource` for `party` (a 9-digit
    /// organisation number or an 11-digit national identity number, compared as text). The
    /// same as [`rule`](Self::rule)`(…, "Permit")`.
    pub fn permit(&self, system_user: Uuid, action: &str, resource: &str, party: &str) {
        self.rule(system_user, action, resource, party, "Permit");
    }

    /// Adds a rule with any decision: under [`PdpAnswer::Rules`], the question of `system_user`
    /// doing `action` on `resource` for `party` is answered `decision` (e.g. `"Deny"`,
    /// `"Indeterminate"`), with status ok; a `"Permit"` carries the permit obligations. When
    /// several rules match a question, the last one added wins.
    pub fn rule(&self, system_user: Uuid, action: &str, resource: &str, party: &str, decision: &str) {
        let rule = Rule {
            system_user,
            action: action.into(),
            resource: resource.into(),
            party: party.into(),
            decision: decision.into(),
        };
        self.add_resource(resource);
        lock(&self.st().rules).push(rule);
    }

    /// The resource registry knows `resource` from now on (rules add theirs themselves).
    pub fn add_resource(&self, resource: &str) {
        lock(&self.st().resources).insert(resource.to_owned());
    }

    /// The resource registry answers `404` for `resource` from now on (until a rule or
    /// [`add_resource`](Self::add_resource) names it again).
    pub fn remove_resource(&self, resource: &str) {
        lock(&self.st().resources).remove(resource);
    }

    /// Removes every rule.
    pub fn clear_rules(&self) {
        lock(&self.st().rules).clear();
    }

    /// How the PDP answers when no one-shot answer is queued ([`PdpAnswer::Rules`] by default).
    pub fn set_answer(&self, a: PdpAnswer) {
        lock(&self.st().answers).default = a;
    }

    /// Queues a one-shot answer. Queued answers are used by the next PDP requests, one each, in
    /// order, before the default (every request consumes one, whether it passes the checks or
    /// not).
    pub fn push_answer(&self, a: PdpAnswer) {
        lock(&self.st().answers).queue.push_back(a);
    }

    /// Delays every PDP answer by `d` (zero by default).
    pub fn set_delay(&self, d: Duration) {
        lock(&self.st().config).delay = d;
    }

    /// Whether the results of a multi-request come in reverse order (`false` by default). The
    /// real PDP does not promise to answer in the order asked; a client must match each result
    /// to its question by the attributes it echoes.
    pub fn set_results_reversed(&self, reversed: bool) {
        lock(&self.st().config).reverse_results = reversed;
    }

    /// The `obligations` array of rule permits. The default is one obligation,
    /// `urn:altinn:obligation:authenticationLevel1`, requiring authentication level 2 (category
    /// `urn:altinn:minimum-authenticationlevel`), which a system user meets.
    pub fn set_permit_obligations(&self, obligations: Value) {
        lock(&self.st().config).permit_obligations = obligations;
    }

    /// Lifetime of Altinn tokens from the exchange (30 minutes by default).
    pub fn set_exchange_token_lifetime(&self, d: Duration) {
        lock(&self.st().config).exchange_lifetime = d;
    }

    /// How the exchange endpoint answers ([`EndpointMode::Empty`] gives `200` with an empty
    /// body).
    pub fn set_exchange_mode(&self, mode: EndpointMode) {
        lock(&self.st().config).exchange_mode = mode;
    }

    /// Queues a one-shot mode for the exchange endpoint: the next exchanges use the queued
    /// modes, one each, in order, before the mode set with
    /// [`set_exchange_mode`](Self::set_exchange_mode). For example
    /// `push_exchange_mode(EndpointMode::Status(401))` refuses the next exchange only.
    pub fn push_exchange_mode(&self, mode: EndpointMode) {
        lock(&self.st().config).exchange_queue.push_back(mode);
    }

    /// How the exchange writes the token in a `200` answer ([`ExchangeFormat::Negotiated`] by
    /// default).
    pub fn set_exchange_format(&self, format: ExchangeFormat) {
        lock(&self.st().config).exchange_format = format;
    }

    /// Revokes every Altinn token issued so far: the PDP answers them with 401. Tokens issued
    /// later are accepted.
    pub fn revoke_tokens(&self) {
        lock(&self.st().issued).clear();
    }

    /// Issues an Altinn token the PDP accepts, without an exchange (for calling the PDP
    /// directly). Its claims are those of an exchanged provider token.
    pub fn altinn_token(&self) -> String {
        let claims = json!({
            "scope": "altinn:authorization/authorize",
            "token_type": "Bearer",
            "client_id": Uuid::new_v4().to_string(),
            "consumer": { "authority": "iso6523-actorid-upis", "ID": "0192:991825827" },
        });
        match claims {
            Value::Object(m) => self.st().issue(&m),
            _ => String::new(),
        }
    }

    /// Every request the PDP received, in order.
    pub fn pdp_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.st().pdp_requests).clone()
    }

    /// How many requests the PDP received.
    pub fn pdp_request_count(&self) -> usize {
        lock(&self.st().pdp_requests).len()
    }

    /// How many requests the exchange endpoint received (refused ones too).
    pub fn exchange_count(&self) -> usize {
        lock(&self.st().exchange_requests).len()
    }

    /// Every request the exchange endpoint received, in order.
    pub fn exchange_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.st().exchange_requests).clone()
    }
}
