//! Usage as an OpenAI-style or Anthropic answer reports it, read straight from the JSON text.
//!
//! A passed-through answer and every streamed OpenAI chunk are read only for their `usage`;
//! building a JSON tree for it cost more than the rest of reading them. This reader is as
//! tolerant as reading the counts from a `Value` ([`crate::translate::openai::parse_usage`],
//! [`crate::translate::anthropic::parse_usage`]): a count that is missing, `null`, negative,
//! fractional or of another type counts as 0, a details object of another type counts as absent,
//! and unknown fields are skipped. The one shape it refuses is a repeated field (serde's derive
//! rejects duplicates); callers then read the answer as a `Value`, whose last value wins.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::common::Usage;

/// A `usage` object of either family: OpenAI's and Anthropic's field names do not overlap.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReportedUsage {
    prompt_tokens: Count,
    completion_tokens: Count,
    prompt_tokens_details: Lenient<CachedTokens>,
    completion_tokens_details: Lenient<ReasoningTokens>,
    input_tokens: Count,
    output_tokens: Count,
    cache_read_input_tokens: Count,
    cache_creation_input_tokens: Count,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(default)]
struct CachedTokens {
    cached_tokens: Count,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(default)]
struct ReasoningTokens {
    reasoning_tokens: Count,
}

impl ReportedUsage {
    /// Read with OpenAI's names (`prompt_tokens` includes cached tokens; `completion_tokens`
    /// includes reasoning tokens).
    pub fn openai(&self) -> Usage {
        let cached = self.prompt_tokens_details.0.cached_tokens.0;
        Usage {
            input: self.prompt_tokens.0.saturating_sub(cached),
            output: self.completion_tokens.0,
            cached_input: cached,
            cache_write: 0,
            reasoning: self.completion_tokens_details.0.reasoning_tokens.0,
        }
    }

    /// Read with Anthropic's names.
    pub fn anthropic(&self) -> Usage {
        Usage {
            input: self.input_tokens.0,
            output: self.output_tokens.0,
            cached_input: self.cache_read_input_tokens.0,
            cache_write: self.cache_creation_input_tokens.0,
            reasoning: 0,
        }
    }
}

/// A token count: a non-negative integer, or 0 for anything else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyAsDefault(PhantomData::<Count>))
    }
}

/// An object read as `T`, or `T::default()` for anything that is not an object.
#[derive(Clone, Copy, Debug, Default)]
struct Lenient<T>(T);

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyAsDefault(PhantomData::<Lenient<T>>))
    }
}

/// What [`AnyAsDefault`] makes of an integer and of an object.
trait Tolerant<'de>: Default + Sized {
    fn from_u64(_: u64) -> Self {
        Self::default()
    }
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::default())
    }
}

impl Tolerant<'_> for Count {
    fn from_u64(n: u64) -> Self {
        Count(n)
    }
}

impl<'de, T: Deserialize<'de> + Default> Tolerant<'de> for Lenient<T> {
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Lenient)
    }
}

/// Takes any JSON value; what is not the expected kind becomes the default.
struct AnyAsDefault<T>(PhantomData<T>);

impl<'de, T: Tolerant<'de>> Visitor<'de> for AnyAsDefault<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_u64<E>(self, n: u64) -> Result<T, E> {
        Ok(T::from_u64(n))
    }
    fn visit_i64<E>(self, n: i64) -> Result<T, E> {
        Ok(u64::try_from(n).map_or_else(|_| T::default(), T::from_u64))
    }
    fn visit_f64<E>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_bool<E>(self, _: bool) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_none<E>(self) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::{anthropic, openai};
    use serde_json::Value;

    /// The typed reader and the `Value` readers agree on every shape, odd ones included.
    #[test]
    fn reads_what_the_value_readers_read() {
        let shapes = [
            r#"{"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}"#,
            r#"{"prompt_tokens": 12, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 5, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 3, "accepted_prediction_tokens": null}}"#,
            r#"{"prompt_tokens": 2, "prompt_tokens_details": {"cached_tokens": 5}}"#,
            r#"{"prompt_tokens": -3, "completion_tokens": 1.5, "prompt_tokens_details": "x", "completion_tokens_details": [1]}"#,
            r#"{"prompt_tokens": "12", "completion_tokens": null, "prompt_tokens_details": null, "extra": {"a": [1, {"b": 2}]}}"#,
            r#"{"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 50,
                "service_tier": "standard", "server_tool_use": {"web_search_requests": 0}}"#,
            r#"{"input_tokens": true, "output_tokens": {"n": 1}, "cache_read_input_tokens": [2]}"#,
            r#"{"completion_tokens": 18446744073709551615}"#,
            "{}",
        ];
        for text in shapes {
            let typed: ReportedUsage = serde_json::from_str(text).expect(text);
            let value: Value = serde_json::from_str(text).expect(text);
            assert_eq!(typed.openai(), openai::parse_usage(&value), "{text}");
            assert_eq!(typed.anthropic(), anthropic::parse_usage(&value), "{text}");
        }
    }

    #[test]
    fn a_repeated_field_is_refused_so_callers_fall_back() {
        assert!(serde_json::from_str::<ReportedUsage>(
            r#"{"prompt_tokens": 1, "prompt_tokens": 2}"#
        )
        .is_err());
    }
}
