//! The chat pipeline: what `POST /v1/chat/completions` and `POST /v1/messages` do with an
//! admitted request, one stage after the other (see [`crate::pipeline`] for the order and where
//! new stages go). Every stage reads memory only; the first upstream byte is sent by dispatch.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flo2_core::route::{FallbackSettings, RaceMode};
use flo2_core::{ModelPrice, Strategy};
use futures_util::{FutureExt as _, StreamExt as _};
use serde_json::Value;

use crate::error::{ApiFormat, ErrorKind, GatewayError};
use crate::gateway::GatewayState;
use crate::pipeline::request::{org_config, parse_body, resolve_error, Inbound};
use crate::pipeline::respond::{
    add_headers, add_trace_headers, event_stream, header_text, names, replay_as_stream,
    ANSWER_HEADERS,
};
use crate::serve::attempt::{Answer, Request, Success};
use crate::serve::dispatch::{self, Policy};
use crate::serve::needs::Needs;
use crate::serve::resolve::resolve;
use crate::serve::routing::{self, Candidate};
use crate::serve::trace::Trace;
use crate::state::org_cache::OrgConfig;
use crate::upstream::exact_json;
use crate::upstream::plan::CallerJson;

/// [`handle`], recording flo2's own share of the request's time ([`crate::metering::overhead`]).
/// A combinator rather than an `async fn` awaiting `handle`, so that the (large) handling future
/// is held once, not twice.
pub(crate) fn handle_measured(
    state: &GatewayState,
    inbound: Inbound,
) -> impl std::future::Future<Output = Response> + '_ {
    let arrived = inbound.arrived;
    let handling = handle(state, inbound);
    crate::metering::overhead::measured(handling).map(move |(result, waited)| {
        state
            .overhead
            .record(arrived.elapsed().saturating_sub(waited));
        result.unwrap_or_else(IntoResponse::into_response)
    })
}

/// The stages, in order.
async fn handle(state: &GatewayState, inbound: Inbound) -> Result<Response, GatewayError> {
    let Inbound {
        caller,
        id,
        beta,
        body,
        ..
    } = inbound;
    let format = caller.format;
    // read
    let mut value = parse_body(format, &body)?;
    let requested = requested_model(&value);
    let needs = Needs::of(&value);
    // select
    let config = org_config(state, &caller).await?;
    let selected = select(state, &config, &caller, &requested, &needs, &mut value)?;
    // (Stages that decide whether and where to call, such as a cache lookup or an experiment's
    // assignment, go here: after select, before dispatch.)
    // dispatch
    // Numbers a `Value` cannot hold (`-0`, integers beyond 64 bits) are forwarded as written.
    // A `best` race asks its racers without streaming, which only the `Value` says, so such a
    // request is written from the `Value`.
    let exact = selected
        .replay_stream
        .is_none()
        .then(|| exact_json::if_needed(&value, &body))
        .flatten();
    let req = Request {
        state,
        caller: Some(&caller),
        org: caller.key.org,
        format,
        request_id: id,
        requested: &requested,
        route: selected.route,
        body: CallerJson {
            value: &value,
            exact: exact.as_ref(),
            len: body.len(),
        },
        beta: beta.as_deref(),
        needs,
        sent: AtomicU32::new(0),
    };
    let served = dispatch::serve(&req, selected.candidates, &selected.policy).await;
    // respond
    let route = req.route.as_ref().map(|(name, _)| *name);
    match served {
        Ok((success, trace)) => respond(format, success, &trace, route, selected.replay_stream),
        Err((err, trace)) => {
            let mut resp = err.into_response();
            add_trace_headers(&mut resp, route, None, &trace);
            Ok(resp)
        }
    }
}

/// The `model` the caller asked for: a model (`provider/model` or a bare name) or a route.
fn requested_model(body: &Value) -> String {
    body.get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// What the select stage decided: where the request may go, in order, and how to serve it.
struct Selected<'r> {
    /// The targets, in the order they are tried (or raced).
    candidates: Vec<Candidate>,
    /// Fallback, race and breaker settings.
    policy: Policy,
    /// The route's name and its baseline model's price, when a route was asked for.
    route: Option<(&'r str, Option<ModelPrice>)>,
    /// A `best` race asked without streaming for a streaming caller: the chosen answer is
    /// replayed as a stream (with usage in it when the caller asked for that).
    replay_stream: Option<bool>,
}

/// The select stage: a route's qualifying targets in its strategy's order, or the one target
/// of a directly addressed model with its provider's keys as a pool.
fn select<'r>(
    state: &GatewayState,
    config: &Arc<OrgConfig>,
    caller: &crate::caller::Caller,
    requested: &'r str,
    needs: &Needs,
    value: &mut Value,
) -> Result<Selected<'r>, GatewayError> {
    let format = caller.format;
    let Some(route) = config.routes.get(requested) else {
        let target = resolve(config, requested).map_err(|e| resolve_error(format, &e))?;
        return Ok(Selected {
            candidates: vec![Candidate::direct(caller.key.org, config, &target)],
            policy: direct_policy(state),
            route: None,
            replay_stream: None,
        });
    };
    let now = chrono::Utc::now();
    // A `best` race must see every complete answer before it chooses, so its participants are
    // asked without streaming and a streaming caller gets the chosen answer replayed as a stream.
    let mut replay_stream = None;
    if route.strategy == Strategy::Race && route.race.mode == RaceMode::Best && needs.stream {
        replay_stream = Some(wants_stream_usage(value));
        unstream(value);
    }
    let candidates = routing::select(
        caller.key.org,
        requested,
        route,
        config,
        needs,
        &state.health,
        now,
    )
    .map_err(|e| GatewayError::new(format, ErrorKind::InvalidRequest, e.to_string()))?;
    let baseline = route
        .baseline_model()
        .and_then(|(provider, model)| config.price_at(provider, &model, now));
    Ok(Selected {
        candidates,
        policy: Policy {
            fallback: route.fallback.clone(),
            race: (route.strategy == Strategy::Race).then(|| route.race.clone()),
            breakers: true,
        },
        route: Some((requested, baseline)),
        replay_stream,
    })
}

/// The respond stage for a served request: the answer in the caller's format with its cost,
/// who served it and the trace.
fn respond(
    format: ApiFormat,
    success: Success,
    trace: &Trace,
    route: Option<&str>,
    replay_stream: Option<bool>,
) -> Result<Response, GatewayError> {
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
    add_trace_headers(&mut resp, route, Some(&target), trace);
    Ok(resp)
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
