//! Extractors whose rejections are `/api/v1` JSON errors instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ApiError;

/// A JSON body. Malformed JSON, wrong types, missing fields, a wrong content type and bodies over
/// the configured limit all become JSON errors with stable codes. A body that is JSON but not the
/// expected shape is a 400 `invalid_field` whose [`ApiError::field`] is the JSON path of the value
/// that failed (`targets[0].weight`; for a missing field, the path it was expected at), found by
/// `serde_path_to_error` while decoding, never read back from a message.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is larger than the configured limit (FLO2_API_MAX_BODY_BYTES)",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    "the request body could not be read",
                )
            }
        })?;
        decode(&bytes).map(ApiJson)
    }
}

/// `application/json` or any `application/*+json`, as axum's `Json` accepts.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|sub| sub == "json" || sub.ends_with("+json"))
}

/// Decodes a JSON body, naming the path of a value that does not fit `T`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the request body is not valid JSON",
        )
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => value,
        Err(err) => {
            return Err(match err.inner().classify() {
                Category::Data => data_error(&err.path().to_string(), &err.inner().to_string()),
                Category::Syntax | Category::Eof | Category::Io => malformed(),
            })
        }
    };
    // Trailing characters after the value make the body invalid JSON, as with axum's `Json`.
    de.end().map_err(|_| malformed())?;
    Ok(value)
}

/// The error for a value at `path` (`.` for the body itself) that serde refused with `detail`.
///
/// serde's messages can quote the offending value ("invalid type: string \"sk-...\""), and that
/// value may be a secret: for those the message keeps the path and the kind of problem and drops
/// the value. Missing and unknown fields name the field, never a value. The messages are the ones
/// axum's `Json` gave (it uses `serde_path_to_error` too); what is new is the typed field.
fn data_error(path: &str, detail: &str) -> ApiError {
    let detail = detail.split(" at line ").next().unwrap_or(detail);
    let at = Some(path).filter(|p| *p != ".");
    let join = |name: &str| match at {
        Some(parent) => format!("{parent}.{name}"),
        None => name.to_owned(),
    };
    for marker in ["invalid type", "invalid value", "invalid length"] {
        if detail.starts_with(marker) {
            return match at {
                Some(path) => {
                    ApiError::invalid_field(path, format!("field `{path}` has an {marker}"))
                }
                None => ApiError::invalid(format!("the body has a field with an {marker}")),
            };
        }
    }
    // A missing field's path is the object that lacks it; serde names the field in backticks.
    // (An unknown field's path already ends with its name.)
    let missing = detail
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let message = match at {
        Some(path) => format!("{path}: {detail}"),
        None => detail.to_owned(),
    };
    match (missing, at) {
        (Some(name), _) => ApiError::invalid_field(join(name), message),
        (None, Some(path)) => ApiError::invalid_field(path, message),
        (None, None) => ApiError::invalid(message),
    }
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

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Target {
        provider: String,
        model: String,
        #[serde(default)]
        weight: Option<u32>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        api_key: Option<String>,
        #[serde(default)]
        targets: Vec<Target>,
    }

    fn refused(json: &str) -> ApiError {
        decode::<Body>(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn data_errors_name_the_json_path_and_never_echo_values() {
        let e = refused(r#"{"api_key": 12345}"#);
        assert_eq!(e.message(), "field `api_key` has an invalid type");
        assert_eq!(e.field(), Some("api_key"));
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::BAD_REQUEST, "invalid_field")
        );
        let e = refused(r#"{"targets": [{"provider": "openai", "model": "m", "weight": "sk-x"}]}"#);
        assert_eq!(e.field(), Some("targets[0].weight"));
        assert!(!e.message().contains("sk-x"), "{}", e.message());
        let e = refused(r#"{"targets": [{"provider": "openai"}]}"#);
        assert_eq!(e.message(), "targets[0]: missing field `model`");
        assert_eq!(e.field(), Some("targets[0].model"));
        let e = refused(r#"{"bogus": 1}"#);
        assert!(
            e.message().starts_with("bogus: unknown field `bogus`"),
            "{}",
            e.message()
        );
        assert_eq!(e.field(), Some("bogus"));
    }

    #[test]
    fn syntax_errors_are_malformed_json() {
        for bad in ["{", "{} x", "nope", ""] {
            assert_eq!(refused(bad).code(), "malformed_json", "{bad:?}");
        }
    }

    #[test]
    fn json_content_types() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            json_content_type(&h)
        };
        assert!(with("application/json"));
        assert!(with("application/json; charset=utf-8"));
        assert!(with("application/merge-patch+json"));
        assert!(!with("text/plain"));
        assert!(!json_content_type(&HeaderMap::new()));
    }
}
