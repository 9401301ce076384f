//! [`ResponseFuture`], shared by both layers.

use crate::ResponseBody;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tower_service::Service;

/// Polling a future again after it returned `Ready` breaks the `Future` contract; like tower-http,
/// we say so instead of making up a response.
const POLLED_AFTER_COMPLETION: &str = "ResponseFuture polled after completion";

/// An asynchronous check: hands the request back (with what it verified in the extensions), or
/// the rejection response.
pub(crate) type Check<ReqBody> = BoxFuture<'static, Result<Request<ReqBody>, Response<Bytes>>>;

pin_project! {
    /// Response future of [`MaskinportenService`](crate::maskinporten::MaskinportenService) and
    /// [`SystemUserService`](crate::systemuser::SystemUserService).
    ///
    /// Either the inner service's future, a rejection that is ready, or a check that has to wait
    /// (for signing keys or the PDP) before the inner service is called.
    ///
    /// # Panics
    ///
    /// When polled again after it has answered with a rejection (as tower-http's futures do).
    /// Once the inner service has been called, polling after completion does whatever the inner
    /// service's future does.
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
                    let res = res.take().expect(POLLED_AFTER_COMPLETION);
                    return Poll::Ready(Ok(res.map(ResponseBody::rejection)));
                }
                StateProj::Checking { check, inner } => match ready!(check.as_mut().poll(cx)) {
                    Ok(req) => {
                        // Only gone if `call` panicked and the future is polled again.
                        let mut svc = inner.take().expect(POLLED_AFTER_COMPLETION);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::task::Waker;

    /// An inner service a rejected request never reaches.
    #[derive(Clone)]
    struct Unreached;

    impl Service<Request<()>> for Unreached {
        type Response = Response<http_body_util::Empty<Bytes>>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            unreachable!("a rejected request reached the inner service")
        }
    }

    #[test]
    #[should_panic(expected = "ResponseFuture polled after completion")]
    fn polling_after_completion_panics() {
        let res = Response::new(Bytes::from_static(b"{}"));
        let mut fut = std::pin::pin!(ResponseFuture::<Unreached, ()>::rejected(res));
        let mut cx = Context::from_waker(Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(res)) => assert!(format!("{:?}", res.body()).contains("Rejection")),
            other => panic!("not answered at once: {:?}", other.map(|r| r.map(|_| ()))),
        }
        let _ = fut.as_mut().poll(&mut cx);
    }
}
