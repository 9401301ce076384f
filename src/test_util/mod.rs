//! Fake Maskinporten and Altinn servers for tests and demos (feature `test-util`).
//!
//! Both fakes are small real HTTP servers on `127.0.0.1` (an ephemeral port, bound before
//! `start` returns) that speak the documented wire formats, so the crate's layers can be
//! pointed at them exactly as at the real services:
//!
//! - [`FakeMaskinporten`]: RFC 8414 metadata, the JWKS and the JWT-bearer token endpoint; it
//!   also mints access tokens for the API under test ([`FakeMaskinporten::token`],
//!   [`FakeMaskinporten::system_user_token`]) through a [`TokenBuilder`] that can break any part
//!   of a token on purpose.
//! - [`FakeAltinn`]: the Maskinporten → Altinn token exchange and the PDP, deciding from rules
//!   ([`FakeAltinn::permit`]) or from canned answers ([`PdpAnswer`]), and recording every
//!   request ([`RecordedRequest`]).
//!
//! Faults (errors, garbage, delays, oversized bodies, hangs) are set per endpoint with
//! [`EndpointMode`] and scripted per request with [`PdpAnswer`] (the PDP's answers: raw, delayed,
//! streamed, …), [`FakeAltinn::push_exchange_mode`] (the exchange's), [`ExchangeFormat`] and
//! [`FakeMaskinporten::set_token_delay`]. The servers never panic on what clients send. Keys are
//! RSA keys generated at runtime ([`TestKey`]); nothing here is secret. Each [`KeyRole`] (the
//! fakes' signing keys, the provider, a rogue key, …) has its own key, generated once per process
//! and handed out by [`TestKey::for_role`], so starting a fake costs no key generation.
//!
//! ```
//! use altinn_systemuser::test_util::{FakeAltinn, FakeMaskinporten};
//! use uuid::Uuid;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let maskinporten = FakeMaskinporten::start().await;
//! let altinn = FakeAltinn::start(&maskinporten, "subscription-key").await;
//!
//! // A token as a vendor's system would send it to the API under test.
//! let system_user = Uuid::new_v4();
//! let token = maskinporten.system_user_token(system_user, "310702641").scope("skatteetaten:krav").sign();
//! assert!(maskinporten.verify_access_token(&token).is_some());
//!
//! // What the PDP permits.
//! altinn.permit(system_user, "read", "kravogbetaling", "310702641");
//!
//! // Point the layers at maskinporten.issuer(), altinn.platform_url() and "subscription-key".
//! # }
//! ```

mod fake_altinn;
mod fake_maskinporten;
mod jwt;
mod key_pool;
mod keys;
mod server;

pub use fake_altinn::{ExchangeFormat, FakeAltinn, PdpAnswer, RecordedRequest, STATUS_OK, STATUS_PROCESSING_ERROR, STATUS_SYNTAX_ERROR};
pub use fake_maskinporten::{
    ClientRegistration, DEFAULT_CLIENT_ID, DEFAULT_CONSUMER_ORG, DEFAULT_SCOPE, DEFAULT_SYSTEM_ID, FakeMaskinporten, JWT_BEARER,
};
pub use jwt::{TokenBuilder, decode_unverified};
pub use key_pool::KeyRole;
pub use keys::TestKey;
pub use server::EndpointMode;

#[cfg(test)]
mod tests;
