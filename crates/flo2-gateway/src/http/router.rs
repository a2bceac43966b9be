//! The data plane's routes, and its answers for unknown paths and wrong methods in the caller's
//! shape.

use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;

use crate::error::{ApiFormat, ErrorKind, GatewayError};
use crate::gateway::GatewayState;
use crate::http::{chat, embeddings, metrics, models};

/// The data plane's routes.
pub fn router(state: GatewayState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .route("/v1/models", get(models::list))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/messages", post(chat::messages))
        .route("/v1/messages/count_tokens", post(embeddings::count_tokens))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .with_state(state)
}

/// The `/v1` answer for a path that does not exist, in the caller's shape.
pub fn not_found(path: &str, headers: &HeaderMap) -> GatewayError {
    GatewayError::new(
        ApiFormat::detect(path, headers),
        ErrorKind::NotFound,
        format!("unknown endpoint {path}"),
    )
}

/// The `/v1` answer for a known path called with the wrong method, in the caller's shape.
pub fn method_not_allowed(path: &str, headers: &HeaderMap) -> GatewayError {
    GatewayError::new(
        ApiFormat::detect(path, headers),
        ErrorKind::MethodNotAllowed,
        format!("{path} does not accept this method"),
    )
}
