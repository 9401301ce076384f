//! Configuration from files (feature `config`): the layers' and the PDP client's settings as
//! `serde::Deserialize` types, for TOML, YAML or the environment through `figment`, `config` or
//! plain `toml`.
//!
//! Each key is the name of the builder method it sets, and [`build`](AuthConfig::build) runs the
//! builders, so a document is checked exactly as code is. An error names its key with its
//! section ([`ConfigError::key`](crate::ConfigError::key), for example
//! `pdp.credentials.client_id`). Unknown keys are refused by the deserializer, which names them.
//! Secrets ([`Secret`]) come from an environment variable or a file, or from the document; they
//! are read when the configuration is built and never shown by `Debug`.
//!
//! ```
//! use altinn_systemuser::config::AuthConfig;
//!
//! let doc = r#"
//! exempt_paths = ["/healthz", "/grpc.health.v1.Health/Check"]
//!
//! [maskinporten]
//! issuer = "https://test.maskinporten.no/"
//! require_scope = ["skatteetaten:kravogbetalinger"]
//!
//! [system_user]
//! resource = "kravogbetaling"
//! party_from_path = "/krav/{orgnr}"
//!
//! [pdp]
//! environment = "tt02"
//! subscription_key = { env = "ALTINN_SUBSCRIPTION_KEY" }
//!
//! [pdp.credentials]
//! issuer = "https://test.maskinporten.no/"
//! client_id = "my-client-id"
//! key_id = "my-key"
//! private_key_pem = { file = "/run/secrets/maskinporten.pem" }
//! "#;
//! let config: AuthConfig = toml::from_str(doc).unwrap();
//! // config.build()? gives the AuthLayer (both layers in order) once the secrets can be read.
//! let err = config.build().unwrap_err();
//! assert_eq!(err.key(), "pdp.subscription_key"); // ALTINN_SUBSCRIPTION_KEY is not set here
//! ```

mod maskinporten;
mod pdp;
mod secret;
mod systemuser;

pub use maskinporten::{AltinnTokensConfig, MaskinportenConfig};
pub use pdp::{CredentialsConfig, PdpConfig, RateLimit};
pub use secret::Secret;
pub use systemuser::SystemUserConfig;

use serde::Deserialize;

use crate::ConfigError;
use crate::pdp::AltinnPdp;
use crate::reject::RefusalForm;
use crate::stack::AuthLayer;

/// Everything for [`AuthLayer`]: the `[maskinporten]`, `[system_user]` and `[pdp]` sections and
/// the paths that skip both layers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthConfig {
    /// The Maskinporten layer.
    #[serde(default)]
    pub maskinporten: MaskinportenConfig,
    /// The system-user layer.
    #[serde(default)]
    pub system_user: SystemUserConfig,
    /// The PDP client.
    #[serde(default)]
    pub pdp: PdpConfig,
    /// [`AuthLayerBuilder::exempt_path`](crate::stack::AuthLayerBuilder::exempt_path), each.
    #[serde(default)]
    pub exempt_paths: Vec<String>,
}

impl AuthConfig {
    /// The PDP client and both layers in order. Errors carry their section (`maskinporten`,
    /// `system_user`, `pdp`, `pdp.credentials`).
    pub fn build(&self) -> Result<AuthLayer, ConfigError> {
        Ok(self.build_with_pdp()?.0)
    }

    /// As [`build`](Self::build), with the PDP client (for [`Readiness`](crate::readiness::Readiness)).
    pub fn build_with_pdp(&self) -> Result<(AuthLayer, AltinnPdp), ConfigError> {
        let maskinporten = self.maskinporten.build().map_err(|e| e.in_section("maskinporten"))?;
        let pdp = self.pdp.build().map_err(|e| e.in_section("pdp"))?;
        let system_user = self.system_user.build(pdp.clone()).map_err(|e| e.in_section("system_user"))?;
        let auth = AuthLayer::builder(maskinporten, system_user)
            .exempt_paths(&self.exempt_paths)
            .build()?;
        Ok((auth, pdp))
    }
}

/// `"auto"`, `"http"` or `"grpc"`.
fn refusal_form(name: &str) -> Result<RefusalForm, ConfigError> {
    match name {
        "auto" => Ok(RefusalForm::Auto),
        "http" => Ok(RefusalForm::Http),
        "grpc" => Ok(RefusalForm::Grpc),
        other => Err(ConfigError::new("refusal_form", format!("{other:?} is not auto, http or grpc"))),
    }
}
