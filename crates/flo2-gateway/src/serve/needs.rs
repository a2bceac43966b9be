//! What a request needs from a model, read from the inbound body (OpenAI or Anthropic shape):
//! the basis on which route targets qualify and `cheapest` estimates cost.

use serde_json::Value;

/// A request's needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Estimated prompt tokens ([`flo2_llm::estimate`]).
    pub input_tokens: u64,
    /// The caller's output limit, if it set one.
    pub max_output_tokens: Option<u64>,
    /// Tool definitions were sent.
    pub tools: bool,
    /// Images were sent.
    pub images: bool,
    /// JSON mode or structured output was asked for.
    pub json: bool,
    /// A stream was asked for.
    pub stream: bool,
}

impl Needs {
    /// Reads the needs of an OpenAI chat or Anthropic messages body.
    pub fn of(body: &Value) -> Self {
        let tools = body
            .get("tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty());
        let images = body
            .get("messages")
            .and_then(Value::as_array)
            .is_some_and(|messages| messages.iter().any(has_image));
        let json = body
            .get("response_format")
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t == "json_object" || t == "json_schema");
        let max_output_tokens = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| body.get(*k).and_then(Value::as_u64));
        Needs {
            input_tokens: flo2_llm::estimate::prompt_tokens(body),
            max_output_tokens,
            tools,
            images,
            json,
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

fn has_image(message: &Value) -> bool {
    message
        .get("content")
        .and_then(Value::as_array)
        .is_some_and(|parts| {
            parts.iter().any(|p| {
                matches!(
                    p.get("type").and_then(Value::as_str),
                    Some("image_url" | "image" | "input_image")
                )
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_shapes() {
        let openai = json!({"model": "m", "max_completion_tokens": 99, "response_format": {"type": "json_object"},
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}]});
        let n = Needs::of(&openai);
        assert!(n.tools && n.images && n.json && !n.stream);
        assert_eq!(n.max_output_tokens, Some(99));
        let anthropic = json!({"model": "m", "max_tokens": 10, "stream": true,
            "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "AAAA"}}]}]});
        let n = Needs::of(&anthropic);
        assert!(n.images && n.stream && !n.tools && !n.json);
        assert_eq!(Needs::of(&json!({"messages": []})), Needs::default());
    }
}
