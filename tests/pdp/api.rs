//! The client's builder and public types, without a network.

use crate::support::OWNER_ORG;
use crate::{FixedToken, about};
use altinn_systemuser::pdp::{
    AltinnEnvironment, AltinnPdp, AltinnPdpBuilder, AltinnToken, DecisionRequest, MaskinportenCredentials, PdpError,
};
use std::time::Duration;
use uuid::Uuid;

fn fixed() -> FixedToken {
    FixedToken::new("static-token")
}

#[test]
fn the_builder_checks_everything_once() {
    let field = |b: AltinnPdpBuilder| b.build().unwrap_err().field();
    let ok = || AltinnPdp::builder().environment(AltinnEnvironment::Tt02).token_source(fixed());
    assert!(ok().build().is_ok());
    assert_eq!(field(AltinnPdp::builder().token_source(fixed())), "platform_url");
    assert_eq!(
        field(AltinnPdp::builder().environment(AltinnEnvironment::Production)),
        "credentials"
    );
    assert_eq!(field(ok().platform_url("http://platform.altinn.no")), "platform_url");
    assert_eq!(field(ok().platform_url("https://user:pw@platform.altinn.no")), "platform_url");
    assert_eq!(field(ok().platform_url("https://platform.altinn.no/?x=1")), "platform_url");
    assert_eq!(field(ok().platform_url("not a url")), "platform_url");
    assert_eq!(field(ok().subscription_key("")), "subscription_key");
    assert_eq!(field(ok().subscription_key("a\nb")), "subscription_key");
    assert_eq!(field(ok().timeout(Duration::ZERO)), "timeout");
    assert_eq!(field(ok().timeout(Duration::MAX)), "timeout");
    assert_eq!(field(ok().max_response_bytes(0)), "max_response_bytes");
    assert_eq!(field(ok().permit_ttl(Duration::from_secs(241))), "permit_ttl");
    assert_eq!(field(ok().deny_ttl(Duration::from_secs(241))), "deny_ttl");
    assert!(
        ok().permit_ttl(Duration::from_secs(240))
            .deny_ttl(Duration::ZERO)
            .cache_capacity(0)
            .build()
            .is_ok()
    );
    assert!(ok().platform_url("http://localhost:8080/").build().is_ok());
    assert!(ok().platform_url("http://[::1]:8080").build().is_ok());
    assert!(ok().http_client(reqwest::Client::new()).build().is_ok());
}

/// The authorize URL, as the client's `Debug` shows it.
fn authorize_url_shown(pdp: &AltinnPdp) -> String {
    let shown = format!("{pdp:?}");
    let start = shown.find("authorize_url: \"").expect("Debug shows the authorize URL") + "authorize_url: \"".len();
    let len = shown[start..].find('"').unwrap();
    shown[start..start + len].to_owned()
}

#[test]
fn urls_come_from_the_environment_or_the_platform_url() {
    let pdp = AltinnPdp::builder()
        .environment(AltinnEnvironment::Tt02)
        .token_source(fixed())
        .build()
        .unwrap();
    assert_eq!(
        authorize_url_shown(&pdp),
        "https://platform.tt02.altinn.no/authorization/api/v1/authorize"
    );
    let pdp = AltinnPdp::builder()
        .platform_url("http://127.0.0.1:1234/altinn/")
        .environment(AltinnEnvironment::Production)
        .token_source(fixed())
        .build()
        .unwrap();
    assert_eq!(
        authorize_url_shown(&pdp),
        "http://127.0.0.1:1234/altinn/authorization/api/v1/authorize"
    );
    for (env, url) in [
        (AltinnEnvironment::Production, "https://platform.altinn.no"),
        (AltinnEnvironment::Tt02, "https://platform.tt02.altinn.no"),
        (AltinnEnvironment::At22, "https://platform.at22.altinn.cloud"),
        (AltinnEnvironment::At23, "https://platform.at23.altinn.cloud"),
        (AltinnEnvironment::At24, "https://platform.at24.altinn.cloud"),
        (AltinnEnvironment::Yt01, "https://platform.yt01.altinn.cloud"),
    ] {
        assert_eq!(env.platform_url(), url);
        assert!(AltinnPdp::builder().environment(env).token_source(fixed()).build().is_ok());
    }
}

#[test]
fn public_types_are_send_sync() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<AltinnPdp>();
    check::<MaskinportenCredentials>();
    check::<DecisionRequest>();
    check::<PdpError>();
    check::<AltinnToken>();
    fn future_is_send<F: std::future::Future + Send>(_: F) {}
    let pdp = AltinnPdp::builder()
        .environment(AltinnEnvironment::Tt02)
        .token_source(fixed())
        .build()
        .unwrap();
    let r = about(Uuid::new_v4(), "resource-a", OWNER_ORG);
    future_is_send(pdp.decide(&r));
    future_is_send(pdp.decide_many(std::slice::from_ref(&r)));
}
