//! Layer 1: validate the Maskinporten access token.
//!
//! | file | role |
//! |---|---|
//! | `layer.rs` | [`MaskinportenLayer`] and its builder |
//! | `service.rs` | [`MaskinportenService`]: `Authorization` header → verified token → extensions |
//! | `validate.rs` | where tokens are checked: shape, header, signature, claims |
//! | `keys.rs` | [`KeyStore`]: discovery, JWKS cache, refresh, key filtering |
//! | `token.rs` | [`MaskinportenToken`] and the claims it is parsed from |
//! | `cache.rs` | the verified-token cache |

mod cache;
mod keys;
mod layer;
mod service;
mod strict_json;
mod token;
mod validate;
#[cfg(test)]
mod wycheproof_tests;

pub use keys::{KeyStore, KeyStoreError};
pub use layer::{MAX_TOKEN_BYTES, MaskinportenLayer, MaskinportenLayerBuilder, PRODUCTION_ISSUER, TEST_ISSUER};
pub use service::MaskinportenService;
pub use token::{MaskinportenToken, SYSTEM_USER_TYPE, SystemUserClaim};
pub use validate::Algorithm;
