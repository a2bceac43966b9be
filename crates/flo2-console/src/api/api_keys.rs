//! Gateway keys ("API keys"): what apps send to the data plane. Shown once, stored as hashes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use flo2_core::{GatewayKeyId, OrgId, Role, TeamId};
use flo2_store::{GatewayKey, NewGatewayKey, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::{validate, ConsoleState};

/// A gateway key as listed (never the key itself).
#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    id: GatewayKeyId,
    name: String,
    team_id: TeamId,
    /// Reminder of the key, e.g. `flo2_Ab3d…x9Zq`.
    hint: String,
    created_at: DateTime<Utc>,
    /// Updated in batches, so it may lag by a few seconds.
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<GatewayKey> for ApiKeyView {
    fn from(k: GatewayKey) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name,
            team_id: k.team_id,
            hint: k.hint,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new gateway key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// Unique among the organization's active keys.
    name: String,
    /// The team the key belongs to (and is billed to).
    team_id: TeamId,
}

/// A created key: the only answer that contains `key`.
#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    view: ApiKeyView,
    /// The key. Store it now: flo2 keeps only its hash and cannot show it again.
    key: String,
}

fn key_err(e: StoreError) -> ApiError {
    ApiError::from_store("API key", e)
}

/// Gateway keys of the current organization, newest first, revoked ones included.
#[utoipa::path(get, path = "/api-keys", tag = "api-keys",
    responses((status = 200, body = [ApiKeyView])), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    let keys = state.store.gateway_keys(org).await?;
    Ok(Json(keys.into_iter().map(Into::into).collect()))
}

/// Create a gateway key for a team (member or higher).
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let org = principal.require(Role::Member)?;
    let (created, minted) = mint_key(&state, &principal, org, &req.name, req.team_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            view: created.into(),
            key: minted.secret.into_inner(),
        }),
    ))
}

/// Mints a gateway key for a team of `org`; the secret is in the second value, shown once.
pub(crate) async fn mint_key(
    state: &ConsoleState,
    principal: &Principal,
    org: OrgId,
    name: &str,
    team: TeamId,
) -> Result<(flo2_store::GatewayKey, flo2_vault::gateway_key::MintedKey), ApiError> {
    let name = validate::name("name", name)?;
    state
        .store
        .team(org, team)
        .await
        .map_err(|e| ApiError::from_store("team", e))?;
    let minted = flo2_vault::gateway_key::mint();
    let created = state
        .store
        .create_gateway_key(
            org,
            &NewGatewayKey {
                name,
                team_id: team,
                key_hash: minted.hash.0.to_vec(),
                hint: minted.hint.clone(),
                created_by: Some(principal.user),
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::InvalidReference => ApiError::not_found("team"),
            other => key_err(other),
        })?;
    audit::record(
        state,
        principal,
        org,
        "api_key.created",
        Target::new("api_key", created.id),
        serde_json::json!({"name": created.name, "hint": created.hint, "team_id": created.team_id}),
    )
    .await;
    Ok((created, minted))
}

/// One gateway key.
#[utoipa::path(get, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = GatewayKeyId, Path, description = "API key id")),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(id): ApiPath<GatewayKeyId>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    let key = state.store.gateway_key(org, id).await.map_err(key_err)?;
    Ok(Json(key.into()))
}

/// Revoke a gateway key (member or higher); it stops working at once and stays listed.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys",
    params(("id" = GatewayKeyId, Path, description = "API key id")),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(id): ApiPath<GatewayKeyId>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let org = principal.require(Role::Member)?;
    let key = revoke_key(&state, &principal, org, id).await?;
    Ok(Json(key.into()))
}

/// Revokes one of `org`'s gateway keys and records it (the API and the dashboard revoke here).
pub(crate) async fn revoke_key(
    state: &ConsoleState,
    principal: &Principal,
    org: OrgId,
    id: GatewayKeyId,
) -> Result<GatewayKey, ApiError> {
    let key = state
        .store
        .revoke_gateway_key(org, id)
        .await
        .map_err(key_err)?;
    audit::record(
        state,
        principal,
        org,
        "api_key.revoked",
        Target::new("api_key", key.id),
        serde_json::json!({"name": key.name, "hint": key.hint, "team_id": key.team_id}),
    )
    .await;
    Ok(key)
}
