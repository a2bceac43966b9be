//! Which provider, model and credential serve a requested `model`.
//!
//! - `provider/model` (`anthropic/claude-sonnet-4-5`, `openrouter/openai/gpt-4o`): that provider,
//!   everything after the first `/` as its model id.
//! - A bare name (`gpt-4o`): the first provider, in the order of [`ProviderKind::ALL`]
//!   (openai, anthropic, gemini, groq, cerebras, deepinfra, mistral, xai, openrouter,
//!   openai-compatible), whose catalog lists the name and for which the organization holds a
//!   key. A name no catalog lists goes to the organization's only provider, if it has exactly one.
//!
//! Among several keys for one provider, the first by name serves (key pools come with routing).

use std::sync::Arc;

use flo2_core::ProviderKind;

use crate::state::org_cache::{CredentialEntry, OrgConfig};
use crate::state::target::Target;

/// Why a model did not resolve. Messages name nothing outside the caller's organization.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The name is empty.
    #[error("`model` is required")]
    Missing,
    /// The organization holds no key for the named provider.
    #[error("your organization has no {0} key in flo2; add one, or pick another provider")]
    NoKey(ProviderKind),
    /// Nothing known by that name.
    #[error("unknown model {0:?}: use provider/model, e.g. openai/gpt-4o-mini")]
    Unknown(String),
    /// The model id is not plain data (it would change the provider URL, say).
    #[error("`model`: {0}")]
    BadModelId(#[from] flo2_core::model_id::ModelIdError),
}

/// Resolves `requested` and prices it for a call starting now.
pub fn resolve(config: &OrgConfig, requested: &str) -> Result<Target, ResolveError> {
    let mut target = resolve_unpriced(config, requested)?;
    target.price = config.price_at(target.provider, &target.model, chrono::Utc::now());
    Ok(target)
}

fn resolve_unpriced(config: &OrgConfig, requested: &str) -> Result<Target, ResolveError> {
    let requested = requested.trim();
    if requested.is_empty() {
        return Err(ResolveError::Missing);
    }
    if let Some((prefix, model)) = requested.split_once('/') {
        if let Ok(provider) = prefix.parse::<ProviderKind>() {
            if model.is_empty() {
                return Err(ResolveError::Unknown(requested.to_owned()));
            }
            flo2_core::model_id::check(provider, model)?;
            let credential = first_key(config, provider).ok_or(ResolveError::NoKey(provider))?;
            return Ok(target(provider, model, credential));
        }
    }
    let listed = config
        .providers()
        .into_iter()
        .find(|p| flo2_llm::catalog::models_for(*p).any(|m| m.id == requested));
    let provider = match listed {
        Some(p) => p,
        None => match config.providers().as_slice() {
            [only] => *only,
            _ => return Err(ResolveError::Unknown(requested.to_owned())),
        },
    };
    flo2_core::model_id::check(provider, requested)?;
    let credential = first_key(config, provider).ok_or(ResolveError::NoKey(provider))?;
    Ok(target(provider, requested, credential))
}

fn first_key(config: &OrgConfig, provider: ProviderKind) -> Option<&Arc<CredentialEntry>> {
    config.credentials.iter().find(|c| c.provider == provider)
}

/// The target `provider/model` with `credential` (its base URL or the provider's), unpriced.
pub(crate) fn target(
    provider: ProviderKind,
    model: &str,
    credential: &Arc<CredentialEntry>,
) -> Target {
    let base = credential
        .base_url
        .as_deref()
        .or(provider.default_base_url())
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned();
    Target {
        provider,
        model: model.to_owned(),
        credential: Arc::clone(credential),
        base_url: base,
        price: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flo2_core::{CredentialId, Secret};

    fn key(provider: ProviderKind, name: &str) -> Arc<CredentialEntry> {
        Arc::new(CredentialEntry {
            id: CredentialId::new(),
            provider,
            name: name.into(),
            base_url: None,
            secret: Secret::new("k".into()),
        })
    }

    #[test]
    fn addressing_rules() {
        let config = OrgConfig {
            credentials: vec![
                key(ProviderKind::Groq, "g"),
                key(ProviderKind::OpenAi, "o"),
                key(ProviderKind::OpenRouter, "r"),
            ],
            ..OrgConfig::default()
        };
        let t = resolve(&config, "openrouter/openai/gpt-4o").unwrap();
        assert!(
            t.price.is_none(),
            "openrouter/openai/gpt-4o is not in the catalog"
        );
        assert!(
            resolve(&config, "gpt-4o").unwrap().price.is_some(),
            "catalog models are priced"
        );
        assert_eq!(
            (t.provider, t.model.as_str(), t.base_url.as_str()),
            (
                ProviderKind::OpenRouter,
                "openai/gpt-4o",
                "https://openrouter.ai/api/v1"
            )
        );
        assert_eq!(
            resolve(&config, "gpt-4o").unwrap().provider,
            ProviderKind::OpenAi
        );
        assert_eq!(
            resolve(&config, "llama-3.3-70b-versatile")
                .unwrap()
                .provider,
            ProviderKind::Groq
        );
        assert_eq!(
            resolve(&config, "anthropic/claude-sonnet-4-5").unwrap_err(),
            ResolveError::NoKey(ProviderKind::Anthropic)
        );
        assert!(matches!(
            resolve(&config, "mystery-model"),
            Err(ResolveError::Unknown(_))
        ));
        assert_eq!(resolve(&config, " ").unwrap_err(), ResolveError::Missing);
        for bad in [
            "openrouter/x/../../v1/files",
            "openai/gpt-4o?x=1",
            "groq/llama 3",
            "openai/gpt-4o#",
        ] {
            assert!(
                matches!(resolve(&config, bad), Err(ResolveError::BadModelId(_))),
                "{bad}"
            );
        }
        // Not a provider prefix: a bare name with a slash (e.g. an org/model id).
        assert!(matches!(
            resolve(&config, "meta/llama"),
            Err(ResolveError::Unknown(_))
        ));

        let single = OrgConfig {
            credentials: vec![key(ProviderKind::OpenAiCompatible, "vllm")],
            ..OrgConfig::default()
        };
        assert_eq!(
            resolve(&single, "my-finetune").unwrap().model,
            "my-finetune"
        );
    }
}
