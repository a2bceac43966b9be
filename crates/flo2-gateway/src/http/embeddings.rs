//! `POST /v1/embeddings` (OpenAI shape) and `POST /v1/messages/count_tokens` (Anthropic shape):
//! the handlers. Embeddings go through their pipeline ([`crate::pipeline::embeddings`]); a token
//! count is answered here, from the body alone.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use flo2_llm::estimate;
use serde_json::json;

use crate::caller::Caller;
use crate::error::ApiFormat;
use crate::gateway::GatewayState;
use crate::http::admission::Admitted;
use crate::http::caller_body::CallerBody;
use crate::http::request_id::RequestId;
use crate::pipeline::embeddings::handle;
use crate::pipeline::request::{parse_body, Inbound};

/// Embeddings, forwarded to OpenAI-style embedding endpoints.
pub async fn embeddings(
    State(state): State<GatewayState>,
    Admitted(caller, _permit): Admitted,
    Extension(id): Extension<RequestId>,
    CallerBody(body): CallerBody,
) -> Response {
    handle(
        &state,
        Inbound::new(caller, ApiFormat::OpenAi, id, None, body),
    )
    .await
}

/// A documented approximation ([`estimate`]): about four characters of text per token, plus a
/// small overhead per message. Providers other than Anthropic have no counting endpoint, and an
/// exact count would need each model's tokenizer.
pub async fn count_tokens(caller: Caller, CallerBody(body): CallerBody) -> Response {
    let format = ApiFormat::Anthropic;
    let _ = caller;
    match parse_body(format, &body) {
        Ok(value) => Json(json!({"input_tokens": estimate::prompt_tokens(&value)})).into_response(),
        Err(e) => e.into_response(),
    }
}
