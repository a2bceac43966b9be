//! `x-flo2-request-id`: a UUIDv7 given to every request, returned on every response and
//! attached to the request's tracing span, so a caller's report can be matched to the logs.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use uuid::Uuid;

/// The header name, parsed once (a `&str` name is parsed again on every insert).
pub const HEADER: HeaderName = HeaderName::from_static("x-flo2-request-id");

/// The id of the current request and when it reached the router, available to handlers as an
/// extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestId {
    /// The id.
    pub id: Uuid,
    /// When the router got the request (the start of [`crate::overhead`]'s measurement).
    pub arrived: Instant,
}

/// Middleware: assigns the id, opens the request span, and stamps the response.
pub async fn middleware(mut request: Request, next: Next) -> Response {
    let arrived = Instant::now();
    let id = Uuid::now_v7();
    request.extensions_mut().insert(RequestId { id, arrived });
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "answered"));
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    if let Ok(value) = HeaderValue::from_bytes(id.hyphenated().encode_lower(&mut text).as_bytes()) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
