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
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use crate::error::{ApiFormat, ErrorKind, GatewayError};
use crate::GatewayState;

/// The whole request body. A body that arrived in one chunk is passed on without a copy.
#[derive(Debug)]
pub struct CallerBody(pub Bytes);

impl FromRequest<GatewayState> for CallerBody {
    type Rejection = GatewayError;

    async fn from_request(req: Request, state: &GatewayState) -> Result<Self, GatewayError> {
        let format = ApiFormat::detect(req.uri().path(), req.headers());
        let limit = state.settings.max_body_bytes;
        let too_large = || {
            GatewayError::new(
                format,
                ErrorKind::TooLarge,
                format!("the request body is larger than the {limit} bytes this flo2 accepts"),
            )
        };
        // A declared length over the limit is refused before a byte of the body is read.
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        match Limited::new(req.into_body(), limit).collect().await {
            Ok(collected) => Ok(Self(collected.to_bytes())),
            Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
            Err(_) => Err(GatewayError::new(
                format,
                ErrorKind::InvalidRequest,
                "the request body broke off before its end",
            )),
        }
    }
}
