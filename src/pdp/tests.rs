//! What only the inside can see. Everything the client does on the wire is tested against
//! `FakeMaskinporten` and `FakeAltinn` in `tests/pdp/`.

use super::*;

struct StaticToken;

impl AltinnTokenSource for StaticToken {
    fn token(&self, _force: bool) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<AltinnToken, PdpError>> + Send + '_>> {
        Box::pin(async { Ok(AltinnToken::new("static-token", SystemTime::now() + Duration::from_secs(600))) })
    }
}

/// The stored header value is marked sensitive (HTTP/2 never indexes it; `Debug` of the header
/// hides it), which no answer of a fake can show.
#[test]
fn the_subscription_key_header_is_sensitive() {
    let pdp = AltinnPdp::builder()
        .environment(AltinnEnvironment::Tt02)
        .subscription_key("very-secret-sub-key")
        .token_source(StaticToken)
        .build()
        .unwrap();
    assert!(pdp.inner.subscription_key.as_ref().unwrap().is_sensitive());
}
