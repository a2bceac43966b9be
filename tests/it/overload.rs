//! Overload is refused fast, not queued: beyond the process's or the organization's bound on
//! requests in flight, callers get 503 (Anthropic Messages: 529 `overloaded_error`) with
//! `Retry-After` at once, and one tenant flooding the gateway does not starve another.


use std::time::Duration;

use crate::common;
use crate::common::{TestApp, TestDb};
use flo2::Mode;
use flo2_testkit::{FakeUpstream, Scenario};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn start(max_inflight: u32, percent: u32) -> TestApp {
    let db = TestDb::new().await;
    TestApp::start_configured(db, common::master_key(), Mode::Serve, |c| {
        c.max_inflight = max_inflight;
        c.max_inflight_per_org_percent = percent;
    })
    .await
}

/// An organization with `openai` and `anthropic` keys at `fake`, and its gateway key.
async fn tenant(app: &TestApp, email: &str, fake: &FakeUpstream) -> (String, String) {
    let a = app.signup(email, email).await;
    for provider in ["openai", "anthropic"] {
        let (status, body) = app
            .post(
                "/api/v1/provider-keys",
                &a.token,
                json!({"provider": provider, "name": provider, "api_key": "sk-upstream-0123456789", "base_url": format!("{}/v1", fake.base_url())}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let team = app.team(&a.token, "t").await;
    let (_, key) = app.api_key(&a.token, &team, "k").await;
    (key, a.org)
}

fn chat(app: &TestApp, key: &str, stream: bool) -> reqwest::RequestBuilder {
    app.http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "openai/gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}))
}

fn messages(app: &TestApp, key: &str) -> reqwest::RequestBuilder {
    app.http
        .post(app.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "anthropic/claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}))
}

/// A fake upstream that answers after 3 s.
async fn slow_fake() -> FakeUpstream {
    let slow = FakeUpstream::start().await;
    slow.set_default(Scenario::text("slow answer").first_byte_delay(Duration::from_secs(3)));
    slow
}

type Held = Vec<tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>>;

/// Two requests of `key` in flight at `slow` (returns once it has received them).
async fn hold(app: &TestApp, key: &str, slow: &FakeUpstream) -> Held {
    let before = slow.request_count();
    let held = (0..2)
        .map(|_| tokio::spawn(chat(app, key, false).send()))
        .collect();
    wait_for_requests(slow, before + 2).await;
    held
}

/// Waits until `fake` has received `n` requests in all.
async fn wait_for_requests(fake: &FakeUpstream, n: usize) {
    for _ in 0..500 {
        if fake.request_count() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the fake received {} requests, not {n}",
        fake.request_count()
    );
}

#[tokio::test]
async fn a_flooding_organization_is_refused_beyond_its_share_while_another_is_served() {
    // 4 in flight in all, 2 per organization.
    let app = start(4, 50).await;
    let slow = slow_fake().await;
    let fast = FakeUpstream::start().await;
    let (flooder, flooder_org) = tenant(&app, "flood@example.com", &slow).await;
    let (victim, _) = tenant(&app, "victim@example.com", &fast).await;

    // The flooder's share is taken by two slow requests...
    let held = hold(&app, &flooder, &slow).await;
    // ...so its next ones are refused at once, in each API's shape.
    for _ in 0..4 {
        let resp = chat(&app, &flooder, false).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "1");
        assert!(resp.headers().contains_key("x-flo2-request-id"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["type"], "server_error", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("in flight"),
            "{body}"
        );
    }
    let resp = messages(&app, &flooder).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 529);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "overloaded_error", "{body}");
    let resp = app
        .http
        .post(app.url("/v1/embeddings"))
        .bearer_auth(&flooder)
        .json(&json!({"model": "openai/text-embedding-3-small", "input": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        slow.request_count(),
        2,
        "refused requests reach no upstream"
    );

    // The other organization is still served, on both APIs.
    let resp = chat(&app, &victim, false).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = messages(&app, &victim).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // The held requests finish normally, and free their places.
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    slow.set_default(Scenario::text("fast now"));
    let resp = chat(&app, &flooder, false).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Refusals write no usage record: two held calls and the last one.
    let rows = app.usage_rows(&flooder_org, 3).await;
    assert_eq!(rows.len(), 3);
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("flo2_requests_refused_total 6"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_process_bound_refuses_every_organization_once_reached() {
    // 2 in flight in all, each organization may take all of it.
    let app = start(2, 100).await;
    let slow = slow_fake().await;
    let (a, _) = tenant(&app, "a@example.com", &slow).await;
    let (b, _) = tenant(&app, "b@example.com", &slow).await;
    let held = hold(&app, &a, &slow).await;
    let resp = chat(&app, &b, false).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at capacity"),
        "{body}"
    );
    let resp = messages(&app, &b).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 529);
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_stream_holds_its_place_until_it_ends_or_its_caller_hangs_up() {
    // One request in flight per organization.
    let app = start(2, 50).await;
    let fake = FakeUpstream::start().await;
    let (key, _) = tenant(&app, "s@example.com", &fake).await;
    let words: Vec<String> = (0..10).map(|i| format!("w{i}")).collect();
    let slow_stream = Scenario::text(&words.join(" ")).chunk_delay(Duration::from_millis(150));

    fake.push(slow_stream.clone());
    let mut stream = chat(&app, &key, true).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.chunk().await.unwrap().is_some(),
        "the stream started"
    );
    // While it streams, the organization's one place is taken.
    let resp = chat(&app, &key, false).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    while stream.chunk().await.unwrap().is_some() {}
    // Ended: the place is free again.
    let resp = chat(&app, &key, false).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // A caller that hangs up mid-stream frees it too.
    fake.push(slow_stream);
    let mut stream = chat(&app, &key, true).send().await.unwrap();
    assert!(stream.chunk().await.unwrap().is_some());
    drop(stream);
    let mut status = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..100 {
        status = chat(&app, &key, false).send().await.unwrap().status();
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        status,
        StatusCode::OK,
        "the hung-up stream's place was freed"
    );
}
