//! `x-flo2-request-id`: a UUIDv7 given to every request, returned on every response and
//! attached to the request's tracing span, so a caller's report can be matched to the logs.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::http::{HeaderName, Request};
use axum::response::Response;
use tower::{Layer, Service};
use tracing::instrument::Instrumented;
use tracing::Instrument;
use uuid::Uuid;

use crate::pipeline::respond::uuid_value;

/// The header name, parsed once (a `&str` name is parsed again on every insert).
pub const HEADER: HeaderName = HeaderName::from_static("x-flo2-request-id");

/// The id of the current request and when it reached the router, available to handlers as an
/// extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestId {
    /// The id.
    pub id: Uuid,
    /// When the router got the request (where flo2's own-time measurement starts).
    pub arrived: Instant,
}

/// Assigns each request its id, opens the request's span, and stamps the response.
///
/// Written out rather than as `axum::middleware::from_fn`, which on every request clones the
/// inner service, boxes it again inside `Next`, and boxes the middleware's future: three
/// allocations and a dynamic call per request, on every request flo2 serves.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

/// The service [`RequestIdLayer`] wraps around the router.
#[derive(Clone, Debug)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Stamped<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let arrived = Instant::now();
        let id = Uuid::now_v7();
        request.extensions_mut().insert(RequestId { id, arrived });
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            path = %request.uri().path(),
        );
        Stamped {
            inner: self.inner.call(request).instrument(span),
            id,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's answer, stamped with its id when it is ready.
    pub struct Stamped<F> {
        #[pin]
        inner: Instrumented<F>,
        id: Uuid,
    }
}

impl<F, E> Future for Stamped<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut response = ready!(this.inner.as_mut().poll(cx))?;
        let status = response.status().as_u16();
        this.inner
            .span()
            .in_scope(|| tracing::debug!(status, "answered"));
        if let Some(value) = uuid_value(this.id) {
            response.headers_mut().insert(HEADER, value);
        }
        Poll::Ready(Ok(response))
    }
}
