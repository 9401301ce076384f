#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
mod axum;
mod body;
#[cfg(feature = "config")]
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
pub mod config;
mod error;
mod future;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod maskinporten;
pub mod org;
mod outbound;
pub mod pdp;
pub mod readiness;
pub mod reject;
mod single_flight;
pub mod stack;
mod strict_json;
pub mod systemuser;
pub mod telemetry;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;

pub use body::ResponseBody;
pub use error::{ConfigError, ConfigErrorKind};
pub use future::ResponseFuture;
