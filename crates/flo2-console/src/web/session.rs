//! The dashboard's session: the same signed token as the management API, carried in an
//! `HttpOnly`, `SameSite=Lax` cookie (`Secure` when the console's public URL is https), and the
//! CSRF checks that every form post passes.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};

use super::guard::same;
use crate::auth::Principal;
use crate::ConsoleState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "flo2_session";
/// The anonymous forms' CSRF nonce cookie.
pub const NONCE_COOKIE: &str = "flo2_nonce";

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
    if state.settings.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

/// `Set-Cookie` for a new session.
pub fn session_cookie(state: &ConsoleState, token: &str) -> HeaderValue {
    let max_age = state.tokens.ttl().num_seconds().max(0);
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        secure(state)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(state: &ConsoleState) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        secure(state)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The nonce behind an anonymous form's CSRF token: the request's, or a new one to set.
pub fn nonce(state: &ConsoleState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(n) = cookie(headers, NONCE_COOKIE).filter(|n| n.len() == 43) {
        return (n.to_owned(), None);
    }
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let set = HeaderValue::from_str(&format!(
        "{NONCE_COOKIE}={n}; Path=/; HttpOnly; SameSite=Strict{}",
        secure(state)
    ))
    .ok();
    (n, set)
}

/// Whether an anonymous form's token matches its nonce cookie.
pub fn anonymous_token_ok(state: &ConsoleState, headers: &HeaderMap, token: &str) -> bool {
    cookie(headers, NONCE_COOKIE).is_some_and(|n| same(&state.guard.anonymous_token(n), token))
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
        let token = cookie(&parts.headers, SESSION_COOKIE)
            .ok_or_else(|| Redirect::to("/login").into_response())?;
        let mut principal = Principal::from_token(state, token)
            .await
            .map_err(|_| to_login())?;
        principal.client_address = crate::audit::client_address(parts);
        let csrf = state.guard.session_token(&principal.session.to_string());
        Ok(WebUser { principal, csrf })
    }
}
