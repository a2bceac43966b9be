//! Model ids are data, never URL syntax.
//!
//! A caller chooses the model id, and some providers put it into the request URL (Gemini:
//! `…/models/{model}:generateContent`). An id such as `x/../../../v1/files#` would then call
//! another endpoint on the provider's host with the organization's own key, and
//! `zzz/../gemini-2.5-pro` would run a priced model while it is recorded under an unpriced
//! name. So every id is checked before any upstream call, and before a route or price that
//! names it is saved:
//!
//! - for every provider: 1 to [`MAX_LEN`] bytes; no whitespace or control characters; none of
//!   `?`, `#`, `%`, `\`; and where the id has `/` (OpenRouter's `openai/gpt-4o`, DeepInfra's
//!   `meta-llama/…`, which travel in the JSON body) no empty, `.` or `..` segment;
//! - for a provider that puts the id into its URL path, exactly one path segment of
//!   `A-Z a-z 0-9 . _ -` (every Gemini model id is spelled that way), and not `.` or `..`.

use crate::ProviderKind;

/// The longest model id accepted.
pub const MAX_LEN: usize = 200;

/// Why a model id is refused; the message says what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelIdError {
    /// Empty or longer than [`MAX_LEN`].
    #[error("a model id is 1 to {MAX_LEN} characters")]
    Length,
    /// Holds a character that could change the meaning of a URL or a header.
    #[error("a model id cannot contain {0}")]
    Character(&'static str),
    /// A `/`-separated part is empty, `.` or `..`.
    #[error("a model id cannot have an empty, `.` or `..` part between slashes")]
    Segment,
    /// The provider puts the id into its URL, and it is not one plain path segment.
    #[error(
        "{0} model ids are letters, digits, `.`, `_` and `-` only (they go into the URL path)"
    )]
    NotOneSegment(ProviderKind),
}

/// Whether `provider` puts the model id into the request URL.
pub fn in_url_path(provider: ProviderKind) -> bool {
    matches!(provider, ProviderKind::Gemini)
}

/// Checks that `model` can be sent to `provider` as data.
pub fn check(provider: ProviderKind, model: &str) -> Result<(), ModelIdError> {
    if model.is_empty() || model.len() > MAX_LEN {
        return Err(ModelIdError::Length);
    }
    for c in model.chars() {
        let why = match c {
            c if c.is_control() => "control characters",
            c if c.is_whitespace() => "whitespace",
            '?' => "`?`",
            '#' => "`#`",
            '%' => "`%`",
            '\\' => "`\\`",
            _ => continue,
        };
        return Err(ModelIdError::Character(why));
    }
    if in_url_path(provider) {
        let plain = model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !plain || model == "." || model == ".." {
            return Err(ModelIdError::NotOneSegment(provider));
        }
        return Ok(());
    }
    if model
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(ModelIdError::Segment);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_model_ids_of_every_provider_pass() {
        for (p, m) in [
            (ProviderKind::OpenAi, "gpt-4o-mini"),
            (ProviderKind::OpenAi, "ft:gpt-4o-mini:acme::abc123"),
            (ProviderKind::Anthropic, "claude-sonnet-4-5"),
            (ProviderKind::Gemini, "gemini-2.5-flash"),
            (ProviderKind::Gemini, "gemini-2.0-flash-001"),
            (ProviderKind::OpenRouter, "openai/gpt-4o"),
            (
                ProviderKind::OpenRouter,
                "meta-llama/llama-3.3-70b-instruct:free",
            ),
            (ProviderKind::DeepInfra, "meta-llama/Llama-3.3-70B-Instruct"),
            (ProviderKind::Groq, "llama-3.3-70b-versatile"),
            (ProviderKind::OpenAiCompatible, "Qwen/Qwen2.5-7B-Instruct"),
        ] {
            assert_eq!(check(p, m), Ok(()), "{p}/{m}");
        }
    }

    #[test]
    fn url_syntax_is_refused_for_every_provider() {
        for p in ProviderKind::ALL {
            for m in [
                "",
                "a?key=x",
                "a#frag",
                "a%2F..",
                "a b",
                "a\tb",
                "a\nb",
                "a\u{0}b",
                "a\u{85}b",
                "a\u{2028}b",
                "a\\b",
                "x/../../../v1/files#",
                "zzz/../gemini-2.5-pro",
                "./a",
                "a/.",
                "a//b",
                "/a",
                "a/",
                "..",
            ] {
                assert!(check(p, m).is_err(), "{p}/{m:?} must be refused");
            }
            assert_eq!(
                check(p, &"m".repeat(MAX_LEN + 1)),
                Err(ModelIdError::Length)
            );
        }
    }

    #[test]
    fn a_provider_that_puts_the_id_in_its_url_takes_one_plain_segment() {
        for m in [
            "models/gemini-2.5-pro",
            "gemini-2.5-pro:streamGenerateContent",
            "é",
            ".",
        ] {
            assert_eq!(
                check(ProviderKind::Gemini, m),
                Err(ModelIdError::NotOneSegment(ProviderKind::Gemini)),
                "{m}"
            );
        }
    }
}
