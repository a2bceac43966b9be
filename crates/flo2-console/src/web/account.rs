//! Sign up, log in, log out, password change and the overview page.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use flo2_core::{PicoUsd, Role};
use flo2_store::{GroupBy, UsageFilter};
use serde::Deserialize;

use super::session::{self, WebUser};
use super::{forbidden_form, render, render_error, Chrome};
use crate::client_address::ClientAddress;
use crate::service::accounts::{self, SignUp};
use crate::ConsoleState;

/// The sign-up form's fields, kept when the form comes back with errors.
#[derive(Default)]
pub struct SignupForm {
    email: String,
    organization: String,
    error: Option<String>,
    email_error: Option<String>,
    password_error: Option<String>,
    organization_error: Option<String>,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    chrome: Chrome,
    csrf: String,
    form: SignupForm,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    email: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    chrome: Chrome,
    current_error: Option<String>,
    new_error: Option<String>,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    organization: String,
    role: String,
    provider_keys: usize,
    api_keys: usize,
    routes: usize,
    calls: i64,
    spent: String,
}

/// A posted sign-up form.
#[derive(Deserialize)]
pub struct SignupFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    organization: String,
}

/// A posted login form.
#[derive(Deserialize)]
pub struct LoginFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// A posted password change.
#[derive(Deserialize)]
pub struct PasswordFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// `?changed=1` after a password change.
#[derive(Deserialize)]
pub struct LoginNotice {
    changed: Option<u8>,
}

fn with_cookie(mut response: Response, cookie: Option<axum::http::HeaderValue>) -> Response {
    if let Some(c) = cookie {
        response.headers_mut().append(SET_COOKIE, c);
    }
    response
}

/// To the overview, with the new session's cookie.
fn logged_in(state: &ConsoleState, token: &str) -> Response {
    let mut r = Redirect::to("/app").into_response();
    r.headers_mut()
        .insert(SET_COOKIE, session::session_cookie(state, token));
    r
}

/// The page chrome for a logged-in user.
pub async fn chrome(state: &ConsoleState, user: &WebUser) -> Chrome {
    let email = state
        .store
        .user(user.principal.user)
        .await
        .ok()
        .map(|u| u.email);
    let organization = match user.principal.org() {
        Ok((org, _)) => state.store.organization(org).await.ok().map(|o| o.name),
        Err(_) => None,
    };
    Chrome {
        version: env!("CARGO_PKG_VERSION"),
        email,
        organization,
        csrf: user.csrf.clone(),
        admin: user.principal.require(Role::Admin).is_ok(),
    }
}

/// `GET /signup`.
pub async fn signup_page(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    let (nonce, set) = session::nonce(&state, &headers);
    let page = SignupPage {
        chrome: Chrome::anonymous(),
        csrf: state.guard.anonymous_token(&nonce),
        form: SignupForm::default(),
    };
    with_cookie(render(StatusCode::OK, &page), set)
}

/// `POST /signup`: creates the account and organization, logs in, and goes to the overview.
pub async fn signup(
    State(state): State<ConsoleState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Form(f): Form<SignupFields>,
) -> Response {
    if !session::anonymous_token_ok(&state, &headers, &f.csrf) {
        return forbidden_form();
    }
    let new = SignUp {
        email: &f.email,
        password: f.password,
        organization: &f.organization,
    };
    match accounts::sign_up(&state, new, Some(address)).await {
        Ok(done) => logged_in(&state, &done.token),
        Err(err) => {
            let mut form = SignupForm {
                email: f.email,
                organization: f.organization,
                ..SignupForm::default()
            };
            let message = err.message().to_owned();
            match err.field() {
                Some("email") => form.email_error = Some(message),
                Some("password") => form.password_error = Some(message),
                Some("organization") => form.organization_error = Some(message),
                _ => form.error = Some(message),
            }
            let page = SignupPage {
                chrome: Chrome::anonymous(),
                csrf: f.csrf,
                form,
            };
            render_error(&err, &page)
        }
    }
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Query(q): Query<LoginNotice>,
) -> Response {
    let (nonce, set) = session::nonce(&state, &headers);
    let page = LoginPage {
        chrome: Chrome::anonymous(),
        csrf: state.guard.anonymous_token(&nonce),
        email: String::new(),
        error: None,
        notice: q
            .changed
            .map(|_| "Your password was changed. Log in with the new one.".to_owned()),
    };
    with_cookie(render(StatusCode::OK, &page), set)
}

/// `POST /login`: throttled like the API's login.
pub async fn login(
    State(state): State<ConsoleState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(f): Form<LoginFields>,
) -> Response {
    if !session::anonymous_token_ok(&state, &headers, &f.csrf) {
        return forbidden_form();
    }
    match accounts::log_in(&state, &f.email, f.password, client).await {
        Ok((token, _)) => logged_in(&state, &token),
        Err(err) => {
            let page = LoginPage {
                chrome: Chrome::anonymous(),
                csrf: f.csrf,
                email: f.email,
                error: Some(err.message().to_owned()),
                notice: None,
            };
            render_error(&err, &page)
        }
    }
}

/// `POST /logout`: ends the session at once.
pub async fn logout(
    State(state): State<ConsoleState>,
    user: WebUser,
    Form(f): Form<super::CsrfForm>,
) -> Response {
    if !user.csrf_ok(&f.csrf) {
        return forbidden_form();
    }
    if let Err(e) = accounts::log_out(&state, &user.principal).await {
        return super::error_page(&e);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut()
        .insert(SET_COOKIE, session::clear_session_cookie(&state));
    r
}

/// `GET /account/password`.
pub async fn password_page(State(state): State<ConsoleState>, user: WebUser) -> Response {
    let page = PasswordPage {
        chrome: chrome(&state, &user).await,
        current_error: None,
        new_error: None,
    };
    render(StatusCode::OK, &page)
}

/// `POST /account/password`: every session ends, so the user logs in again.
pub async fn change_password(
    State(state): State<ConsoleState>,
    user: WebUser,
    Form(f): Form<PasswordFields>,
) -> Response {
    if !user.csrf_ok(&f.csrf) {
        return forbidden_form();
    }
    match accounts::set_password(&state, &user.principal, f.current_password, f.new_password).await
    {
        Ok(()) => {
            let mut r = Redirect::to("/login?changed=1").into_response();
            r.headers_mut()
                .insert(SET_COOKIE, session::clear_session_cookie(&state));
            r
        }
        Err(err) => {
            let message = Some(err.message().to_owned());
            let (current_error, new_error) = match err.field() {
                Some("new_password") => (None, message),
                _ => (message, None),
            };
            let page = PasswordPage {
                chrome: chrome(&state, &user).await,
                current_error,
                new_error,
            };
            render_error(&err, &page)
        }
    }
}

/// `GET /app`: the organization at a glance, and what to do next.
pub async fn overview(State(state): State<ConsoleState>, user: WebUser) -> Response {
    let Ok((org, role)) = user.principal.org() else {
        return (StatusCode::FORBIDDEN, "You belong to no organization yet: accept an invitation or create one through the API.").into_response();
    };
    let counts = async {
        let provider_keys = state.store.credentials(org).await?.len();
        let api_keys = state
            .store
            .gateway_keys(org)
            .await?
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .count();
        let routes = state.store.routes(org).await?.len();
        let (_, totals) = state
            .store
            .usage_report(org, &UsageFilter::default(), GroupBy::Day)
            .await?;
        Ok::<_, flo2_store::StoreError>((provider_keys, api_keys, routes, totals))
    }
    .await;
    let (provider_keys, api_keys, routes, totals) = match counts {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "loading the overview failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let chrome = chrome(&state, &user).await;
    let page = OverviewPage {
        organization: chrome.organization.clone().unwrap_or_default(),
        chrome,
        role: role.to_string(),
        provider_keys,
        api_keys,
        routes,
        calls: totals.calls,
        spent: PicoUsd::to_string(&totals.cost),
    };
    render(StatusCode::OK, &page)
}
