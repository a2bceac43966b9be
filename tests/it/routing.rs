//! Routes end to end: several fake upstreams posing as different providers, real HTTP in and
//! out, on SQLite and PostgreSQL, through the OpenAI and the Anthropic inbound API.

use std::time::{Duration, Instant};

use crate::common::{answer_ok, Api, Tenant, TestApp, PROVIDER_SECRET};
use flo2_testkit::{FakeUpstream, Scenario};
use reqwest::StatusCode;
use serde_json::{json, Value};

const BOTH: [(Api, bool); 4] = [
    (Api::Chat, false),
    (Api::Chat, true),
    (Api::Messages, false),
    (Api::Messages, true),
];

/// A one-message call to `model` through `api`, streaming if `stream`, with the fields of
/// `extra` added to the body.
async fn call(
    n: &Tenant<'_>,
    api: Api,
    stream: bool,
    model: &str,
    extra: Value,
) -> reqwest::Response {
    let mut body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream, "max_tokens": 50});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    n.send(api, body).await
}

/// A call that must succeed; returns `x-flo2-target`, the body text and the headers.
async fn ok(
    n: &Tenant<'_>,
    api: Api,
    stream: bool,
    model: &str,
    extra: Value,
) -> (String, String, reqwest::header::HeaderMap) {
    let resp = call(n, api, stream, model, extra).await;
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "{api:?} stream={stream}: {text} {headers:?}"
    );
    if stream {
        assert!(!text.contains("\"error\""), "{text}");
        assert!(text.contains("ok") || text.contains("data:"), "{text}");
    }
    (
        headers["x-flo2-target"].to_str().unwrap().to_owned(),
        text,
        headers,
    )
}

#[tokio::test]
async fn the_routes_api_validates_checks_roles_and_isolates_tenants() {
    let app = TestApp::start().await;
    let n = app.tenant(&["openai", "groq"]).await.answering(answer_ok());
    let policy = json!({"strategy": "priority", "targets": [{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "groq", "model": "llama-3.1-8b-instant", "credentials": [n.credentials["groq"]]}]});
    let put = |name: &str, token: &str, body: Value| {
        app.http
            .put(app.url(&format!("/api/v1/routes/{name}")))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let resp = put("chat", &n.owner.token, policy.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["name"], "chat");
    assert_eq!(
        created["fallback"]["enabled"], true,
        "defaults are filled in: {created}"
    );
    assert_eq!(
        put("chat", &n.owner.token, policy.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "replaced"
    );
    let (status, list) = app.get("/api/v1/routes", &n.owner.token).await;
    assert_eq!(
        (status, list.as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let (status, one) = app.get("/api/v1/routes/chat", &n.owner.token).await;
    assert_eq!(
        (status, one["strategy"].as_str()),
        (StatusCode::OK, Some("priority"))
    );

    // Bad input: a clear problem naming the field.
    for (name, body, needle) in [
        ("Bad.Name", policy.clone(), "route name"),
        ("openai", policy.clone(), "provider name"),
        (
            "x",
            json!({"strategy": "race", "targets": [{"provider": "openai", "model": "a"}]}),
            "race",
        ),
        (
            "x",
            json!({"strategy": "cheapest", "targets": [{"provider": "nope", "model": "a"}]}),
            "provider",
        ),
        (
            "x",
            json!({"strategy": "priority", "targets": [{"provider": "openai", "model": "a"}], "max_output_per_mtok": "-1"}),
            "max_output_per_mtok",
        ),
        (
            "x",
            json!({"strategy": "priority", "targets": [{"provider": "openai", "model": "a", "credentials": [n.credentials["groq"]]}]}),
            "not a openai key",
        ),
    ] {
        let resp = put(name, &n.owner.token, body).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{name}");
        let problem: Value = resp.json().await.unwrap();
        assert!(
            problem["message"].as_str().unwrap().contains(needle),
            "{problem}"
        );
        assert!(problem["code"].is_string());
    }

    // Another tenant sees nothing and cannot pin our keys.
    let other = app.signup("eve@example.com", "Evil").await;
    assert_eq!(
        app.get("/api/v1/routes/chat", &other.token).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/v1/routes", &other.token).await.1, json!([]));
    assert_eq!(
        app.delete("/api/v1/routes/chat", &other.token).await.0,
        StatusCode::NOT_FOUND
    );
    let resp = put("steal", &other.token, json!({"strategy": "priority", "targets": [{"provider": "groq", "model": "m", "credentials": [n.credentials["groq"]]}]})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // ... nor call our route with its own key.
    let team = app.team(&other.token, "t").await;
    let (_, other_key) = app.api_key(&other.token, &team, "k").await;
    let resp = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&other_key)
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Roles: a member may read but not write.
    let (status, invite) = app
        .post("/api/v1/invites", &n.owner.token, json!({"role": "member"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let member = app.signup("mem@example.com", "Own").await;
    let (status, _) = app
        .post(
            "/api/v1/invites/accept",
            &member.token,
            json!({"token": invite["token"]}),
        )
        .await;
    assert!(status.is_success());
    let (status, _) = app
        .post(
            "/api/v1/session/organization",
            &member.token,
            json!({"organization_id": n.owner.org}),
        )
        .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(
        app.get("/api/v1/routes/chat", &member.token).await.0,
        StatusCode::OK
    );
    assert_eq!(
        put("chat", &member.token, policy.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete("/api/v1/routes/chat", &member.token).await.0,
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        app.delete("/api/v1/routes/chat", &n.owner.token).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/v1/routes/chat", &n.owner.token).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, doc) = app.get("/api/v1/openapi.json", "").await;
    assert!(doc["paths"]["/api/v1/routes/{name}"]["put"].is_object());
}

/// Writers that read before they write (a route put checks whether the name exists) used to fail
/// on SQLite with "database is locked" when another writer committed in between; they now queue.
#[tokio::test]
async fn concurrent_management_writes_all_succeed() {
    let app = TestApp::start().await;
    let n = app.tenant(&["openai"]).await.answering(answer_ok());
    let team = app.team(&n.owner.token, "writers").await;
    let writes = (0..24).map(|i| {
        let policy = json!({"strategy": "priority", "targets": [{"provider": "openai", "model": "gpt-4o-mini"}]});
        let route = app
            .http
            .put(app.url(&format!("/api/v1/routes/r{i}")))
            .bearer_auth(&n.owner.token)
            .json(&policy)
            .send();
        let key = app.post(
            "/api/v1/api-keys",
            &n.owner.token,
            json!({"name": format!("k{i}"), "team_id": team}),
        );
        async move { (route.await.unwrap().status(), key.await.0) }
    });
    for (route, key) in futures_util::future::join_all(writes).await {
        assert_eq!((route, key), (StatusCode::CREATED, StatusCode::CREATED));
    }
    let (_, routes) = app.get("/api/v1/routes", &n.owner.token).await;
    assert_eq!(routes.as_array().unwrap().len(), 24);
}

#[tokio::test]
async fn cheapest_picks_the_cheapest_qualifying_target() {
    let app = TestApp::start().await;
    let n = app
        .tenant(&["openai", "cerebras", "groq"])
        .await
        .answering(answer_ok());
    n.route(
        "cheap",
        json!({"strategy": "cheapest", "targets": [
            {"provider": "openai", "model": "gpt-4o-mini"},       // $0.15 / $0.60, 128k
            {"provider": "cerebras", "model": "llama3.1-8b"},     // $0.10 / $0.10, 32k
            {"provider": "groq", "model": "llama-3.1-8b-instant"} // $0.05 / $0.08, 131k
        ]}),
    )
    .await;
    for (api, stream) in BOTH {
        let (target, _, headers) = ok(&n, api, stream, "cheap", json!({})).await;
        assert_eq!(target, "groq/llama-3.1-8b-instant");
        assert_eq!(headers["x-flo2-route"], "cheap");
        assert_eq!(headers["x-flo2-attempts"], "1");
        assert_eq!(
            headers["x-flo2-credential"].to_str().unwrap(),
            n.credentials["groq"]
        );
    }
    // Groq gets dearer: Cerebras is now the cheapest.
    let (status, body) = n.price(json!({"provider": "groq", "model": "llama-3.1-8b-instant", "input_per_mtok": "1.00", "output_per_mtok": "1.00"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        ok(&n, Api::Chat, false, "cheap", json!({})).await.0,
        "cerebras/llama3.1-8b"
    );
    // About 40k prompt tokens: past Cerebras' 32k window, so GPT-4o mini (cheaper than Groq now).
    let long = "word ".repeat(32_000);
    let (target, _, _) = ok(
        &n,
        Api::Messages,
        false,
        "cheap",
        json!({"messages": [{"role": "user", "content": long}]}),
    )
    .await;
    assert_eq!(target, "openai/gpt-4o-mini");
    // Cerebras stated without tools: a request with tools skips it.
    let (status, _) = n.price(json!({"provider": "cerebras", "model": "llama3.1-8b", "input_per_mtok": "0.10", "output_per_mtok": "0.10", "tools": false})).await;
    assert_eq!(status, StatusCode::CREATED);
    let tools = json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]});
    assert_eq!(
        ok(&n, Api::Chat, false, "cheap", tools).await.0,
        "openai/gpt-4o-mini"
    );
    assert_eq!(
        ok(&n, Api::Chat, false, "cheap", json!({})).await.0,
        "cerebras/llama3.1-8b"
    );
    // Nothing qualifies: a clear 400 in the caller's shape saying why.
    let huge = "word ".repeat(140_000);
    for api in [Api::Chat, Api::Messages] {
        let resp = call(
            &n,
            api,
            false,
            "cheap",
            json!({"messages": [{"role": "user", "content": huge}]}),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: Value = resp.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("context window"), "{message}");
        if api == Api::Messages {
            assert_eq!(body["type"], "error");
        } else {
            assert_eq!(body["error"]["type"], "invalid_request_error");
        }
    }
    // Savings: every record's baseline is the route's first target, GPT-4o mini.
    let rows = n.usage_rows(8).await;
    let groq = rows.iter().find(|r| r.provider == "groq").unwrap();
    assert_eq!(groq.route.as_deref(), Some("cheap"));
    assert!(groq.baseline_cost_picousd > groq.cost_picousd, "{groq:?}");
    // ... and the report shows them per route, as routing (not cache) savings, to the digit.
    let (status, report) = n.usage_report("?group_by=route").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let row = &report["rows"][0];
    assert_eq!(row["key"], "cheap");
    let sum: i128 = rows
        .iter()
        .map(|r| i128::from(r.baseline_cost_picousd - r.cost_picousd))
        .sum();
    let savings = flo2_core::PicoUsd(sum).to_string();
    assert_eq!(row["savings_usd"], savings.as_str());
    assert_eq!(row["routing_savings_usd"], savings.as_str());
    assert_eq!(row["cache_savings_usd"], "0.000000000000");
    assert!(sum > 0);
}

#[tokio::test]
async fn fastest_settles_on_the_fastest_target_and_moves_when_it_slows() {
    let app = TestApp::start().await;
    let n = app
        .tenant(&["openai", "groq", "mistral"])
        .await
        .answering(answer_ok());
    let delay = |provider: &str, ms: u64| {
        n.fake(provider).set_default(
            Scenario::text("ok")
                .usage(10, 2)
                .first_byte_delay(Duration::from_millis(ms)),
        )
    };
    delay("openai", 120);
    delay("groq", 5);
    delay("mistral", 60);
    n.route("quick", json!({"strategy": "fastest", "explore_percent": 0, "targets": [
        {"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "groq", "model": "llama-3.1-8b-instant"}, {"provider": "mistral", "model": "mistral-small-latest"}]}))
    .await;
    let mut served = Vec::new();
    for _ in 0..8 {
        served.push(ok(&n, Api::Chat, false, "quick", json!({})).await.0);
    }
    // Three requests measure the three targets; from then on the fastest serves.
    assert!(
        served[3..].iter().all(|t| t == "groq/llama-3.1-8b-instant"),
        "{served:?}"
    );
    delay("groq", 400);
    let mut after = Vec::new();
    for _ in 0..8 {
        after.push(ok(&n, Api::Messages, true, "quick", json!({})).await.0);
    }
    assert!(
        after[4..]
            .iter()
            .all(|t| t == "mistral/mistral-small-latest"),
        "moved within four requests: {after:?}"
    );
}

#[tokio::test]
async fn fallback_hides_every_kind_of_upstream_failure() {
    let app = TestApp::start().await;
    let n = app
        .tenant(&["openai", "anthropic", "groq"])
        .await
        .answering(answer_ok());
    // A key whose provider refuses connections.
    let (status, _) = app.post("/api/v1/provider-keys", &n.owner.token, json!({"provider": "xai", "name": "dead", "api_key": PROVIDER_SECRET, "base_url": "http://127.0.0.1:9/v1"})).await;
    assert_eq!(status, StatusCode::CREATED);
    n.route("safe", json!({"strategy": "priority", "fallback": {"retries_per_target": 0, "attempt_timeout_ms": 400, "deadline_ms": 5000},
        "targets": [{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "anthropic", "model": "claude-haiku-4-5"}]}))
    .await;
    let openai = n.fake("openai");
    let failures: Vec<(&str, Scenario)> = vec![
        ("500", Scenario::error(500, "boom")),
        ("429", Scenario::error(429, "slow down").retry_after(1)),
        ("529", Scenario::error(529, "Overloaded")),
        (
            "timeout",
            Scenario::text("late").first_byte_delay(Duration::from_secs(3)),
        ),
        (
            "dropped",
            Scenario::text("a b c d e f g")
                .drop_after(1)
                .chunk_delay(Duration::from_millis(5)),
        ),
    ];
    for (api, stream) in BOTH {
        for (why, scenario) in &failures {
            openai.push(scenario.clone());
            let (target, _, headers) = ok(&n, api, stream, "safe", json!({})).await;
            assert_eq!(
                target, "anthropic/claude-haiku-4-5",
                "{why} {api:?} {stream}"
            );
            assert_eq!(headers["x-flo2-attempts"], "2");
            let errors = headers["x-flo2-attempt-errors"].to_str().unwrap();
            assert!(errors.starts_with("openai/gpt-4o-mini: "), "{errors}");
            // The 429's key cooled down for its retry-after; let it pass before the next case.
            if *why == "429" {
                tokio::time::sleep(Duration::from_millis(1100)).await;
            }
            // Healthy calls in between keep OpenAI's breaker closed (this test is about
            // fallback; the breaker test is below).
            for _ in 0..2 {
                assert_eq!(
                    ok(&n, api, stream, "safe", json!({})).await.0,
                    "openai/gpt-4o-mini"
                );
            }
        }
    }
    // Connection refused.
    n.route("refused", json!({"strategy": "priority", "targets": [{"provider": "xai", "model": "grok-3-mini"}, {"provider": "groq", "model": "llama-3.1-8b-instant"}]})).await;
    // The route keeps the default of one retry per target: xai is tried twice, then groq serves;
    // the third refusal opens xai's breaker and later calls skip it without an attempt.
    let mut attempts = Vec::new();
    for (api, stream) in BOTH {
        let (target, _, headers) = ok(&n, api, stream, "refused", json!({})).await;
        assert_eq!(target, "groq/llama-3.1-8b-instant");
        attempts.push(headers["x-flo2-attempts"].to_str().unwrap().to_owned());
        if let Some(errors) = headers.get("x-flo2-attempt-errors") {
            let errors = errors.to_str().unwrap();
            assert!(
                errors.contains("xai/grok-3-mini: cannot connect")
                    || errors == "xai/grok-3-mini: skipped, circuit breaker open",
                "{errors}"
            );
        }
    }
    assert_eq!(attempts, ["3", "2", "1", "1"]);
    // A request the upstream rejects as bad is not retried elsewhere.
    let before = n.fake("anthropic").request_count();
    openai.push(Scenario::error(400, "bad request"));
    let resp = call(&n, Api::Chat, false, "safe", json!({})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(n.fake("anthropic").request_count(), before);
    // Everything down: one clear error in the caller's shape, within the deadline.
    for fake in [openai, n.fake("anthropic")] {
        fake.set_default(Scenario::error(503, "down"));
    }
    for (api, stream) in BOTH {
        let started = Instant::now();
        let resp = call(&n, api, stream, "safe", json!({})).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = resp.json().await.unwrap();
        if api == Api::Messages {
            assert_eq!(body["type"], "error");
        }
        let message = body["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("route safe")
                && message.contains("openai/gpt-4o-mini")
                && message.contains("anthropic/claude-haiku-4-5"),
            "{message}"
        );
        assert!(!message.contains(PROVIDER_SECRET));
    }
    // Every attempt is in the usage table with its role.
    let rows = n.usage_rows(1).await;
    assert!(rows
        .iter()
        .any(|r| r.attempt_role == "fallback" && r.status == 200));
    assert!(rows
        .iter()
        .any(|r| r.attempt_role == "primary" && r.status == 500));
}

#[tokio::test]
async fn an_open_breaker_stops_traffic_and_a_probe_lets_the_target_back() {
    let app = TestApp::start().await;
    let n = app.tenant(&["openai", "groq"]).await.answering(answer_ok());
    n.route("guarded", json!({"strategy": "priority", "fallback": {"retries_per_target": 0},
        "targets": [{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "groq", "model": "llama-3.1-8b-instant"}]}))
    .await;
    let dead = n.fake("openai");
    dead.set_default(Scenario::error(500, "dead"));
    // Three failures (FLO2_BREAKER_FAILURES in the tests) open the breaker.
    for _ in 0..3 {
        assert_eq!(
            ok(&n, Api::Chat, false, "guarded", json!({})).await.0,
            "groq/llama-3.1-8b-instant"
        );
    }
    assert_eq!(dead.request_count(), 3);
    for (api, stream) in BOTH {
        let (target, _, headers) = ok(&n, api, stream, "guarded", json!({})).await;
        assert_eq!(target, "groq/llama-3.1-8b-instant");
        assert_eq!(
            headers["x-flo2-attempts"], "1",
            "the open breaker costs no attempt"
        );
    }
    assert_eq!(
        dead.request_count(),
        3,
        "no traffic to the dead target while the breaker is open"
    );
    // It recovers; after the open period one probe goes through and closes the breaker.
    dead.set_default(Scenario::text("ok"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        ok(&n, Api::Chat, false, "guarded", json!({})).await.0,
        "openai/gpt-4o-mini"
    );
    assert_eq!(
        ok(&n, Api::Messages, true, "guarded", json!({})).await.0,
        "openai/gpt-4o-mini"
    );
    assert_eq!(dead.request_count(), 5);
}

#[tokio::test]
async fn race_first_answers_at_the_fastest_pace_and_cancels_the_losers_at_once() {
    let app = TestApp::start().await;
    let n = app
        .tenant(&["openai", "groq", "mistral"])
        .await
        .answering(answer_ok());
    n.fake("openai").set_default(
        Scenario::text("fast")
            .usage(100, 10)
            .first_byte_delay(Duration::from_millis(50)),
    );
    for slow in ["groq", "mistral"] {
        n.fake(slow).set_default(
            Scenario::text("slow")
                .usage(100, 10)
                .first_byte_delay(Duration::from_secs(3)),
        );
    }
    n.route("race", json!({"strategy": "race", "targets": [
        {"provider": "groq", "model": "llama-3.1-8b-instant"}, {"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "mistral", "model": "mistral-small-latest"}]}))
    .await;
    let mut rounds = 0;
    for (api, stream) in BOTH {
        rounds += 1;
        let started = Instant::now();
        let (target, text, headers) = ok(&n, api, stream, "race", json!({})).await;
        let answered = Instant::now();
        assert_eq!(target, "openai/gpt-4o-mini");
        assert!(text.contains("fast"), "{text}");
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(headers["x-flo2-attempts"], "3");
        for slow in ["groq", "mistral"] {
            let fake = n.fake(slow);
            // This round's disconnect, not an earlier round's.
            let closed = fake
                .wait_for_disconnects(rounds, Duration::from_secs(2))
                .await
                .expect("the loser's connection is closed");
            assert!(
                closed.saturating_duration_since(answered) < Duration::from_millis(100),
                "{slow} closed {:?} after the answer",
                closed.saturating_duration_since(answered)
            );
            assert_eq!(fake.disconnects(), rounds, "{slow}");
        }
    }
    // Every participant is metered: 4 winners and 8 cancelled losers, all role `race`.
    let rows = n.usage_rows(12).await;
    assert_eq!(rows.len(), 12);
    assert!(rows
        .iter()
        .all(|r| r.attempt_role == "race" && r.route.as_deref() == Some("race")));
    let winners: Vec<_> = rows.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 4);
    assert!(winners
        .iter()
        .all(|r| r.provider == "openai" && r.cost_picousd > 0));
    let losers: Vec<_> = rows.iter().filter(|r| r.status != 200).collect();
    assert!(
        losers
            .iter()
            .all(|r| r.error_kind.as_deref() == Some("race_cancelled")
                && r.tokens_estimated
                && r.cost_picousd > 0
                && r.baseline_cost_picousd == 0),
        "{losers:?}"
    );
}

#[tokio::test]
async fn hedged_sends_a_second_request_only_when_the_first_is_slow() {
    let app = TestApp::start().await;
    let n = app.tenant(&["openai", "groq"]).await.answering(answer_ok());
    n.route("hedge", json!({"strategy": "race", "race": {"mode": "hedged", "hedge_delay_ms": 300},
        "targets": [{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "groq", "model": "llama-3.1-8b-instant"}]}))
    .await;
    n.fake("openai")
        .set_default(Scenario::text("quick").first_byte_delay(Duration::from_millis(20)));
    for (api, stream) in BOTH {
        assert_eq!(
            ok(&n, api, stream, "hedge", json!({})).await.0,
            "openai/gpt-4o-mini"
        );
    }
    assert_eq!(
        n.fake("groq").request_count(),
        0,
        "a fast first target is never hedged"
    );
    n.fake("openai")
        .set_default(Scenario::text("sluggish").first_byte_delay(Duration::from_secs(2)));
    for (api, stream) in BOTH {
        let started = Instant::now();
        let (target, _, headers) = ok(&n, api, stream, "hedge", json!({})).await;
        assert_eq!(target, "groq/llama-3.1-8b-instant");
        assert_eq!(headers["x-flo2-attempts"], "2");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(n.fake("groq").request_count(), 4);
}

#[tokio::test]
async fn race_best_keeps_the_best_answer_by_its_rule() {
    let app = TestApp::start().await;
    let n = app.tenant(&["openai", "groq"]).await.answering(answer_ok());
    n.fake("openai")
        .set_default(Scenario::text("a long answer that is not json at all"));
    n.fake("groq")
        .set_default(Scenario::text("{\"answer\": 42}"));
    n.route("best", json!({"strategy": "race", "race": {"mode": "best", "pick": "longest_json"},
        "targets": [{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "groq", "model": "llama-3.1-8b-instant"}]}))
    .await;
    for api in [Api::Chat, Api::Messages] {
        let (target, text, _) = ok(&n, api, false, "best", json!({})).await;
        assert_eq!(target, "groq/llama-3.1-8b-instant");
        assert!(text.contains("42"), "{text}");
    }
    // A streaming caller gets the chosen answer as a proper stream in its format, cost included.
    for api in [Api::Chat, Api::Messages] {
        let (target, text, headers) = ok(
            &n,
            api,
            true,
            "best",
            json!({"stream_options": {"include_usage": true}}),
        )
        .await;
        assert_eq!(target, "groq/llama-3.1-8b-instant");
        assert_eq!(headers["content-type"], "text/event-stream");
        assert!(
            text.contains("42") && text.contains("flo2_cost_usd"),
            "{text}"
        );
        if api == Api::Messages {
            assert!(text.contains("event: message_stop"), "{text}");
        } else {
            assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
        }
    }
    // Every participant completed and is metered.
    let rows = n.usage_rows(8).await;
    assert_eq!(
        rows.iter()
            .filter(|r| r.status == 200 && r.attempt_role == "race")
            .count(),
        8
    );
}

#[tokio::test]
async fn several_keys_form_a_balanced_pool_and_a_rate_limited_key_rests() {
    let app = TestApp::start().await;
    let n = app.tenant(&["openai"]).await.answering(answer_ok());
    // A second OpenAI key, served by its own fake upstream.
    let second = FakeUpstream::start().await;
    second.set_default(Scenario::text("ok").usage(10, 2));
    let (status, body) = app.post("/api/v1/provider-keys", &n.owner.token, json!({"provider": "openai", "name": "second", "api_key": "sk-second-0123456789", "base_url": format!("{}/v1", second.base_url())})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let first = n.fake("openai");
    for (api, stream) in BOTH {
        ok(&n, api, stream, "openai/gpt-4o-mini", json!({})).await;
        ok(&n, api, stream, "openai/gpt-4o-mini", json!({})).await;
    }
    assert_eq!(
        (first.request_count(), second.request_count()),
        (4, 4),
        "balanced"
    );
    // The first key hits its rate limit: the same call goes to the other key at once, and the
    // first rests for its retry-after.
    first.push(Scenario::error(429, "rate limited").retry_after(30));
    for _ in 0..2 {
        let (_, _, headers) = ok(&n, Api::Chat, false, "openai/gpt-4o-mini", json!({})).await;
        assert_eq!(
            headers["x-flo2-credential"].to_str().unwrap(),
            body["id"].as_str().unwrap()
        );
    }
    for (api, stream) in BOTH {
        ok(&n, api, stream, "openai/gpt-4o-mini", json!({})).await;
    }
    assert!(
        first.request_count() <= 6,
        "the resting key is left alone: {}",
        first.request_count()
    );
    assert_eq!(
        first.request_count() + second.request_count(),
        4 + 4 + 2 + 4 + 1
    );
}

#[tokio::test]
async fn after_the_first_byte_a_stream_never_switches_silently() {
    let app = TestApp::start().await;
    let n = app
        .tenant(&["openai", "anthropic"])
        .await
        .answering(answer_ok());
    n.route("safe", json!({"strategy": "priority", "targets": [{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "anthropic", "model": "claude-haiku-4-5"}]})).await;
    for api in [Api::Chat, Api::Messages] {
        n.fake("openai").push(
            Scenario::text("one two three four five")
                .chunk_delay(Duration::from_millis(10))
                .drop_after(3),
        );
        let resp = call(&n, api, true, "safe", json!({})).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-flo2-target"], "openai/gpt-4o-mini");
        let text = resp.text().await.unwrap();
        assert!(text.contains("one"), "{text}");
        assert!(
            text.contains("error"),
            "the stream ends with an error event: {text}"
        );
    }
    assert_eq!(
        n.fake("anthropic").request_count(),
        0,
        "no second target after the first byte"
    );
}
