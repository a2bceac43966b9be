//! Passwords and sessions by OWASP ASVS level 2, from the attacker's side: guessable passwords
//! and the account's own details are refused wherever a password is set (API and forms);
//! under an https public URL the session cookie is `__Host-` and answers carry HSTS; forms
//! posted from another site are refused even with a valid CSRF token; `/api/v1` and the plain
//! 404/405 answers carry the pages' security headers.


use crate::common;
use crate::common::{TestApp, TestDb, PASSWORD};
use flo2::Mode;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Passwords the rule must refuse, for an account `ada@example.com` of "Acme Widgets".
const REFUSED: &[&str] = &[
    "short",
    "elevenchars",
    "password1234",
    "123456789012",
    "qwertyuiopasdfgh",
    "iloveyou2024",
    "aaaaaaaaaaaaaaaa",
    "Password123!",
    "ada@example.com",
    "ADA@EXAMPLE.COM",
    "acme widgets",
    "Acme Widgets",
];

fn assert_password_refused(answer: &(StatusCode, Value), field: &str, what: &str) {
    assert_eq!(
        answer.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: {}",
        answer.1
    );
    assert_eq!(answer.1["code"], "invalid_field", "{what}");
    let message = answer.1["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("`{field}`")),
        "{what}: {message}"
    );
    assert!(
        !message.contains(what) || what.len() < 6,
        "{what}: the password is not echoed"
    );
}

/// `POST /api/v1/signup` for ada@example.com of "Acme Widgets" with `password`.
async fn signup_acme(app: &TestApp, password: &str) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        "/api/v1/signup",
        None,
        Some(json!({"email": "ada@example.com", "password": password, "organization": "Acme Widgets"})),
    )
    .await
}

#[tokio::test]
async fn guessable_passwords_and_account_details_are_refused_at_signup() {
    let app = TestApp::start().await;
    for password in REFUSED {
        let answer = signup_acme(&app, password).await;
        assert_password_refused(&answer, "password", password);
    }
    // Too long is refused too; 256 characters of any script are fine.
    let long = "ä".repeat(257);
    let answer = signup_acme(&app, &long).await;
    assert_password_refused(&answer, "password", "too long");
    // None of them created the account; a good Unicode passphrase does.
    let good = "Ünïcødé façade quokka 🦘 tramway";
    let (status, body) = signup_acme(&app, good).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = app.login("ada@example.com", good).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_password_change_follows_the_same_rule() {
    let app = TestApp::start().await;
    let a = app.signup("ada@example.com", "Acme Widgets").await;
    for new in REFUSED {
        let answer = app
            .post(
                "/api/v1/password",
                &a.token,
                json!({"current_password": PASSWORD, "new_password": new}),
            )
            .await;
        assert_password_refused(&answer, "new_password", new);
    }
    // The user's other organizations' names are refused as well.
    app.post(
        "/api/v1/organizations",
        &a.token,
        json!({"name": "Second Venture Ltd"}),
    )
    .await;
    let answer = app
        .post(
            "/api/v1/password",
            &a.token,
            json!({"current_password": PASSWORD, "new_password": "second venture ltd"}),
        )
        .await;
    assert_password_refused(&answer, "new_password", "another organization's name");
    // The old password still works: nothing was changed.
    let (status, _) = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

/// A browser-like session: GETs a form, keeps cookies, posts the form with its CSRF token and
/// whatever extra headers the test adds.
struct Form {
    http: reqwest::Client,
    cookies: Vec<String>,
}

impl Form {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for c in resp.headers().get_all(SET_COOKIE) {
            let pair = c.to_str().unwrap().split(';').next().unwrap().to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            self.cookies.retain(|k| !k.starts_with(&format!("{name}=")));
            if !pair.ends_with('=') {
                self.cookies.push(pair);
            }
        }
    }

    async fn csrf(&mut self, app: &TestApp, path: &str) -> String {
        let resp = self
            .http
            .get(app.url(path))
            .header(COOKIE, self.cookies.join("; "))
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        common::csrf_in(&resp.text().await.unwrap())
    }

    /// Posts the sign-up form for ada@example.com.
    async fn sign_up(
        &mut self,
        app: &TestApp,
        csrf: &str,
        password: &str,
        organization: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let form = [
            ("csrf", csrf),
            ("email", "ada@example.com"),
            ("password", password),
            ("organization", organization),
        ];
        self.post(app, "/signup", &form, headers).await
    }

    async fn post(
        &mut self,
        app: &TestApp,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(app.url(path))
            .header(COOKIE, self.cookies.join("; "))
            .form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        self.keep(&resp);
        resp
    }
}

#[tokio::test]
async fn the_forms_show_the_password_rule_next_to_the_field() {
    let app = TestApp::start().await;
    let mut f = Form::new();
    let csrf = f.csrf(&app, "/signup").await;
    let resp = f
        .sign_up(&app, &csrf, "password1234", "Acme Widgets", &[])
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(html.contains("class=\"field-error\""), "{html}");
    assert!(html.contains("`password` is too easy to guess"), "{html}");
    assert!(!html.contains("password1234"), "the password is not echoed");
    // Signing up with a good one, then changing it to the email on the form.
    let resp = f.sign_up(&app, &csrf, PASSWORD, "Acme Widgets", &[]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let csrf = f.csrf(&app, "/account/password").await;
    let resp = f
        .post(
            &app,
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", PASSWORD),
                ("new_password", "Ada@Example.com"),
            ],
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("`new_password` must not be your email or organization name"),
        "{html}"
    );
}

#[tokio::test]
async fn cross_site_form_posts_are_refused_even_with_a_valid_token() {
    let app = TestApp::start().await;
    let mut f = Form::new();
    let csrf = f.csrf(&app, "/signup").await;
    let signup = [
        ("csrf", csrf.as_str()),
        ("email", "ada@example.com"),
        ("password", PASSWORD),
        ("organization", "Acme"),
    ];
    let own_origin = app.base.clone();
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![
            ("origin", own_origin.as_str()),
            ("sec-fetch-site", "cross-site"),
        ],
    ] {
        let resp = f.post(&app, "/signup", &signup, &headers).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(resp.headers().contains_key("content-security-policy"));
    }
    // Nothing was created by those.
    let (status, _) = app.login("ada@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The same form from flo2's own origin passes, as does one with neither header.
    let resp = f
        .post(
            &app,
            "/signup",
            &signup,
            &[("origin", &own_origin), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    // A logged-in user's state-changing form (a team) from another site is refused too.
    let page = f.csrf(&app, "/app/members").await;
    let resp = f
        .post(
            &app,
            "/app/teams",
            &[("csrf", &page), ("name", "evil team")],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = f
        .post(
            &app,
            "/app/teams",
            &[("csrf", &page), ("name", "good team")],
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

/// flo2 whose public URL is https (TLS ends at a proxy in front of it).
async fn behind_https() -> TestApp {
    let db = TestDb::new().await;
    TestApp::start_configured(db, common::master_key(), Mode::Serve, |c| {
        c.public_url = Some("https://console.example".into());
    })
    .await
}

#[tokio::test]
async fn under_https_the_session_cookie_is_host_prefixed_and_answers_carry_hsts() {
    let app = behind_https().await;
    let mut f = Form::new();
    let page = f.http.get(app.url("/signup")).send().await.unwrap();
    assert_eq!(
        page.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    f.keep(&page);
    let csrf = common::csrf_in(&page.text().await.unwrap());
    let resp = f
        .sign_up(
            &app,
            &csrf,
            PASSWORD,
            "Acme",
            &[("origin", "https://console.example")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookies: Vec<String> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.contains("flo2_session="))
        .expect("a session cookie");
    assert!(session.starts_with("__Host-flo2_session="), "{session}");
    assert!(
        session.contains("; Secure") && session.contains("Path=/"),
        "{session}"
    );
    assert!(
        !session.to_ascii_lowercase().contains("domain="),
        "{session}"
    );
    // The prefixed cookie is the session; the unprefixed name is not accepted.
    let resp = f
        .http
        .get(app.url("/app"))
        .header(COOKIE, f.cookies.join("; "))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let token = session
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    let resp = f
        .http
        .get(app.url("/app"))
        .header(COOKIE, format!("flo2_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "an unprefixed cookie is not the session"
    );
    // API answers and the plain 404 carry HSTS as well.
    for path in ["/api/v1/me", "/no-such-page", "/api/v1/no-such-endpoint"] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert!(
            resp.headers().contains_key("strict-transport-security"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn plain_http_sends_no_hsts_and_keeps_the_plain_cookie_name() {
    let app = TestApp::start().await;
    let resp = app.http.get(app.url("/login")).send().await.unwrap();
    assert!(!resp.headers().contains_key("strict-transport-security"));
    let nonce = resp.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        nonce.starts_with("flo2_nonce=") && !nonce.contains("Secure"),
        "{nonce}"
    );
}

#[tokio::test]
async fn api_answers_and_plain_errors_carry_the_security_headers() {
    let app = TestApp::start().await;
    let a = app.signup("ada@example.com", "Acme").await;
    let checks: Vec<(Method, &str, Option<&str>)> = vec![
        (Method::GET, "/api/v1/me", Some(a.token.as_str())),
        (Method::GET, "/api/v1/me", None),
        (Method::GET, "/api/v1/openapi.json", None),
        (Method::GET, "/api/v1/no-such-endpoint", None),
        (Method::DELETE, "/api/v1/me", Some(a.token.as_str())),
        (Method::GET, "/no-such-page", None),
        (Method::DELETE, "/login", None),
        (Method::GET, "/v1/no-such-endpoint", None),
    ];
    for (method, path, token) in checks {
        let mut req = app.http.request(method.clone(), app.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let h = resp.headers();
        let what = format!("{method} {path} ({})", resp.status());
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["referrer-policy"], "same-origin", "{what}");
        assert_eq!(h["cache-control"], "no-store", "{what}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{what}"
        );
    }
}
