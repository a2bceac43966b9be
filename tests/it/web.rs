//! The dashboard's account pages over real HTTP: sessions in cookies, CSRF on every form,
//! security headers, login throttling, logout and password change ending sessions.


use crate::common;
use crate::common::TestApp;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};

/// A browser-like client: keeps cookies by hand, never follows redirects.
struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookies: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            app,
            http,
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, resp: &Response) {
        for c in resp.headers().get_all(SET_COOKIE) {
            let c = c.to_str().unwrap();
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() && !c.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
    }

    async fn get(&mut self, path: &str) -> Response {
        let resp = self
            .http
            .get(self.app.url(path))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        resp
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        let resp = self
            .http
            .post(self.app.url(path))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        resp
    }

    /// The CSRF token of the form on `path`.
    async fn csrf(&mut self, path: &str) -> String {
        let html = self.get(path).await.text().await.unwrap();
        csrf_in(&html)
    }

    fn session(&self) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == "flo2_session")
            .map(|(_, v)| v.as_str())
    }
}

fn csrf_in(html: &str) -> String {
    let at =
        html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// `POST /api/v1/login`.
async fn api_login(app: &TestApp, email: &str, password: &str) -> (StatusCode, serde_json::Value) {
    app.call(
        reqwest::Method::POST,
        "/api/v1/login",
        None,
        Some(serde_json::json!({"email": email, "password": password})),
    )
    .await
}

fn location(resp: &Response) -> &str {
    resp.headers()[LOCATION].to_str().unwrap()
}

async fn sign_up<'a>(app: &'a TestApp, email: &str, org: &str) -> Browser<'a> {
    let mut b = Browser::new(app);
    let csrf = b.csrf("/signup").await;
    let resp = b
        .post(
            "/signup",
            &[
                ("csrf", &csrf),
                ("email", email),
                ("password", common::PASSWORD),
                ("organization", org),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/app");
    b
}

#[tokio::test]
async fn sign_up_lands_on_an_overview_that_says_what_to_do_next() {
    let app = TestApp::start().await;
    let mut b = Browser::new(&app);
    let page = b.get("/signup").await;
    assert_eq!(page.status(), StatusCode::OK);
    let nonce = page
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("flo2_nonce="))
        .unwrap();
    assert!(
        nonce.contains("HttpOnly") && nonce.contains("SameSite=Strict"),
        "{nonce}"
    );
    let csrf = csrf_in(&page.text().await.unwrap());
    let resp = b
        .post(
            "/signup",
            &[
                ("csrf", &csrf),
                ("email", "Ada@Example.com"),
                ("password", common::PASSWORD),
                ("organization", "Analytical Engines"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("flo2_session=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http here; Secure is set behind https"
    );
    let overview = b.get("/app").await;
    assert_eq!(overview.status(), StatusCode::OK);
    let headers = overview.headers().clone();
    let html = overview.text().await.unwrap();
    assert!(
        html.contains("Analytical Engines") && html.contains("ada@example.com"),
        "{html}"
    );
    assert!(
        html.contains("Next: add a provider key"),
        "an empty state that says what to do"
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'")
            && !csp.contains("unsafe-inline")
            && csp.contains("frame-ancestors 'none'")
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // The landing page and the stylesheet carry the headers too.
    let landing = b.get("/").await;
    assert!(landing.headers().contains_key("content-security-policy"));
}

#[tokio::test]
async fn forms_keep_their_input_and_show_errors_next_to_the_field() {
    let app = TestApp::start().await;
    sign_up(&app, "taken@example.com", "First").await;
    let mut b = Browser::new(&app);
    let csrf = b.csrf("/signup").await;
    for (email, password, org, status, field_error) in [
        (
            "not-an-email",
            common::PASSWORD,
            "Keep Me",
            StatusCode::BAD_REQUEST,
            "`email` is not a valid email address",
        ),
        (
            "new@example.com",
            "short",
            "Keep Me",
            StatusCode::UNPROCESSABLE_ENTITY,
            "`password` must be",
        ),
        (
            "taken@example.com",
            common::PASSWORD,
            "Keep Me",
            StatusCode::CONFLICT,
            "already exists",
        ),
        (
            "new@example.com",
            common::PASSWORD,
            "",
            StatusCode::BAD_REQUEST,
            "`organization` must be",
        ),
    ] {
        let resp = b
            .post(
                "/signup",
                &[
                    ("csrf", &csrf),
                    ("email", email),
                    ("password", password),
                    ("organization", org),
                ],
            )
            .await;
        assert_eq!(resp.status(), status, "{email} {password} {org}");
        let html = resp.text().await.unwrap();
        assert!(
            html.contains("class=\"field-error\"") && html.contains(field_error),
            "{html}"
        );
        assert!(
            html.contains(&format!("value=\"{email}\"")),
            "the email is kept"
        );
        assert!(
            !html.contains(password) || password == "short" && !html.contains("value=\"short\""),
            "the password is never echoed"
        );
    }
    // HTML in the input is escaped when the form comes back.
    let resp = b
        .post(
            "/signup",
            &[
                ("csrf", &csrf),
                ("email", "x"),
                ("password", common::PASSWORD),
                ("organization", "<script>alert(1)</script>"),
            ],
        )
        .await;
    let html = resp.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"), "{html}");
}

#[tokio::test]
async fn forged_posts_are_refused() {
    let app = TestApp::start().await;
    let mut b = sign_up(&app, "ada@example.com", "Acme").await;
    // Another site's form: the session cookie may ride along, the token cannot.
    for form in [vec![], vec![("csrf", "0000")]] {
        let resp = b.post("/logout", &form).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let resp = b
            .post(
                "/account/password",
                &[
                    &form[..],
                    &[
                        ("current_password", common::PASSWORD),
                        ("new_password", "a completely new one"),
                    ],
                ]
                .concat(),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        b.get("/app").await.status(),
        StatusCode::OK,
        "still logged in, nothing changed"
    );
    // Anonymous forms: a token without its nonce cookie, or from another browser, fails.
    let mut other = Browser::new(&app);
    let theirs = other.csrf("/login").await;
    let mut fresh = Browser::new(&app);
    fresh.csrf("/login").await;
    let resp = fresh
        .post(
            "/login",
            &[
                ("csrf", &theirs),
                ("email", "ada@example.com"),
                ("password", common::PASSWORD),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = Browser::new(&app)
        .post(
            "/signup",
            &[
                ("csrf", &theirs),
                ("email", "eve@example.com"),
                ("password", common::PASSWORD),
                ("organization", "Evil"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn logout_ends_the_session_everywhere() {
    let app = TestApp::start().await;
    let mut b = sign_up(&app, "ada@example.com", "Acme").await;
    let token = b.session().unwrap().to_owned();
    let html = b.get("/app").await.text().await.unwrap();
    let resp = b.post("/logout", &[("csrf", &csrf_in(&html))]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/login");
    assert!(b.session().is_none(), "the cookie is cleared");
    // The old token is dead: as a cookie and as an API bearer token.
    let mut replay = Browser::new(&app);
    replay.cookies.push(("flo2_session".into(), token.clone()));
    let resp = replay.get("/app").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/login");
    assert_eq!(
        app.get("/api/v1/me", &token).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Pages need a session.
    let resp = Browser::new(&app).get("/account/password").await;
    assert_eq!(
        (resp.status(), location(&resp)),
        (StatusCode::SEE_OTHER, "/login")
    );
}

#[tokio::test]
async fn logins_are_throttled_after_repeated_failures() {
    let app = TestApp::start().await;
    sign_up(&app, "ada@example.com", "Acme").await;
    let mut b = Browser::new(&app);
    let csrf = b.csrf("/login").await;
    for _ in 0..5 {
        let resp = b
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("email", "ada@example.com"),
                    ("password", "wrong password"),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let html = resp.text().await.unwrap();
        assert!(
            html.contains("email or password is wrong")
                && html.contains("value=\"ada@example.com\"")
        );
    }
    // Now even the right password waits, on the page and on the API.
    let resp = b
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "ada@example.com"),
                ("password", common::PASSWORD),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let (status, body) = api_login(&app, "ada@example.com", common::PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["code"], "too_many_attempts");
    // Other accounts from the same address are unaffected.
    sign_up(&app, "bob@example.com", "Bob").await;
    let resp = b
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "bob@example.com"),
                ("password", common::PASSWORD),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_password_change_ends_every_session() {
    let app = TestApp::start().await;
    let mut b = sign_up(&app, "ada@example.com", "Acme").await;
    let (status, other) = api_login(&app, "ada@example.com", common::PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = b.csrf("/account/password").await;
    let resp = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", "not it at all"),
                ("new_password", "a completely new one"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("`current_password` is wrong"));
    let resp = b
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", common::PASSWORD),
                ("new_password", "a completely new one"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/login?changed=1");
    assert_eq!(b.get("/app").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/api/v1/me", other["token"].as_str().unwrap())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let mut again = Browser::new(&app);
    let csrf = again.csrf("/login?changed=1").await;
    let resp = again
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("email", "ada@example.com"),
                ("password", "a completely new one"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(again.get("/app").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn provider_and_api_keys_are_managed_from_the_dashboard() {
    let app = TestApp::start().await;
    let mut b = sign_up(&app, "ada@example.com", "Acme").await;
    let page = b.get("/app/provider-keys").await.text().await.unwrap();
    assert!(page.contains("No provider keys yet"));
    let csrf = csrf_in(&page);
    // A missing key comes back next to its field, the rest kept.
    let resp = b
        .post(
            "/app/provider-keys",
            &[
                ("csrf", &csrf),
                ("provider", "groq"),
                ("name", "prod"),
                ("api_key", ""),
                ("base_url", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("class=\"field-error\"")
            && html.contains("value=\"prod\"")
            && html.contains("value=\"groq\" selected"),
        "{html}"
    );
    let secret = "sk-dashboard-secret-0123456789";
    let resp = b
        .post(
            "/app/provider-keys",
            &[
                ("csrf", &csrf),
                ("provider", "openai"),
                ("name", "prod"),
                ("api_key", secret),
                ("base_url", ""),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let html = b.get(location(&resp)).await.text().await.unwrap();
    assert!(html.contains("The key is stored") && html.contains("prod") && html.contains("6789"));
    assert!(!html.contains(secret), "the key is never shown again");
    // Rotation replaces the secret in place: same key id, new hint.
    let (_, before) = app.get("/api/v1/provider-keys", b_token(&b)).await;
    let id = before[0]["id"].as_str().unwrap().to_owned();
    let resp = b
        .post(
            &format!("/app/provider-keys/{id}/rotate"),
            &[("csrf", &csrf), ("api_key", "sk-rotated-secret-4242")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let html = b.get(location(&resp)).await.text().await.unwrap();
    assert!(
        html.contains("The key is replaced")
            && html.contains("4242")
            && !html.contains("sk-rotated-secret-4242")
    );
    let (_, after) = app.get("/api/v1/provider-keys", b_token(&b)).await;
    assert_eq!(after[0]["id"], id.as_str());
    let resp = b
        .post(
            &format!("/app/provider-keys/{id}/rotate"),
            &[("csrf", &csrf), ("api_key", "")],
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "an empty key is refused"
    );
    // API keys: a new team and a key in one go; the secret is shown once, with snippets.
    let page = b.get("/app/api-keys").await.text().await.unwrap();
    let resp = b
        .post(
            "/app/api-keys",
            &[
                ("csrf", &csrf_in(&page)),
                ("name", "web app"),
                ("team", "new"),
                ("new_team", "backend"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let html = resp.text().await.unwrap();
    let at = html.find("<code id=\"new-key\">").unwrap() + "<code id=\"new-key\">".len();
    let key = html[at..].split('<').next().unwrap().to_owned();
    assert!(key.starts_with("flo2_"), "{key}");
    for snippet in [
        "from openai import OpenAI",
        "from anthropic import Anthropic",
        "import OpenAI from \"openai\"",
        "curl ",
    ] {
        assert!(html.contains(snippet), "{snippet}");
    }
    assert!(html.contains("data-copy=\"new-key\""), "a copy button");
    let listed = b.get("/app/api-keys").await.text().await.unwrap();
    assert!(
        listed.contains("web app")
            && listed.contains("backend")
            && listed.contains("never")
            && !listed.contains(&key)
    );
    // The key works at the gateway until it is revoked.
    assert_eq!(app.models(&key).await.0, StatusCode::OK);
    let other = sign_up(&app, "eve@example.com", "Evil").await;
    let (_, keys) = app.get("/api/v1/api-keys", b_token(&b)).await;
    let key_id = keys[0]["id"].as_str().unwrap().to_owned();
    let (_, creds) = app.get("/api/v1/provider-keys", b_token(&b)).await;
    let cred_id = creds[0]["id"].as_str().unwrap().to_owned();
    // Another tenant cannot revoke or delete them, even with a valid form of its own.
    let mut other = other;
    let their_csrf = csrf_in(&other.get("/app").await.text().await.unwrap());
    for path in [
        format!("/app/api-keys/{key_id}/revoke"),
        format!("/app/provider-keys/{cred_id}/delete"),
    ] {
        let resp = other.post(&path, &[("csrf", &their_csrf)]).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert!(other
        .get("/app/api-keys")
        .await
        .text()
        .await
        .unwrap()
        .contains("No API keys yet"));
    assert_eq!(app.models(&key).await.0, StatusCode::OK);
    let csrf = csrf_in(&listed);
    let resp = b
        .post(
            &format!("/app/api-keys/{key_id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(b
        .get(location(&resp))
        .await
        .text()
        .await
        .unwrap()
        .contains("revoked"));
    assert_eq!(app.models(&key).await.0, StatusCode::UNAUTHORIZED);
    let resp = b
        .post(
            &format!("/app/provider-keys/{cred_id}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(b
        .get("/app/provider-keys")
        .await
        .text()
        .await
        .unwrap()
        .contains("No provider keys yet"));
}

/// The session token a browser holds (the API accepts it as a bearer token).
fn b_token<'b>(b: &'b Browser<'_>) -> &'b str {
    b.session().unwrap()
}

#[tokio::test]
async fn routes_are_created_edited_and_deleted_from_the_dashboard() {
    let app = TestApp::start().await;
    let mut b = sign_up(&app, "ada@example.com", "Acme").await;
    let page = b.get("/app/routes").await.text().await.unwrap();
    assert!(page.contains("No routes yet"));
    let csrf = csrf_in(&page);
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("name", "chat"),
        ("strategy", "race"),
        ("targets", "openai/gpt-4o-mini"),
        ("retries_per_target", "1"),
        ("deadline_ms", "20000"),
        ("attempt_timeout_ms", "5000"),
        ("race_mode", "hedged"),
        ("hedge_delay_ms", "250"),
    ];
    // A race of one target: the error sits next to the targets, the input stays.
    let resp = b.post("/app/routes", &form).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("class=\"field-error\">a race needs at least two targets"),
        "{html}"
    );
    assert!(html.contains("value=\"hedged\" selected") && html.contains("value=\"250\""));
    for (targets, needle) in [
        ("gpt-4o", "must be provider/model"),
        ("openai/a weight=x", "is not weight=N"),
    ] {
        form[3] = ("targets", targets);
        let html = b.post("/app/routes", &form).await.text().await.unwrap();
        assert!(html.contains(needle), "{html}");
    }
    form[3] = (
        "targets",
        "openai/gpt-4o-mini\ngroq/llama-3.1-8b-instant weight=2",
    );
    let resp = b.post("/app/routes", &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let listed = b.get(location(&resp)).await.text().await.unwrap();
    assert!(
        listed.contains("Route saved")
            && listed.contains("openai/gpt-4o-mini, groq/llama-3.1-8b-instant")
    );
    // The API sees exactly what the form said.
    let (status, route) = app.get("/api/v1/routes/chat", b_token(&b)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(route["strategy"], "race");
    assert_eq!(route["race"]["mode"], "hedged");
    assert_eq!(route["race"]["hedge_delay_ms"], 250);
    assert_eq!(route["targets"][1]["weight"], 2);
    assert_eq!(route["fallback"]["deadline_ms"], 20000);
    // The edit form comes back filled in.
    let edit = b.get("/app/routes/chat").await.text().await.unwrap();
    assert!(
        edit.contains("Edit route chat") && edit.contains("groq/llama-3.1-8b-instant weight=2")
    );
    // Another tenant sees none of it.
    let mut eve = sign_up(&app, "eve@example.com", "Evil").await;
    assert_eq!(
        eve.get("/app/routes/chat").await.status(),
        StatusCode::NOT_FOUND
    );
    let their_csrf = csrf_in(&eve.get("/app/routes").await.text().await.unwrap());
    assert_eq!(
        eve.post("/app/routes/chat/delete", &[("csrf", &their_csrf)])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let resp = b.post("/app/routes/chat/delete", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/api/v1/routes/chat", b_token(&b)).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_whole_journey_from_sign_up_to_the_csv() {
    let app = TestApp::start().await;
    let fake = flo2_testkit::FakeUpstream::start().await;
    fake.set_default(flo2_testkit::Scenario::text("hi there").usage(1_000, 500));
    let mut b = sign_up(&app, "ada@example.com", "Acme").await;
    let csrf = csrf_in(&b.get("/app").await.text().await.unwrap());
    let base = format!("{}/v1", fake.base_url());
    let resp = b
        .post(
            "/app/provider-keys",
            &[
                ("csrf", &csrf),
                ("provider", "openai"),
                ("name", "prod"),
                ("api_key", "sk-journey-0123456789"),
                ("base_url", &base),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    // The test button makes one tiny real call with the key, metered with role `test`.
    let (_, creds) = app.get("/api/v1/provider-keys", b_token(&b)).await;
    let cred = creds[0]["id"].as_str().unwrap().to_owned();
    let html = b
        .post(
            &format!("/app/provider-keys/{cred}/test"),
            &[("csrf", &csrf)],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("The key works.") && html.contains("openai/gpt-4o-mini answered 200"),
        "{html}"
    );
    let asked = fake.requests().last().unwrap().body.clone();
    assert_eq!(asked["max_tokens"], 1, "the cheapest possible call");
    fake.push(flo2_testkit::Scenario::error(
        401,
        "Incorrect API key provided: sk-journ...6789",
    ));
    let html = b
        .post(
            &format!("/app/provider-keys/{cred}/test"),
            &[("csrf", &csrf)],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("The key test failed.")
            && html.contains("401")
            && !html.contains("sk-journey"),
        "{html}"
    );
    let resp = b
        .post(
            "/app/routes",
            &[
                ("csrf", &csrf),
                ("name", "chat"),
                ("strategy", "cheapest"),
                ("targets", "openai/gpt-4o\nopenai/gpt-4o-mini"),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let html = b
        .post(
            "/app/api-keys",
            &[
                ("csrf", &csrf),
                ("name", "web"),
                ("team", "new"),
                ("new_team", "backend"),
            ],
        )
        .await
        .text()
        .await
        .unwrap();
    let at = html.find("<code id=\"new-key\">").unwrap() + "<code id=\"new-key\">".len();
    let key = html[at..].split('<').next().unwrap().to_owned();
    let resp = app.http.post(app.url("/v1/chat/completions")).bearer_auth(&key)
        .json(&serde_json::json!({"model": "chat", "messages": [{"role": "user", "content": "hello"}]})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cost = resp.headers()["x-flo2-cost-usd"]
        .to_str()
        .unwrap()
        .to_owned();
    // GPT-4o mini (the cheapest target): 1000 × $0.15 + 500 × $0.60 per million = $0.00045.
    assert_eq!(cost, "0.000450000000");
    // The usage page shows the call, its cost, its route decision and the savings.
    let org = app.get("/api/v1/me", b_token(&b)).await.1["organization"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.usage_rows(&org, 3).await;
    // Everything, the key tests included, is in the request log.
    let all = b.get("/app/usage").await.text().await.unwrap();
    assert!(
        all.contains("<td>test</td>") && all.contains("<td>401</td>"),
        "{all}"
    );
    let page = b.get("/app/usage?route=chat").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("$0.000450000000"), "{html}");
    assert!(
        html.contains("route chat")
            && html.contains("openai/gpt-4o-mini")
            && html.contains("primary")
    );
    assert!(html.contains("<svg") && html.contains("Request log"));
    // Baseline GPT-4o: 1000 × 2.50 + 500 × 10 = $0.0075; saved $0.00705, all by routing.
    assert!(
        html.contains(
            "$0.007050000000</span> saved (0.007050000000 routing, 0.000000000000 cache)"
        ),
        "{html}"
    );
    let by_model = b
        .get("/app/usage?group_by=model&chart_by=provider")
        .await
        .text()
        .await
        .unwrap();
    assert!(by_model.contains("<td>openai/gpt-4o-mini</td>"));
    // Both downloads work with the dashboard session and agree with the page.
    let csv = b.get("/app/usage/export.csv?route=chat").await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].contains("chat")
            && lines[1].contains("gpt-4o-mini")
            && lines[1].contains("0.000450000000"),
        "{text}"
    );
    let summary = b
        .get("/app/usage/summary.csv?group_by=route")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        summary.contains("chat,") && summary.contains("0.000450000000"),
        "{summary}"
    );
    // Filters narrow the page; a bad date is explained, not a crash.
    let none = b.get("/app/usage?route=other").await.text().await.unwrap();
    assert!(none.contains("No calls in this range"));
    let bad = b.get("/app/usage?from=yesterday").await;
    assert_eq!(bad.status(), StatusCode::OK);
    assert!(bad.text().await.unwrap().contains("`from` must be a date"));
    // Another tenant's usage page is empty, and its CSV holds only the header.
    let mut eve = sign_up(&app, "eve@example.com", "Evil").await;
    assert!(eve
        .get("/app/usage")
        .await
        .text()
        .await
        .unwrap()
        .contains("No calls in this range"));
    assert_eq!(
        eve.get("/app/usage/export.csv")
            .await
            .text()
            .await
            .unwrap()
            .lines()
            .count(),
        1
    );
}

#[tokio::test]
async fn prices_are_searched_and_set_from_the_dashboard() {
    let app = TestApp::start().await;
    let mut b = sign_up(&app, "ada@example.com", "Acme").await;
    let html = b
        .get("/app/prices?q=gpt-4o-mini&provider=openai")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("openai/gpt-4o-mini") && html.contains("0.15") && !html.contains("claude"),
        "searchable"
    );
    let csrf = csrf_in(&html);
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("provider", "openai"),
        ("model", "gpt-4o-mini"),
        ("input_per_mtok", "abc"),
        ("output_per_mtok", "0.50"),
        ("effective_from", "2030-01-01T12:00"),
    ];
    let resp = b.post("/app/prices", &form).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("class=\"field-error\">`input_per_mtok`") && html.contains("value=\"abc\""),
        "{html}"
    );
    form[3] = ("input_per_mtok", "0.10");
    let resp = b.post("/app/prices", &form).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let html = b
        .get("/app/prices?q=gpt-4o-mini")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("your price")
            && html.contains("2030-01-01 12:00 UTC")
            && html.contains("0.10"),
        "{html}"
    );
    // The same price through the API, and none of it in another tenant's list.
    let (_, prices) = app
        .get("/api/v1/prices?q=gpt-4o-mini&provider=openai", b_token(&b))
        .await;
    assert!(
        prices
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["source"] == "organization" && p["input_per_mtok"] == "0.100000"),
        "{prices}"
    );
    let mut eve = sign_up(&app, "eve@example.com", "Evil").await;
    assert!(!eve
        .get("/app/prices?q=gpt-4o-mini")
        .await
        .text()
        .await
        .unwrap()
        .contains("your price"));

    // Each own price has a delete button; another tenant's form cannot delete it.
    let id = prices
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["source"] == "organization")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let action = format!("/app/prices/{id}/delete");
    let html = b
        .get("/app/prices?q=gpt-4o-mini")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!("action=\"{action}\"")), "{html}");
    let eve_csrf = eve.csrf("/app/prices").await;
    let resp = eve.post(&action, &[("csrf", &eve_csrf)]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = b.post(&action, &[("csrf", "forged")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let csrf = csrf_in(&html);
    let resp = b.post(&action, &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/app/prices?done=deleted");
    let html = b
        .get("/app/prices?q=gpt-4o-mini&done=deleted")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Price deleted") && !html.contains("your price"),
        "{html}"
    );
}

#[tokio::test]
async fn the_audit_log_page_filters_pages_and_is_for_admins() {
    let app = TestApp::start().await;
    let mut b = sign_up(&app, "ada@example.com", "Acme").await;
    for i in 0..55 {
        app.team(b_token(&b), &format!("team-{i:02}")).await;
    }
    let html = b.get("/app").await.text().await.unwrap();
    assert!(html.contains("href=\"/app/audit\""), "admins see the link");
    let resp = b.get("/app/audit").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    // Newest first, 50 a page, and a link to the older ones.
    assert!(
        html.contains("team-54") && !html.contains("team-04"),
        "{html}"
    );
    assert_eq!(html.matches("<code>team.created</code>").count(), 50);
    let at = html
        .find("href=\"/app/audit?cursor=")
        .expect("a next-page link")
        + 6;
    let next = html[at..].split('"').next().unwrap().replace("&amp;", "&");
    let html = b.get(&next).await.text().await.unwrap();
    assert_eq!(
        html.matches("<code>team.created</code>").count(),
        5,
        "{html}"
    );
    assert!(html.contains("account.signed_up") && html.contains("127.0.0.1"));
    // The filter form narrows it, and keeps its values.
    let html = b
        .get("/app/audit?action=account.signed_up")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<option value=\"account.signed_up\" selected>"));
    assert_eq!(html.matches("<code>account.signed_up</code>").count(), 1);
    assert!(!html.contains("<code>team.created</code>"));
    let resp = b.get("/app/audit?from=yesterday").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("`from` must be a date and time"));

    // A viewer gets neither the link nor the page.
    let (_, invite) = app
        .post(
            "/api/v1/invites",
            b_token(&b),
            serde_json::json!({"role": "viewer"}),
        )
        .await;
    let viewer = app.signup("vic@example.com", "Vic's").await;
    let (status, _) = app
        .post(
            "/api/v1/invites/accept",
            &viewer.token,
            serde_json::json!({"token": invite["token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut v = Browser::new(&app);
    v.cookies
        .push(("flo2_session".into(), viewer.token.clone()));
    let html = v.get("/app").await.text().await.unwrap();
    assert!(!html.contains("/app/audit"));
    assert_eq!(v.get("/app/audit").await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn members_invitations_teams_and_the_organization_switcher() {
    let app = TestApp::start().await;
    let mut owner = sign_up(&app, "ada@example.com", "Acme").await;
    let page = owner.get("/app/members").await.text().await.unwrap();
    let csrf = csrf_in(&page);
    // An invitation link, shown once.
    let resp = owner
        .post(
            "/app/invites",
            &[("csrf", &csrf), ("role", "member"), ("email", "")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let html = resp.text().await.unwrap();
    let at = html.find("<code id=\"invite-link\">").unwrap() + "<code id=\"invite-link\">".len();
    let link = html[at..].split('<').next().unwrap().to_owned();
    let token = link.split('#').nth(1).unwrap().to_owned();
    assert!(link.contains("/invite#flo2_inv_"), "{link}");
    assert!(
        !owner
            .get("/app/members")
            .await
            .text()
            .await
            .unwrap()
            .contains(&token),
        "shown once"
    );
    // Bob signs up in his own organization, then joins Acme through the link's page.
    let mut bob = sign_up(&app, "bob@example.com", "Bob's").await;
    let invite = bob.get("/invite").await.text().await.unwrap();
    assert!(invite.contains("data-from-hash"));
    let resp = bob
        .post(
            "/invite",
            &[("csrf", &csrf_in(&invite)), ("token", "flo2_inv_wrong")],
        )
        .await;
    assert!(resp.status().is_client_error());
    let resp = bob
        .post("/invite", &[("csrf", &csrf_in(&invite)), ("token", &token)])
        .await;
    assert_eq!(
        (resp.status(), location(&resp)),
        (StatusCode::SEE_OTHER, "/app")
    );
    let bob_page = bob.get("/app/members").await.text().await.unwrap();
    assert!(
        bob_page.contains("<h1>Acme</h1>") && bob_page.contains("Bob&#39;s"),
        "{bob_page}"
    );
    assert!(
        !bob_page.contains("Create invitation link"),
        "a member cannot invite"
    );
    // Bob switches back to his own organization and again to Acme.
    let (_, orgs) = app.get("/api/v1/organizations", b_token(&bob)).await;
    let own = orgs
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Bob's")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = bob
        .post(
            "/app/organization/switch",
            &[("csrf", &csrf_in(&bob_page)), ("organization_id", &own)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        bob.get("/app")
            .await
            .text()
            .await
            .unwrap()
            .contains("Bob&#39;s"),
        "the overview is Bob's own organization"
    );
    let (_, me) = app.get("/api/v1/me", b_token(&bob)).await;
    assert_eq!(me["organization"]["id"], own.as_str());
    // The owner sees Bob, makes him admin, creates and deletes a team.
    let page = owner.get("/app/members").await.text().await.unwrap();
    assert!(page.contains("bob@example.com"));
    let (_, members) = app.get("/api/v1/members", b_token(&owner)).await;
    let bob_id = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "bob@example.com")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = owner
        .post(
            &format!("/app/members/{bob_id}/role"),
            &[("csrf", &csrf), ("role", "admin")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(owner
        .get(location(&resp))
        .await
        .text()
        .await
        .unwrap()
        .contains("Role changed"));
    let resp = owner
        .post("/app/teams", &[("csrf", &csrf), ("name", "")])
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "errors come back on the page"
    );
    let resp = owner
        .post("/app/teams", &[("csrf", &csrf), ("name", "platform")])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, teams) = app.get("/api/v1/teams", b_token(&owner)).await;
    let team = teams[0]["id"].as_str().unwrap().to_owned();
    // Eve, in another organization, can touch none of it.
    let mut eve = sign_up(&app, "eve@example.com", "Evil").await;
    let eve_csrf = csrf_in(&eve.get("/app/members").await.text().await.unwrap());
    for path in [
        format!("/app/members/{bob_id}/role"),
        format!("/app/members/{bob_id}/remove"),
        format!("/app/teams/{team}/delete"),
    ] {
        let resp = eve
            .post(&path, &[("csrf", &eve_csrf), ("role", "owner")])
            .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let resp = eve
        .post(
            "/app/organization/switch",
            &[("csrf", &eve_csrf), ("organization_id", &own)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = owner
        .post(&format!("/app/teams/{team}/delete"), &[("csrf", &csrf)])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = owner
        .post(&format!("/app/members/{bob_id}/remove"), &[("csrf", &csrf)])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(!owner
        .get("/app/members")
        .await
        .text()
        .await
        .unwrap()
        .contains("bob@example.com"));
    // A new organization from the page, worked in at once.
    let resp = owner
        .post(
            "/app/organizations",
            &[("csrf", &csrf), ("name", "Side project")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(owner
        .get("/app")
        .await
        .text()
        .await
        .unwrap()
        .contains("Side project"));
}

#[tokio::test]
async fn the_usage_page_warns_about_unpriced_calls_and_links_to_their_price() {
    let app = TestApp::start().await;
    let mut b = sign_up(&app, "ada@example.com", "Acme").await;
    let fake = flo2_testkit::FakeUpstream::start().await;
    fake.set_default(flo2_testkit::Scenario::text("ok").usage(10, 2));
    let token = b_token(&b).to_owned();
    let (status, _) = app
        .post(
            "/api/v1/provider-keys",
            &token,
            serde_json::json!({"provider": "openai-compatible", "name": "vllm", "api_key": "sk-0123456789abcdef",
                "base_url": format!("{}/v1", fake.base_url())}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let html = b.get("/app/usage").await.text().await.unwrap();
    assert!(
        !html.contains("unpriced-warning"),
        "no warning before any call"
    );
    let team = app.team(&token, "t").await;
    let (_, key) = app.api_key(&token, &team, "k").await;
    let resp = app
        .http
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"model": "openai-compatible/my-finetune", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Usage is written in batches: wait for the call to land.
    let mut html = String::new();
    for _ in 0..100 {
        html = b.get("/app/usage").await.text().await.unwrap();
        if html.contains("unpriced-warning") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(html.contains("id=\"unpriced-warning\""), "{html}");
    assert!(html.contains("1 call to models without a price"), "{html}");
    let link = "/app/prices?provider=openai-compatible&#38;model=my-finetune#set-price";
    assert!(html.contains(link), "{html}");
    // The link opens the price form for that model.
    let html = b
        .get("/app/prices?provider=openai-compatible&model=my-finetune")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"set-price\""));
    assert!(
        html.contains("name=\"model\" value=\"my-finetune\""),
        "{html}"
    );
}

#[tokio::test]
async fn the_dashboard_refuses_a_private_base_url_next_to_its_field() {
    let db = common::TestDb::new().await;
    let app = TestApp::start_configured(db, common::master_key(), flo2::Mode::Serve, |c| {
        c.allow_private_upstreams = false;
    })
    .await;
    let mut b = sign_up(&app, "mallory@example.com", "Mallory").await;
    let csrf = b.csrf("/app/provider-keys").await;
    for url in [
        "http://169.254.169.254/latest",
        "http://[::ffff:127.0.0.1]/v1",
    ] {
        let resp = b
            .post(
                "/app/provider-keys",
                &[
                    ("csrf", &csrf),
                    ("provider", "openai-compatible"),
                    ("name", "metadata"),
                    ("api_key", "sk-x"),
                    ("base_url", url),
                ],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let html = resp.text().await.unwrap();
        let error = html
            .split("<p class=\"field-error\">")
            .nth(1)
            .unwrap_or_else(|| panic!("a field error: {html}"));
        assert!(error.starts_with("`base_url`"), "{error}");
        assert!(
            html.contains(&format!("value=\"{url}\"")),
            "the input is kept"
        );
    }
    let (_, keys) = app.get("/api/v1/provider-keys", b_token(&b)).await;
    assert_eq!(keys, serde_json::json!([]), "nothing was stored");
}
