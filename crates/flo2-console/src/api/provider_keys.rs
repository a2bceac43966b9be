//! The provider-key vault: tenants' upstream API keys, write-only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use flo2_core::{CredentialId, OrgId, ProviderKind, Role, Secret};
use flo2_store::{Credential, NewCredential};
use flo2_vault::DataKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::{base_url_address, validate, ConsoleState};

/// A provider key as listed: never the secret, only its hint.
#[derive(Serialize, ToSchema)]
pub struct ProviderKeyView {
    id: CredentialId,
    provider: ProviderKind,
    name: String,
    /// The last characters of the key, e.g. `…a1b2`.
    hint: String,
    /// Custom base URL, if any.
    base_url: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Credential> for ProviderKeyView {
    fn from(c: Credential) -> Self {
        ProviderKeyView {
            id: c.id,
            provider: c.provider,
            name: c.name,
            hint: c.hint,
            base_url: c.base_url,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A provider key to store.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProviderKey {
    provider: ProviderKind,
    /// Unique within the organization.
    name: String,
    /// The provider's API key; write-only.
    api_key: String,
    /// Overrides the provider's default base URL; required for `openai-compatible`.
    #[serde(default)]
    base_url: Option<String>,
}

/// Changes to a provider key. Sending `api_key` rotates it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProviderKey {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    /// A URL to set, or `null` to return to the provider's default.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    base_url: Option<Option<String>>,
}

/// Distinguishes an absent field (no change) from an explicit `null` (clear it).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

fn key_err(e: flo2_store::StoreError) -> ApiError {
    ApiError::from_store("provider key", e)
}

/// The organization's data key, unwrapped with the configured master keyring.
async fn data_key(state: &ConsoleState, org: OrgId) -> Result<DataKey, ApiError> {
    let stored = state.store.data_key(org).await?;
    Ok(state
        .keyring
        .unwrap_stored(org, &stored.key_id, stored.wrapped)?)
}

/// A base URL to store: well-formed, required where the provider has no default, and not
/// reaching a private address (`docs/ssrf.md`).
async fn check_base_url(
    state: &ConsoleState,
    provider: ProviderKind,
    base_url: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let url = base_url.map(validate::base_url).transpose()?;
    match &url {
        None if provider.default_base_url().is_none() => {
            return Err(ApiError::invalid(format!(
                "`base_url` is required for provider `{provider}`"
            )));
        }
        None => {}
        Some(url) => {
            base_url_address::check(url, state.settings.allow_private_upstreams).await?;
        }
    }
    Ok(url)
}

/// Encrypts and stores a provider key for `org` (the API and the dashboard both add keys here).
pub(crate) async fn store_key(
    state: &ConsoleState,
    principal: &Principal,
    org: OrgId,
    provider: ProviderKind,
    name: &str,
    api_key: String,
    base_url: Option<&str>,
) -> Result<Credential, ApiError> {
    let name = validate::name("name", name)?;
    let secret: Secret<String> = validate::api_key(api_key)?;
    let base_url = check_base_url(state, provider, base_url).await?;
    let id = CredentialId::new();
    let ciphertext = data_key(state, org)
        .await?
        .seal_credential(org, id, &secret)?;
    let created = state
        .store
        .create_credential(
            org,
            &NewCredential {
                id,
                provider,
                name,
                base_url,
                ciphertext,
                hint: validate::hint(&secret),
            },
        )
        .await
        .map_err(key_err)?;
    audit::record(
        state,
        principal,
        org,
        "provider_key.created",
        Target::new("provider_key", created.id),
        serde_json::json!({"provider": created.provider, "name": created.name, "hint": created.hint, "base_url": created.base_url}),
    )
    .await;
    Ok(created)
}

/// Deletes one of `org`'s provider keys and records it (the API and the dashboard delete here).
pub(crate) async fn delete_key(
    state: &ConsoleState,
    principal: &Principal,
    org: OrgId,
    id: CredentialId,
) -> Result<(), ApiError> {
    let key = state.store.credential(org, id).await.map_err(key_err)?;
    state
        .store
        .delete_credential(org, id)
        .await
        .map_err(key_err)?;
    audit::record(
        state,
        principal,
        org,
        "provider_key.deleted",
        Target::new("provider_key", id),
        serde_json::json!({"provider": key.provider, "name": key.name, "hint": key.hint}),
    )
    .await;
    Ok(())
}

/// Provider keys of the current organization.
#[utoipa::path(get, path = "/provider-keys", tag = "provider-keys",
    responses((status = 200, body = [ProviderKeyView])), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<ProviderKeyView>>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    let keys = state.store.credentials(org).await?;
    Ok(Json(keys.into_iter().map(Into::into).collect()))
}

/// Store a provider key, encrypted (admin or owner).
#[utoipa::path(post, path = "/provider-keys", tag = "provider-keys", request_body = CreateProviderKey,
    responses((status = 201, body = ProviderKeyView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<CreateProviderKey>,
) -> Result<(StatusCode, Json<ProviderKeyView>), ApiError> {
    let org = principal.require(Role::Admin)?;
    let created = store_key(
        &state,
        &principal,
        org,
        req.provider,
        &req.name,
        req.api_key,
        req.base_url.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// One provider key (no secret).
#[utoipa::path(get, path = "/provider-keys/{id}", tag = "provider-keys",
    params(("id" = CredentialId, Path, description = "Provider key id")),
    responses((status = 200, body = ProviderKeyView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(id): ApiPath<CredentialId>,
) -> Result<Json<ProviderKeyView>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    let key = state.store.credential(org, id).await.map_err(key_err)?;
    Ok(Json(key.into()))
}

/// Rename, re-point or rotate a provider key (admin or owner).
#[utoipa::path(patch, path = "/provider-keys/{id}", tag = "provider-keys", request_body = UpdateProviderKey,
    params(("id" = CredentialId, Path, description = "Provider key id")),
    responses((status = 200, body = ProviderKeyView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(id): ApiPath<CredentialId>,
    ApiJson(req): ApiJson<UpdateProviderKey>,
) -> Result<Json<ProviderKeyView>, ApiError> {
    let org = principal.require(Role::Admin)?;
    let current = state.store.credential(org, id).await.map_err(key_err)?;
    let name = req
        .name
        .as_deref()
        .map(|n| validate::name("name", n))
        .transpose()?;
    let changed: Vec<&str> = [
        ("name", req.name.is_some()),
        ("base_url", req.base_url.is_some()),
        ("api_key", req.api_key.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, sent)| sent.then_some(field))
    .collect();
    let base_url = match req.base_url {
        None => None,
        Some(url) => Some(check_base_url(&state, current.provider, url.as_deref()).await?),
    };
    let secret = match req.api_key {
        None => None,
        Some(raw) => {
            let secret = validate::api_key(raw)?;
            let ciphertext = data_key(&state, org)
                .await?
                .seal_credential(org, id, &secret)?;
            Some((ciphertext, validate::hint(&secret)))
        }
    };
    let updated = state
        .store
        .update_credential(
            org,
            id,
            &flo2_store::CredentialUpdate {
                name,
                base_url,
                secret,
            },
        )
        .await
        .map_err(key_err)?;
    // A new secret is a rotation, whatever else changed with it.
    let action = if changed.contains(&"api_key") {
        "provider_key.rotated"
    } else {
        "provider_key.updated"
    };
    audit::record(
        &state,
        &principal,
        org,
        action,
        Target::new("provider_key", id),
        serde_json::json!({
            "changed": changed,
            "provider": updated.provider,
            "name": updated.name,
            "hint": updated.hint,
            "previous_hint": current.hint,
            "base_url": updated.base_url,
        }),
    )
    .await;
    Ok(Json(updated.into()))
}

/// Delete a provider key (admin or owner).
#[utoipa::path(delete, path = "/provider-keys/{id}", tag = "provider-keys",
    params(("id" = CredentialId, Path, description = "Provider key id")),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(id): ApiPath<CredentialId>,
) -> Result<StatusCode, ApiError> {
    let org = principal.require(Role::Admin)?;
    delete_key(&state, &principal, org, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
