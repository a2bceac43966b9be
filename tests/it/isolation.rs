//! Tenant isolation: for every resource, organization A's token can neither list, read, change,
//! delete nor use organization B's items. The answer is 404 (never 403, so ids cannot be probed),
//! and B's items are unchanged afterwards.

use crate::common::{Account, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Tenant {
    account: Account,
    team: String,
    provider_key: String,
    api_key_id: String,
    api_key: String,
    invite: String,
}

async fn tenant(app: &TestApp, email: &str, org: &str, provider: &str) -> Tenant {
    let account = app.signup(email, org).await;
    let team = app.team(&account.token, &format!("{org}-team")).await;
    let provider_key = app
        .provider_key(
            &account.token,
            provider,
            &format!("{org}-pk"),
            "sk-0123456789abcdefghij",
        )
        .await;
    let (api_key_id, api_key) = app
        .api_key(&account.token, &team, &format!("{org}-key"))
        .await;
    let (status, invite) = app
        .post("/api/v1/invites", &account.token, json!({"role": "viewer"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    Tenant {
        account,
        team,
        provider_key,
        api_key_id,
        api_key,
        invite: invite["id"].as_str().unwrap().to_owned(),
    }
}

/// Everything B owns, as B sees it.
async fn snapshot(app: &TestApp, b: &Tenant) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/api/v1/teams",
        "/api/v1/provider-keys",
        "/api/v1/api-keys",
        "/api/v1/members",
        "/api/v1/invites",
        "/api/v1/organization",
    ] {
        let (status, body) = app.get(path, &b.account.token).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        out.push(body);
    }
    out
}

#[tokio::test]
async fn no_organization_can_touch_anothers_items() {
    let app = TestApp::start().await;
    let a = tenant(&app, "a@example.com", "A", "openai").await;
    let b = tenant(&app, "b@example.com", "B", "anthropic").await;
    let before = snapshot(&app, &b).await;
    let t = a.account.token.as_str();

    // Lists never show B's items.
    for path in [
        "/api/v1/teams",
        "/api/v1/provider-keys",
        "/api/v1/api-keys",
        "/api/v1/members",
        "/api/v1/invites",
    ] {
        let (status, body) = app.get(path, t).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let text = body.to_string();
        for id in [
            &b.team,
            &b.provider_key,
            &b.api_key_id,
            &b.invite,
            &b.account.user,
        ] {
            assert!(!text.contains(id.as_str()), "GET {path} shows B's {id}");
        }
        assert!(
            !text.contains("b@example.com"),
            "GET {path} shows B's member"
        );
    }

    // Reads, changes and deletes of B's ids all answer 404.
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/teams/{}", b.team), None),
        (
            Method::PATCH,
            format!("/api/v1/teams/{}", b.team),
            Some(json!({"name": "stolen"})),
        ),
        (Method::DELETE, format!("/api/v1/teams/{}", b.team), None),
        (
            Method::GET,
            format!("/api/v1/provider-keys/{}", b.provider_key),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/provider-keys/{}", b.provider_key),
            Some(json!({"api_key": "sk-attacker-000000000000"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/provider-keys/{}", b.provider_key),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/api-keys/{}", b.api_key_id),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/api-keys/{}", b.api_key_id),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/members/{}", b.account.user),
            Some(json!({"role": "viewer"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/members/{}", b.account.user),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/invites/{}", b.invite),
            None,
        ),
        (
            Method::POST,
            "/api/v1/session/organization".to_owned(),
            Some(json!({"organization_id": b.account.org})),
        ),
        (
            Method::POST,
            "/api/v1/api-keys".to_owned(),
            Some(json!({"name": "sneaky", "team_id": b.team})),
        ),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = app.call(method.clone(), &path, Some(t), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "not_found", "{method} {path}");
    }

    // Nothing of B's changed, and A gained nothing.
    assert_eq!(snapshot(&app, &b).await, before);
    let (_, a_keys) = app.get("/api/v1/api-keys", t).await;
    assert_eq!(
        a_keys.as_array().unwrap().len(),
        1,
        "no key was created against B's team"
    );
    assert_eq!(
        app.get("/api/v1/organization", t).await.1["id"],
        a.account.org.as_str()
    );

    // Each gateway key reaches only its own organization's providers.
    let a_models = app.model_ids(&a.api_key).await;
    let b_models = app.model_ids(&b.api_key).await;
    assert!(
        !a_models.is_empty() && a_models.iter().all(|m| m.starts_with("openai/")),
        "{a_models:?}"
    );
    assert!(
        !b_models.is_empty() && b_models.iter().all(|m| m.starts_with("anthropic/")),
        "{b_models:?}"
    );
}

#[tokio::test]
async fn an_invitation_token_only_joins_its_own_organization() {
    let app = TestApp::start().await;
    let a = app.signup("a@example.com", "A").await;
    let b = app.signup("b@example.com", "B").await;
    let (_, invite) = app
        .post("/api/v1/invites", &b.token, json!({"role": "viewer"}))
        .await;
    // A cannot list or withdraw B's invitation, but holding the link lets A join B as a viewer:
    // the link is the capability, exactly as intended.
    let (_, listed) = app.get("/api/v1/invites", &a.token).await;
    assert_eq!(listed, json!([]));
    let (status, joined) = app
        .post(
            "/api/v1/invites/accept",
            &a.token,
            json!({"token": invite["token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(joined["id"], b.org.as_str());
    assert_eq!(joined["role"], "viewer");
    // As a viewer of B, A still cannot write there.
    assert_eq!(
        app.post("/api/v1/teams", &a.token, json!({"name": "x"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}
