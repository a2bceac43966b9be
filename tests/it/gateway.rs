//! The data plane end to end: real HTTP into flo2, real HTTP out to the fake upstream speaking
//! each provider's wire format, on SQLite and PostgreSQL.


use std::time::Duration;

use crate::common;
use crate::common::{sse, TestApp};
use flo2_testkit::{FakeUpstream, Scenario};
use reqwest::StatusCode;
use serde_json::{json, Value};

const PROVIDER_SECRET: &str = "sk-tenant-upstream-key-0123456789";

struct Setup {
    app: TestApp,
    fake: FakeUpstream,
    key: String,
    org: String,
}

/// One organization holding keys for `openai`, `anthropic`, `gemini` and `groq`, all pointing at
/// one fake upstream (each provider's real path prefix), and a gateway key.
async fn setup() -> Setup {
    let app = TestApp::start().await;
    let fake = FakeUpstream::start().await;
    let a = app.signup("dev@example.com", "Acme").await;
    for (provider, prefix) in [
        ("openai", "/v1"),
        ("anthropic", "/v1"),
        ("gemini", "/v1beta"),
        ("groq", "/openai/v1"),
    ] {
        let (status, body) = app
            .post(
                "/api/v1/provider-keys",
                &a.token,
                json!({"provider": provider, "name": provider, "api_key": PROVIDER_SECRET, "base_url": format!("{}{prefix}", fake.base_url())}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let team = app.team(&a.token, "t").await;
    let (_, key) = app.api_key(&a.token, &team, "k").await;
    Setup {
        app,
        fake,
        key,
        org: a.org,
    }
}

impl Setup {
    async fn openai(&self, body: Value) -> reqwest::Response {
        self.app
            .http
            .post(self.app.url("/v1/chat/completions"))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn anthropic(&self, body: Value) -> reqwest::Response {
        self.app
            .http
            .post(self.app.url("/v1/messages"))
            .header("x-api-key", &self.key)
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// The Prometheus text of `/metrics`.
    async fn metrics(&self) -> String {
        let resp = self.app.http.get(self.app.url("/metrics")).send().await;
        resp.unwrap().text().await.unwrap()
    }

    /// Waits for `n` usage rows and returns them.
    async fn usage(&self, n: usize) -> Vec<flo2_store::UsageRecord> {
        self.app.usage_rows(&self.org, n).await
    }
}

fn openai_stream_text(events: &[(Option<String>, Value)]) -> String {
    events
        .iter()
        .filter_map(|(_, d)| d["choices"][0]["delta"]["content"].as_str())
        .collect()
}

fn anthropic_stream_text(events: &[(Option<String>, Value)]) -> String {
    events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect()
}

#[tokio::test]
async fn openai_to_openai_family_passes_through() {
    let s = setup().await;
    s.fake
        .push(Scenario::text("Hello there").usage(12, 3).cached_input(4));
    let resp = s
        .openai(json!({"model": "groq/llama-3.3-70b-versatile", "messages": [{"role": "user", "content": "hi"}], "api_base": "http://evil.example", "seed": 7}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-flo2-provider"], "groq");
    assert_eq!(resp.headers()["x-flo2-model"], "llama-3.3-70b-versatile");
    assert!(resp.headers().contains_key("x-flo2-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Hello there");

    let sent = &s.fake.requests()[0];
    assert!(
        sent.path.ends_with("/openai/v1/chat/completions"),
        "{}",
        sent.path
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {PROVIDER_SECRET}").as_str())
    );
    assert_eq!(sent.body["model"], "llama-3.3-70b-versatile");
    assert_eq!(sent.body["seed"], 7, "unknown fields pass through");
    assert!(
        sent.body.get("api_base").is_none(),
        "steering fields never reach the upstream"
    );

    let rows = s.usage(1).await;
    let r = &rows[0];
    assert_eq!(
        (
            r.provider.as_ref(),
            r.model.as_str(),
            r.status,
            r.inbound_api.as_ref()
        ),
        ("groq", "llama-3.3-70b-versatile", 200, "openai")
    );
    assert_eq!(
        (r.input_tokens, r.cached_input_tokens, r.output_tokens),
        (8, 4, 3)
    );
    assert!(r.latency_ms >= 0);
}

#[tokio::test]
async fn every_inbound_format_reaches_every_family_without_streaming() {
    let s = setup().await;
    let targets = [
        "openai/gpt-4o-mini",
        "anthropic/claude-haiku-4-5",
        "gemini/gemini-2.5-flash",
    ];
    for model in targets {
        s.fake.push(Scenario::text("Bonjour 🌍").usage(7, 2));
        let resp = s.openai(json!({"model": model, "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]})).await;
        assert_eq!(resp.status(), StatusCode::OK, "{model}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion", "{model}");
        assert_eq!(
            body["choices"][0]["message"]["content"], "Bonjour 🌍",
            "{model}"
        );
        assert_eq!(body["usage"]["prompt_tokens"], 7, "{model}");

        s.fake.push(Scenario::text("Bonjour 🌍").usage(7, 2));
        let resp = s.anthropic(json!({"model": model, "max_tokens": 20, "system": "s", "messages": [{"role": "user", "content": "hi"}]})).await;
        assert_eq!(resp.status(), StatusCode::OK, "{model}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["type"], "message", "{model}");
        assert_eq!(body["content"][0]["text"], "Bonjour 🌍", "{model}");
        assert_eq!(body["usage"]["output_tokens"], 2, "{model}");
    }
    // What each upstream received is in its own format. Order: (OpenAI caller, Anthropic caller)
    // for openai, anthropic, gemini.
    let reqs = s.fake.requests();
    assert_eq!(
        reqs[1].body["max_completion_tokens"], 20,
        "Anthropic caller → OpenAI: max_tokens renamed"
    );
    assert_eq!(
        reqs[1].body["messages"][0],
        json!({"role": "system", "content": "s"})
    );
    assert_eq!(reqs[2].header("x-api-key"), Some(PROVIDER_SECRET));
    assert_eq!(reqs[2].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        reqs[2].body["max_tokens"], 4096,
        "Anthropic's required max_tokens gets the documented default"
    );
    assert_eq!(reqs[2].body["system"], "s");
    assert!(
        reqs[4]
            .path
            .ends_with("/v1beta/models/gemini-2.5-flash:generateContent"),
        "{}",
        reqs[4].path
    );
    assert_eq!(reqs[4].header("x-goog-api-key"), Some(PROVIDER_SECRET));
    assert_eq!(reqs[4].body["systemInstruction"]["parts"][0]["text"], "s");
    assert!(
        reqs.iter().all(|r| r
            .header("authorization")
            .is_none_or(|a| a == format!("Bearer {PROVIDER_SECRET}"))),
        "the caller's flo2 key never goes upstream"
    );
    assert_eq!(s.usage(6).await.len(), 6);
}

#[tokio::test]
async fn tool_calls_round_trip_across_formats() {
    let s = setup().await;
    let tools_openai = json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    s.fake.push(
        Scenario::tool_call("weather", json!({"city": "Paris"}))
            .with_tool_call("weather", json!({"city": "Oslo"})),
    );
    let resp = s.openai(json!({"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "weather?"}], "tools": tools_openai})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let calls = body["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls.len(), 2, "parallel calls survive");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["city"], "Paris");
    let sent = &s.fake.requests()[0].body;
    assert_eq!(
        sent["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );

    // The result goes back in the next turn, mixed with text, and reaches Anthropic as tool_result.
    let id0 = calls[0]["id"].as_str().unwrap();
    let id1 = calls[1]["id"].as_str().unwrap();
    s.fake.push(Scenario::text("Sunny in Paris, snow in Oslo"));
    let resp = s
        .openai(
            json!({"model": "anthropic/claude-sonnet-4-5", "tools": tools_openai, "messages": [
                {"role": "user", "content": "weather?"},
                body["choices"][0]["message"].clone(),
                {"role": "tool", "tool_call_id": id0, "content": "sunny"},
                {"role": "tool", "tool_call_id": id1, "content": "snow"},
            ]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let sent = &s.fake.requests()[1].body;
    assert_eq!(sent["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(sent["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(sent["messages"][2]["content"][1]["tool_use_id"], id1);

    // Anthropic caller, Gemini upstream: function calls come back as tool_use blocks.
    s.fake
        .push(Scenario::tool_call("weather", json!({"city": "Rome"})));
    let resp = s
        .anthropic(json!({"model": "gemini/gemini-2.5-flash", "max_tokens": 50, "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"name": "weather", "input_schema": {"type": "object", "additionalProperties": false, "properties": {"city": {"type": "string"}}}}]}))
        .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["content"][0]["type"], "tool_use");
    assert_eq!(body["content"][0]["input"]["city"], "Rome");
    let sent = &s.fake.requests()[2].body;
    assert!(sent["tools"][0]["functionDeclarations"][0]["parameters"]
        .get("additionalProperties")
        .is_none());
}

#[tokio::test]
async fn images_cross_formats() {
    let s = setup().await;
    let png = "iVBORw0KGgo=";
    s.fake.push(Scenario::text("a red square"));
    s.fake.push(Scenario::text("a red square"));
    let content = json!([{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}]);
    for model in ["anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"] {
        let resp = s
            .openai(json!({"model": model, "messages": [{"role": "user", "content": content}]}))
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{model}");
    }
    let reqs = s.fake.requests();
    assert_eq!(
        reqs[0].body["messages"][0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": png})
    );
    assert_eq!(
        reqs[1].body["contents"][0]["parts"][1]["inlineData"],
        json!({"mimeType": "image/png", "data": png})
    );
}

#[tokio::test]
async fn streams_translate_in_every_direction() {
    let s = setup().await;
    let text = "Grüße aus 東京 🍣 und mehr";
    for model in [
        "openai/gpt-4o",
        "anthropic/claude-haiku-4-5",
        "gemini/gemini-2.5-flash",
    ] {
        // OpenAI caller.
        s.fake.push(Scenario::text(text).usage(9, 6));
        let resp = s
            .openai(json!({"model": model, "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{model}");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let events = sse(&resp.text().await.unwrap());
        assert_eq!(openai_stream_text(&events), text, "{model}");
        assert_eq!(
            events.last().unwrap().1,
            Value::String("[DONE]".into()),
            "{model}"
        );
        let usage = events
            .iter()
            .find(|(_, d)| d["usage"].is_object())
            .expect("usage chunk");
        assert_eq!(usage.1["usage"]["completion_tokens"], 6, "{model}");

        // Anthropic caller.
        s.fake.push(Scenario::text(text).usage(9, 6));
        let resp = s.anthropic(json!({"model": model, "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
        assert_eq!(resp.status(), StatusCode::OK, "{model}");
        let events = sse(&resp.text().await.unwrap());
        assert_eq!(anthropic_stream_text(&events), text, "{model}");
        let names: Vec<&str> = events.iter().filter_map(|(n, _)| n.as_deref()).collect();
        assert_eq!(names.first(), Some(&"message_start"), "{model}");
        assert_eq!(names.last(), Some(&"message_stop"), "{model}");
        let delta = events
            .iter()
            .find(|(n, _)| n.as_deref() == Some("message_delta"))
            .unwrap();
        assert_eq!(delta.1["usage"]["output_tokens"], 6, "{model}");
    }
    let rows = s.usage(6).await;
    assert!(
        rows.iter()
            .all(|r| r.status == 200 && r.output_tokens == 6 && r.ttft_ms.is_some()),
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_caller_that_did_not_ask_for_stream_usage_gets_no_usage_chunk() {
    let s = setup().await;
    s.fake.push(Scenario::text("hi there"));
    let resp = s.openai(json!({"model": "openai/gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    let events = sse(&resp.text().await.unwrap());
    assert!(
        events.iter().all(|(_, d)| d
            .get("choices")
            .is_none_or(|c| !c.as_array().unwrap().is_empty())),
        "no choices-less chunk"
    );
    // flo2 still asked the upstream for usage, and metered it.
    assert_eq!(
        s.fake.requests()[0].body["stream_options"]["include_usage"],
        true
    );
    assert!(s.usage(1).await[0].output_tokens > 0);
}

#[tokio::test]
async fn streamed_tool_calls_translate() {
    let s = setup().await;
    s.fake
        .push(Scenario::tool_call("lookup", json!({"q": "flo2", "n": 3})));
    let resp = s
        .anthropic(json!({"model": "openai/gpt-4o", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "go"}],
            "tools": [{"name": "lookup", "input_schema": {"type": "object"}}]}))
        .await;
    let events = sse(&resp.text().await.unwrap());
    let start = events
        .iter()
        .find(|(_, d)| d["content_block"]["type"] == "tool_use")
        .expect("tool_use block");
    assert_eq!(start.1["content_block"]["name"], "lookup");
    let json_text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json_text).unwrap(),
        json!({"q": "flo2", "n": 3})
    );
    let delta = events
        .iter()
        .find(|(n, _)| n.as_deref() == Some("message_delta"))
        .unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn upstream_errors_keep_status_message_and_retry_after_but_never_the_key() {
    let s = setup().await;
    s.fake
        .push(Scenario::error(429, "slow down please").retry_after(7));
    let resp = s
        .openai(json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("slow down please"));

    s.fake.push(Scenario::error(529, "overloaded"));
    let resp = s.anthropic(json!({"model": "anthropic/claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(resp.status().as_u16(), 529);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");

    s.fake.push(Scenario::error(
        401,
        &format!("Incorrect API key provided: {PROVIDER_SECRET}"),
    ));
    let resp = s.openai(json!({"model": "gemini/gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let text = resp.text().await.unwrap();
    assert!(!text.contains(PROVIDER_SECRET), "{text}");

    let rows = s.usage(3).await;
    let statuses: Vec<i64> = rows.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 529, 401]);
}

#[tokio::test]
async fn bad_requests_answer_in_the_callers_shape() {
    let s = setup().await;
    let resp = s
        .openai(json!({"model": "nope/nothing", "messages": []}))
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.json::<Value>().await.unwrap()["error"]["message"].is_string());
    let resp = s
        .anthropic(json!({"model": "xai/grok-4", "max_tokens": 5, "messages": []}))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "no xai key in this org"
    );
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["type"],
        "not_found_error"
    );
    let resp = s
        .app
        .http
        .post(s.app.url("/v1/chat/completions"))
        .bearer_auth(&s.key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    let resp = s.openai(json!({"model": "anthropic/claude-haiku-4-5", "n": 3, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`n`"));
    let resp = s.openai(json!({"model": "anthropic/claude-haiku-4-5", "response_format": {"type": "json_object"}, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "JSON mode is refused for Anthropic, not dropped"
    );
    // An image `data:` URL that is not base64 once sent the Anthropic and Gemini writers into
    // endless recursion: the stack overflowed and the whole process aborted.
    let image = json!([{"type": "image_url", "image_url": {"url": "data:image/png,AAAA"}}]);
    for model in ["anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash"] {
        let resp = s
            .openai(json!({"model": model, "messages": [{"role": "user", "content": image}]}))
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{model}");
        let error = resp.json::<Value>().await.unwrap()["error"].clone();
        assert_eq!(error["type"], "invalid_request_error", "{model}");
        assert!(
            error["message"].as_str().unwrap().contains("base64"),
            "{error}"
        );
    }
    let resp = s.anthropic(json!({"model": "gemini/gemini-2.5-flash", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "data:text/plain,hi"}}]}]})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    assert_eq!(
        s.fake.request_count(),
        0,
        "nothing bad reached the upstream"
    );
}

#[tokio::test]
async fn a_client_disconnect_closes_the_upstream_within_100ms() {
    let s = setup().await;
    let long = (0..200)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    s.fake
        .push(Scenario::text(&long).chunk_delay(Duration::from_millis(10)));
    let mut resp = s.openai(json!({"model": "openai/gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert!(resp.chunk().await.unwrap().is_some());
    let hung_up = std::time::Instant::now();
    drop(resp);
    let seen = s
        .fake
        .wait_for_disconnect(Duration::from_millis(2000))
        .await
        .expect("the upstream never saw the disconnect");
    let after = seen.duration_since(hung_up);
    eprintln!("upstream saw the caller hang up after {after:?}");
    assert!(
        after <= Duration::from_millis(100),
        "the upstream saw the hang-up after {after:?}"
    );
    let rows = s.usage(1).await;
    assert_eq!(rows[0].status, 499);
}

#[tokio::test]
async fn a_dropped_upstream_ends_the_stream_with_an_error_event() {
    let s = setup().await;
    // The delay lets the first events leave the fake before it breaks the connection.
    s.fake.push(
        Scenario::text("one two three four five six")
            .chunk_delay(Duration::from_millis(10))
            .drop_after(4),
    );
    let resp = s.anthropic(json!({"model": "anthropic/claude-haiku-4-5", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let events = sse(&resp.text().await.unwrap());
    let last = events.last().unwrap();
    assert_eq!(last.0.as_deref(), Some("error"), "{events:?}");
    assert_eq!(last.1["error"]["type"], "api_error");
    assert_eq!(s.usage(1).await[0].status, 502);
}

#[tokio::test]
async fn an_upstream_that_fails_before_the_first_token_gets_a_real_status() {
    let s = setup().await;
    s.fake.push(Scenario::text("x y z").drop_after(1));
    let resp = s.openai(json!({"model": "anthropic/claude-haiku-4-5", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert!(resp.json::<Value>().await.unwrap()["error"]["message"].is_string());
}

#[tokio::test]
async fn embeddings_and_count_tokens() {
    let s = setup().await;
    let resp = s
        .openai_path(
            "/v1/embeddings",
            json!({"model": "openai/text-embedding-3-small", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    let resp = s
        .openai_path(
            "/v1/embeddings",
            json!({"model": "anthropic/claude-haiku-4-5", "input": "a"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = s
        .app
        .http
        .post(s.app.url("/v1/messages/count_tokens"))
        .header("x-api-key", &s.key)
        .json(&json!({"model": "anthropic/claude-haiku-4-5", "messages": [{"role": "user", "content": "hello world, how are you?"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.json::<Value>().await.unwrap()["input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

impl Setup {
    async fn openai_path(&self, path: &str, body: Value) -> reqwest::Response {
        self.app
            .http
            .post(self.app.url(path))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn redirects_are_not_followed_and_beta_flags_reach_only_anthropic() {
    let s = setup().await;
    s.fake.push(Scenario::redirect(
        "http://169.254.169.254/latest/meta-data",
    ));
    let resp = s
        .openai(json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(s.fake.request_count(), 1, "the redirect was not followed");

    for model in ["anthropic/claude-haiku-4-5", "openai/gpt-4o"] {
        let resp = s
            .app
            .http
            .post(s.app.url("/v1/messages"))
            .header("x-api-key", &s.key)
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-beta", "prompt-caching-2024-07-31")
            .json(&json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let reqs = s.fake.requests();
    assert_eq!(
        reqs[1].header("anthropic-beta"),
        Some("prompt-caching-2024-07-31")
    );
    assert_eq!(reqs[2].header("anthropic-beta"), None);
    assert_eq!(
        reqs[1].header("x-api-key"),
        Some(PROVIDER_SECRET),
        "the caller's flo2 key is replaced by the tenant's provider key"
    );
}

#[tokio::test]
async fn the_overhead_metric_counts_flo2s_own_time_and_not_the_upstreams() {
    let s = setup().await;
    let slow = Duration::from_millis(300);
    for _ in 0..2 {
        s.fake
            .push(Scenario::text("late").usage(5, 1).first_byte_delay(slow));
    }
    let started = std::time::Instant::now();
    let plain = s
        .openai(json!({"model": "groq/llama-3.3-70b-versatile", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(plain.status(), StatusCode::OK);
    plain.bytes().await.unwrap();
    // A stream across formats: the wait for its first token is the upstream's too.
    let streamed = s
        .anthropic(json!({"model": "openai/gpt-4o-mini", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(streamed.status(), StatusCode::OK);
    streamed.bytes().await.unwrap();
    assert!(started.elapsed() >= 2 * slow);

    let metrics = s.metrics().await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert!(metrics.contains("# TYPE flo2_gateway_overhead_seconds histogram"));
    assert_eq!(value("flo2_gateway_overhead_seconds_count"), 2.0);
    assert_eq!(
        value("flo2_gateway_overhead_seconds_bucket{le=\"+Inf\"}"),
        2.0
    );
    let own = value("flo2_gateway_overhead_seconds_sum");
    assert!(
        own > 0.0 && own < slow.as_secs_f64(),
        "the 2 × 300 ms upstream waits are not flo2's own time: {own} s"
    );
}

#[tokio::test]
async fn a_nul_in_the_model_name_is_refused_and_does_not_stop_usage_from_being_written() {
    let s = setup().await;
    // PostgreSQL text cannot hold NUL, and a record that held one used to fail its batch on every
    // retry. A model id with control characters is refused before any upstream call now (the
    // store still replaces NUL in any text it is given: tests/usage_store.rs).
    let resp = s
        .openai(json!({"model": "openai/gpt-4o\u{0}mini", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = s
        .openai(json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let rows = s.usage(1).await;
    let asked: Vec<&str> = rows.iter().map(|r| r.requested_model.as_str()).collect();
    assert_eq!(asked, ["openai/gpt-4o"]);
}

#[tokio::test]
async fn a_record_the_database_refuses_is_set_aside_and_the_rest_of_its_batch_is_stored() {
    let s = setup().await;
    // Stands for any record the database will not take, however often it is retried: a rule
    // that no failed call may be stored.
    let rule = if s.app.db.is_postgres() {
        "ALTER TABLE usage_records ADD CONSTRAINT no_failures CHECK (status < 400)"
    } else {
        "CREATE TRIGGER no_failures BEFORE INSERT ON usage_records WHEN NEW.status >= 400 \
         BEGIN SELECT RAISE(ABORT, 'no failures'); END"
    };
    common::exec_sql(&s.app.db, rule).await;
    // Three calls inside one batch's gathering time: the middle one is refused.
    for refused in [false, true, false] {
        if refused {
            s.fake.push(Scenario::error(400, "no such thing"));
        }
        let resp = s
            .openai(
                json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        assert_eq!(resp.status().is_success(), !refused);
    }
    let rows = s.usage(2).await;
    let statuses: Vec<i64> = rows.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200]);

    let path = s.app.db.data_dir().join("usage-refused.jsonl");
    let mut text = String::new();
    for _ in 0..200 {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        if !text.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused: Vec<flo2_store::UsageRecord> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(refused.len(), 1, "{text}");
    assert_eq!(refused[0].status, 400);
    assert_eq!(refused[0].requested_model, "openai/gpt-4o");
    assert_eq!(refused[0].org_id.to_string(), s.org);
    assert!(!text.contains(PROVIDER_SECRET));

    // The counters move just after the batch commits, so the rows can be seen a moment before.
    let mut metrics = String::new();
    for _ in 0..200 {
        metrics = s.metrics().await;
        if metrics.contains("flo2_usage_records_written_total 2\n") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        metrics.contains("flo2_usage_records_refused_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flo2_usage_records_written_total 2\n"),
        "{metrics}"
    );
}
