//! The management API's error: an HTTP status, a stable machine-readable `code` and a human
//! `message`, rendered as `{"code": "...", "message": "..."}`.
//!
//! An error about one input field also carries that field as a typed value ([`ApiError::field`]:
//! a JSON path such as `targets[0].model`), so the dashboard places it next to the field without
//! reading the message. The field is not part of the JSON answer, whose shape is stable; the
//! message names it for people and scripts.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flo2_store::StoreError;
use flo2_vault::VaultError;
use serde::Serialize;

/// An error answer of `/api/v1`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The input field the error is about, as a JSON path (`name`, `targets[0].model`).
    field: Option<String>,
    /// Seconds for `Retry-After` (429 and 503 answers).
    retry_after: Option<u64>,
}

/// What a 503 for a database outage tells the caller to wait: about what a short outage (a
/// failover, a restart) takes, and what the pool waits for a connection.
pub const OUTAGE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The JSON body of every `/api/v1` error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable error code (e.g. `not_found`, `invalid_field`).
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// The same error, about the input field at `path` (a JSON path: `name`, `race.fanout`,
    /// `targets[0].credentials`).
    pub fn at(mut self, path: impl Into<String>) -> Self {
        self.field = Some(path.into());
        self
    }

    /// The input field this error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// 400 for the field at `path`, which failed validation; the message names it too.
    pub fn invalid_field(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(message).at(path)
    }

    /// 422 for the well-formed field at `path` whose value a rule refuses.
    pub fn refused_field(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::unprocessable(message).at(path)
    }

    /// The same error, telling the caller to retry after `wait` (rounded up to whole seconds).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        self.retry_after = Some(secs.max(1));
        self
    }

    /// Seconds the caller should wait before retrying, if the answer says so.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
    }

    /// 429: too many login attempts from this client; retry after `wait`.
    pub fn too_many_attempts(wait: Duration) -> Self {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "too many login attempts from your address; try again in {minutes} minute{}",
                if minutes == 1 { "" } else { "s" }
            ),
        )
        .retry_after(wait)
    }

    /// 503: the database cannot be reached (or is overloaded); the cause is logged.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "database unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is unavailable; try again shortly",
        )
        .retry_after(OUTAGE_RETRY_AFTER)
    }

    /// 400 for a field that failed validation.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_field", message)
    }

    /// 422 for a well-formed field whose value a rule refuses (a guessable password, a base URL
    /// that reaches a private address, a time the database cannot store); the message names the
    /// field like [`ApiError::invalid`]'s.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
    }

    /// 404 for anything unknown or belonging to another organization (never 403, so ids of
    /// other tenants cannot be probed).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 409 for a name or email that is already taken.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 401: missing, malformed, expired or revoked token.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid management token is required (Authorization: Bearer <token>)",
        )
    }

    /// 403: authenticated, but the role does not allow this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 500 with a generic message; the cause is logged, not returned.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error in management API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Maps a store error where "not found" means `what` was not found.
    pub fn from_store(what: &str, err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::not_found(what),
            StoreError::Conflict => {
                Self::conflict(format!("that name is already used by another {what}"))
            }
            StoreError::InvalidReference => Self::not_found("referenced item"),
            StoreError::LastOwner => Self::new(
                StatusCode::CONFLICT,
                "last_owner",
                "an organization must keep at least one owner",
            ),
            other if other.is_unavailable() => Self::unavailable(&other),
            other => Self::internal(&other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::from_store("item", err)
    }
}

impl From<VaultError> for ApiError {
    fn from(err: VaultError) -> Self {
        Self::internal(&err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let mut response = (
            self.status,
            Json(ErrorBody {
                code: self.code,
                message: self.message,
            }),
        )
            .into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
