//! How to talk to each provider: wire family, endpoint paths, auth headers, and the known
//! differences inside the OpenAI-compatible family.

use flo2_core::ProviderKind;

/// The wire format a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireFamily {
    /// OpenAI Chat Completions (OpenAI and every OpenAI-compatible server).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
}

/// A provider's family.
pub fn family(provider: ProviderKind) -> WireFamily {
    match provider {
        ProviderKind::Anthropic => WireFamily::Anthropic,
        ProviderKind::Gemini => WireFamily::Gemini,
        _ => WireFamily::OpenAi,
    }
}

/// The chat endpoint for `model` under `base_url` (no trailing slash).
///
/// Callers check model ids first ([`flo2_core::model_id::check`] refuses anything but one plain
/// segment for a provider that puts the id into its URL); the id is still written as one
/// percent-encoded path segment, so no id can reach another endpoint or the query string.
pub fn chat_url(provider: ProviderKind, base_url: &str, model: &str, stream: bool) -> String {
    match family(provider) {
        WireFamily::OpenAi => joined(base_url, "/chat/completions"),
        WireFamily::Anthropic => joined(base_url, "/messages"),
        WireFamily::Gemini => {
            let method = if stream {
                ":streamGenerateContent?alt=sse"
            } else {
                ":generateContent"
            };
            let mut url = String::with_capacity(base_url.len() + model.len() + 40);
            url.push_str(base_url);
            url.push_str("/models/");
            push_segment(&mut url, model);
            url.push_str(method);
            url
        }
    }
}

/// Appends `text` as one URL path segment: every byte outside RFC 3986's unreserved set
/// (`A-Z a-z 0-9 - . _ ~`) percent-encoded, and `.` / `..` (which a server would resolve as a
/// step up the path) encoded whole.
fn push_segment(url: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let dots = text == "." || text == "..";
    for b in text.bytes() {
        if (b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~' | b'.')) && !dots {
            url.push(char::from(b));
        } else {
            url.push('%');
            url.push(char::from(HEX[usize::from(b >> 4)]));
            url.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
}

/// `base` then `path`, allocated once at its final size (`format!` grows its `String` as it
/// writes, which for a URL meant a second allocation on every call).
fn joined(base: &str, path: &str) -> String {
    let mut url = String::with_capacity(base.len() + path.len());
    url.push_str(base);
    url.push_str(path);
    url
}

/// The embeddings endpoint, for providers that have an OpenAI-style one.
pub fn embeddings_url(provider: ProviderKind, base_url: &str) -> Option<String> {
    match provider {
        ProviderKind::OpenAi
        | ProviderKind::DeepInfra
        | ProviderKind::Mistral
        | ProviderKind::OpenRouter
        | ProviderKind::OpenAiCompatible => Some(format!("{base_url}/embeddings")),
        _ => None,
    }
}

/// The headers that carry the tenant's key (names are lowercase).
pub fn auth_headers(provider: ProviderKind, key: &str) -> Vec<(&'static str, String)> {
    match family(provider) {
        WireFamily::OpenAi => vec![("authorization", format!("Bearer {key}"))],
        WireFamily::Anthropic => vec![
            ("x-api-key", key.to_owned()),
            (
                "anthropic-version",
                crate::translate::anthropic::API_VERSION.to_owned(),
            ),
        ],
        WireFamily::Gemini => vec![("x-goog-api-key", key.to_owned())],
    }
}

/// What the output-token cap is called: OpenAI renamed it for its reasoning models; the rest of
/// the family kept `max_tokens`.
pub fn max_tokens_field(provider: ProviderKind) -> &'static str {
    match provider {
        ProviderKind::OpenAi => "max_completion_tokens",
        _ => "max_tokens",
    }
}

/// Whether the server accepts `stream_options.include_usage`. Mistral rejects unknown fields
/// and always sends usage in its last chunk, so it is not asked.
pub fn accepts_stream_options(provider: ProviderKind) -> bool {
    !matches!(provider, ProviderKind::Mistral)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_auth_follow_each_provider() {
        assert_eq!(
            chat_url(
                ProviderKind::Groq,
                "https://api.groq.com/openai/v1",
                "m",
                true
            ),
            "https://api.groq.com/openai/v1/chat/completions"
        );
        assert_eq!(
            chat_url(
                ProviderKind::Anthropic,
                "https://api.anthropic.com/v1",
                "m",
                false
            ),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            chat_url(ProviderKind::Gemini, "https://generativelanguage.googleapis.com/v1beta", "gemini-2.5-flash", true),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            chat_url(
                ProviderKind::Gemini,
                "https://g/v1beta",
                "x/../../v1/files?key=a#",
                false
            ),
            "https://g/v1beta/models/x%2F..%2F..%2Fv1%2Ffiles%3Fkey%3Da%23:generateContent",
            "one segment, whatever the id"
        );
        assert_eq!(
            chat_url(ProviderKind::Gemini, "https://g/v1beta", "..", false),
            "https://g/v1beta/models/%2E%2E:generateContent"
        );
        assert_eq!(
            auth_headers(ProviderKind::Gemini, "k"),
            [("x-goog-api-key", "k".to_owned())]
        );
        assert_eq!(
            auth_headers(ProviderKind::Anthropic, "k")[1].0,
            "anthropic-version"
        );
        assert_eq!(
            max_tokens_field(ProviderKind::OpenAi),
            "max_completion_tokens"
        );
        assert!(!accepts_stream_options(ProviderKind::Mistral));
    }
}
