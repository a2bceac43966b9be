//! Exact cost per call at the organization's list prices, and honest token counts (the
//! provider's when it gives them, zero included; marked estimates otherwise), over real HTTP, on
//! both databases.

use std::time::Duration;

use crate::common::{Tenant, TestApp};
use flo2_testkit::Scenario;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Keys for these families, all at one fake upstream.
const PROVIDERS: [&str; 3] = ["openai", "anthropic", "gemini"];

/// A chat call that must succeed; its `x-flo2-cost-usd`.
async fn call(s: &Tenant<'_>, model: &str) -> String {
    let (status, cost) = s.chat_cost(model).await;
    assert_eq!(status, StatusCode::OK);
    cost
}

/// Calls `path` (`/v1/chat/completions` or `/v1/messages`) for `model` with a long prompt (an
/// estimate of it would be about 1,000 tokens); returns the status and the whole answer text.
async fn call_with_long_prompt(
    s: &Tenant<'_>,
    path: &str,
    model: &str,
    stream: bool,
) -> (StatusCode, String) {
    let prompt = "x".repeat(4_000);
    let resp = s
        .app
        .http
        .post(s.app.url(path))
        .header("x-api-key", &s.key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": model, "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": prompt}]}))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// The last of exactly `n` usage rows.
async fn last_row(s: &Tenant<'_>, n: usize) -> flo2_store::UsageRecord {
    let rows = s.usage_rows(n).await;
    assert_eq!(rows.len(), n);
    rows.into_iter().last().unwrap()
}

#[tokio::test]
async fn costs_match_hand_computations() {
    let app = TestApp::start().await;
    let s = app.tenant_on_one_upstream(&PROVIDERS).await;
    // GPT-4o mini: $0.15 in, $0.075 cached, $0.60 out. OpenAI counts cached tokens inside
    // prompt_tokens and reasoning inside completion_tokens (billed as output):
    // 600×0.15 + 400×0.075 + 500×0.60 = 90 + 30 + 300 = 420 µUSD = $0.000420.
    s.upstream().push(
        Scenario::text("ok")
            .usage(1_000, 500)
            .cached_input(400)
            .reasoning(100),
    );
    assert_eq!(call(&s, "openai/gpt-4o-mini").await, "0.000420000000");
    // Claude Sonnet 4.5: $3 in, $0.30 cache read, $3.75 cache write, $15 out. Anthropic reports
    // uncached input apart: 1200×3 + 10000×0.30 + 2048×3.75 + 350×15 = $0.019530.
    s.upstream().push(
        Scenario::text("ok")
            .usage(1_200, 350)
            .cached_input(10_000)
            .cache_write(2_048),
    );
    assert_eq!(
        call(&s, "anthropic/claude-sonnet-4-5").await,
        "0.019530000000"
    );
    let rows = s.usage_rows(2).await;
    assert_eq!(rows[0].cost_picousd, 420_000_000);
    assert_eq!(
        (
            rows[0].input_tokens,
            rows[0].cached_input_tokens,
            rows[0].reasoning_tokens
        ),
        (600, 400, 100)
    );
    assert_eq!(rows[1].cost_picousd, 19_530_000_000);
    assert_eq!(
        (rows[1].cached_input_tokens, rows[1].cache_write_tokens),
        (10_000, 2_048)
    );
    assert!(
        rows.iter()
            .all(|r| r.baseline_cost_picousd == r.cost_picousd),
        "no route: no saving"
    );
}

#[tokio::test]
async fn a_price_change_applies_from_its_time_and_never_rewrites_past_costs() {
    let app = TestApp::start().await;
    let s = app.tenant_on_one_upstream(&PROVIDERS).await;
    s.upstream()
        .set_default(Scenario::text("ok").usage(1_000_000, 0));
    // List price: 1M input tokens of GPT-4o mini = $0.15.
    assert_eq!(call(&s, "openai/gpt-4o-mini").await, "0.150000000000");
    // The organization's own price, effective now.
    let (status, body) = s.price(json!({"provider": "openai", "model": "gpt-4o-mini", "input_per_mtok": "0.10", "output_per_mtok": "0.40"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(call(&s, "openai/gpt-4o-mini").await, "0.100000000000");
    // A change that starts at "noon" (in 1.5 s): calls before it keep the old price.
    let noon = chrono::Utc::now() + chrono::Duration::milliseconds(1_500);
    let (status, _) = s
        .price(json!({"provider": "openai", "model": "gpt-4o-mini", "input_per_mtok": "0.30", "output_per_mtok": "0.40", "effective_from": noon}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        call(&s, "openai/gpt-4o-mini").await,
        "0.100000000000",
        "morning call, old price"
    );
    let wait = (noon - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(50);
    tokio::time::sleep(wait).await;
    assert_eq!(
        call(&s, "openai/gpt-4o-mini").await,
        "0.300000000000",
        "afternoon call, new price"
    );
    let costs: Vec<i64> = s
        .usage_rows(4)
        .await
        .iter()
        .map(|r| r.cost_picousd)
        .collect();
    assert_eq!(
        costs,
        [
            150_000_000_000,
            100_000_000_000,
            100_000_000_000,
            300_000_000_000
        ],
        "past costs never change"
    );
}

#[tokio::test]
async fn custom_models_can_be_priced() {
    let app = TestApp::start().await;
    let s = app.tenant_on_one_upstream(&PROVIDERS).await;
    s.upstream()
        .set_default(Scenario::text("ok").usage(2_000, 1_000));
    let (status, _) = s
        .price(json!({"provider": "openai", "model": "ft:gpt-4o-mini:acme", "input_per_mtok": "0.30", "output_per_mtok": "1.20", "context_window": 128000, "tools": true}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // 2000×0.30 + 1000×1.20 = 600 + 1200 = $0.0018.
    assert_eq!(
        call(&s, "openai/ft:gpt-4o-mini:acme").await,
        "0.001800000000"
    );
    // A model nobody priced costs nothing flo2 can state.
    assert_eq!(call(&s, "openai/unpriced-model").await, "0.000000000000");
}

#[tokio::test]
async fn the_price_api_validates_checks_roles_and_isolates_tenants() {
    let app = TestApp::start().await;
    let s = app.tenant_on_one_upstream(&PROVIDERS).await;
    let t = s.owner.token.as_str();
    let bad = [
        json!({"provider": "openai", "model": "m", "input_per_mtok": "-1", "output_per_mtok": "1"}),
        json!({"provider": "openai", "model": "m", "input_per_mtok": "0.0000001", "output_per_mtok": "1"}),
        json!({"provider": "openai", "model": "m", "input_per_mtok": 0.1, "output_per_mtok": "1"}),
        json!({"provider": "nope", "model": "m", "input_per_mtok": "1", "output_per_mtok": "1"}),
        json!({"provider": "openai", "model": " ", "input_per_mtok": "1", "output_per_mtok": "1"}),
        json!({"provider": "openai", "model": "m", "input_per_mtok": "1"}),
    ];
    for body in bad {
        let (status, answer) = s.price(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["code"], "invalid_field");
    }
    let at = "2030-01-01T12:00:00Z";
    let price = json!({"provider": "groq", "model": "my-llama", "input_per_mtok": "0.5", "output_per_mtok": "0.7", "effective_from": at});
    assert_eq!(s.price(price.clone()).await.0, StatusCode::CREATED);
    assert_eq!(s.price(price).await.0, StatusCode::CONFLICT);

    let (_, list) = app.get("/api/v1/prices?provider=groq", t).await;
    let list = list.as_array().unwrap();
    assert!(list.iter().all(|p| p["provider"] == "groq"));
    let mine = list.iter().find(|p| p["source"] == "organization").unwrap();
    assert_eq!(
        (mine["model"].as_str(), mine["input_per_mtok"].as_str()),
        (Some("my-llama"), Some("0.500000"))
    );
    let catalog = list.iter().find(|p| p["source"] == "catalog").unwrap();
    assert!(catalog["price_source"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    let (_, found) = app.get("/api/v1/prices?q=SONNET", t).await;
    assert!(found
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["model"].as_str().unwrap().contains("sonnet")));

    // Another tenant sees only the catalog.
    let other = app.signup("other@example.com", "Other").await;
    let (_, theirs) = app.get("/api/v1/prices", &other.token).await;
    assert!(theirs
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["source"] == "catalog"));
    // A viewer cannot set prices.
    let (_, invite) = app
        .post("/api/v1/invites", t, json!({"role": "viewer"}))
        .await;
    app.post(
        "/api/v1/invites/accept",
        &other.token,
        json!({"token": invite["token"]}),
    )
    .await;
    let (status, _) = app.post("/api/v1/prices", &other.token, json!({"provider": "openai", "model": "x", "input_per_mtok": "1", "output_per_mtok": "1"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The final usage object of an SSE body, whichever format it is in.
fn final_usage(sse: &str) -> serde_json::Value {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .rfind(|v| v["usage"].is_object() && v["type"] != "message_start")
        .map(|v| v["usage"].clone())
        .unwrap_or_else(|| panic!("no final usage in {sse}"))
}

#[tokio::test]
async fn streamed_calls_are_priced_and_carry_their_cost_in_the_final_usage() {
    let app = TestApp::start().await;
    let s = app.tenant_on_one_upstream(&PROVIDERS).await;
    // 1000×0.15 + 2000×0.60 = 150 + 1200 = $0.00135 on GPT-4o mini;
    // 1000×3 + 2000×15 = $0.033 on Claude Sonnet 4.5.
    let cases = [
        (
            "/v1/chat/completions",
            "openai/gpt-4o-mini",
            "0.001350000000",
        ), // passthrough
        (
            "/v1/chat/completions",
            "anthropic/claude-sonnet-4-5",
            "0.033000000000",
        ), // translated
        (
            "/v1/messages",
            "anthropic/claude-sonnet-4-5",
            "0.033000000000",
        ), // passthrough
        ("/v1/messages", "openai/gpt-4o-mini", "0.001350000000"), // translated
    ];
    for (path, model, want) in cases {
        s.upstream()
            .push(Scenario::text("a b c").usage(1_000, 2_000));
        let body = json!({"model": model, "max_tokens": 10, "stream": true,
            "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]});
        let body = if path == "/v1/messages" {
            let mut b = body;
            b.as_object_mut().unwrap().remove("stream_options");
            b
        } else {
            body
        };
        let resp = app
            .http
            .post(app.url(path))
            .header("x-api-key", &s.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        let usage = final_usage(&text);
        assert_eq!(usage["flo2_cost_usd"], want, "{path} {model}: {text}");
    }
    let rows = s.usage_rows(4).await;
    let costs: Vec<i64> = rows.iter().map(|r| r.cost_picousd).collect();
    assert_eq!(
        costs,
        [1_350_000_000, 33_000_000_000, 33_000_000_000, 1_350_000_000]
    );
    assert!(rows.iter().all(|r| !r.tokens_estimated));
}

#[tokio::test]
async fn a_stream_cut_short_records_a_marked_estimate() {
    let app = TestApp::start().await;
    let s = app.tenant_on_one_upstream(&PROVIDERS).await;
    // The upstream sends its opening and some text, then drops the connection: no usage event.
    s.upstream().push(
        Scenario::text("abcdefgh abcdefgh abcdefgh abcdefgh")
            .usage(1_000, 2_000)
            .chunk_delay(Duration::from_millis(10))
            .drop_after(3),
    );
    let prompt = "x".repeat(4_000);
    let resp = s
        .chat(json!({"model": "openai/gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": prompt}]}))
        .await;
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("error"),
        "the stream ends with an error event: {text}"
    );
    let row = &s.usage_rows(1).await[0];
    assert_eq!(row.status, 502);
    assert!(
        row.tokens_estimated,
        "the record says its tokens are an estimate: {row:?}"
    );
    // About 4000/4 prompt tokens plus framing; some output from the text that did arrive.
    assert!(
        (1_000..1_020).contains(&row.input_tokens),
        "{}",
        row.input_tokens
    );
    assert!(row.output_tokens > 0);
    assert!(row.cost_picousd > 0);
}

const CALLS: &[(&str, &str)] = &[
    ("/v1/chat/completions", "openai/gpt-4o-mini"),
    ("/v1/messages", "anthropic/claude-sonnet-4-5"),
    ("/v1/chat/completions", "anthropic/claude-sonnet-4-5"),
    ("/v1/chat/completions", "gemini/gemini-2.5-flash"),
    ("/v1/messages", "gemini/gemini-2.5-flash"),
    ("/v1/messages", "openai/gpt-4o-mini"),
];

#[tokio::test]
async fn explicit_zero_usage_is_recorded_as_zero_and_not_estimated() {
    let app = TestApp::start().await;
    let s = app.tenant_on_one_upstream(&PROVIDERS).await;
    let mut n = 0;
    for stream in [false, true] {
        for (path, model) in CALLS {
            s.upstream()
                .push(Scenario::text("a reply with several words in it").usage(0, 0));
            let (status, text) = call_with_long_prompt(&s, path, model, stream).await;
            assert_eq!(status, StatusCode::OK, "{path} {model} {stream}: {text}");
            n += 1;
            let row = last_row(&s, n).await;
            assert_eq!(row.status, 200);
            assert_eq!(
                (row.input_tokens, row.output_tokens),
                (0, 0),
                "{path} {model} stream={stream}: the provider said zero: {row:?}"
            );
            assert!(
                !row.tokens_estimated,
                "{path} {model} stream={stream}: {row:?}"
            );
            assert_eq!(row.cost_picousd, 0);
        }
    }
}

/// The text of the `text_delta` events an Anthropic stream delivered.
fn delivered_anthropic_text(sse: &str) -> String {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["delta"]["type"] == "text_delta")
        .map(|v| v["delta"]["text"].as_str().unwrap().to_owned())
        .collect()
}

/// message_start (its output_tokens is a placeholder of 1), ping, content_block_start and three
/// text deltas; then the connection drops before message_delta reports the output.
fn cut_after_three_deltas() -> Scenario {
    Scenario::text("abcdefgh abcdefgh abcdefgh abcdefgh abcdefgh abcdefgh")
        .usage(1_000, 2_000)
        .chunk_delay(Duration::from_millis(10))
        .drop_after(6)
}

#[tokio::test]
async fn an_anthropic_stream_cut_after_some_text_records_the_delivered_output() {
    let app = TestApp::start().await;
    let s = app.tenant_on_one_upstream(&PROVIDERS).await;
    s.upstream().push(cut_after_three_deltas());
    let (_, text) =
        call_with_long_prompt(&s, "/v1/messages", "anthropic/claude-sonnet-4-5", true).await;
    assert!(
        text.contains("error"),
        "the stream ends with an error: {text}"
    );
    let delivered = delivered_anthropic_text(&text);
    assert!(delivered.chars().count() >= 8, "some text arrived: {text}");
    let row = last_row(&s, 1).await;
    assert_eq!(row.status, 502);
    assert_eq!(row.input_tokens, 1_000, "message_start reported the input");
    assert_eq!(
        row.output_tokens as usize,
        delivered.chars().count().div_ceil(4),
        "the output is estimated from the delivered text, not message_start's 1: {row:?}"
    );
    assert!(row.tokens_estimated, "{row:?}");

    // The same upstream stream translated for an OpenAI-style caller.
    s.upstream().push(cut_after_three_deltas());
    let (_, text) = call_with_long_prompt(
        &s,
        "/v1/chat/completions",
        "anthropic/claude-sonnet-4-5",
        true,
    )
    .await;
    let row = last_row(&s, 2).await;
    assert_eq!(row.input_tokens, 1_000);
    assert!(
        row.output_tokens > 1 && row.tokens_estimated,
        "{row:?}\n{text}"
    );
}
