//! Proving that the PDP client's setup works: [`AltinnPdp::check_credentials`] runs Maskinporten
//! discovery, the grant, the exchange and one authenticated PDP call, and says which step
//! failed and why, in words a provider can act on.

use std::fmt;

use bytes::Bytes;

use super::call::Attempt;
use super::credentials::{AltinnToken, check};
use super::request::DecisionKey;
use super::xacml::RequestBody;
use super::{AltinnPdp, Decision, PdpErrorKind, decision, xacml};
use crate::org::{OrgNumber, Party};
use crate::pdp::{Action, ResourceId};
use crate::single_flight::deadline_in;

/// A step of [`AltinnPdp::check_credentials`], in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckStep {
    /// Maskinporten's RFC 8414 metadata names the configured issuer and token endpoint.
    Discovery,
    /// The provider's JWT grant at Maskinporten (client id, key, key id, scope).
    Grant,
    /// The exchange of the Maskinporten token for an Altinn token.
    Exchange,
    /// A token from a custom [`AltinnTokenSource`](super::AltinnTokenSource).
    TokenSource,
    /// One authenticated PDP call (subscription key, the token's scope, a well-formed answer).
    Pdp,
    /// A resource in Altinn's resource registry ([`AltinnPdp::check_resource`]).
    Resource,
}

impl CheckStep {
    /// The step's name: `discovery`, `grant`, `exchange`, `token_source`, `pdp` or `resource`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStep::Discovery => "discovery",
            CheckStep::Grant => "grant",
            CheckStep::Exchange => "exchange",
            CheckStep::TokenSource => "token_source",
            CheckStep::Pdp => "pdp",
            CheckStep::Resource => "resource",
        }
    }
}

impl fmt::Display for CheckStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the PDP client cannot work as configured: the [step](Self::step) that failed and the
/// [reason](Self::reason) (never a secret: no token, key or subscription key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step} failed: {reason}")]
pub struct CheckError {
    step: CheckStep,
    reason: String,
}

impl CheckError {
    pub(crate) fn new(step: CheckStep, reason: String) -> Self {
        CheckError { step, reason }
    }

    /// The step that failed.
    pub fn step(&self) -> CheckStep {
        self.step
    }

    /// What went wrong, and what to check.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// The question the check asks unless told otherwise: the nil system user reading resource
/// `altinn-systemuser-readiness` for organisation 310702641. Nobody has that right; any
/// well-formed answer (`NotApplicable` is the usual one) proves the path.
pub(crate) fn default_question() -> DecisionKey {
    DecisionKey {
        subject: uuid::Uuid::nil(),
        action: Action::read(),
        resource: ResourceId::new("altinn-systemuser-readiness").expect("a valid resource id"),
        party: Party::Organisation(OrgNumber::parse_canonical("310702641").expect("a valid organisation number")),
    }
}

impl AltinnPdp {
    /// The signer of the provider's grant assertions, to rotate the key at runtime, when the
    /// client was built with [`MaskinportenCredentials`](super::MaskinportenCredentials)
    /// (also from a configuration file); `None` with a custom token source.
    pub fn signer(&self) -> Option<&super::SignerHandle> {
        self.inner.fresh_credentials.as_ref().map(|(c, _)| c.signer())
    }

    /// Proves that this client can get decisions: Maskinporten's metadata, a fresh grant, a
    /// fresh exchange (neither from nor into the token cache), and one PDP call asking the
    /// readiness question ([`AltinnPdpBuilder::readiness_question`](super::AltinnPdpBuilder::readiness_question)).
    /// Any well-formed answer, `NotApplicable` included, proves the path. With a custom token
    /// source, its token stands for the first three steps.
    ///
    /// Costs a grant, an exchange and a PDP call: for startup and diagnosis. A readiness probe
    /// should go through [`Readiness`](crate::readiness::Readiness), which keeps results and
    /// makes the full check only when the cheap one fails. Bounded by the client's time budget
    /// for each network step. Not counted by the circuit breaker, and not refused by it.
    pub async fn check_credentials(&self) -> Result<(), CheckError> {
        let inner = &*self.inner;
        let token = match &inner.fresh_credentials {
            Some((creds, exchange_url)) => {
                check::discovery(creds, &inner.http, inner.max_response_bytes, deadline_in(inner.timeout)).await?;
                check::fresh_token(
                    creds,
                    &inner.http,
                    exchange_url,
                    inner.max_response_bytes,
                    deadline_in(inner.timeout),
                )
                .await?
            }
            None => self.source_token().await?,
        };
        self.check_pdp_with(&token).await.map(|_| ())
    }

    /// One PDP call with the cached (or refreshed) token: the cheap check a readiness probe
    /// repeats. An error names the step as well as it can (a refresh failure is `token_source`
    /// for a custom source, `grant` or `exchange` otherwise, as its reason says).
    pub(crate) async fn check_pdp(&self) -> Result<Decision, CheckError> {
        let token = self.source_token().await?;
        self.check_pdp_with(&token).await
    }

    async fn source_token(&self) -> Result<AltinnToken, CheckError> {
        let step = if self.inner.fresh_credentials.is_some() {
            CheckStep::Grant
        } else {
            CheckStep::TokenSource
        };
        let deadline = deadline_in(self.inner.timeout);
        match tokio::time::timeout_at(deadline, self.inner.tokens.token(false)).await {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => {
                let step = if e.to_string().contains("exchange") {
                    CheckStep::Exchange
                } else {
                    step
                };
                Err(CheckError::new(step, e.to_string()))
            }
            Err(_) => Err(CheckError::new(step, "no Altinn token within the time budget".to_owned())),
        }
    }

    async fn check_pdp_with(&self, token: &AltinnToken) -> Result<Decision, CheckError> {
        let inner = &*self.inner;
        let fail = |reason: String| CheckError::new(CheckStep::Pdp, reason);
        let body = Bytes::from(RequestBody::single(&inner.readiness_question).to_vec());
        let attempt = tokio::time::timeout_at(deadline_in(inner.timeout), inner.attempt(token, body))
            .await
            .map_err(|_| fail("the PDP did not answer within the time budget".to_owned()))?;
        match attempt {
            Attempt::Answer(bytes) => xacml::parse_response(&bytes)
                .and_then(|results| decision::single(&results))
                .map_err(|e| fail(format!("the PDP's answer is not usable: {e}"))),
            Attempt::Unauthorized => Err(fail(
                "the PDP answered 401: the subscription key (Ocp-Apim-Subscription-Key) is wrong or not active, or the Altinn token was refused"
                    .to_owned(),
            )),
            Attempt::Retryable(e) | Attempt::Fatal(e) => Err(fail(match e.kind() {
                PdpErrorKind::Unauthorized => {
                    "the PDP answered 403: the provider's token lacks the altinn:authorization/authorize scope".to_owned()
                }
                _ => e.to_string(),
            })),
        }
    }
}
