//! Prices: the catalog's list prices and the organization's effective-dated overrides.
//! Amounts are decimal strings in USD per million tokens, exact to six decimal places.

use chrono::{DateTime, Utc};
use flo2_core::{ModelPrice, PricePerMtok, ProviderKind, Role};
use flo2_store::{PriceOverride, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::ConsoleState;

/// One price entry: a catalog list price or an organization override.
#[derive(Serialize, ToSchema)]
pub struct PriceView {
    /// `catalog` or `organization`.
    pub(crate) source: &'static str,
    /// Override id (organization entries only).
    pub(crate) id: Option<Uuid>,
    pub(crate) provider: ProviderKind,
    pub(crate) model: String,
    pub(crate) input_per_mtok: String,
    pub(crate) output_per_mtok: String,
    pub(crate) cached_input_per_mtok: Option<String>,
    pub(crate) cache_write_per_mtok: Option<String>,
    pub(crate) reasoning_per_mtok: Option<String>,
    pub(crate) context_window: Option<i64>,
    pub(crate) tools: Option<bool>,
    pub(crate) vision: Option<bool>,
    pub(crate) json: Option<bool>,
    /// From when an override applies (catalog entries: always).
    pub(crate) effective_from: Option<DateTime<Utc>>,
    /// For catalog entries: where and when the price was read.
    pub(crate) price_source: Option<String>,
    /// For catalog entries: when the price was last checked.
    pub(crate) as_of: Option<String>,
}

fn amounts(
    p: &ModelPrice,
) -> (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    (
        p.input.to_string(),
        p.output.to_string(),
        p.cached_input.map(|v| v.to_string()),
        p.cache_write.map(|v| v.to_string()),
        p.reasoning.map(|v| v.to_string()),
    )
}

impl From<PriceOverride> for PriceView {
    fn from(o: PriceOverride) -> Self {
        let (input, output, cached, write, reasoning) = amounts(&o.price);
        PriceView {
            source: "organization",
            id: Some(o.id),
            provider: o.provider,
            model: o.model,
            input_per_mtok: input,
            output_per_mtok: output,
            cached_input_per_mtok: cached,
            cache_write_per_mtok: write,
            reasoning_per_mtok: reasoning,
            context_window: o.context_window,
            tools: o.tools,
            vision: o.vision,
            json: o.json,
            effective_from: Some(o.effective_from),
            price_source: None,
            as_of: None,
        }
    }
}

/// Filters for the price list.
#[derive(Deserialize, IntoParams)]
pub struct PriceQuery {
    /// Only this provider.
    pub(crate) provider: Option<String>,
    /// Models whose id contains this text (case-insensitive).
    pub(crate) q: Option<String>,
}

/// A price override.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPrice {
    pub(crate) provider: ProviderKind,
    /// The provider's model id; any model, including custom ones.
    pub(crate) model: String,
    /// USD per million input tokens, e.g. `"0.15"`.
    pub(crate) input_per_mtok: String,
    /// USD per million output tokens.
    pub(crate) output_per_mtok: String,
    /// Prompt-cache reads; omitted: billed as input.
    #[serde(default)]
    pub(crate) cached_input_per_mtok: Option<String>,
    /// Prompt-cache writes; omitted: billed as input.
    #[serde(default)]
    pub(crate) cache_write_per_mtok: Option<String>,
    /// Reasoning tokens; omitted: billed as output.
    #[serde(default)]
    pub(crate) reasoning_per_mtok: Option<String>,
    /// Context window in tokens (for routing; custom models).
    #[serde(default)]
    pub(crate) context_window: Option<u32>,
    #[serde(default)]
    pub(crate) tools: Option<bool>,
    #[serde(default)]
    pub(crate) vision: Option<bool>,
    #[serde(default)]
    pub(crate) json: Option<bool>,
    /// When it starts to apply (RFC 3339); default now. Costs already recorded never change.
    #[serde(default)]
    pub(crate) effective_from: Option<DateTime<Utc>>,
}

/// The highest price accepted, in micro-USD per million tokens ($1,000,000 per million
/// tokens). Costs are stored per call as `i64` pico-USD, which holds $9.2 million: at this price
/// a call reaches that only past 9 million tokens, where a lower price would too.
pub const MAX_PRICE_MICROS: i64 = 1_000_000_000_000;

fn amount(field: &str, text: &str) -> Result<PricePerMtok, ApiError> {
    let price = PricePerMtok::parse(text)
        .map_err(|e| ApiError::invalid_field(field, format!("`{field}`: {e}")))?;
    if price.0 > MAX_PRICE_MICROS {
        return Err(ApiError::refused_field(
            field,
            format!("`{field}` must be at most 1000000 (USD per million tokens)"),
        ));
    }
    Ok(price)
}

/// `effective_from`, if it lies where both databases store and read back a time.
fn storable_from(from: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    if flo2_store::types::is_storable_time(from) {
        Ok(from)
    } else {
        Err(ApiError::refused_field(
            "effective_from",
            "`effective_from` must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z",
        ))
    }
}

fn optional(field: &str, text: &Option<String>) -> Result<Option<PricePerMtok>, ApiError> {
    text.as_deref().map(|t| amount(field, t)).transpose()
}

/// The catalog's list prices and the organization's overrides, filtered.
pub(crate) async fn list(
    state: &ConsoleState,
    principal: &Principal,
    filter: PriceQuery,
) -> Result<Vec<PriceView>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    let provider = filter
        .provider
        .as_deref()
        .map(|p| {
            p.parse::<ProviderKind>()
                .map_err(|e| ApiError::invalid_field("provider", e.to_string()))
        })
        .transpose()?;
    let needle = filter.q.unwrap_or_default().to_lowercase();
    let keep = |p: ProviderKind, model: &str| {
        provider.is_none_or(|want| want == p) && model.to_lowercase().contains(&needle)
    };
    let mut out: Vec<PriceView> = flo2_llm::catalog::all()
        .iter()
        .filter(|m| keep(m.provider, &m.id))
        .map(|m| {
            let (input, output, cached, write, reasoning) = amounts(&m.price);
            PriceView {
                source: "catalog",
                id: None,
                provider: m.provider,
                model: m.id.clone(),
                input_per_mtok: input,
                output_per_mtok: output,
                cached_input_per_mtok: cached,
                cache_write_per_mtok: write,
                reasoning_per_mtok: reasoning,
                context_window: i64::try_from(m.context_window).ok(),
                tools: Some(m.tools),
                vision: Some(m.vision),
                json: Some(m.json),
                effective_from: None,
                price_source: Some(m.source.clone()),
                as_of: Some(m.as_of.clone()),
            }
        })
        .collect();
    out.extend(
        state
            .store
            .prices(org)
            .await?
            .into_iter()
            .filter(|o| keep(o.provider, &o.model))
            .map(PriceView::from),
    );
    Ok(out)
}

/// Sets an organization price for a model from a point in time (admin or owner); the audit entry
/// is written in the same transaction.
pub(crate) async fn create(
    state: &ConsoleState,
    principal: &Principal,
    req: NewPrice,
) -> Result<PriceView, ApiError> {
    let org = principal.require(Role::Admin)?;
    let model = req.model.trim();
    // The same rule the gateway applies before any upstream call: a price for a name no call
    // can use would only hide what calls really cost.
    if model.is_empty() || model.len() > flo2_core::model_id::MAX_LEN {
        return Err(ApiError::invalid_field(
            "model",
            "`model` must be 1 to 200 characters",
        ));
    }
    flo2_core::model_id::check(req.provider, model)
        .map_err(|e| ApiError::refused_field("model", format!("`model`: {e}")))?;
    let now = Utc::now();
    let price = PriceOverride {
        id: Uuid::now_v7(),
        provider: req.provider,
        model: model.to_owned(),
        price: ModelPrice {
            input: amount("input_per_mtok", &req.input_per_mtok)?,
            output: amount("output_per_mtok", &req.output_per_mtok)?,
            cached_input: optional("cached_input_per_mtok", &req.cached_input_per_mtok)?,
            cache_write: optional("cache_write_per_mtok", &req.cache_write_per_mtok)?,
            reasoning: optional("reasoning_per_mtok", &req.reasoning_per_mtok)?,
        },
        context_window: req.context_window.map(i64::from),
        tools: req.tools,
        vision: req.vision,
        json: req.json,
        effective_from: storable_from(req.effective_from.unwrap_or(now))?,
        created_at: now,
    };
    let view = PriceView::from(price.clone());
    let entry = audit::entry(
        principal,
        "price.set",
        Target::new("price", price.id),
        price_details(&view),
    );
    state
        .store
        .create_price(org, &price, Some(&entry))
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                ApiError::conflict("a price for that model already starts at that time")
            }
            other => other.into(),
        })?;
    Ok(view)
}

/// What a price entry says, for the audit log: the amounts, limits and start that were set.
fn price_details(view: &PriceView) -> serde_json::Value {
    let mut details = serde_json::json!({
        "provider": view.provider,
        "model": view.model,
        "input_per_mtok": view.input_per_mtok,
        "output_per_mtok": view.output_per_mtok,
        "effective_from": view.effective_from,
    });
    for (k, v) in [
        ("cached_input_per_mtok", &view.cached_input_per_mtok),
        ("cache_write_per_mtok", &view.cache_write_per_mtok),
        ("reasoning_per_mtok", &view.reasoning_per_mtok),
    ] {
        if let Some(v) = v {
            details[k] = serde_json::json!(v);
        }
    }
    if let Some(w) = view.context_window {
        details["context_window"] = serde_json::json!(w);
    }
    details
}

/// Deletes one of the organization's prices (admin or owner), with its audit entry.
pub(crate) async fn delete(
    state: &ConsoleState,
    principal: &Principal,
    id: Uuid,
) -> Result<(), ApiError> {
    let org = principal.require(Role::Admin)?;
    // What it was, for the log; a row that cannot be read back can still be deleted by its id.
    let details = state
        .store
        .prices(org)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .map(|p| serde_json::json!({"provider": p.provider, "model": p.model, "effective_from": p.effective_from}))
        .unwrap_or_else(|| serde_json::json!({}));
    let entry = audit::entry(
        principal,
        "price.deleted",
        Target::new("price", id),
        details,
    );
    state
        .store
        .delete_price(org, id, Some(&entry))
        .await
        .map_err(|e| ApiError::from_store("price", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_times_name_their_field() {
        let e = amount("input_per_mtok", "abc").unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.field()),
            (400, Some("input_per_mtok"))
        );
        let e = amount("output_per_mtok", "1000000.000001").unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.field()),
            (422, Some("output_per_mtok"))
        );
        assert!(amount("cached_input_per_mtok", "0.15").is_ok());
        let e = optional("cache_write_per_mtok", &Some("-1".into())).unwrap_err();
        assert_eq!(e.field(), Some("cache_write_per_mtok"));
        let late = DateTime::<Utc>::MAX_UTC;
        let e = storable_from(late).unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.field()),
            (422, Some("effective_from"))
        );
    }
}
