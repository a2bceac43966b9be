//! Reading a whole body under a size cap, for the caller's request ([`crate::http::caller_body`])
//! and the upstream's answer ([`crate::upstream::exchange`]) alike.

use axum::body::Bytes;
use axum::http::header::CONTENT_LENGTH;
use axum::http::HeaderMap;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use crate::body::idle::BodyStalled;

/// Why a whole body could not be read under its cap.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Capped {
    /// It is (or declared itself) larger than the cap.
    TooLarge,
    /// The connection broke before its end.
    Broken,
    /// It stopped arriving for longer than the idle limit ([`crate::body::idle`]).
    Stalled,
}

/// Reads a whole body of at most `limit` bytes, for the caller's request and the upstream's
/// answer alike. A declared `content-length` over the limit is refused before a byte is read;
/// a body that arrives in one chunk (most do) is passed on without a copy.
pub(crate) async fn read_capped<B>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, Capped>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Capped::TooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(Capped::TooLarge),
        Err(e) if BodyStalled::is_cause_of(&*e) => Err(Capped::Stalled),
        Err(_) => Err(Capped::Broken),
    }
}
