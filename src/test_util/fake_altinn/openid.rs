//! Altinn's token issuer as API providers see it: OpenID Connect discovery and the JWKS of the
//! key that signs Altinn tokens, and Altinn-issued system-user tokens minted directly.

use super::AltinnState;
use crate::test_util::jwt::{TokenBuilder, now};
use crate::test_util::server::{self, EndpointMode, lock};
use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use uuid::Uuid;

/// `GET {issuer}.well-known/openid-configuration`.
pub(super) async fn discovery(State(st): State<Arc<AltinnState>>) -> Response {
    st.openid_requests.fetch_add(1, Ordering::SeqCst);
    let mode = lock(&st.config).openid_mode.clone();
    if let Some(res) = server::fault(&mode, &st.shutdown).await {
        return res;
    }
    let issuer = st.token_issuer();
    server::json(
        200,
        &json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}.well-known/openid-configuration/jwks"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
        }),
    )
}

/// `GET {issuer}.well-known/openid-configuration/jwks`: the key that signs Altinn tokens.
pub(super) async fn jwks(State(st): State<Arc<AltinnState>>) -> Response {
    st.openid_requests.fetch_add(1, Ordering::SeqCst);
    let mode = lock(&st.config).openid_mode.clone();
    if let Some(res) = server::fault(&mode, &st.shutdown).await {
        return res;
    }
    if matches!(mode, EndpointMode::Empty) {
        return server::json(200, &json!({ "keys": [] }));
    }
    let mut jwk = st.key.public_jwk();
    if let Value::Object(m) = &mut jwk {
        // Altinn publishes its certificate's thumbprint too; keys are still chosen by `kid`.
        m.insert("x5t".into(), json!("dGVzdC10aHVtYnByaW50"));
    }
    server::json(200, &json!({ "keys": [jwk] }))
}

impl AltinnState {
    /// The claims of an Altinn-issued system-user token, as the exchange writes them (protocol
    /// section 7): `authorization_details` as one object, the vendor in `consumer` and
    /// `urn:altinn:orgNumber`, authentication method `maskinporten`, level 3, `nbf` = `iat`,
    /// 30 minutes.
    pub(super) fn system_user_claims(&self, system_user: Uuid, owner_org: &str, vendor_org: &str) -> Map<String, Value> {
        let iat = now();
        let claims = json!({
            "authorization_details": {
                "type": "urn:altinn:systemuser",
                "systemuser_org": { "authority": "iso6523-actorid-upis", "ID": format!("0192:{owner_org}") },
                "systemuser_id": [system_user.hyphenated().to_string()],
                "system_id": format!("{vendor_org}_fake_system"),
                "externalRef": Uuid::new_v4().hyphenated().to_string(),
            },
            "token_type": "Bearer",
            "exp": iat + 30 * 60,
            "iat": iat,
            "nbf": iat,
            "client_id": Uuid::new_v4().to_string(),
            "consumer": { "authority": "iso6523-actorid-upis", "ID": format!("0192:{vendor_org}") },
            "urn:altinn:orgNumber": vendor_org,
            "urn:altinn:authenticatemethod": "maskinporten",
            "urn:altinn:authlevel": 3,
            "iss": self.token_issuer(),
            "jti": Uuid::new_v4().to_string(),
        });
        match claims {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// A builder for such a token, signed by this fake's Altinn key, header `typ` `JWT`, `kid`
    /// and `x5t` as Altinn writes them.
    pub(super) fn system_user_token(&self, system_user: Uuid, owner_org: &str) -> TokenBuilder {
        TokenBuilder::new(
            self.key.clone(),
            self.system_user_claims(system_user, owner_org, DEFAULT_VENDOR_ORG),
        )
        .header("typ", json!("JWT"))
        .header("x5t", json!("dGVzdC10aHVtYnByaW50"))
    }
}

/// The vendor (`consumer`) of minted Altinn tokens: SmartCloud AS, as in the samples.
pub(super) const DEFAULT_VENDOR_ORG: &str = "991825827";
