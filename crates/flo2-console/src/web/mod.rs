//! The dashboard: server-rendered pages over the same services as `/api/v1` (`crate::service`;
//! no page calls an `/api/v1` handler). A failed form shows the error next to the field that
//! [`ApiError::field`] names.
//!
//! Every page answer carries the security headers of [`crate::security_headers`]. Forms post
//! `application/x-www-form-urlencoded` with a CSRF token ([`guard`]) and pass the origin check
//! (`origin`); a failed form re-renders with the input kept and the error next to its field,
//! with the status (and `Retry-After`) an API would use.

pub(crate) mod account;
pub(crate) mod audit;
pub mod guard;
pub(crate) mod keys;
pub(crate) mod members;
pub(crate) mod origin;
pub(crate) mod prices;
pub(crate) mod routes;
pub(crate) mod session;
pub(crate) mod usage;

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::ConsoleState;

/// What the layout shows on every page.
pub struct Chrome {
    /// flo2's version.
    pub version: &'static str,
    /// The logged-in user's email.
    pub email: Option<String>,
    /// Their current organization's name.
    pub organization: Option<String>,
    /// The CSRF token for the logout form.
    pub csrf: String,
    /// Whether the user administers the current organization (the audit log's link).
    pub admin: bool,
}

impl Chrome {
    /// The chrome of a page nobody is logged in to.
    pub fn anonymous() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            email: None,
            organization: None,
            csrf: String::new(),
            admin: false,
        }
    }
}

/// The dashboard's routes.
pub(crate) fn routes(state: &ConsoleState) -> Router<ConsoleState> {
    let https = state.settings.https();
    let public_origin = origin::origin_of(&state.settings.public_url);
    Router::new()
        .route("/signup", get(account::signup_page).post(account::signup))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route(
            "/account/password",
            get(account::password_page).post(account::change_password),
        )
        .route("/app", get(account::overview))
        .route(
            "/app/provider-keys",
            get(keys::provider_keys).post(keys::add_provider_key),
        )
        .route(
            "/app/provider-keys/{id}/delete",
            post(keys::delete_provider_key),
        )
        .route(
            "/app/provider-keys/{id}/rotate",
            post(keys::rotate_provider_key),
        )
        .route(
            "/app/provider-keys/{id}/test",
            post(keys::test_provider_key),
        )
        .route(
            "/app/api-keys",
            get(keys::api_keys).post(keys::create_api_key),
        )
        .route("/app/api-keys/{id}/revoke", post(keys::revoke_api_key))
        .route("/app/routes", get(routes::list).post(routes::save))
        .route("/app/routes/{name}", get(routes::edit))
        .route("/app/routes/{name}/delete", post(routes::delete))
        .route("/app/prices", get(prices::list).post(prices::save))
        .route("/app/prices/{id}/delete", post(prices::delete))
        .route("/app/audit", get(audit::page))
        .route("/app/members", get(members::show))
        .route("/app/members/{id}/role", post(members::change_role))
        .route("/app/members/{id}/remove", post(members::remove))
        .route("/app/invites", post(members::create_invite))
        .route("/app/invites/{id}/revoke", post(members::revoke_invite))
        .route("/app/teams", post(members::create_team))
        .route("/app/teams/{id}/delete", post(members::delete_team))
        .route("/app/organization/switch", post(members::switch))
        .route("/app/organizations", post(members::create_organization))
        .route("/invite", get(members::invite_page).post(members::accept))
        .route("/app/usage", get(usage::page))
        .route("/app/usage/export.csv", get(usage::export))
        .route("/app/usage/summary.csv", get(usage::summary))
        .layer(axum::middleware::from_fn_with_state(
            public_origin,
            origin::refuse_cross_site,
        ))
        .layer(axum::middleware::map_response_with_state(
            https,
            page_headers,
        ))
}

/// The answer to a form whose CSRF token is missing or wrong.
pub fn forbidden_form() -> Response {
    (
        StatusCode::FORBIDDEN,
        "This form expired or did not come from flo2. Reload the page and try again.",
    )
        .into_response()
}

/// A posted form that carries nothing but its CSRF token (buttons: log out, delete, revoke).
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    /// The form's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

/// The answer to a failed write that has no form to show the error in.
pub fn error_page(err: &ApiError) -> Response {
    with_retry_after(
        err,
        (err.status(), err.message().to_owned()).into_response(),
    )
}

/// `page` rendered with the status of the error it shows (and its `Retry-After`).
pub fn render_error(err: &ApiError, page: &impl Template) -> Response {
    with_retry_after(err, render(err.status(), page))
}

fn with_retry_after(err: &ApiError, mut response: Response) -> Response {
    if let Some(secs) = err.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Runs a button's action if its form is genuine, then redirects to `done`; an error becomes an
/// error page.
pub async fn act(
    user: &session::WebUser,
    csrf: &str,
    done: &str,
    action: impl std::future::Future<Output = Result<(), ApiError>>,
) -> Response {
    if !user.csrf_ok(csrf) {
        return forbidden_form();
    }
    match action.await {
        Ok(()) => axum::response::Redirect::to(done).into_response(),
        Err(err) => error_page(&err),
    }
}

/// Renders a page with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "rendering a page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The pages' security headers; a 503 or 429 that does not say when to retry gets the outage
/// default, so every such page answer carries `Retry-After`.
async fn page_headers(
    axum::extract::State(https): axum::extract::State<bool>,
    mut response: Response,
) -> Response {
    crate::security_headers::apply(response.headers_mut(), https);
    let status = response.status();
    if (status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS)
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(crate::error::OUTAGE_RETRY_AFTER.as_secs()),
        );
    }
    response
}
