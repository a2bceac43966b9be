//! Turning an inbound request into the upstream request: same-format calls forward the body with
//! minimal rewriting; cross-format calls translate through the common model.

use flo2_core::ProviderKind;
use flo2_llm::common::TranslateError;
use flo2_llm::providers::{self, WireFamily};
use flo2_llm::translate::{anthropic, gemini, openai};
use serde_json::{json, Value};

use crate::error::ApiFormat;
use crate::resolve::Target;

/// Body fields that could steer the upstream or its credentials. They are never honoured, and
/// removed at any depth before a body is forwarded, in case an OpenAI-compatible proxy would.
const STEERING_FIELDS: &[&str] = &[
    "api_base",
    "base_url",
    "baseURL",
    "api_key",
    "apiKey",
    "api_type",
    "api_version",
    "extra_headers",
    "custom_llm_provider",
    "azure_ad_token",
    "organization",
];

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
    /// JSON body to send.
    pub body: Value,
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

fn strip_steering(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for field in STEERING_FIELDS {
                map.remove(*field);
            }
            for child in map.values_mut() {
                strip_steering(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_steering),
        _ => {}
    }
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

/// Builds the upstream request for `body` from a caller speaking `inbound`.
pub fn plan(inbound: ApiFormat, target: &Target, mut body: Value) -> Result<Plan, TranslateError> {
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
    if passthrough {
        strip_steering(&mut body);
        if let Some(map) = body.as_object_mut() {
            map.insert("model".into(), json!(target.model));
            if family == WireFamily::OpenAi {
                if target.provider != ProviderKind::OpenAi {
                    if let Some(v) = map.remove("max_completion_tokens") {
                        map.entry("max_tokens").or_insert(v);
                    }
                }
                if stream {
                    if providers::accepts_stream_options(target.provider) {
                        map.insert("stream_options".into(), json!({"include_usage": true}));
                    } else {
                        map.remove("stream_options");
                    }
                }
            }
        }
        return Ok(Plan {
            body,
            mode: Mode::Passthrough,
            family,
            stream,
            client_wants_stream_usage,
            extra_headers: Vec::new(),
        });
    }
    let mut common = match inbound {
        ApiFormat::OpenAi => {
            refuse_foreign(&body, openai::OPENAI_ONLY, target.provider)?;
            openai::parse_request(&body)?
        }
        ApiFormat::Anthropic => {
            refuse_foreign(&body, anthropic::ANTHROPIC_ONLY, target.provider)?;
            anthropic::parse_request(&body)?
        }
    };
    common.model = target.model.clone();
    let out = match family {
        WireFamily::OpenAi => openai::write_request(
            &common,
            providers::max_tokens_field(target.provider),
            providers::accepts_stream_options(target.provider),
        ),
        WireFamily::Anthropic => anthropic::write_request(&common)?,
        WireFamily::Gemini => gemini::write_request(&common)?,
    };
    Ok(Plan {
        body: out,
        mode: Mode::Translate,
        family,
        stream,
        client_wants_stream_usage,
        extra_headers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org_cache::CredentialEntry;
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
            body,
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Passthrough);
        assert_eq!(p.body["model"], "llama");
        assert_eq!(p.body["stream_options"]["include_usage"], true);
        assert!(!p.client_wants_stream_usage);
        assert_eq!(p.body["max_tokens"], 9);
        assert_eq!(
            p.body["seed"], 3,
            "unknown and provider-specific fields pass untouched"
        );
        assert_eq!(p.body["new_feature"], json!({"a": 1}));
        let text = p.body.to_string();
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
            body,
        )
        .err()
        .unwrap();
        assert_eq!(err.to_string(), "`n` is not supported by anthropic");
        let body = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "enabled"}});
        assert!(plan(
            ApiFormat::Anthropic,
            &target(ProviderKind::OpenAi, "gpt"),
            body
        )
        .is_err());
        let ok = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "stream": true});
        let p = plan(
            ApiFormat::Anthropic,
            &target(ProviderKind::OpenAi, "gpt-4o"),
            ok,
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Translate);
        assert_eq!(p.body["max_completion_tokens"], 5);
        assert_eq!(p.body["stream_options"]["include_usage"], true);
    }
}
