//! The embeddings pipeline (`POST /v1/embeddings`, OpenAI shape): read, resolve the directly
//! addressed model, write the body as a same-format passthrough, and call it with the
//! provider's keys as a pool (a 429 moves on to the next key), every attempt metered.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use flo2_core::{AttemptRole, FailureKind};
use flo2_llm::common::Usage;
use flo2_llm::providers::{self, WireFamily};
use serde_json::Value;

use crate::caller::Caller;
use crate::error::{ErrorKind, GatewayError};
use crate::gateway::GatewayState;
use crate::metering::meter::Meter;
use crate::pipeline::request::{org_config, parse_body, resolve_error, Inbound};
use crate::serve::failure::{parse_retry_after, RETRYABLE};
use crate::serve::resolve::resolve;
use crate::serve::routing::Candidate;
use crate::state::health::{Outcome, TargetKey};
use crate::state::target::Target;
use crate::upstream::deadline::Deadline;
use crate::upstream::exchange::{read_limited, send, timeout_error, upstream_error};
use crate::upstream::passthrough_body::{Forwarded, StreamOptions};
use crate::upstream::plan::{Mode, Plan};

/// The stages, in order: read, select (the one target), dispatch over its keys.
pub(crate) async fn handle(state: &GatewayState, inbound: Inbound) -> Response {
    run(state, inbound)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn run(state: &GatewayState, inbound: Inbound) -> Result<Response, GatewayError> {
    let Inbound {
        caller, id, body, ..
    } = inbound;
    let format = caller.format;
    let value = parse_body(format, &body)?;
    let requested = value
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let config = org_config(state, &caller).await?;
    let target = resolve(&config, &requested).map_err(|e| resolve_error(format, &e))?;
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
    let exact = crate::upstream::exact_json::if_needed(&value, &body);
    let body = forwarded.encode(exact.as_ref(), body.len()).map_err(|e| {
        GatewayError::new(
            format,
            ErrorKind::Internal,
            format!("cannot encode the upstream request: {e}"),
        )
    })?;
    let plan = Plan {
        body: Bytes::from(body),
        mode: Mode::Passthrough,
        family: WireFamily::OpenAi,
        stream: false,
        client_wants_stream_usage: false,
        extra_headers: Vec::new(),
    };
    // The provider's keys as a pool, as for a directly addressed chat model: a key resting
    // after a 429 or behind an open breaker is skipped, a 429 moves on to the next key at once,
    // and every outcome teaches the replica's health view.
    let candidate = Candidate::direct(caller.key.org, &config, &target);
    let call = Call {
        state,
        caller: &caller,
        id,
        requested: &requested,
        url: &url,
        plan: &plan,
        key: &candidate.key,
    };
    let limit = state.settings.upstream.request_timeout;
    // One deadline for the whole request, over every key tried and every read.
    let mut deadline = Deadline::at(tokio::time::Instant::now() + limit);
    let keys = candidate.pool.len().max(1);
    let mut attempt = 0;
    loop {
        let credential = state
            .health
            .pick_credential(&candidate.pool)
            .or_else(|| candidate.pool.get(attempt % keys));
        let Some(credential) = credential else {
            // `resolve` found a key, so the pool is not empty; this is not reached.
            return Err(GatewayError::new(
                format,
                ErrorKind::Unavailable,
                format!("no {} key is available", target.provider),
            ));
        };
        attempt += 1;
        let target = candidate.target(credential);
        match call.attempt(&target, attempt, &mut deadline).await {
            Err(Tried::RateLimited(err)) if attempt < keys => {
                tracing::info!(attempt, "embedding key rate-limited; trying the next key");
                drop(err);
            }
            Err(Tried::RateLimited(err) | Tried::Failed(err)) => return Err(err),
            Ok(resp) => return Ok(resp),
        }
    }
}

/// What one embedding attempt shares with the others of its request.
struct Call<'a> {
    state: &'a GatewayState,
    caller: &'a Caller,
    id: uuid::Uuid,
    requested: &'a str,
    url: &'a str,
    plan: &'a Plan,
    key: &'a TargetKey,
}

/// How an embedding attempt failed.
enum Tried {
    /// 429: the key now rests; another key of the pool may be tried.
    RateLimited(GatewayError),
    /// Anything else: the caller gets it.
    Failed(GatewayError),
}

impl Call<'_> {
    /// One attempt with `target`'s key, every read under `deadline`, metered and reported to
    /// the health view.
    async fn attempt(
        &self,
        target: &Target,
        number: usize,
        deadline: &mut Deadline,
    ) -> Result<Response, Tried> {
        let (state, format) = (self.state, self.caller.format);
        let mut meter = Meter::start(
            &state.usage,
            self.caller,
            format,
            self.id,
            self.requested,
            target,
        );
        let number = u32::try_from(number).unwrap_or(u32::MAX);
        meter.attempt(number, AttemptRole::in_chain(number));
        let limit = state.settings.upstream.request_timeout;
        let started = Instant::now();
        let credential = target.credential.id;
        let report = |outcome| state.health.record(self.key, credential, outcome);
        let timed_out = |meter: &mut Meter| {
            meter.finish(504, Some(FailureKind::Timeout));
            report(Outcome::Failure(started.elapsed()));
            Tried::Failed(timeout_error(format, target, limit))
        };
        let response = match deadline
            .run(send(&state.upstream, target, self.url, self.plan, format))
            .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                meter.finish(e.status().as_u16(), Some(FailureKind::Unreachable));
                report(Outcome::Failure(started.elapsed()));
                return Err(Tried::Failed(e));
            }
            Err(_) => return Err(timed_out(&mut meter)),
        };
        if !response.status().is_success() {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(parse_retry_after);
            // The error body is read under the same deadline: an upstream that sends its error
            // head and then stalls no longer holds the caller.
            let Ok(err) = deadline.run(upstream_error(format, target, response)).await else {
                return Err(timed_out(&mut meter));
            };
            let status = err.status().as_u16();
            meter.finish(status, Some(FailureKind::UpstreamError));
            if status == 429 {
                report(Outcome::RateLimited(retry_after));
                return Err(Tried::RateLimited(err));
            }
            if RETRYABLE.contains(&status) {
                report(Outcome::Failure(started.elapsed()));
            }
            return Err(Tried::Failed(err));
        }
        let bytes = match deadline.run(read_limited(response)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(why)) => {
                meter.finish(502, Some(FailureKind::UpstreamBody));
                report(Outcome::Failure(started.elapsed()));
                return Err(Tried::Failed(GatewayError::new(
                    format,
                    ErrorKind::BadGateway,
                    format!("{}: {why}", target.provider),
                )));
            }
            Err(_) => return Err(timed_out(&mut meter)),
        };
        report(Outcome::Success(started.elapsed()));
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
}
