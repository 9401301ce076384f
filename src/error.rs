//! Configuration errors returned by the builders.

/// What is wrong with a configuration, in a form a program can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A required setting was not given.
    Missing,
    /// A setting's value is not acceptable (out of range, not a valid URL, not a key, ...).
    Invalid,
    /// Two settings contradict each other: give one or the other.
    Conflict,
}

/// A builder was given a configuration that cannot work.
///
/// Returned by every `build()` in this crate; builders never panic and do no network I/O.
/// [`field`](Self::field) names the builder method to fix, [`kind`](Self::kind) says what is
/// wrong with it, and [`reason`](Self::reason) says it in words (never a secret).
///
/// ```
/// use altinn_systemuser::{ConfigError, ConfigErrorKind};
/// use altinn_systemuser::maskinporten::MaskinportenLayer;
///
/// let err: ConfigError = MaskinportenLayer::builder().build().unwrap_err();
/// assert_eq!(err.kind(), ConfigErrorKind::Missing);
/// assert_eq!(err.field(), "issuer");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {}: {reason}", self.key())]
pub struct ConfigError {
    kind: ConfigErrorKind,
    field: &'static str,
    /// Where the field is, in a configuration document (`pdp.credentials`), if it came from one.
    section: Option<String>,
    reason: String,
}

impl ConfigError {
    /// A setting's value is not acceptable.
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self::of(ConfigErrorKind::Invalid, field, reason)
    }

    /// A required setting was not given.
    pub(crate) fn missing(field: &'static str, reason: impl Into<String>) -> Self {
        Self::of(ConfigErrorKind::Missing, field, reason)
    }

    /// Two settings contradict each other.
    pub(crate) fn conflict(field: &'static str, reason: impl Into<String>) -> Self {
        Self::of(ConfigErrorKind::Conflict, field, reason)
    }

    fn of(kind: ConfigErrorKind, field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            kind,
            field,
            section: None,
            reason: reason.into(),
        }
    }

    /// The same error, inside `section` of a configuration document (sections nest outwards:
    /// `credentials`, then `pdp`, gives `pdp.credentials`).
    #[cfg_attr(not(feature = "config"), allow(dead_code))]
    pub(crate) fn in_section(mut self, section: &str) -> Self {
        self.section = Some(match self.section.take() {
            Some(inner) => format!("{section}.{inner}"),
            None => section.to_owned(),
        });
        self
    }

    /// What is wrong.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }

    /// The builder method whose setting is wrong (for example `"issuer"` or `"key_id"`).
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The section of a configuration document the setting is in (`pdp.credentials`), when the
    /// error came from one (feature `config`); `None` from a builder.
    pub fn section(&self) -> Option<&str> {
        self.section.as_deref()
    }

    /// The setting's key: [`field`](Self::field), after its [`section`](Self::section) and a
    /// dot when there is one (`pdp.credentials.client_id`).
    pub fn key(&self) -> String {
        match &self.section {
            Some(s) => format!("{s}.{}", self.field),
            None => self.field.to_owned(),
        }
    }

    /// Why it is wrong, in words.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Checks that `url` is `https`, or plain `http` to a loopback host (for fakes and local setups).
pub(crate) fn check_url(field: &'static str, url: &str) -> Result<url::Url, ConfigError> {
    let parsed = url::Url::parse(url).map_err(|e| ConfigError::new(field, format!("not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" => return Err(ConfigError::new(field, "plain http is only allowed for loopback hosts")),
        other => return Err(ConfigError::new(field, format!("unsupported scheme {other}"))),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(field, "no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ConfigError::new(field, "credentials in URLs are not allowed"));
    }
    Ok(parsed)
}

pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
