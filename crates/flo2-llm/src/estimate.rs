//! Token estimates for when a provider reports none (a stream cut short, `count_tokens` where the
//! upstream has no counting endpoint). The rule is documented and deliberately simple: about four
//! characters of text per token, plus four tokens of overhead per message. Image payloads (base64
//! data and URLs) are not text and are not counted. Records that hold an estimate say so
//! (`tokens_estimated`), so reports never pass a guess off as a provider's count.

use serde_json::Value;

/// Characters per token in the estimate.
const CHARS_PER_TOKEN: usize = 4;
/// Tokens of framing per message (role markers and separators).
const PER_MESSAGE: u64 = 4;

/// Tokens for `chars` characters of generated or prompt text.
pub fn tokens_for_chars(chars: usize) -> u64 {
    u64::try_from(chars.div_ceil(CHARS_PER_TOKEN)).unwrap_or(u64::MAX)
}

/// The estimated prompt tokens of an OpenAI chat or Anthropic messages request body: its
/// messages, system prompt and tool definitions.
pub fn prompt_tokens(body: &Value) -> u64 {
    let messages = body.get("messages").and_then(Value::as_array);
    let chars: usize = ["messages", "system", "tools"]
        .iter()
        .filter_map(|k| body.get(*k))
        .map(text_chars)
        .sum();
    let framing = messages.map_or(0, |m| m.len() as u64) * PER_MESSAGE;
    tokens_for_chars(chars).saturating_add(framing)
}

/// Characters of text in a JSON value: strings and object keys, except image payloads.
fn text_chars(value: &Value) -> usize {
    match value {
        Value::String(s) => s.chars().count(),
        Value::Array(items) => items.iter().map(text_chars).sum(),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "data" | "url" | "image_url" | "source"))
            .map(|(k, v)| k.chars().count() + text_chars(v))
            .sum(),
        Value::Number(n) => n.to_string().len(),
        Value::Bool(_) | Value::Null => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn four_characters_make_a_token_rounding_up() {
        assert_eq!(tokens_for_chars(0), 0);
        assert_eq!(tokens_for_chars(1), 1);
        assert_eq!(tokens_for_chars(8), 2);
        assert_eq!(tokens_for_chars(9), 3);
    }

    #[test]
    fn prompts_count_text_and_framing_but_not_images() {
        let text = json!({"messages": [{"role": "user", "content": "abcdefgh"}]});
        // "role" + "user" + "content" + "abcdefgh" = 4 + 4 + 7 + 8 = 23 chars -> 6, + 4 framing.
        assert_eq!(prompt_tokens(&text), 10);
        let image = json!({"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "data": "A".repeat(100_000)}}]}]});
        assert!(prompt_tokens(&image) < 20, "{}", prompt_tokens(&image));
    }
}
