//! Well-known models of each provider, used to answer `GET /v1/models` for the providers an
//! organization holds keys for. Any other model id still works through `provider/model`
//! addressing; this list only makes the common ones discoverable.

use flo2_core::ProviderKind;

/// A model a provider serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatalogModel {
    /// The provider.
    pub provider: ProviderKind,
    /// The provider's own model id.
    pub id: &'static str,
    /// A human name.
    pub display_name: &'static str,
}

const fn m(provider: ProviderKind, id: &'static str, display_name: &'static str) -> CatalogModel {
    CatalogModel {
        provider,
        id,
        display_name,
    }
}

use ProviderKind::*;

static MODELS: &[CatalogModel] = &[
    m(OpenAi, "gpt-4.1", "GPT-4.1"),
    m(OpenAi, "gpt-4.1-mini", "GPT-4.1 mini"),
    m(OpenAi, "gpt-4o", "GPT-4o"),
    m(OpenAi, "gpt-4o-mini", "GPT-4o mini"),
    m(OpenAi, "o4-mini", "o4-mini"),
    m(Anthropic, "claude-opus-4-1", "Claude Opus 4.1"),
    m(Anthropic, "claude-sonnet-4-5", "Claude Sonnet 4.5"),
    m(Anthropic, "claude-haiku-4-5", "Claude Haiku 4.5"),
    m(Gemini, "gemini-2.5-pro", "Gemini 2.5 Pro"),
    m(Gemini, "gemini-2.5-flash", "Gemini 2.5 Flash"),
    m(Gemini, "gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite"),
    m(Groq, "llama-3.3-70b-versatile", "Llama 3.3 70B Versatile"),
    m(Groq, "llama-3.1-8b-instant", "Llama 3.1 8B Instant"),
    m(Cerebras, "llama-3.3-70b", "Llama 3.3 70B"),
    m(Cerebras, "llama3.1-8b", "Llama 3.1 8B"),
    m(
        DeepInfra,
        "meta-llama/Llama-3.3-70B-Instruct",
        "Llama 3.3 70B Instruct",
    ),
    m(DeepInfra, "deepseek-ai/DeepSeek-V3", "DeepSeek V3"),
    m(Mistral, "mistral-large-latest", "Mistral Large"),
    m(Mistral, "mistral-small-latest", "Mistral Small"),
    m(Xai, "grok-4", "Grok 4"),
    m(Xai, "grok-3-mini", "Grok 3 mini"),
    m(
        OpenRouter,
        "openai/gpt-4o-mini",
        "GPT-4o mini via OpenRouter",
    ),
    m(
        OpenRouter,
        "anthropic/claude-sonnet-4.5",
        "Claude Sonnet 4.5 via OpenRouter",
    ),
];

/// The catalog's models for `provider` (none for `openai-compatible`, whose models are the
/// operator's own).
pub fn models_for(provider: ProviderKind) -> impl Iterator<Item = &'static CatalogModel> {
    MODELS.iter().filter(move |m| m.provider == provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_provider_has_models_and_ids_are_unique() {
        for p in ProviderKind::ALL {
            let n = models_for(p).count();
            assert_eq!(n == 0, p == OpenAiCompatible, "{p}");
        }
        let mut ids: Vec<(ProviderKind, &str)> =
            MODELS.iter().map(|m| (m.provider, m.id)).collect();
        ids.sort_by_key(|(p, id)| (p.as_str(), *id));
        ids.dedup();
        assert_eq!(ids.len(), MODELS.len());
    }
}
