//! Database outages answer as outages: while the database cannot serve, `/api/v1` and the
//! logins (API and form) answer 503 `unavailable` with `Retry-After`, never 500, and `/readyz`
//! says the database is unreachable rather than that the schema is behind. When the database
//! is back, everything works again.
//!
//! The outage: on PostgreSQL the test database refuses new connections and its sessions are
//! terminated (a failover or a dead server looks the same to flo2); on SQLite another
//! connection holds the write lock past the busy timeout (a locked or stuck database file).


use crate::common;
use crate::common::{database_name, exec_sql, Outage, TestApp, TestDb, PASSWORD};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;

fn assert_unavailable(status: StatusCode, retry_after: Option<&str>, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    if !body.is_null() && body.is_object() {
        assert_eq!(body["code"], "unavailable", "{what}");
    }
    let secs: u64 = retry_after
        .unwrap_or_else(|| panic!("{what}: a 503 without Retry-After"))
        .parse()
        .unwrap();
    assert!(secs >= 1, "{what}");
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let (status, headers, value) = app.call_full(method, path, token, body).await;
    (status, common::retry_after(&headers), value)
}

/// Ada's `POST /api/v1/login`.
async fn api_login(app: &TestApp) -> (StatusCode, Option<String>, Value) {
    send(
        app,
        Method::POST,
        "/api/v1/login",
        None,
        Some(json!({"email": "ada@example.com", "password": PASSWORD})),
    )
    .await
}

#[tokio::test]
async fn a_database_outage_answers_503_with_retry_after_never_500() {
    let app = TestApp::start().await;
    let a = app.signup("ada@example.com", "Acme").await;
    let form = app.anonymous_form("/login").await;
    let http = form.0.clone();
    // A dashboard session from before the outage.
    let resp = app
        .post_login_form(&form, "ada@example.com", PASSWORD, &[])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let session = common::set_cookie_pair(resp.headers());
    let app_page = || http.get(app.url("/app")).header(COOKIE, &session).send();

    let outage = Outage::start(&app.db).await;
    // Writes and logins (every login writes a session row) on both databases.
    let (status, retry, body) = api_login(&app).await;
    assert_unavailable(status, retry.as_deref(), &body, "API login");
    let (status, retry, body) = send(
        &app,
        Method::POST,
        "/api/v1/teams",
        Some(&a.token),
        Some(json!({"name": "backend"})),
    )
    .await;
    assert_unavailable(status, retry.as_deref(), &body, "API write");
    let (status, retry, body) = send(
        &app,
        Method::POST,
        "/api/v1/signup",
        None,
        Some(json!({"email": "bo@example.com", "password": PASSWORD, "organization": "Bo"})),
    )
    .await;
    assert_unavailable(status, retry.as_deref(), &body, "API signup");
    let resp = app
        .post_login_form(&form, "ada@example.com", PASSWORD, &[])
        .await;
    let retry = common::retry_after(resp.headers());
    let status = resp.status();
    let html = resp.text().await.unwrap();
    assert_unavailable(status, retry.as_deref(), &Value::Null, "form login");
    assert!(html.contains("database is unavailable"), "{html}");
    if app.db.is_postgres() {
        // Reads too, and the page of a logged-in user keeps its session instead of being sent
        // to the login page.
        let (status, retry, body) =
            send(&app, Method::GET, "/api/v1/me", Some(&a.token), None).await;
        assert_unavailable(status, retry.as_deref(), &body, "API read");
        let (status, retry, body) =
            send(&app, Method::GET, "/api/v1/teams", Some(&a.token), None).await;
        assert_unavailable(status, retry.as_deref(), &body, "API list");
        let resp = app_page().await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "a page during the outage"
        );
        assert!(resp.headers().contains_key("retry-after"));
        assert!(
            !resp.headers().contains_key(SET_COOKIE),
            "the session cookie is kept"
        );
        // A user retrying through the outage is never throttled for it: attempts whose
        // password was never checked do not count.
        for _ in 0..8 {
            let (status, retry, body) = api_login(&app).await;
            assert_unavailable(status, retry.as_deref(), &body, "API login, retried");
        }
        let (status, _, body) = send(&app, Method::GET, "/readyz", None, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            json!({"status": "unavailable", "reason": "database unreachable"})
        );
    }

    outage.end().await;
    // Back to normal, without a restart.
    let mut back = false;
    for _ in 0..50 {
        let (status, _, _) = api_login(&app).await;
        if status == StatusCode::OK {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(back, "logins work again after the outage");
    let (status, _, body) = send(&app, Method::GET, "/readyz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
    let resp = app_page().await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the session outlived the outage"
    );
}

#[tokio::test]
async fn readyz_tells_a_schema_behind_from_an_unreachable_database() {
    let app = TestApp::start().await;
    let (status, _, body) = send(&app, Method::GET, "/readyz", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
    // Forget the newest migration: the schema is now behind this binary.
    exec_sql(
        &app.db,
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .await;
    let (status, _, body) = send(&app, Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unavailable");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("schema is behind"),
        "{body}"
    );
}

#[tokio::test]
async fn a_database_that_is_gone_answers_503_not_500() {
    // PostgreSQL only: the database is dropped under the running server. (An SQLite file
    // removed while open stays readable through the open handles, so there is nothing to see.)
    let db = TestDb::new().await;
    if !db.is_postgres() {
        return;
    }
    let app = TestApp::start_on(db, common::master_key(), flo2::Mode::Serve).await;
    let a = app.signup("ada@example.com", "Acme").await;
    let base = std::env::var("FLO2_TEST_DATABASE_URL").unwrap();
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
    let name = database_name(&app.db);
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (status, retry, body) = send(&app, Method::GET, "/api/v1/me", Some(&a.token), None).await;
    assert_unavailable(
        status,
        retry.as_deref(),
        &body,
        "API read, database dropped",
    );
    let (status, retry, body) = api_login(&app).await;
    assert_unavailable(
        status,
        retry.as_deref(),
        &body,
        "API login, database dropped",
    );
    let (status, _, body) = send(&app, Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["reason"], "database unreachable", "{body}");
    // Recreate it so the harness's cleanup finds something to drop.
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
}
