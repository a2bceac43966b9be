//! Translation between wire formats and the common model, one module per format. Each module
//! parses its format's request and response into the common model and writes them back out.

pub mod anthropic;
pub mod gemini;
pub mod openai;

use serde_json::Value;

use crate::common::{invalid, Image, TranslateError};

/// The string at `key`, if it is a string.
pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A non-negative integer at `key`.
pub(crate) fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// A present, non-null field.
pub(crate) fn present<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// A float field, or an error naming it.
pub(crate) fn f64_field(v: &Value, key: &str) -> Result<Option<f64>, TranslateError> {
    match present(v, key) {
        None => Ok(None),
        Some(x) => x
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(format!("`{key}` must be a number"))),
    }
}

/// The media type and data of a `data:<media>;base64,<data>` URL, borrowed from it.
fn base64_data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    Some((meta.strip_suffix(";base64")?, data))
}

/// Reads `data:<media>;base64,<data>` URLs as inline images, anything else as a URL.
pub(crate) fn image_from_url(url: &str) -> Image {
    match base64_data_url(url) {
        Some((media_type, data)) => Image::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        },
        None => Image::Url(url.to_owned()),
    }
}

/// An image as an upstream that takes inline bytes receives it, borrowed from the common model.
pub(crate) enum InlineImage<'a> {
    /// Base64 bytes.
    Base64 { media_type: &'a str, data: &'a str },
    /// A web URL (never a `data:` URL).
    Url(&'a str),
}

/// `image` for an upstream that takes inline bytes: a `data:` URL becomes its base64 bytes. A
/// `data:` URL that is not base64 is refused: it cannot be sent inline, and sending it on as a
/// URL had the writers read it as a `data:` URL again, for ever.
pub(crate) fn inline_image(image: &Image) -> Result<InlineImage<'_>, TranslateError> {
    match image {
        Image::Base64 { media_type, data } => Ok(InlineImage::Base64 { media_type, data }),
        Image::Url(u) if u.starts_with("data:") => match base64_data_url(u) {
            Some((media_type, data)) => Ok(InlineImage::Base64 { media_type, data }),
            None => Err(invalid(
                "an image `data:` URL must be base64-encoded (`data:<media type>;base64,<data>`)",
            )),
        },
        Image::Url(u) => Ok(InlineImage::Url(u)),
    }
}

/// The URL form of an image (inline images as `data:` URLs).
pub(crate) fn image_to_url(image: &Image) -> String {
    match image {
        Image::Url(u) => u.clone(),
        Image::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
    }
}

/// Stop sequences given as a string or a list of strings.
pub(crate) fn string_list(v: Option<&Value>, key: &str) -> Result<Vec<String>, TranslateError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("`{key}` must hold strings")))
            })
            .collect(),
        Some(_) => Err(invalid(format!(
            "`{key}` must be a string or a list of strings"
        ))),
    }
}

/// Tool arguments as JSON text → a JSON value (providers that take objects need one).
pub(crate) fn arguments_value(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Default::default());
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.to_owned()))
}
