//! Data-plane errors, rendered in the caller's own API shape: an OpenAI error object for
//! OpenAI-style calls, an Anthropic error object for Anthropic-style calls.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Which API family the caller speaks; decides the shape of errors (and, later, of answers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiFormat {
    /// OpenAI Chat Completions and friends.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl ApiFormat {
    /// Anthropic when the path is an Anthropic endpoint or the caller sends Anthropic's headers
    /// (the Anthropic SDK always sends `anthropic-version` and `x-api-key`); OpenAI otherwise.
    pub fn detect(path: &str, headers: &HeaderMap) -> Self {
        if path.starts_with("/v1/messages")
            || headers.contains_key("anthropic-version")
            || headers.contains_key("x-api-key")
        {
            ApiFormat::Anthropic
        } else {
            ApiFormat::OpenAi
        }
    }
}

/// What went wrong, independent of the shape it is reported in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Missing, malformed, unknown or revoked gateway key (401).
    Authentication,
    /// The request is wrong (400).
    InvalidRequest,
    /// Unknown model, route or endpoint (404).
    NotFound,
    /// A known endpoint called with the wrong HTTP method (405).
    MethodNotAllowed,
    /// flo2 cannot serve right now, e.g. its database is down and the cache misses (503).
    Unavailable,
    /// A bug or unexpected failure (500).
    Internal,
}

/// A data-plane error with its caller's format.
#[derive(Debug)]
pub struct GatewayError {
    format: ApiFormat,
    kind: ErrorKind,
    message: String,
}

impl GatewayError {
    /// An error of `kind` for a caller speaking `format`.
    pub fn new(format: ApiFormat, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            format,
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::Authentication => StatusCode::UNAUTHORIZED,
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match self.format {
            ApiFormat::OpenAi => {
                let (kind, code) = match self.kind {
                    ErrorKind::Authentication => ("invalid_request_error", Some("invalid_api_key")),
                    ErrorKind::InvalidRequest | ErrorKind::MethodNotAllowed => {
                        ("invalid_request_error", None)
                    }
                    ErrorKind::NotFound => ("invalid_request_error", Some("not_found")),
                    ErrorKind::Unavailable | ErrorKind::Internal => ("server_error", None),
                };
                json!({"error": {"message": self.message, "type": kind, "param": null, "code": code}})
            }
            ApiFormat::Anthropic => {
                let kind = match self.kind {
                    ErrorKind::Authentication => "authentication_error",
                    ErrorKind::InvalidRequest | ErrorKind::MethodNotAllowed => {
                        "invalid_request_error"
                    }
                    ErrorKind::NotFound => "not_found_error",
                    ErrorKind::Unavailable => "overloaded_error",
                    ErrorKind::Internal => "api_error",
                };
                json!({"type": "error", "error": {"type": kind, "message": self.message}})
            }
        };
        (status, Json(body)).into_response()
    }
}
