//! The pipeline's last stage, "respond": the answer's head. Content type, cost, who served it
//! and the attempt trace as `x-flo2-*` headers, and a complete answer replayed as the caller's
//! SSE stream when a `best` race had to ask without streaming.

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::Response;
use flo2_llm::stream::encode::{self, AnthropicEncoder, OpenAiEncoder};
use flo2_llm::translate::{anthropic, openai};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiFormat;
use crate::serve::trace::Trace;
use crate::state::target::Target;

/// Headers an answer carries (content type, cost, provider, model, attempts, route, target,
/// credential, request id), reserved at once rather than grown twice.
pub(crate) const ANSWER_HEADERS: usize = 12;

/// An SSE response.
pub(crate) fn event_stream(body: Body) -> Response {
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

/// A complete answer in the caller's format, as that format's SSE stream, with its cost in the
/// final usage.
pub(crate) fn replay_as_stream(
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

/// `x-flo2-route`, `x-flo2-target`, `x-flo2-credential`, `x-flo2-attempts` and, when some
/// failed, `x-flo2-attempt-errors` (one `provider/model: why` per failure, `; `-separated).
pub(crate) fn add_trace_headers(
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
        let id = uuid_value(&t.credential.id.as_uuid());
        headers.push((names::CREDENTIAL, id));
    }
    if !trace.is_clean() {
        let joined: String = trace
            .joined()
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

/// The names of the headers flo2 adds to answers, as constants: a `&str` name is parsed and
/// validated again on every insert.
pub(crate) mod names {
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
pub(crate) fn add_headers(
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
/// (a UUID took four allocations: [`uuid_value`]), and every answer carries
/// several of these.
pub(crate) fn header_text(args: std::fmt::Arguments<'_>) -> Option<HeaderValue> {
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

/// A UUID as a header value, written on the stack and copied once into the value (through a
/// `String`, its 36 characters took four allocations).
pub(crate) fn uuid_value(id: &Uuid) -> Option<HeaderValue> {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut text)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
