//! The common model: what an LLM chat call means, independent of any provider's wire format.
//! Cross-format calls translate inbound → common → upstream, and back.

use serde_json::Value;

/// A chat request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// The model as the upstream names it.
    pub model: String,
    /// System prompts, in order (OpenAI allows several; they are kept apart where possible).
    pub system: Vec<String>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Output token cap.
    pub max_tokens: Option<u64>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Tools the model may call.
    pub tools: Vec<ToolDef>,
    /// How the model must use them.
    pub tool_choice: Option<ToolChoice>,
    /// Structured output.
    pub response_format: Option<ResponseFormat>,
    /// Whether the caller wants a stream.
    pub stream: bool,
    /// End-user id for the provider's abuse monitoring.
    pub user: Option<String>,
}

/// Who said a message. System prompts live in [`ChatRequest::system`]; tool results are parts of
/// user messages (as in Anthropic's model), which keeps ordering intact in every format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The caller's side.
    User,
    /// The model.
    Assistant,
}

/// One turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Who.
    pub role: Role,
    /// What, in order.
    pub parts: Vec<Part>,
}

/// A piece of a message.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Text.
    Text(String),
    /// An image.
    Image(Image),
    /// A call the model made.
    ToolCall(ToolCall),
    /// The result of a call, sent back by the caller.
    ToolResult(ToolResult),
}

/// An image input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Image {
    /// By URL (`https:` or `data:`).
    Url(String),
    /// Inline bytes, base64.
    Base64 {
        /// e.g. `image/png`.
        media_type: String,
        /// Base64 data.
        data: String,
    },
}

/// A tool call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    /// The provider's call id (results refer to it).
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as JSON text.
    pub arguments: String,
}

/// A tool's result.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolResult {
    /// The call it answers.
    pub call_id: String,
    /// Result content (text and images).
    pub content: Vec<Part>,
    /// The tool failed.
    pub is_error: bool,
}

/// A tool definition.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolDef {
    /// Name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// JSON Schema of its arguments.
    pub parameters: Value,
}

/// Tool-use policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tools.
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Named(String),
}

/// Structured output.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponseFormat {
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// Schema name.
        name: String,
        /// The schema.
        schema: Value,
        /// Strict adherence.
        strict: Option<bool>,
    },
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// Hit the token cap.
    Length,
    /// The model called tools.
    ToolCalls,
    /// Filtered by the provider.
    ContentFilter,
}

/// Token counts by kind. `input` excludes cached and cache-write tokens; `output` includes
/// reasoning tokens (they are billed as output); `reasoning` says how many of them there were.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input billed at the full input price.
    pub input: u64,
    /// All output, reasoning included.
    pub output: u64,
    /// Input read from the provider's prompt cache.
    pub cached_input: u64,
    /// Input written to the prompt cache (Anthropic).
    pub cache_write: u64,
    /// Of `output`, reasoning tokens.
    pub reasoning: u64,
}

impl Usage {
    /// Every input token, however billed.
    pub fn total_input(&self) -> u64 {
        self.input + self.cached_input + self.cache_write
    }
}

/// A complete answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    /// The provider's response id.
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// Text and tool calls, in order.
    pub parts: Vec<Part>,
    /// Why it ended.
    pub finish: FinishReason,
    /// Tokens.
    pub usage: Usage,
    /// Whether the answer carried a usage report at all (an explicit 0 is a count; a missing
    /// report is not, and the meter estimates it).
    pub usage_reported: bool,
}

/// Token counts with which of them the provider actually reported. A count the provider gave,
/// zero included, is recorded as it is; one it never gave (a stream cut before its usage event,
/// Anthropic's output before `message_delta`, whose `message_start` holds a placeholder) is
/// estimated by the meter and marked so.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageReport {
    /// The counts (those not reported are 0 or a placeholder).
    pub usage: Usage,
    /// The input counts were reported.
    pub input_reported: bool,
    /// The output count was reported.
    pub output_reported: bool,
}

impl From<Usage> for UsageReport {
    /// Counts from a complete usage report: every kind was reported.
    fn from(usage: Usage) -> Self {
        Self {
            usage,
            input_reported: true,
            output_reported: true,
        }
    }
}

/// One step of a streamed answer.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// The answer began.
    Start {
        /// Response id.
        id: String,
        /// Model.
        model: String,
    },
    /// More text.
    Text(String),
    /// A tool call began; `index` counts tool calls from 0.
    ToolCallStart {
        /// Tool-call index.
        index: usize,
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
    },
    /// More of a tool call's JSON arguments.
    ToolCallArgs {
        /// Tool-call index.
        index: usize,
        /// Fragment of JSON text.
        fragment: String,
    },
    /// Generation ended.
    Finish(FinishReason),
    /// Token counts (may come before or after `Finish`; the last one wins).
    Usage(Usage),
}

/// A request feature the target format cannot express; answered with 400 naming it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{feature} is not supported by {target}")]
pub struct Unsupported {
    /// The feature, as the caller named it.
    pub feature: String,
    /// The target provider or format.
    pub target: String,
}

/// The inbound request does not follow its format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRequest(pub String);

/// Why a translation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The request is malformed.
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    /// The request asks for something the target cannot do.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
}

pub(crate) fn invalid(message: impl Into<String>) -> TranslateError {
    TranslateError::Invalid(InvalidRequest(message.into()))
}

pub(crate) fn unsupported(feature: impl Into<String>, target: impl Into<String>) -> TranslateError {
    TranslateError::Unsupported(Unsupported {
        feature: feature.into(),
        target: target.into(),
    })
}
