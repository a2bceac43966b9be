//! One upstream attempt: plan the request for the target, send it with one key, and return
//! either the caller's answer or a classified failure. Every attempt is metered on its own and
//! reports to the replica's health view, so breakers and `fastest` learn from all traffic.
//!
//! A non-streamed attempt succeeds when its whole answer is read; a streamed one when the first
//! token arrives (until then nothing has reached the caller, so a failure can still fall back).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use flo2_core::{AttemptRole, FailureKind, ModelPrice, OrgId, PicoUsd};
use flo2_llm::common::TranslateError;
use flo2_llm::providers::{self, WireFamily};
use serde_json::Value;
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::{ApiFormat, ErrorKind, GatewayError};
use crate::gateway::GatewayState;
use crate::metering::meter::Meter;
use crate::serve::failure::{parse_retry_after, Failure};
use crate::serve::needs::Needs;
use crate::state::health::{Outcome, TargetKey};
use crate::state::target::Target;
use crate::upstream::deadline::Deadline;
use crate::upstream::exchange::{answer, read_limited, send, timeout_error, upstream_error};
use crate::upstream::plan::{plan, CallerJson};
use crate::upstream::relay::Relay;

/// What every attempt of one request shares.
pub struct Request<'a> {
    /// The data plane.
    pub state: &'a GatewayState,
    /// Who is calling: the gateway key behind the request, or `None` for a call flo2 makes for
    /// the organization itself (a provider-key test), metered without team or key.
    pub caller: Option<&'a Caller>,
    /// The organization the call is for and billed to.
    pub org: OrgId,
    /// The caller's API format.
    pub format: ApiFormat,
    /// The request id.
    pub request_id: Uuid,
    /// The `model` the caller asked for (a model or a route name).
    pub requested: &'a str,
    /// The route, with its baseline model's price.
    pub route: Option<(&'a str, Option<ModelPrice>)>,
    /// The caller's body.
    pub body: CallerJson<'a>,
    /// `anthropic-beta`, forwarded to Anthropic only.
    pub beta: Option<&'a str>,
    /// What the request needs.
    pub needs: Needs,
    /// Attempts sent upstream so far; each attempt takes its number from here when it sends.
    pub sent: AtomicU32,
}

impl Request<'_> {
    /// The caller's format.
    pub fn format(&self) -> ApiFormat {
        self.format
    }

    /// How many attempts were actually sent upstream.
    pub fn attempts_sent(&self) -> u32 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// A successful attempt's answer.
pub enum Answer {
    /// A complete JSON answer in the caller's format.
    Complete {
        /// The body.
        body: Bytes,
        /// Its exact cost.
        cost: PicoUsd,
        /// The body's format (the caller's).
        format: ApiFormat,
    },
    /// A stream whose first token has arrived.
    Stream {
        /// What was read up to the first token, in the caller's format.
        prefix: Bytes,
        /// The rest.
        relay: Box<Relay>,
    },
}

impl Answer {
    /// The text of a complete answer (for choosing the best race answer; parsed only when
    /// asked, so the common single-answer path never reads its answer twice).
    pub fn text(&self) -> String {
        match self {
            Answer::Complete { body, format, .. } => answer_text(*format, body),
            Answer::Stream { .. } => String::new(),
        }
    }
}

/// A successful attempt.
pub struct Success {
    /// The answer.
    pub answer: Answer,
    /// Who served it.
    pub target: Target,
}

/// Runs one attempt at `target` (the organization's `key`), at most `timeout` long. It is
/// numbered within its request when it is sent: a target that cannot express the request
/// sends nothing and is no attempt.
pub async fn run(
    req: &Request<'_>,
    target: Target,
    key: &TargetKey,
    role: AttemptRole,
    timeout: Duration,
) -> Result<Success, Failure> {
    let label = key.label();
    let format = req.format();
    let state = req.state;
    let credential = target.credential.id;
    let mut plan = plan(format, &target, req.body)
        .map_err(|e| Failure::new(FailureKind::Unsupported, translate_error(format, e), label))?;
    if plan.family == WireFamily::Anthropic {
        plan.extra_headers
            .extend(req.beta.map(|b| ("anthropic-beta", b.to_owned())));
    }
    let mut meter = match req.caller {
        Some(caller) => Meter::start(
            &state.usage,
            caller,
            format,
            req.request_id,
            req.requested,
            &target,
        ),
        None => Meter::start_for_org(
            &state.usage,
            req.org,
            format,
            req.request_id,
            req.requested,
            &target,
        ),
    };
    if let Some((name, baseline)) = &req.route {
        meter.route(name, baseline.clone());
    }
    meter.estimate_input(req.needs.input_tokens);
    let started = Instant::now();
    let mut deadline = Deadline::at(tokio::time::Instant::now() + timeout);
    let timed_out = || {
        Failure::new(
            FailureKind::Timeout,
            timeout_error(format, &target, timeout),
            label,
        )
    };
    let result = async {
        let number = req.sent.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        meter.attempt(number, role);
        let url = providers::chat_url(
            target.provider,
            &target.base_url,
            &target.model,
            plan.stream,
        );
        let response = match deadline
            .run(send(&state.upstream, &target, &url, &plan, format))
            .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(err)) => {
                meter.finish(err.status().as_u16(), Some(FailureKind::Unreachable));
                return Err(Failure::new(FailureKind::Unreachable, err, label));
            }
            Err(_) => {
                meter.finish(504, Some(FailureKind::Timeout));
                return Err(timed_out());
            }
        };
        if !response.status().is_success() {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(parse_retry_after);
            let err = deadline
                .run(upstream_error(format, &target, response))
                .await
                .unwrap_or_else(|_| {
                    GatewayError::new(
                        format,
                        ErrorKind::Timeout,
                        format!("{} did not finish its error answer", target.provider),
                    )
                });
            meter.finish(err.status().as_u16(), Some(FailureKind::UpstreamError));
            let overloaded = err.message().to_ascii_lowercase().contains("overloaded");
            let mut f = Failure::new(FailureKind::UpstreamError, err, label);
            f.overloaded = overloaded;
            f.retry_after = retry_after;
            return Err(f);
        }
        meter.accepted();
        if plan.stream {
            let mut relay = Relay::new(
                Box::pin(crate::upstream::client::body_stream(response)),
                plan.family,
                plan.mode,
                format,
                &target.model,
                plan.client_wants_stream_usage,
                meter,
            )
            .with_idle_limit(state.settings.stream_idle_timeout);
            let first_token = crate::metering::overhead::waiting(relay.prefetch());
            return match deadline.run(first_token).await {
                Ok(Ok(prefix)) => Ok(Answer::Stream {
                    prefix,
                    relay: Box::new(relay),
                }),
                Ok(Err(early)) => {
                    let err = GatewayError::with_status(
                        format,
                        StatusCode::BAD_GATEWAY,
                        format!("{}: {}", target.provider, early.message),
                    );
                    Err(Failure::new(FailureKind::StreamFailedEarly, err, label))
                }
                Err(_) => {
                    relay.abort(504, FailureKind::Timeout);
                    Err(timed_out())
                }
            };
        }
        let bytes = match deadline.run(read_limited(response)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                meter.finish(502, Some(FailureKind::UpstreamBody));
                let err = GatewayError::with_status(
                    format,
                    StatusCode::BAD_GATEWAY,
                    format!("{}: {e}", target.provider),
                );
                return Err(Failure::new(FailureKind::UpstreamBody, err, label));
            }
            Err(_) => {
                meter.finish(504, Some(FailureKind::Timeout));
                return Err(timed_out());
            }
        };
        match answer(format, &plan, &target, &bytes) {
            Ok((body, usage)) => {
                meter.usage(usage);
                let cost = meter.cost();
                meter.finish(200, None);
                Ok(Answer::Complete { body, cost, format })
            }
            Err(message) => {
                meter.finish(502, Some(FailureKind::UpstreamMalformed));
                let err = GatewayError::with_status(
                    format,
                    StatusCode::BAD_GATEWAY,
                    format!("{}: {message}", target.provider),
                );
                Err(Failure::new(FailureKind::UpstreamMalformed, err, label))
            }
        }
    }
    .await;
    match result {
        Ok(answer) => {
            state
                .health
                .record(key, credential, Outcome::Success(started.elapsed()));
            Ok(Success { answer, target })
        }
        Err(f) => {
            if let Some(outcome) = f.teaches_health(started.elapsed()) {
                state.health.record(key, credential, outcome);
            }
            Err(f)
        }
    }
}

/// A request the target's API cannot express: the caller's 400 if no other target can.
fn translate_error(format: ApiFormat, e: TranslateError) -> GatewayError {
    GatewayError::new(format, ErrorKind::InvalidRequest, e.to_string())
}

/// The text of a complete answer in the caller's format (for choosing the best race answer).
fn answer_text(format: ApiFormat, body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    match format {
        ApiFormat::OpenAi => value["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        ApiFormat::Anthropic => value["content"]
            .as_array()
            .map(|blocks| {
                blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_text_in_both_shapes() {
        let openai = br#"{"choices":[{"message":{"content":"hi"}}]}"#;
        assert_eq!(answer_text(ApiFormat::OpenAi, openai), "hi");
        let anthropic = br#"{"content":[{"type":"text","text":"a"},{"type":"tool_use"},{"type":"text","text":"b"}]}"#;
        assert_eq!(answer_text(ApiFormat::Anthropic, anthropic), "ab");
    }
}
