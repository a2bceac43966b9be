//! The common model ⇄ Google Gemini `generateContent` (requests go out, answers come back).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::{arguments_value, str_at, u64_at, InlineImage};
use crate::common::{
    invalid, unsupported, ChatRequest, ChatResponse, FinishReason, Image, Part, ResponseFormat,
    Role, ToolCall, ToolChoice, TranslateError, Usage,
};

/// JSON Schema keywords Gemini's `parameters` / `responseSchema` (an OpenAPI subset) rejects.
const UNSUPPORTED_SCHEMA_KEYS: &[&str] = &[
    "$schema",
    "additionalProperties",
    "$id",
    "$defs",
    "definitions",
    "strict",
];

fn clean_schema(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !UNSUPPORTED_SCHEMA_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), clean_schema(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean_schema).collect()),
        other => other.clone(),
    }
}

fn image_part(img: &Image) -> Result<Value, TranslateError> {
    match super::inline_image(img)? {
        InlineImage::Base64 { media_type, data } => {
            Ok(json!({"inlineData": {"mimeType": media_type, "data": data}}))
        }
        // Gemini reads only its own file URIs; fetching arbitrary URLs on the caller's behalf
        // would make flo2 an open fetcher.
        InlineImage::Url(_) => Err(unsupported(
            "image URLs (send the image as base64)",
            "gemini",
        )),
    }
}

/// Writes a common request as a Gemini `generateContent` body (the model goes in the URL).
pub fn write_request(req: &ChatRequest) -> Result<Value, TranslateError> {
    // Gemini's function responses name the function, not the call: remember names by call id.
    let names: HashMap<&str, &str> = req
        .messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| {
            if let Part::ToolCall(c) = p {
                Some((c.id.as_str(), c.name.as_str()))
            } else {
                None
            }
        })
        .collect();
    let mut contents = Vec::new();
    for m in &req.messages {
        let mut parts = Vec::new();
        for p in &m.parts {
            match p {
                Part::Text(t) if t.is_empty() => {}
                Part::Text(t) => parts.push(json!({"text": t})),
                Part::Image(img) => parts.push(image_part(img)?),
                Part::ToolCall(c) => parts.push(json!({"functionCall": {"name": c.name, "args": arguments_value(&c.arguments)}})),
                Part::ToolResult(r) => {
                    let name = names
                        .get(r.call_id.as_str())
                        .ok_or_else(|| invalid(format!("tool result {:?} answers no earlier tool call", r.call_id)))?;
                    let text: Vec<&str> = r.content.iter().filter_map(|p| if let Part::Text(t) = p { Some(t.as_str()) } else { None }).collect();
                    let key = if r.is_error { "error" } else { "content" };
                    parts.push(json!({"functionResponse": {"name": name, "response": {key: text.join("\n")}}}));
                }
            }
        }
        if parts.is_empty() {
            parts.push(json!({"text": ""}));
        }
        let role = if m.role == Role::User {
            "user"
        } else {
            "model"
        };
        contents.push(json!({"role": role, "parts": parts}));
    }
    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if !req.system.is_empty() {
        let parts: Vec<Value> = req.system.iter().map(|s| json!({"text": s})).collect();
        out.insert("systemInstruction".into(), json!({"parts": parts}));
    }
    let mut config = Map::new();
    if let Some(n) = req.max_tokens {
        config.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        config.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        config.insert("topP".into(), json!(p));
    }
    if !req.stop.is_empty() {
        config.insert("stopSequences".into(), json!(req.stop));
    }
    match &req.response_format {
        None => {}
        Some(ResponseFormat::JsonObject) => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            config.insert("responseMimeType".into(), json!("application/json"));
            config.insert("responseSchema".into(), clean_schema(schema));
        }
    }
    if !config.is_empty() {
        out.insert("generationConfig".into(), Value::Object(config));
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut d = json!({"name": t.name, "parameters": clean_schema(&t.parameters)});
                if let Some(desc) = &t.description {
                    d["description"] = json!(desc);
                }
                d
            })
            .collect();
        out.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    if let Some(choice) = &req.tool_choice {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Named(n) => json!({"mode": "ANY", "allowedFunctionNames": [n]}),
        };
        out.insert(
            "toolConfig".into(),
            json!({"functionCallingConfig": config}),
        );
    }
    Ok(Value::Object(out))
}

/// Reads Gemini usage (`promptTokenCount` includes cached tokens; thoughts are billed as output).
pub fn parse_usage(u: &Value) -> Usage {
    let prompt = u64_at(u, "promptTokenCount").unwrap_or(0);
    let cached = u64_at(u, "cachedContentTokenCount").unwrap_or(0);
    let thoughts = u64_at(u, "thoughtsTokenCount").unwrap_or(0);
    Usage {
        input: prompt.saturating_sub(cached),
        output: u64_at(u, "candidatesTokenCount").unwrap_or(0) + thoughts,
        cached_input: cached,
        cache_write: 0,
        reasoning: thoughts,
    }
}

/// Maps a Gemini finish reason.
pub fn parse_finish(reason: Option<&str>) -> Option<FinishReason> {
    reason.map(|r| match r {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        _ => FinishReason::Stop,
    })
}

/// One Gemini answer (a whole response, or one streamed chunk): its text and function calls,
/// finish reason and usage. Gemini gives calls no ids; `next_call` numbers them.
pub struct Chunk {
    /// Text and tool calls in order.
    pub parts: Vec<Part>,
    /// Set on the last chunk.
    pub finish: Option<FinishReason>,
    /// Usage, when present.
    pub usage: Option<Usage>,
    /// The model version that answered.
    pub model: Option<String>,
}

/// Parses a Gemini response body or stream chunk.
pub fn parse_chunk(body: &Value, next_call: &mut usize) -> Chunk {
    let candidate = body.get("candidates").and_then(|c| c.get(0));
    let mut parts = Vec::new();
    for p in candidate
        .and_then(|c| c.get("content"))
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // Thought summaries are not part of the answer.
        if p.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = str_at(p, "text") {
            parts.push(Part::Text(t.to_owned()));
        } else if let Some(f) = p.get("functionCall") {
            *next_call += 1;
            parts.push(Part::ToolCall(ToolCall {
                id: str_at(f, "id").map_or_else(|| format!("call_{next_call}"), str::to_owned),
                name: str_at(f, "name").unwrap_or_default().to_owned(),
                arguments: f
                    .get("args")
                    .map_or_else(|| "{}".to_owned(), Value::to_string),
            }));
        }
    }
    Chunk {
        parts,
        finish: parse_finish(candidate.and_then(|c| str_at(c, "finishReason"))),
        usage: body
            .get("usageMetadata")
            .filter(|u| !u.is_null())
            .map(parse_usage),
        model: str_at(body, "modelVersion").map(str::to_owned),
    }
}

/// Parses a whole Gemini response.
pub fn parse_response(body: &Value, model: &str) -> Result<ChatResponse, TranslateError> {
    if body.get("candidates").is_none() {
        return Err(invalid("upstream answer has no candidates"));
    }
    let mut n = 0;
    let chunk = parse_chunk(body, &mut n);
    let has_calls = chunk.parts.iter().any(|p| matches!(p, Part::ToolCall(_)));
    let finish = match chunk.finish {
        Some(FinishReason::Stop) | None if has_calls => FinishReason::ToolCalls,
        Some(f) => f,
        None => FinishReason::Stop,
    };
    Ok(ChatResponse {
        id: str_at(body, "responseId").map_or_else(|| format!("gemini-{model}"), str::to_owned),
        model: chunk.model.unwrap_or_else(|| model.to_owned()),
        parts: chunk.parts,
        finish,
        usage_reported: chunk.usage.is_some(),
        usage: chunk.usage.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{Message, ToolResult};

    #[test]
    fn tool_results_carry_the_function_name_and_images_go_inline() {
        let req = ChatRequest {
            model: "gemini-2.5-flash".into(),
            system: vec!["sys".into()],
            messages: vec![
                Message {
                    role: Role::User,
                    parts: vec![
                        Part::Text("hi".into()),
                        Part::Image(Image::Base64 {
                            media_type: "image/png".into(),
                            data: "AA".into(),
                        }),
                    ],
                },
                Message {
                    role: Role::Assistant,
                    parts: vec![Part::ToolCall(ToolCall {
                        id: "c1".into(),
                        name: "f".into(),
                        arguments: "{\"a\":1}".into(),
                    })],
                },
                Message {
                    role: Role::User,
                    parts: vec![Part::ToolResult(ToolResult {
                        call_id: "c1".into(),
                        content: vec![Part::Text("r".into())],
                        is_error: false,
                    })],
                },
            ],
            tool_choice: Some(ToolChoice::Named("f".into())),
            ..ChatRequest::default()
        };
        let out = write_request(&req).unwrap();
        assert_eq!(out["systemInstruction"]["parts"][0]["text"], "sys");
        assert_eq!(
            out["contents"][0]["parts"][1]["inlineData"]["mimeType"],
            "image/png"
        );
        assert_eq!(out["contents"][1]["role"], "model");
        assert_eq!(
            out["contents"][1]["parts"][0]["functionCall"]["args"]["a"],
            1
        );
        assert_eq!(
            out["contents"][2]["parts"][0]["functionResponse"]["name"],
            "f"
        );
        assert_eq!(
            out["toolConfig"]["functionCallingConfig"]["allowedFunctionNames"][0],
            "f"
        );
    }

    #[test]
    fn remote_image_urls_are_refused() {
        let req = ChatRequest {
            messages: vec![Message {
                role: Role::User,
                parts: vec![Part::Image(Image::Url("https://x/y.png".into()))],
            }],
            ..ChatRequest::default()
        };
        assert!(matches!(
            write_request(&req),
            Err(TranslateError::Unsupported(_))
        ));
    }

    #[test]
    fn responses_with_calls_finish_with_tool_calls() {
        let body = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "x"}, {"functionCall": {"name": "f", "args": {"q": 1}}}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 3, "cachedContentTokenCount": 4, "thoughtsTokenCount": 2}, "modelVersion": "gemini-2.5-flash"});
        let r = parse_response(&body, "gemini-2.5-flash").unwrap();
        assert_eq!(r.finish, FinishReason::ToolCalls);
        assert_eq!(
            r.usage,
            Usage {
                input: 6,
                output: 5,
                cached_input: 4,
                cache_write: 0,
                reasoning: 2
            }
        );
        assert!(
            matches!(&r.parts[1], Part::ToolCall(c) if c.id == "call_1" && c.arguments == "{\"q\":1}")
        );
    }

    #[test]
    fn schemas_lose_keywords_gemini_rejects() {
        let s = clean_schema(
            &json!({"type": "object", "additionalProperties": false, "$schema": "x", "properties": {"a": {"type": "string", "additionalProperties": true}}}),
        );
        assert_eq!(
            s,
            json!({"type": "object", "properties": {"a": {"type": "string"}}})
        );
    }
}
