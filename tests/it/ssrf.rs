//! Server-side request forgery from a tenant's side: provider base URLs that reach the
//! operator's own network are refused when saved (422 naming `base_url`) and again when dialled,
//! unless `FLO2_ALLOW_PRIVATE_UPSTREAMS` is on. The rule and its ranges: docs/ssrf.md.


use crate::common;
use crate::common::TestApp;
use flo2_testkit::FakeUpstream;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Base URLs a hostile tenant would try, one of each kind.
const PRIVATE_BASE_URLS: &[&str] = &[
    "http://127.0.0.1:8080/v1",
    "http://10.0.0.5:8000/v1",
    "http://169.254.169.254/latest",
    "http://100.64.0.1/v1",
    "http://198.18.0.1/v1",
    "http://192.0.0.1/v1",
    "http://0.0.0.0:80/v1",
    "http://240.0.0.1/v1",
    "http://255.255.255.255/v1",
    "http://224.0.0.1/v1",
    "http://0x7f.1/v1",
    "http://2130706433/v1",
    "http://localhost:9/v1",
    "http://LocalHost./v1",
    "http://[::1]:8080/v1",
    "http://[::]/v1",
    "http://[fd00::1]/v1",
    "http://[fe80::1]/v1",
    "http://[::ffff:127.0.0.1]/v1",
    "http://[::ffff:a9fe:a9fe]/v1",
    "http://[::127.0.0.1]/v1",
    "http://[64:ff9b::a9fe:a9fe]/v1",
    "http://[64:ff9b:1::1]/v1",
    "http://[2002:7f00:1::1]/v1",
    "http://[2001::1]/v1",
    "http://[2001:db8::1]/v1",
    "http://does-not-exist.invalid/v1",
];

/// Stores an `openai-compatible` key pointing at `url`.
async fn save(app: &TestApp, token: &str, name: &str, url: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/provider-keys",
        token,
        json!({"provider": "openai-compatible", "name": name, "api_key": "sk-x", "base_url": url}),
    )
    .await
}

fn assert_refused(status: StatusCode, body: &Value, url: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
    assert_eq!(body["code"], "invalid_field", "{url}: {body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.starts_with("`base_url`"), "{url}: {message}");
}

#[tokio::test]
async fn private_base_urls_are_refused_when_saved() {
    let db = common::TestDb::new().await;
    let app = TestApp::start_configured(db, common::master_key(), flo2::Mode::Serve, |c| {
        c.allow_private_upstreams = false;
    })
    .await;
    let a = app.signup("mallory@example.com", "Mallory").await;
    let (status, existing) = app
        .post(
            "/api/v1/provider-keys",
            &a.token,
            json!({"provider": "openai", "name": "plain", "api_key": "sk-plain-0123456789"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{existing}");
    let existing = existing["id"].as_str().unwrap();
    for (i, url) in PRIVATE_BASE_URLS.iter().enumerate() {
        let (status, body) = save(&app, &a.token, &format!("k{i}"), url).await;
        assert_refused(status, &body, url);
        let (status, body) = app
            .patch(
                &format!("/api/v1/provider-keys/{existing}"),
                &a.token,
                json!({"base_url": url}),
            )
            .await;
        assert_refused(status, &body, url);
    }
    let (_, keys) = app.get("/api/v1/provider-keys", &a.token).await;
    assert_eq!(
        keys.as_array().unwrap().len(),
        1,
        "nothing was stored: {keys}"
    );
    assert_eq!(keys[0]["base_url"], Value::Null, "nothing was re-pointed");
    // A public address is still accepted (an IP literal: the test needs no DNS).
    let (status, body) = save(&app, &a.token, "public", "https://1.1.1.1/v1").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .patch(
            &format!("/api/v1/provider-keys/{existing}"),
            &a.token,
            json!({"base_url": "https://[2606:4700::1111]/v1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn private_base_urls_save_when_the_operator_allows_them() {
    // The test configuration turns FLO2_ALLOW_PRIVATE_UPSTREAMS on (the fake upstream is local).
    let app = TestApp::start().await;
    let a = app.signup("ops@example.com", "Acme").await;
    for (i, url) in PRIVATE_BASE_URLS.iter().enumerate() {
        let (status, body) = save(&app, &a.token, &format!("k{i}"), url).await;
        assert_eq!(status, StatusCode::CREATED, "{url}: {body}");
        let id = body["id"].as_str().unwrap();
        let (status, body) = app
            .patch(
                &format!("/api/v1/provider-keys/{id}"),
                &a.token,
                json!({"base_url": url}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
    }
}

/// Keys saved while private upstreams were allowed, then the operator turns the setting off:
/// the dial-time check refuses them (an IP literal, and a name that resolves to loopback).
#[tokio::test]
async fn private_upstream_addresses_are_refused_when_dialled_unless_allowed() {
    let fake = FakeUpstream::start().await;
    let app = TestApp::start().await;
    let a = app.signup("a@example.com", "A").await;
    let port = fake.base_url().rsplit(':').next().unwrap().to_owned();
    for (provider, url) in [
        ("openai", format!("{}/v1", fake.base_url())),
        ("groq", format!("http://localhost:{port}/v1")),
    ] {
        let (status, body) = app
            .post(
                "/api/v1/provider-keys",
                &a.token,
                json!({"provider": provider, "name": provider, "api_key": "sk-x", "base_url": url}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let team = app.team(&a.token, "t").await;
    let (_, key) = app.api_key(&a.token, &team, "k").await;
    let (db, master) = app.stop().await;
    let app = TestApp::start_configured(db, master, flo2::Mode::Serve, |c| {
        c.allow_private_upstreams = false;
    })
    .await;
    for model in ["openai/gpt-4o", "groq/llama-3.3-70b-versatile"] {
        let resp = app
            .http
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY, "{model}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("private"),
            "{model}: {body}"
        );
    }
    assert_eq!(fake.request_count(), 0, "nothing was dialled");
}
