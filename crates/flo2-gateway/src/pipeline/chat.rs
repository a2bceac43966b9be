//! `POST /v1/chat/completions` and `POST /v1/messages`: authenticate, resolve the model, plan
//! the upstream request, call it, and answer in the caller's format, metering the call.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use flo2_llm::common::{TranslateError, UsageReport};
use flo2_llm::providers::{self, WireFamily};
use flo2_llm::reported_usage::ReportedUsage;
use flo2_llm::stream::encode::{self, AnthropicEncoder, OpenAiEncoder};
use flo2_llm::translate::{anthropic, gemini, openai};
use futures_util::{FutureExt as _, StreamExt};
use serde::Deserialize as _;
use serde_json::Value;

use crate::admission::{Admitted, Permit};
use crate::attempt::{Answer, Request};
use crate::auth::Caller;
use crate::caller_body::{read_capped, CallerBody, Capped};
use crate::dispatch::{self, Policy, Trace};
use crate::error::{ApiFormat, ErrorKind, GatewayError};
use crate::exact_json;
use crate::needs::Needs;
use crate::plan::CallerJson;
use crate::plan::{Mode, Plan};
use crate::request_id::RequestId;
use crate::resolve::{resolve, ResolveError, Target};
use crate::routing::{self, Candidate};
use crate::upstream::{UpstreamError, UpstreamResponse};
use crate::GatewayState;
use flo2_core::route::{FallbackSettings, RaceMode};
use flo2_core::Strategy;

/// Largest upstream JSON answer read into memory (streams are never read whole).
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;
/// Statuses passed on as they are; anything else becomes 502.
const FAITHFUL: &[u16] = &[
    400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 529,
];

/// Headers an answer carries (content type, cost, provider, model, attempts, route, target,
/// credential, request id), reserved at once rather than grown twice.
const ANSWER_HEADERS: usize = 12;

/// OpenAI Chat Completions.
pub async fn chat_completions(
    state: State<GatewayState>,
    Admitted(caller, permit): Admitted,
    id: Extension<RequestId>,
    CallerBody(body): CallerBody,
) -> Response {
    let handling = handle_measured(&state.0, caller, ApiFormat::OpenAi, id.0, None, body);
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
    let handling = handle_measured(&state.0, caller, ApiFormat::Anthropic, id.0, beta, body);
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

/// [`handle`], recording flo2's own share of the request's time ([`crate::overhead`]). A
/// combinator rather than an `async fn` awaiting `handle`, so that the (large) handling future
/// is held once, not twice.
fn handle_measured<'a>(
    state: &'a GatewayState,
    caller: Caller,
    format: ApiFormat,
    id: RequestId,
    beta: Option<String>,
    body: Bytes,
) -> impl std::future::Future<Output = Response> + 'a {
    let handling = handle(state, caller, format, id, beta, body);
    crate::overhead::measured(handling).map(move |(result, waited)| {
        state
            .overhead
            .record(id.arrived.elapsed().saturating_sub(waited));
        result.unwrap_or_else(IntoResponse::into_response)
    })
}

pub(crate) fn parse_body(format: ApiFormat, body: &[u8]) -> Result<Value, GatewayError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::new(
            format,
            ErrorKind::InvalidRequest,
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(GatewayError::new(
            format,
            ErrorKind::InvalidRequest,
            "the request body must be a JSON object",
        ));
    }
    Ok(value)
}

pub(crate) fn translate_error(format: ApiFormat, e: TranslateError) -> GatewayError {
    GatewayError::new(format, ErrorKind::InvalidRequest, e.to_string())
}

async fn handle(
    state: &GatewayState,
    caller: Caller,
    format: ApiFormat,
    request_id: RequestId,
    beta: Option<String>,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let caller = Caller { format, ..caller };
    let mut value = parse_body(format, &body)?;
    let requested = value
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let config = org_config(state, &caller).await?;
    let needs = Needs::of(&value);
    let now = chrono::Utc::now();
    // A `best` race must see every complete answer before it chooses, so its participants are
    // asked without streaming and a streaming caller gets the chosen answer replayed as a stream.
    let mut replay_stream = None;
    let (candidates, policy, route) = match config.routes.get(&requested) {
        Some(route) => {
            if route.strategy == Strategy::Race && route.race.mode == RaceMode::Best && needs.stream
            {
                replay_stream = Some(wants_stream_usage(&value));
                unstream(&mut value);
            }
            let candidates = routing::select(
                caller.key.org,
                &requested,
                route,
                &config,
                &needs,
                &state.health,
                now,
            )
            .map_err(|e| GatewayError::new(format, ErrorKind::InvalidRequest, e.to_string()))?;
            let baseline = route
                .baseline_model()
                .and_then(|(provider, model)| config.price_at(provider, &model, now));
            let policy = Policy {
                fallback: route.fallback.clone(),
                race: (route.strategy == Strategy::Race).then(|| route.race.clone()),
                breakers: true,
            };
            (candidates, policy, Some((requested.as_str(), baseline)))
        }
        None => {
            let target = resolve(&config, &requested).map_err(|e| resolve_error(format, &e))?;
            (
                vec![Candidate::direct(caller.key.org, &config, &target)],
                direct_policy(state),
                None,
            )
        }
    };
    // Numbers a `Value` cannot hold (`-0`, integers beyond 64 bits) are forwarded as written.
    // A `best` race asks its racers without streaming, which only the `Value` says, so such a
    // request is written from the `Value`.
    let exact = replay_stream
        .is_none()
        .then(|| exact_json::if_needed(&value, &body))
        .flatten();
    let req = Request {
        state,
        caller: Some(&caller),
        org: caller.key.org,
        format,
        request_id: request_id.id,
        requested: &requested,
        route,
        body: CallerJson {
            value: &value,
            exact: exact.as_ref(),
            len: body.len(),
        },
        beta: beta.as_deref(),
        needs,
        sent: std::sync::atomic::AtomicU32::new(0),
    };
    let (success, trace) = match dispatch::serve(&req, candidates, &policy).await {
        Ok(served) => served,
        Err((err, trace)) => {
            let mut resp = err.into_response();
            add_trace_headers(&mut resp, route_name(&req), None, &trace);
            return Ok(resp);
        }
    };
    let target = success.target;
    let mut resp = match success.answer {
        Answer::Complete { body, cost, .. } if replay_stream.is_some() => {
            let include_usage = replay_stream.unwrap_or(false);
            let sse = replay_as_stream(format, &body, &target.model, include_usage, cost)
                .map_err(|e| GatewayError::with_status(format, StatusCode::BAD_GATEWAY, e))?;
            event_stream(Body::from(sse))
        }
        Answer::Complete { body, cost, .. } => {
            let mut resp = Response::new(Body::from(body));
            resp.headers_mut().reserve(ANSWER_HEADERS);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            // Exact USD (12 decimal places) at the organization's price for this model.
            add_headers(
                &mut resp,
                [(names::COST, header_text(format_args!("{cost}")))],
            );
            resp
        }
        Answer::Stream { prefix, relay } => {
            let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(prefix) })
                .chain(relay.into_stream());
            event_stream(Body::from_stream(body))
        }
    };
    add_headers(
        &mut resp,
        [
            (
                names::PROVIDER,
                Some(HeaderValue::from_static(target.provider.as_str())),
            ),
            (names::MODEL, HeaderValue::from_str(&target.model).ok()),
        ],
    );
    add_trace_headers(&mut resp, route_name(&req), Some(&target), &trace);
    Ok(resp)
}

/// An SSE response.
fn event_stream(body: Body) -> Response {
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.reserve(ANSWER_HEADERS);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

fn wants_stream_usage(body: &Value) -> bool {
    body.get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Turns a streaming request into a non-streaming one.
fn unstream(body: &mut Value) {
    if let Some(map) = body.as_object_mut() {
        map.insert("stream".into(), Value::Bool(false));
        map.remove("stream_options");
    }
}

/// A complete answer in the caller's format, as that format's SSE stream, with its cost in the
/// final usage.
fn replay_as_stream(
    format: ApiFormat,
    body: &[u8],
    model: &str,
    include_usage: bool,
    cost: flo2_core::PicoUsd,
) -> Result<String, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let response = match format {
        ApiFormat::OpenAi => openai::parse_response(&value),
        ApiFormat::Anthropic => anthropic::parse_response(&value),
    }
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    let events = encode::replay(&response);
    match format {
        ApiFormat::OpenAi => {
            let mut enc = OpenAiEncoder::new(model, chrono::Utc::now().timestamp(), include_usage);
            events.iter().for_each(|e| enc.event(e, &mut out));
            enc.set_cost_usd(cost.to_string());
            enc.finish(&mut out);
        }
        ApiFormat::Anthropic => {
            let mut enc = AnthropicEncoder::new(model);
            events.iter().for_each(|e| enc.event(e, &mut out));
            enc.set_cost_usd(cost.to_string());
            enc.finish(&mut out);
        }
    }
    Ok(out)
}

fn route_name<'a>(req: &Request<'a>) -> Option<&'a str> {
    req.route.as_ref().map(|(name, _)| *name)
}

/// A directly addressed model: one target (its provider's keys as a pool), no fallback.
fn direct_policy(state: &GatewayState) -> Policy {
    let limit =
        u64::try_from(state.settings.upstream.request_timeout.as_millis()).unwrap_or(u64::MAX);
    Policy {
        fallback: FallbackSettings {
            enabled: false,
            retries_per_target: 0,
            deadline_ms: limit,
            attempt_timeout_ms: limit,
        },
        race: None,
        breakers: false,
    }
}

/// `x-flo2-route`, `x-flo2-target`, `x-flo2-credential`, `x-flo2-attempts` and, when some
/// failed, `x-flo2-attempt-errors` (one `provider/model: why` per failure, `; `-separated).
fn add_trace_headers(
    resp: &mut Response,
    route: Option<&str>,
    target: Option<&Target>,
    trace: &Trace,
) {
    let mut headers = Vec::with_capacity(5);
    headers.push((names::ATTEMPTS, Some(HeaderValue::from(trace.attempts))));
    if let Some(route) = route {
        headers.push((names::ROUTE, HeaderValue::from_str(route).ok()));
    }
    if let Some(t) = target {
        let target = header_text(format_args!("{}/{}", t.provider, t.model));
        headers.push((names::TARGET, target));
        let id = crate::request_id::uuid_value(&t.credential.id.as_uuid());
        headers.push((names::CREDENTIAL, id));
    }
    if !trace.failures.is_empty() {
        let joined: String = trace
            .failures
            .join("; ")
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .take(2000)
            .collect();
        headers.push((names::ATTEMPT_ERRORS, HeaderValue::try_from(joined).ok()));
    }
    add_headers(resp, headers);
}

pub(crate) async fn org_config(
    state: &GatewayState,
    caller: &Caller,
) -> Result<std::sync::Arc<crate::org_cache::OrgConfig>, GatewayError> {
    state.orgs.get(caller.key.org).await.map_err(|err| {
        tracing::error!(error = %err, "loading organization configuration failed");
        GatewayError::new(
            caller.format,
            ErrorKind::Unavailable,
            "flo2 cannot load your configuration right now; retry shortly",
        )
    })
}

pub(crate) fn resolve_error(format: ApiFormat, e: &ResolveError) -> GatewayError {
    let kind = match e {
        ResolveError::Missing | ResolveError::BadModelId(_) => ErrorKind::InvalidRequest,
        ResolveError::NoKey(_) | ResolveError::Unknown(_) => ErrorKind::NotFound,
    };
    GatewayError::new(format, kind, e.to_string())
}

/// The names of the headers flo2 adds to answers, as constants: a `&str` name is parsed and
/// validated again on every insert.
mod names {
    use axum::http::HeaderName;

    pub const COST: HeaderName = HeaderName::from_static("x-flo2-cost-usd");
    pub const PROVIDER: HeaderName = HeaderName::from_static("x-flo2-provider");
    pub const MODEL: HeaderName = HeaderName::from_static("x-flo2-model");
    pub const ATTEMPTS: HeaderName = HeaderName::from_static("x-flo2-attempts");
    pub const ROUTE: HeaderName = HeaderName::from_static("x-flo2-route");
    pub const TARGET: HeaderName = HeaderName::from_static("x-flo2-target");
    pub const CREDENTIAL: HeaderName = HeaderName::from_static("x-flo2-credential");
    pub const ATTEMPT_ERRORS: HeaderName = HeaderName::from_static("x-flo2-attempt-errors");
}

/// Sets each header whose value is valid (`None` is a value that was not).
fn add_headers(
    resp: &mut Response,
    headers: impl IntoIterator<Item = (HeaderName, Option<HeaderValue>)>,
) {
    for (name, value) in headers {
        if let Some(v) = value {
            resp.headers_mut().insert(name, v);
        }
    }
}

/// A formatted header value, or `None` if the text is not a valid one. The text is written on
/// the stack and copied once into the value: formatting into a `String` reallocates as it grows
/// (a UUID took four allocations: [`crate::request_id::uuid_value`]), and every answer carries
/// several of these.
fn header_text(args: std::fmt::Arguments<'_>) -> Option<HeaderValue> {
    let mut text = StackText::default();
    if std::fmt::write(&mut text, args).is_ok() {
        return HeaderValue::from_bytes(text.as_bytes()).ok();
    }
    // Longer than the stack buffer (a very long model name): rare enough to allocate.
    HeaderValue::try_from(args.to_string()).ok()
}

/// Text of up to [`StackText::CAPACITY`] bytes, written in place.
struct StackText {
    bytes: [u8; StackText::CAPACITY],
    len: usize,
}

impl StackText {
    const CAPACITY: usize = 192;

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Default for StackText {
    fn default() -> Self {
        Self {
            bytes: [0; Self::CAPACITY],
            len: 0,
        }
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let room = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The one part of a passed-through answer that flo2 reads.
#[derive(serde::Deserialize)]
struct UsageOnly {
    #[serde(default)]
    usage: Option<ReportedUsage>,
}

/// The usage a passed-through answer reports, read without building a tree. An object the
/// typed reading refuses (a repeated field, a `usage` that is not an object) is read as a
/// `Value`, the last value winning, as before the typed reading; anything else is malformed.
fn passthrough_usage(family: WireFamily, bytes: &[u8]) -> Result<UsageReport, serde_json::Error> {
    let usage = match serde_json::from_slice::<UsageOnly>(bytes) {
        Ok(only) => only.usage,
        Err(refused) => match serde_json::from_slice::<Value>(bytes)? {
            Value::Object(answer) => answer
                .get("usage")
                .filter(|u| u.is_object())
                .map(|u| ReportedUsage::deserialize(u).unwrap_or_default()),
            _ => return Err(refused),
        },
    };
    // No `usage` at all is no report (the meter estimates); explicit zeros are counts.
    Ok(usage.map_or_else(UsageReport::default, |u| {
        UsageReport::from(match family {
            WireFamily::Anthropic => u.anthropic(),
            _ => u.openai(),
        })
    }))
}

/// The answer body for the caller and the usage it reports.
pub(crate) fn answer(
    format: ApiFormat,
    plan: &Plan,
    target: &Target,
    bytes: &Bytes,
) -> Result<(Bytes, UsageReport), String> {
    let malformed = |_| "the upstream answered with malformed JSON".to_owned();
    if plan.mode == Mode::Passthrough {
        // Forwarded as it came: only `usage` is built; the rest is checked and skipped.
        let usage = passthrough_usage(plan.family, bytes).map_err(malformed)?;
        return Ok((bytes.clone(), usage));
    }
    // Anthropic's answer is read straight from its text; an unusual one, and the other
    // families, through a tree.
    let typed = match plan.family {
        WireFamily::Anthropic => anthropic::read_response(bytes),
        _ => None,
    };
    let common = match typed {
        Some(common) => common,
        None => {
            let value: Value = serde_json::from_slice(bytes).map_err(malformed)?;
            match plan.family {
                WireFamily::OpenAi => openai::parse_response(&value),
                WireFamily::Anthropic => anthropic::parse_response(&value),
                WireFamily::Gemini => gemini::parse_response(&value, &target.model),
            }
            .map_err(|e| e.to_string())?
        }
    };
    let out = match format {
        ApiFormat::OpenAi => serde_json::to_vec(&openai::write_response(
            &common,
            chrono::Utc::now().timestamp(),
        )),
        ApiFormat::Anthropic => serde_json::to_vec(&anthropic::write_response(&common)),
    }
    .map_err(|e| format!("cannot encode the answer: {e}"))?;
    let report = UsageReport {
        usage: common.usage,
        input_reported: common.usage_reported,
        output_reported: common.usage_reported,
    };
    Ok((Bytes::from(out), report))
}

/// Sends the planned request to `url` with the target's key.
pub(crate) async fn send(
    state: &GatewayState,
    target: &Target,
    url: &str,
    plan: &Plan,
    format: ApiFormat,
) -> Result<UpstreamResponse, GatewayError> {
    let auth = providers::auth_headers(target.provider, target.credential.secret.expose());
    let headers = auth
        .iter()
        .chain(plan.extra_headers.iter())
        .map(|(name, value)| (*name, value.as_str()));
    state
        .upstream
        .post_json(url, headers, plan.body.clone())
        .await
        .map_err(|e| match e {
            UpstreamError::ConnectTimeout => GatewayError::new(
                format,
                ErrorKind::Timeout,
                format!("{} did not answer in time", target.provider),
            ),
            UpstreamError::Connect => {
                tracing::warn!(provider = %target.provider, "upstream unreachable");
                unreachable(format, target, &e.to_string())
            }
            _ => unreachable(format, target, &e.to_string()),
        })
}

fn unreachable(format: ApiFormat, target: &Target, why: &str) -> GatewayError {
    GatewayError::with_status(
        format,
        StatusCode::BAD_GATEWAY,
        format!("{}: {why}", target.provider),
    )
}

/// Reads a whole answer body, refusing one larger than [`MAX_UPSTREAM_BODY`].
pub(crate) async fn read_limited(response: UpstreamResponse) -> Result<Bytes, String> {
    collect_limited(response, MAX_UPSTREAM_BODY).await
}

/// Reads a whole body of at most `limit` bytes ([`read_capped`]), its time counted as waiting
/// on the upstream.
async fn collect_limited<B>(response: http::Response<B>, limit: usize) -> Result<Bytes, String>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = response.into_parts();
    match crate::overhead::waiting(read_capped(&parts.headers, body, limit)).await {
        Ok(bytes) => Ok(bytes),
        Err(Capped::TooLarge) => Err("the upstream answer is too large".to_owned()),
        Err(Capped::Broken | Capped::Stalled) => Err("the upstream connection broke".to_owned()),
    }
}

/// The caller's error when `target` did not answer within `limit`.
pub(crate) fn timeout_error(format: ApiFormat, target: &Target, limit: Duration) -> GatewayError {
    GatewayError::new(
        format,
        ErrorKind::Timeout,
        format!(
            "{} did not answer within {} ms",
            target.provider,
            limit.as_millis()
        ),
    )
}

/// An upstream error answer, passed on in the caller's shape with a faithful status, the
/// upstream's message and its `retry-after`; never the tenant's key.
pub(crate) async fn upstream_error(
    format: ApiFormat,
    target: &Target,
    response: UpstreamResponse,
) -> GatewayError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
    let bytes = read_limited(response).await.unwrap_or_default();
    let upstream_message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("error")
                .and_then(|e| e.get("message").and_then(Value::as_str).map(str::to_owned))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned());
    if (300..400).contains(&status) {
        return GatewayError::with_status(
            format,
            StatusCode::BAD_GATEWAY,
            format!(
                "{} answered with a redirect ({status}); flo2 does not follow upstream redirects",
                target.provider
            ),
        );
    }
    let message = match status {
        // Providers quote (part of) the rejected key in these; say what happened instead.
        401 | 403 => format!(
            "{} rejected the {} key stored in flo2 ({status}); check it in your provider keys",
            target.provider, target.provider
        ),
        _ => format!(
            "{} answered {status}: {}",
            target.provider,
            redact(&upstream_message, target.credential.secret.expose())
        ),
    };
    let passed = if FAITHFUL.contains(&status) {
        status
    } else if status < 500 {
        400
    } else {
        502
    };
    let status = StatusCode::from_u16(passed).unwrap_or(StatusCode::BAD_GATEWAY);
    GatewayError::with_status(format, status, message).retry_after(retry_after)
}

fn redact(message: &str, key: &str) -> String {
    if key.len() >= 8 {
        message.replace(key, "*****")
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body_util::StreamBody;

    type Chunk = Result<hyper::body::Frame<Bytes>, std::io::Error>;

    #[test]
    fn header_text_formats_short_and_long_values_and_refuses_invalid_ones() {
        let cost = flo2_core::PicoUsd(1_500_000);
        let short = header_text(format_args!("{cost}")).unwrap();
        assert_eq!(short, "0.000001500000");
        let model = "m".repeat(StackText::CAPACITY + 10);
        let long = header_text(format_args!("openai/{model}")).unwrap();
        assert_eq!(long.as_bytes().len(), "openai/".len() + model.len());
        assert!(header_text(format_args!("a\nb")).is_none());
    }

    #[test]
    fn passed_through_usage_reads_odd_answers_as_the_tree_reading_did() {
        let read = |text: &str| passthrough_usage(WireFamily::OpenAi, text.as_bytes());
        let usage = read(r#"{"id":"x","usage":{"prompt_tokens":9,"completion_tokens":2}}"#)
            .unwrap()
            .usage;
        assert_eq!((usage.input, usage.output), (9, 2));
        // A repeated field: the last wins, as in a tree.
        let usage = read(r#"{"usage":{"prompt_tokens":1,"prompt_tokens":4}}"#).unwrap();
        assert_eq!(usage.usage.input, 4);
        // Explicit zeros are a report of zero, not a missing report.
        let zero = read(r#"{"usage":{"prompt_tokens":0,"completion_tokens":0}}"#).unwrap();
        assert!(zero.input_reported && zero.output_reported);
        assert_eq!(zero.usage, flo2_llm::common::Usage::default());
        // A `usage` of another kind reports nothing; so does none at all.
        for text in [r#"{"usage":"lots"}"#, r#"{"usage":null}"#, "{}", "[]"] {
            assert_eq!(read(text).unwrap(), UsageReport::default(), "{text}");
        }
        for text in ["not json", "5", r#""usage""#, "[1]"] {
            assert!(read(text).is_err(), "{text}");
        }
        let usage = passthrough_usage(
            WireFamily::Anthropic,
            br#"{"usage":{"input_tokens":3,"output_tokens":5,"cache_read_input_tokens":7}}"#,
        )
        .unwrap()
        .usage;
        assert_eq!((usage.input, usage.output, usage.cached_input), (3, 5, 7));
    }

    fn response(
        chunks: Vec<Chunk>,
    ) -> http::Response<StreamBody<stream::Iter<std::vec::IntoIter<Chunk>>>> {
        http::Response::new(StreamBody::new(stream::iter(chunks)))
    }

    fn data(text: &'static str) -> Chunk {
        Ok(hyper::body::Frame::data(Bytes::from_static(
            text.as_bytes(),
        )))
    }

    #[tokio::test]
    async fn bodies_are_read_whole_within_the_limit() {
        let one = Bytes::from_static(b"{\"ok\":true}");
        let got = collect_limited(
            response(vec![Ok(hyper::body::Frame::data(one.clone()))]),
            64,
        )
        .await
        .unwrap();
        assert_eq!(got, one);
        assert_eq!(
            got.as_ptr(),
            one.as_ptr(),
            "a single chunk is passed on, not copied"
        );
        let got = collect_limited(response(vec![data("ab"), data("cd")]), 4)
            .await
            .unwrap();
        assert_eq!(&got[..], b"abcd", "exactly the limit is allowed");
    }

    #[tokio::test]
    async fn oversized_and_broken_bodies_are_refused() {
        let err = collect_limited(response(vec![data("ab"), data("cde")]), 4)
            .await
            .unwrap_err();
        assert_eq!(err, "the upstream answer is too large");
        let mut declared = response(vec![data("a")]);
        declared
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        let err = collect_limited(declared, 4).await.unwrap_err();
        assert_eq!(
            err, "the upstream answer is too large",
            "refused before reading"
        );
        let broken = vec![data("ab"), Err(std::io::Error::other("reset"))];
        let err = collect_limited(response(broken), 64).await.unwrap_err();
        assert_eq!(err, "the upstream connection broke");
    }
}
