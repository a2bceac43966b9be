//! Accounts over real HTTP: sign-up, login, sessions, password change, organizations.


use crate::common;
use crate::common::{TestApp, PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn signup_login_me_and_logout() {
    let app = TestApp::start().await;
    let a = app.signup("Ada@Example.com", "Acme").await;

    let (status, me) = app.get("/api/v1/me", &a.token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me["user"]["email"], "ada@example.com",
        "emails are normalised"
    );
    assert_eq!(me["organization"]["name"], "Acme");
    assert_eq!(me["organization"]["role"], "owner");
    assert!(!me.to_string().contains("argon2"), "no password hash leaks");

    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"email": "ada@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let second = body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/v1/organization", &second).await.1["id"],
        a.org.as_str()
    );

    for (email, password) in [
        ("ada@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
    ] {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body["code"], "invalid_credentials",
            "unknown email and wrong password look alike"
        );
    }

    let (status, _) = app
        .call(Method::POST, "/api/v1/logout", Some(&a.token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/api/v1/me", &a.token).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a logged-out token stops working"
    );
    assert_eq!(body["code"], "unauthenticated");
    assert_eq!(
        app.get("/api/v1/me", &second).await.0,
        StatusCode::OK,
        "other sessions survive a logout"
    );
}

#[tokio::test]
async fn duplicate_email_is_a_conflict() {
    let app = TestApp::start().await;
    app.signup("bo@example.com", "One").await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/signup",
            None,
            Some(json!({"email": "BO@example.com", "password": PASSWORD, "organization": "Two"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "conflict");
}

#[tokio::test]
async fn password_change_ends_every_session() {
    let app = TestApp::start().await;
    let a = app.signup("cy@example.com", "Acme").await;
    let (status, body) = app
        .post(
            "/api/v1/password",
            &a.token,
            json!({"current_password": "not it", "new_password": "another long one"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app
        .post(
            "/api/v1/password",
            &a.token,
            json!({"current_password": PASSWORD, "new_password": "another long one"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/me", &a.token).await.0,
        StatusCode::UNAUTHORIZED
    );
    let login = |password: &'static str| {
        app.call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"email": "cy@example.com", "password": password})),
        )
    };
    assert_eq!(login(PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login("another long one").await.0, StatusCode::OK);
}

#[tokio::test]
async fn tokens_are_checked() {
    let app = TestApp::start().await;
    for token in ["", "garbage", "eyJhbGciOiJIUzI1NiJ9.e30.sig"] {
        let (status, body) = app.get("/api/v1/teams", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body["code"], "unauthenticated");
    }
    let (status, _) = app.call(Method::GET, "/api/v1/teams", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn users_switch_between_their_organizations() {
    let app = TestApp::start().await;
    let a = app.signup("di@example.com", "First").await;
    let (status, second) = app
        .post("/api/v1/organizations", &a.token, json!({"name": "Second"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(second["role"], "owner");
    let (_, orgs) = app.get("/api/v1/organizations", &a.token).await;
    assert_eq!(orgs.as_array().unwrap().len(), 2);

    // Teams are per organization: one made in First is not visible in Second.
    app.team(&a.token, "alpha").await;
    let (status, _) = app
        .post(
            "/api/v1/session/organization",
            &a.token,
            json!({"organization_id": second["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/organization", &a.token).await.1["name"],
        "Second"
    );
    assert_eq!(app.get("/api/v1/teams", &a.token).await.1, json!([]));

    let (status, renamed) = app
        .patch(
            "/api/v1/organization",
            &a.token,
            json!({"name": "Second Co"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["name"], "Second Co");
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::start().await;
    let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
}

#[tokio::test]
async fn readiness_fails_until_migrations_are_applied() {
    let db = common::TestDb::new().await;
    let mut config = common::config(&db, &common::master_key());
    config.migrate_on_start = false;
    // The vault check reads the schema, so start only the pieces readiness needs.
    let store = flo2::server::open_store(&config).await.unwrap();
    assert!(matches!(
        store.ready().await,
        Err(flo2_store::StoreError::PendingMigrations)
    ));
    store.migrate().await.unwrap();
    store.ready().await.unwrap();
    store.close().await;
}
