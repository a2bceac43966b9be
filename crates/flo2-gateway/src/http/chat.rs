//! `POST /v1/chat/completions` (OpenAI) and `POST /v1/messages` (Anthropic): the handlers. Each
//! takes an admitted caller and the body from the edge's extractors and hands them to the
//! pipeline ([`crate::pipeline::chat`]); the admission permit is held until the answer is sent.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Extension;
use futures_util::StreamExt as _;

use crate::error::ApiFormat;
use crate::gateway::GatewayState;
use crate::http::admission::Admitted;
use crate::http::caller_body::CallerBody;
use crate::http::request_id::RequestId;
use crate::pipeline::chat::handle_measured;
use crate::pipeline::request::Inbound;
use crate::state::admission::Permit;

/// OpenAI Chat Completions.
pub async fn chat_completions(
    state: State<GatewayState>,
    Admitted(caller, permit): Admitted,
    id: Extension<RequestId>,
    CallerBody(body): CallerBody,
) -> Response {
    let handling = handle_measured(
        &state.0,
        Inbound::new(caller, ApiFormat::OpenAi, id.0, None, body),
    );
    hold_permit(handling.await, permit)
}

/// Anthropic Messages.
pub async fn messages(
    state: State<GatewayState>,
    Admitted(caller, permit): Admitted,
    id: Extension<RequestId>,
    headers: HeaderMap,
    CallerBody(body): CallerBody,
) -> Response {
    // Beta flags mean something only to Anthropic itself: forwarded there and nowhere else.
    let beta = headers
        .get("anthropic-beta")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let handling = handle_measured(
        &state.0,
        Inbound::new(caller, ApiFormat::Anthropic, id.0, beta, body),
    );
    hold_permit(handling.await, permit)
}

/// Keeps the request's admission [`Permit`] until its answer has been sent: a streamed answer
/// carries it in its body, which is dropped when the stream ends or the caller hangs up. A
/// complete answer is already in memory, and its permit is released now.
fn hold_permit(response: Response, permit: Permit) -> Response {
    let streamed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes() == b"text/event-stream");
    if !streamed {
        return response;
    }
    response.map(|body| {
        Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _held = &permit;
            chunk
        }))
    })
}
