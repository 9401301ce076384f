//! Configuration errors returned by the builders.

/// A builder was given a configuration that cannot work.
///
/// Returned by every `build()` in this crate; builders never panic and do no network I/O.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {field}: {reason}")]
pub struct ConfigError {
    field: &'static str,
    reason: String,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            field,
            reason: reason.into(),
        }
    }

    /// The builder setting that is wrong.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// Why it is wrong.
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
