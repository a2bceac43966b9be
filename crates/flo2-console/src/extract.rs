//! Extractors whose rejections are `/api/v1` JSON errors instead of axum's plain text.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. Malformed JSON, wrong types, missing fields, a wrong content type and bodies over
/// the configured limit all become JSON errors with stable codes.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(err) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            data_error_message(&err.body_text()),
        ),
        JsonRejection::JsonSyntaxError(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the request body is not valid JSON",
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than the configured limit (FLO2_API_MAX_BODY_BYTES)",
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the request body could not be read",
        ),
    }
}

/// serde's messages can quote the offending value ("invalid type: string \"sk-...\""), and that
/// value may be a secret. Keep the field path and the kind of problem, drop the value.
fn data_error_message(text: &str) -> String {
    let text = text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(text);
    for marker in ["invalid type", "invalid value", "invalid length"] {
        if let Some(at) = text.find(marker) {
            let path = text[..at].trim_end_matches([':', ' ']);
            return if path.is_empty() {
                format!("the body has a field with an {marker}")
            } else {
                format!("field `{path}` has an {marker}")
            };
        }
    }
    // Missing fields, unknown fields and unknown variants name the field, not the value.
    text.split(" at line ").next().unwrap_or(text).to_owned()
}

/// Query parameters. Unparseable ones (a bad date, an unknown field type) are a 400
/// `invalid_field` JSON error naming the problem.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| {
                let text = e.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                ApiError::invalid(format!("query string: {detail}"))
            })
    }
}

/// A path parameter. A malformed id answers 404, like an unknown one.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => {
                Err(ApiError::not_found("item"))
            }
            Err(other) => Err(ApiError::internal(&other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_errors_never_echo_values() {
        let msg = data_error_message(
            "Failed to deserialize the JSON body into the target type: api_key: invalid type: integer `12345`, expected a string at line 1 column 20",
        );
        assert_eq!(msg, "field `api_key` has an invalid type");
        let msg = data_error_message(
            "Failed to deserialize the JSON body into the target type: missing field `name` at line 1 column 2",
        );
        assert_eq!(msg, "missing field `name`");
    }
}
