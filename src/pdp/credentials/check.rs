//! The provider's credentials proved step by step, without the token cache: Maskinporten's
//! metadata, the grant, the exchange. Used by [`AltinnPdp::check_credentials`](crate::pdp::AltinnPdp::check_credentials).

use serde::Deserialize;
use tokio::time::Instant;

use super::AltinnToken;
use super::exchange::{ExchangeError, exchange};
use super::grant::MaskinportenCredentials;
use crate::outbound::{error_label, read_capped};
use crate::pdp::readiness::{CheckError, CheckStep};

/// RFC 8414 metadata, as far as the check reads it.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    token_endpoint: Option<String>,
}

/// Text from an upstream, fit for a report: at most 100 characters, printable ASCII only.
fn shown(upstream: &str) -> String {
    let mut s: String = upstream
        .chars()
        .take(100)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    if upstream.chars().count() > 100 {
        s.push_str("...");
    }
    s
}

/// Maskinporten's metadata names the configured issuer and token endpoint.
pub(crate) async fn discovery(
    creds: &MaskinportenCredentials,
    http: &reqwest::Client,
    max_body: usize,
    deadline: Instant,
) -> Result<(), CheckError> {
    let fail = |reason: String| CheckError::new(CheckStep::Discovery, reason);
    let url = format!("{}.well-known/oauth-authorization-server", creds.issuer());
    let work = async {
        let resp = http.get(&url).send().await.map_err(|e| {
            fail(format!(
                "Maskinporten's metadata at {url} could not be fetched ({})",
                error_label(&e)
            ))
        })?;
        if !resp.status().is_success() {
            return Err(fail(format!(
                "Maskinporten's metadata at {url} answered HTTP {}",
                resp.status().as_u16()
            )));
        }
        let body = read_capped(resp, max_body)
            .await
            .map_err(|_| fail(format!("Maskinporten's metadata at {url} could not be read")))?;
        let meta: Metadata = crate::strict_json::from_slice_unique(&body)
            .map_err(|_| fail(format!("Maskinporten's metadata at {url} is not valid metadata")))?;
        if meta.issuer != creds.issuer() {
            return Err(fail(format!(
                "the metadata names issuer {}, not the configured {} (wrong environment?)",
                shown(&meta.issuer),
                creds.issuer()
            )));
        }
        match meta.token_endpoint {
            Some(t) if t == creds.token_endpoint() => Ok(()),
            Some(t) => Err(fail(format!(
                "the metadata names token_endpoint {}, not the configured {}",
                shown(&t),
                creds.token_endpoint()
            ))),
            None => Err(fail("the metadata names no token_endpoint".to_owned())),
        }
    };
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| Err(fail(format!("Maskinporten's metadata at {url} did not answer in time"))))
}

/// A fresh grant and exchange: the Altinn token, or the step that failed and why.
pub(crate) async fn fresh_token(
    creds: &MaskinportenCredentials,
    http: &reqwest::Client,
    exchange_url: &url::Url,
    max_body: usize,
    deadline: Instant,
) -> Result<AltinnToken, CheckError> {
    let maskinporten = creds
        .grant(http, max_body, deadline)
        .await
        .map_err(|e| CheckError::new(CheckStep::Grant, e.to_string()))?;
    exchange(http, exchange_url, &maskinporten, max_body, deadline).await.map_err(|e| match e {
        ExchangeError::Unauthorized => CheckError::new(
            CheckStep::Exchange,
            "the Altinn token exchange answered 401: it refused the Maskinporten token (is the environment pairing right: test Maskinporten with TT02, production with production?)".to_owned(),
        ),
        ExchangeError::Other(e) => CheckError::new(CheckStep::Exchange, e.to_string()),
    })
}
