//! The fake's own contract: each format's framing, scripting and hang-up detection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use flo2_testkit::{FakeUpstream, Scenario};
use serde_json::{json, Value};

async fn post(fake: &FakeUpstream, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", fake.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn openai_streams_end_with_usage_then_done() {
    let fake = FakeUpstream::start().await;
    fake.push(Scenario::text("Hello from fake").usage(3, 4));
    let text = post(&fake, "/v1/chat/completions", json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}, "messages": []}))
        .await
        .text()
        .await
        .unwrap();
    let frames: Vec<&str> = text.split("\n\n").filter(|f| !f.is_empty()).collect();
    assert_eq!(frames.last(), Some(&"data: [DONE]"));
    let usage: Value =
        serde_json::from_str(frames[frames.len() - 2].trim_start_matches("data: ")).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 4);
    assert_eq!(usage["choices"], json!([]));
    let deltas: String = frames
        .iter()
        .filter_map(|f| serde_json::from_str::<Value>(f.trim_start_matches("data: ")).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(deltas, "Hello from fake");
}

#[tokio::test]
async fn anthropic_streams_have_named_events_in_order() {
    let fake = FakeUpstream::start().await;
    fake.push(Scenario::tool_call("f", json!({"a": 1})));
    let text = post(
        &fake,
        "/v1/messages",
        json!({"model": "m", "stream": true, "messages": []}),
    )
    .await
    .text()
    .await
    .unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
}

#[tokio::test]
async fn errors_have_each_providers_shape_and_retry_after() {
    let fake = FakeUpstream::start().await;
    fake.push(Scenario::error(429, "slow").retry_after(2));
    fake.push(Scenario::error(529, "busy"));
    fake.push(Scenario::error(429, "quota"));
    let r = post(&fake, "/v1/chat/completions", json!({"model": "m"})).await;
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "2")
    );
    let r = post(&fake, "/v1/messages", json!({"model": "m"})).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "overloaded_error"
    );
    let r = post(&fake, "/v1beta/models/g:generateContent", json!({})).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["status"],
        "RESOURCE_EXHAUSTED"
    );
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn prompts_script_the_default_answer() {
    let fake = FakeUpstream::start().await;
    let r: Value = post(
        &fake,
        "/v1/messages",
        json!({"model": "m", "messages": [{"role": "user", "content": "[[tool:lookup]]"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(r["content"][0]["name"], "lookup");
    let r = post(
        &fake,
        "/v1/chat/completions",
        json!({"model": "m", "messages": [{"role": "user", "content": "[[error:404]]"}]}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 404);
    // Only the last message scripts: a tool result turn gets text.
    let r: Value = post(&fake, "/v1/chat/completions", json!({"model": "m", "messages": [{"role": "user", "content": "[[tool:x]]"}, {"role": "tool", "content": "ok"}]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["choices"][0]["message"]["content"], "Hello from fake");
}

#[tokio::test]
async fn gemini_streams_put_usage_and_finish_in_the_last_event() {
    let fake = FakeUpstream::start().await;
    fake.push(Scenario::text("a b").usage(5, 2));
    let text = post(
        &fake,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        json!({"contents": []}),
    )
    .await
    .text()
    .await
    .unwrap();
    let events: Vec<Value> = text
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| serde_json::from_str(f.trim_start_matches("data: ")).unwrap())
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(events[1]["usageMetadata"]["promptTokenCount"], 5);
    assert!(events[0].get("usageMetadata").is_none());
}

#[tokio::test]
async fn hang_ups_are_seen() {
    let fake = FakeUpstream::start().await;
    fake.push(Scenario::text(&"w ".repeat(200)).chunk_delay(Duration::from_millis(10)));
    let mut r = post(
        &fake,
        "/v1/chat/completions",
        json!({"model": "m", "stream": true}),
    )
    .await;
    r.chunk().await.unwrap();
    drop(r);
    assert!(fake
        .wait_for_disconnect(Duration::from_secs(2))
        .await
        .is_some());
    assert_eq!(fake.disconnects(), 1);
}

#[tokio::test]
async fn a_fake_without_recording_answers_the_same_and_keeps_nothing() {
    let recording = FakeUpstream::start().await;
    let quiet = FakeUpstream::start_with("127.0.0.1:0", false).await;
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let mut contents = Vec::new();
    for fake in [&recording, &quiet] {
        let answer: Value = post(fake, "/v1/chat/completions", body.clone())
            .await
            .json()
            .await
            .unwrap();
        contents.push(answer["choices"][0]["message"]["content"].clone());
    }
    assert!(contents[1].is_string(), "{contents:?}");
    assert_eq!(contents[0], contents[1]);
    assert_eq!(recording.request_count(), 1);
    assert_eq!(quiet.request_count(), 0);
}
