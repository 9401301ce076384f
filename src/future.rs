//! [`ResponseFuture`], shared by both layers.

use crate::body::ResponseBody;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower_service::Service;

/// An asynchronous check: hands the request back (with what it verified in the extensions), or
/// the rejection response.
pub(crate) type Check<ReqBody> = BoxFuture<'static, Result<Request<ReqBody>, Response<Bytes>>>;

pin_project! {
    /// Response future of [`MaskinportenService`](crate::maskinporten::MaskinportenService) and
    /// [`SystemUserService`](crate::systemuser::SystemUserService).
    ///
    /// Either the inner service's future, a rejection that is ready, or a check that has to wait
    /// (for signing keys or the PDP) before the inner service is called.
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Checking { check: Check<ReqBody>, inner: Option<S> },
        Calling { #[pin] fut: S::Future },
        Rejected { res: Option<Response<Bytes>> },
    }
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn called(fut: S::Future) -> Self {
        ResponseFuture {
            state: State::Calling { fut },
        }
    }

    pub(crate) fn rejected(res: Response<Bytes>) -> Self {
        ResponseFuture {
            state: State::Rejected { res: Some(res) },
        }
    }

    /// Calls `ready` (the service `poll_ready` was called on) once `check` hands the request
    /// back; a clone is left in its place for the next request.
    pub(crate) fn after_check(check: Check<ReqBody>, ready: &mut S) -> Self
    where
        S: Clone,
    {
        let clone = ready.clone();
        let inner = std::mem::replace(ready, clone);
        ResponseFuture {
            state: State::Checking { check, inner: Some(inner) },
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().state.project() {
                StateProj::Calling { fut } => {
                    let res = ready!(fut.poll(cx))?;
                    return Poll::Ready(Ok(res.map(ResponseBody::inner)));
                }
                StateProj::Rejected { res } => {
                    let res = res.take().unwrap_or_else(internal_error);
                    return Poll::Ready(Ok(res.map(ResponseBody::rejection)));
                }
                StateProj::Checking { check, inner } => match ready!(check.as_mut().poll(cx)) {
                    Ok(req) => {
                        let Some(mut svc) = inner.take() else {
                            let next = State::Rejected {
                                res: Some(internal_error()),
                            };
                            self.as_mut().project().state.set(next);
                            continue;
                        };
                        let fut = svc.call(req);
                        self.as_mut().project().state.set(State::Calling { fut });
                    }
                    Err(res) => {
                        self.as_mut().project().state.set(State::Rejected { res: Some(res) });
                    }
                },
            }
        }
    }
}

/// Only reached if a future is polled after completion.
fn internal_error() -> Response<Bytes> {
    crate::reject::Rejection::new(crate::reject::RejectionKind::LayerMissing).http_response()
}
