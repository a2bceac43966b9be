//! Anthropic Messages ⇄ the common model.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{arguments_value, f64_field, present, str_at, string_list, u64_at, InlineImage};
use crate::common::{
    invalid, unsupported, ChatRequest, ChatResponse, FinishReason, Image, Message, Part, Role,
    ToolCall, ToolChoice, ToolDef, ToolResult, TranslateError, Usage,
};
use crate::reported_usage::ReportedUsage;

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

/// An Anthropic messages request, borrowing from the common request: serialized straight to
/// bytes, without building a JSON tree first (a cross-format call writes one per attempt).
#[derive(Serialize)]
pub struct RequestOut<'a> {
    model: &'a str,
    max_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<SystemOut<'a>>,
    messages: Vec<MessageIn<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoiceOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<MetadataOut<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

/// One system prompt as a string; several as text blocks, kept apart.
#[derive(Serialize)]
#[serde(untagged)]
enum SystemOut<'a> {
    One(&'a str),
    Many(Vec<BlockOut<'a>>),
}

/// A turn as Anthropic takes it.
#[derive(Serialize)]
struct MessageIn<'a> {
    role: &'static str,
    content: ContentIn<'a>,
}

/// A turn's content: blocks, or an empty string for a turn with none (Anthropic rejects empty
/// text blocks and empty block lists).
#[derive(Serialize)]
#[serde(untagged)]
enum ContentIn<'a> {
    Empty(&'static str),
    Blocks(Vec<PartIn<'a>>),
}

/// A request content block.
#[derive(Serialize)]
#[serde(untagged)]
enum PartIn<'a> {
    /// Text and tool use, written as in answers.
    Block(BlockOut<'a>),
    Image(ImageIn<'a>),
    ToolResult(ToolResultIn<'a>),
}

/// An image block: inline bytes or a URL.
#[derive(Serialize)]
struct ImageIn<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    source: ImageSource<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
struct ToolResultIn<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    tool_use_id: &'a str,
    content: Vec<PartIn<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    is_error: bool,
}

#[derive(Serialize)]
struct ToolOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a Value,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToolChoiceOut<'a> {
    Auto,
    None,
    Any,
    Tool { name: &'a str },
}

#[derive(Serialize)]
struct MetadataOut<'a> {
    user_id: &'a str,
}

fn write_part(p: &Part) -> Result<PartIn<'_>, TranslateError> {
    Ok(match p {
        Part::Text(text) => PartIn::Block(BlockOut::Text { text }),
        Part::Image(img) => PartIn::Image(write_image(img)?),
        Part::ToolCall(c) => PartIn::Block(BlockOut::tool_use(c)),
        Part::ToolResult(r) => PartIn::ToolResult(ToolResultIn {
            kind: "tool_result",
            tool_use_id: &r.call_id,
            content: r.content.iter().map(write_part).collect::<Result<_, _>>()?,
            is_error: r.is_error,
        }),
    })
}

fn write_image(img: &Image) -> Result<ImageIn<'_>, TranslateError> {
    Ok(ImageIn {
        kind: "image",
        source: match super::inline_image(img)? {
            InlineImage::Base64 { media_type, data } => ImageSource::Base64 { media_type, data },
            InlineImage::Url(url) => ImageSource::Url { url },
        },
    })
}

/// Writes a common request as an Anthropic messages request.
pub fn write_request(req: &ChatRequest) -> Result<RequestOut<'_>, TranslateError> {
    if req.response_format.is_some() {
        return Err(unsupported(
            "response_format (JSON mode / structured output)",
            "anthropic",
        ));
    }
    let system = match req.system.as_slice() {
        [] => None,
        [one] => Some(SystemOut::One(one)),
        many => Some(SystemOut::Many(
            many.iter().map(|text| BlockOut::Text { text }).collect(),
        )),
    };
    let messages = req
        .messages
        .iter()
        .map(|m| {
            let role = if m.role == Role::User {
                "user"
            } else {
                "assistant"
            };
            // Anthropic rejects empty text blocks; an empty turn becomes an empty string.
            let blocks = m
                .parts
                .iter()
                .filter(|p| !matches!(p, Part::Text(t) if t.is_empty()))
                .map(write_part)
                .collect::<Result<Vec<_>, _>>()?;
            let content = if blocks.is_empty() {
                ContentIn::Empty("")
            } else {
                ContentIn::Blocks(blocks)
            };
            Ok(MessageIn { role, content })
        })
        .collect::<Result<_, TranslateError>>()?;
    Ok(RequestOut {
        model: &req.model,
        max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        system,
        messages,
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: &req.stop,
        tools: req
            .tools
            .iter()
            .map(|t| ToolOut {
                name: &t.name,
                description: t.description.as_deref(),
                input_schema: &t.parameters,
            })
            .collect(),
        tool_choice: req.tool_choice.as_ref().map(|c| match c {
            ToolChoice::Auto => ToolChoiceOut::Auto,
            ToolChoice::None => ToolChoiceOut::None,
            ToolChoice::Required => ToolChoiceOut::Any,
            ToolChoice::Named(name) => ToolChoiceOut::Tool { name },
        }),
        metadata: req.user.as_deref().map(|user_id| MetadataOut { user_id }),
        stream: req.stream,
    })
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
        usage_reported: body.get("usage").is_some_and(|u| !u.is_null()),
    })
}

/// Reads an Anthropic message straight from its JSON text, without building a tree: strings are
/// borrowed where they hold no escapes. `None` when this strict reading refuses the text (a
/// field of an unexpected type, a repeated field, not JSON at all); the caller then parses a
/// `Value` and reads it with [`parse_response`], which tolerates more and says what is wrong.
pub fn read_response(text: &[u8]) -> Option<ChatResponse> {
    let message: Arriving<'_> = serde_json::from_slice(text).ok()?;
    let parts = message
        .content
        .into_iter()
        .filter_map(|b| match b.kind.as_deref() {
            Some("text") => Some(Part::Text(b.text.unwrap_or_default().into_owned())),
            Some("tool_use") => Some(Part::ToolCall(ToolCall {
                id: b.id.unwrap_or_default().into_owned(),
                name: b.name.unwrap_or_default().into_owned(),
                arguments: b
                    .input
                    .map_or_else(|| "{}".to_owned(), |input| input.to_string()),
            })),
            _ => None,
        })
        .collect();
    Some(ChatResponse {
        id: message.id.unwrap_or_default().into_owned(),
        model: message.model.unwrap_or_default().into_owned(),
        parts,
        finish: parse_stop(message.stop_reason.as_deref()),
        usage_reported: message.usage.is_some(),
        usage: message.usage.map_or_else(Usage::default, |u| u.anthropic()),
    })
}

/// An Anthropic message as it arrives (what [`parse_response`] reads, typed).
#[derive(Deserialize)]
struct Arriving<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: Vec<BlockArriving<'a>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<ReportedUsage>,
}

/// A content block as it arrives; the fields of every kind flo2 reads, each optional.
#[derive(Deserialize)]
struct BlockArriving<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    /// Present (`null` included) or absent, as [`parse_response`] tells them apart.
    #[serde(default, deserialize_with = "present_value")]
    input: Option<Value>,
}

fn present_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
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
        let back = serde_json::to_value(write_request(&req).unwrap()).unwrap();
        assert_eq!(back["messages"], body["messages"]);
        assert_eq!(back["system"], body["system"]);
        assert_eq!(back["tool_choice"], body["tool_choice"]);
    }

    /// The typed reading gives what the tree reading gives, or declines and leaves it to it.
    #[test]
    fn answers_read_from_text_match_answers_read_from_a_tree() {
        // (answer, read by the typed reading)
        let answers = [
            (
                r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"Hi \"there\"\n"}],
                   "stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":3,"cache_read_input_tokens":4}}"#,
                true,
            ),
            (
                r#"{"id":"m","model":"c","content":[{"type":"thinking","thinking":"…"},{"type":"tool_use","id":"t","name":"f","input":{"a":[1,2]}},
                   {"type":"tool_use","id":"u","name":"g","input":null},{"type":"tool_use","id":"v","name":"h"},{"type":"server_tool_use"},{}],
                   "stop_reason":"tool_use","usage":null}"#,
                true,
            ),
            (r#"{"content":[],"stop_reason":"max_tokens"}"#, true),
            (r#"{"id":7,"content":[{"type":"text","text":"x"}]}"#, false),
            (
                r#"{"id":"m","content":["text",{"type":"text","text":5}]}"#,
                false,
            ),
            (r#"{"id":"m","id":"n","content":[]}"#, false),
            (r#"{"id":"m","content":{"type":"text"}}"#, false),
            (r#"{"id":"m"}"#, false),
        ];
        for (text, typed) in answers {
            let tree = parse_response(&serde_json::from_str(text).unwrap());
            match read_response(text.as_bytes()) {
                Some(read) => {
                    assert!(typed, "{text}");
                    assert_eq!(Ok(read), tree, "{text}");
                }
                None => assert!(!typed, "{text}"),
            }
        }
        assert_eq!(read_response(b"not json"), None);
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
            serde_json::to_value(write_request(&req).unwrap()).unwrap()["max_tokens"],
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
        let Err(err) = write_request(&req) else {
            panic!("JSON mode was accepted")
        };
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
            usage_reported: true,
        };
        let written = serde_json::to_value(write_response(&resp)).unwrap();
        assert_eq!(parse_response(&written).unwrap(), resp);
    }
}
