//! Connections cannot be held hostage: slow and silent clients are closed, idle keep-alive
//! connections end, the number of open connections is capped, stalled request bodies are cut,
//! and stalled upstreams (streams and embeddings) no longer hold the caller. Raw TCP sockets
//! against the real server, the fake upstream scripted to stall.


use std::time::{Duration, Instant};

use crate::common;
use crate::common::{sse, TestApp, TestDb};
use flo2::Mode;
use flo2_testkit::{FakeUpstream, Scenario};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A generous bound for "closed within the timeout": the timeouts are 1 s in these tests.
const CLOSED_WITHIN: Duration = Duration::from_secs(15);

async fn start(edit: impl FnOnce(&mut flo2::Config)) -> TestApp {
    let db = TestDb::new().await;
    TestApp::start_configured(db, common::master_key(), Mode::Serve, edit).await
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (EOF or reset); what it sent, or `None` if it
/// was still open after `within`.
async fn read_until_closed(tcp: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slowloris_and_silent_connections_are_closed_within_the_header_timeout() {
    let app = start(|c| c.header_read_timeout = Duration::from_secs(1)).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let addr = addr(&app);
        tasks.push(tokio::spawn(async move {
            let mut tcp = TcpStream::connect(&addr).await.unwrap();
            if i % 2 == 0 {
                // Trickles one header line every 300 ms, for longer than the bound; never ends
                // its head.
                tcp.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .unwrap();
                let deadline = Instant::now() + CLOSED_WITHIN;
                let mut n = 0;
                while Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    n += 1;
                    let line = format!("x-trickle-{n}: {n}\r\n");
                    if tcp.write_all(line.as_bytes()).await.is_err() {
                        return true; // the server closed it
                    }
                    let mut probe = [0u8; 1];
                    if let Ok(Ok(0) | Err(_)) =
                        tokio::time::timeout(Duration::from_millis(1), tcp.read(&mut probe)).await
                    {
                        return true;
                    }
                }
                false
            } else {
                // Opens and says nothing.
                read_until_closed(&mut tcp, CLOSED_WITHIN).await.is_some()
            }
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert!(task.await.unwrap(), "connection {i} was still open");
    }
    assert!(started.elapsed() < CLOSED_WITHIN);
    // The server still serves well-behaved clients.
    let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = start(|c| c.header_read_timeout = Duration::from_secs(1)).await;
    let mut tcp = TcpStream::connect(addr(&app)).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tcp.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "kept alive: {head}"
    );
    // Now it waits for a next request that never comes.
    let rest = read_until_closed(&mut tcp, CLOSED_WITHIN).await;
    assert!(rest.is_some(), "the idle keep-alive connection stayed open");
}

#[tokio::test]
async fn beyond_the_connection_cap_new_connections_wait_until_one_closes() {
    let app = start(|c| {
        c.max_connections = 2;
        c.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let held_a = TcpStream::connect(addr(&app)).await.unwrap();
    let held_b = TcpStream::connect(addr(&app)).await.unwrap();
    // Give the accept loop time to take both places.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = TcpStream::connect(addr(&app)).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_secs(1), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "a third connection was served while two held the cap"
    );
    drop(held_a);
    let answer = read_until_closed(&mut third, CLOSED_WITHIN)
        .await
        .expect("the waiting connection is served once a place frees");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    drop(held_b);
}

struct Tenant {
    app: TestApp,
    fake: FakeUpstream,
    key: String,
    org: String,
    token: String,
}

/// One organization with `openai` and `anthropic` keys at one fake upstream.
async fn tenant(edit: impl FnOnce(&mut flo2::Config)) -> Tenant {
    let app = start(edit).await;
    let fake = FakeUpstream::start().await;
    let a = app.signup("dev@example.com", "Acme").await;
    for provider in ["openai", "anthropic"] {
        add_key(&app, &a.token, provider, "sk-first-key-0123456789", &fake).await;
    }
    let team = app.team(&a.token, "t").await;
    let (_, key) = app.api_key(&a.token, &team, "k").await;
    Tenant {
        app,
        fake,
        key,
        org: a.org,
        token: a.token,
    }
}

impl Tenant {
    /// One embeddings call (panics if it gets no answer at all, a hang included).
    async fn embed(&self, http: &reqwest::Client) -> reqwest::Response {
        http.post(self.app.url("/v1/embeddings"))
            .bearer_auth(&self.key)
            .json(&json!({"model": "openai/text-embedding-3-small", "input": "a"}))
            .send()
            .await
            .expect("an answer, not a hang")
    }
}

async fn add_key(app: &TestApp, token: &str, provider: &str, secret: &str, fake: &FakeUpstream) {
    let (status, body) = app
        .post(
            "/api/v1/provider-keys",
            token,
            json!({"provider": provider, "name": format!("{provider}-{secret}"), "api_key": secret, "base_url": format!("{}/v1", fake.base_url())}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_request_body_that_stops_arriving_is_cut_with_408() {
    let t = tenant(|c| c.body_idle_timeout = Duration::from_secs(1)).await;
    let mut tcp = TcpStream::connect(addr(&t.app)).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"model\":",
        t.key
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut tcp, CLOSED_WITHIN)
        .await
        .expect("the stalled body still holds the connection");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let body: Value = serde_json::from_str(body.trim()).unwrap();
    assert!(body["error"]["message"].is_string(), "OpenAI shape: {body}");
    assert_eq!(t.fake.request_count(), 0, "nothing reached the upstream");
}

/// A client that gives up after 30 s, so a server that hangs fails the test instead of
/// hanging it.
fn patient_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_stream_stalled_after_its_first_token_ends_with_an_error_event_and_a_504_row() {
    let t = tenant(|c| c.stream_idle_timeout = Duration::from_secs(1)).await;
    let http = patient_client();
    // (inbound path, model, events the fake sends before it stalls: through the first token)
    let cases = [
        ("/v1/chat/completions", "openai/gpt-4o-mini", 2),
        ("/v1/messages", "anthropic/claude-haiku-4-5", 4),
        ("/v1/chat/completions", "anthropic/claude-haiku-4-5", 4),
        ("/v1/messages", "openai/gpt-4o-mini", 2),
    ];
    for (i, (path, model, events)) in cases.into_iter().enumerate() {
        t.fake
            .push(Scenario::text("Hello world and more").stall_after(events));
        let resp = http
            .post(t.app.url(path))
            .bearer_auth(&t.key)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": model, "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path} {model}");
        let text = resp
            .text()
            .await
            .expect("the stalled stream ends instead of hanging");
        let events = sse(&text);
        assert!(text.contains("Hello"), "the first token arrived: {text}");
        let (name, data) = events.last().unwrap();
        if path == "/v1/messages" {
            assert_eq!(name.as_deref(), Some("error"), "{text}");
            assert_eq!(data["type"], "error");
            assert_eq!(data["error"]["type"], "timeout_error", "{text}");
        } else {
            assert_eq!(data["error"]["code"], "timeout", "{text}");
            assert!(data["error"]["message"].is_string());
        }
        let rows = t.app.usage_rows(&t.org, i + 1).await;
        let row = rows.last().unwrap();
        assert_eq!(row.status, 504, "{path} {model}");
        assert_eq!(row.error_kind.as_deref(), Some("stream_idle_timeout"));
    }
    // Each stalled upstream connection was closed.
    assert!(t
        .fake
        .wait_for_disconnects(4, Duration::from_secs(10))
        .await
        .is_some());
}

#[tokio::test]
async fn embeddings_whose_error_body_stalls_time_out() {
    let t = tenant(|c| c.upstream_timeout = Duration::from_secs(1)).await;
    let http = patient_client();
    t.fake
        .push(Scenario::error(500, "something broke").stall_after(0));
    let resp = t.embed(&http).await;
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    let rows = t.app.usage_rows(&t.org, 1).await;
    assert_eq!(rows[0].status, 504);
    // And a stalled success body the same way.
    t.fake.push(Scenario::text("x").stall_after(0));
    let resp = t.embed(&http).await;
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn embeddings_rest_a_rate_limited_key_and_use_the_next_one() {
    let t = tenant(|_| {}).await;
    add_key(
        &t.app,
        &t.token,
        "openai",
        "sk-second-key-0123456789",
        &t.fake,
    )
    .await;
    let embed = || t.embed(&t.app.http);
    t.fake
        .push(Scenario::error(429, "slow down").retry_after(60));
    let resp = embed().await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the pool's other key answered"
    );
    let seen = t.fake.requests();
    assert_eq!(seen.len(), 2);
    let auth = |i: usize| seen[i].header("authorization").unwrap().to_owned();
    assert_ne!(auth(0), auth(1), "the second try used the other key");
    let rows = t.app.usage_rows(&t.org, 2).await;
    let mut statuses: Vec<i64> = rows.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429]);
    // The rate-limited key rests: the next calls go to the other key only.
    for _ in 0..3 {
        assert_eq!(embed().await.status(), StatusCode::OK);
    }
    let seen = t.fake.requests();
    assert_eq!(seen.len(), 5, "one upstream call each");
    for r in &seen[2..] {
        assert_eq!(
            r.header("authorization").unwrap(),
            auth(1),
            "the resting key was skipped"
        );
    }
}

#[tokio::test]
async fn answers_slower_than_the_header_timeout_are_not_cut() {
    let t = tenant(|c| c.header_read_timeout = Duration::from_secs(1)).await;
    let http = patient_client();
    // A slow answer, then a stream lasting well past the header timeout, on one keep-alive
    // connection: the timeout counts only while a request head is awaited.
    t.fake
        .push(Scenario::text("late").first_byte_delay(Duration::from_millis(2500)));
    let words: Vec<String> = (0..12).map(|i| format!("w{i}")).collect();
    t.fake
        .push(Scenario::text(&words.join(" ")).chunk_delay(Duration::from_millis(250)));
    for stream in [false, true] {
        let resp = http
            .post(t.app.url("/v1/chat/completions"))
            .bearer_auth(&t.key)
            .json(&json!({"model": "openai/gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let text = resp.text().await.unwrap();
        if stream {
            assert!(text.contains("w11") && text.contains("[DONE]"), "{text}");
        } else {
            assert!(text.contains("late"), "{text}");
        }
    }
}
