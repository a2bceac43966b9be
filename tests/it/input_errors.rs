//! Bad input gets a clear 4xx error in the caller's own shape, with a stable code, and changes
//! nothing.


use crate::common;
use crate::common::{TestApp, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn counts(app: &TestApp, token: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for path in [
        "/api/v1/teams",
        "/api/v1/provider-keys",
        "/api/v1/api-keys",
        "/api/v1/members",
        "/api/v1/invites",
        "/api/v1/organizations",
    ] {
        out.push(app.get(path, token).await.1.as_array().unwrap().len());
    }
    out
}

fn expect(answer: (StatusCode, Value), status: StatusCode, code: &str, what: &str) -> Value {
    assert_eq!(answer.0, status, "{what}: {}", answer.1);
    assert_eq!(answer.1["code"], code, "{what}: {}", answer.1);
    assert!(
        answer.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what} explains itself"
    );
    answer.1
}

#[tokio::test]
async fn bad_bodies_fields_and_ids_change_nothing() {
    let app = TestApp::start().await;
    let a = app.signup("a@example.com", "Acme").await;
    let t = a.token.as_str();
    let team = app.team(t, "backend").await;
    app.provider_key(t, "openai", "prod", "sk-0123456789abcdefghij")
        .await;
    let before = counts(&app, t).await;
    use StatusCode as S;

    expect(
        app.post("/api/v1/teams", t, json!({})).await,
        S::BAD_REQUEST,
        "invalid_field",
        "missing name",
    );
    expect(
        app.post("/api/v1/teams", t, json!({"name": 7})).await,
        S::BAD_REQUEST,
        "invalid_field",
        "wrong type",
    );
    expect(
        app.post("/api/v1/teams", t, json!({"name": "x", "colour": "red"}))
            .await,
        S::BAD_REQUEST,
        "invalid_field",
        "unknown field",
    );
    for name in ["", "   ", &"x".repeat(101), "tab\there"] {
        expect(
            app.post("/api/v1/teams", t, json!({"name": name})).await,
            S::BAD_REQUEST,
            "invalid_field",
            "bad name",
        );
    }
    let body = expect(
        app.post(
            "/api/v1/provider-keys",
            t,
            json!({"provider": "openai", "name": "x", "api_key": 123456789}),
        )
        .await,
        S::BAD_REQUEST,
        "invalid_field",
        "numeric api_key",
    );
    assert!(
        !body.to_string().contains("123456789"),
        "the submitted value is not echoed: {body}"
    );
    expect(
        app.post(
            "/api/v1/provider-keys",
            t,
            json!({"provider": "foo", "name": "x", "api_key": "k"}),
        )
        .await,
        S::BAD_REQUEST,
        "invalid_field",
        "unknown provider",
    );
    expect(
        app.post(
            "/api/v1/provider-keys",
            t,
            json!({"provider": "openai", "name": "x", "api_key": "has space"}),
        )
        .await,
        S::BAD_REQUEST,
        "invalid_field",
        "bad key",
    );
    expect(
        app.post(
            "/api/v1/provider-keys",
            t,
            json!({"provider": "openai", "name": "x", "api_key": "k", "base_url": "ftp://x"}),
        )
        .await,
        S::BAD_REQUEST,
        "invalid_field",
        "bad base_url",
    );
    expect(
        app.post(
            "/api/v1/provider-keys",
            t,
            json!({"provider": "openai-compatible", "name": "x", "api_key": "k"}),
        )
        .await,
        S::BAD_REQUEST,
        "invalid_field",
        "no base_url",
    );
    expect(
        app.post(
            "/api/v1/api-keys",
            t,
            json!({"name": "k", "team_id": "nope"}),
        )
        .await,
        S::BAD_REQUEST,
        "invalid_field",
        "bad team id",
    );
    expect(
        app.post("/api/v1/invites", t, json!({"role": "root"}))
            .await,
        S::BAD_REQUEST,
        "invalid_field",
        "unknown role",
    );
    expect(
        app.post(
            "/api/v1/invites",
            t,
            json!({"role": "viewer", "expires_in_hours": 0}),
        )
        .await,
        S::BAD_REQUEST,
        "invalid_field",
        "zero expiry",
    );

    // Malformed JSON, no content type, oversized body.
    let raw = |body: &'static str, json_type: bool| {
        let mut req = app
            .http
            .post(app.url("/api/v1/teams"))
            .bearer_auth(t)
            .body(body);
        if json_type {
            req = req.header("content-type", "application/json");
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    expect(
        raw("{\"name\": ", true).await,
        S::BAD_REQUEST,
        "malformed_json",
        "truncated JSON",
    );
    expect(
        raw("not json", true).await,
        S::BAD_REQUEST,
        "malformed_json",
        "not JSON",
    );
    expect(
        raw("{\"name\": \"x\"}", false).await,
        S::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "no content type",
    );
    let huge = json!({"name": "x".repeat(70_000)});
    expect(
        app.post("/api/v1/teams", t, huge).await,
        S::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "oversized body",
    );

    // Unknown and malformed ids, unknown endpoints, wrong methods.
    let unknown = "01900000-0000-7000-8000-000000000000";
    for path in [
        format!("/api/v1/teams/{unknown}"),
        format!("/api/v1/provider-keys/{unknown}"),
        format!("/api/v1/api-keys/{unknown}"),
        "/api/v1/teams/not-a-uuid".to_owned(),
        "/api/v1/provider-keys/%F0%9F%92%A5".to_owned(),
    ] {
        expect(app.get(&path, t).await, S::NOT_FOUND, "not_found", &path);
        expect(app.delete(&path, t).await, S::NOT_FOUND, "not_found", &path);
    }
    expect(
        app.get("/api/v1/nope", t).await,
        S::NOT_FOUND,
        "not_found",
        "unknown endpoint",
    );
    expect(
        app.call(Method::PUT, "/api/v1/teams", Some(t), Some(json!({})))
            .await,
        S::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "PUT",
    );
    expect(
        app.post(
            "/api/v1/api-keys",
            t,
            json!({"name": "k", "team_id": unknown}),
        )
        .await,
        S::NOT_FOUND,
        "not_found",
        "unknown team",
    );

    // Duplicates.
    expect(
        app.post("/api/v1/teams", t, json!({"name": "backend"}))
            .await,
        S::CONFLICT,
        "conflict",
        "duplicate team",
    );
    expect(
        app.post(
            "/api/v1/provider-keys",
            t,
            json!({"provider": "groq", "name": "prod", "api_key": "gsk_0123456789"}),
        )
        .await,
        S::CONFLICT,
        "conflict",
        "duplicate provider key name",
    );
    let (first, _) = app.api_key(t, &team, "web").await;
    expect(
        app.post(
            "/api/v1/api-keys",
            t,
            json!({"name": "web", "team_id": team}),
        )
        .await,
        S::CONFLICT,
        "conflict",
        "duplicate key name",
    );

    // Nothing changed apart from the one key made on purpose.
    let mut after = counts(&app, t).await;
    after[2] -= 1;
    assert_eq!(after, before);

    // A revoked key's name can be reused.
    app.delete(&format!("/api/v1/api-keys/{first}"), t).await;
    assert_eq!(
        app.post(
            "/api/v1/api-keys",
            t,
            json!({"name": "web", "team_id": team})
        )
        .await
        .0,
        S::CREATED
    );
}

#[tokio::test]
async fn bad_signups_are_refused_and_create_nothing() {
    let app = TestApp::start().await;
    let signup = |body: Value| app.call(Method::POST, "/api/v1/signup", None, Some(body));
    use StatusCode as S;
    expect(
        signup(json!({"email": "not-an-email", "password": PASSWORD, "organization": "X"})).await,
        S::BAD_REQUEST,
        "invalid_field",
        "email",
    );
    expect(
        signup(json!({"email": "a@example.com", "password": "short", "organization": "X"})).await,
        S::UNPROCESSABLE_ENTITY,
        "invalid_field",
        "password",
    );
    expect(
        signup(json!({"email": "a@example.com", "password": "x".repeat(300), "organization": "X"}))
            .await,
        S::UNPROCESSABLE_ENTITY,
        "invalid_field",
        "long password",
    );
    expect(
        signup(json!({"email": "a@example.com", "password": PASSWORD, "organization": ""})).await,
        S::BAD_REQUEST,
        "invalid_field",
        "org name",
    );
    expect(
        signup(json!({"email": "a@example.com", "password": PASSWORD})).await,
        S::BAD_REQUEST,
        "invalid_field",
        "missing org",
    );
    // None of those created the account.
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"email": "a@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, S::UNAUTHORIZED);
    app.signup("a@example.com", "X").await;
}

#[tokio::test]
async fn the_data_plane_answers_in_the_callers_shape() {
    let app = TestApp::start().await;
    let get = |headers: Vec<(&'static str, String)>, path: &'static str| {
        let mut req = app.http.get(app.url(path));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let resp = req.send().await.unwrap();
            assert!(resp.headers().contains_key("x-flo2-request-id"));
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    // OpenAI style: `{"error": {"message", "type", "param", "code"}}`.
    for headers in [
        vec![],
        vec![("authorization", "Bearer flo2_abc".to_owned())],
        vec![("authorization", format!("Bearer flo2_{}", "A".repeat(49)))],
    ] {
        let (status, body) = get(headers, "/v1/models").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "invalid_api_key");
    }
    // Anthropic style: `{"type": "error", "error": {"type", "message"}}`.
    let (status, body) = get(
        vec![
            ("x-api-key", "junk".to_owned()),
            ("anthropic-version", "2023-06-01".to_owned()),
        ],
        "/v1/models",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    // A well-formed key that does not exist.
    let minted = flo2_vault::gateway_key::mint();
    let (status, _) = get(
        vec![(
            "authorization",
            format!("Bearer {}", minted.secret.expose()),
        )],
        "/v1/models",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Unknown endpoints and wrong methods.
    let (status, body) = get(vec![], "/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let resp = app.http.delete(app.url("/v1/models")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(resp.json::<Value>().await.unwrap()["error"]["message"].is_string());
}

#[tokio::test]
async fn an_oversized_data_plane_body_is_refused_in_the_callers_shape() {
    let db = common::TestDb::new().await;
    let app = TestApp::start_configured(db, common::master_key(), flo2::Mode::Serve, |c| {
        c.gateway_max_body_bytes = 1_000;
    })
    .await;
    let account = app.signup("big@example.com", "Big").await;
    let team = app.team(&account.token, "t").await;
    let (_, key) = app.api_key(&account.token, &team, "k").await;
    let big = json!({"model": "openai/gpt-4o-mini", "max_tokens": 5,
        "messages": [{"role": "user", "content": "x".repeat(2_000)}]});
    let send = |path: &'static str, anthropic: bool| {
        let mut req = app.http.post(app.url(path)).json(&big);
        req = if anthropic {
            req.header("x-api-key", &key)
                .header("anthropic-version", "2023-06-01")
        } else {
            req.bearer_auth(&key)
        };
        async move {
            let resp = req.send().await.unwrap();
            assert!(resp.headers().contains_key("x-flo2-request-id"));
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    // OpenAI: `{"error": {"message", "type", ...}}`.
    for path in ["/v1/chat/completions", "/v1/embeddings"] {
        let (status, body) = send(path, false).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("1000 bytes"), "{message}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    }
    // Anthropic: `{"type": "error", "error": {"type", "message"}}`.
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        let (status, body) = send(path, true).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: {body}");
        assert_eq!(body["type"], "error", "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    // A body within the limit still gets through to the usual checks.
    let small = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), StatusCode::BAD_REQUEST);
    // Nothing was metered.
    assert!(app
        .store()
        .usage_records(account.org.parse().unwrap(), 10)
        .await
        .unwrap()
        .is_empty());
}
