//! OpenAI Chat Completions ⇄ the common model (also used for the OpenAI-compatible family:
//! Groq, Cerebras, DeepInfra, Mistral, xAI, OpenRouter and custom servers).

use std::borrow::Cow;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Value};

use super::{f64_field, image_from_url, image_to_url, present, str_at, string_list, u64_at};
use crate::common::{
    invalid, ChatRequest, ChatResponse, FinishReason, Image, Message, Part, ResponseFormat, Role,
    ToolCall, ToolChoice, ToolDef, ToolResult, TranslateError, Usage,
};

/// OpenAI request fields that no other format can express; present (and not null) in a
/// cross-format call they are refused rather than dropped.
pub const OPENAI_ONLY: &[&str] = &[
    "n",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "audio",
    "modalities",
    "prediction",
];

/// Parses an OpenAI chat request.
pub fn parse_request(body: &Value) -> Result<ChatRequest, TranslateError> {
    let model = str_at(body, "model")
        .ok_or_else(|| invalid("`model` is required"))?
        .to_owned();
    let raw_messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`messages` must be a list"))?;
    let mut req = ChatRequest {
        model,
        max_tokens: u64_at(body, "max_completion_tokens").or_else(|| u64_at(body, "max_tokens")),
        temperature: f64_field(body, "temperature")?,
        top_p: f64_field(body, "top_p")?,
        stop: string_list(body.get("stop"), "stop")?,
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        user: str_at(body, "user").map(str::to_owned),
        ..ChatRequest::default()
    };
    for (i, m) in raw_messages.iter().enumerate() {
        let role = str_at(m, "role")
            .ok_or_else(|| invalid(format!("`messages[{i}].role` is required")))?;
        match role {
            "system" | "developer" => req.system.push(text_of(m.get("content"), i)?),
            "user" => {
                let parts = user_parts(m.get("content"), i)?;
                push(&mut req.messages, Role::User, parts);
            }
            "assistant" => {
                let mut parts = Vec::new();
                match m.get("content") {
                    None | Some(Value::Null) => {}
                    content => {
                        let text = text_of(content, i)?;
                        if !text.is_empty() {
                            parts.push(Part::Text(text));
                        }
                    }
                }
                for call in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let function = call.get("function").unwrap_or(&Value::Null);
                    parts.push(Part::ToolCall(ToolCall {
                        id: str_at(call, "id").unwrap_or_default().to_owned(),
                        name: str_at(function, "name")
                            .ok_or_else(|| {
                                invalid(format!(
                                    "`messages[{i}].tool_calls[].function.name` is required"
                                ))
                            })?
                            .to_owned(),
                        arguments: str_at(function, "arguments").unwrap_or("{}").to_owned(),
                    }));
                }
                push(&mut req.messages, Role::Assistant, parts);
            }
            "tool" => {
                let call_id = str_at(m, "tool_call_id")
                    .ok_or_else(|| invalid(format!("`messages[{i}].tool_call_id` is required")))?;
                let content = text_of(m.get("content"), i)?;
                let part = Part::ToolResult(ToolResult {
                    call_id: call_id.to_owned(),
                    content: vec![Part::Text(content)],
                    is_error: false,
                });
                // Consecutive tool results answer one assistant turn: keep them in one user turn.
                match req.messages.last_mut() {
                    Some(last)
                        if last.role == Role::User
                            && last.parts.iter().all(|p| matches!(p, Part::ToolResult(_))) =>
                    {
                        last.parts.push(part)
                    }
                    _ => req.messages.push(Message {
                        role: Role::User,
                        parts: vec![part],
                    }),
                }
            }
            other => {
                return Err(invalid(format!(
                    "`messages[{i}].role` {other:?} is not a chat role"
                )))
            }
        }
    }
    for tool in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = tool
            .get("function")
            .ok_or_else(|| invalid("`tools[].function` is required"))?;
        req.tools.push(ToolDef {
            name: str_at(f, "name")
                .ok_or_else(|| invalid("`tools[].function.name` is required"))?
                .to_owned(),
            description: str_at(f, "description").map(str::to_owned),
            parameters: f
                .get("parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }
    req.tool_choice = match present(body, "tool_choice") {
        None => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(invalid(format!(
                    "`tool_choice` {other:?} is not auto, none or required"
                )))
            }
        }),
        Some(v) => Some(ToolChoice::Named(
            v.get("function")
                .and_then(|f| str_at(f, "name"))
                .ok_or_else(|| invalid("`tool_choice.function.name` is required"))?
                .to_owned(),
        )),
    };
    req.response_format = match present(body, "response_format") {
        None => None,
        Some(rf) => match str_at(rf, "type") {
            Some("text") => None,
            Some("json_object") => Some(ResponseFormat::JsonObject),
            Some("json_schema") => {
                let js = rf.get("json_schema").unwrap_or(&Value::Null);
                Some(ResponseFormat::JsonSchema {
                    name: str_at(js, "name").unwrap_or("response").to_owned(),
                    schema: js.get("schema").cloned().unwrap_or(Value::Null),
                    strict: js.get("strict").and_then(Value::as_bool),
                })
            }
            _ => {
                return Err(invalid(
                    "`response_format.type` must be text, json_object or json_schema",
                ))
            }
        },
    };
    Ok(req)
}

fn push(messages: &mut Vec<Message>, role: Role, parts: Vec<Part>) {
    messages.push(Message { role, parts });
}

/// Text of a `content` that is a string or a list of text parts.
fn text_of(content: Option<&Value>, i: usize) -> Result<String, TranslateError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = String::new();
            for p in parts {
                match str_at(p, "type") {
                    Some("text") => out.push_str(str_at(p, "text").unwrap_or_default()),
                    Some(other) => {
                        return Err(invalid(format!(
                            "`messages[{i}].content` part type {other:?} is not allowed here"
                        )))
                    }
                    None => {
                        return Err(invalid(format!(
                            "`messages[{i}].content[].type` is required"
                        )))
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(invalid(format!(
            "`messages[{i}].content` must be a string or a list"
        ))),
    }
}

fn user_parts(content: Option<&Value>, i: usize) -> Result<Vec<Part>, TranslateError> {
    match content {
        Some(Value::String(s)) => Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|p| match str_at(p, "type") {
                Some("text") => Ok(Part::Text(str_at(p, "text").unwrap_or_default().to_owned())),
                Some("image_url") => {
                    let url = p
                        .get("image_url")
                        .and_then(|u| str_at(u, "url").or_else(|| u.as_str()))
                        .ok_or_else(|| {
                            invalid(format!(
                                "`messages[{i}].content[].image_url.url` is required"
                            ))
                        })?;
                    Ok(Part::Image(image_from_url(url)))
                }
                Some(other) => Err(crate::common::unsupported(
                    format!("content part type {other:?}"),
                    "the target provider",
                )),
                None => Err(invalid(format!(
                    "`messages[{i}].content[].type` is required"
                ))),
            })
            .collect(),
        _ => Err(invalid(format!(
            "`messages[{i}].content` must be a string or a list"
        ))),
    }
}

/// Writes a common request as an OpenAI chat request. `max_completion_tokens` is OpenAI's
/// current name; other servers of the family take `max_tokens`. `include_usage` asks the
/// server for usage in the stream (not every server accepts `stream_options`).
pub fn write_request<'a>(
    req: &'a ChatRequest,
    max_tokens_field: &'a str,
    include_usage: bool,
) -> RequestOut<'a> {
    let mut messages: Vec<MessageOut<'a>> = req
        .system
        .iter()
        .map(|content| MessageOut::System {
            role: "system",
            content,
        })
        .collect();
    for m in &req.messages {
        match m.role {
            Role::Assistant => {
                let (content, tool_calls) = assistant_turn(&m.parts);
                messages.push(MessageOut::Assistant {
                    role: "assistant",
                    content,
                    tool_calls,
                });
            }
            Role::User => {
                // Tool results become `tool` messages ahead of what else the turn says.
                let mut content = Vec::new();
                for p in &m.parts {
                    match p {
                        Part::ToolResult(r) => messages.push(MessageOut::Tool {
                            role: "tool",
                            tool_call_id: &r.call_id,
                            content: result_text(r),
                        }),
                        Part::Text(text) => content.push(UserPart::Text { text }),
                        Part::Image(img) => content.push(UserPart::ImageUrl {
                            image_url: ImageUrl {
                                url: match img {
                                    Image::Url(u) => Cow::Borrowed(u.as_str()),
                                    inline => Cow::Owned(image_to_url(inline)),
                                },
                            },
                        }),
                        Part::ToolCall(_) => {}
                    }
                }
                let content = match content.as_slice() {
                    [] => continue,
                    [UserPart::Text { text }] => UserContent::Text(text),
                    _ => UserContent::Parts(content),
                };
                messages.push(MessageOut::User {
                    role: "user",
                    content,
                });
            }
        }
    }
    RequestOut {
        req,
        messages,
        max_tokens_field,
        include_usage,
    }
}

/// An OpenAI chat request, borrowing from the common request: serialized straight to bytes,
/// without building a JSON tree first (a cross-format call writes one per attempt).
pub struct RequestOut<'a> {
    req: &'a ChatRequest,
    messages: Vec<MessageOut<'a>>,
    max_tokens_field: &'a str,
    include_usage: bool,
}

impl Serialize for RequestOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.req;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model", &r.model)?;
        map.serialize_entry("messages", &self.messages)?;
        if let Some(n) = r.max_tokens {
            map.serialize_entry(self.max_tokens_field, &n)?;
        }
        if let Some(t) = r.temperature {
            map.serialize_entry("temperature", &t)?;
        }
        if let Some(p) = r.top_p {
            map.serialize_entry("top_p", &p)?;
        }
        if !r.stop.is_empty() {
            map.serialize_entry("stop", &r.stop)?;
        }
        if !r.tools.is_empty() {
            let tools: Vec<ToolOut<'_>> = r.tools.iter().map(ToolOut::from).collect();
            map.serialize_entry("tools", &tools)?;
        }
        if let Some(choice) = &r.tool_choice {
            map.serialize_entry("tool_choice", &ToolChoiceOut::from(choice))?;
        }
        match &r.response_format {
            None => {}
            Some(ResponseFormat::JsonObject) => {
                map.serialize_entry("response_format", &FormatOut::JsonObject)?;
            }
            Some(ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            }) => map.serialize_entry(
                "response_format",
                &FormatOut::JsonSchema {
                    json_schema: SchemaOut {
                        name,
                        schema,
                        strict: *strict,
                    },
                },
            )?,
        }
        if let Some(user) = &r.user {
            map.serialize_entry("user", user)?;
        }
        if r.stream {
            map.serialize_entry("stream", &true)?;
            if self.include_usage {
                map.serialize_entry(
                    "stream_options",
                    &StreamOptionsOut {
                        include_usage: true,
                    },
                )?;
            }
        }
        map.end()
    }
}

/// A request message; the field names say which kind it is.
#[derive(Serialize)]
#[serde(untagged)]
enum MessageOut<'a> {
    System {
        role: &'static str,
        content: &'a str,
    },
    Assistant {
        role: &'static str,
        content: Option<Cow<'a, str>>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCallOut<'a>>,
    },
    Tool {
        role: &'static str,
        tool_call_id: &'a str,
        content: String,
    },
    User {
        role: &'static str,
        content: UserContent<'a>,
    },
}

/// A user turn's content: one text as a string, anything else as parts.
#[derive(Serialize)]
#[serde(untagged)]
enum UserContent<'a> {
    Text(&'a str),
    Parts(Vec<UserPart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum UserPart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl<'a> },
}

#[derive(Serialize)]
struct ImageUrl<'a> {
    url: Cow<'a, str>,
}

#[derive(Serialize)]
struct ToolOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ToolFunctionOut<'a>,
}

#[derive(Serialize)]
struct ToolFunctionOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
}

impl<'a> From<&'a ToolDef> for ToolOut<'a> {
    fn from(t: &'a ToolDef) -> Self {
        Self {
            kind: "function",
            function: ToolFunctionOut {
                name: &t.name,
                description: t.description.as_deref(),
                parameters: &t.parameters,
            },
        }
    }
}

/// `"auto"`, `"none"`, `"required"`, or the one function to call.
#[derive(Serialize)]
#[serde(untagged)]
enum ToolChoiceOut<'a> {
    Mode(&'static str),
    Named {
        #[serde(rename = "type")]
        kind: &'static str,
        function: NamedFunction<'a>,
    },
}

#[derive(Serialize)]
struct NamedFunction<'a> {
    name: &'a str,
}

impl<'a> From<&'a ToolChoice> for ToolChoiceOut<'a> {
    fn from(c: &'a ToolChoice) -> Self {
        match c {
            ToolChoice::Auto => Self::Mode("auto"),
            ToolChoice::None => Self::Mode("none"),
            ToolChoice::Required => Self::Mode("required"),
            ToolChoice::Named(name) => Self::Named {
                kind: "function",
                function: NamedFunction { name },
            },
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FormatOut<'a> {
    JsonObject,
    JsonSchema { json_schema: SchemaOut<'a> },
}

#[derive(Serialize)]
struct SchemaOut<'a> {
    name: &'a str,
    schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
struct StreamOptionsOut {
    include_usage: bool,
}

fn result_text(r: &ToolResult) -> String {
    r.content
        .iter()
        .filter_map(|p| {
            if let Part::Text(t) = p {
                Some(t.as_str())
            } else {
                None
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads OpenAI usage (`prompt_tokens` includes cached tokens; `completion_tokens` includes
/// reasoning tokens).
pub fn parse_usage(u: &Value) -> Usage {
    let prompt = u64_at(u, "prompt_tokens").unwrap_or(0);
    let cached = u
        .get("prompt_tokens_details")
        .and_then(|d| u64_at(d, "cached_tokens"))
        .unwrap_or(0);
    Usage {
        input: prompt.saturating_sub(cached),
        output: u64_at(u, "completion_tokens").unwrap_or(0),
        cached_input: cached,
        cache_write: 0,
        reasoning: u
            .get("completion_tokens_details")
            .and_then(|d| u64_at(d, "reasoning_tokens"))
            .unwrap_or(0),
    }
}

/// Usage in OpenAI's shape, serialized as it is (no JSON tree in between).
#[derive(Serialize)]
pub struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedTokens,
    completion_tokens_details: ReasoningTokens,
}

#[derive(Serialize)]
struct CachedTokens {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningTokens {
    reasoning_tokens: u64,
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> Self {
        let prompt = u.total_input();
        Self {
            prompt_tokens: prompt,
            completion_tokens: u.output,
            total_tokens: prompt + u.output,
            prompt_tokens_details: CachedTokens {
                cached_tokens: u.cached_input,
            },
            completion_tokens_details: ReasoningTokens {
                reasoning_tokens: u.reasoning,
            },
        }
    }
}

/// Writes usage in OpenAI's shape, as a JSON value (for stream chunks, which add to it).
pub fn write_usage(u: &Usage) -> Value {
    serde_json::to_value(UsageOut::from(u)).unwrap_or(Value::Null)
}

/// Maps an OpenAI finish reason.
pub fn parse_finish(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("length") => FinishReason::Length,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// The OpenAI name of a finish reason.
pub fn finish_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// Parses an OpenAI chat completion.
pub fn parse_response(body: &Value) -> Result<ChatResponse, TranslateError> {
    let choice = body
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| invalid("upstream answer has no choices"))?;
    let message = choice.get("message").unwrap_or(&Value::Null);
    let mut parts = Vec::new();
    if let Some(text) = str_at(message, "content") {
        if !text.is_empty() {
            parts.push(Part::Text(text.to_owned()));
        }
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = call.get("function").unwrap_or(&Value::Null);
        parts.push(Part::ToolCall(ToolCall {
            id: str_at(call, "id").unwrap_or_default().to_owned(),
            name: str_at(f, "name").unwrap_or_default().to_owned(),
            arguments: str_at(f, "arguments").unwrap_or("{}").to_owned(),
        }));
    }
    Ok(ChatResponse {
        id: str_at(body, "id").unwrap_or_default().to_owned(),
        model: str_at(body, "model").unwrap_or_default().to_owned(),
        parts,
        finish: parse_finish(str_at(choice, "finish_reason")),
        usage: body.get("usage").map(parse_usage).unwrap_or_default(),
        usage_reported: body.get("usage").is_some_and(|u| !u.is_null()),
    })
}

/// A chat completion as OpenAI writes it, borrowing from the common response: serialized
/// straight to bytes, it costs a fifth of building the same answer as a JSON tree first.
#[derive(Serialize)]
pub struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    usage: UsageOut,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    finish_reason: &'static str,
    /// Always `null`: flo2 asks for no log probabilities when it translates.
    logprobs: (),
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    /// `null` when the answer is only tool calls, as OpenAI writes it.
    content: Option<Cow<'a, str>>,
    refusal: (),
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
}

/// A tool call, written the same in requests (assistant turns) and answers.
#[derive(Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

impl<'a> From<&'a ToolCall> for ToolCallOut<'a> {
    fn from(c: &'a ToolCall) -> Self {
        Self {
            id: &c.id,
            kind: "function",
            function: FunctionOut {
                name: &c.name,
                arguments: &c.arguments,
            },
        }
    }
}

/// An assistant turn as OpenAI writes it, in requests and answers alike: its text (one part
/// borrowed, several joined) and its tool calls; the content is `null` when the turn is only
/// tool calls.
fn assistant_turn(parts: &[Part]) -> (Option<Cow<'_, str>>, Vec<ToolCallOut<'_>>) {
    let mut texts = parts.iter().filter_map(|p| match p {
        Part::Text(t) => Some(t.as_str()),
        _ => None,
    });
    let text: Cow<'_, str> = match (texts.next(), texts.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(only), None) => Cow::Borrowed(only),
        (Some(first), Some(second)) => {
            Cow::Owned([first, second].into_iter().chain(texts).collect())
        }
    };
    let tool_calls: Vec<ToolCallOut<'_>> = parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some(ToolCallOut::from(c)),
            _ => None,
        })
        .collect();
    let content = (!text.is_empty() || tool_calls.is_empty()).then_some(text);
    (content, tool_calls)
}

/// Writes a common response as an OpenAI chat completion.
pub fn write_response(resp: &ChatResponse, created: i64) -> Completion<'_> {
    let (content, tool_calls) = assistant_turn(&resp.parts);
    Completion {
        id: &resp.id,
        object: "chat.completion",
        created,
        model: &resp.model,
        choices: [CompletionChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
                refusal: (),
                tool_calls,
            },
            finish_reason: finish_name(resp.finish),
            logprobs: (),
        }],
        usage: UsageOut::from(&resp.usage),
    }
}

/// The images of a request, for capability checks.
pub fn has_images(req: &ChatRequest) -> bool {
    req.messages
        .iter()
        .flat_map(|m| &m.parts)
        .any(|p| matches!(p, Part::Image(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multi_turn_tools_images_and_several_system_messages() {
        let body = json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
                {"role": "user", "content": [{"type": "text", "text": "What is in this? 🖼"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{\"x\":1}"}},
                    {"id": "c2", "type": "function", "function": {"name": "look", "arguments": "{\"x\":2}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
                {"role": "tool", "tool_call_id": "c2", "content": "a hat"},
                {"role": "user", "content": ""}
            ],
            "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "look"}},
            "stop": "END", "max_tokens": 50, "temperature": 0.2, "stream": true
        });
        let req = parse_request(&body).unwrap();
        assert_eq!(req.system, ["Be brief.", "Use tools."]);
        assert_eq!(req.messages.len(), 4);
        assert_eq!(
            req.messages[0].parts[1],
            Part::Image(Image::Base64 {
                media_type: "image/png".into(),
                data: "AAAA".into()
            })
        );
        assert_eq!(req.messages[1].parts.len(), 2);
        assert_eq!(
            req.messages[2].parts.len(),
            2,
            "parallel tool results share one turn"
        );
        assert_eq!(
            req.messages[3].parts,
            [Part::Text(String::new())],
            "empty content is kept"
        );
        assert_eq!(req.tool_choice, Some(ToolChoice::Named("look".into())));
        assert_eq!(req.stop, ["END"]);
        assert!(req.stream);

        // And back out: tool messages follow the assistant turn, in order.
        let out = serde_json::to_value(write_request(&req, "max_tokens", true)).unwrap();
        let roles: Vec<&str> = out["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(
            roles,
            [
                "system",
                "system",
                "user",
                "assistant",
                "tool",
                "tool",
                "user"
            ]
        );
        assert_eq!(out["stream_options"]["include_usage"], true);
        assert_eq!(
            out["messages"][2]["content"][1]["image_url"]["url"],
            "data:image/png;base64,AAAA"
        );
    }

    #[test]
    fn a_request_is_written_field_by_field() {
        let req = ChatRequest {
            model: "gpt-x".into(),
            system: vec!["Be brief.".into()],
            messages: vec![
                Message {
                    role: Role::User,
                    parts: vec![Part::Text("weather?".into())],
                },
                Message {
                    role: Role::Assistant,
                    parts: vec![Part::ToolCall(ToolCall {
                        id: "c1".into(),
                        name: "weather".into(),
                        arguments: "{\"city\":\"Oslo\"}".into(),
                    })],
                },
                Message {
                    role: Role::User,
                    parts: vec![
                        Part::ToolResult(ToolResult {
                            call_id: "c1".into(),
                            content: vec![Part::Text("rain".into()), Part::Text("5C".into())],
                            is_error: false,
                        }),
                        Part::Text("and".into()),
                        Part::Image(Image::Url("https://x/y.png".into())),
                    ],
                },
                Message {
                    role: Role::Assistant,
                    parts: vec![Part::Text("It ".into()), Part::Text("rains.".into())],
                },
            ],
            max_tokens: Some(50),
            temperature: Some(0.5),
            top_p: None,
            stop: vec!["END".into()],
            tools: vec![ToolDef {
                name: "weather".into(),
                description: Some("Looks it up".into()),
                parameters: json!({"type": "object"}),
            }],
            tool_choice: Some(ToolChoice::Named("weather".into())),
            response_format: Some(ResponseFormat::JsonSchema {
                name: "w".into(),
                schema: json!({"type": "object"}),
                strict: Some(true),
            }),
            stream: true,
            user: Some("u1".into()),
        };
        let out = serde_json::to_value(write_request(&req, "max_completion_tokens", true)).unwrap();
        assert_eq!(
            out,
            json!({
                "model": "gpt-x",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "weather?"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "rain\n5C"},
                    {"role": "user", "content": [{"type": "text", "text": "and"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                    {"role": "assistant", "content": "It rains."}
                ],
                "max_completion_tokens": 50,
                "temperature": 0.5,
                "stop": ["END"],
                "tools": [{"type": "function", "function": {"name": "weather", "description": "Looks it up", "parameters": {"type": "object"}}}],
                "tool_choice": {"type": "function", "function": {"name": "weather"}},
                "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": true}},
                "user": "u1",
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
        let plain = ChatRequest {
            model: "m".into(),
            tool_choice: Some(ToolChoice::Required),
            response_format: Some(ResponseFormat::JsonObject),
            ..ChatRequest::default()
        };
        assert_eq!(
            serde_json::to_value(write_request(&plain, "max_tokens", true)).unwrap(),
            json!({"model": "m", "messages": [], "tool_choice": "required", "response_format": {"type": "json_object"}})
        );
    }

    #[test]
    fn bad_requests_name_the_field() {
        assert!(parse_request(&json!({"messages": []}))
            .unwrap_err()
            .to_string()
            .contains("model"));
        assert!(parse_request(&json!({"model": "m"}))
            .unwrap_err()
            .to_string()
            .contains("messages"));
        let err =
            parse_request(&json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}))
                .unwrap_err();
        assert!(err.to_string().contains("wizard"));
        assert!(
            parse_request(&json!({"model": "m", "messages": [], "temperature": "hot"})).is_err()
        );
    }

    #[test]
    fn usage_separates_cached_and_reasoning_tokens() {
        let u = parse_usage(
            &json!({"prompt_tokens": 100, "completion_tokens": 40, "prompt_tokens_details": {"cached_tokens": 30}, "completion_tokens_details": {"reasoning_tokens": 25}}),
        );
        assert_eq!(
            u,
            Usage {
                input: 70,
                output: 40,
                cached_input: 30,
                cache_write: 0,
                reasoning: 25
            }
        );
        assert_eq!(parse_usage(&write_usage(&u)), u);
    }

    #[test]
    fn responses_round_trip() {
        let resp = ChatResponse {
            id: "r".into(),
            model: "m".into(),
            parts: vec![
                Part::Text("hi".into()),
                Part::ToolCall(ToolCall {
                    id: "c".into(),
                    name: "f".into(),
                    arguments: "{}".into(),
                }),
            ],
            finish: FinishReason::ToolCalls,
            usage: Usage {
                input: 1,
                output: 2,
                ..Usage::default()
            },
            usage_reported: true,
        };
        let written = serde_json::to_value(write_response(&resp, 0)).unwrap();
        assert_eq!(parse_response(&written).unwrap(), resp);
    }
}
