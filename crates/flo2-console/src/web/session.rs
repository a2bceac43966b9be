//! The dashboard's session: the same signed token as the management API, carried in an
//! `HttpOnly`, `SameSite=Lax` cookie, and the CSRF checks that every form post passes.
//!
//! Under an https public URL the cookies are `Secure` and `__Host-`-prefixed (ASVS 3.4.4): the
//! browser then only accepts them set over https, for `Path=/`, without a `Domain`, so a sibling
//! subdomain or a plain-http page cannot plant or overwrite them.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::guard::same;
use crate::auth::Principal;
use crate::ConsoleState;

/// The session cookie (over plain http).
pub const SESSION_COOKIE: &str = "flo2_session";
/// The anonymous forms' CSRF nonce cookie (over plain http).
pub const NONCE_COOKIE: &str = "flo2_nonce";
/// The session cookie under an https public URL.
pub const HOST_SESSION_COOKIE: &str = "__Host-flo2_session";
/// The nonce cookie under an https public URL.
pub const HOST_NONCE_COOKIE: &str = "__Host-flo2_nonce";

/// The session cookie's name for this console.
pub fn session_cookie_name(state: &ConsoleState) -> &'static str {
    if state.settings.https() {
        HOST_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

fn nonce_cookie_name(state: &ConsoleState) -> &'static str {
    if state.settings.https() {
        HOST_NONCE_COOKIE
    } else {
        NONCE_COOKIE
    }
}

/// The session token the request's cookie carries, if any.
pub fn session_token<'a>(state: &ConsoleState, headers: &'a HeaderMap) -> Option<&'a str> {
    cookie(headers, session_cookie_name(state))
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

fn secure(state: &ConsoleState) -> &'static str {
    if state.settings.https() {
        "; Secure"
    } else {
        ""
    }
}

/// `Set-Cookie` for a new session.
pub fn session_cookie(state: &ConsoleState, token: &str) -> HeaderValue {
    let max_age = state.tokens.ttl().num_seconds().max(0);
    HeaderValue::from_str(&format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        session_cookie_name(state),
        secure(state)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(state: &ConsoleState) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        session_cookie_name(state),
        secure(state)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The nonce behind an anonymous form's CSRF token: the request's, or a new one to set.
pub fn nonce(state: &ConsoleState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(n) = cookie(headers, nonce_cookie_name(state)).filter(|n| n.len() == 43) {
        return (n.to_owned(), None);
    }
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let set = HeaderValue::from_str(&format!(
        "{}={n}; Path=/; HttpOnly; SameSite=Strict{}",
        nonce_cookie_name(state),
        secure(state)
    ))
    .ok();
    (n, set)
}

/// Whether an anonymous form's token matches its nonce cookie.
pub fn anonymous_token_ok(state: &ConsoleState, headers: &HeaderMap, token: &str) -> bool {
    cookie(headers, nonce_cookie_name(state))
        .is_some_and(|n| same(&state.guard.anonymous_token(n), token))
}

/// A logged-in dashboard user. Pages that need one redirect to the login page without it.
pub struct WebUser {
    /// Who, in which organization.
    pub principal: Principal,
    /// The CSRF token for this session's forms.
    pub csrf: String,
}

impl WebUser {
    /// Whether a posted form's token belongs to this session.
    pub fn csrf_ok(&self, token: &str) -> bool {
        same(&self.csrf, token)
    }
}

impl FromRequestParts<ConsoleState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let to_login = || {
            let mut r = Redirect::to("/login").into_response();
            r.headers_mut()
                .insert(SET_COOKIE, clear_session_cookie(state));
            r
        };
        let token = session_token(state, &parts.headers)
            .ok_or_else(|| Redirect::to("/login").into_response())?;
        let mut principal = match Principal::from_token(state, token).await {
            Ok(p) => p,
            // The database is down: the session may be fine, so keep it and say so.
            Err(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE => {
                return Err(super::error_page(&e))
            }
            Err(_) => return Err(to_login()),
        };
        principal.client_address = Some(crate::client_address::ClientAddress::of(parts, state).0);
        let csrf = state.guard.session_token(&principal.session.to_string());
        Ok(WebUser { principal, csrf })
    }
}
