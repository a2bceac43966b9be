//! The tenant fixture: an organization whose provider keys point at fake upstreams, with a team
//! and a gateway key, and helpers to call the data plane in each inbound format, to set prices
//! and routes, and to read usage back. `app.tenant(&["openai", "groq"]).await` gives every
//! provider its own fake upstream; `app.tenant_on_one_upstream(&[...])` puts every key on one
//! (so a test reads one ordered request log across providers).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use flo2_testkit::{FakeUpstream, Scenario};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use super::{sse, Account, TestApp};

/// The secret of every provider key a fixture tenant stores; tests assert it never leaks.
pub const PROVIDER_SECRET: &str = "sk-tenant-upstream-key-0123456789";

/// The answer most routing tests want from every upstream: `ok`, 100 input and 10 output tokens.
pub fn answer_ok() -> Scenario {
    Scenario::text("ok").usage(100, 10)
}

/// An inbound API of the data plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// OpenAI `POST /v1/chat/completions`, the key as a bearer token.
    Chat,
    /// Anthropic `POST /v1/messages`, the key as `x-api-key`, with `anthropic-version`.
    Messages,
    /// OpenAI `POST /v1/embeddings`, the key as a bearer token.
    Embeddings,
}

impl Api {
    /// The path this API answers on.
    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Messages => "/v1/messages",
            Api::Embeddings => "/v1/embeddings",
        }
    }
}

/// The path a provider's real API lives under, below its host (the fake accepts any prefix;
/// the real one keeps the paths upstreams receive realistic).
fn path_prefix(provider: &str) -> &'static str {
    match provider {
        "gemini" => "/v1beta",
        "groq" => "/openai/v1",
        "openrouter" => "/api/v1",
        _ => "/v1",
    }
}

/// A streamed answer: its status, headers and SSE events (`[DONE]` as a string).
pub struct Streamed {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub events: Vec<(Option<String>, Value)>,
}

/// One organization on a [`TestApp`], made by [`TestApp::tenant`].
pub struct Tenant<'a> {
    pub app: &'a TestApp,
    /// The owner who signed the organization up.
    pub owner: Account,
    /// The team the gateway key belongs to.
    pub team: String,
    /// The gateway key's id and secret.
    pub key_id: String,
    pub key: String,
    /// Provider name → the id of its stored provider key.
    pub credentials: HashMap<&'static str, String>,
    upstreams: Vec<FakeUpstream>,
    upstream_of: HashMap<&'static str, usize>,
}

impl TestApp {
    /// A new organization with one provider key per entry of `providers`, each at its own fake
    /// upstream under the provider's real path prefix, a team and a gateway key. The fakes
    /// answer by the prompt's markers until a test scripts them.
    pub async fn tenant(&self, providers: &[&'static str]) -> Tenant<'_> {
        let mut upstreams = Vec::new();
        for _ in providers {
            upstreams.push(FakeUpstream::start().await);
        }
        let upstream_of = providers.iter().copied().zip(0..).collect();
        self.tenant_at(providers, upstreams, upstream_of).await
    }

    /// [`TestApp::tenant`] with every provider key at one shared fake upstream.
    pub async fn tenant_on_one_upstream(&self, providers: &[&'static str]) -> Tenant<'_> {
        let upstreams = vec![FakeUpstream::start().await];
        let upstream_of = providers.iter().map(|p| (*p, 0)).collect();
        self.tenant_at(providers, upstreams, upstream_of).await
    }

    async fn tenant_at(
        &self,
        providers: &[&'static str],
        upstreams: Vec<FakeUpstream>,
        upstream_of: HashMap<&'static str, usize>,
    ) -> Tenant<'_> {
        let n = self.tenants.fetch_add(1, Ordering::Relaxed) + 1;
        let owner = self
            .signup(&format!("tenant{n}@example.com"), &format!("Tenant {n}"))
            .await;
        let mut credentials = HashMap::new();
        for provider in providers {
            let fake = &upstreams[upstream_of[provider]];
            let base_url = format!("{}{}", fake.base_url(), path_prefix(provider));
            let (status, body) = self
                .post(
                    "/api/v1/provider-keys",
                    &owner.token,
                    json!({"provider": provider, "name": provider, "api_key": PROVIDER_SECRET, "base_url": base_url}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{provider}: {body}");
            credentials.insert(*provider, body["id"].as_str().unwrap().to_owned());
        }
        let team = self.team(&owner.token, "t").await;
        let (key_id, key) = self.api_key(&owner.token, &team, "k").await;
        Tenant {
            app: self,
            owner,
            team,
            key_id,
            key,
            credentials,
            upstreams,
            upstream_of,
        }
    }
}

impl Tenant<'_> {
    /// The owner's management token.
    pub fn token(&self) -> &str {
        &self.owner.token
    }

    /// The organization's id.
    pub fn org(&self) -> &str {
        &self.owner.org
    }

    /// The fake upstream behind `provider`'s key.
    pub fn fake(&self, provider: &str) -> &FakeUpstream {
        let at = self.upstream_of.get(provider).unwrap_or_else(|| {
            panic!("the tenant has no {provider} key");
        });
        &self.upstreams[*at]
    }

    /// The one fake upstream of a tenant that has one.
    pub fn upstream(&self) -> &FakeUpstream {
        assert_eq!(self.upstreams.len(), 1, "the tenant has several upstreams");
        &self.upstreams[0]
    }

    /// The tenant with every upstream answering `scenario` when nothing is scripted:
    /// `app.tenant(&["openai"]).await.answering(Scenario::text("ok"))`.
    pub fn answering(self, scenario: Scenario) -> Self {
        self.set_default(scenario);
        self
    }

    /// Makes every upstream of the tenant answer `scenario` when nothing is scripted.
    pub fn set_default(&self, scenario: Scenario) {
        for fake in &self.upstreams {
            fake.set_default(scenario.clone());
        }
    }

    /// Requests every upstream of the tenant has received, together.
    pub fn upstream_requests(&self) -> usize {
        self.upstreams.iter().map(FakeUpstream::request_count).sum()
    }

    /// A `POST` to `api` authenticated with the gateway key the way its SDK does it.
    pub fn request(&self, api: Api) -> RequestBuilder {
        let req = self.app.http.post(self.app.url(api.path()));
        match api {
            Api::Chat | Api::Embeddings => req.bearer_auth(&self.key),
            Api::Messages => req
                .header("x-api-key", &self.key)
                .header("anthropic-version", "2023-06-01"),
        }
    }

    /// Sends `body` to `api`.
    pub async fn send(&self, api: Api, body: Value) -> Response {
        self.request(api).json(&body).send().await.unwrap()
    }

    /// `POST /v1/chat/completions`.
    pub async fn chat(&self, body: Value) -> Response {
        self.send(Api::Chat, body).await
    }

    /// `POST /v1/messages`.
    pub async fn messages(&self, body: Value) -> Response {
        self.send(Api::Messages, body).await
    }

    /// `POST /v1/embeddings`.
    pub async fn embeddings(&self, body: Value) -> Response {
        self.send(Api::Embeddings, body).await
    }

    /// A one-message chat call to `model`: its status and `x-flo2-cost-usd` (empty if none).
    pub async fn chat_cost(&self, model: &str) -> (StatusCode, String) {
        let resp = self
            .chat(json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        let cost = resp
            .headers()
            .get("x-flo2-cost-usd")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (resp.status(), cost)
    }

    /// Sends `body` to `api` with `"stream": true` and reads the whole event stream.
    pub async fn stream(&self, api: Api, mut body: Value) -> Streamed {
        body["stream"] = json!(true);
        let resp = self.send(api, body).await;
        let status = resp.status();
        let headers = resp.headers().clone();
        let events = sse(&resp.text().await.unwrap());
        Streamed {
            status,
            headers,
            events,
        }
    }

    /// `POST /api/v1/prices` as the owner.
    pub async fn price(&self, body: Value) -> (StatusCode, Value) {
        self.app.post("/api/v1/prices", self.token(), body).await
    }

    /// The organization's own entries of `GET /api/v1/prices`.
    pub async fn own_prices(&self) -> Vec<Value> {
        let (s, body) = self.app.get("/api/v1/prices", self.token()).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body.as_array()
            .unwrap()
            .iter()
            .filter(|p| p["source"] == "organization")
            .cloned()
            .collect()
    }

    /// `PUT /api/v1/routes/{name}` as the owner.
    pub async fn put_route(&self, name: &str, policy: Value) -> Response {
        self.app
            .http
            .put(self.app.url(&format!("/api/v1/routes/{name}")))
            .bearer_auth(self.token())
            .json(&policy)
            .send()
            .await
            .unwrap()
    }

    /// [`Tenant::put_route`] that must succeed (created or replaced).
    pub async fn route(&self, name: &str, policy: Value) {
        let resp = self.put_route(name, policy).await;
        let status = resp.status();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status}: {}",
            resp.text().await.unwrap()
        );
    }

    /// Waits (up to 4 s) for at least `at_least` usage rows; returns them oldest first.
    pub async fn usage_rows(&self, at_least: usize) -> Vec<flo2_store::UsageRecord> {
        self.app.usage_rows(self.org(), at_least).await
    }

    /// `GET /api/v1/usage{query}` as the owner (`query` empty or starting with `?`).
    pub async fn usage_report(&self, query: &str) -> (StatusCode, Value) {
        self.app
            .get(&format!("/api/v1/usage{query}"), self.token())
            .await
    }

    /// The body of `GET path` as the owner, as text.
    pub async fn text(&self, path: &str) -> String {
        let resp = self
            .app
            .http
            .get(self.app.url(path))
            .bearer_auth(self.token());
        resp.send().await.unwrap().text().await.unwrap()
    }

    /// A CSV export at `path` (`/api/v1/usage/export.csv`, `.../summary.csv?...`) as the owner,
    /// parsed into rows of cells; it must answer 200 with `text/csv`.
    pub async fn csv(&self, path: &str) -> Vec<Vec<String>> {
        csv(self.app, self.token(), path).await
    }
}

/// A CSV export at `path` read with `token`, parsed; it must answer 200 with `text/csv`.
pub async fn csv(app: &TestApp, token: &str, path: &str) -> Vec<Vec<String>> {
    let resp = app
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    parse_csv(&resp.text().await.unwrap())
}

/// A minimal RFC 4180 reader (quoted cells, doubled quotes, CRLF).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}
