//! What the fake upstream answers: text, tool calls, usage, errors, timing and failures.

use std::time::Duration;

use serde_json::Value;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub(crate) text: String,
    pub(crate) tool_calls: Vec<(String, Value)>,
    pub(crate) usage: Option<(u64, u64)>,
    pub(crate) cached_input: u64,
    pub(crate) cache_write: u64,
    pub(crate) reasoning: u64,
    pub(crate) error: Option<(u16, String)>,
    pub(crate) retry_after: Option<u64>,
    pub(crate) first_byte_delay: Duration,
    pub(crate) chunk_delay: Duration,
    pub(crate) drop_after: Option<usize>,
    pub(crate) stall_after: Option<usize>,
    pub(crate) finish: Option<String>,
    pub(crate) location: Option<String>,
}

impl Scenario {
    fn empty() -> Self {
        Self {
            text: String::new(),
            tool_calls: Vec::new(),
            usage: None,
            cached_input: 0,
            cache_write: 0,
            reasoning: 0,
            error: None,
            retry_after: None,
            first_byte_delay: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            drop_after: None,
            stall_after: None,
            finish: None,
            location: None,
        }
    }

    /// The assistant answers with `text`.
    pub fn text(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            ..Self::empty()
        }
    }

    /// The assistant calls one tool.
    pub fn tool_call(name: &str, arguments: Value) -> Self {
        Self::empty().with_tool_call(name, arguments)
    }

    /// Adds another (parallel) tool call.
    pub fn with_tool_call(mut self, name: &str, arguments: Value) -> Self {
        self.tool_calls.push((name.to_owned(), arguments));
        self
    }

    /// Token counts reported (default: 10 input, one output token per word, at least 1).
    pub fn usage(mut self, input: u64, output: u64) -> Self {
        self.usage = Some((input, output));
        self
    }

    /// Input tokens read from the prompt cache (counted inside the input for OpenAI and Gemini,
    /// beside it for Anthropic, as each provider reports them).
    pub fn cached_input(mut self, n: u64) -> Self {
        self.cached_input = n;
        self
    }

    /// Anthropic cache-write tokens.
    pub fn cache_write(mut self, n: u64) -> Self {
        self.cache_write = n;
        self
    }

    /// Reasoning tokens (inside the output).
    pub fn reasoning(mut self, n: u64) -> Self {
        self.reasoning = n;
        self
    }

    /// An error answer with this status, in the provider's error shape.
    pub fn error(status: u16, message: &str) -> Self {
        Self {
            error: Some((status, message.to_owned())),
            ..Self::empty()
        }
    }

    /// A 307 redirect to `to` (a well-behaved gateway does not follow it).
    pub fn redirect(to: &str) -> Self {
        Self {
            error: Some((307, "moved".to_owned())),
            location: Some(to.to_owned()),
            ..Self::empty()
        }
    }

    /// Adds `retry-after`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Waits before the first byte.
    pub fn first_byte_delay(mut self, d: Duration) -> Self {
        self.first_byte_delay = d;
        self
    }

    /// Waits between stream events.
    pub fn chunk_delay(mut self, d: Duration) -> Self {
        self.chunk_delay = d;
        self
    }

    /// Breaks the connection after `events` stream events, with no terminal event (a
    /// non-streamed answer breaks halfway through its body).
    pub fn drop_after(mut self, events: usize) -> Self {
        self.drop_after = Some(events);
        self
    }

    /// Stops sending after `events` stream events and holds the connection open, sending nothing
    /// more, until the caller hangs up (a stalled upstream). A non-streamed answer, an error
    /// answer included, sends its head and half its body, then stalls.
    pub fn stall_after(mut self, events: usize) -> Self {
        self.stall_after = Some(events);
        self
    }

    /// Overrides the finish reason (`stop`, `length`, `tool_calls`), mapped per format.
    pub fn finish_reason(mut self, reason: &str) -> Self {
        self.finish = Some(reason.to_owned());
        self
    }

    pub(crate) fn input_tokens(&self) -> u64 {
        self.usage.map_or(10, |u| u.0)
    }

    pub(crate) fn output_tokens(&self) -> u64 {
        self.usage.map_or_else(
            || (self.text.split_whitespace().count() as u64).max(1),
            |u| u.1,
        )
    }

    pub(crate) fn finish_kind(&self) -> &str {
        match &self.finish {
            Some(f) => f,
            None if !self.tool_calls.is_empty() => "tool_calls",
            None => "stop",
        }
    }

    /// Text deltas: split before each space, so "Hello from fake" streams as "Hello", " from", " fake".
    pub(crate) fn deltas(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = String::new();
        for ch in self.text.chars() {
            if ch == ' ' && !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current.push(ch);
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    }

    /// A tool call's arguments as JSON text in two or more fragments.
    pub(crate) fn argument_fragments(arguments: &Value) -> Vec<String> {
        let text = arguments.to_string();
        let chars: Vec<char> = text.chars().collect();
        let mid = chars.len() / 2;
        vec![chars[..mid].iter().collect(), chars[mid..].iter().collect()]
    }
}

/// A scenario chosen by the request's own text, for callers that cannot script the server
/// (the SDK suites): `[[tool:NAME]]` calls NAME with `{"city":"Paris"}`, `[[error:STATUS]]`
/// answers that error, `[[slow]]` streams with 50 ms between events, `[[delay:MS]]` answers
/// "Hello from fake" after MS milliseconds (a slow upstream, for the benchmark's overload row);
/// anything else answers "Hello from fake".
pub fn from_prompt(prompt: &str) -> Scenario {
    if let Some(rest) = prompt.split("[[tool:").nth(1) {
        let name = rest.split("]]").next().unwrap_or("tool");
        return Scenario::tool_call(name, serde_json::json!({"city": "Paris"}));
    }
    if let Some(status) = marker_number(prompt, "[[error:") {
        let status = u16::try_from(status)
            .ok()
            .filter(|s| *s >= 100)
            .unwrap_or(500);
        let s = Scenario::error(status, &format!("scripted error {status}"));
        return if status == 429 { s.retry_after(3) } else { s };
    }
    let base = Scenario::text("Hello from fake");
    if let Some(ms) = marker_number(prompt, "[[delay:") {
        return base.first_byte_delay(Duration::from_millis(ms));
    }
    if prompt.contains("[[slow]]") {
        return Scenario::text(
            &(0..100)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" "),
        )
        .chunk_delay(Duration::from_millis(50));
    }
    base
}

/// The number in the prompt's `MARKERnumber]]`, if the marker is there (a malformed number
/// reads as 0: `[[error:x]]` is still an error, of status 500).
fn marker_number(prompt: &str, marker: &str) -> Option<u64> {
    let rest = prompt.split(marker).nth(1)?;
    Some(
        rest.split("]]")
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    )
}
