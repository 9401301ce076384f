//! [`PdpConfig`] and [`CredentialsConfig`]: the PDP client's settings as a document.

use std::time::Duration;

use serde::Deserialize;

use super::Secret;
use crate::ConfigError;
use crate::pdp::{AltinnEnvironment, AltinnPdp, AltinnPdpBuilder, MaskinportenCredentials, MaskinportenCredentialsBuilder};

/// The settings of [`AltinnPdp`]; each key is the builder method of the same name.
///
/// ```toml
/// environment = "tt02"
/// subscription_key = { env = "ALTINN_SUBSCRIPTION_KEY" }
/// timeout = "5s"
/// decision_rate_limit = { per_second = 20, burst = 100 }
///
/// [credentials]
/// issuer = "https://test.maskinporten.no/"
/// client_id = "0b1c...-your-client-id"
/// key_id = "my-key-2026"
/// private_key_pem = { file = "/run/secrets/maskinporten.pem" }
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PdpConfig {
    /// [`AltinnPdpBuilder::environment`]: `"production"`, `"tt02"`, `"at22"`, `"at23"`, `"at24"`
    /// or `"yt01"`.
    pub environment: Option<String>,
    /// [`AltinnPdpBuilder::platform_url`].
    pub platform_url: Option<String>,
    /// [`AltinnPdpBuilder::subscription_key`], a [`Secret`].
    pub subscription_key: Option<Secret>,
    /// [`AltinnPdpBuilder::credentials`].
    pub credentials: Option<CredentialsConfig>,
    /// [`AltinnPdpBuilder::timeout`].
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// [`AltinnPdpBuilder::max_response_bytes`].
    pub max_response_bytes: Option<usize>,
    /// [`AltinnPdpBuilder::permit_ttl`].
    #[serde(default, with = "humantime_serde")]
    pub permit_ttl: Option<Duration>,
    /// [`AltinnPdpBuilder::deny_ttl`].
    #[serde(default, with = "humantime_serde")]
    pub deny_ttl: Option<Duration>,
    /// [`AltinnPdpBuilder::cache_capacity`].
    pub cache_capacity: Option<u64>,
    /// [`AltinnPdpBuilder::decision_rate_limit`].
    pub decision_rate_limit: Option<RateLimit>,
    /// [`AltinnPdpBuilder::no_decision_rate_limit`] when `true`.
    #[serde(default)]
    pub no_decision_rate_limit: bool,
    /// [`AltinnPdpBuilder::breaker_failure_threshold`].
    pub breaker_failure_threshold: Option<u32>,
    /// [`AltinnPdpBuilder::breaker_cool_down`].
    #[serde(default, with = "humantime_serde")]
    pub breaker_cool_down: Option<Duration>,
    /// [`AltinnPdpBuilder::breaker_max_cool_down`].
    #[serde(default, with = "humantime_serde")]
    pub breaker_max_cool_down: Option<Duration>,
    /// [`AltinnPdpBuilder::breaker_off`] when `true`.
    #[serde(default)]
    pub breaker_off: bool,
}

/// `decision_rate_limit = { per_second = 20, burst = 100 }`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// New questions per second per system user.
    pub per_second: u32,
    /// How many at once.
    pub burst: u32,
}

/// The settings of [`MaskinportenCredentials`] (the `[credentials]` table of [`PdpConfig`]);
/// each key is the builder method of the same name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CredentialsConfig {
    /// [`MaskinportenCredentialsBuilder::issuer`]; required.
    pub issuer: Option<String>,
    /// [`MaskinportenCredentialsBuilder::token_endpoint`].
    pub token_endpoint: Option<String>,
    /// [`MaskinportenCredentialsBuilder::client_id`]; required.
    pub client_id: Option<String>,
    /// [`MaskinportenCredentialsBuilder::private_key_pem`], a [`Secret`].
    pub private_key_pem: Option<Secret>,
    /// [`MaskinportenCredentialsBuilder::private_key_jwk`], a [`Secret`] holding the JWK's JSON.
    pub private_key_jwk: Option<Secret>,
    /// [`MaskinportenCredentialsBuilder::key_id`].
    pub key_id: Option<String>,
    /// [`MaskinportenCredentialsBuilder::certificate_chain`].
    pub certificate_chain: Option<Vec<String>>,
    /// [`MaskinportenCredentialsBuilder::scope`].
    pub scope: Option<String>,
}

fn environment(name: &str) -> Result<AltinnEnvironment, ConfigError> {
    Ok(match name {
        "production" => AltinnEnvironment::Production,
        "tt02" => AltinnEnvironment::Tt02,
        "at22" => AltinnEnvironment::At22,
        "at23" => AltinnEnvironment::At23,
        "at24" => AltinnEnvironment::At24,
        "yt01" => AltinnEnvironment::Yt01,
        other => {
            return Err(ConfigError::new(
                "environment",
                format!("{other:?} is not production, tt02, at22, at23, at24 or yt01"),
            ));
        }
    })
}

impl CredentialsConfig {
    /// A builder with these settings, secrets read.
    pub fn builder(&self) -> Result<MaskinportenCredentialsBuilder, ConfigError> {
        let mut b = MaskinportenCredentials::builder();
        if let Some(v) = &self.issuer {
            b = b.issuer(v);
        }
        if let Some(v) = &self.token_endpoint {
            b = b.token_endpoint(v);
        }
        if let Some(v) = &self.client_id {
            b = b.client_id(v);
        }
        match (&self.private_key_pem, &self.private_key_jwk) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::conflict(
                    "private_key_pem",
                    "give private_key_pem or private_key_jwk, not both",
                ));
            }
            (Some(pem), None) => b = b.private_key_pem(pem.read("private_key_pem")?.as_bytes()),
            (None, Some(jwk)) => {
                let jwk: serde_json::Value = serde_json::from_str(&jwk.read("private_key_jwk")?)
                    .map_err(|_| ConfigError::new("private_key_jwk", "not a JSON object"))?;
                b = b.private_key_jwk(&jwk);
            }
            (None, None) => {}
        }
        if let Some(v) = &self.key_id {
            b = b.key_id(v);
        }
        if let Some(v) = &self.certificate_chain {
            b = b.certificate_chain(v.clone());
        }
        if let Some(v) = &self.scope {
            b = b.scope(v);
        }
        Ok(b)
    }

    /// The credentials, checked as [`MaskinportenCredentialsBuilder::build`] checks them.
    pub fn build(&self) -> Result<MaskinportenCredentials, ConfigError> {
        self.builder()?.build()
    }
}

impl PdpConfig {
    /// A builder with these settings, secrets read and credentials built (errors in the
    /// credentials are in section `credentials`).
    pub fn builder(&self) -> Result<AltinnPdpBuilder, ConfigError> {
        let mut b = AltinnPdp::builder();
        if let Some(v) = &self.environment {
            b = b.environment(environment(v)?);
        }
        if let Some(v) = &self.platform_url {
            b = b.platform_url(v);
        }
        if let Some(v) = &self.subscription_key {
            b = b.subscription_key(v.read("subscription_key")?);
        }
        if let Some(c) = &self.credentials {
            b = b.credentials(c.build().map_err(|e| e.in_section("credentials"))?);
        }
        if let Some(v) = self.timeout {
            b = b.timeout(v);
        }
        if let Some(v) = self.max_response_bytes {
            b = b.max_response_bytes(v);
        }
        if let Some(v) = self.permit_ttl {
            b = b.permit_ttl(v);
        }
        if let Some(v) = self.deny_ttl {
            b = b.deny_ttl(v);
        }
        if let Some(v) = self.cache_capacity {
            b = b.cache_capacity(v);
        }
        match (self.decision_rate_limit, self.no_decision_rate_limit) {
            (Some(_), true) => {
                return Err(ConfigError::conflict(
                    "decision_rate_limit",
                    "give decision_rate_limit or no_decision_rate_limit, not both",
                ));
            }
            (Some(l), false) => b = b.decision_rate_limit(l.per_second, l.burst),
            (None, true) => b = b.no_decision_rate_limit(),
            (None, false) => {}
        }
        if let Some(v) = self.breaker_failure_threshold {
            b = b.breaker_failure_threshold(v);
        }
        if let Some(v) = self.breaker_cool_down {
            b = b.breaker_cool_down(v);
        }
        if let Some(v) = self.breaker_max_cool_down {
            b = b.breaker_max_cool_down(v);
        }
        if self.breaker_off {
            b = b.breaker_off();
        }
        Ok(b)
    }

    /// The client, checked as [`AltinnPdpBuilder::build`] checks it.
    pub fn build(&self) -> Result<AltinnPdp, ConfigError> {
        self.builder()?.build()
    }
}
