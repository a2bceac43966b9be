//! Each provider's answer, error and stream framing, as the providers send them.

use serde_json::{json, Value};

use crate::scenario::Scenario;

/// The provider family a request path belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `…/chat/completions`.
    OpenAi,
    /// `…/embeddings`.
    Embeddings,
    /// `…/messages`.
    Anthropic,
    /// `…/models/{m}:generateContent` / `:streamGenerateContent`.
    Gemini,
}

fn frame(event: Option<&str>, data: &str) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

fn usage_openai(s: &Scenario) -> Value {
    let (i, o) = (s.input_tokens(), s.output_tokens());
    json!({"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o,
        "prompt_tokens_details": {"cached_tokens": s.cached_input}, "completion_tokens_details": {"reasoning_tokens": s.reasoning}})
}

fn usage_anthropic(s: &Scenario) -> Value {
    json!({"input_tokens": s.input_tokens(), "output_tokens": s.output_tokens(),
        "cache_creation_input_tokens": s.cache_write, "cache_read_input_tokens": s.cached_input})
}

fn usage_gemini(s: &Scenario) -> Value {
    let (i, o) = (s.input_tokens(), s.output_tokens());
    let mut u = json!({"promptTokenCount": i, "candidatesTokenCount": o.saturating_sub(s.reasoning), "totalTokenCount": i + o});
    if s.cached_input > 0 {
        u["cachedContentTokenCount"] = json!(s.cached_input);
    }
    if s.reasoning > 0 {
        u["thoughtsTokenCount"] = json!(s.reasoning);
    }
    u
}

fn anthropic_stop(s: &Scenario) -> &'static str {
    match s.finish_kind() {
        "length" => "max_tokens",
        "tool_calls" => "tool_use",
        _ => "end_turn",
    }
}

fn gemini_finish(s: &Scenario) -> &'static str {
    if s.finish_kind() == "length" {
        "MAX_TOKENS"
    } else {
        "STOP"
    }
}

/// A complete (non-streaming) answer.
pub fn answer(family: Family, s: &Scenario, model: &str, body: &Value) -> Value {
    match family {
        Family::OpenAi => {
            let calls: Vec<Value> = s.tool_calls.iter().enumerate().map(|(i, (name, args))| {
                json!({"id": format!("call_fake_{}", i + 1), "type": "function", "function": {"name": name, "arguments": args.to_string()}})
            }).collect();
            let mut message = json!({"role": "assistant", "content": if s.text.is_empty() && !calls.is_empty() { Value::Null } else { json!(s.text) }, "refusal": null});
            if !calls.is_empty() {
                message["tool_calls"] = json!(calls);
            }
            json!({"id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": s.finish_kind(), "logprobs": null}], "usage": usage_openai(s)})
        }
        Family::Embeddings => {
            let inputs = match body.get("input") {
                Some(Value::Array(a)) => a.len(),
                _ => 1,
            };
            let data: Vec<Value> = (0..inputs)
                .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}))
                .collect();
            json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": s.input_tokens(), "total_tokens": s.input_tokens()}})
        }
        Family::Anthropic => {
            let mut content = Vec::new();
            if !s.text.is_empty() {
                content.push(json!({"type": "text", "text": s.text}));
            }
            for (i, (name, args)) in s.tool_calls.iter().enumerate() {
                content.push(json!({"type": "tool_use", "id": format!("toolu_fake_{}", i + 1), "name": name, "input": args}));
            }
            json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": content,
                "stop_reason": anthropic_stop(s), "stop_sequence": null, "usage": usage_anthropic(s)})
        }
        Family::Gemini => {
            let mut parts = Vec::new();
            if !s.text.is_empty() {
                parts.push(json!({"text": s.text}));
            }
            for (name, args) in &s.tool_calls {
                parts.push(json!({"functionCall": {"name": name, "args": args}}));
            }
            json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": gemini_finish(s), "index": 0}],
                "usageMetadata": usage_gemini(s), "modelVersion": model, "responseId": "fake-gemini"})
        }
    }
}

/// A stream, as complete SSE frames in order.
pub fn stream(family: Family, s: &Scenario, model: &str, include_usage: bool) -> Vec<String> {
    let mut out = Vec::new();
    match family {
        Family::OpenAi | Family::Embeddings => {
            let chunk = |delta: Value, finish: Value| {
                let mut c = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]});
                if include_usage {
                    c["usage"] = Value::Null;
                }
                frame(None, &c.to_string())
            };
            out.push(chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            ));
            for d in s.deltas() {
                out.push(chunk(json!({"content": d}), Value::Null));
            }
            for (i, (name, args)) in s.tool_calls.iter().enumerate() {
                out.push(chunk(json!({"tool_calls": [{"index": i, "id": format!("call_fake_{}", i + 1), "type": "function", "function": {"name": name, "arguments": ""}}]}), Value::Null));
                for f in Scenario::argument_fragments(args) {
                    out.push(chunk(
                        json!({"tool_calls": [{"index": i, "function": {"arguments": f}}]}),
                        Value::Null,
                    ));
                }
            }
            out.push(chunk(json!({}), json!(s.finish_kind())));
            if include_usage {
                let u = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model, "choices": [], "usage": usage_openai(s)});
                out.push(frame(None, &u.to_string()));
            }
            out.push(frame(None, "[DONE]"));
        }
        Family::Anthropic => {
            let mut start_usage = usage_anthropic(s);
            start_usage["output_tokens"] = json!(1);
            let message = json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": null, "stop_sequence": null, "usage": start_usage});
            out.push(frame(
                Some("message_start"),
                &json!({"type": "message_start", "message": message}).to_string(),
            ));
            out.push(frame(Some("ping"), r#"{"type": "ping"}"#));
            let mut index = 0;
            if !s.text.is_empty() {
                out.push(frame(Some("content_block_start"), &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}).to_string()));
                for d in s.deltas() {
                    out.push(frame(Some("content_block_delta"), &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": d}}).to_string()));
                }
                out.push(frame(
                    Some("content_block_stop"),
                    &json!({"type": "content_block_stop", "index": index}).to_string(),
                ));
                index += 1;
            }
            for (i, (name, args)) in s.tool_calls.iter().enumerate() {
                out.push(frame(Some("content_block_start"), &json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "tool_use", "id": format!("toolu_fake_{}", i + 1), "name": name, "input": {}}}).to_string()));
                for f in Scenario::argument_fragments(args) {
                    out.push(frame(Some("content_block_delta"), &json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": f}}).to_string()));
                }
                out.push(frame(
                    Some("content_block_stop"),
                    &json!({"type": "content_block_stop", "index": index}).to_string(),
                ));
                index += 1;
            }
            out.push(frame(Some("message_delta"), &json!({"type": "message_delta", "delta": {"stop_reason": anthropic_stop(s), "stop_sequence": null},
                "usage": {"output_tokens": s.output_tokens()}}).to_string()));
            out.push(frame(Some("message_stop"), r#"{"type": "message_stop"}"#));
        }
        Family::Gemini => {
            let deltas = s.deltas();
            let n = deltas.len();
            for (i, d) in deltas.into_iter().enumerate() {
                let mut c = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": d}]}, "index": 0}], "modelVersion": model, "responseId": "fake-gemini"});
                if i + 1 == n && s.tool_calls.is_empty() {
                    c["candidates"][0]["finishReason"] = json!(gemini_finish(s));
                    c["usageMetadata"] = usage_gemini(s);
                }
                out.push(frame(None, &c.to_string()));
            }
            if !s.tool_calls.is_empty() || n == 0 {
                let parts: Vec<Value> = s
                    .tool_calls
                    .iter()
                    .map(|(name, args)| json!({"functionCall": {"name": name, "args": args}}))
                    .collect();
                let parts = if parts.is_empty() {
                    vec![json!({"text": ""})]
                } else {
                    parts
                };
                let c = json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": gemini_finish(s), "index": 0}],
                    "usageMetadata": usage_gemini(s), "modelVersion": model, "responseId": "fake-gemini"});
                out.push(frame(None, &c.to_string()));
            }
        }
    }
    out
}

/// An error body in the family's shape.
pub fn error(family: Family, status: u16, message: &str) -> Value {
    match family {
        Family::Anthropic => {
            let kind = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        Family::Gemini => {
            let s = match status {
                400 => "INVALID_ARGUMENT",
                401 => "UNAUTHENTICATED",
                403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND",
                429 => "RESOURCE_EXHAUSTED",
                503 => "UNAVAILABLE",
                _ => "INTERNAL",
            };
            json!({"error": {"code": status, "message": message, "status": s}})
        }
        _ => {
            let kind = match status {
                401 => "authentication_error",
                429 => "rate_limit_exceeded",
                s if s >= 500 => "server_error",
                _ => "invalid_request_error",
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
        }
    }
}
