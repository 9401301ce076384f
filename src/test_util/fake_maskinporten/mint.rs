//! Tokens: access tokens for the API under test, client assertions for the token endpoint, the
//! access tokens the grant issues, and checking a token as a resource server would.

use super::{ClientRegistration, DEFAULT_CLIENT_ID, DEFAULT_CONSUMER_ORG, DEFAULT_SCOPE, DEFAULT_SYSTEM_ID, FakeMaskinporten, MpState};
use crate::test_util::jwt::{TokenBuilder, decode, now, random_jti};
use crate::test_util::keys::TestKey;
use crate::test_util::server::lock;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use uuid::Uuid;

/// ISO 6523 authority of organisation identifiers.
const AUTHORITY: &str = "iso6523-actorid-upis";

impl FakeMaskinporten {
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

    pub(super) fn sign_access_token(&self, client: &ClientRegistration, scope: &str, lifetime: i64) -> String {
        let iat = now();
        let mut claims = Map::new();
        claims.insert("scope".into(), json!(scope));
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("client_amr".into(), json!("private_key_jwt"));
        claims.insert("token_type".into(), json!("Bearer"));
        claims.insert("exp".into(), json!(iat.saturating_add(lifetime)));
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
pub(super) fn number(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}
