//! The body of a same-format call, written straight from the caller's parsed request.
//!
//! A same-format call changes a few top-level fields (`model`, and for OpenAI-family upstreams
//! `max_completion_tokens` and `stream_options`) and drops the steering fields at any depth.
//! Writing the caller's JSON through this view makes those changes while it serializes, so an
//! attempt never deep-copies the request (a fallback chain or a race makes one body per attempt,
//! all from the same parsed request).

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use crate::upstream::exact_json::{write_key, write_stripped, Exact};
use crate::upstream::steering_fields::is_steering;

/// What happens to the caller's `stream_options`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamOptions {
    /// Forwarded as the caller sent it (or not at all).
    Keep,
    /// Replaced by `{"include_usage": true}`, so the stream reports usage for metering.
    IncludeUsage,
    /// Dropped: the upstream refuses the field.
    Drop,
}

/// The caller's top-level object as the upstream receives it.
pub struct Forwarded<'a> {
    /// The caller's body.
    pub body: &'a Map<String, Value>,
    /// The upstream's model name.
    pub model: &'a str,
    /// Send `max_completion_tokens` as `max_tokens` (OpenAI-style servers other than OpenAI).
    pub max_tokens_for_max_completion: bool,
    /// What happens to `stream_options`.
    pub stream_options: StreamOptions,
}

/// What becomes of one top-level field of the caller's body.
enum Field<'k> {
    /// Left out.
    Drop,
    /// Written under this name.
    As(&'k str),
}

impl Forwarded<'_> {
    /// The fate of the caller's top-level `key`, for both writers (the parsed `Value` here, and
    /// [`write_exact`] for bodies whose numbers a `Value` cannot hold).
    fn field<'k>(&self, key: &'k str, has_max_tokens: bool) -> Field<'k> {
        match key {
            "model" => Field::Drop,
            "stream_options" if self.stream_options != StreamOptions::Keep => Field::Drop,
            "max_completion_tokens" if self.max_tokens_for_max_completion => {
                if has_max_tokens {
                    Field::Drop
                } else {
                    Field::As("max_tokens")
                }
            }
            k if is_steering(k) => Field::Drop,
            k => Field::As(k),
        }
    }

    /// The upstream body, into a buffer of `size_hint` plus room for the changed fields: from
    /// `exact` when the caller wrote numbers a `Value` cannot hold, else from the `Value`.
    pub fn encode(
        &self,
        exact: Option<&Exact<'_>>,
        size_hint: usize,
    ) -> serde_json::Result<Vec<u8>> {
        match exact {
            Some(exact) => {
                let mut out = Vec::with_capacity(size_hint + 256);
                self.write_exact(exact, &mut out);
                Ok(out)
            }
            None => encode(self, size_hint),
        }
    }

    /// Writes the same body as [`Serialize`] does, from `exact`, the caller's body with its
    /// numbers as written (see [`crate::upstream::exact_json`]).
    pub fn write_exact(&self, exact: &Exact<'_>, out: &mut Vec<u8>) {
        let Exact::Object(entries) = exact else {
            write_stripped(out, exact);
            return;
        };
        let has_max_tokens = entries.iter().any(|(k, _)| k == "max_tokens");
        out.push(b'{');
        write_key(out, "model");
        out.push(b':');
        write_key(out, self.model);
        for (key, value) in entries {
            if let Field::As(name) = self.field(key, has_max_tokens) {
                out.push(b',');
                write_key(out, name);
                out.push(b':');
                write_stripped(out, value);
            }
        }
        if self.stream_options == StreamOptions::IncludeUsage {
            out.extend_from_slice(br#","stream_options":{"include_usage":true}"#);
        }
        out.push(b'}');
    }
}

impl Serialize for Forwarded<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let has_max_tokens = self.body.contains_key("max_tokens");
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("model", self.model)?;
        for (key, value) in self.body {
            if let Field::As(name) = self.field(key, has_max_tokens) {
                map.serialize_entry(name, &Stripped(value))?;
            }
        }
        if self.stream_options == StreamOptions::IncludeUsage {
            map.serialize_entry("stream_options", &IncludeUsage)?;
        }
        map.end()
    }
}

/// A value without steering fields at any depth.
struct Stripped<'a>(&'a Value);

impl Serialize for Stripped<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(object) => {
                let mut map = serializer.serialize_map(None)?;
                for (key, value) in object {
                    if !is_steering(key) {
                        map.serialize_entry(key, &Stripped(value))?;
                    }
                }
                map.end()
            }
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Stripped(item))?;
                }
                seq.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

/// `{"include_usage": true}`.
struct IncludeUsage;

impl Serialize for IncludeUsage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("include_usage", &true)?;
        map.end()
    }
}

/// An upstream body's JSON text, in a buffer a little larger than the caller's body to start
/// with (a same-format body is about its size; a translated one seldom much larger).
pub(crate) fn encode(
    body: &impl serde::Serialize,
    size_hint: usize,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size_hint + 256);
    serde_json::to_writer(&mut out, body)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn forward(body: Value, rename: bool, stream_options: StreamOptions) -> Value {
        let view = Forwarded {
            body: body.as_object().unwrap(),
            model: "upstream-model",
            max_tokens_for_max_completion: rename,
            stream_options,
        };
        serde_json::from_slice(&serde_json::to_vec(&view).unwrap()).unwrap()
    }

    #[test]
    fn only_the_named_fields_change_and_steering_goes_at_any_depth() {
        let body = json!({"model": "caller", "messages": [{"role": "user", "content": "hi", "api_key": "x",
            "parts": [{"base_url": "evil", "text": "t"}]}], "api_base": "evil", "n": 2, "extra": {"organization": "o", "a": [1, null, true]}});
        let got = forward(body, false, StreamOptions::Keep);
        assert_eq!(
            got,
            json!({"model": "upstream-model", "messages": [{"role": "user", "content": "hi", "parts": [{"text": "t"}]}],
                "n": 2, "extra": {"a": [1, null, true]}})
        );
    }

    #[test]
    fn both_writers_write_the_same_body_and_the_exact_one_keeps_numbers_as_written() {
        let text = r#"{"model":"caller","seed":123456789012345678901234567890,"t":-0,"api_key":"x",
            "max_completion_tokens":9,"stream_options":{"include_usage":false},"m":[{"base_url":"e","k":1}]}"#;
        for (rename, options) in [
            (false, StreamOptions::Keep),
            (true, StreamOptions::IncludeUsage),
            (true, StreamOptions::Drop),
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            let view = Forwarded {
                body: value.as_object().unwrap(),
                model: "upstream-model",
                max_tokens_for_max_completion: rename,
                stream_options: options,
            };
            let mut exact = Vec::new();
            view.write_exact(
                &crate::upstream::exact_json::parse(text.as_bytes()).unwrap(),
                &mut exact,
            );
            let from_exact: Value = serde_json::from_slice(&exact).unwrap();
            assert_eq!(from_exact, forward(value.clone(), rename, options));
            let exact = String::from_utf8(exact).unwrap();
            assert!(
                exact.contains(r#""seed":123456789012345678901234567890,"t":-0,"#),
                "{exact}"
            );
        }
    }

    #[test]
    fn max_completion_tokens_becomes_max_tokens_unless_both_are_there() {
        let got = forward(
            json!({"max_completion_tokens": 9}),
            true,
            StreamOptions::Keep,
        );
        assert_eq!(got, json!({"model": "upstream-model", "max_tokens": 9}));
        let got = forward(
            json!({"max_completion_tokens": 9, "max_tokens": 5}),
            true,
            StreamOptions::Keep,
        );
        assert_eq!(got, json!({"model": "upstream-model", "max_tokens": 5}));
        let got = forward(
            json!({"max_completion_tokens": 9}),
            false,
            StreamOptions::Keep,
        );
        assert_eq!(
            got,
            json!({"model": "upstream-model", "max_completion_tokens": 9})
        );
    }

    #[test]
    fn stream_options_are_kept_replaced_or_dropped() {
        let body = json!({"stream": true, "stream_options": {"include_usage": false, "x": 1}});
        assert_eq!(
            forward(body.clone(), false, StreamOptions::Keep)["stream_options"],
            json!({"include_usage": false, "x": 1})
        );
        assert_eq!(
            forward(body.clone(), false, StreamOptions::IncludeUsage)["stream_options"],
            json!({"include_usage": true})
        );
        assert_eq!(
            forward(json!({"stream": true}), false, StreamOptions::IncludeUsage)["stream_options"],
            json!({"include_usage": true})
        );
        assert!(forward(body, false, StreamOptions::Drop)
            .get("stream_options")
            .is_none());
    }
}
