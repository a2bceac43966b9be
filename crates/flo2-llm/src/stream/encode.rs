//! Common events → the caller's stream format. One encoder per stream; it keeps what the format
//! repeats or brackets (ids, block indexes), so every event it writes is complete and valid.

use std::collections::HashMap;

use flo2_core::FailureKind;
use serde_json::{json, Value};

use super::sse::encode;
use crate::common::{FinishReason, StreamEvent, Usage};
use crate::translate::{anthropic, openai};

/// A complete answer as the events of a stream, for answering a streaming caller from a
/// complete answer (a `best` race must see every answer before it can choose one).
pub fn replay(response: &crate::common::ChatResponse) -> Vec<StreamEvent> {
    use crate::common::Part;
    let mut events = vec![StreamEvent::Start {
        id: response.id.clone(),
        model: response.model.clone(),
    }];
    let mut tool_index = 0;
    for part in &response.parts {
        match part {
            Part::Text(text) => events.push(StreamEvent::Text(text.clone())),
            Part::ToolCall(call) => {
                events.push(StreamEvent::ToolCallStart {
                    index: tool_index,
                    id: call.id.clone(),
                    name: call.name.clone(),
                });
                events.push(StreamEvent::ToolCallArgs {
                    index: tool_index,
                    fragment: call.arguments.clone(),
                });
                tool_index += 1;
            }
            Part::Image(_) | Part::ToolResult(_) => {}
        }
    }
    events.push(StreamEvent::Finish(response.finish));
    events.push(StreamEvent::Usage(response.usage));
    events
}

/// Encodes a stream for an OpenAI Chat Completions caller.
#[derive(Debug)]
pub struct OpenAiEncoder {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    started: bool,
    usage: Usage,
    cost_usd: Option<String>,
}

/// The field flo2 adds to a stream's final usage object: the call's exact cost in USD, as a
/// decimal string (JSON numbers would lose digits in most clients).
pub const COST_FIELD: &str = "flo2_cost_usd";

/// Adds [`COST_FIELD`] to the `usage` object of an event's JSON data; `None` if it has none.
pub fn add_cost(data: &str, cost_usd: &str) -> Option<String> {
    let mut value: Value = serde_json::from_str(data).ok()?;
    let usage = value.get_mut("usage")?.as_object_mut()?;
    usage.insert(COST_FIELD.to_owned(), Value::String(cost_usd.to_owned()));
    Some(value.to_string())
}

fn usage_with_cost(mut usage: Value, cost_usd: Option<&String>) -> Value {
    if let (Some(cost), Some(map)) = (cost_usd, usage.as_object_mut()) {
        map.insert(COST_FIELD.to_owned(), Value::String(cost.clone()));
    }
    usage
}

impl OpenAiEncoder {
    /// `include_usage` mirrors the caller's `stream_options.include_usage`.
    pub fn new(model: &str, created: i64, include_usage: bool) -> Self {
        Self {
            id: String::new(),
            model: model.to_owned(),
            created,
            include_usage,
            started: false,
            usage: Usage::default(),
            cost_usd: None,
        }
    }

    /// The cost to put in the final usage chunk.
    pub fn set_cost_usd(&mut self, cost_usd: String) {
        self.cost_usd = Some(cost_usd);
    }

    fn chunk(&self, delta: Value, finish: Option<&str>, out: &mut String) {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        encode(out, None, &chunk.to_string());
    }

    fn ensure_started(&mut self, out: &mut String) {
        if !self.started {
            self.started = true;
            if self.id.is_empty() {
                self.id = "chatcmpl-flo2".to_owned();
            }
            self.chunk(json!({"role": "assistant", "content": ""}), None, out);
        }
    }

    /// Appends the SSE for one common event.
    pub fn event(&mut self, event: &StreamEvent, out: &mut String) {
        match event {
            StreamEvent::Start { id, .. } => {
                if !id.is_empty() {
                    self.id = if id.starts_with("chatcmpl") {
                        id.clone()
                    } else {
                        format!("chatcmpl-{id}")
                    };
                }
                self.ensure_started(out);
            }
            StreamEvent::Text(t) => {
                self.ensure_started(out);
                self.chunk(json!({"content": t}), None, out);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                self.chunk(json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}), None, out);
            }
            StreamEvent::ToolCallArgs { index, fragment } => {
                self.ensure_started(out);
                self.chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
                    None,
                    out,
                );
            }
            StreamEvent::Finish(reason) => {
                self.ensure_started(out);
                self.chunk(json!({}), Some(openai::finish_name(*reason)), out);
            }
            StreamEvent::Usage(u) => self.usage = *u,
        }
    }

    /// Appends the end of a complete stream: the usage chunk (when asked for) and `[DONE]`.
    pub fn finish(&mut self, out: &mut String) {
        self.ensure_started(out);
        if self.include_usage {
            let chunk = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": usage_with_cost(openai::write_usage(&self.usage), self.cost_usd.as_ref()),
            });
            encode(out, None, &chunk.to_string());
        }
        encode(out, None, "[DONE]");
    }

    /// Appends an error event ending a failed stream (the OpenAI SDK raises it as an APIError).
    pub fn error(&mut self, message: &str, out: &mut String) {
        let body = json!({"error": {"message": message, "type": "server_error", "param": null, "code": FailureKind::UpstreamError.as_str()}});
        encode(out, None, &body.to_string());
    }

    /// Ends the stream with an error event saying the upstream stopped sending in time.
    pub fn timeout(&mut self, message: &str, out: &mut String) {
        let body = json!({"error": {"message": message, "type": "server_error", "param": null, "code": FailureKind::Timeout.as_str()}});
        encode(out, None, &body.to_string());
    }
}

/// Encodes a stream for an Anthropic Messages caller.
#[derive(Debug)]
pub struct AnthropicEncoder {
    id: String,
    model: String,
    started: bool,
    open: Option<u64>,
    open_is_text: bool,
    next_block: u64,
    tool_blocks: HashMap<usize, u64>,
    finish: Option<FinishReason>,
    usage: Usage,
    cost_usd: Option<String>,
}

impl AnthropicEncoder {
    /// An encoder for a stream answering `model`.
    pub fn new(model: &str) -> Self {
        Self {
            id: String::new(),
            model: model.to_owned(),
            started: false,
            open: None,
            open_is_text: false,
            next_block: 0,
            tool_blocks: HashMap::new(),
            finish: None,
            usage: Usage::default(),
            cost_usd: None,
        }
    }

    /// The cost to put in the final `message_delta` usage.
    pub fn set_cost_usd(&mut self, cost_usd: String) {
        self.cost_usd = Some(cost_usd);
    }

    fn ensure_started(&mut self, out: &mut String) {
        if self.started {
            return;
        }
        self.started = true;
        if self.id.is_empty() {
            self.id = "msg_flo2".to_owned();
        }
        let start = json!({"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": anthropic::write_usage(&self.usage),
        }});
        encode(out, Some("message_start"), &start.to_string());
    }

    fn close_block(&mut self, out: &mut String) {
        if let Some(index) = self.open.take() {
            encode(
                out,
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": index}).to_string(),
            );
        }
    }

    fn open_block(&mut self, block: Value, is_text: bool, out: &mut String) -> u64 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some(index);
        self.open_is_text = is_text;
        encode(
            out,
            Some("content_block_start"),
            &json!({"type": "content_block_start", "index": index, "content_block": block})
                .to_string(),
        );
        index
    }

    /// Appends the SSE for one common event.
    pub fn event(&mut self, event: &StreamEvent, out: &mut String) {
        match event {
            StreamEvent::Start { id, .. } => {
                if !id.is_empty() {
                    self.id = if id.starts_with("msg") {
                        id.clone()
                    } else {
                        format!("msg_{id}")
                    };
                }
                self.ensure_started(out);
            }
            StreamEvent::Text(t) => {
                self.ensure_started(out);
                let index = match self.open {
                    Some(i) if self.open_is_text => i,
                    _ => self.open_block(json!({"type": "text", "text": ""}), true, out),
                };
                encode(out, Some("content_block_delta"), &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": t}}).to_string());
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                let block = self.open_block(
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    false,
                    out,
                );
                self.tool_blocks.insert(*index, block);
            }
            StreamEvent::ToolCallArgs { index, fragment } => {
                // Blocks cannot be reopened; providers stream each call's arguments before the
                // next call starts, so a fragment always belongs to the open block.
                if let Some(&block) = self.tool_blocks.get(index) {
                    if self.open == Some(block) {
                        encode(out, Some("content_block_delta"), &json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": fragment}}).to_string());
                    }
                }
            }
            StreamEvent::Finish(reason) => self.finish = Some(*reason),
            StreamEvent::Usage(u) => self.usage = *u,
        }
    }

    /// Appends the end of a complete stream: closing block, `message_delta` with the stop reason
    /// and final usage, `message_stop`.
    pub fn finish(&mut self, out: &mut String) {
        self.ensure_started(out);
        self.close_block(out);
        let delta = json!({"type": "message_delta",
            "delta": {"stop_reason": anthropic::stop_name(self.finish.unwrap_or(FinishReason::Stop)), "stop_sequence": null},
            "usage": usage_with_cost(anthropic::write_usage(&self.usage), self.cost_usd.as_ref())});
        encode(out, Some("message_delta"), &delta.to_string());
        encode(
            out,
            Some("message_stop"),
            &json!({"type": "message_stop"}).to_string(),
        );
    }

    /// Appends an error event ending a failed stream.
    pub fn error(&mut self, message: &str, out: &mut String) {
        let body = json!({"type": "error", "error": {"type": "api_error", "message": message}});
        encode(out, Some("error"), &body.to_string());
    }

    /// Ends the stream with Anthropic's `timeout_error` event: the upstream stopped sending in
    /// time.
    pub fn timeout(&mut self, message: &str, out: &mut String) {
        let body = json!({"type": "error", "error": {"type": "timeout_error", "message": message}});
        encode(out, Some("error"), &body.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::WireFamily;
    use crate::stream::decode::StreamDecoder;
    use crate::stream::sse::SseDecoder;

    fn events() -> Vec<StreamEvent> {
        vec![
            StreamEvent::Start {
                id: "abc".into(),
                model: "m".into(),
            },
            StreamEvent::Text("Hé".into()),
            StreamEvent::Text("llo 👋".into()),
            StreamEvent::ToolCallStart {
                index: 0,
                id: "c1".into(),
                name: "f".into(),
            },
            StreamEvent::ToolCallArgs {
                index: 0,
                fragment: "{\"a\"".into(),
            },
            StreamEvent::ToolCallArgs {
                index: 0,
                fragment: ":1}".into(),
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "c2".into(),
                name: "g".into(),
            },
            StreamEvent::ToolCallArgs {
                index: 1,
                fragment: "{}".into(),
            },
            StreamEvent::Finish(FinishReason::ToolCalls),
            StreamEvent::Usage(Usage {
                input: 3,
                output: 5,
                ..Usage::default()
            }),
        ]
    }

    /// Encoding then decoding in the same format gives the same events back.
    fn round_trip(family: WireFamily, text: &str) -> Vec<StreamEvent> {
        let mut sse = SseDecoder::new();
        let mut raw = Vec::new();
        sse.feed(text.as_bytes(), &mut raw).unwrap();
        let mut d = StreamDecoder::new(family, "m");
        let mut got = Vec::new();
        let mut done = false;
        for e in &raw {
            let out = d.decode(e);
            assert_eq!(out.error, None, "{e:?}");
            got.extend(out.events);
            done |= out.done;
        }
        assert!(done, "the stream ends properly");
        got
    }

    #[test]
    fn openai_streams_round_trip() {
        let mut enc = OpenAiEncoder::new("m", 0, true);
        let mut text = String::new();
        for e in events() {
            enc.event(&e, &mut text);
        }
        enc.finish(&mut text);
        let got = round_trip(WireFamily::OpenAi, &text);
        let mut want = events();
        want[0] = StreamEvent::Start {
            id: "chatcmpl-abc".into(),
            model: "m".into(),
        };
        // The usage chunk comes after the finish chunk; OpenAI carries no input/output split loss.
        assert_eq!(got, want);
    }

    #[test]
    fn anthropic_streams_round_trip_with_well_formed_blocks() {
        let mut enc = AnthropicEncoder::new("m");
        let mut text = String::new();
        for e in events() {
            enc.event(&e, &mut text);
        }
        enc.finish(&mut text);
        let starts = text.matches("event: content_block_start").count();
        let stops = text.matches("event: content_block_stop").count();
        assert_eq!(
            (starts, stops),
            (3, 3),
            "text block + two tool blocks, each closed:\n{text}"
        );
        let got = round_trip(WireFamily::Anthropic, &text);
        assert_eq!(
            got[0],
            StreamEvent::Start {
                id: "msg_abc".into(),
                model: "m".into()
            }
        );
        assert_eq!(got[1..8], events()[1..8]);
        assert!(got.contains(&StreamEvent::Finish(FinishReason::ToolCalls)));
        assert_eq!(
            got.last(),
            Some(&StreamEvent::Usage(Usage {
                input: 3,
                output: 5,
                ..Usage::default()
            }))
        );
    }
}
