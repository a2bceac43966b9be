//! Login throttling from the attacker's side: failures from the attacker's addresses never lock
//! the real user out of another address, the client address is only taken from
//! `X-Forwarded-For` when the connection comes from a trusted proxy, and every 429 says when to
//! retry. Both logins (API and dashboard form) follow the same rule.


use crate::common;
use crate::common::{TestApp, TestDb, PASSWORD};
use flo2::Mode;
use reqwest::StatusCode;
use serde_json::{json, Value};

const VICTIM: &str = "victim@example.com";

/// flo2 behind a reverse proxy on loopback: the test client connects from 127.0.0.1, which is
/// trusted, so the `X-Forwarded-For` it sends stands for the client address.
async fn behind_proxy() -> TestApp {
    let db = TestDb::new().await;
    TestApp::start_configured(db, common::master_key(), Mode::Serve, |c| {
        c.trusted_proxies = flo2_console::client_address::parse_list("127.0.0.0/8,::1").unwrap();
    })
    .await
}

/// `POST /api/v1/login` as the client `from` (an `X-Forwarded-For` value), with the
/// `Retry-After` of the answer.
async fn login_from(
    app: &TestApp,
    from: Option<&str>,
    email: &str,
    password: &str,
) -> (StatusCode, Value, Option<u64>) {
    let mut req = app
        .http
        .post(app.url("/api/v1/login"))
        .json(&json!({"email": email, "password": password}));
    if let Some(f) = from {
        req = req.header("x-forwarded-for", f);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    (
        status,
        resp.json().await.unwrap_or(Value::Null),
        retry_after,
    )
}

/// Asserts a 429 `too_many_attempts` with a `Retry-After` inside the 15-minute window.
fn assert_throttled(answer: &(StatusCode, Value, Option<u64>), what: &str) {
    assert_eq!(
        answer.0,
        StatusCode::TOO_MANY_REQUESTS,
        "{what}: {}",
        answer.1
    );
    assert_eq!(answer.1["code"], "too_many_attempts", "{what}");
    let secs = answer
        .2
        .unwrap_or_else(|| panic!("{what}: a 429 without Retry-After"));
    assert!((1..=900).contains(&secs), "{what}: Retry-After {secs}");
}

/// The dashboard login form posted as the client `from`; returns the status and Retry-After.
async fn form_login_from(
    app: &TestApp,
    from: &str,
    email: &str,
    password: &str,
) -> (StatusCode, Option<String>) {
    let form = app.anonymous_form("/login").await;
    let resp = app
        .post_login_form(&form, email, password, &[("x-forwarded-for", from)])
        .await;
    (resp.status(), common::retry_after(resp.headers()))
}

#[tokio::test]
async fn attackers_on_other_addresses_cannot_lock_the_real_user_out() {
    let app = behind_proxy().await;
    app.signup(VICTIM, "Victim Co").await;
    let attackers = ["203.0.113.5", "203.0.113.66"];
    let user = "198.51.100.7";
    // Both attackers guess until they are throttled.
    for attacker in attackers {
        for i in 0..5 {
            let (status, body, _) =
                login_from(&app, Some(attacker), VICTIM, &format!("guess number {i}")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        }
        let blocked = login_from(&app, Some(attacker), VICTIM, "one more guess").await;
        assert_throttled(&blocked, "an attacker past the limit");
        // Even the right password waits, from the address that was failing.
        let blocked = login_from(&app, Some(attacker), VICTIM, PASSWORD).await;
        assert_throttled(&blocked, "the right password from a failing address");
        // Prepending a fake client in front of the proxy's entry changes nothing: the proxy's
        // right-most entry is the one believed.
        let spoofed = format!("192.0.2.99, {attacker}");
        let blocked = login_from(&app, Some(&spoofed), VICTIM, PASSWORD).await;
        assert_throttled(&blocked, "a spoofed entry left of the proxy's");
    }
    // The real user, from the third address, logs in on the API and on the form.
    let (status, body, _) = login_from(&app, Some(user), VICTIM, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["token"].is_string());
    let (status, _) = form_login_from(&app, user, VICTIM, PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the form logs the real user in"
    );
    // The same user through a second trusted hop is still the same client.
    let (status, _, _) =
        login_from(&app, Some(&format!("{user}, 127.0.0.1")), VICTIM, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    // The attacker is still throttled on the form too, with Retry-After.
    let (status, retry) = form_login_from(&app, attackers[0], VICTIM, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = retry
        .expect("the form's 429 carries Retry-After")
        .parse()
        .unwrap();
    assert!((1..=900).contains(&secs));
}

#[tokio::test]
async fn one_address_spraying_many_accounts_is_throttled_without_touching_others() {
    let app = behind_proxy().await;
    app.signup(VICTIM, "Victim Co").await;
    let sprayer = "203.0.113.9";
    for i in 0..30 {
        let (status, _, _) = login_from(
            &app,
            Some(sprayer),
            &format!("user{i}@example.com"),
            "guess guess",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let blocked = login_from(&app, Some(sprayer), VICTIM, PASSWORD).await;
    assert_throttled(&blocked, "a spraying address, any account");
    let (status, retry) = form_login_from(&app, sprayer, VICTIM, PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some(), "the form's 429 carries Retry-After");
    let (status, _, _) = login_from(&app, Some("198.51.100.7"), VICTIM, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "another address is not affected");
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // No trusted proxies (the default): the header is the client's own claim.
    let app = TestApp::start().await;
    app.signup(VICTIM, "Victim Co").await;
    // An attacker rotating X-Forwarded-For is still one address: 127.0.0.1.
    for i in 0..5 {
        let from = format!("203.0.113.{i}");
        let (status, _, _) = login_from(&app, Some(&from), VICTIM, "guess guess guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let blocked = login_from(&app, Some("198.51.100.200"), VICTIM, PASSWORD).await;
    assert_throttled(&blocked, "a fresh X-Forwarded-For from an untrusted peer");
    let blocked = login_from(&app, None, VICTIM, PASSWORD).await;
    assert_throttled(&blocked, "no header at all");
}

#[tokio::test]
async fn a_correct_password_clears_its_own_failures() {
    let app = behind_proxy().await;
    app.signup(VICTIM, "Victim Co").await;
    let user = "198.51.100.7";
    // A user who mistypes four times and then gets it right may mistype again.
    for _round in 0..3 {
        for _ in 0..4 {
            let (status, _, _) = login_from(&app, Some(user), VICTIM, "typo typo typo").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, body, _) = login_from(&app, Some(user), VICTIM, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}
