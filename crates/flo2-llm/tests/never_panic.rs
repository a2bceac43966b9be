//! Property tests: the SSE decoder, the stream decoders and every translator take arbitrary
//! input (random bytes, random JSON shaped like the real formats) without panicking.
//! A seeded generator keeps runs reproducible; a failing seed is printed by the assertion.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use flo2_llm::common::{ChatRequest, StreamEvent};
use flo2_llm::providers::WireFamily;
use flo2_llm::stream::decode::StreamDecoder;
use flo2_llm::stream::encode::{AnthropicEncoder, OpenAiEncoder};
use flo2_llm::stream::sse::{SseDecoder, SseEvent};
use flo2_llm::translate::{anthropic, gemini, openai};
use serde_json::{json, Map, Value};

/// xorshift64*: tiny, deterministic, good enough to explore input shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Field names and values the real formats use, so random documents reach deep code paths.
const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "id",
    "tool_call_id",
    "image_url",
    "url",
    "source",
    "media_type",
    "data",
    "tool_use_id",
    "input",
    "is_error",
    "tools",
    "parameters",
    "input_schema",
    "tool_choice",
    "response_format",
    "json_schema",
    "schema",
    "stream",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "stop_sequences",
    "system",
    "choices",
    "delta",
    "index",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "cached_tokens",
    "candidates",
    "parts",
    "functionCall",
    "args",
    "finishReason",
    "usageMetadata",
    "promptTokenCount",
    "content_block",
    "partial_json",
    "stop_reason",
    "message",
    "error",
    "metadata",
    "user_id",
    "n",
    "thinking",
];
const STRINGS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "tool",
    "developer",
    "text",
    "image_url",
    "image",
    "tool_use",
    "tool_result",
    "base64",
    "url",
    "function",
    "auto",
    "none",
    "required",
    "any",
    "json_object",
    "json_schema",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "text_delta",
    "input_json_delta",
    "message_delta",
    "message_stop",
    "error",
    "data:image/png;base64,AAAA",
    "data:",
    "{\"a\":",
    "[DONE]",
    "",
    "é🙂",
    "STOP",
    "MAX_TOKENS",
    "tool_calls",
];

fn value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth == 0 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => json!(rng.next() as i64 % 1000),
        3 => json!(rng.below(1000) as f64 / 7.0),
        4 => json!(*rng.pick(STRINGS)),
        5 | 6 => {
            let mut m = Map::new();
            for _ in 0..rng.below(5) {
                m.insert((*rng.pick(KEYS)).to_owned(), value(rng, depth - 1));
            }
            Value::Object(m)
        }
        _ => Value::Array((0..rng.below(4)).map(|_| value(rng, depth - 1)).collect()),
    }
}

/// Half the documents start from a valid skeleton, so parsing gets past the first checks.
fn document(rng: &mut Rng) -> Value {
    let mut doc = value(rng, 4);
    if rng.below(2) == 0 {
        let messages: Vec<Value> = (0..rng.below(4) + 1)
            .map(|_| {
                let mut m = value(rng, 3);
                if !m.is_object() {
                    m = json!({});
                }
                m["role"] = json!(*rng.pick(&["user", "assistant", "system", "tool"]));
                if rng.below(2) == 0 {
                    m["content"] = json!(*rng.pick(STRINGS));
                }
                m
            })
            .collect();
        let mut skeleton = json!({"model": "m", "max_tokens": 10, "messages": messages,
            "choices": [{"message": value(rng, 2), "delta": value(rng, 2)}], "content": value(rng, 3), "candidates": [value(rng, 3)]});
        if let (Value::Object(extra), Value::Object(base)) = (doc, &mut skeleton) {
            base.extend(extra);
        }
        doc = skeleton;
    }
    doc
}

const RUNS: u64 = 20_000;

#[test]
fn translators_never_panic_on_random_documents() {
    let (mut requests, mut responses) = (0, 0);
    for seed in 1..=RUNS {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let doc = document(&mut rng);
        // Requests in, then back out to every format.
        for req in [openai::parse_request(&doc), anthropic::parse_request(&doc)]
            .into_iter()
            .flatten()
        {
            {
                requests += 1;
                // The writers return views that serialize lazily: write them out too.
                let _ = serde_json::to_vec(&openai::write_request(&req, "max_tokens", true));
                let _ = anthropic::write_request(&req).map(|r| serde_json::to_vec(&r));
                let _ = gemini::write_request(&req).map(|r| serde_json::to_vec(&r));
            }
        }
        // Responses in, then out.
        for resp in [
            openai::parse_response(&doc),
            anthropic::parse_response(&doc),
            gemini::parse_response(&doc, "m"),
        ]
        .into_iter()
        .flatten()
        {
            {
                responses += 1;
                let _ = serde_json::to_vec(&openai::write_response(&resp, 0));
                let _ = serde_json::to_vec(&anthropic::write_response(&resp));
            }
        }
        let _ = openai::parse_usage(&doc);
        let _ = anthropic::parse_usage(&doc);
        let _ = gemini::parse_usage(&doc);
    }
    // The generator must reach past validation, or this test proves little.
    assert!(
        requests > 1_000 && responses > 1_000,
        "requests {requests}, responses {responses}"
    );
}

#[test]
fn stream_decoders_and_encoders_never_panic_on_random_events() {
    for seed in 1..=RUNS / 4 {
        let mut rng = Rng(seed.wrapping_mul(0xD6E8_FEB8_6659_FD93) | 1);
        for family in [
            WireFamily::OpenAi,
            WireFamily::Anthropic,
            WireFamily::Gemini,
        ] {
            let mut decoder = StreamDecoder::new(family, "m");
            let mut to_openai = OpenAiEncoder::new("m", 0, true);
            let mut to_anthropic = AnthropicEncoder::new("m");
            let mut out = String::new();
            for _ in 0..rng.below(12) {
                let name = if rng.below(2) == 0 {
                    Some((*rng.pick(STRINGS)).to_owned())
                } else {
                    None
                };
                let data = if rng.below(10) == 0 {
                    "{broken".to_owned()
                } else {
                    value(&mut rng, 4).to_string()
                };
                let decoded = decoder.decode(&SseEvent { event: name, data });
                for e in &decoded.events {
                    to_openai.event(e, &mut out);
                    to_anthropic.event(e, &mut out);
                }
            }
            to_openai.finish(&mut out);
            to_anthropic.finish(&mut out);
        }
    }
}

#[test]
fn encoders_accept_any_event_order() {
    let events = [
        StreamEvent::ToolCallArgs {
            index: 7,
            fragment: "x".into(),
        },
        StreamEvent::Text(String::new()),
        StreamEvent::ToolCallStart {
            index: 0,
            id: String::new(),
            name: String::new(),
        },
        StreamEvent::Start {
            id: String::new(),
            model: String::new(),
        },
        StreamEvent::Usage(Default::default()),
    ];
    for seed in 1..=2_000u64 {
        let mut rng = Rng(seed | 1);
        let mut a = AnthropicEncoder::new("m");
        let mut o = OpenAiEncoder::new("m", 0, false);
        let mut out = String::new();
        for _ in 0..rng.below(10) {
            let e = rng.pick(&events);
            a.event(e, &mut out);
            o.event(e, &mut out);
        }
        a.error("x", &mut out);
        o.finish(&mut out);
    }
}

#[test]
fn the_sse_decoder_never_panics_on_random_bytes() {
    let alphabet: &[u8] = b"data: event:\n\r{}[]\"\\:,0a\xc3\xa9\xf0\x9f\x99\x82 ";
    for seed in 1..=RUNS {
        let mut rng = Rng(seed | 1);
        let len = rng.below(300) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(8) == 0 {
                    rng.next() as u8
                } else {
                    *rng.pick(alphabet)
                }
            })
            .collect();
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = (rng.below(17) as usize + 1).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            decoder.feed(chunk, &mut out).unwrap();
            rest = tail;
        }
        decoder.finish(&mut out);
    }
}

#[test]
fn a_default_request_translates_everywhere() {
    let req = ChatRequest::default();
    let _ = openai::write_request(&req, "max_tokens", false);
    assert!(anthropic::write_request(&req).is_ok());
    assert!(gemini::write_request(&req).is_ok());
}

/// A `data:` image URL that is not base64 cannot be sent inline. It used to be read as a URL,
/// then again as a `data:` URL, without end: the Anthropic and Gemini writers recursed until the
/// stack overflowed, which aborts the process, not just the request.
#[test]
fn a_data_url_image_that_is_not_base64_is_refused_not_looped_on() {
    for url in [
        "data:image/png,AAAA",
        "data:",
        "data:image/png",
        "data:;base64",
    ] {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}]}]});
        let req = openai::parse_request(&body).unwrap();
        for err in [
            anthropic::write_request(&req).err(),
            gemini::write_request(&req).err(),
        ] {
            let err = err.expect("refused").to_string();
            assert!(err.contains("base64"), "{url}: {err}");
        }
        let from_anthropic = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": url}}]}]});
        let req = anthropic::parse_request(&from_anthropic).unwrap();
        assert!(anthropic::write_request(&req).is_err(), "{url}");
    }
    // A base64 `data:` URL still goes inline.
    let body = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}}]}]});
    let req = openai::parse_request(&body).unwrap();
    let out = serde_json::to_value(anthropic::write_request(&req).unwrap()).unwrap();
    assert_eq!(
        out["messages"][0]["content"][0],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}})
    );
}
