//! The upstream providers flo2 can call with a tenant's own key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An upstream LLM provider. The serialized names are part of the public API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ProviderKind {
    /// OpenAI.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// Google Gemini (Generative Language API).
    #[serde(rename = "gemini")]
    Gemini,
    /// Groq.
    #[serde(rename = "groq")]
    Groq,
    /// Cerebras.
    #[serde(rename = "cerebras")]
    Cerebras,
    /// DeepInfra.
    #[serde(rename = "deepinfra")]
    DeepInfra,
    /// Mistral.
    #[serde(rename = "mistral")]
    Mistral,
    /// xAI.
    #[serde(rename = "xai")]
    Xai,
    /// OpenRouter.
    #[serde(rename = "openrouter")]
    OpenRouter,
    /// Any other server speaking the OpenAI API (vLLM, Ollama, LM Studio, a proxy); needs a base URL.
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

/// The provider name is not one flo2 knows.
#[derive(Debug, thiserror::Error)]
#[error("unknown provider {0:?}: expected one of openai, anthropic, gemini, groq, cerebras, deepinfra, mistral, xai, openrouter, openai-compatible")]
pub struct UnknownProvider(pub String);

impl ProviderKind {
    /// Every provider, in the order the documentation lists them.
    pub const ALL: [ProviderKind; 10] = [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Groq,
        ProviderKind::Cerebras,
        ProviderKind::DeepInfra,
        ProviderKind::Mistral,
        ProviderKind::Xai,
        ProviderKind::OpenRouter,
        ProviderKind::OpenAiCompatible,
    ];

    /// The stable name used in the API, in `provider/model` addressing and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Groq => "groq",
            ProviderKind::Cerebras => "cerebras",
            ProviderKind::DeepInfra => "deepinfra",
            ProviderKind::Mistral => "mistral",
            ProviderKind::Xai => "xai",
            ProviderKind::OpenRouter => "openrouter",
            ProviderKind::OpenAiCompatible => "openai-compatible",
        }
    }

    /// The provider's public API base URL; `None` for `openai-compatible`, which must be given one.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com/v1"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com/v1beta"),
            ProviderKind::Groq => Some("https://api.groq.com/openai/v1"),
            ProviderKind::Cerebras => Some("https://api.cerebras.ai/v1"),
            ProviderKind::DeepInfra => Some("https://api.deepinfra.com/v1/openai"),
            ProviderKind::Mistral => Some("https://api.mistral.ai/v1"),
            ProviderKind::Xai => Some("https://api.x.ai/v1"),
            ProviderKind::OpenRouter => Some("https://openrouter.ai/api/v1"),
            ProviderKind::OpenAiCompatible => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_the_generic_provider_lacks_a_base_url() {
        for p in ProviderKind::ALL {
            assert_eq!(p.as_str().parse::<ProviderKind>().unwrap(), p);
            assert_eq!(p.to_string(), p.as_str());
            assert_eq!(
                p.default_base_url().is_none(),
                p == ProviderKind::OpenAiCompatible
            );
        }
    }
}
