//! The provider-key vault: tenants' upstream API keys, write-only
//! ([`crate::service::provider_keys`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use flo2_core::{CredentialId, ProviderKind};
use flo2_store::Credential;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::service::provider_keys::{self, KeyChanges, NewProviderKey};
use crate::ConsoleState;

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

/// Provider keys of the current organization.
#[utoipa::path(get, path = "/provider-keys", tag = "provider-keys",
    responses((status = 200, body = [ProviderKeyView])), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<ProviderKeyView>>, ApiError> {
    let keys = provider_keys::list(&state, &principal).await?;
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
    let new = NewProviderKey {
        provider: req.provider,
        name: &req.name,
        api_key: req.api_key,
        base_url: req.base_url.as_deref(),
    };
    let created = provider_keys::create(&state, &principal, new).await?;
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
    let key = provider_keys::get(&state, &principal, id).await?;
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
    let changes = KeyChanges {
        name: req.name,
        api_key: req.api_key,
        base_url: req.base_url,
    };
    let updated = provider_keys::update(&state, &principal, id, changes).await?;
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
    provider_keys::delete(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
