//! The provider-key vault and gateway keys over real HTTP, including use of a key on the data
//! plane, revocation, and what is (never) shown.


use std::time::Duration;

use crate::common;
use crate::common::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const SECRET: &str = "sk-proj-THIS-IS-SECRET-0123456789abcd";

#[tokio::test]
async fn provider_keys_are_write_only() {
    let app = TestApp::start().await;
    let a = app.signup("ops@example.com", "Acme").await;

    let (status, created) = app
        .post(
            "/api/v1/provider-keys",
            &a.token,
            json!({"provider": "openai", "name": "prod", "api_key": SECRET}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["hint"], "…abcd");
    assert_eq!(created["provider"], "openai");
    assert_eq!(created["base_url"], Value::Null);
    let id = created["id"].as_str().unwrap().to_owned();

    let mut seen = vec![created.clone()];
    seen.push(app.get("/api/v1/provider-keys", &a.token).await.1);
    seen.push(
        app.get(&format!("/api/v1/provider-keys/{id}"), &a.token)
            .await
            .1,
    );

    // Rotate the key and re-point it; the answer still shows only the new hint.
    const ROTATED: &str = "sk-proj-ROTATED-SECRET-zzzz9999wxyz";
    let (status, rotated) = app
        .patch(
            &format!("/api/v1/provider-keys/{id}"),
            &a.token,
            json!({"api_key": ROTATED, "base_url": "https://proxy.example.com/v1/", "name": "prod-eu"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["hint"], "…wxyz");
    assert_eq!(rotated["name"], "prod-eu");
    assert_eq!(rotated["base_url"], "https://proxy.example.com/v1");
    seen.push(rotated);
    let (status, cleared) = app
        .patch(
            &format!("/api/v1/provider-keys/{id}"),
            &a.token,
            json!({"base_url": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cleared["base_url"], Value::Null);
    assert_eq!(cleared["hint"], "…wxyz", "a base-URL change keeps the key");
    seen.push(cleared);

    for body in &seen {
        let text = body.to_string();
        assert!(
            !text.contains(SECRET) && !text.contains(ROTATED),
            "secret leaked in {text}"
        );
        assert!(!text.contains("ciphertext"), "{text}");
    }

    // At rest, the key is ciphertext only.
    let stored = app
        .store()
        .credentials(a.org.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    let blob = &stored[0].ciphertext;
    assert!(!blob.windows(ROTATED.len()).any(|w| w == ROTATED.as_bytes()));

    let (status, _) = app
        .delete(&format!("/api/v1/provider-keys/{id}"), &a.token)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/provider-keys", &a.token).await.1,
        json!([])
    );
    assert_eq!(
        app.delete(&format!("/api/v1/provider-keys/{id}"), &a.token)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn openai_compatible_providers_need_a_base_url() {
    let app = TestApp::start().await;
    let a = app.signup("ops@example.com", "Acme").await;
    let (status, body) = app
        .post(
            "/api/v1/provider-keys",
            &a.token,
            json!({"provider": "openai-compatible", "name": "vllm", "api_key": "token-abc"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_field");
    let (status, body) = app
        .post(
            "/api/v1/provider-keys",
            &a.token,
            json!({"provider": "openai-compatible", "name": "vllm", "api_key": "token-abc", "base_url": "http://10.0.0.5:8000/v1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["hint"], "…", "short secrets reveal nothing");
}

#[tokio::test]
async fn gateway_keys_are_shown_once_work_by_hash_and_stop_when_revoked() {
    let app = TestApp::start().await;
    let a = app.signup("dev@example.com", "Acme").await;
    app.provider_key(&a.token, "anthropic", "main", SECRET)
        .await;
    let team = app.team(&a.token, "backend").await;

    let (status, created) = app
        .post(
            "/api/v1/api-keys",
            &a.token,
            json!({"name": "web", "team_id": team}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("flo2_") && key.len() >= 54, "{key}");
    assert_eq!(created["team_id"], team.as_str());
    assert!(created["hint"].as_str().unwrap().starts_with(&key[..9]));

    // Listed and read without the secret.
    let (_, list) = app.get("/api/v1/api-keys", &a.token).await;
    let (_, one) = app.get(&format!("/api/v1/api-keys/{id}"), &a.token).await;
    for body in [&list, &one] {
        assert!(!body.to_string().contains(&key), "key leaked: {body}");
    }
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Stored as its SHA-256 only, and found by that hash at use time.
    let hash = Sha256::digest(key.as_bytes()).to_vec();
    let row = app.store().gateway_key_by_hash(&hash).await.unwrap();
    assert_eq!(row.id.to_string(), id);
    assert_eq!(row.org_id.to_string(), a.org);

    // The key works on the data plane, in both SDK styles.
    let ids = app.model_ids(&key).await;
    assert!(
        ids.contains(&"anthropic/claude-sonnet-4-5".to_owned()),
        "{ids:?}"
    );
    assert!(
        ids.iter().all(|m| m.starts_with("anthropic/")),
        "only the org's providers: {ids:?}"
    );
    let resp = app
        .http
        .get(app.url("/v1/models"))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["has_more"], false);
    assert_eq!(body["data"][0]["type"], "model");

    // Last use is recorded off the request path, in a batch.
    let mut last_used = Value::Null;
    for _ in 0..100 {
        last_used =
            app.get(&format!("/api/v1/api-keys/{id}"), &a.token).await.1["last_used_at"].clone();
        if !last_used.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(last_used.is_string(), "last_used_at was never written");

    // Revocation takes effect at once.
    let (status, revoked) = app
        .delete(&format!("/api/v1/api-keys/{id}"), &a.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let (status, body) = app.models(&key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "invalid_api_key");
    // Still listed, marked revoked.
    let (_, list) = app.get("/api/v1/api-keys", &a.token).await;
    assert!(list[0]["revoked_at"].is_string());
}

#[tokio::test]
async fn provider_key_changes_reach_the_gateway_cache() {
    let app = TestApp::start().await;
    let a = app.signup("dev@example.com", "Acme").await;
    let team = app.team(&a.token, "t").await;
    let (_, key) = app.api_key(&a.token, &team, "k").await;
    assert_eq!(app.model_ids(&key).await, Vec::<String>::new());
    let id = app.provider_key(&a.token, "groq", "g", SECRET).await;
    assert!(app
        .model_ids(&key)
        .await
        .iter()
        .any(|m| m.starts_with("groq/")));
    app.delete(&format!("/api/v1/provider-keys/{id}"), &a.token)
        .await;
    assert_eq!(app.model_ids(&key).await, Vec::<String>::new());
}

#[tokio::test]
async fn deleting_a_team_disables_its_keys() {
    let app = TestApp::start().await;
    let a = app.signup("dev@example.com", "Acme").await;
    let team = app.team(&a.token, "t").await;
    let (_, key) = app.api_key(&a.token, &team, "k").await;
    assert_eq!(app.models(&key).await.0, StatusCode::OK);
    assert_eq!(
        app.delete(&format!("/api/v1/teams/{team}"), &a.token)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.models(&key).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/api-keys", &a.token).await.1, json!([]));
}

/// A gateway in another process (here: a second server on the same database) learns about a
/// revocation from the change log, without any request touching the database.
#[tokio::test]
async fn a_separate_gateway_sees_revocations_through_the_change_log() {
    let console = TestApp::start().await;
    let a = console.signup("dev@example.com", "Acme").await;
    let team = console.team(&a.token, "t").await;
    let (id, key) = console.api_key(&a.token, &team, "k").await;

    let gateway = flo2::start(
        &common::config(&console.db, &console.key),
        flo2::Mode::Gateway,
    )
    .await
    .unwrap();
    let url = format!("http://{}/v1/models", gateway.addr);
    let http = console.http.clone();
    let status = |key: String| {
        let (url, http) = (url.clone(), http.clone());
        async move {
            http.get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(key.clone()).await, StatusCode::OK);
    // The gateway-only process has no management API.
    let resp = console
        .http
        .get(format!("http://{}/api/v1/teams", gateway.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    console
        .delete(&format!("/api/v1/api-keys/{id}"), &a.token)
        .await;
    let mut last = StatusCode::OK;
    for _ in 0..100 {
        last = status(key.clone()).await;
        if last == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        last,
        StatusCode::UNAUTHORIZED,
        "the replica never saw the revocation"
    );
    gateway.shutdown().await;
}

/// Last-used times are written for a whole batch of keys in one statement, and never move back.
#[tokio::test]
async fn last_used_times_are_written_in_one_batch_and_never_move_back() {
    use chrono::{DateTime, Duration as Span, Utc};
    use flo2_core::GatewayKeyId;

    let app = TestApp::start().await;
    let a = app.signup("dev@example.com", "Acme").await;
    let team = app.team(&a.token, "t").await;
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        let (id, _) = app.api_key(&a.token, &team, name).await;
        ids.push(id);
    }
    let last_used = |id: String| {
        let app = &app;
        let token = a.token.clone();
        async move {
            let (_, body) = app.get(&format!("/api/v1/api-keys/{id}"), &token).await;
            body["last_used_at"]
                .as_str()
                .map(|t| t.parse::<DateTime<Utc>>().unwrap())
        }
    };
    let now = Utc::now();
    let key = |i: usize| ids[i].parse::<GatewayKeyId>().unwrap();
    app.store()
        .touch_gateway_keys(&[(key(0), now), (key(1), now - Span::seconds(5))])
        .await
        .unwrap();
    let first = last_used(ids[0].clone()).await.unwrap();
    assert!(
        (first - now).num_milliseconds().abs() < 1,
        "{first} vs {now}"
    );
    let second = last_used(ids[1].clone()).await.unwrap();
    assert!((second - (now - Span::seconds(5))).num_milliseconds().abs() < 1);
    assert_eq!(
        last_used(ids[2].clone()).await,
        None,
        "untouched keys stay unused"
    );

    // An older time (a slower replica's batch) leaves a newer one alone; a newer one wins.
    app.store()
        .touch_gateway_keys(&[(key(0), now - Span::seconds(60)), (key(1), now)])
        .await
        .unwrap();
    assert_eq!(last_used(ids[0].clone()).await, Some(first));
    let second = last_used(ids[1].clone()).await.unwrap();
    assert!((second - now).num_milliseconds().abs() < 1);
    app.store().touch_gateway_keys(&[]).await.unwrap();
}
