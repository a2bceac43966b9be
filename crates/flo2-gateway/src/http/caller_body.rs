//! The caller's request body, read whole up to [`crate::GatewaySettings::max_body_bytes`], with a
//! body that is too large or breaks off refused in the caller's own API shape.
//!
//! Why not axum's `Bytes` extractor under a `DefaultBodyLimit` layer: its refusal is a
//! plain-text 413, which neither the OpenAI nor the Anthropic SDK can read as an error object,
//! and the layer wrapped every gateway route in one more boxed service, cloned and its future
//! boxed again on every request.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::http::HeaderMap;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use crate::error::{ApiFormat, ErrorKind, GatewayError};
use crate::idle_body::BodyStalled;
use crate::GatewayState;

/// The whole request body. A body that arrived in one chunk is passed on without a copy.
#[derive(Debug)]
pub struct CallerBody(pub Bytes);

impl FromRequest<GatewayState> for CallerBody {
    type Rejection = GatewayError;

    async fn from_request(req: Request, state: &GatewayState) -> Result<Self, GatewayError> {
        let format = ApiFormat::detect(req.uri().path(), req.headers());
        let limit = state.settings.max_body_bytes;
        let (parts, body) = req.into_parts();
        match read_capped(&parts.headers, body, limit).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(Capped::TooLarge) => Err(GatewayError::new(
                format,
                ErrorKind::TooLarge,
                format!("the request body is larger than the {limit} bytes this flo2 accepts"),
            )),
            Err(Capped::Broken) => Err(GatewayError::new(
                format,
                ErrorKind::InvalidRequest,
                "the request body broke off before its end",
            )),
            Err(Capped::Stalled) => Err(GatewayError::with_status(
                format,
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "the request body stopped arriving before its end",
            )),
        }
    }
}

/// Why a whole body could not be read under its cap.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Capped {
    /// It is (or declared itself) larger than the cap.
    TooLarge,
    /// The connection broke before its end.
    Broken,
    /// It stopped arriving for longer than the idle limit ([`crate::idle_body`]).
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
