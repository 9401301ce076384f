//! [`FakeAltinn`]: the Maskinporten → Altinn token exchange and the PDP.

use super::fake_maskinporten::{FakeMaskinporten, MpState};
use super::jwt::{TokenBuilder, decode, now};
use super::key_pool::KeyRole;
use super::keys::TestKey;
use super::server::{self, Bound, EndpointMode, ServerGuard, lock};
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Uri, header};
use serde_json::{Map, Value, json};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

const SYSTEMUSER_UUID: &str = "urn:altinn:systemuser:uuid";
const ACTION_ID: &str = "urn:oasis:names:tc:xacml:1.0:action:action-id";
const RESOURCE: &str = "urn:altinn:resource";
const ORGANISATION: &str = "urn:altinn:organization:identifier-no";
const PERSON: &str = "urn:altinn:person:identifier-no";
const XS_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";
const XS_INTEGER: &str = "http://www.w3.org/2001/XMLSchema#integer";
const SUBJECT_CATEGORY: &str = "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject";
const ACTION_CATEGORY: &str = "urn:oasis:names:tc:xacml:3.0:attribute-category:action";
const RESOURCE_CATEGORY: &str = "urn:oasis:names:tc:xacml:3.0:attribute-category:resource";
/// XACML status `ok`.
pub const STATUS_OK: &str = "urn:oasis:names:tc:xacml:1.0:status:ok";
/// XACML status `syntax-error`.
pub const STATUS_SYNTAX_ERROR: &str = "urn:oasis:names:tc:xacml:1.0:status:syntax-error";
/// XACML status `processing-error`.
pub const STATUS_PROCESSING_ERROR: &str = "urn:oasis:names:tc:xacml:1.0:status:processing-error";

/// One request received by [`FakeAltinn`], recorded before it was answered.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The method.
    pub method: Method,
    /// The path (without the query).
    pub path: String,
    /// All request headers, including `Authorization` and `Ocp-Apim-Subscription-Key`.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A header as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The bearer token of the `Authorization` header.
    pub fn bearer_token(&self) -> Option<&str> {
        server::bearer(&self.headers)
    }
}

/// How [`FakeAltinn`]'s PDP answers.
///
/// [`Rules`](Self::Rules), [`Decision`](Self::Decision) and [`Result`](Self::Result) answer like
/// the real PDP: only after checking the subscription key (401), the Altinn token (401), the
/// content type (415), the JSON (400) and the XACML request (`200` with one `Indeterminate`
/// result, status `syntax-error`), and with one result per asked decision. The other variants
/// answer at once, whatever the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PdpAnswer {
    /// Evaluate the rules added with [`FakeAltinn::permit`]: `Permit` (with the permit
    /// obligations) when a rule matches the decision's system user, action, resource and party,
    /// otherwise `NotApplicable`.
    #[default]
    Rules,
    /// Every result has this `decision` (e.g. `"Deny"`, `"Indeterminate"`, `"permit"`,
    /// `"Maybe"`) and status ok; a decision equal to `permit` in any case carries the permit
    /// obligations.
    Decision(String),
    /// Every result is this JSON value, as is (odd statuses, obligations, members…).
    Result(Value),
    /// This raw HTTP answer.
    Body {
        /// HTTP status.
        status: u16,
        /// `Content-Type` header.
        content_type: String,
        /// Body.
        body: String,
    },
    /// `429 Too Many Requests` with `Retry-After` (as Azure API Management answers).
    TooManyRequests {
        /// Value of `Retry-After`, seconds.
        retry_after_secs: u64,
    },
    /// This HTTP status with an empty body.
    Status(u16),
    /// Never answers (until the fake is dropped or shut down, when it answers 503).
    Hang,
}

/// A fake Altinn platform on `http://127.0.0.1:PORT`, with the two endpoints the crate calls.
///
/// **Token exchange**, `GET {platform}/authentication/api/v1/exchange/maskinporten`: needs
/// `Authorization: Bearer <token>` with a token that the paired
/// [`FakeMaskinporten::verify_access_token`] accepts (any scope), else `401`. Answers an Altinn
/// JWT signed by this fake's own key (issuer `{platform}/authentication/api/v1/openid/`, lifetime
/// 30 min by default, claims shaped like a real exchanged token) as `text/plain`, or as a JSON
/// string literal with `application/json` when the request has `Accept: application/json`.
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
/// Every request to either endpoint is recorded before it is answered. The handle is cheap to
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
    pdp_requests: Mutex<Vec<RecordedRequest>>,
    exchange_requests: Mutex<Vec<RecordedRequest>>,
    shutdown: watch::Receiver<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    system_user: Uuid,
    action: String,
    resource: String,
    party: String,
}

#[derive(Default)]
struct Answers {
    default: PdpAnswer,
    queue: VecDeque<PdpAnswer>,
}

struct Config {
    delay: Duration,
    permit_obligations: Value,
    exchange_lifetime: Duration,
    exchange_mode: EndpointMode,
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
                exchange_lifetime: Duration::from_secs(30 * 60),
                exchange_mode: EndpointMode::Normal,
            }),
            issued: Mutex::new(HashSet::new()),
            pdp_requests: Mutex::new(Vec::new()),
            exchange_requests: Mutex::new(Vec::new()),
            shutdown: bound.shutdown_signal(),
        });
        let router = Router::new()
            .route("/authentication/api/v1/exchange/maskinporten", get(exchange))
            .route("/authorization/api/v1/authorize", post(pdp))
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

    /// The key that signs Altinn tokens.
    pub fn signing_key(&self) -> Arc<TestKey> {
        self.st().key.clone()
    }

    /// Adds a rule: `system_user` may do `action` on `resource` for `party` (a 9-digit
    /// organisation number or an 11-digit national identity number, compared as text).
    pub fn permit(&self, system_user: Uuid, action: &str, resource: &str, party: &str) {
        let rule = Rule {
            system_user,
            action: action.into(),
            resource: resource.into(),
            party: party.into(),
        };
        lock(&self.st().rules).push(rule);
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

impl AltinnState {
    fn token_issuer(&self) -> String {
        format!("{}/authentication/api/v1/openid/", self.platform)
    }

    /// Issues an Altinn token carrying `from`'s identity, the way the exchange does.
    fn issue(&self, from: &Map<String, Value>) -> String {
        let lifetime = lock(&self.config).exchange_lifetime;
        let iat = now();
        let exp = iat.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
        let mut claims = Map::new();
        if let Some(details) = from.get("authorization_details") {
            // Altinn turns the RAR array into its system-user object.
            let details = match details {
                Value::Array(list) => list
                    .iter()
                    .find(|d| d.get("type").and_then(Value::as_str) == Some("urn:altinn:systemuser"))
                    .cloned()
                    .unwrap_or_else(|| details.clone()),
                other => other.clone(),
            };
            claims.insert("authorization_details".into(), details);
        }
        for name in ["scope", "token_type", "client_id", "consumer"] {
            if let Some(v) = from.get(name) {
                claims.insert(name.into(), v.clone());
            }
        }
        claims.insert("exp".into(), json!(exp));
        claims.insert("iat".into(), json!(iat));
        let consumer = from.get("consumer").and_then(|c| c.get("ID")).and_then(Value::as_str);
        if let Some(org) = consumer.and_then(|id| id.strip_prefix("0192:")) {
            claims.insert("urn:altinn:orgNumber".into(), json!(org));
        }
        claims.insert("urn:altinn:authenticatemethod".into(), json!("maskinporten"));
        claims.insert("urn:altinn:authlevel".into(), json!(3));
        claims.insert("iss".into(), json!(self.token_issuer()));
        let jti = Uuid::new_v4().to_string();
        claims.insert("jti".into(), json!(jti));
        claims.insert("nbf".into(), json!(iat));
        lock(&self.issued).insert(jti);
        TokenBuilder::new(self.key.clone(), claims).header("typ", json!("JWT")).sign()
    }

    /// Whether `token` is an Altinn token this fake issued, unexpired and not revoked.
    fn accepts(&self, token: &str) -> bool {
        let Some(d) = decode(token) else { return false };
        let alg = d.header.get("alg").and_then(Value::as_str).unwrap_or_default();
        if d.header.get("kid").and_then(Value::as_str) != Some(self.key.kid())
            || !self.key.verify_raw(alg, d.signing_input.as_bytes(), &d.signature)
        {
            return false;
        }
        let unexpired = d.claims.get("exp").and_then(Value::as_i64).is_some_and(|exp| exp > now());
        let jti = d.claims.get("jti").and_then(Value::as_str).unwrap_or_default();
        unexpired && lock(&self.issued).contains(jti)
    }
}

fn record(method: Method, uri: &Uri, headers: HeaderMap, body: Bytes) -> RecordedRequest {
    RecordedRequest {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    }
}

async fn exchange(State(st): State<Arc<AltinnState>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let req = record(method, &uri, headers, body);
    lock(&st.exchange_requests).push(req.clone());
    let mode = lock(&st.config).exchange_mode.clone();
    if let Some(res) = server::fault(&mode, &st.shutdown).await {
        return res;
    }
    let claims = req.bearer_token().and_then(|t| st.maskinporten.verify_access_token(t));
    let Some(Value::Object(claims)) = claims else {
        return unauthorized();
    };
    if mode == EndpointMode::Empty {
        return server::raw(200, "text/plain; charset=utf-8", "");
    }
    let token = st.issue(&claims);
    let wants_json = req.header("accept").is_some_and(|a| {
        a.split(',').any(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
    });
    if wants_json {
        let body = Value::String(token);
        if mode == EndpointMode::Oversized {
            return server::json(200, &server::pad(body));
        }
        return server::raw(200, "application/json; charset=utf-8", body.to_string());
    }
    if mode == EndpointMode::Oversized {
        let padded = format!("{token}{}", " ".repeat(server::OVERSIZE));
        return server::raw(200, "text/plain; charset=utf-8", padded);
    }
    server::raw(200, "text/plain; charset=utf-8", token)
}

/// 401 as ASP.NET's JWT bearer handler answers it.
fn unauthorized() -> Response {
    let mut res = server::status(401);
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
    res
}

async fn pdp(State(st): State<Arc<AltinnState>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let req = record(method, &uri, headers, body);
    lock(&st.pdp_requests).push(req.clone());
    let delay = lock(&st.config).delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let answer = {
        let mut answers = lock(&st.answers);
        answers.queue.pop_front().unwrap_or_else(|| answers.default.clone())
    };
    match answer {
        PdpAnswer::Rules | PdpAnswer::Decision(_) | PdpAnswer::Result(_) => {}
        PdpAnswer::Body {
            status,
            content_type,
            body,
        } => return server::raw(status, &content_type, body),
        PdpAnswer::TooManyRequests { retry_after_secs } => {
            let body = json!({
                "statusCode": 429,
                "message": format!("Rate limit is exceeded. Try again in {retry_after_secs} seconds."),
            });
            let mut res = server::json(429, &body);
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return res;
        }
        PdpAnswer::Status(code) => return server::status(code),
        PdpAnswer::Hang => return server::hang(&st.shutdown).await,
    }

    if req.header("ocp-apim-subscription-key") != Some(st.subscription_key.as_str()) {
        let body = json!({
            "statusCode": 401,
            "message": "Access denied due to missing or invalid subscription key. Make sure to provide a valid key for an active subscription.",
        });
        return server::json(401, &body);
    }
    if !req.bearer_token().is_some_and(|t| st.accepts(t)) {
        return unauthorized();
    }
    let is_json = req
        .header("content-type")
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        let problem = json!({
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5.16",
            "title": "Unsupported Media Type",
            "status": 415,
        });
        return server::raw(415, "application/problem+json; charset=utf-8", problem.to_string());
    }
    let Ok(root) = serde_json::from_slice::<Value>(&req.body) else {
        let problem = json!({
            "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
            "title": "One or more validation errors occurred.",
            "status": 400,
            "errors": { "$": ["The JSON value could not be converted."] },
        });
        return server::raw(400, "application/problem+json; charset=utf-8", problem.to_string());
    };
    let results = match decisions(&root) {
        Ok(decisions) => decisions.iter().map(|d| evaluate(&st, &answer, d)).collect(),
        Err(_) => vec![result("Indeterminate", STATUS_SYNTAX_ERROR, Value::Null, Value::Null)],
    };
    server::raw(200, "application/json; charset=utf-8", json!({ "response": results }).to_string())
}

// ---------------------------------------------------------------------------------------------
// XACML
// ---------------------------------------------------------------------------------------------

/// One decision asked for.
#[derive(Debug)]
struct Decision {
    subject: Uuid,
    action: String,
    resource: String,
    party: String,
    /// The `category` echo of its result (`null` if nothing was sent with `IncludeInResult`).
    echo: Value,
}

#[derive(Debug, Clone)]
struct Category {
    id: Option<String>,
    attributes: Vec<Attribute>,
}

#[derive(Debug, Clone)]
struct Attribute {
    id: String,
    value: String,
    data_type: Option<String>,
    include: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Subject,
    Action,
    Resource,
}

type Syntax<T> = Result<T, String>;

/// A member by case-insensitive name; `null` counts as absent; two spellings of one name are an
/// error.
fn member<'v>(value: &'v Value, name: &str) -> Syntax<Option<&'v Value>> {
    let Some(obj) = value.as_object() else { return Ok(None) };
    let mut found = None;
    for (k, v) in obj {
        if k.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(format!("member {name} appears twice"));
            }
            found = Some(v);
        }
    }
    Ok(found.filter(|v| !v.is_null()))
}

/// An object or an array of objects, as a list.
fn list<'v>(value: Option<&'v Value>, what: &str) -> Syntax<Vec<&'v Value>> {
    match value {
        None => Ok(Vec::new()),
        Some(v @ Value::Object(_)) => Ok(vec![v]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                if i.is_object() {
                    Ok(i)
                } else {
                    Err(format!("{what} must hold objects"))
                }
            })
            .collect(),
        Some(_) => Err(format!("{what} must be an object or an array")),
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn categories(request: &Value, name: &str) -> Syntax<Vec<Category>> {
    let mut out = Vec::new();
    for cat in list(member(request, name)?, name)? {
        let id = match member(cat, "Id")? {
            None => None,
            Some(v) => Some(v.as_str().ok_or("Id must be a string")?.to_owned()),
        };
        let mut attributes = Vec::new();
        for attr in list(member(cat, "Attribute")?, "Attribute")? {
            let id = member(attr, "AttributeId")?
                .and_then(Value::as_str)
                .ok_or("AttributeId is missing")?;
            let value = member(attr, "Value")?.and_then(text).ok_or("Value is missing")?;
            let data_type = match member(attr, "DataType")? {
                None => None,
                Some(v) => Some(v.as_str().ok_or("DataType must be a string")?.to_owned()),
            };
            let include = match member(attr, "IncludeInResult")? {
                None => false,
                Some(v) => v.as_bool().ok_or("IncludeInResult must be a boolean")?,
            };
            attributes.push(Attribute {
                id: id.to_owned(),
                value,
                data_type,
                include,
            });
        }
        out.push(Category { id, attributes });
    }
    Ok(out)
}

/// The decisions a request asks for, or why it is a syntax error.
fn decisions(root: &Value) -> Syntax<Vec<Decision>> {
    let request = member(root, "Request")?.filter(|r| r.is_object()).ok_or("Request is missing")?;
    let subjects = categories(request, "AccessSubject")?;
    let actions = categories(request, "Action")?;
    let resources = categories(request, "Resource")?;

    let references = match member(request, "MultiRequests")? {
        None => Vec::new(),
        Some(multi) => list(member(multi, "RequestReference")?, "RequestReference")?,
    };
    if references.len() < 2 {
        let (s, a, r) = match (subjects.as_slice(), actions.as_slice(), resources.as_slice()) {
            ([s], [a], [r]) => (s, a, r),
            _ => return Err("a single request needs exactly one category of each kind".into()),
        };
        return Ok(vec![decision(s, a, r)?]);
    }

    let all: Vec<(Kind, &Category)> = subjects
        .iter()
        .map(|c| (Kind::Subject, c))
        .chain(actions.iter().map(|c| (Kind::Action, c)))
        .chain(resources.iter().map(|c| (Kind::Resource, c)))
        .collect();
    let mut ids = HashSet::new();
    for (_, c) in &all {
        if let Some(id) = &c.id
            && !ids.insert(id.as_str())
        {
            return Err(format!("category Id {id} is used twice"));
        }
    }
    let mut out = Vec::new();
    for reference in references {
        let names = member(reference, "ReferenceId")?
            .and_then(Value::as_array)
            .ok_or("ReferenceId must be an array")?;
        let mut picked: Vec<(Kind, &Category)> = Vec::new();
        for name in names {
            let name = name.as_str().ok_or("ReferenceId must hold strings")?;
            let found = all
                .iter()
                .find(|(_, c)| c.id.as_deref() == Some(name))
                .ok_or_else(|| format!("unknown ReferenceId {name}"))?;
            picked.push(*found);
        }
        let one = |kind: Kind| -> Syntax<&Category> {
            match picked.iter().filter(|(k, _)| *k == kind).collect::<Vec<_>>().as_slice() {
                [(_, c)] => Ok(c),
                _ => Err("a reference must name exactly one category of each kind".into()),
            }
        };
        out.push(decision(one(Kind::Subject)?, one(Kind::Action)?, one(Kind::Resource)?)?);
    }
    Ok(out)
}

fn decision(subject: &Category, action: &Category, resource: &Category) -> Syntax<Decision> {
    let subject_id = match subject.attributes.as_slice() {
        [a] if a.id == SYSTEMUSER_UUID => Uuid::parse_str(&a.value).map_err(|_| "the system user is not a UUID")?,
        _ => return Err("the subject must be exactly one urn:altinn:systemuser:uuid".into()),
    };
    let action_id = match action
        .attributes
        .iter()
        .filter(|a| a.id == ACTION_ID)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [a] => a.value.clone(),
        _ => return Err("the action needs one action-id".into()),
    };
    let resource_id = match resource
        .attributes
        .iter()
        .filter(|a| a.id == RESOURCE)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [a] => a.value.clone(),
        _ => return Err("the resource needs one urn:altinn:resource".into()),
    };
    let parties: Vec<&Attribute> = resource
        .attributes
        .iter()
        .filter(|a| a.id == ORGANISATION || a.id == PERSON)
        .collect();
    let party = match parties.as_slice() {
        [a] if a.id == ORGANISATION && digits(&a.value, 9) => a.value.clone(),
        [a] if a.id == PERSON && digits(&a.value, 11) => a.value.clone(),
        _ => return Err("the resource needs exactly one valid party".into()),
    };
    let echo: Vec<Value> = [
        (SUBJECT_CATEGORY, subject),
        (ACTION_CATEGORY, action),
        (RESOURCE_CATEGORY, resource),
    ]
    .into_iter()
    .filter_map(|(category_id, c)| echo_category(category_id, c))
    .collect();
    let echo = if echo.is_empty() { Value::Null } else { Value::Array(echo) };
    Ok(Decision {
        subject: subject_id,
        action: action_id,
        resource: resource_id,
        party,
        echo,
    })
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// The echo of a category's `IncludeInResult` attributes, shaped like the live PDP's.
fn echo_category(category_id: &str, c: &Category) -> Option<Value> {
    let attributes: Vec<Value> = c
        .attributes
        .iter()
        .filter(|a| a.include)
        .map(|a| {
            json!({
                "attributeId": a.id,
                "value": a.value,
                "issuer": null,
                "dataType": a.data_type.as_deref().unwrap_or(XS_STRING),
                "includeInResult": false,
            })
        })
        .collect();
    (!attributes.is_empty()).then(|| json!({ "categoryId": category_id, "id": null, "content": null, "attribute": attributes }))
}

/// One result in the live wire format.
fn result(decision: &str, status: &str, obligations: Value, category: Value) -> Value {
    json!({
        "decision": decision,
        "status": {
            "statusMessage": null,
            "statusDetails": null,
            "statusCode": { "value": status, "statusCode": null },
        },
        "obligations": obligations,
        "associateAdvice": null,
        "category": category,
        "policyIdentifierList": null,
    })
}

fn evaluate(st: &AltinnState, answer: &PdpAnswer, d: &Decision) -> Value {
    let obligations = || lock(&st.config).permit_obligations.clone();
    match answer {
        PdpAnswer::Result(v) => v.clone(),
        PdpAnswer::Decision(s) if s.eq_ignore_ascii_case("permit") => result(s, STATUS_OK, obligations(), d.echo.clone()),
        PdpAnswer::Decision(s) => result(s, STATUS_OK, Value::Null, d.echo.clone()),
        _ => {
            let rule = Rule {
                system_user: d.subject,
                action: d.action.clone(),
                resource: d.resource.clone(),
                party: d.party.clone(),
            };
            if lock(&st.rules).contains(&rule) {
                result("Permit", STATUS_OK, obligations(), d.echo.clone())
            } else {
                result("NotApplicable", STATUS_OK, Value::Null, d.echo.clone())
            }
        }
    }
}
