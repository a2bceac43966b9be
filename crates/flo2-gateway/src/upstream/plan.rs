//! Turning an inbound request into the upstream request: same-format calls forward the body with
//! minimal rewriting; cross-format calls translate through the common model.

use axum::body::Bytes;
use flo2_core::ProviderKind;
use flo2_llm::common::{InvalidRequest, TranslateError};
use flo2_llm::providers::{self, WireFamily};
use flo2_llm::translate::{anthropic, gemini, openai};
use serde_json::{json, Value};

use crate::error::ApiFormat;
use crate::state::target::Target;
use crate::upstream::exact_json::Exact;
use crate::upstream::passthrough_body::{encode, Forwarded, StreamOptions};

/// How the upstream answer is relayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Same format: the answer is forwarded as is, parsed only for metering.
    Passthrough,
    /// Different format: the answer is translated through the common model.
    Translate,
}

/// The upstream request.
pub struct Plan {
    /// JSON body to send, serialized.
    pub body: Bytes,
    /// How to relay the answer.
    pub mode: Mode,
    /// The upstream's wire family.
    pub family: WireFamily,
    /// Whether a stream was asked for.
    pub stream: bool,
    /// The caller asked OpenAI for usage in the stream (`stream_options.include_usage`).
    pub client_wants_stream_usage: bool,
    /// Headers to send besides the provider's auth headers.
    pub extra_headers: Vec<(&'static str, String)>,
}

fn refuse_foreign(
    body: &Value,
    fields: &[&str],
    target: ProviderKind,
) -> Result<(), TranslateError> {
    match fields.iter().find(|f| {
        body.get(**f)
            .is_some_and(|v| !v.is_null() && v != &json!(false))
    }) {
        Some(f) => Err(TranslateError::Unsupported(flo2_llm::common::Unsupported {
            feature: format!("`{f}`"),
            target: target.to_string(),
        })),
        None => Ok(()),
    }
}

/// The caller's body: parsed, and as written when its numbers need that.
#[derive(Clone, Copy)]
pub struct CallerJson<'a> {
    /// The parsed body.
    pub value: &'a Value,
    /// The body with every number as the caller wrote it, when `value` could not keep one
    /// ([`crate::upstream::exact_json`]); same-format calls are written from it.
    pub(crate) exact: Option<&'a Exact<'a>>,
    /// The body's length in bytes (the size an upstream body is written into).
    pub len: usize,
}

impl<'a> CallerJson<'a> {
    /// A body whose `Value` is exact (flo2's own calls, tests).
    pub fn parsed(value: &'a Value, len: usize) -> Self {
        Self {
            value,
            exact: None,
            len,
        }
    }
}

/// Builds the upstream request for the caller's `json` from a caller speaking `inbound`.
pub fn plan(
    inbound: ApiFormat,
    target: &Target,
    json: CallerJson<'_>,
) -> Result<Plan, TranslateError> {
    let (body, size_hint) = (json.value, json.len);
    let family = providers::family(target.provider);
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let client_wants_stream_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let passthrough = matches!(
        (inbound, family),
        (ApiFormat::OpenAi, WireFamily::OpenAi) | (ApiFormat::Anthropic, WireFamily::Anthropic)
    );
    if let (true, Some(map)) = (passthrough, body.as_object()) {
        let openai_family = family == WireFamily::OpenAi;
        let stream_options = match (
            openai_family && stream,
            providers::accepts_stream_options(target.provider),
        ) {
            (false, _) => StreamOptions::Keep,
            (true, true) => StreamOptions::IncludeUsage,
            (true, false) => StreamOptions::Drop,
        };
        let forwarded = Forwarded {
            body: map,
            model: &target.model,
            max_tokens_for_max_completion: openai_family && target.provider != ProviderKind::OpenAi,
            stream_options,
        };
        return Ok(Plan {
            body: Bytes::from(
                forwarded
                    .encode(json.exact, size_hint)
                    .map_err(encode_error)?,
            ),
            mode: Mode::Passthrough,
            family,
            stream,
            client_wants_stream_usage,
            extra_headers: Vec::new(),
        });
    }
    let mut common = match inbound {
        ApiFormat::OpenAi => {
            refuse_foreign(body, openai::OPENAI_ONLY, target.provider)?;
            openai::parse_request(body)?
        }
        ApiFormat::Anthropic => {
            refuse_foreign(body, anthropic::ANTHROPIC_ONLY, target.provider)?;
            anthropic::parse_request(body)?
        }
    };
    common.model = target.model.clone();
    let out = match family {
        WireFamily::OpenAi => encode(
            &openai::write_request(
                &common,
                providers::max_tokens_field(target.provider),
                providers::accepts_stream_options(target.provider),
            ),
            size_hint,
        ),
        WireFamily::Anthropic => encode(&anthropic::write_request(&common)?, size_hint),
        WireFamily::Gemini => encode(&gemini::write_request(&common)?, size_hint),
    };
    Ok(Plan {
        body: Bytes::from(out.map_err(encode_error)?),
        mode: Mode::Translate,
        family,
        stream,
        client_wants_stream_usage,
        extra_headers: Vec::new(),
    })
}

/// serde_json cannot fail to write these bodies (every map key is a string); kept as an error,
/// not a panic.
fn encode_error(e: serde_json::Error) -> TranslateError {
    TranslateError::Invalid(InvalidRequest(format!(
        "cannot encode the upstream request: {e}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::org_cache::CredentialEntry;
    use flo2_core::{CredentialId, Secret};

    fn target(provider: ProviderKind, model: &str) -> Target {
        Target {
            provider,
            model: model.into(),
            credential: std::sync::Arc::new(CredentialEntry {
                id: CredentialId::new(),
                provider,
                name: "k".into(),
                base_url: None,
                secret: Secret::new("k".into()),
            }),
            base_url: "http://x".into(),
            price: None,
        }
    }

    #[test]
    fn passthrough_rewrites_only_what_it_must_and_strips_steering_fields() {
        let body = json!({"model": "groq/llama", "messages": [{"role": "user", "content": "hi", "api_key": "x"}],
            "stream": true, "api_base": "http://evil", "extra_body": {"base_url": "http://evil"}, "max_completion_tokens": 9, "seed": 3, "new_feature": {"a": 1}});
        let p = plan(
            ApiFormat::OpenAi,
            &target(ProviderKind::Groq, "llama"),
            CallerJson::parsed(&body, 0),
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Passthrough);
        let sent: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(sent["model"], "llama");
        assert_eq!(sent["stream_options"]["include_usage"], true);
        assert!(!p.client_wants_stream_usage);
        assert_eq!(sent["max_tokens"], 9);
        assert!(sent.get("max_completion_tokens").is_none());
        assert_eq!(
            sent["seed"], 3,
            "unknown and provider-specific fields pass untouched"
        );
        assert_eq!(sent["new_feature"], json!({"a": 1}));
        let text = sent.to_string();
        assert!(
            !text.contains("evil") && !text.contains("api_key"),
            "{text}"
        );
    }

    #[test]
    fn cross_format_refuses_what_the_target_cannot_express() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2});
        let err = plan(
            ApiFormat::OpenAi,
            &target(ProviderKind::Anthropic, "claude"),
            CallerJson::parsed(&body, 0),
        )
        .err()
        .unwrap();
        assert_eq!(err.to_string(), "`n` is not supported by anthropic");
        let body = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "enabled"}});
        assert!(plan(
            ApiFormat::Anthropic,
            &target(ProviderKind::OpenAi, "gpt"),
            CallerJson::parsed(&body, 0)
        )
        .is_err());
        let ok = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "stream": true});
        let p = plan(
            ApiFormat::Anthropic,
            &target(ProviderKind::OpenAi, "gpt-4o"),
            CallerJson::parsed(&ok, 0),
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Translate);
        let sent: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(sent["max_completion_tokens"], 5);
        assert_eq!(sent["stream_options"]["include_usage"], true);
    }
}
