//! Gateway-key authentication: `Authorization: Bearer <key>` (OpenAI SDKs) or
//! `x-api-key: <key>` (Anthropic SDKs), checked from memory: the extractor that makes a
//! [`Caller`].

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use flo2_vault::gateway_key;

use crate::caller::Caller;
use crate::error::{ApiFormat, ErrorKind, GatewayError};
use crate::gateway::GatewayState;

fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(value) = parts.headers.get("x-api-key") {
        return value.to_str().ok().map(str::trim);
    }
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<GatewayState> for Caller {
    type Rejection = GatewayError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &GatewayState,
    ) -> Result<Self, Self::Rejection> {
        let format = ApiFormat::detect(parts.uri.path(), &parts.headers);
        let reject = |message: &str| GatewayError::new(format, ErrorKind::Authentication, message);
        let presented = presented_key(parts).ok_or_else(|| {
            reject("missing API key: send your flo2 key as `Authorization: Bearer <key>` or `x-api-key: <key>`")
        })?;
        // Shape and checksum first: junk never reaches the cache or the database.
        let hash = gateway_key::parse(presented).map_err(|_| reject("invalid API key"))?;
        let key = match state.keys.lookup(&hash).await {
            Ok(Some(key)) if !key.revoked => key,
            Ok(_) => return Err(reject("invalid or revoked API key")),
            Err(err) => {
                tracing::error!(error = %err, "key lookup failed");
                return Err(GatewayError::new(
                    format,
                    ErrorKind::Unavailable,
                    "flo2 cannot verify keys right now; retry shortly",
                ));
            }
        };
        state.key_usage.record(key.id);
        Ok(Caller { key, format })
    }
}
