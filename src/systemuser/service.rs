//! [`SystemUserService`]: verified token → PDP decision → [`SystemUser`] in the extensions.

use super::principal::SystemUser;
use super::target::Target;
use crate::future::ResponseFuture;
use crate::maskinporten::MaskinportenToken;
use crate::org::Party;
use crate::pdp::{AltinnPdp, Decision, DecisionRequest};
use crate::reject::{self, Rejection, RejectionKind, RejectionResponder};
use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderMap, Request, Response};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tower_service::Service;

pub(crate) struct Config {
    pub pdp: AltinnPdp,
    pub target: Target,
    pub responder: Arc<dyn RejectionResponder>,
}

static MISSING_LOGGED: AtomicBool = AtomicBool::new(false);

impl Config {
    fn reject(&self, r: Rejection, headers: &HeaderMap) -> Response<Bytes> {
        reject::render(&*self.responder, r, headers)
    }
}

/// Lets a request through only when the Altinn PDP permits its system user to do the route's
/// action on the route's resource for the party in question.
///
/// Needs [`MaskinportenService`](crate::maskinporten::MaskinportenService) in front of it.
pub struct SystemUserService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> SystemUserService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        SystemUserService { inner, config }
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

/// The PDP's answer as a rejection, or `None` for Permit.
fn refusal(decision: &Decision) -> Option<RejectionKind> {
    match decision {
        Decision::Permit => None,
        Decision::Deny => Some(RejectionKind::Denied),
        Decision::NotApplicable => Some(RejectionKind::NotApplicable),
        Decision::ObligationNotMet => Some(RejectionKind::ObligationNotMet),
        // Indeterminate, and anything a later version adds: refuse.
        #[allow(unreachable_patterns)]
        _ => Some(RejectionKind::Indeterminate),
    }
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
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = &self.config;
        let Some(token) = req.extensions().get::<MaskinportenToken>().cloned() else {
            if !MISSING_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    "SystemUserLayer got a request without a verified Maskinporten token: put MaskinportenLayer in front of it"
                );
            }
            return ResponseFuture::rejected(config.reject(Rejection::new(RejectionKind::LayerMissing), req.headers()));
        };
        let Some(su) = token.system_user() else {
            return ResponseFuture::rejected(config.reject(Rejection::new(RejectionKind::NotASystemUser), req.headers()));
        };
        let subject = su.id();
        let owner = Party::Organisation(su.owner_org());
        let (parts, body) = req.into_parts();
        let target = &config.target;
        let resolved = target
            .resource(&parts)
            .and_then(|r| Ok((r, target.action(&parts)?)))
            .and_then(|(r, a)| Ok((r, a, target.party(&parts, &token, owner)?)));
        let (resource, action, party) = match resolved {
            Ok(t) => t,
            Err(kind) => return ResponseFuture::rejected(config.reject(Rejection::new(kind), &parts.headers)),
        };
        let req = Request::from_parts(parts, body);
        let ask = DecisionRequest::new(subject, action, resource, party).valid_until(token.expires_at());
        let config = self.config.clone();
        let check = async move {
            match config.pdp.decide(&ask).await {
                Ok(decision) => match refusal(&decision) {
                    None => {
                        let mut req = req;
                        match SystemUser::new(&token, ask.resource, ask.action, ask.party) {
                            Some(principal) => {
                                req.extensions_mut().insert(principal);
                                Ok(req)
                            }
                            None => Err(config.reject(Rejection::new(RejectionKind::NotASystemUser), req.headers())),
                        }
                    }
                    Some(kind) => Err(config.reject(Rejection::new(kind), req.headers())),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "no decision from the Altinn PDP; answering 503");
                    let after = e.retry_after().unwrap_or(Duration::from_secs(1));
                    Err(config.reject(Rejection::new(RejectionKind::PdpUnavailable).with_retry_after(after), req.headers()))
                }
            }
        }
        .boxed();
        ResponseFuture::checking(check, inner)
    }
}
