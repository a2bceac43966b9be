//! The pipeline's first stage, "admit", as an extractor: authenticate the caller, then take a
//! [`Permit`] from the process's counts ([`crate::state::admission`]), so a refused request is
//! answered before its body is read.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};

use crate::caller::Caller;
use crate::error::{ApiFormat, GatewayError};
use crate::gateway::GatewayState;
use crate::state::admission::{Permit, Refusal};

/// What a refused caller is told to wait, in seconds: in-flight requests finish in about that
/// time when the upstream is slow, and a shorter wait would only bring the retry back into a
/// full gateway.
const RETRY_AFTER_SECS: u32 = 1;

/// The caller's answer to a refusal: 503 with `Retry-After` (Anthropic's Messages API: 529
/// `overloaded_error`, what Anthropic itself answers when overloaded and what its SDK retries).
pub fn refusal_error(format: ApiFormat, refusal: Refusal) -> GatewayError {
    let status = match format {
        ApiFormat::OpenAi => StatusCode::SERVICE_UNAVAILABLE,
        // 529 is a valid status code; `from_u16` cannot fail on it.
        ApiFormat::Anthropic => {
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
        }
    };
    GatewayError::with_status(format, status, refusal.to_string())
        .retry_after(Some(HeaderValue::from(RETRY_AFTER_SECS)))
}

/// An authenticated caller admitted into the pipeline, with its [`Permit`]: the extractor runs
/// [`Caller`]'s, then admission, so a refused request is answered before its body is read.
pub struct Admitted(pub Caller, pub Permit);

impl FromRequestParts<GatewayState> for Admitted {
    type Rejection = GatewayError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &GatewayState,
    ) -> Result<Self, GatewayError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match state.admission.admit(caller.key.org) {
            Ok(permit) => Ok(Self(caller, permit)),
            Err(refusal) => Err(refusal_error(caller.format, refusal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_shaped_per_api() {
        let e = refusal_error(ApiFormat::OpenAi, Refusal::Process(8));
        assert_eq!(e.status().as_u16(), 503);
        assert_eq!(e.body()["error"]["type"], "server_error");
        let e = refusal_error(ApiFormat::Anthropic, Refusal::Organization(4));
        assert_eq!(e.status().as_u16(), 529);
        assert_eq!(e.body()["error"]["type"], "overloaded_error");
    }
}
