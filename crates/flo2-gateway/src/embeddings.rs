//! `POST /v1/embeddings` (OpenAI shape) and `POST /v1/messages/count_tokens` (Anthropic shape).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use flo2_llm::common::Usage;
use flo2_llm::estimate;
use flo2_llm::providers::{self, WireFamily};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::caller_body::CallerBody;
use crate::chat::{parse_body, read_limited, send, target_for, timeout_error, upstream_error};
use crate::deadline::Deadline;
use crate::error::{ApiFormat, ErrorKind, GatewayError};
use crate::meter::Meter;
use crate::passthrough_body::{Forwarded, StreamOptions};
use crate::plan::{Mode, Plan};
use crate::request_id::RequestId;
use crate::GatewayState;

/// Embeddings, forwarded to OpenAI-style embedding endpoints.
pub async fn embeddings(
    State(state): State<GatewayState>,
    caller: Caller,
    Extension(id): Extension<RequestId>,
    CallerBody(body): CallerBody,
) -> Response {
    run(
        state,
        Caller {
            format: ApiFormat::OpenAi,
            ..caller
        },
        id,
        body,
    )
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

async fn run(
    state: GatewayState,
    caller: Caller,
    id: RequestId,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let format = caller.format;
    let value = parse_body(format, &body)?;
    let requested = value
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let target = target_for(&state, &caller, &requested).await?;
    let url = providers::embeddings_url(target.provider, &target.base_url).ok_or_else(|| {
        GatewayError::new(
            format,
            ErrorKind::InvalidRequest,
            format!("embeddings are not supported by {}", target.provider),
        )
    })?;
    let Some(map) = value.as_object() else {
        return Err(GatewayError::new(
            format,
            ErrorKind::InvalidRequest,
            "the request body must be a JSON object",
        ));
    };
    // Written like a same-format chat body: the model rewritten, steering fields removed at
    // any depth.
    let forwarded = Forwarded {
        body: map,
        model: &target.model,
        max_tokens_for_max_completion: false,
        stream_options: StreamOptions::Keep,
    };
    let body = if crate::exact_json::holds_inexact_numbers(&value) {
        let exact = crate::exact_json::parse(&body).ok_or_else(|| {
            GatewayError::new(
                format,
                ErrorKind::InvalidRequest,
                "the request body is not valid JSON",
            )
        })?;
        let mut out = Vec::with_capacity(body.len() + 64);
        forwarded.write_exact(&exact, &mut out);
        out
    } else {
        serde_json::to_vec(&forwarded).map_err(|e| {
            GatewayError::new(
                format,
                ErrorKind::Internal,
                format!("cannot encode the upstream request: {e}"),
            )
        })?
    };
    let plan = Plan {
        body: Bytes::from(body),
        mode: Mode::Passthrough,
        family: WireFamily::OpenAi,
        stream: false,
        client_wants_stream_usage: false,
        extra_headers: Vec::new(),
    };
    let mut meter = Meter::start(&state.usage, &caller, format, id.id, &requested, &target);
    let limit = state.settings.upstream.request_timeout;
    let timed_out = || timeout_error(format, &target, limit);
    let mut deadline = Deadline::at(tokio::time::Instant::now() + limit);
    let response = match deadline
        .run(send(&state, &target, &url, &plan, format))
        .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            meter.finish(e.status().as_u16(), Some("upstream_unreachable"));
            return Err(e);
        }
        Err(_) => {
            meter.finish(504, Some("timeout"));
            return Err(timed_out());
        }
    };
    if !response.status().is_success() {
        let err = upstream_error(format, &target, response).await;
        meter.finish(err.status().as_u16(), Some("upstream_error"));
        return Err(err);
    }
    let bytes = match deadline.run(read_limited(response)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(why)) => {
            meter.finish(502, Some("upstream_body"));
            return Err(GatewayError::new(
                format,
                ErrorKind::BadGateway,
                format!("{}: {why}", target.provider),
            ));
        }
        Err(_) => {
            meter.finish(504, Some("timeout"));
            return Err(timed_out());
        }
    };
    let prompt = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("usage")
                .and_then(|u| u.get("prompt_tokens"))
                .and_then(Value::as_u64)
        })
        .unwrap_or(0);
    meter.usage(Usage {
        input: prompt,
        ..Usage::default()
    });
    meter.finish(200, None);
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// A documented approximation ([`estimate`]): about four characters of text per token, plus a
/// small overhead per message. Providers other than Anthropic have no counting endpoint, and an exact count
/// would need each model's tokenizer.
pub async fn count_tokens(caller: Caller, CallerBody(body): CallerBody) -> Response {
    let format = ApiFormat::Anthropic;
    let _ = caller;
    match parse_body(format, &body) {
        Ok(value) => Json(json!({"input_tokens": estimate::prompt_tokens(&value)})).into_response(),
        Err(e) => e.into_response(),
    }
}
