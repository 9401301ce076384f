//! [`MaskinportenConfig`]: the Maskinporten layer's settings as a document.

use std::time::Duration;

use serde::Deserialize;

use super::refusal_form;
use crate::ConfigError;
use crate::maskinporten::{Algorithm, AltinnTokens, MaskinportenLayer, MaskinportenLayerBuilder};

/// The settings of [`MaskinportenLayer`]; each key is the builder method of the same name.
///
/// ```toml
/// issuer = "https://test.maskinporten.no/"
/// require_scope = ["skatteetaten:kravogbetalinger"]
/// leeway = "30s"
/// max_token_lifetime = "5m"
/// ```
///
/// Durations are written as `"30s"`, `"5m"`, `"1h 30m"`. Unknown keys are refused. Settings
/// that only code can give (`http_client`, `key_store`, `rejection_responder`) are set on the
/// builder from [`builder`](Self::builder).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MaskinportenConfig {
    /// [`MaskinportenLayerBuilder::issuer`]; required.
    pub issuer: Option<String>,
    /// [`MaskinportenLayerBuilder::jwks_uri`].
    pub jwks_uri: Option<String>,
    /// [`MaskinportenLayerBuilder::require_scope`], each.
    #[serde(default)]
    pub require_scope: Vec<String>,
    /// [`MaskinportenLayerBuilder::require_any_scope`].
    #[serde(default)]
    pub require_any_scope: Vec<String>,
    /// [`MaskinportenLayerBuilder::allow_any_scope`] when `true`.
    #[serde(default)]
    pub allow_any_scope: bool,
    /// [`MaskinportenLayerBuilder::audience`], each.
    #[serde(default)]
    pub audience: Vec<String>,
    /// [`MaskinportenLayerBuilder::leeway`].
    #[serde(default, with = "humantime_serde")]
    pub leeway: Option<Duration>,
    /// [`MaskinportenLayerBuilder::max_token_lifetime`].
    #[serde(default, with = "humantime_serde")]
    pub max_token_lifetime: Option<Duration>,
    /// [`MaskinportenLayerBuilder::algorithms`]: `"RS256"`, `"RS384"`, `"RS512"`.
    pub algorithms: Option<Vec<String>>,
    /// [`MaskinportenLayerBuilder::unknown_kid_refetch_interval`].
    #[serde(default, with = "humantime_serde")]
    pub unknown_kid_refetch_interval: Option<Duration>,
    /// [`MaskinportenLayerBuilder::jwks_ttl`].
    #[serde(default, with = "humantime_serde")]
    pub jwks_ttl: Option<Duration>,
    /// [`MaskinportenLayerBuilder::jwks_max_stale`].
    #[serde(default, with = "humantime_serde")]
    pub jwks_max_stale: Option<Duration>,
    /// [`MaskinportenLayerBuilder::token_cache_capacity`].
    pub token_cache_capacity: Option<u64>,
    /// [`MaskinportenLayerBuilder::refusal_form`]: `"auto"`, `"http"` or `"grpc"`.
    pub refusal_form: Option<String>,
    /// [`MaskinportenLayerBuilder::refusal_log_level`]: `"trace"`, `"debug"`, `"info"`, `"warn"`
    /// or `"error"`.
    pub refusal_log_level: Option<String>,
    /// [`MaskinportenLayerBuilder::altinn_tokens`]: the `[maskinporten.altinn_tokens]` table.
    pub altinn_tokens: Option<AltinnTokensConfig>,
}

/// Trust in Altinn-issued tokens ([`AltinnTokens`]); each key is the method of the same name.
///
/// ```toml
/// [maskinporten.altinn_tokens]
/// platform = "https://platform.tt02.altinn.no"
/// without_audience = true
/// max_token_lifetime = "30m"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AltinnTokensConfig {
    /// [`AltinnTokens::platform`]: the platform URL; required.
    pub platform: Option<String>,
    /// [`AltinnTokens::jwks_uri`].
    pub jwks_uri: Option<String>,
    /// [`AltinnTokens::require_audience`], each.
    #[serde(default)]
    pub require_audience: Vec<String>,
    /// [`AltinnTokens::without_audience`] when `true`.
    #[serde(default)]
    pub without_audience: bool,
    /// [`AltinnTokens::max_token_lifetime`].
    #[serde(default, with = "humantime_serde")]
    pub max_token_lifetime: Option<Duration>,
    /// [`AltinnTokens::any_lifetime`] when `true`.
    #[serde(default)]
    pub any_lifetime: bool,
}

impl AltinnTokensConfig {
    /// The [`AltinnTokens`] these settings describe.
    pub fn tokens(&self) -> Result<AltinnTokens, ConfigError> {
        let platform = self
            .platform
            .as_deref()
            .ok_or_else(|| ConfigError::missing("altinn_tokens", "altinn_tokens.platform is required"))?;
        let mut t = AltinnTokens::platform(platform);
        if let Some(u) = &self.jwks_uri {
            t = t.jwks_uri(u);
        }
        if self.without_audience && !self.require_audience.is_empty() {
            return Err(ConfigError::conflict(
                "altinn_tokens",
                "give require_audience or without_audience, not both",
            ));
        }
        for a in &self.require_audience {
            t = t.require_audience(a);
        }
        if self.without_audience {
            t = t.without_audience();
        }
        match (self.max_token_lifetime, self.any_lifetime) {
            (Some(_), true) => {
                return Err(ConfigError::conflict(
                    "altinn_tokens",
                    "give max_token_lifetime or any_lifetime, not both",
                ));
            }
            (Some(d), false) => t = t.max_token_lifetime(d),
            (None, true) => t = t.any_lifetime(),
            (None, false) => {}
        }
        Ok(t)
    }
}

impl MaskinportenConfig {
    /// A builder with these settings, for settings only code can give.
    pub fn builder(&self) -> Result<MaskinportenLayerBuilder, ConfigError> {
        let mut b = MaskinportenLayer::builder();
        if let Some(v) = &self.issuer {
            b = b.issuer(v);
        }
        if let Some(v) = &self.jwks_uri {
            b = b.jwks_uri(v);
        }
        for s in &self.require_scope {
            b = b.require_scope(s);
        }
        if !self.require_any_scope.is_empty() {
            b = b.require_any_scope(&self.require_any_scope);
        }
        if self.allow_any_scope {
            b = b.allow_any_scope();
        }
        for a in &self.audience {
            b = b.audience(a);
        }
        if let Some(v) = self.leeway {
            b = b.leeway(v);
        }
        if let Some(v) = self.max_token_lifetime {
            b = b.max_token_lifetime(v);
        }
        if let Some(names) = &self.algorithms {
            let algs = names
                .iter()
                .map(|n| {
                    Algorithm::from_name(n).ok_or_else(|| ConfigError::new("algorithms", format!("{n:?} is not RS256, RS384 or RS512")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            b = b.algorithms(algs);
        }
        if let Some(v) = self.unknown_kid_refetch_interval {
            b = b.unknown_kid_refetch_interval(v);
        }
        if let Some(v) = self.jwks_ttl {
            b = b.jwks_ttl(v);
        }
        if let Some(v) = self.jwks_max_stale {
            b = b.jwks_max_stale(v);
        }
        if let Some(v) = self.token_cache_capacity {
            b = b.token_cache_capacity(v);
        }
        if let Some(v) = &self.refusal_form {
            b = b.refusal_form(refusal_form(v)?);
        }
        if let Some(level) = &self.refusal_log_level {
            let level = level
                .parse::<tracing::Level>()
                .map_err(|_| ConfigError::new("refusal_log_level", format!("{level:?} is not trace, debug, info, warn or error")))?;
            b = b.refusal_log_level(level);
        }
        if let Some(a) = &self.altinn_tokens {
            b = b.altinn_tokens(a.tokens()?);
        }
        Ok(b)
    }

    /// The layer, checked as [`MaskinportenLayerBuilder::build`] checks it.
    pub fn build(&self) -> Result<MaskinportenLayer, ConfigError> {
        self.builder()?.build()
    }
}
