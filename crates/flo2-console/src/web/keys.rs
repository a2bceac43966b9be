//! The provider-key and API-key pages. Writes go through the same service functions as
//! `/api/v1` and check the same roles; a viewer sees the lists without the forms.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use flo2_core::{CredentialId, GatewayKeyId, ProviderKind, Role, TeamId};
use serde::Deserialize;

use super::account::chrome;
use super::session::WebUser;
use super::{act, error_page, forbidden_form, render, Chrome, CsrfForm};
use crate::error::ApiError;
use crate::service::api_keys::{self, NewKey};
use crate::service::provider_keys::{self, KeyChanges, NewProviderKey};
use crate::service::teams;
use crate::ConsoleState;

/// A provider key row.
pub struct KeyRow {
    id: CredentialId,
    name: String,
    provider: String,
    hint: String,
    base_url: Option<String>,
    created: String,
}

/// The add-key form, kept across errors (never the key itself).
#[derive(Default)]
pub struct ProviderKeyForm {
    provider: String,
    name: String,
    base_url: String,
    error: Option<String>,
    name_error: Option<String>,
    key_error: Option<String>,
    base_url_error: Option<String>,
}

#[derive(Template)]
#[template(path = "provider_keys.html")]
struct ProviderKeysPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    /// Provider names, and whether the form has it selected.
    providers: Vec<(&'static str, bool)>,
    can_edit: bool,
    form: ProviderKeyForm,
    notice: Option<String>,
    can_test: bool,
    test: Option<crate::key_test::KeyTestOutcome>,
}

/// An API key row.
pub struct ApiKeyRow {
    id: GatewayKeyId,
    name: String,
    team: String,
    hint: String,
    last_used: String,
    status: &'static str,
    active: bool,
}

/// A key just created: shown once.
pub struct Created {
    name: String,
    key: String,
    base: String,
}

/// The create-key form.
#[derive(Default)]
pub struct ApiKeyForm {
    name: String,
    team: String,
    new_team: String,
    error: Option<String>,
    name_error: Option<String>,
    team_error: Option<String>,
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct ApiKeysPage {
    chrome: Chrome,
    keys: Vec<ApiKeyRow>,
    teams: Vec<(String, String)>,
    can_edit: bool,
    form: ApiKeyForm,
    created: Option<Created>,
    notice: Option<String>,
}

/// A posted provider key.
#[derive(Deserialize)]
pub struct ProviderKeyFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    base_url: String,
}

/// A posted API key.
#[derive(Deserialize)]
pub struct ApiKeyFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    new_team: String,
}

/// `?done=...` after a change.
#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn notice(done: Option<String>) -> Option<String> {
    match done.as_deref() {
        Some("added") => Some("The key is stored, encrypted.".into()),
        Some("deleted") => Some("The key is deleted; routes and calls no longer use it.".into()),
        Some("rotated") => Some("The key is replaced: calls use the new one from now on.".into()),
        Some("revoked") => Some("The key is revoked: it stops working at once.".into()),
        _ => None,
    }
}

async fn provider_keys_page(
    state: &ConsoleState,
    user: &WebUser,
    form: ProviderKeyForm,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    provider_keys_page_with(state, user, form, notice, None, status).await
}

async fn provider_keys_page_with(
    state: &ConsoleState,
    user: &WebUser,
    form: ProviderKeyForm,
    notice: Option<String>,
    test: Option<crate::key_test::KeyTestOutcome>,
    status: StatusCode,
) -> Response {
    let (org, role) = match user.principal.org() {
        Ok(o) => o,
        Err(e) => return error_page(&e),
    };
    let keys = match state.store.credentials(org).await {
        Ok(k) => k,
        Err(e) => return error_page(&e.into()),
    };
    let page = ProviderKeysPage {
        chrome: chrome(state, user).await,
        keys: keys
            .into_iter()
            .map(|k| KeyRow {
                id: k.id,
                name: k.name,
                provider: k.provider.to_string(),
                hint: k.hint,
                base_url: k.base_url,
                created: k.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            })
            .collect(),
        providers: ProviderKind::ALL
            .iter()
            .map(|p| (p.as_str(), p.as_str() == form.provider))
            .collect(),
        can_edit: role.at_least(Role::Admin),
        can_test: role.at_least(Role::Admin) && state.key_tester.is_some(),
        form,
        notice,
        test,
    };
    render(status, &page)
}

/// `POST /app/provider-keys/{id}/test`: one tiny real call with the key; the page shows how it
/// went.
pub async fn test_provider_key(
    State(state): State<ConsoleState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(b): Form<CsrfForm>,
) -> Response {
    if !user.csrf_ok(&b.csrf) {
        return forbidden_form();
    }
    let outcome = async {
        let org = user.principal.require(Role::Admin)?;
        let id: CredentialId = id
            .parse()
            .map_err(|_| ApiError::not_found("provider key"))?;
        // The key must be this organization's (another tenant's id is just "not found").
        state
            .store
            .credential(org, id)
            .await
            .map_err(|e| ApiError::from_store("provider key", e))?;
        let tester = state.key_tester.as_ref().ok_or_else(|| {
            ApiError::invalid("this flo2 runs without a data plane, so it cannot test keys")
        })?;
        tester.test(org, id).await.map_err(ApiError::invalid)
    }
    .await;
    match outcome {
        Ok(test) => {
            provider_keys_page_with(
                &state,
                &user,
                ProviderKeyForm::default(),
                None,
                Some(test),
                StatusCode::OK,
            )
            .await
        }
        Err(err) => error_page(&err),
    }
}

/// `GET /app/provider-keys`.
pub async fn provider_keys(
    State(state): State<ConsoleState>,
    user: WebUser,
    Query(q): Query<Done>,
) -> Response {
    provider_keys_page(
        &state,
        &user,
        ProviderKeyForm::default(),
        notice(q.done),
        StatusCode::OK,
    )
    .await
}

/// `POST /app/provider-keys`.
pub async fn add_provider_key(
    State(state): State<ConsoleState>,
    user: WebUser,
    Form(f): Form<ProviderKeyFields>,
) -> Response {
    if !user.csrf_ok(&f.csrf) {
        return forbidden_form();
    }
    let result = async {
        user.principal.require(Role::Admin)?;
        let provider: ProviderKind =
            f.provider
                .parse()
                .map_err(|e: flo2_core::provider::UnknownProvider| {
                    ApiError::invalid_field("provider", format!("`provider`: {e}"))
                })?;
        let new = NewProviderKey {
            provider,
            name: &f.name,
            api_key: f.api_key,
            base_url: Some(f.base_url.trim()).filter(|u| !u.is_empty()),
        };
        provider_keys::create(&state, &user.principal, new).await
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/app/provider-keys?done=added").into_response(),
        Err(err) => {
            let mut form = ProviderKeyForm {
                provider: f.provider,
                name: f.name,
                base_url: f.base_url,
                ..ProviderKeyForm::default()
            };
            let message = Some(err.message().to_owned());
            match err.field() {
                Some("name") => form.name_error = message,
                Some("api_key") => form.key_error = message,
                Some("base_url") => form.base_url_error = message,
                _ => form.error = message,
            }
            provider_keys_page(&state, &user, form, None, err.status()).await
        }
    }
}

/// `POST /app/provider-keys/{id}/delete`.
pub async fn delete_provider_key(
    State(state): State<ConsoleState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(b): Form<CsrfForm>,
) -> Response {
    let action = async {
        user.principal.require(Role::Admin)?;
        let id: CredentialId = id
            .parse()
            .map_err(|_| ApiError::not_found("provider key"))?;
        provider_keys::delete(&state, &user.principal, id).await
    };
    act(&user, &b.csrf, "/app/provider-keys?done=deleted", action).await
}

/// A posted rotation: the new key.
#[derive(Deserialize)]
pub struct RotateFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    api_key: String,
}

/// `POST /app/provider-keys/{id}/rotate`: replaces the secret, keeping name, id and routes.
pub async fn rotate_provider_key(
    State(state): State<ConsoleState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(f): Form<RotateFields>,
) -> Response {
    let action = async {
        let id: CredentialId = id
            .parse()
            .map_err(|_| ApiError::not_found("provider key"))?;
        let changes = KeyChanges {
            name: None,
            api_key: Some(f.api_key),
            base_url: None,
        };
        provider_keys::update(&state, &user.principal, id, changes)
            .await
            .map(|_| ())
    };
    act(&user, &f.csrf, "/app/provider-keys?done=rotated", action).await
}

async fn api_keys_page(
    state: &ConsoleState,
    user: &WebUser,
    form: ApiKeyForm,
    created: Option<Created>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let (org, role) = match user.principal.org() {
        Ok(o) => o,
        Err(e) => return error_page(&e),
    };
    let (keys, teams) =
        match tokio::try_join!(state.store.gateway_keys(org), state.store.teams(org)) {
            Ok(x) => x,
            Err(e) => return error_page(&e.into()),
        };
    let team_name = |id: TeamId| {
        teams
            .iter()
            .find(|t| t.id == id)
            .map_or_else(String::new, |t| t.name.clone())
    };
    let page = ApiKeysPage {
        chrome: chrome(state, user).await,
        keys: keys
            .into_iter()
            .map(|k| ApiKeyRow {
                id: k.id,
                team: team_name(k.team_id),
                name: k.name,
                hint: k.hint,
                last_used: k.last_used_at.map_or_else(
                    || "never".to_owned(),
                    |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
                ),
                status: if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                },
                active: k.revoked_at.is_none(),
            })
            .collect(),
        teams: teams
            .iter()
            .map(|t| (t.id.to_string(), t.name.clone()))
            .collect(),
        can_edit: role.at_least(Role::Member),
        form,
        created,
        notice,
    };
    render(status, &page)
}

/// `GET /app/api-keys`.
pub async fn api_keys(
    State(state): State<ConsoleState>,
    user: WebUser,
    Query(q): Query<Done>,
) -> Response {
    api_keys_page(
        &state,
        &user,
        ApiKeyForm::default(),
        None,
        notice(q.done),
        StatusCode::OK,
    )
    .await
}

/// `POST /app/api-keys`: the answer shows the secret once, with snippets to paste.
pub async fn create_api_key(
    State(state): State<ConsoleState>,
    user: WebUser,
    Form(f): Form<ApiKeyFields>,
) -> Response {
    if !user.csrf_ok(&f.csrf) {
        return forbidden_form();
    }
    let result = async {
        user.principal.require(Role::Member)?;
        let team: TeamId = if f.team == "new" || f.team.is_empty() {
            // Creating a team needs the admin role, as on the API.
            teams::create(&state, &user.principal, "new_team", &f.new_team)
                .await?
                .id
        } else {
            f.team.parse().map_err(|_| ApiError::not_found("team"))?
        };
        let new = NewKey {
            name: &f.name,
            team,
        };
        api_keys::create(&state, &user.principal, new).await
    }
    .await;
    match result {
        Ok((key, minted)) => {
            let created = Created {
                name: key.name,
                key: minted.secret.into_inner(),
                base: state.settings.public_url.trim_end_matches('/').to_owned(),
            };
            api_keys_page(
                &state,
                &user,
                ApiKeyForm::default(),
                Some(created),
                None,
                StatusCode::CREATED,
            )
            .await
        }
        Err(err) => {
            let mut form = ApiKeyForm {
                name: f.name,
                team: f.team,
                new_team: f.new_team,
                ..ApiKeyForm::default()
            };
            let message = Some(err.message().to_owned());
            match err.field() {
                Some("name") => form.name_error = message,
                Some("new_team") => form.team_error = message,
                _ => form.error = message,
            }
            api_keys_page(&state, &user, form, None, None, err.status()).await
        }
    }
}

/// `POST /app/api-keys/{id}/revoke`.
pub async fn revoke_api_key(
    State(state): State<ConsoleState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(b): Form<CsrfForm>,
) -> Response {
    let action = async {
        user.principal.require(Role::Member)?;
        let id: GatewayKeyId = id.parse().map_err(|_| ApiError::not_found("API key"))?;
        api_keys::revoke(&state, &user.principal, id)
            .await
            .map(|_| ())
    };
    act(&user, &b.csrf, "/app/api-keys?done=revoked", action).await
}
