//! One exchange with a provider over the [`client`](crate::upstream::client): send the planned
//! request with the target's key, read its answer whole under a cap, turn an error answer into
//! the caller's error (faithful status, the upstream's message, never the tenant's key), and
//! bring a JSON answer into the caller's format with the usage it reports.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use flo2_llm::common::UsageReport;
use flo2_llm::providers::{self, WireFamily};
use flo2_llm::reported_usage::ReportedUsage;
use flo2_llm::translate::{anthropic, gemini, openai};
use serde::Deserialize as _;
use serde_json::Value;

use crate::body::capped::{read_capped, Capped};
use crate::error::{ApiFormat, ErrorKind, GatewayError};
use crate::state::target::Target;
use crate::upstream::client::{Upstream, UpstreamError, UpstreamResponse};
use crate::upstream::plan::{Mode, Plan};

/// Largest upstream JSON answer read into memory (streams are never read whole).
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;
/// Statuses passed on as they are; anything else becomes 502.
const FAITHFUL: &[u16] = &[
    400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 529,
];

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
    upstream: &Upstream,
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
    upstream
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
    match crate::metering::overhead::waiting(read_capped(&parts.headers, body, limit)).await {
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
    use axum::http::{header, HeaderValue};
    use futures_util::stream;
    use http_body_util::StreamBody;

    type Chunk = Result<hyper::body::Frame<Bytes>, std::io::Error>;

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
