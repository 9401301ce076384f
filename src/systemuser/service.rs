//! [`SystemUserService`]: verified token → PDP decision → [`SystemUser`] in the extensions.

use super::principal::SystemUser;
use super::target::Target;
use crate::ResponseFuture;
use crate::maskinporten::{MaskinportenToken, SystemUserClaim};
use crate::org::Party;
use crate::pdp::{AltinnPdp, Decision, DecisionRequest, DecisionSource, PdpError, PdpErrorKind};
use crate::reject::{self, RefusalForm, Rejection, RejectionKind, RejectionResponder};
use crate::stack::ExemptPaths;
use crate::telemetry::audit::{self, Authorization, PartyKey};
use crate::telemetry::metrics::{self, LayerName};
use crate::telemetry::span;
use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderMap, Request, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;
use tower_service::Service;
use tracing::Span;

pub(crate) struct Config {
    pub pdp: AltinnPdp,
    pub target: Target,
    pub responder: Arc<dyn RejectionResponder>,
    pub form: RefusalForm,
    /// Persons in the audit trail and the span are pseudonymised under this key, if given.
    pub party_key: Option<PartyKey>,
}

static MISSING_LOGGED: AtomicBool = AtomicBool::new(false);

/// The system-user layer's first check of a verified token, before anything is asked of the
/// PDP: it must carry a system user ([`RejectionKind::NotASystemUser`] otherwise). For
/// diagnostics (`altinn-pep explain`); the layer makes this check itself.
pub fn require_system_user(token: &MaskinportenToken) -> Result<&SystemUserClaim, RejectionKind> {
    token.system_user().ok_or(RejectionKind::NotASystemUser)
}

impl Config {
    fn reject(&self, r: Rejection, headers: &HeaderMap) -> Response<Bytes> {
        reject::render(&*self.responder, self.form, r, headers)
    }

    /// Tells the world how a request was answered: its one audit event, the request metric and
    /// the fields of the current span.
    fn report(&self, outcome: Result<(), RejectionKind>, known: &Authorization<'_>) {
        let key = self.party_key.as_ref();
        audit::authorization(outcome, known, key);
        match outcome {
            Ok(()) => metrics::request_allowed(LayerName::SystemUser),
            Err(kind) => metrics::request_refused(LayerName::SystemUser, kind),
        }
        let current = Span::current();
        if let (Some(resource), Some(action), Some(party)) = (known.resource, known.action, known.party) {
            span::record_target(&current, resource, action, party, known.source, key);
        }
        span::record_outcome(&current, outcome);
    }

    /// A refusal before the PDP was asked (no token, no system user, no valid target).
    fn refuse_early(&self, kind: RejectionKind, token: Option<&MaskinportenToken>, headers: &HeaderMap) -> Response<Bytes> {
        self.report(
            Err(kind),
            &Authorization {
                token,
                ..Authorization::default()
            },
        );
        self.reject(Rejection::new(kind), headers)
    }

    /// The request with its [`SystemUser`] on a `Permit`; the rejection otherwise.
    // The error is the response itself, moved once; boxing it would cost every refusal an
    // allocation for nothing.
    #[allow(clippy::result_large_err)]
    fn admit<B>(
        &self,
        decision: Decision,
        ask: DecisionRequest,
        mut req: Request<B>,
        source: Option<DecisionSource>,
        pdp_ms: Option<u64>,
    ) -> Result<Request<B>, Response<Bytes>> {
        let token = req.extensions().get::<MaskinportenToken>();
        let outcome = match refusal(decision) {
            Some(kind) => Err(kind),
            None if token.and_then(MaskinportenToken::system_user).is_none() => Err(RejectionKind::NotASystemUser),
            None => Ok(()),
        };
        self.report(
            outcome,
            &Authorization {
                token,
                resource: Some(ask.resource()),
                action: Some(ask.action()),
                party: Some(ask.party()),
                source,
                pdp_ms,
            },
        );
        if let Err(kind) = outcome {
            return Err(self.reject(Rejection::new(kind), req.headers()));
        }
        let asked = ask.into_key();
        let principal = token.and_then(|token| SystemUser::new(token, asked.resource, asked.action, asked.party));
        match principal {
            Some(principal) => {
                req.extensions_mut().insert(principal);
                Ok(req)
            }
            // Checked above: the token has a system user.
            None => Err(self.reject(Rejection::new(RejectionKind::NotASystemUser), req.headers())),
        }
    }

    /// No decision could be had: the refusal (429 or 503), reported.
    fn no_decision<B>(
        &self,
        e: &PdpError,
        ask: &DecisionRequest,
        req: &Request<B>,
        source: Option<DecisionSource>,
        pdp_ms: Option<u64>,
    ) -> Response<Bytes> {
        let rejection = no_decision(e);
        self.report(
            Err(rejection.kind()),
            &Authorization {
                token: req.extensions().get::<MaskinportenToken>(),
                resource: Some(ask.resource()),
                action: Some(ask.action()),
                party: Some(ask.party()),
                source,
                pdp_ms,
            },
        );
        self.reject(rejection, req.headers())
    }
}

/// How long a request waited for its decision, in whole milliseconds (saturating).
fn millis_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Lets a request through only when the Altinn PDP permits its system user to do the route's
/// action on the route's resource for the party in question.
///
/// Needs [`MaskinportenService`](crate::maskinporten::MaskinportenService) in front of it.
pub struct SystemUserService<S> {
    inner: S,
    config: Arc<Config>,
    /// Paths that pass untouched (set by [`AuthLayer`](crate::stack::AuthLayer)).
    exempt: Option<Arc<ExemptPaths>>,
}

impl<S> SystemUserService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        SystemUserService {
            inner,
            config,
            exempt: None,
        }
    }

    pub(crate) fn with_exempt(mut self, exempt: Option<Arc<ExemptPaths>>) -> Self {
        self.exempt = exempt;
        self
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Clone> Clone for SystemUserService<S> {
    fn clone(&self) -> Self {
        SystemUserService {
            inner: self.inner.clone(),
            config: self.config.clone(),
            exempt: self.exempt.clone(),
        }
    }
}

impl<S> std::fmt::Debug for SystemUserService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemUserService")
            .field("target", &self.config.target)
            .finish_non_exhaustive()
    }
}

/// The PDP's answer as a rejection, or `None` for `Permit`: the one place where a
/// [`Decision`] becomes a [`RejectionKind`]. Exhaustive, so a new `Decision` must be mapped here.
fn refusal(decision: Decision) -> Option<RejectionKind> {
    match decision {
        Decision::Permit => None,
        Decision::Deny => Some(RejectionKind::Denied),
        Decision::NotApplicable => Some(RejectionKind::NotApplicable),
        Decision::Indeterminate => Some(RejectionKind::Indeterminate),
        Decision::ObligationNotMet => Some(RejectionKind::ObligationNotMet),
    }
}

/// The refusal when no decision could be had: `429` when the system user is over its limit of
/// new PDP questions, `503` otherwise; both with `Retry-After` (1 s when nothing better is
/// known), rounded up to whole seconds.
fn no_decision(e: &PdpError) -> Rejection {
    let after = whole_seconds_up(e.retry_after().unwrap_or(Duration::from_secs(1)));
    let kind = match e.kind() {
        PdpErrorKind::TooManyDecisions => {
            // The caller's doing, not the PDP's: not worth a warning per request.
            tracing::debug!(error = %e, "system user over its limit of new PDP questions; answering 429");
            RejectionKind::TooManyDecisions
        }
        PdpErrorKind::CircuitOpen => {
            // The breaker logged when it opened; one line per refusal would flood.
            tracing::debug!(error = %e, "no decision from the Altinn PDP; answering 503");
            RejectionKind::PdpUnavailable
        }
        _ => {
            tracing::warn!(error = %e, "no decision from the Altinn PDP; answering 503");
            RejectionKind::PdpUnavailable
        }
    };
    Rejection::new(kind).with_retry_after(after)
}

/// `d` rounded up to whole seconds, as `Retry-After` says it: a breaker's 4.2 s left is "5",
/// so that a client that waits as told does not come back while the breaker is still open.
fn whole_seconds_up(d: Duration) -> Duration {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    Duration::from_secs(secs)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SystemUserService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
{
    type Response = Response<crate::ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if ExemptPaths::skip(&self.exempt, req.uri().path()) {
            return ResponseFuture::called(self.inner.call(req));
        }
        let config = &self.config;
        let (parts, body) = req.into_parts();
        let Some(token) = parts.extensions.get::<MaskinportenToken>() else {
            if !MISSING_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    "SystemUserLayer got a request without a verified Maskinporten token: put MaskinportenLayer in front of it"
                );
            }
            return ResponseFuture::rejected(config.refuse_early(RejectionKind::LayerMissing, None, &parts.headers));
        };
        let su = match require_system_user(token) {
            Ok(su) => su,
            Err(kind) => return ResponseFuture::rejected(config.refuse_early(kind, Some(token), &parts.headers)),
        };
        let (subject, owner) = (su.id(), Party::Organisation(su.owner_org()));
        let target = &config.target;
        let resolved = target
            .resource(&parts)
            .and_then(|r| Ok((r, target.action(&parts)?)))
            .and_then(|(r, a)| Ok((r, a, target.party(&parts, token, owner)?)));
        let (resource, action, party) = match resolved {
            Ok(t) => t,
            Err(kind) => return ResponseFuture::rejected(config.refuse_early(kind, Some(token), &parts.headers)),
        };
        let ask = DecisionRequest::new(subject, action, resource, party).with_valid_until(token.expires_at());
        let req = Request::from_parts(parts, body);

        // The warm path: a cached decision is answered now, and the inner service that was
        // driven to readiness is called in place (no clone, no boxed future).
        if let Some(decision) = config.pdp.cached_decision(&ask) {
            return match config.admit(decision, ask, req, Some(DecisionSource::Cache), None) {
                Ok(req) => ResponseFuture::called(self.inner.call(req)),
                Err(res) => ResponseFuture::rejected(res),
            };
        }

        // The PDP has to be asked: the call waits for it, with the ready inner service.
        let config = self.config.clone();
        let check = async move {
            let asked_at = Instant::now();
            let (decided, source) = config.pdp.decide_sourced(&ask).await;
            // How long this request waited, when it waited for a PDP call.
            let pdp_ms = matches!(source, Some(DecisionSource::Pdp | DecisionSource::Shared)).then(|| millis_since(asked_at));
            match decided {
                Ok(decision) => config.admit(decision, ask, req, source, pdp_ms),
                Err(e) => Err(config.no_decision(&e, &ask, &req, source, pdp_ms)),
            }
        }
        .boxed();
        ResponseFuture::after_check(check, &mut self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_permit_is_let_through_and_each_refusal_has_its_kind() {
        assert_eq!(refusal(Decision::Permit), None);
        assert_eq!(refusal(Decision::Deny), Some(RejectionKind::Denied));
        assert_eq!(refusal(Decision::NotApplicable), Some(RejectionKind::NotApplicable));
        assert_eq!(refusal(Decision::Indeterminate), Some(RejectionKind::Indeterminate));
        assert_eq!(refusal(Decision::ObligationNotMet), Some(RejectionKind::ObligationNotMet));
    }

    #[test]
    fn over_the_limit_is_429_and_every_other_failure_503_both_with_retry_after() {
        let limited = no_decision(&PdpError::too_many_decisions(Some(Duration::from_millis(300))));
        assert_eq!(limited.kind(), RejectionKind::TooManyDecisions);
        // Rounded up to whole seconds, as the header says it.
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(1)));
        let open = no_decision(&PdpError::new(PdpErrorKind::CircuitOpen).with_retry_after(Duration::from_millis(4200)));
        assert_eq!(
            (open.kind(), open.retry_after()),
            (RejectionKind::PdpUnavailable, Some(Duration::from_secs(5)))
        );
        // A batch that can never be paid for carries no hint of its own: 1 s.
        let never = no_decision(&PdpError::too_many_decisions(None));
        assert_eq!(
            (never.kind(), never.retry_after()),
            (RejectionKind::TooManyDecisions, Some(Duration::from_secs(1)))
        );
        for kind in [PdpErrorKind::Connect, PdpErrorKind::Timeout, PdpErrorKind::Status(429)] {
            let r = no_decision(&PdpError::new(kind));
            assert_eq!(
                (r.kind(), r.retry_after()),
                (RejectionKind::PdpUnavailable, Some(Duration::from_secs(1))),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        for (ms, secs) in [(0, 0), (1, 1), (999, 1), (1000, 1), (4200, 5), (60_000, 60)] {
            assert_eq!(whole_seconds_up(Duration::from_millis(ms)), Duration::from_secs(secs), "{ms}");
        }
        assert_eq!(whole_seconds_up(Duration::MAX), Duration::from_secs(u64::MAX));
    }
}
