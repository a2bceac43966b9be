//! flo2's control plane: the management API under `/api/v1` (with its OpenAPI document) and the
//! console pages. Every operation is scoped to the caller's current organization.

pub(crate) mod api;
pub mod audit;
pub(crate) mod auth;
pub(crate) mod base_url_address;
pub mod client_address;
pub(crate) mod csv;
pub mod error;
pub(crate) mod extract;
pub mod key_test;
pub(crate) mod login_throttle;
pub(crate) mod pages;
pub mod security_headers;
pub(crate) mod service;
pub(crate) mod validate;
pub mod web;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, Response};
use axum::routing::get;
use axum::Router;
use chrono::Duration;
use flo2_store::Store;
use flo2_vault::MasterKeyring;

pub use auth::SessionTokens;
pub use error::ApiError;

/// Console settings from the operator's configuration.
#[derive(Clone, Debug)]
pub struct ConsoleSettings {
    /// Base URL people reach the console at; used in invitation links.
    pub public_url: String,
    /// Default validity of invitations.
    pub invite_ttl: Duration,
    /// Largest accepted `/api/v1` request body, in bytes.
    pub max_body_bytes: usize,
    /// Accept provider base URLs that reach loopback, private or other non-public addresses
    /// (`FLO2_ALLOW_PRIVATE_UPSTREAMS`); otherwise they are refused when saved.
    pub allow_private_upstreams: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the client ([`client_address`]).
    pub trusted_proxies: Vec<client_address::Cidr>,
}

impl ConsoleSettings {
    /// Whether people reach the console over https (then cookies are `__Host-` and `Secure`,
    /// and answers carry HSTS).
    pub fn https(&self) -> bool {
        is_https(&self.public_url)
    }
}

/// Whether `url` is an https URL.
pub fn is_https(url: &str) -> bool {
    url.trim()
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// What every console handler can reach.
#[derive(Clone)]
pub struct ConsoleState {
    /// The database.
    pub store: Store,
    /// Wraps new organizations' data keys and unwraps them to encrypt provider keys.
    pub keyring: Arc<MasterKeyring>,
    /// Issues and verifies management tokens.
    pub tokens: SessionTokens,
    /// Operator settings.
    pub settings: Arc<ConsoleSettings>,
    /// CSRF keys and login throttling.
    pub guard: Arc<web::guard::Guard>,
    /// Tests provider keys with a real call (absent: the dashboard has no test button).
    pub key_tester: Option<Arc<dyn key_test::KeyTester>>,
}

/// The console's routes: `/api/v1/...`, `/api/v1/openapi.json`, and the pages.
pub fn router(state: ConsoleState) -> Result<Router, serde_json::Error> {
    let max_body = state.settings.max_body_bytes;
    let https = state.settings.https();
    let (api, openapi) = api::routes().split_for_parts();
    // Rendered once: the document is fixed for the life of the process.
    let openapi_json = Arc::new(openapi.to_json()?);
    let api = api
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let json = Arc::clone(&openapi_json);
                async move {
                    Response::builder()
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(json.as_str().to_owned()))
                        .unwrap_or_default()
                }
            }),
        )
        .layer(DefaultBodyLimit::max(max_body))
        // Management answers can carry secrets shown once (keys, tokens): `no-store`, like
        // every page, with the pages' other security headers.
        .layer(axum::middleware::map_response_with_state(
            https,
            security_headers::layer,
        ));
    let web = web::routes(&state);
    Ok(api.merge(pages::routes(https)).merge(web).with_state(state))
}

/// The `/api/v1` answer for a path that does not exist.
pub fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /api/v1/openapi.json",
    )
}

/// The `/api/v1` answer for a known path called with the wrong method.
pub fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method; see /api/v1/openapi.json",
    )
}
