//! The OpenAPI document is generated from the router, so it lists exactly the served paths.

use crate::common::TestApp;
use reqwest::StatusCode;

#[tokio::test]
async fn openapi_documents_the_stable_core() {
    let app = TestApp::start().await;
    let resp = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/signup", "post"),
        ("/api/v1/login", "post"),
        ("/api/v1/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/password", "post"),
        ("/api/v1/organizations", "get"),
        ("/api/v1/organizations", "post"),
        ("/api/v1/organization", "patch"),
        ("/api/v1/session/organization", "post"),
        ("/api/v1/members", "get"),
        ("/api/v1/members/{user_id}", "patch"),
        ("/api/v1/members/{user_id}", "delete"),
        ("/api/v1/invites", "post"),
        ("/api/v1/invites/{id}", "delete"),
        ("/api/v1/invites/accept", "post"),
        ("/api/v1/teams", "get"),
        ("/api/v1/teams", "post"),
        ("/api/v1/provider-keys", "get"),
        ("/api/v1/provider-keys", "post"),
        ("/api/v1/provider-keys/{id}", "patch"),
        ("/api/v1/provider-keys/{id}", "delete"),
        ("/api/v1/api-keys", "get"),
        ("/api/v1/api-keys", "post"),
        ("/api/v1/api-keys/{id}", "delete"),
        ("/api/v1/prices", "get"),
        ("/api/v1/prices", "post"),
        ("/api/v1/prices/{id}", "delete"),
        ("/api/v1/audit-log", "get"),
        ("/api/v1/usage", "get"),
        ("/api/v1/usage/export.csv", "get"),
        ("/api/v1/usage/summary.csv", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is documented"
        );
    }
    // Every documented operation is served (not 404 from the fallback, not 405).
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", "00000000-0000-7000-8000-000000000000")
                .replace("{user_id}", "00000000-0000-7000-8000-000000000000");
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let resp = app
                .http
                .request(m, app.url(&concrete))
                .send()
                .await
                .unwrap();
            assert_ne!(
                resp.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            assert_ne!(
                body["message"].as_str().unwrap_or(""),
                "no such endpoint; see /api/v1/openapi.json",
                "{method} {path}"
            );
        }
    }
    // The audit log's filters and paging are documented, and so is the answer's shape.
    let params: Vec<&str> = paths["/api/v1/audit-log"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["from", "to", "actor", "action", "limit", "cursor"] {
        assert!(
            params.contains(&name),
            "audit-log parameter {name}: {params:?}"
        );
    }
    let page = &doc["components"]["schemas"]["AuditPage"]["properties"];
    assert!(
        page.get("entries").is_some() && page.get("next_cursor").is_some(),
        "{page}"
    );
    let schemes = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["scheme"], "bearer");
}
