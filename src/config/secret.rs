//! [`Secret`]: a private key or subscription key, from the document, an environment variable or
//! a file. `Debug` never shows it.

use std::fmt;

use serde::Deserialize;

use crate::ConfigError;

/// A secret setting. In a document it is written one of three ways:
///
/// ```toml
/// subscription_key = { env = "ALTINN_SUBSCRIPTION_KEY" }    # an environment variable
/// private_key_pem = { file = "/run/secrets/maskinporten.pem" } # a file (a mounted secret)
/// subscription_key = "..."                                  # in the document itself (avoid)
/// ```
///
/// It is read when the configuration is built; a variable that is not set or a file that cannot
/// be read is a [`ConfigError`] naming the key, never showing the value.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub enum Secret {
    /// The environment variable of this name.
    Env {
        /// The variable's name.
        env: String,
    },
    /// The contents of the file at this path (one trailing newline is dropped).
    File {
        /// The file's path.
        file: String,
    },
    /// The value itself.
    Value(String),
}

impl Secret {
    /// The secret's value, read now. `key` names the setting in errors.
    pub(crate) fn read(&self, key: &'static str) -> Result<String, ConfigError> {
        match self {
            Secret::Value(v) => Ok(v.clone()),
            Secret::Env { env } => std::env::var(env).map_err(|e| match e {
                std::env::VarError::NotPresent => ConfigError::missing(key, format!("environment variable {env} is not set")),
                std::env::VarError::NotUnicode(_) => ConfigError::new(key, format!("environment variable {env} is not UTF-8")),
            }),
            Secret::File { file } => {
                let mut text = std::fs::read_to_string(file)
                    .map_err(|e| ConfigError::new(key, format!("file {file} cannot be read: {}", e.kind())))?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Ok(text)
            }
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env { env } => write!(f, "Secret(env {env})"),
            Secret::File { file } => write!(f, "Secret(file {file})"),
            Secret::Value(_) => f.write_str("Secret(<redacted>)"),
        }
    }
}
