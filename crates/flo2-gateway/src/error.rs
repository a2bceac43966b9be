//! Data-plane errors, rendered in the caller's own API shape: an OpenAI error object for
//! OpenAI-style calls, an Anthropic error object for Anthropic-style calls. The status is kept
//! faithful (an upstream 429 stays 429, 529 stays 529) and `retry-after` is passed on.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Which API family the caller speaks; decides the shape of errors and answers.
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
        if path.starts_with("/v1/chat/completions") || path.starts_with("/v1/embeddings") {
            return ApiFormat::OpenAi;
        }
        if path.starts_with("/v1/messages")
            || headers.contains_key("anthropic-version")
            || headers.contains_key("x-api-key")
        {
            ApiFormat::Anthropic
        } else {
            ApiFormat::OpenAi
        }
    }

    /// The name used in usage records.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiFormat::OpenAi => "openai",
            ApiFormat::Anthropic => "anthropic",
        }
    }
}

/// What went wrong, for errors flo2 itself raises.
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
    /// The request body is larger than allowed (413).
    TooLarge,
    /// The upstream could not be reached or answered nonsense (502).
    BadGateway,
    /// flo2 cannot serve right now, e.g. its database is down and the cache misses (503).
    Unavailable,
    /// The upstream took too long (504).
    Timeout,
    /// A bug or unexpected failure (500).
    Internal,
}

impl ErrorKind {
    fn status(self) -> StatusCode {
        match self {
            ErrorKind::Authentication => StatusCode::UNAUTHORIZED,
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A data-plane error with its caller's format.
#[derive(Debug)]
pub struct GatewayError {
    format: ApiFormat,
    status: StatusCode,
    message: String,
    retry_after: Option<HeaderValue>,
}

impl GatewayError {
    /// An error of `kind` for a caller speaking `format`.
    pub fn new(format: ApiFormat, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::with_status(format, kind.status(), message)
    }

    /// An error with an explicit status (used for upstream errors, passed on faithfully).
    pub fn with_status(format: ApiFormat, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            format,
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Passes the upstream's `retry-after` on to the caller.
    pub fn retry_after(mut self, value: Option<HeaderValue>) -> Self {
        self.retry_after = value;
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error object alone, as JSON (also used for in-stream error events).
    pub fn body(&self) -> serde_json::Value {
        let status = self.status.as_u16();
        match self.format {
            ApiFormat::OpenAi => {
                let kind = if status >= 500 {
                    "server_error"
                } else {
                    "invalid_request_error"
                };
                let code = match status {
                    401 => Some("invalid_api_key"),
                    404 => Some("not_found"),
                    429 => Some("rate_limit_exceeded"),
                    _ => None,
                };
                json!({"error": {"message": self.message, "type": kind, "param": null, "code": code}})
            }
            ApiFormat::Anthropic => {
                let kind = match status {
                    401 => "authentication_error",
                    403 => "permission_error",
                    404 => "not_found_error",
                    413 => "request_too_large",
                    429 => "rate_limit_error",
                    503 | 529 => "overloaded_error",
                    504 | 408 => "timeout_error",
                    s if s >= 500 => "api_error",
                    _ => "invalid_request_error",
                };
                json!({"type": "error", "error": {"type": kind, "message": self.message}})
            }
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, Json(body)).into_response();
        if let Some(value) = self.retry_after {
            response.headers_mut().insert("retry-after", value);
        }
        response
    }
}
