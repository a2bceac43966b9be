//! Anthropic Messages ⇄ the common model.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{arguments_value, f64_field, present, str_at, string_list, u64_at};
use crate::common::{
    invalid, unsupported, ChatRequest, ChatResponse, FinishReason, Image, Message, Part, Role,
    ToolCall, ToolChoice, ToolDef, ToolResult, TranslateError, Usage,
};

/// Anthropic request fields that no other format can express.
pub const ANTHROPIC_ONLY: &[&str] = &["thinking", "top_k", "container", "mcp_servers"];

/// `max_tokens` sent to Anthropic when the caller's format does not require one. Anthropic
/// requires the field; 4096 fits every current model's output limit.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The `anthropic-version` flo2 speaks upstream.
pub const API_VERSION: &str = "2023-06-01";

/// Parses an Anthropic messages request.
pub fn parse_request(body: &Value) -> Result<ChatRequest, TranslateError> {
    let model = str_at(body, "model")
        .ok_or_else(|| invalid("model: Field required"))?
        .to_owned();
    let raw = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages: Field required"))?;
    let max_tokens =
        u64_at(body, "max_tokens").ok_or_else(|| invalid("max_tokens: Field required"))?;
    let mut req = ChatRequest {
        model,
        max_tokens: Some(max_tokens),
        temperature: f64_field(body, "temperature")?,
        top_p: f64_field(body, "top_p")?,
        stop: string_list(body.get("stop_sequences"), "stop_sequences")?,
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        user: body
            .get("metadata")
            .and_then(|m| str_at(m, "user_id"))
            .map(str::to_owned),
        ..ChatRequest::default()
    };
    match present(body, "system") {
        None => {}
        Some(Value::String(s)) => req.system.push(s.clone()),
        Some(Value::Array(blocks)) => {
            for b in blocks {
                req.system.push(
                    str_at(b, "text")
                        .ok_or_else(|| invalid("system: blocks must be text"))?
                        .to_owned(),
                );
            }
        }
        Some(_) => return Err(invalid("system: must be a string or a list of text blocks")),
    }
    for (i, m) in raw.iter().enumerate() {
        let role = match str_at(m, "role") {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            _ => {
                return Err(invalid(format!(
                    "messages.{i}.role: must be user or assistant"
                )))
            }
        };
        let parts = match m.get("content") {
            Some(Value::String(s)) => vec![Part::Text(s.clone())],
            Some(Value::Array(blocks)) => blocks
                .iter()
                .map(|b| block(b, i))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect(),
            _ => return Err(invalid(format!("messages.{i}.content: Field required"))),
        };
        req.messages.push(Message { role, parts });
    }
    for t in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // Server tools (web search, code execution) have a `type` other than "custom".
        if let Some(kind) = str_at(t, "type").filter(|k| *k != "custom") {
            return Err(unsupported(
                format!("the server tool {kind:?}"),
                "this provider",
            ));
        }
        req.tools.push(ToolDef {
            name: str_at(t, "name")
                .ok_or_else(|| invalid("tools.name: Field required"))?
                .to_owned(),
            description: str_at(t, "description").map(str::to_owned),
            parameters: t
                .get("input_schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"})),
        });
    }
    req.tool_choice = match present(body, "tool_choice") {
        None => None,
        Some(c) => Some(match str_at(c, "type") {
            Some("auto") => ToolChoice::Auto,
            Some("any") => ToolChoice::Required,
            Some("none") => ToolChoice::None,
            Some("tool") => ToolChoice::Named(
                str_at(c, "name")
                    .ok_or_else(|| invalid("tool_choice.name: Field required"))?
                    .to_owned(),
            ),
            _ => return Err(invalid("tool_choice.type: must be auto, any, tool or none")),
        }),
    };
    Ok(req)
}

fn block(b: &Value, i: usize) -> Result<Option<Part>, TranslateError> {
    Ok(Some(match str_at(b, "type") {
        Some("text") => Part::Text(str_at(b, "text").unwrap_or_default().to_owned()),
        Some("image") => Part::Image(image(b.get("source").unwrap_or(&Value::Null), i)?),
        Some("tool_use") => Part::ToolCall(ToolCall {
            id: str_at(b, "id").unwrap_or_default().to_owned(),
            name: str_at(b, "name")
                .ok_or_else(|| {
                    invalid(format!(
                        "messages.{i}.content.tool_use.name: Field required"
                    ))
                })?
                .to_owned(),
            arguments: b
                .get("input")
                .map_or_else(|| "{}".to_owned(), Value::to_string),
        }),
        Some("tool_result") => {
            let content = match b.get("content") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) => vec![Part::Text(s.clone())],
                Some(Value::Array(inner)) => inner
                    .iter()
                    .map(|x| block(x, i))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .flatten()
                    .collect(),
                Some(_) => {
                    return Err(invalid(format!(
                        "messages.{i}.content.tool_result.content: must be a string or list"
                    )))
                }
            };
            Part::ToolResult(ToolResult {
                call_id: str_at(b, "tool_use_id")
                    .ok_or_else(|| {
                        invalid(format!(
                            "messages.{i}.content.tool_result.tool_use_id: Field required"
                        ))
                    })?
                    .to_owned(),
                content,
                is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
            })
        }
        // Thinking blocks replayed from an earlier Anthropic answer mean nothing to other models.
        Some("thinking" | "redacted_thinking") => return Ok(None),
        Some(other) => {
            return Err(unsupported(
                format!("the content block type {other:?}"),
                "this provider",
            ))
        }
        None => {
            return Err(invalid(format!(
                "messages.{i}.content.type: Field required"
            )))
        }
    }))
}

fn image(source: &Value, i: usize) -> Result<Image, TranslateError> {
    match str_at(source, "type") {
        Some("base64") => Ok(Image::Base64 {
            media_type: str_at(source, "media_type")
                .unwrap_or("image/png")
                .to_owned(),
            data: str_at(source, "data").unwrap_or_default().to_owned(),
        }),
        Some("url") => Ok(Image::Url(
            str_at(source, "url").unwrap_or_default().to_owned(),
        )),
        _ => Err(invalid(format!(
            "messages.{i}.content.image.source.type: must be base64 or url"
        ))),
    }
}

fn write_image(img: &Image) -> Value {
    match img {
        Image::Base64 { media_type, data } => {
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
        }
        Image::Url(u) if u.starts_with("data:") => write_image(&super::image_from_url(u)),
        Image::Url(u) => json!({"type": "image", "source": {"type": "url", "url": u}}),
    }
}

fn write_part(p: &Part) -> Value {
    match p {
        Part::Text(text) => json!(BlockOut::Text { text }),
        Part::Image(img) => write_image(img),
        Part::ToolCall(c) => json!(BlockOut::tool_use(c)),
        Part::ToolResult(r) => {
            let mut b = json!({"type": "tool_result", "tool_use_id": r.call_id, "content": r.content.iter().map(write_part).collect::<Vec<_>>()});
            if r.is_error {
                b["is_error"] = json!(true);
            }
            b
        }
    }
}

/// Writes a common request as an Anthropic messages request.
pub fn write_request(req: &ChatRequest) -> Result<Value, TranslateError> {
    if req.response_format.is_some() {
        return Err(unsupported(
            "response_format (JSON mode / structured output)",
            "anthropic",
        ));
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(req.model));
    out.insert(
        "max_tokens".into(),
        json!(req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    match req.system.len() {
        0 => {}
        1 => {
            out.insert("system".into(), json!(req.system[0]));
        }
        _ => {
            out.insert(
                "system".into(),
                Value::Array(
                    req.system
                        .iter()
                        .map(|s| json!({"type": "text", "text": s}))
                        .collect(),
                ),
            );
        }
    }
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let role = if m.role == Role::User {
                "user"
            } else {
                "assistant"
            };
            // Anthropic rejects empty text blocks; an empty turn becomes an empty string.
            let blocks: Vec<Value> = m
                .parts
                .iter()
                .filter(|p| !matches!(p, Part::Text(t) if t.is_empty()))
                .map(write_part)
                .collect();
            if blocks.is_empty() {
                json!({"role": role, "content": ""})
            } else {
                json!({"role": role, "content": blocks})
            }
        })
        .collect();
    out.insert("messages".into(), Value::Array(messages));
    if let Some(t) = req.temperature {
        out.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        out.insert("top_p".into(), json!(p));
    }
    if !req.stop.is_empty() {
        out.insert("stop_sequences".into(), json!(req.stop));
    }
    if !req.tools.is_empty() {
        out.insert(
            "tools".into(),
            Value::Array(
                req.tools
                    .iter()
                    .map(|t| {
                        let mut v = json!({"name": t.name, "input_schema": t.parameters});
                        if let Some(d) = &t.description {
                            v["description"] = json!(d);
                        }
                        v
                    })
                    .collect(),
            ),
        );
    }
    if let Some(c) = &req.tool_choice {
        out.insert(
            "tool_choice".into(),
            match c {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Required => json!({"type": "any"}),
                ToolChoice::Named(n) => json!({"type": "tool", "name": n}),
            },
        );
    }
    if let Some(u) = &req.user {
        out.insert("metadata".into(), json!({"user_id": u}));
    }
    if req.stream {
        out.insert("stream".into(), json!(true));
    }
    Ok(Value::Object(out))
}

/// Reads Anthropic usage.
pub fn parse_usage(u: &Value) -> Usage {
    Usage {
        input: u64_at(u, "input_tokens").unwrap_or(0),
        output: u64_at(u, "output_tokens").unwrap_or(0),
        cached_input: u64_at(u, "cache_read_input_tokens").unwrap_or(0),
        cache_write: u64_at(u, "cache_creation_input_tokens").unwrap_or(0),
        reasoning: 0,
    }
}

/// Usage in Anthropic's shape, serialized as it is (no JSON tree in between).
#[derive(Serialize)]
pub struct UsageOut {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> Self {
        Self {
            input_tokens: u.input,
            output_tokens: u.output,
            cache_creation_input_tokens: u.cache_write,
            cache_read_input_tokens: u.cached_input,
        }
    }
}

/// Writes usage in Anthropic's shape, as a JSON value (for stream events, which add to it).
pub fn write_usage(u: &Usage) -> Value {
    serde_json::to_value(UsageOut::from(u)).unwrap_or(Value::Null)
}

/// Maps an Anthropic stop reason.
pub fn parse_stop(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// The Anthropic name of a finish reason.
pub fn stop_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// Parses an Anthropic message response.
pub fn parse_response(body: &Value) -> Result<ChatResponse, TranslateError> {
    let blocks = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("upstream answer has no content"))?;
    let parts = blocks
        .iter()
        .filter_map(|b| match str_at(b, "type") {
            Some("text") => Some(Part::Text(str_at(b, "text").unwrap_or_default().to_owned())),
            Some("tool_use") => Some(Part::ToolCall(ToolCall {
                id: str_at(b, "id").unwrap_or_default().to_owned(),
                name: str_at(b, "name").unwrap_or_default().to_owned(),
                arguments: b
                    .get("input")
                    .map_or_else(|| "{}".to_owned(), Value::to_string),
            })),
            _ => None,
        })
        .collect();
    Ok(ChatResponse {
        id: str_at(body, "id").unwrap_or_default().to_owned(),
        model: str_at(body, "model").unwrap_or_default().to_owned(),
        parts,
        finish: parse_stop(str_at(body, "stop_reason")),
        usage: body.get("usage").map(parse_usage).unwrap_or_default(),
    })
}

/// A message as Anthropic writes it, borrowing from the common response: serialized straight
/// to bytes, without building a JSON tree first.
#[derive(Serialize)]
pub struct MessageOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<BlockOut<'a>>,
    stop_reason: &'static str,
    /// Always `null`: which stop sequence matched is not part of the common model.
    stop_sequence: (),
    usage: UsageOut,
}

/// A text or tool-use content block, written the same in requests and answers.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockOut<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        /// The arguments as a JSON object (they arrive as text from other formats).
        input: Value,
    },
}

impl<'a> BlockOut<'a> {
    fn tool_use(c: &'a ToolCall) -> Self {
        BlockOut::ToolUse {
            id: &c.id,
            name: &c.name,
            input: arguments_value(&c.arguments),
        }
    }
}

/// Writes a common response as an Anthropic message.
pub fn write_response(resp: &ChatResponse) -> MessageOut<'_> {
    let content = resp
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(text) => Some(BlockOut::Text { text }),
            Part::ToolCall(c) => Some(BlockOut::tool_use(c)),
            _ => None,
        })
        .collect();
    MessageOut {
        id: &resp.id,
        kind: "message",
        role: "assistant",
        model: &resp.model,
        content,
        stop_reason: stop_name(resp.finish),
        stop_sequence: (),
        usage: UsageOut::from(&resp.usage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::ResponseFormat;

    #[test]
    fn tool_results_mixed_with_text_and_images_round_trip() {
        let body = json!({
            "model": "claude-sonnet-4-5", "max_tokens": 100,
            "system": [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}}]},
                {"role": "assistant", "content": [{"type": "text", "text": "ok"}, {"type": "tool_use", "id": "t1", "name": "zoom", "input": {"level": 2}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "zoomed"}]}, {"type": "text", "text": "and now? ✨"}]}
            ],
            "tools": [{"name": "zoom", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any"}
        });
        let req = parse_request(&body).unwrap();
        assert_eq!(req.system, ["One.", "Two."]);
        assert_eq!(req.tool_choice, Some(ToolChoice::Required));
        assert_eq!(req.messages[2].parts.len(), 2);
        let back = write_request(&req).unwrap();
        assert_eq!(back["messages"], body["messages"]);
        assert_eq!(back["system"], body["system"]);
        assert_eq!(back["tool_choice"], body["tool_choice"]);
    }

    #[test]
    fn max_tokens_is_required_inbound_and_defaulted_outbound() {
        assert!(parse_request(&json!({"model": "m", "messages": []}))
            .unwrap_err()
            .to_string()
            .contains("max_tokens"));
        let req = ChatRequest {
            model: "m".into(),
            ..ChatRequest::default()
        };
        assert_eq!(
            write_request(&req).unwrap()["max_tokens"],
            DEFAULT_MAX_TOKENS
        );
    }

    #[test]
    fn json_mode_is_refused_not_dropped() {
        let req = ChatRequest {
            model: "m".into(),
            response_format: Some(ResponseFormat::JsonObject),
            ..ChatRequest::default()
        };
        let err = write_request(&req).unwrap_err();
        assert!(err.to_string().contains("response_format"));
    }

    #[test]
    fn usage_and_responses_round_trip() {
        let u = Usage {
            input: 5,
            output: 7,
            cached_input: 100,
            cache_write: 50,
            reasoning: 0,
        };
        assert_eq!(parse_usage(&write_usage(&u)), u);
        let resp = ChatResponse {
            id: "msg".into(),
            model: "m".into(),
            parts: vec![Part::ToolCall(ToolCall {
                id: "t".into(),
                name: "f".into(),
                arguments: "{\"a\":1}".into(),
            })],
            finish: FinishReason::ToolCalls,
            usage: u,
        };
        let written = serde_json::to_value(write_response(&resp)).unwrap();
        assert_eq!(parse_response(&written).unwrap(), resp);
    }
}
