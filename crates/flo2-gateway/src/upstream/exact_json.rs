//! The caller's JSON with every scalar kept as the caller wrote it.
//!
//! A `serde_json::Value` holds numbers as `u64`, `i64` or `f64`, so
//! `123456789012345678901234567890` becomes `1.2345678901234568e+29` and `-0` becomes `-0.0`
//! when a parsed body is written again; a provider then sees another number, or a float where it
//! wants an integer. Same-format calls forward the caller's body, so numbers must survive as
//! written. The parsed `Value` is exact for everything else (strings, integers that fit 64 bits,
//! and floats, which print back as the same `f64`), so this slower tree is built only for a body
//! whose `Value` holds a number it could not keep ([`holds_inexact_numbers`]).

use std::borrow::Cow;

use serde_json::Value;

use crate::upstream::steering_fields::is_steering;

/// A JSON value whose scalars are slices of the caller's body.
#[derive(Debug, PartialEq)]
pub(crate) enum Exact<'a> {
    /// An object, its keys unescaped, in the caller's order.
    Object(Vec<(Cow<'a, str>, Exact<'a>)>),
    /// An array.
    Array(Vec<Exact<'a>>),
    /// A string (with its quotes and escapes), number, `true`, `false` or `null`, as written.
    Scalar(&'a str),
}

/// serde_json's own nesting limit: the body was parsed under it, so no deeper tree is valid.
const MAX_DEPTH: usize = 128;

/// Whether writing `value` again would change a number the caller wrote: `-0`, or an integral
/// number too large for 64 bits (held as an `f64`, so its digits are rounded).
pub(crate) fn holds_inexact_numbers(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_f64().is_some_and(|f| {
            n.is_f64()
                && ((f == 0.0 && f.is_sign_negative())
                    || (f.fract() == 0.0 && f.abs() >= 9.007_199_254_740_992e15))
        }),
        Value::Array(items) => items.iter().any(holds_inexact_numbers),
        Value::Object(map) => map.values().any(holds_inexact_numbers),
        _ => false,
    }
}

/// The [`Exact`] tree of `body` when its parsed `value` holds a number it could not keep;
/// `None` otherwise (nearly always), and the `Value` serves.
pub(crate) fn if_needed<'a>(value: &Value, body: &'a [u8]) -> Option<Exact<'a>> {
    if holds_inexact_numbers(value) {
        parse(body)
    } else {
        None
    }
}

/// Parses `body` (already accepted by serde_json) into an [`Exact`] tree; `None` if it is not
/// valid JSON after all.
pub(crate) fn parse(body: &[u8]) -> Option<Exact<'_>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut p = Parser { text, at: 0 };
    let value = p.value(0)?;
    p.skip_space();
    (p.at == text.len()).then_some(value)
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_space();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn value(&mut self, depth: usize) -> Option<Exact<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut entries = Vec::new();
                self.skip_space();
                if self.peek()? == b'}' {
                    self.at += 1;
                    return Some(Exact::Object(entries));
                }
                loop {
                    self.skip_space();
                    let key = self.string()?;
                    self.eat(b':')?;
                    entries.push((unescape(key)?, self.value(depth + 1)?));
                    self.skip_space();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b'}' => {
                            self.at += 1;
                            return Some(Exact::Object(entries));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                self.skip_space();
                if self.peek()? == b']' {
                    self.at += 1;
                    return Some(Exact::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_space();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            return Some(Exact::Array(items));
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(Exact::Scalar),
            _ => {
                let start = self.at;
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.at += 1;
                }
                let token = self.text.get(start..self.at)?;
                // A scalar serde_json accepted: a number or a literal, nothing else.
                serde_json::from_str::<serde::de::IgnoredAny>(token).ok()?;
                Some(Exact::Scalar(token))
            }
        }
    }

    /// A string token with its quotes, as written.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.at;
        if self.peek()? != b'"' {
            return None;
        }
        self.at += 1;
        loop {
            match self.peek()? {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    return self.text.get(start..self.at);
                }
                _ => self.at += 1,
            }
        }
    }
}

/// A key's text: borrowed when it has no escapes (nearly always).
fn unescape(token: &str) -> Option<Cow<'_, str>> {
    let inner = token.get(1..token.len().checked_sub(1)?)?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(token).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// Writes `key` as a JSON string.
pub(crate) fn write_key(out: &mut Vec<u8>, key: &str) {
    // Writing a `&str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, key);
}

/// Writes `node` with steering fields removed at any depth.
pub(crate) fn write_stripped(out: &mut Vec<u8>, node: &Exact<'_>) {
    match node {
        Exact::Scalar(text) => out.extend_from_slice(text.as_bytes()),
        Exact::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_stripped(out, item);
            }
            out.push(b']');
        }
        Exact::Object(entries) => {
            out.push(b'{');
            let mut first = true;
            for (key, value) in entries.iter().filter(|(k, _)| !is_steering(k)) {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                write_key(out, key);
                out.push(b':');
                write_stripped(out, value);
            }
            out.push(b'}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_of(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_stripped(&mut out, &parse(text.as_bytes()).unwrap());
        out
    }

    #[test]
    fn numbers_and_strings_come_out_as_written() {
        let text = r#"{"a":123456789012345678901234567890,"b":-0,"c":[1e300,0.10,-0.0,1E2],"d":"x\"y\u00e9","e":{"f":null,"g":true}}"#;
        assert_eq!(String::from_utf8(exact_of(text)).unwrap(), text);
        let spaced = " {\n \"a\" : [ 1 , 2 ] ,\t\"b\":{ } , \"c\" : [ ] }\r\n";
        assert_eq!(
            String::from_utf8(exact_of(spaced)).unwrap(),
            r#"{"a":[1,2],"b":{},"c":[]}"#
        );
    }

    #[test]
    fn steering_fields_go_at_any_depth_and_escaped_keys_are_read() {
        let text = r#"{"api_key":"x","m":[{"base\u0055rl":"evil","k":1}],"keep":2}"#;
        assert_eq!(
            String::from_utf8(exact_of(text)).unwrap(),
            r#"{"m":[{"k":1}],"keep":2}"#
        );
    }

    #[test]
    fn broken_json_is_refused_not_guessed() {
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "[1,]x",
            "{\"a\":1,}",
            "\"open",
            "[1 2]",
            "{\"a\":nope}",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(
            parse(deep.as_bytes()),
            None,
            "deeper than serde_json allows"
        );
    }

    #[test]
    fn only_numbers_a_value_cannot_keep_ask_for_the_exact_tree() {
        let inexact = |t: &str| holds_inexact_numbers(&serde_json::from_str(t).unwrap());
        assert!(inexact(r#"{"seed":123456789012345678901234567890}"#));
        assert!(inexact(r#"{"a":[{"b":-0}]}"#));
        assert!(!inexact(
            r#"{"max_tokens":18446744073709551615,"t":0.7,"n":-3,"z":0}"#
        ));
    }
}
