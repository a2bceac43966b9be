//! The caller's request body, read whole up to
//! [`crate::settings::GatewaySettings::max_body_bytes`], with a body that is too large or breaks
//! off refused in the caller's own API shape.
//!
//! Why not axum's `Bytes` extractor under a `DefaultBodyLimit` layer: its refusal is a
//! plain-text 413, which neither the OpenAI nor the Anthropic SDK can read as an error object,
//! and the layer wrapped every gateway route in one more boxed service, cloned and its future
//! boxed again on every request.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};

use crate::body::capped::{read_capped, Capped};
use crate::error::{ApiFormat, ErrorKind, GatewayError};
use crate::gateway::GatewayState;

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
