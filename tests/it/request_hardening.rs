//! Issue 25, written from the attacker's side: model names that try to be URL paths, calls that
//! try to be free, tenants that try to open each other's breakers, bodies that try to pick the
//! upstream or its key, hedges that try to multiply traffic, and numbers at the type limits.
//! Real HTTP against the real server and fake upstreams that log every path they receive, on
//! SQLite and (with `FLO2_TEST_DATABASE_URL`) PostgreSQL.


use std::time::Duration;

use crate::common;
use crate::common::{Account, TestApp, TestDb};
use flo2_testkit::{FakeUpstream, Scenario};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// An organization whose every provider key points at its own fake upstream.
struct Org {
    owner: Account,
    key: String,
    fakes: Vec<(&'static str, FakeUpstream)>,
}

async fn org(app: &TestApp, email: &str, providers: &[(&'static str, &str)]) -> Org {
    let owner = app.signup(email, email).await;
    let mut fakes = Vec::new();
    for (provider, version) in providers {
        let fake = FakeUpstream::start().await;
        fake.set_default(Scenario::text("ok").usage(100, 10));
        let (status, body) = app
            .post(
                "/api/v1/provider-keys",
                &owner.token,
                json!({"provider": provider, "name": provider, "api_key": "sk-0123456789abcdef",
                       "base_url": format!("{}/{version}", fake.base_url())}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        fakes.push((*provider, fake));
    }
    let team = app.team(&owner.token, "t").await;
    let (_, key) = app.api_key(&owner.token, &team, "k").await;
    Org { owner, key, fakes }
}

impl Org {
    fn fake(&self, provider: &str) -> &FakeUpstream {
        &self.fakes.iter().find(|(p, _)| *p == provider).unwrap().1
    }

    fn upstream_requests(&self) -> usize {
        self.fakes.iter().map(|(_, f)| f.request_count()).sum()
    }
}

/// `PUT /api/v1/routes/{name}` at `path`.
async fn put_route(
    app: &TestApp,
    token: &str,
    path: impl AsRef<str>,
    policy: Value,
) -> reqwest::Response {
    app.http
        .put(app.url(path.as_ref()))
        .bearer_auth(token)
        .json(&policy)
        .send()
        .await
        .unwrap()
}

/// [`put_route`] that must succeed.
async fn route_ok(app: &TestApp, token: &str, path: impl AsRef<str>, policy: Value) {
    let resp = put_route(app, token, path, policy).await;
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
}

/// An organization with Anthropic and OpenAI keys and a route `name` over
/// `anthropic/claude-haiku-4-5` then `openai/gpt-4o-mini` by `strategy`.
async fn haiku_and_mini(app: &TestApp, email: &str, name: &str, strategy: &str) -> Org {
    let o = org(app, email, &[("anthropic", "v1"), ("openai", "v1")]).await;
    route_ok(
        app,
        &o.owner.token,
        format!("/api/v1/routes/{name}"),
        json!({"strategy": strategy, "targets": [{"provider": "anthropic", "model": "claude-haiku-4-5"}, {"provider": "openai", "model": "gpt-4o-mini"}]}),
    )
    .await;
    o
}

/// The body of `GET path` as text.
async fn text(app: &TestApp, token: &str, path: &str) -> String {
    let resp = app.http.get(app.url(path)).bearer_auth(token).send().await;
    resp.unwrap().text().await.unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Api {
    Chat,
    Messages,
    Embeddings,
}

async fn call(app: &TestApp, key: &str, api: Api, body: Value) -> reqwest::Response {
    let req = match api {
        Api::Chat => app
            .http
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(key),
        Api::Messages => app
            .http
            .post(app.url("/v1/messages"))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01"),
        Api::Embeddings => app.http.post(app.url("/v1/embeddings")).bearer_auth(key),
    };
    req.json(&body).send().await.unwrap()
}

fn body_for(api: Api, model: &str) -> Value {
    match api {
        Api::Embeddings => json!({"model": model, "input": "hi"}),
        _ => {
            json!({"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})
        }
    }
}

/// The error message in the caller's shape (OpenAI or Anthropic), checking the shape.
async fn error_message(api: Api, resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.unwrap();
    if api == Api::Messages {
        assert_eq!(body["type"], "error", "{body}");
    }
    body["error"]["message"].as_str().unwrap().to_owned()
}

const EVERY_FAMILY: [(&str, &str); 5] = [
    ("openai", "v1"),
    ("anthropic", "v1"),
    ("gemini", "v1beta"),
    ("openrouter", "v1"),
    ("groq", "v1"),
];

#[tokio::test]
async fn model_names_are_data_never_url_paths() {
    let app = TestApp::start().await;
    let o = org(&app, "a@example.com", &EVERY_FAMILY).await;
    let hostile = [
        "x/../../../v1/files#",
        "a?key=stolen",
        "zzz/../gemini-2.5-pro",
        "gemini-2.5-pro%2F..%2Ffiles",
        "gemini-2.5-pro:streamGenerateContent",
        "models/gemini-2.5-pro",
        "a b",
        "a\tb",
        "a\u{0}b",
        "..",
        "./a",
        "a//b",
    ];
    for (provider, _) in EVERY_FAMILY {
        for name in hostile {
            // `:` and `models/…` are fine in a JSON body, but not in Gemini's URL.
            if provider != "gemini" && (name.contains(':') || name == "models/gemini-2.5-pro") {
                continue;
            }
            for api in [Api::Chat, Api::Messages, Api::Embeddings] {
                let model = format!("{provider}/{name}");
                let resp = call(&app, &o.key, api, body_for(api, &model)).await;
                assert_eq!(
                    resp.status(),
                    StatusCode::BAD_REQUEST,
                    "{model:?} via {api:?}"
                );
                let message = error_message(api, resp).await;
                assert!(message.contains("`model`"), "{model:?}: {message}");
            }
        }
    }
    assert_eq!(o.upstream_requests(), 0, "nothing reached any upstream");

    // A plain Gemini id goes to exactly its own endpoint, as one path segment.
    let resp = call(
        &app,
        &o.key,
        Api::Chat,
        body_for(Api::Chat, "gemini/gemini-2.5-flash"),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let paths: Vec<String> = o
        .fake("gemini")
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, ["/v1beta/models/gemini-2.5-flash:generateContent"]);

    // Routes and prices that name such a model are refused when saved, naming the field.
    for (target, field) in [
        (
            json!({"provider": "gemini", "model": "zzz/../gemini-2.5-pro"}),
            "targets[0].model",
        ),
        (
            json!({"provider": "openrouter", "model": "a/../b"}),
            "targets[0].model",
        ),
        (
            json!({"provider": "openai", "model": "gpt-4o?x=1"}),
            "targets[0].model",
        ),
    ] {
        let resp = put_route(
            &app,
            &o.owner.token,
            "/api/v1/routes/r",
            json!({"strategy": "priority", "targets": [target]}),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "invalid_field");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    for model in ["zzz/../gemini-2.5-pro", "gemini-2.5-pro?x", "a b"] {
        let (status, body) = app
            .post(
                "/api/v1/prices",
                &o.owner.token,
                json!({"provider": "gemini", "model": model, "input_per_mtok": "1", "output_per_mtok": "1"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{model}");
        assert_eq!(body["code"], "invalid_field", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("`model`"),
            "{body}"
        );
    }
    // A route target stored before the check (written straight into the database, before the
    // organization's first call loads its configuration) is never sent anywhere: it does not
    // qualify, and the caller learns why.
    let legacy = org(&app, "legacy@example.com", &[("gemini", "v1beta")]).await;
    route_ok(
        &app,
        &legacy.owner.token,
        "/api/v1/routes/legacy",
        json!({"strategy": "priority", "targets": [{"provider": "gemini", "model": "gemini-2.5-flash"}]}),
    ).await;
    let policy = json!({"strategy": "priority", "targets": [{"provider": "gemini", "model": "x/../../v1/files"}]});
    let sql = format!(
        "UPDATE routes SET config = '{}' WHERE name = 'legacy'",
        policy.to_string().replace('\'', "''")
    );
    assert_eq!(common::exec_sql(&app.db, &sql).await, 1);
    let resp = call(&app, &legacy.key, Api::Chat, body_for(Api::Chat, "legacy")).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let message = error_message(Api::Chat, resp).await;
    assert!(
        message.contains("gemini/x/../../v1/files: gemini model ids are"),
        "{message}"
    );
    assert_eq!(legacy.upstream_requests(), 0);
}

#[tokio::test]
async fn nothing_is_silently_free() {
    let app = TestApp::start().await;
    let o = org(
        &app,
        "free@example.com",
        &[("openai-compatible", "v1"), ("openai", "v1")],
    )
    .await;
    for model in ["openai-compatible/my-finetune", "openai/gpt-4o-mini"] {
        let resp = call(&app, &o.key, Api::Chat, body_for(Api::Chat, model)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{model}");
    }
    let rows = app.usage_rows(&o.owner.org, 2).await;
    let by_model = |m: &str| rows.iter().find(|r| r.model == m).unwrap();
    assert!(by_model("my-finetune").unpriced);
    assert_eq!(by_model("my-finetune").cost_picousd, 0);
    assert!(!by_model("gpt-4o-mini").unpriced);
    assert!(by_model("gpt-4o-mini").cost_picousd > 0);

    let (status, report) = app
        .get("/api/v1/usage?group_by=model", &o.owner.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["totals"]["unpriced_calls"], 1, "{report}");
    let row = |key: &str| {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .unwrap()
            .clone()
    };
    assert_eq!(row("openai-compatible/my-finetune")["unpriced_calls"], 1);
    assert_eq!(row("openai/gpt-4o-mini")["unpriced_calls"], 0);

    let csv = text(&app, &o.owner.token, "/api/v1/usage/export.csv").await;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "unpriced").unwrap();
    let flags: Vec<(String, String)> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[10].to_owned(), cells[at].to_owned())
        })
        .collect();
    assert!(
        flags.contains(&("my-finetune".into(), "true".into())),
        "{flags:?}"
    );
    assert!(
        flags.contains(&("gpt-4o-mini".into(), "false".into())),
        "{flags:?}"
    );
    let summary = text(
        &app,
        &o.owner.token,
        "/api/v1/usage/summary.csv?group_by=model",
    )
    .await;
    assert!(
        summary.lines().next().unwrap().ends_with(",unpriced_calls"),
        "{summary}"
    );
}

/// A route over `openai/gpt-4o-mini` then `groq/llama-3.1-8b-instant` with `timeout_ms`
/// attempts and no retries.
async fn two_target_route(app: &TestApp, o: &Org, name: &str, timeout_ms: u64) {
    route_ok(
        app,
        &o.owner.token,
        format!("/api/v1/routes/{name}"),
        json!({"strategy": "priority",
            "fallback": {"retries_per_target": 0, "attempt_timeout_ms": timeout_ms, "deadline_ms": 10000},
            "targets": [{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "groq", "model": "llama-3.1-8b-instant"}]}),
    ).await;
}

#[tokio::test]
async fn one_tenant_cannot_open_another_tenants_breakers() {
    let app = TestApp::start().await;
    let providers = [("openai", "v1"), ("groq", "v1")];
    let (a, b, c) = (
        org(&app, "attacker@example.com", &providers).await,
        org(&app, "b@example.com", &providers).await,
        org(&app, "c@example.com", &providers).await,
    );
    // Every tenant's OpenAI is a little slow; the attacker's 50 ms attempts time out on it.
    for o in [&a, &b, &c] {
        o.fake("openai").set_default(
            Scenario::text("ok")
                .usage(10, 1)
                .first_byte_delay(Duration::from_millis(150)),
        );
    }
    two_target_route(&app, &a, "r", 50).await;
    two_target_route(&app, &b, "r", 5_000).await;
    two_target_route(&app, &c, "r", 5_000).await;
    for _ in 0..6 {
        let resp = call(&app, &a.key, Api::Chat, body_for(Api::Chat, "r")).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // The attacker's breaker is open now: its calls skip OpenAI and say so.
    let resp = call(&app, &a.key, Api::Chat, body_for(Api::Chat, "r")).await;
    assert_eq!(resp.headers()["x-flo2-target"], "groq/llama-3.1-8b-instant");
    assert_eq!(
        resp.headers()["x-flo2-attempt-errors"],
        "openai/gpt-4o-mini: skipped, circuit breaker open"
    );
    assert_eq!(resp.headers()["x-flo2-attempts"], "1");
    // The others still reach their own OpenAI, with no word of a breaker.
    for o in [&b, &c] {
        let before = o.fake("openai").request_count();
        let resp = call(&app, &o.key, Api::Chat, body_for(Api::Chat, "r")).await;
        assert_eq!(resp.headers()["x-flo2-target"], "openai/gpt-4o-mini");
        assert!(resp.headers().get("x-flo2-attempt-errors").is_none());
        assert_eq!(o.fake("openai").request_count(), before + 1);
        assert_eq!(o.fake("groq").request_count(), 0);
    }
}

#[tokio::test]
async fn override_fields_are_removed_on_every_endpoint_at_any_depth() {
    let app = TestApp::start().await;
    let o = org(
        &app,
        "steer@example.com",
        &[("openai", "v1"), ("anthropic", "v1")],
    )
    .await;
    let steering = json!({"api_base": "http://evil", "baseURL": "http://evil", "API_KEY": "sk-evil",
        "extra-headers": {"x": "y"}, "Custom_LLM_Provider": "evil", "aws_secret_access_key": "k"});
    let with_steering = |mut body: Value| {
        for (k, v) in steering.as_object().unwrap() {
            body[k] = v.clone();
        }
        body["nested"] = json!({"deeper": [steering.clone()], "kept": 1});
        body
    };
    for (api, model, provider) in [
        (Api::Chat, "openai/gpt-4o-mini", "openai"),
        (Api::Messages, "anthropic/claude-haiku-4-5", "anthropic"),
        (Api::Embeddings, "openai/text-embedding-3-small", "openai"),
    ] {
        let resp = call(&app, &o.key, api, with_steering(body_for(api, model))).await;
        assert_eq!(resp.status(), StatusCode::OK, "{api:?}");
        let sent = o.fake(provider).requests().pop().unwrap();
        let text = sent.body.to_string().to_lowercase();
        for word in [
            "evil",
            "api_base",
            "baseurl",
            "api_key",
            "extra-headers",
            "aws_secret",
        ] {
            assert!(!text.contains(word), "{api:?} forwarded {word}: {text}");
        }
        assert_eq!(sent.body["nested"]["kept"], 1, "other fields stay");
        assert_ne!(sent.header("authorization"), Some("Bearer sk-evil"));
    }
}

#[tokio::test]
async fn hedges_draw_on_a_budget_and_attempts_count_only_what_was_sent() {
    let db = TestDb::new().await;
    let app = TestApp::start_configured(db, common::master_key(), flo2::Mode::Serve, |c| {
        c.hedge_budget_percent = 10;
        c.hedge_budget_floor_per_sec = 0;
    })
    .await;
    let providers = [
        ("openai", "v1"),
        ("groq", "v1"),
        ("mistral", "v1"),
        ("xai", "v1"),
    ];
    let o = org(&app, "hedge@example.com", &providers).await;
    for (_, fake) in &o.fakes {
        fake.set_default(
            Scenario::text("ok")
                .usage(10, 1)
                .first_byte_delay(Duration::from_millis(300)),
        );
    }
    route_ok(
        &app,
        &o.owner.token,
        "/api/v1/routes/hedged",
        json!({"strategy": "race", "race": {"mode": "hedged", "fanout": 4, "hedge_delay_ms": 20},
            "targets": [{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "groq", "model": "llama-3.1-8b-instant"},
                        {"provider": "mistral", "model": "mistral-small-latest"}, {"provider": "xai", "model": "grok-3-mini"}]}),
    ).await;
    const REQUESTS: usize = 100;
    let calls = (0..REQUESTS).map(|_| call(&app, &o.key, Api::Chat, body_for(Api::Chat, "hedged")));
    let answers = futures_util::future::join_all(calls).await;
    let mut reported = 0;
    for resp in answers {
        assert_eq!(resp.status(), StatusCode::OK);
        reported += resp.headers()["x-flo2-attempts"]
            .to_str()
            .unwrap()
            .parse::<usize>()
            .unwrap();
    }
    let sent = o.upstream_requests();
    // Without a budget a slow provider makes this 4 × 100 calls; with 10 % it stays near 100.
    assert!(
        sent <= REQUESTS + REQUESTS / 10 + 1,
        "{sent} upstream calls for {REQUESTS} requests"
    );
    assert_eq!(
        reported, sent,
        "x-flo2-attempts counts exactly the calls sent"
    );

    // A target that cannot express the request is no attempt: `n` is refused for Anthropic.
    let o2 = haiku_and_mini(&app, "express@example.com", "mixed", "priority").await;
    let mut body = body_for(Api::Chat, "mixed");
    body["n"] = json!(2);
    let resp = call(&app, &o2.key, Api::Chat, body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-flo2-attempts"], "1");
    assert_eq!(o2.fake("anthropic").request_count(), 0);
    let rows = app.usage_rows(&o2.owner.org, 1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].attempt, rows[0].attempt_role.as_ref()),
        (1, "primary")
    );
}

#[tokio::test]
async fn token_limits_at_the_type_limits_cannot_wrap_the_checks() {
    let app = TestApp::start().await;
    let o = haiku_and_mini(&app, "limits@example.com", "cheap", "cheapest").await;
    for max in [json!(u64::MAX), json!(u64::MAX - 100), json!(i64::MAX)] {
        for api in [Api::Chat, Api::Messages] {
            let mut body = body_for(api, "cheap");
            body["max_tokens"] = max.clone();
            let resp = call(&app, &o.key, api, body).await;
            // Far beyond every context window: no target qualifies (it must not wrap past it).
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{max} {api:?}");
            let message = error_message(api, resp).await;
            assert!(message.contains("context window"), "{message}");
        }
    }
    assert_eq!(o.upstream_requests(), 0);
    // Directly addressed, the number reaches the provider, which judges it; flo2 does not panic.
    let mut body = body_for(Api::Chat, "openai/gpt-4o-mini");
    body["max_completion_tokens"] = json!(u64::MAX);
    let resp = call(&app, &o.key, Api::Chat, body).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn numbers_reach_the_provider_as_the_caller_wrote_them() {
    let app = TestApp::start().await;
    let o = org(
        &app,
        "numbers@example.com",
        &[("openai", "v1"), ("anthropic", "v1")],
    )
    .await;
    let written = [
        r#""seed":123456789012345678901234567890"#,
        r#""top_k":-0"#,
        r#""temperature":0.7"#,
    ];
    for (api, model, provider) in [
        (Api::Chat, "openai/gpt-4o-mini", "openai"),
        (Api::Messages, "anthropic/claude-haiku-4-5", "anthropic"),
        (Api::Embeddings, "openai/text-embedding-3-small", "openai"),
    ] {
        let body = body_for(api, model).to_string();
        let body = format!(
            "{{{},{}}}",
            written.join(","),
            body.trim_start_matches('{').trim_end_matches('}')
        );
        let req = match api {
            Api::Chat => app
                .http
                .post(app.url("/v1/chat/completions"))
                .bearer_auth(&o.key),
            Api::Messages => app
                .http
                .post(app.url("/v1/messages"))
                .header("x-api-key", &o.key)
                .header("anthropic-version", "2023-06-01"),
            Api::Embeddings => app.http.post(app.url("/v1/embeddings")).bearer_auth(&o.key),
        };
        let resp = req
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{api:?}");
        let sent = o.fake(provider).requests().pop().unwrap().raw_body;
        for number in written {
            assert!(sent.contains(number), "{api:?}: {number} not in {sent}");
        }
    }
}
