//! Shared harness for the end-to-end tests: a fresh database per test (SQLite file, or a new
//! PostgreSQL database when `FLO2_TEST_DATABASE_URL` is set), a flo2 server on a random port,
//! and small HTTP helpers; `tenant` holds the one tenant fixture.

mod tenant;

pub use tenant::{answer_ok, csv, Api, Streamed, Tenant, PROVIDER_SECRET};

use flo2_testkit::postgres::with_database;
use std::path::PathBuf;

use flo2::{Config, Mode, RunningServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;

/// A database of one test's own.
pub struct TestDb {
    pub url: String,
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        match std::env::var("FLO2_TEST_DATABASE_URL") {
            Ok(base) if !base.is_empty() => {
                let name = format!("flo2_t_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&base)
                    .await
                    .expect("FLO2_TEST_DATABASE_URL is set but PostgreSQL is unreachable");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                admin.close().await.unwrap();
                let url = with_database(&base, &name);
                TestDb {
                    url,
                    dir,
                    postgres: Some((base, name)),
                }
            }
            _ => {
                let url = format!("sqlite:{}", dir.path().join("flo2.db").display());
                TestDb {
                    url,
                    dir,
                    postgres: None,
                }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A direct connection for assertions on stored rows.
    pub async fn raw(&self) -> flo2_store::Store {
        flo2_store::Store::connect(&self.url, &flo2_store::PoolOptions::default())
            .await
            .unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, name)) = self.postgres.take() {
            // Drop runs outside any runtime guarantee: use a private one on a plain thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    if let Ok(mut admin) = sqlx::PgConnection::connect(&base).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut admin)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A fresh random master key, base64.
pub fn master_key() -> String {
    flo2_vault::MasterKey::generate().to_base64()
}

/// A configuration for `db`: random port, the given master key, fast background intervals.
pub fn config(db: &TestDb, key: &str) -> Config {
    let env: Vec<(String, String)> = vec![
        ("FLO2_LISTEN".into(), "127.0.0.1:0".into()),
        ("FLO2_DATA_DIR".into(), db.data_dir().display().to_string()),
        ("FLO2_DATABASE_URL".into(), db.url.clone()),
        ("FLO2_MASTER_KEY".into(), key.into()),
        ("FLO2_DB_MAX_CONNECTIONS".into(), "4".into()),
        ("FLO2_CHANGE_POLL_MS".into(), "50".into()),
        ("FLO2_KEY_TOUCH_INTERVAL_MS".into(), "50".into()),
        ("FLO2_SHUTDOWN_GRACE_SECS".into(), "5".into()),
        // The fake upstream listens on loopback.
        ("FLO2_ALLOW_PRIVATE_UPSTREAMS".into(), "true".into()),
        // Breakers that open and probe within a test's time.
        ("FLO2_BREAKER_FAILURES".into(), "3".into()),
        ("FLO2_BREAKER_OPEN_MS".into(), "500".into()),
        // Hedging tests send a few requests back to back; the budget's own test sets its floor to 0.
        ("FLO2_HEDGE_BUDGET_FLOOR_PER_SEC".into(), "50".into()),
    ];
    Config::load_from(None, &env).unwrap()
}

/// A running flo2 with its own database.
pub struct TestApp {
    pub db: TestDb,
    pub key: String,
    pub base: String,
    pub http: reqwest::Client,
    server: Option<RunningServer>,
    /// Tenants made so far by [`TestApp::tenant`], to give each a fresh owner.
    tenants: std::sync::atomic::AtomicUsize,
}

impl TestApp {
    /// Both planes on one port, fresh database.
    pub async fn start() -> Self {
        let db = TestDb::new().await;
        Self::start_on(db, master_key(), Mode::Serve).await
    }

    pub async fn start_on(db: TestDb, key: String, mode: Mode) -> Self {
        Self::start_configured(db, key, mode, |_| {}).await
    }

    /// [`TestApp::start_on`] with the test's configuration changed by `edit` first.
    pub async fn start_configured(
        db: TestDb,
        key: String,
        mode: Mode,
        edit: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = config(&db, &key);
        edit(&mut config);
        let server = flo2::start(&config, mode).await.unwrap();
        TestApp {
            base: format!("http://{}", server.addr),
            db,
            key,
            http: reqwest::Client::new(),
            server: Some(server),
            tenants: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub fn store(&self) -> &flo2_store::Store {
        &self.server.as_ref().unwrap().store
    }

    /// Stops the server gracefully and hands back its database.
    pub async fn stop(mut self) -> (TestDb, String) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let TestApp { db, key, .. } = self;
        (db, key)
    }

    /// Waits (up to 4 s) until organization `org` has at least `at_least` usage rows; returns
    /// them oldest first.
    pub async fn usage_rows(&self, org: &str, at_least: usize) -> Vec<flo2_store::UsageRecord> {
        let org = org.parse().unwrap();
        for _ in 0..200 {
            let rows = self.store().usage_records(org, 100_000).await.unwrap();
            if rows.len() >= at_least {
                return rows;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("expected {at_least} usage rows");
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let resp = self.http.get(self.url("/metrics")).send().await;
        resp.unwrap().text().await.unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends `body` (if any) as JSON with an optional bearer token; returns status and JSON body
    /// (`Value::Null` for an empty body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, value) = self.call_full(method, path, token, body).await;
        (status, value)
    }

    /// [`TestApp::call`] that also hands back the answer's headers.
    pub async fn call_full(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        assert!(
            headers.contains_key("x-flo2-request-id"),
            "every answer carries a request id"
        );
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, value)
    }

    /// `POST /api/v1/login`.
    pub async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/api/v1/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// A client that does not follow redirects, and the cookie and CSRF token of the anonymous
    /// form on `path` (`/login`, `/signup`), ready to post.
    pub async fn anonymous_form(&self, path: &str) -> (reqwest::Client, String, String) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = http.get(self.url(path)).send().await.unwrap();
        let nonce = set_cookie_pair(page.headers());
        let html = page.text().await.unwrap();
        (http, nonce, csrf_in(&html))
    }

    /// Posts the dashboard login form with a cookie and token from
    /// [`TestApp::anonymous_form`], and the extra `headers`.
    pub async fn post_login_form(
        &self,
        (http, nonce, csrf): &(reqwest::Client, String, String),
        email: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = http
            .post(self.url("/login"))
            .header(reqwest::header::COOKIE, nonce)
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", email),
                ("password", password),
            ]);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Signs up a new user with a new organization; returns (token, org id, user id).
    pub async fn signup(&self, email: &str, org: &str) -> Account {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/signup",
                None,
                Some(json!({"email": email, "password": PASSWORD, "organization": org})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Account {
            token: body["token"].as_str().unwrap().to_owned(),
            org: body["organization"]["id"].as_str().unwrap().to_owned(),
            user: body["user"]["id"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates a team and returns its id.
    pub async fn team(&self, token: &str, name: &str) -> String {
        let (status, body) = self
            .post("/api/v1/teams", token, json!({"name": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Creates a gateway key and returns (id, secret).
    pub async fn api_key(&self, token: &str, team: &str, name: &str) -> (String, String) {
        let (status, body) = self
            .post(
                "/api/v1/api-keys",
                token,
                json!({"name": name, "team_id": team}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().unwrap().to_owned(),
            body["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Stores a provider key and returns its id.
    pub async fn provider_key(
        &self,
        token: &str,
        provider: &str,
        name: &str,
        secret: &str,
    ) -> String {
        let (status, body) = self
            .post(
                "/api/v1/provider-keys",
                token,
                json!({"provider": provider, "name": name, "api_key": secret}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// `GET /v1/models` with a gateway key, OpenAI style.
    pub async fn models(&self, key: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(self.url("/v1/models"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The model ids `GET /v1/models` lists for `key` (panics unless 200).
    pub async fn model_ids(&self, key: &str) -> Vec<String> {
        let (status, body) = self.models(key).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

/// The `name=value` of an answer's first `Set-Cookie`.
pub fn set_cookie_pair(headers: &reqwest::header::HeaderMap) -> String {
    headers[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// The `Retry-After` of an answer, if any.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The CSRF token of the (first) form in a page.
pub fn csrf_in(html: &str) -> String {
    let at =
        html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// The name of a PostgreSQL test database.
pub fn database_name(db: &TestDb) -> String {
    db.url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

/// A database outage the test controls: on SQLite another connection holds an exclusive lock
/// (writers wait out the busy timeout and fail); on PostgreSQL the database refuses connections
/// and its sessions are killed.
pub enum Outage {
    Sqlite(sqlx::SqliteConnection),
    Postgres {
        admin: sqlx::PgConnection,
        name: String,
    },
}

impl Outage {
    pub async fn start(db: &TestDb) -> Self {
        if db.is_postgres() {
            let base = std::env::var("FLO2_TEST_DATABASE_URL").unwrap();
            let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
            let name = database_name(db);
            sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
                .execute(&mut admin)
                .await
                .unwrap();
            sqlx::query(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"))
                .execute(&mut admin)
                .await
                .unwrap();
            Outage::Postgres { admin, name }
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql("BEGIN EXCLUSIVE")
                .execute(&mut conn)
                .await
                .unwrap();
            Outage::Sqlite(conn)
        }
    }

    pub async fn end(self) {
        match self {
            Outage::Sqlite(mut conn) => {
                sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Outage::Postgres { mut admin, name } => {
                sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
            }
        }
    }
}

pub struct Account {
    pub token: String,
    pub org: String,
    pub user: String,
}

/// Runs raw SQL (no parameters) against the test database, whichever dialect it is; used to
/// tamper with stored rows the way an attacker with database access could.
pub async fn exec_sql(db: &TestDb, sql: &str) -> u64 {
    if db.is_postgres() {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .unwrap()
            .rows_affected()
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .unwrap()
            .rows_affected()
    }
}

/// Splits an SSE body into (event name, JSON data) pairs; `[DONE]` comes back as a string.
pub fn sse(text: &str) -> Vec<(Option<String>, Value)> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            (
                name,
                serde_json::from_str(&data).unwrap_or(Value::String(data)),
            )
        })
        .collect()
}
