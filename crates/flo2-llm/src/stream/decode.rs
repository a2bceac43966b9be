//! Upstream streams → common events. One decoder per stream; it keeps the state each format
//! needs (Anthropic block indexes → tool-call indexes, Gemini's id-less calls).

use std::collections::HashMap;

use serde_json::Value;

use super::sse::SseEvent;
use crate::common::{FinishReason, Part, StreamEvent, Usage, UsageReport};
use crate::providers::WireFamily;
use crate::translate::{anthropic, gemini, openai, str_at};

/// What one upstream event meant.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    /// Common events, in order.
    pub events: Vec<StreamEvent>,
    /// The upstream said the stream is complete.
    pub done: bool,
    /// The upstream reported an error inside the stream (its message).
    pub error: Option<String>,
}

/// Decodes one upstream stream.
#[derive(Debug)]
pub struct StreamDecoder {
    family: WireFamily,
    started: bool,
    /// Anthropic content-block index → tool-call index.
    anthropic_tools: HashMap<u64, usize>,
    /// OpenAI tool-call index → whether its start was seen.
    openai_tools: HashMap<u64, usize>,
    next_tool: usize,
    usage: Usage,
    /// Which counts the stream has reported (Anthropic's `message_start` reports the input and
    /// only a placeholder for the output).
    input_reported: bool,
    output_reported: bool,
    model: String,
}

impl StreamDecoder {
    /// A decoder for a stream in `family`'s format, for a request to `model`.
    pub fn new(family: WireFamily, model: &str) -> Self {
        Self {
            family,
            started: false,
            anthropic_tools: HashMap::new(),
            openai_tools: HashMap::new(),
            next_tool: 0,
            usage: Usage::default(),
            input_reported: false,
            output_reported: false,
            model: model.to_owned(),
        }
    }

    /// Usage seen so far (the last report wins; Anthropic's is merged from start and delta),
    /// with which counts were reported.
    pub fn usage(&self) -> UsageReport {
        UsageReport {
            usage: self.usage,
            input_reported: self.input_reported,
            output_reported: self.output_reported,
        }
    }

    /// Translates one SSE event. Unparseable JSON is reported as an error, never a panic.
    pub fn decode(&mut self, event: &SseEvent) -> Decoded {
        let mut out = Decoded::default();
        if self.family == WireFamily::OpenAi && event.data.trim() == "[DONE]" {
            out.done = true;
            return out;
        }
        if self.family == WireFamily::OpenAi {
            // The common case, read without building a tree; an unusual shape takes the
            // tolerant path below.
            if let Ok(chunk) = serde_json::from_str::<openai_chunk::Chunk<'_>>(&event.data) {
                self.openai(chunk, &mut out);
                return out;
            }
        }
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            out.error = Some("upstream sent a malformed stream event".into());
            return out;
        };
        match self.family {
            WireFamily::OpenAi => self.openai(openai_chunk::Chunk::read(&data), &mut out),
            WireFamily::Anthropic => self.anthropic(event.event.as_deref(), &data, &mut out),
            WireFamily::Gemini => self.gemini(&data, &mut out),
        }
        out
    }

    fn start(&mut self, id: &str, model: Option<&str>, out: &mut Decoded) {
        if !self.started {
            self.started = true;
            out.events.push(StreamEvent::Start {
                id: id.to_owned(),
                model: model.unwrap_or(&self.model).to_owned(),
            });
        }
    }

    fn openai(&mut self, chunk: openai_chunk::Chunk<'_>, out: &mut Decoded) {
        if let Some(err) = &chunk.error {
            out.error = Some(
                str_at(err, "message")
                    .unwrap_or("upstream error")
                    .to_owned(),
            );
            return;
        }
        self.start(
            chunk.id.as_deref().unwrap_or_default(),
            chunk.model.as_deref(),
            out,
        );
        if let Some(choice) = chunk.choices.and_then(|c| c.0) {
            let delta = choice.delta.unwrap_or_default();
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                out.events.push(StreamEvent::Text(text.into_owned()));
            }
            for call in delta.tool_calls.into_iter().flatten() {
                let upstream_index = call.index.unwrap_or(0);
                let function = call.function.unwrap_or_default();
                let index = match self.openai_tools.get(&upstream_index) {
                    Some(i) => *i,
                    None => {
                        let i = self.next_tool;
                        self.next_tool += 1;
                        self.openai_tools.insert(upstream_index, i);
                        out.events.push(StreamEvent::ToolCallStart {
                            index: i,
                            id: call.id.unwrap_or_default().into_owned(),
                            name: function.name.unwrap_or_default().into_owned(),
                        });
                        i
                    }
                };
                if let Some(args) = function.arguments.filter(|a| !a.is_empty()) {
                    out.events.push(StreamEvent::ToolCallArgs {
                        index,
                        fragment: args.into_owned(),
                    });
                }
            }
            if let Some(reason) = choice.finish_reason {
                out.events
                    .push(StreamEvent::Finish(openai::parse_finish(Some(&reason))));
            }
        }
        if let Some(u) = &chunk.usage {
            self.usage = u.openai();
            self.input_reported = true;
            self.output_reported = true;
            out.events.push(StreamEvent::Usage(self.usage));
        }
    }

    fn anthropic(&mut self, name: Option<&str>, data: &Value, out: &mut Decoded) {
        let kind = str_at(data, "type").or(name).unwrap_or_default();
        match kind {
            "message_start" => {
                let message = data.get("message").unwrap_or(&Value::Null);
                self.start(
                    str_at(message, "id").unwrap_or_default(),
                    str_at(message, "model"),
                    out,
                );
                if let Some(u) = message.get("usage").filter(|u| !u.is_null()) {
                    self.usage = anthropic::parse_usage(u);
                    // Its `output_tokens` is a placeholder (1): the count comes with `message_delta`.
                    self.input_reported = true;
                }
            }
            "content_block_start" => {
                let block = data.get("content_block").unwrap_or(&Value::Null);
                if str_at(block, "type") == Some("tool_use") {
                    let i = self.next_tool;
                    self.next_tool += 1;
                    self.anthropic_tools
                        .insert(data.get("index").and_then(Value::as_u64).unwrap_or(0), i);
                    out.events.push(StreamEvent::ToolCallStart {
                        index: i,
                        id: str_at(block, "id").unwrap_or_default().to_owned(),
                        name: str_at(block, "name").unwrap_or_default().to_owned(),
                    });
                } else if let Some(text) = str_at(block, "text").filter(|t| !t.is_empty()) {
                    out.events.push(StreamEvent::Text(text.to_owned()));
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta").unwrap_or(&Value::Null);
                match str_at(delta, "type") {
                    Some("text_delta") => {
                        if let Some(t) = str_at(delta, "text") {
                            out.events.push(StreamEvent::Text(t.to_owned()));
                        }
                    }
                    Some("input_json_delta") => {
                        let block = data.get("index").and_then(Value::as_u64).unwrap_or(0);
                        if let (Some(&index), Some(fragment)) = (
                            self.anthropic_tools.get(&block),
                            str_at(delta, "partial_json"),
                        ) {
                            if !fragment.is_empty() {
                                out.events.push(StreamEvent::ToolCallArgs {
                                    index,
                                    fragment: fragment.to_owned(),
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = data.get("delta").and_then(|d| str_at(d, "stop_reason")) {
                    out.events
                        .push(StreamEvent::Finish(anthropic::parse_stop(Some(reason))));
                }
                if let Some(u) = data.get("usage").filter(|u| !u.is_null()) {
                    // The delta carries cumulative output, and sometimes input, counts.
                    let delta = anthropic::parse_usage(u);
                    self.usage.output = delta.output;
                    self.output_reported = true;
                    if u.get("input_tokens").is_some_and(|v| !v.is_null()) {
                        self.usage.input = delta.input;
                        self.usage.cached_input = delta.cached_input;
                        self.usage.cache_write = delta.cache_write;
                        self.input_reported = true;
                    }
                    out.events.push(StreamEvent::Usage(self.usage));
                }
            }
            "message_stop" => out.done = true,
            "error" => {
                let err = data.get("error").unwrap_or(&Value::Null);
                out.error = Some(
                    str_at(err, "message")
                        .unwrap_or("upstream error")
                        .to_owned(),
                );
            }
            _ => {}
        }
    }

    fn gemini(&mut self, data: &Value, out: &mut Decoded) {
        if let Some(err) = data.get("error") {
            out.error = Some(
                str_at(err, "message")
                    .unwrap_or("upstream error")
                    .to_owned(),
            );
            return;
        }
        let mut calls = self.next_tool;
        let chunk = gemini::parse_chunk(data, &mut calls);
        let id = str_at(data, "responseId")
            .map_or_else(|| format!("gemini-{}", self.model), str::to_owned);
        self.start(&id, chunk.model.as_deref(), out);
        let mut saw_call = false;
        for part in chunk.parts {
            match part {
                Part::Text(t) if !t.is_empty() => out.events.push(StreamEvent::Text(t)),
                Part::ToolCall(c) => {
                    saw_call = true;
                    let index = self.next_tool;
                    self.next_tool += 1;
                    out.events.push(StreamEvent::ToolCallStart {
                        index,
                        id: c.id,
                        name: c.name,
                    });
                    out.events.push(StreamEvent::ToolCallArgs {
                        index,
                        fragment: c.arguments,
                    });
                }
                _ => {}
            }
        }
        if let Some(u) = chunk.usage {
            self.usage = u;
            self.input_reported = true;
            self.output_reported = true;
            out.events.push(StreamEvent::Usage(u));
        }
        if let Some(finish) = chunk.finish {
            let finish = if finish == FinishReason::Stop && (saw_call || self.next_tool > 0) {
                FinishReason::ToolCalls
            } else {
                finish
            };
            out.events.push(StreamEvent::Finish(finish));
            // Gemini has no terminal event: the chunk with a finish reason is the last.
            out.done = true;
        }
    }
}

/// The parts of an OpenAI stream chunk that decoding reads.
///
/// A chunk is deserialized straight into these borrowed views: strings without escapes point
/// into the event's text, and what is not read (`object`, `created`, `logprobs`, every choice
/// after the first) is skipped without being built. Parsing every chunk into a `Value` tree and
/// freeing it again was most of a relayed stream's cost (callgrind, 2026-12-02). A chunk whose
/// fields have unexpected types (a number where text belongs) fails this strict reading; it is
/// then parsed as a `Value` and read leniently by [`Chunk::read`], as every chunk was before.
mod openai_chunk {
    use std::borrow::Cow;
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
    use serde::Deserialize;
    use serde_json::Value;

    use crate::reported_usage::ReportedUsage;
    use crate::translate::str_at;

    #[derive(Default, Deserialize)]
    pub(super) struct Chunk<'a> {
        #[serde(borrow, default)]
        pub id: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        pub model: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        pub choices: Option<First<Choice<'a>>>,
        /// Absent and `null` alike are `None`.
        #[serde(default)]
        pub usage: Option<ReportedUsage>,
        #[serde(default)]
        pub error: Option<Value>,
    }

    #[derive(Default, Deserialize)]
    pub(super) struct Choice<'a> {
        #[serde(borrow, default)]
        pub delta: Option<Delta<'a>>,
        #[serde(borrow, default)]
        pub finish_reason: Option<Cow<'a, str>>,
    }

    #[derive(Default, Deserialize)]
    pub(super) struct Delta<'a> {
        #[serde(borrow, default)]
        pub content: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        pub tool_calls: Option<Vec<ToolCall<'a>>>,
    }

    #[derive(Default, Deserialize)]
    pub(super) struct ToolCall<'a> {
        #[serde(default)]
        pub index: Option<u64>,
        #[serde(borrow, default)]
        pub id: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        pub function: Option<Function<'a>>,
    }

    #[derive(Default, Deserialize)]
    pub(super) struct Function<'a> {
        #[serde(borrow, default)]
        pub name: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        pub arguments: Option<Cow<'a, str>>,
    }

    /// The first element of an array (the rest skipped), without collecting a `Vec`.
    pub(super) struct First<T>(pub Option<T>);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct FirstVisitor<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstVisitor<T> {
                type Value = First<T>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an array")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<First<T>, A::Error> {
                    let first = seq.next_element()?;
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(First(first))
                }
            }
            d.deserialize_seq(FirstVisitor(PhantomData))
        }
    }

    fn text<'a>(v: &'a Value, key: &str) -> Option<Cow<'a, str>> {
        str_at(v, key).map(Cow::Borrowed)
    }

    fn present(v: &Value, key: &str) -> Option<Value> {
        v.get(key).filter(|u| !u.is_null()).cloned()
    }

    impl<'a> Chunk<'a> {
        /// Reads a chunk of any shape: a field of an unexpected type counts as absent.
        pub fn read(v: &'a Value) -> Self {
            let choice = v.get("choices").and_then(|c| c.get(0)).map(|c| {
                let delta = c.get("delta").map(|d| Delta {
                    content: text(d, "content"),
                    tool_calls: d.get("tool_calls").and_then(Value::as_array).map(|calls| {
                        calls
                            .iter()
                            .map(|call| ToolCall {
                                index: call.get("index").and_then(Value::as_u64),
                                id: text(call, "id"),
                                function: call.get("function").map(|f| Function {
                                    name: text(f, "name"),
                                    arguments: text(f, "arguments"),
                                }),
                            })
                            .collect()
                    }),
                });
                Choice {
                    delta,
                    finish_reason: text(c, "finish_reason"),
                }
            });
            Chunk {
                id: text(v, "id"),
                model: text(v, "model"),
                choices: Some(First(choice)),
                // From a tree every shape reads (no field can repeat in it).
                usage: v
                    .get("usage")
                    .filter(|u| !u.is_null())
                    .map(|u| ReportedUsage::deserialize(u).unwrap_or_default()),
                error: present(v, "error"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn openai_tool_call_fragments_keep_their_index() {
        let mut d = StreamDecoder::new(WireFamily::OpenAi, "m");
        let a = d.decode(&ev(None, r#"{"id":"x","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":""}}]}}]}"#));
        assert_eq!(
            a.events[1],
            StreamEvent::ToolCallStart {
                index: 0,
                id: "c".into(),
                name: "f".into()
            }
        );
        let b = d.decode(&ev(None, r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]}}]}"#));
        assert_eq!(
            b.events,
            [StreamEvent::ToolCallArgs {
                index: 0,
                fragment: "{\"a\":".into()
            }]
        );
        let c = d.decode(&ev(
            None,
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
        ));
        assert!(matches!(c.events[0], StreamEvent::Usage(u) if u.input == 3 && u.output == 4));
        assert!(d.decode(&ev(None, "[DONE]")).done);
    }

    #[test]
    fn openai_chunks_of_odd_shapes_read_as_before() {
        let mut d = StreamDecoder::new(WireFamily::OpenAi, "m");
        // Only the first choice counts; escaped text is unescaped.
        let a = d.decode(&ev(None, r#"{"id":"x","choices":[{"delta":{"content":"a\"b"}},{"delta":{"content":"no"}}],"usage":null}"#));
        assert_eq!(a.events[1], StreamEvent::Text("a\"b".into()));
        assert_eq!(a.events.len(), 2);
        // A number where text belongs is skipped (the tolerant reading), the rest still read.
        let b = d.decode(&ev(
            None,
            r#"{"choices":[{"delta":{"content":5},"finish_reason":"stop"}]}"#,
        ));
        assert_eq!(b.events, [StreamEvent::Finish(FinishReason::Stop)]);
        let c = d.decode(&ev(
            None,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":"0","function":{"name":"f"}}]}}]}"#,
        ));
        assert!(
            matches!(&c.events[0], StreamEvent::ToolCallStart { index: 0, name, .. } if name == "f")
        );
        // A null error is no error; any other is.
        assert!(d
            .decode(&ev(None, r#"{"error":null,"choices":[]}"#))
            .error
            .is_none());
        let e = d.decode(&ev(None, r#"{"error":{"message":"overloaded"}}"#));
        assert_eq!(e.error.as_deref(), Some("overloaded"));
        let e = d.decode(&ev(None, r#"{"error":"boom"}"#));
        assert_eq!(e.error.as_deref(), Some("upstream error"));
    }

    #[test]
    fn anthropic_usage_merges_start_and_delta() {
        let mut d = StreamDecoder::new(WireFamily::Anthropic, "m");
        d.decode(&ev(Some("message_start"), r#"{"type":"message_start","message":{"id":"msg","model":"m","usage":{"input_tokens":12,"output_tokens":1,"cache_read_input_tokens":5}}}"#));
        let started = d.usage();
        assert!(started.input_reported, "message_start reports the input");
        assert!(
            !started.output_reported,
            "its output_tokens is a placeholder, not a count"
        );
        let out = d.decode(&ev(Some("message_delta"), r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#));
        assert_eq!(out.events[0], StreamEvent::Finish(FinishReason::Stop));
        assert_eq!(
            d.usage(),
            UsageReport {
                usage: Usage {
                    input: 12,
                    output: 9,
                    cached_input: 5,
                    cache_write: 0,
                    reasoning: 0
                },
                input_reported: true,
                output_reported: true,
            }
        );
        assert!(
            d.decode(&ev(Some("message_stop"), r#"{"type":"message_stop"}"#))
                .done
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for family in [
            WireFamily::OpenAi,
            WireFamily::Anthropic,
            WireFamily::Gemini,
        ] {
            let mut d = StreamDecoder::new(family, "m");
            assert!(d.decode(&ev(None, "{not json")).error.is_some());
            for weird in [
                "null",
                "[]",
                "1",
                r#"{"choices":"x"}"#,
                r#"{"type":"content_block_delta","index":"x"}"#,
                r#"{"candidates":[{"content":{"parts":[{"functionCall":7}]}}]}"#,
            ] {
                let _ = d.decode(&ev(Some("content_block_delta"), weird));
            }
        }
    }
}
