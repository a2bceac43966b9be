//! A fake LLM upstream for flo2's tests: one HTTP server that speaks OpenAI Chat Completions
//! (and the OpenAI-compatible family), Anthropic Messages and Gemini `generateContent`, with
//! each provider's exact JSON and SSE framing. Tests script answers, errors, delays and broken
//! connections, and inspect what the server received and when callers hung up.
//!
//! Routing is by path suffix, so each provider's real prefix works (`/openai/v1/chat/completions`
//! for Groq, `/v1beta/models/m:generateContent` for Gemini).
//!
//! Disconnects are seen when the server next writes to a closed connection, so give streams a
//! `chunk_delay` (≥ 10 ms) when a test measures how fast a hang-up propagates.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod postgres;
mod scenario;
pub mod wire;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use futures_util::StreamExt as _;
pub use scenario::{from_prompt, Scenario};
use serde_json::Value;
use tokio::sync::Notify;
use wire::Family;

/// A request the fake received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// JSON body (`Null` if not JSON).
    pub body: Value,
    /// The body as sent, byte for byte (numbers as written, key order kept).
    pub raw_body: String,
}

impl RecordedRequest {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Scenario>>,
    default: Mutex<Option<Scenario>>,
    requests: Mutex<Vec<RecordedRequest>>,
    disconnects: AtomicUsize,
    last_disconnect: Mutex<Option<Instant>>,
    notify: Notify,
    /// Whether requests are kept for [`FakeUpstream::requests`] (off for load runs).
    record: bool,
}

/// The fake server; it stops when dropped.
pub struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeUpstream {
    /// Starts on a random loopback port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    /// Starts on `addr` (e.g. `127.0.0.1:9999` for a standalone process).
    pub async fn start_on(addr: &str) -> Self {
        Self::start_with(addr, true).await
    }

    /// Starts on `addr`, keeping what it receives only if `record`. A benchmark's fake sends
    /// millions of answers; kept, their requests grew it by about 3 KB each (3 GB a run), and
    /// the page faults and list copies of that growth landed on the cores being measured.
    pub async fn start_with(addr: &str, record: bool) -> Self {
        let shared = Arc::new(Shared {
            record,
            ..Shared::default()
        });
        let state = Arc::clone(&shared);
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = Arc::clone(&state);
                async move { handle(state, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues the answer to the next request.
    pub fn push(&self, scenario: Scenario) {
        self.shared.queue.lock().unwrap().push_back(scenario);
    }

    /// The answer when the queue is empty (initially: chosen from the prompt, see [`from_prompt`]).
    pub fn set_default(&self, scenario: Scenario) {
        *self.shared.default.lock().unwrap() = Some(scenario);
    }

    /// Every request received, in order (none for a fake started with `record` off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// How many streams the caller abandoned before their end.
    pub fn disconnects(&self) -> usize {
        self.shared.disconnects.load(Ordering::SeqCst)
    }

    /// Waits until a caller abandons a stream; returns when that was observed.
    pub async fn wait_for_disconnect(&self, timeout: Duration) -> Option<Instant> {
        self.wait_for_disconnects(1, timeout).await
    }

    /// Waits until callers have abandoned `count` streams in all; returns when the latest was
    /// observed, or `None` if fewer than `count` did within `timeout`.
    pub async fn wait_for_disconnects(&self, count: usize, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            if self.disconnects() >= count {
                return *self.shared.last_disconnect.lock().unwrap();
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if tokio::time::timeout(left, notified).await.is_err() && self.disconnects() < count {
                return None;
            }
        }
    }
}

fn family_of(path: &str) -> Option<Family> {
    let p = path.split('?').next().unwrap_or(path);
    if p.ends_with("/chat/completions") {
        Some(Family::OpenAi)
    } else if p.ends_with("/embeddings") {
        Some(Family::Embeddings)
    } else if p.ends_with("/messages") {
        Some(Family::Anthropic)
    } else if p.contains("/models/")
        && (p.ends_with(":generateContent") || p.ends_with(":streamGenerateContent"))
    {
        Some(Family::Gemini)
    } else {
        None
    }
}

/// The last message of the conversation: markers there script the answer, so the turn that
/// carries a tool's result (no marker) gets text back.
fn prompt_text(body: &Value) -> String {
    let messages = body.get("messages").or_else(|| body.get("contents"));
    match messages {
        Some(Value::Array(items)) => items.last().map(Value::to_string).unwrap_or_default(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

async fn handle(
    state: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if state.record {
        record(&state, &method, &path, &headers, &json, &body);
    }
    let Some(family) = family_of(&path) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &wire::error(Family::OpenAi, 404, "unknown path"),
            None,
        );
    };
    // A caller that hangs up while we wait (e.g. a race loser) is counted as a disconnect.
    let mut in_flight = HangUpGuard {
        state: Arc::clone(&state),
        done: false,
    };
    let scenario = state
        .queue
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| state.default.lock().unwrap().clone())
        .unwrap_or_else(|| from_prompt(&prompt_text(&json)));
    if !scenario.first_byte_delay.is_zero() {
        tokio::time::sleep(scenario.first_byte_delay).await;
    }
    in_flight.finish();
    if let Some((status, message)) = &scenario.error {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = wire::error(family, status.as_u16(), message);
        if scenario.stall_after.is_some() {
            return stalled_response(state, status, &body, scenario.retry_after);
        }
        let mut resp = json_response(status, &body, scenario.retry_after);
        if let Some(location) = scenario.location.as_deref().and_then(|l| l.parse().ok()) {
            resp.headers_mut().insert("location", location);
        }
        return resp;
    }
    let model = match family {
        Family::Gemini => path
            .split("/models/")
            .nth(1)
            .and_then(|m| m.split(':').next())
            .unwrap_or("gemini")
            .to_owned(),
        _ => json
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("fake-model")
            .to_owned(),
    };
    let streaming = match family {
        Family::Gemini => path.contains(":streamGenerateContent"),
        _ => json.get("stream").and_then(Value::as_bool).unwrap_or(false),
    };
    if !streaming && scenario.drop_after.is_some() {
        // Headers and half an answer, then a broken connection.
        let body = wire::answer(family, &scenario, &model, &json).to_string();
        let half = body[..body.len() / 2].to_owned();
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from(half)),
            Err(std::io::Error::other("scripted connection drop")),
        ];
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .unwrap();
    }
    if !streaming && scenario.stall_after.is_some() {
        let body = wire::answer(family, &scenario, &model, &json);
        return stalled_response(state, StatusCode::OK, &body, None);
    }
    if !streaming {
        return json_response(
            StatusCode::OK,
            &wire::answer(family, &scenario, &model, &json),
            None,
        );
    }
    let include_usage = json
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let frames = wire::stream(family, &scenario, &model, include_usage);
    if let Some(events) = scenario.stall_after {
        let sent: Vec<Result<Bytes, std::io::Error>> = frames
            .into_iter()
            .take(events)
            .map(|f| Ok(Bytes::from(f)))
            .collect();
        let stream = futures_util::stream::iter(sent).chain(stall(state));
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    stream_response(state, frames, scenario.chunk_delay, scenario.drop_after)
}

/// A body's stalled rest: never a frame, and a hang-up counted when the caller gives up.
fn stall(
    state: Arc<Shared>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let guard = HangUpGuard { state, done: false };
    futures_util::stream::poll_fn(move |_| {
        let _held = &guard;
        std::task::Poll::Pending
    })
}

/// `status` with the head of `body` (its first half), then nothing: the connection stays open
/// until the caller gives up.
fn stalled_response(
    state: Arc<Shared>,
    status: StatusCode,
    body: &Value,
    retry_after: Option<u64>,
) -> Response {
    let text = body.to_string();
    let half: Result<Bytes, std::io::Error> = Ok(Bytes::from(text[..text.len() / 2].to_owned()));
    let stream = futures_util::stream::once(async move { half }).chain(stall(state));
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(secs) = retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    builder.body(Body::from_stream(stream)).unwrap()
}

/// Keeps a received request for [`FakeUpstream::requests`].
fn record(
    state: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    json: &Value,
    raw: &[u8],
) {
    state.requests.lock().unwrap().push(RecordedRequest {
        method: method.to_string(),
        path: path.to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: json.clone(),
        raw_body: String::from_utf8_lossy(raw).into_owned(),
    });
}

fn json_response(status: StatusCode, body: &Value, retry_after: Option<u64>) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(secs) = retry_after {
        builder = builder.header("retry-after", secs.to_string());
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

/// Records a hang-up if the body is dropped before its last frame was produced.
struct HangUpGuard {
    state: Arc<Shared>,
    done: bool,
}

impl HangUpGuard {
    fn finish(&mut self) {
        self.done = true;
    }
}

impl Drop for HangUpGuard {
    fn drop(&mut self) {
        if !self.done {
            // The time first: a waiter that sees the new count must also see its time.
            *self.state.last_disconnect.lock().unwrap() = Some(Instant::now());
            self.state.disconnects.fetch_add(1, Ordering::SeqCst);
            self.state.notify.notify_waiters();
        }
    }
}

fn stream_response(
    state: Arc<Shared>,
    frames: Vec<String>,
    delay: Duration,
    drop_after: Option<usize>,
) -> Response {
    let guard = HangUpGuard { state, done: false };
    let stream = futures_util::stream::unfold(
        (frames.into_iter().enumerate(), guard),
        move |(mut frames, mut guard)| async move {
            let (i, frame) = match frames.next() {
                Some(next) => next,
                None => {
                    guard.finish();
                    return None;
                }
            };
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if drop_after == Some(i) {
                // A deliberate break, not a caller hang-up. The delay above let earlier frames flush.
                guard.finish();
                return Some((
                    Err(std::io::Error::other("scripted connection drop")),
                    (frames, guard),
                ));
            }
            Some((Ok::<_, std::io::Error>(Bytes::from(frame)), (frames, guard)))
        },
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap()
}
