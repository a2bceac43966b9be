//! The model catalog: every known model's list price and capabilities, from the repository's
//! `catalog/models.toml` (embedded at build time, parsed once). `GET /v1/models` lists it for the
//! providers an organization holds keys for; metering prices calls with it unless the
//! organization overrides a price; routing reads context windows and capabilities from it.

use std::sync::OnceLock;

use flo2_core::{ModelPrice, PricePerMtok, ProviderKind};
use serde::Deserialize;

const SOURCE: &str = include_str!("../../../catalog/models.toml");

/// One catalog entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogModel {
    /// The provider.
    pub provider: ProviderKind,
    /// The provider's own model id.
    pub id: String,
    /// A human name.
    pub display_name: String,
    /// List price.
    pub price: ModelPrice,
    /// Context window in tokens.
    pub context_window: u64,
    /// Accepts tools.
    pub tools: bool,
    /// Accepts images.
    pub vision: bool,
    /// Supports JSON mode / structured output.
    pub json: bool,
    /// Where the price was read.
    pub source: String,
    /// When.
    pub as_of: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    provider: String,
    id: String,
    name: String,
    input: String,
    output: String,
    cached_input: Option<String>,
    cache_write: Option<String>,
    reasoning: Option<String>,
    context_window: u64,
    tools: bool,
    vision: bool,
    json: bool,
    source: String,
    as_of: String,
}

#[derive(Deserialize)]
struct File {
    model: Vec<Entry>,
}

/// Why the catalog file is invalid (a unit test keeps the shipped file valid).
#[derive(Debug, thiserror::Error)]
#[error("catalog/models.toml: {0}")]
pub struct CatalogError(String);

fn parse(text: &str) -> Result<Vec<CatalogModel>, CatalogError> {
    let file: File = toml::from_str(text).map_err(|e| CatalogError(e.to_string()))?;
    let price = |model: &str, field: &str, v: &str| {
        PricePerMtok::parse(v).map_err(|e| CatalogError(format!("{model}: {field}: {e}")))
    };
    let optional = |model: &str, field: &str, v: &Option<String>| {
        v.as_deref().map(|v| price(model, field, v)).transpose()
    };
    let mut out: Vec<CatalogModel> = Vec::with_capacity(file.model.len());
    for e in file.model {
        let provider: ProviderKind = e
            .provider
            .parse()
            .map_err(|err| CatalogError(format!("{}: {err}", e.id)))?;
        if out.iter().any(|m| m.provider == provider && m.id == e.id) {
            return Err(CatalogError(format!("{provider}/{} is listed twice", e.id)));
        }
        out.push(CatalogModel {
            provider,
            price: ModelPrice {
                input: price(&e.id, "input", &e.input)?,
                output: price(&e.id, "output", &e.output)?,
                cached_input: optional(&e.id, "cached_input", &e.cached_input)?,
                cache_write: optional(&e.id, "cache_write", &e.cache_write)?,
                reasoning: optional(&e.id, "reasoning", &e.reasoning)?,
            },
            id: e.id,
            display_name: e.name,
            context_window: e.context_window,
            tools: e.tools,
            vision: e.vision,
            json: e.json,
            source: e.source,
            as_of: e.as_of,
        });
    }
    Ok(out)
}

/// Every catalog model (empty, with an error logged, if the embedded file were invalid).
pub fn all() -> &'static [CatalogModel] {
    static MODELS: OnceLock<Vec<CatalogModel>> = OnceLock::new();
    MODELS.get_or_init(|| {
        // The shipped file is validated by a unit test, so this fallback is for a broken build.
        parse(SOURCE).unwrap_or_else(|err| {
            tracing::error!(error = %err, "the embedded model catalog is invalid");
            Vec::new()
        })
    })
}

/// The catalog's models for `provider` (none for `openai-compatible`, whose models are the
/// operator's own).
pub fn models_for(provider: ProviderKind) -> impl Iterator<Item = &'static CatalogModel> {
    all().iter().filter(move |m| m.provider == provider)
}

/// One model.
pub fn find(provider: ProviderKind, id: &str) -> Option<&'static CatalogModel> {
    all().iter().find(|m| m.provider == provider && m.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalog_is_valid_and_covers_every_named_provider() {
        let models = parse(SOURCE).unwrap();
        assert_eq!(models.len(), all().len());
        for p in ProviderKind::ALL {
            let n = models_for(p).count();
            assert_eq!(n == 0, p == ProviderKind::OpenAiCompatible, "{p}");
        }
        let mini = find(ProviderKind::OpenAi, "gpt-4o-mini").unwrap();
        assert_eq!(mini.price.cached_input, Some(PricePerMtok(75_000)));
        assert!(models
            .iter()
            .all(|m| m.context_window > 0 && !m.source.is_empty() && !m.as_of.is_empty()));
    }

    #[test]
    fn bad_files_are_rejected_with_the_model_named() {
        let entry = |input: &str| {
            format!("[[model]]\nprovider = \"openai\"\nid = \"x\"\nname = \"x\"\ninput = \"{input}\"\noutput = \"1\"\ncontext_window = 1\ntools = true\nvision = true\njson = true\nsource = \"s\"\nas_of = \"d\"\n")
        };
        assert!(parse(&entry("0.1")).is_ok());
        assert!(parse(&entry("-1"))
            .unwrap_err()
            .to_string()
            .contains("x: input"));
        assert!(parse(&format!("{}{}", entry("1"), entry("1")))
            .unwrap_err()
            .to_string()
            .contains("twice"));
        assert!(parse(&entry("1").replace("openai", "nope")).is_err());
    }
}
