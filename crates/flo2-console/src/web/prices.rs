//! The prices page: the catalog and the organization's own prices, searchable, and a form that
//! sets a price from a point in time (through [`crate::service::prices`], as the API does, so
//! validation is shared).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use flo2_core::{ProviderKind, Role};
use serde::Deserialize;

use super::account::chrome;
use super::session::WebUser;
use super::{act, forbidden_form, render, Chrome, CsrfForm};
use crate::error::ApiError;
use crate::service::prices::{self, NewPrice, PriceQuery};
use crate::ConsoleState;

/// A price as shown.
pub struct PriceRow {
    ours: bool,
    /// The organization's price id (empty for catalog rows).
    id: String,
    model: String,
    input: String,
    cached: String,
    write: String,
    output: String,
    context: String,
    from: String,
    source: String,
}

/// The price form.
#[derive(Default)]
pub struct PriceForm {
    model: String,
    input: String,
    output: String,
    cached: String,
    write: String,
    from: String,
    error: Option<String>,
    model_error: Option<String>,
    price_error: Option<String>,
    from_error: Option<String>,
}

#[derive(Template)]
#[template(path = "prices.html")]
struct PricesPage {
    chrome: Chrome,
    q: String,
    providers: Vec<(&'static str, bool)>,
    form_providers: Vec<(&'static str, bool)>,
    rows: Vec<PriceRow>,
    can_edit: bool,
    form: PriceForm,
    notice: Option<String>,
}

/// The search.
#[derive(Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    provider: String,
    /// A model to prefill the form with (the usage page links here for unpriced models).
    #[serde(default)]
    model: String,
    #[serde(default)]
    done: Option<String>,
}

/// A posted price.
#[derive(Deserialize)]
pub struct PriceFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    input_per_mtok: String,
    #[serde(default)]
    output_per_mtok: String,
    #[serde(default)]
    cached_input_per_mtok: String,
    #[serde(default)]
    cache_write_per_mtok: String,
    #[serde(default)]
    effective_from: String,
}

async fn page(
    state: &ConsoleState,
    user: &WebUser,
    search: Search,
    form: (PriceForm, String),
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let role = match user.principal.org() {
        Ok((_, role)) => role,
        Err(e) => return super::error_page(&e),
    };
    let query = PriceQuery {
        provider: Some(search.provider.clone()).filter(|p| !p.is_empty()),
        q: Some(search.q.clone()).filter(|q| !q.is_empty()),
    };
    let listed = prices::list(state, &user.principal, query).await;
    let (rows, list_error) = match listed {
        Ok(rows) => (rows, None),
        Err(e) => (Vec::new(), Some(e.message().to_owned())),
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".to_owned());
    let (form, form_provider) = form;
    let page = PricesPage {
        chrome: chrome(state, user).await,
        providers: ProviderKind::ALL
            .iter()
            .map(|p| (p.as_str(), p.as_str() == search.provider))
            .collect(),
        form_providers: ProviderKind::ALL
            .iter()
            .map(|p| (p.as_str(), p.as_str() == form_provider))
            .collect(),
        q: search.q,
        rows: rows
            .iter()
            .map(|r| PriceRow {
                ours: r.source == "organization",
                id: r.id.map(|id| id.to_string()).unwrap_or_default(),
                model: format!("{}/{}", r.provider, r.model),
                input: r.input_per_mtok.clone(),
                cached: opt(&r.cached_input_per_mtok),
                write: opt(&r.cache_write_per_mtok),
                output: r.output_per_mtok.clone(),
                context: r
                    .context_window
                    .map_or_else(|| "—".to_owned(), |c| c.to_string()),
                from: r.effective_from.map_or_else(
                    || "always".to_owned(),
                    |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
                ),
                source: if r.source == "organization" {
                    "your price".to_owned()
                } else {
                    format!("catalog, {}", r.as_of.clone().unwrap_or_default())
                },
            })
            .collect(),
        can_edit: role.at_least(Role::Admin),
        form: PriceForm {
            error: form.error.or(list_error),
            ..form
        },
        notice,
    };
    render(status, &page)
}

/// `GET /app/prices`.
pub async fn list(
    State(state): State<ConsoleState>,
    user: WebUser,
    Query(search): Query<Search>,
) -> Response {
    let notice = search.done.as_deref().map(|done| {
        if done == "deleted" {
            "Price deleted. Calls from now on use the next price in effect, or the catalog's."
        } else {
            "Price saved. Calls from its start time are priced with it."
        }
        .to_owned()
    });
    let form = PriceForm {
        model: search.model.clone(),
        ..PriceForm::default()
    };
    let form_provider = if search.provider.is_empty() {
        "openai".to_owned()
    } else {
        search.provider.clone()
    };
    page(
        &state,
        &user,
        search,
        (form, form_provider),
        notice,
        StatusCode::OK,
    )
    .await
}

/// The price a form describes; the service checks the amounts and the model.
fn new_price(f: &PriceFields) -> Result<NewPrice, ApiError> {
    let provider: ProviderKind = f
        .provider
        .parse()
        .map_err(|e| ApiError::invalid_field("provider", format!("`provider`: {e}")))?;
    let optional = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let from = f.effective_from.trim();
    let effective_from = if from.is_empty() {
        None
    } else {
        // `datetime-local` sends `2026-11-24T12:00`; the form says it is UTC.
        let t = chrono::NaiveDateTime::parse_from_str(from, "%Y-%m-%dT%H:%M").map_err(|_| {
            ApiError::invalid_field("effective_from", "`effective_from` must be a date and time")
        })?;
        Some(t.and_utc())
    };
    Ok(NewPrice {
        provider,
        model: f.model.clone(),
        input_per_mtok: f.input_per_mtok.trim().to_owned(),
        output_per_mtok: f.output_per_mtok.trim().to_owned(),
        cached_input_per_mtok: optional(&f.cached_input_per_mtok),
        cache_write_per_mtok: optional(&f.cache_write_per_mtok),
        reasoning_per_mtok: None,
        context_window: None,
        tools: None,
        vision: None,
        json: None,
        effective_from,
    })
}

/// `POST /app/prices`.
pub async fn save(
    State(state): State<ConsoleState>,
    user: WebUser,
    Form(f): Form<PriceFields>,
) -> Response {
    if !user.csrf_ok(&f.csrf) {
        return forbidden_form();
    }
    let result = match new_price(&f) {
        Ok(new) => prices::create(&state, &user.principal, new)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/app/prices?done=saved").into_response(),
        Err(err) => {
            let message = Some(err.message().to_owned());
            let mut form = PriceForm {
                model: f.model,
                input: f.input_per_mtok,
                output: f.output_per_mtok,
                cached: f.cached_input_per_mtok,
                write: f.cache_write_per_mtok,
                from: f.effective_from,
                ..PriceForm::default()
            };
            match err.field() {
                Some("model") => form.model_error = message,
                Some(f) if f.ends_with("_per_mtok") => form.price_error = message,
                Some("effective_from") => form.from_error = message,
                _ => form.error = message,
            }
            page(
                &state,
                &user,
                Search::default(),
                (form, f.provider),
                None,
                err.status(),
            )
            .await
        }
    }
}

/// `POST /app/prices/{id}/delete`: deletes one of the organization's prices.
pub async fn delete(
    State(state): State<ConsoleState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(b): Form<CsrfForm>,
) -> Response {
    let action = async {
        let id = id.parse().map_err(|_| ApiError::not_found("price"))?;
        prices::delete(&state, &user.principal, id).await
    };
    act(&user, &b.csrf, "/app/prices?done=deleted", action).await
}
