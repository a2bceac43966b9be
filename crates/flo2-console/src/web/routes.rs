//! The routes page: list, create or replace, edit and delete routes. The form is turned into the
//! same [`RoutePolicy`] the API accepts and checked by the same validation; its messages come
//! back next to the field they name.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use flo2_core::route::RaceMode;
use flo2_core::{Role, RoutePolicy, Strategy};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::account::chrome;
use super::session::WebUser;
use super::{act, error_page, forbidden_form, render, Chrome, CsrfForm};
use crate::error::ApiError;
use crate::service::routes;
use crate::ConsoleState;

/// The part of the route form an error belongs to, by the top-level field of its JSON path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Name,
    Targets,
    Baseline,
    Prices,
    Fallback,
    Race,
    Other,
}

impl Section {
    const ALL: [Section; 6] = [
        Section::Name,
        Section::Targets,
        Section::Baseline,
        Section::Prices,
        Section::Fallback,
        Section::Race,
    ];

    /// The top-level field (for prices, the prefix of both price fields).
    fn as_str(self) -> &'static str {
        match self {
            Section::Name => "name",
            Section::Targets => "targets",
            Section::Baseline => "baseline",
            Section::Prices => "max_",
            Section::Fallback => "fallback",
            Section::Race => "race",
            Section::Other => "",
        }
    }

    /// The section of the field at JSON path `field`.
    fn of(field: &str) -> Section {
        let top = field.split(['.', '[']).next().unwrap_or_default();
        Self::ALL
            .into_iter()
            .find(|s| match s {
                Section::Prices => top.starts_with(s.as_str()),
                _ => top == s.as_str(),
            })
            .unwrap_or(Section::Other)
    }
}

/// The parts of a route policy the form always sends, under the API's field names.
#[derive(serde::Serialize)]
struct PolicyBody<'f> {
    strategy: &'f str,
    targets: Vec<Value>,
    fallback: Map<String, Value>,
    race: Value,
}

/// The route form, as typed.
#[derive(Default, Deserialize)]
pub struct RouteFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    strategy: String,
    #[serde(default)]
    targets: String,
    #[serde(default)]
    baseline: String,
    #[serde(default)]
    max_input_per_mtok: String,
    #[serde(default)]
    max_output_per_mtok: String,
    #[serde(default)]
    retries_per_target: String,
    #[serde(default)]
    deadline_ms: String,
    #[serde(default)]
    attempt_timeout_ms: String,
    #[serde(default)]
    race_mode: String,
    #[serde(default)]
    hedge_delay_ms: String,
}

/// The form with its errors.
#[derive(Default)]
pub struct RouteForm {
    name: String,
    targets: String,
    baseline: String,
    max_input_per_mtok: String,
    max_output_per_mtok: String,
    retries_per_target: String,
    deadline_ms: String,
    attempt_timeout_ms: String,
    hedge_delay_ms: String,
    error: Option<String>,
    name_error: Option<String>,
    targets_error: Option<String>,
    baseline_error: Option<String>,
    price_error: Option<String>,
    fallback_error: Option<String>,
    race_error: Option<String>,
}

/// A route in the list.
pub struct RouteRow {
    name: String,
    strategy: String,
    targets: String,
}

#[derive(Template)]
#[template(path = "routes.html")]
struct RoutesPage {
    chrome: Chrome,
    routes: Vec<RouteRow>,
    can_edit: bool,
    editing: bool,
    strategies: Vec<(&'static str, bool)>,
    race_modes: Vec<(&'static str, bool)>,
    form: RouteForm,
    notice: Option<String>,
}

/// `?done=...`.
#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn strategy_name(p: &RoutePolicy) -> String {
    serde_json::to_value(p.strategy)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The form showing a stored policy.
fn form_of(name: &str, p: &RoutePolicy) -> (RouteForm, String, String) {
    let targets = p
        .targets
        .iter()
        .map(|t| match t.weight {
            Some(w) => format!("{} weight={w}", t.label()),
            None => t.label(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let race = serde_json::to_value(p.race.mode)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let form = RouteForm {
        name: name.to_owned(),
        targets,
        baseline: p.baseline.clone().unwrap_or_default(),
        max_input_per_mtok: p.max_input_per_mtok.clone().unwrap_or_default(),
        max_output_per_mtok: p.max_output_per_mtok.clone().unwrap_or_default(),
        retries_per_target: p.fallback.retries_per_target.to_string(),
        deadline_ms: p.fallback.deadline_ms.to_string(),
        attempt_timeout_ms: p.fallback.attempt_timeout_ms.to_string(),
        hedge_delay_ms: p
            .race
            .hedge_delay_ms
            .map(|d| d.to_string())
            .unwrap_or_default(),
        ..RouteForm::default()
    };
    (form, strategy_name(p), race)
}

/// Reads the policy a form describes (the service validates it); errors name the field.
fn policy_of(f: &RouteFields) -> Result<RoutePolicy, ApiError> {
    let mut targets = Vec::new();
    for (i, line) in f
        .targets
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let mut parts = line.split_whitespace();
        let label = parts.next().unwrap_or_default();
        let (provider, model) = label.split_once('/').ok_or_else(|| {
            ApiError::invalid_field(
                "targets",
                format!("`targets`: line {} must be provider/model", i + 1),
            )
        })?;
        let mut target = json!({"provider": provider, "model": model});
        for extra in parts {
            let weight = extra
                .strip_prefix("weight=")
                .and_then(|w| w.parse::<u32>().ok())
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "targets",
                        format!("`targets`: line {}: {extra:?} is not weight=N", i + 1),
                    )
                })?;
            target["weight"] = json!(weight);
        }
        targets.push(target);
    }
    let number = |field: &str, text: &str| -> Result<Option<u64>, ApiError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            ApiError::invalid_field(field, format!("`{field}` must be a whole number"))
        })
    };
    let mut fallback = Map::new();
    for (field, text) in [
        ("retries_per_target", &f.retries_per_target),
        ("deadline_ms", &f.deadline_ms),
        ("attempt_timeout_ms", &f.attempt_timeout_ms),
    ] {
        if let Some(n) = number(&format!("fallback.{field}"), text)? {
            fallback.insert(field.to_owned(), json!(n));
        }
    }
    let mut race =
        json!({"mode": if f.race_mode.is_empty() { "first" } else { f.race_mode.as_str() }});
    if let Some(d) = number("race.hedge_delay_ms", &f.hedge_delay_ms)? {
        race["hedge_delay_ms"] = json!(d);
    }
    // Written as the API's JSON body, so a refusal names the same field the API would.
    let mut policy = serde_json::to_value(PolicyBody {
        strategy: &f.strategy,
        targets,
        fallback,
        race,
    })
    .map_err(|e| ApiError::invalid(format!("cannot read the form: {e}")))?;
    for (field, text) in [
        ("baseline", &f.baseline),
        ("max_input_per_mtok", &f.max_input_per_mtok),
        ("max_output_per_mtok", &f.max_output_per_mtok),
    ] {
        if !text.trim().is_empty() {
            policy[field] = Value::String(text.trim().to_owned());
        }
    }
    serde_json::from_value(policy)
        .map_err(|e| ApiError::invalid_field("targets", format!("`targets`: {e}")))
}

async fn page(
    state: &ConsoleState,
    user: &WebUser,
    form: RouteForm,
    chosen: (String, String),
    editing: bool,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let (org, role) = match user.principal.org() {
        Ok(o) => o,
        Err(e) => return error_page(&e),
    };
    let routes = match state.store.routes(org).await {
        Ok(r) => r,
        Err(e) => return error_page(&e.into()),
    };
    let (strategy, race_mode) = chosen;
    let page = RoutesPage {
        chrome: chrome(state, user).await,
        routes: routes
            .iter()
            .map(|r| RouteRow {
                name: r.name.clone(),
                strategy: strategy_name(&r.policy),
                targets: r
                    .policy
                    .targets
                    .iter()
                    .map(|t| t.label())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
        can_edit: role.at_least(Role::Admin),
        editing,
        strategies: Strategy::ALL
            .iter()
            .map(|s| (s.as_str(), s.as_str() == strategy))
            .collect(),
        race_modes: RaceMode::ALL
            .iter()
            .map(|m| (m.as_str(), m.as_str() == race_mode))
            .collect(),
        form,
        notice,
    };
    render(status, &page)
}

/// `GET /app/routes`.
pub async fn list(
    State(state): State<ConsoleState>,
    user: WebUser,
    Query(q): Query<Done>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("saved") => Some("Route saved: apps can call it now.".to_owned()),
        Some("deleted") => Some("Route deleted.".to_owned()),
        _ => None,
    };
    let chosen = ("cheapest".to_owned(), "first".to_owned());
    page(
        &state,
        &user,
        RouteForm::default(),
        chosen,
        false,
        notice,
        StatusCode::OK,
    )
    .await
}

/// `GET /app/routes/{name}`: the form filled with the route.
pub async fn edit(
    State(state): State<ConsoleState>,
    user: WebUser,
    Path(name): Path<String>,
) -> Response {
    match routes::get(&state, &user.principal, &name).await {
        Ok(r) => {
            let (form, strategy, race) = form_of(&r.name, &r.policy);
            page(
                &state,
                &user,
                form,
                (strategy, race),
                true,
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e) => error_page(&e),
    }
}

/// `POST /app/routes`: create or replace.
pub async fn save(
    State(state): State<ConsoleState>,
    user: WebUser,
    Form(f): Form<RouteFields>,
) -> Response {
    if !user.csrf_ok(&f.csrf) {
        return forbidden_form();
    }
    let result = async {
        // The role first, as on the API: a viewer's form is refused whatever it holds.
        user.principal.require(Role::Admin)?;
        let policy = policy_of(&f)?;
        routes::save(&state, &user.principal, f.name.trim(), &policy).await
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/app/routes?done=saved").into_response(),
        Err(err) => {
            let message = Some(err.message().to_owned());
            let mut form = RouteForm {
                name: f.name.clone(),
                targets: f.targets.clone(),
                baseline: f.baseline.clone(),
                max_input_per_mtok: f.max_input_per_mtok.clone(),
                max_output_per_mtok: f.max_output_per_mtok.clone(),
                retries_per_target: f.retries_per_target.clone(),
                deadline_ms: f.deadline_ms.clone(),
                attempt_timeout_ms: f.attempt_timeout_ms.clone(),
                hedge_delay_ms: f.hedge_delay_ms.clone(),
                ..RouteForm::default()
            };
            let slot = match Section::of(err.field().unwrap_or_default()) {
                Section::Name => &mut form.name_error,
                Section::Targets => &mut form.targets_error,
                Section::Baseline => &mut form.baseline_error,
                Section::Prices => &mut form.price_error,
                Section::Fallback => &mut form.fallback_error,
                Section::Race => &mut form.race_error,
                Section::Other => &mut form.error,
            };
            *slot = message;
            let race = if f.race_mode.is_empty() {
                "first".to_owned()
            } else {
                f.race_mode.clone()
            };
            page(
                &state,
                &user,
                form,
                (f.strategy.clone(), race),
                false,
                None,
                err.status(),
            )
            .await
        }
    }
}

/// `POST /app/routes/{name}/delete`.
pub async fn delete(
    State(state): State<ConsoleState>,
    user: WebUser,
    Path(name): Path<String>,
    Form(b): Form<CsrfForm>,
) -> Response {
    let action = routes::delete(&state, &user.principal, &name);
    act(&user, &b.csrf, "/app/routes?done=deleted", action).await
}

#[cfg(test)]
mod tests {
    use super::Section;

    #[test]
    fn errors_find_their_section_by_the_top_field() {
        for (field, section) in [
            ("name", Section::Name),
            ("targets[2].model", Section::Targets),
            ("baseline", Section::Baseline),
            ("max_input_per_mtok", Section::Prices),
            ("fallback.deadline_ms", Section::Fallback),
            ("race.hedge_delay_ms", Section::Race),
            ("strategy", Section::Other),
            ("names", Section::Other),
        ] {
            assert_eq!(Section::of(field), section, "{field}");
        }
    }
}
