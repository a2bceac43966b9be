//! Gateway keys ("API keys"): what apps send to the data plane. Shown once, stored as hashes
//! ([`crate::service::api_keys`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use flo2_core::{GatewayKeyId, TeamId};
use flo2_store::GatewayKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::service::api_keys::{self, NewKey};
use crate::ConsoleState;

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

/// Gateway keys of the current organization, newest first, revoked ones included.
#[utoipa::path(get, path = "/api-keys", tag = "api-keys",
    responses((status = 200, body = [ApiKeyView])), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    let keys = api_keys::list(&state, &principal).await?;
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
    let new = NewKey {
        name: &req.name,
        team: req.team_id,
    };
    let (created, minted) = api_keys::create(&state, &principal, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            view: created.into(),
            key: minted.secret.into_inner(),
        }),
    ))
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
    let key = api_keys::get(&state, &principal, id).await?;
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
    let key = api_keys::revoke(&state, &principal, id).await?;
    Ok(Json(key.into()))
}
