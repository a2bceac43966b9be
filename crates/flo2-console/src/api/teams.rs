//! Teams of the current organization.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use flo2_core::{OrgId, Role, TeamId};
use flo2_store::Team;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::{validate, ConsoleState};

/// A team.
#[derive(Serialize, ToSchema)]
pub struct TeamView {
    id: TeamId,
    name: String,
    created_at: DateTime<Utc>,
}

impl From<Team> for TeamView {
    fn from(t: Team) -> Self {
        TeamView {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
        }
    }
}

/// A team name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamRequest {
    /// Unique within the organization.
    name: String,
}

fn team_err(e: flo2_store::StoreError) -> ApiError {
    ApiError::from_store("team", e)
}

/// Teams of the current organization.
#[utoipa::path(get, path = "/teams", tag = "teams",
    responses((status = 200, body = [TeamView]), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<TeamView>>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    let teams = state.store.teams(org).await?;
    Ok(Json(teams.into_iter().map(Into::into).collect()))
}

/// Create a team (admin or owner).
#[utoipa::path(post, path = "/teams", tag = "teams", request_body = TeamRequest,
    responses((status = 201, body = TeamView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<TeamRequest>,
) -> Result<(StatusCode, Json<TeamView>), ApiError> {
    let org = principal.require(Role::Admin)?;
    let name = validate::name("name", &req.name)?;
    let team = create_team(&state, &principal, org, &name).await?;
    Ok((StatusCode::CREATED, Json(team.into())))
}

/// Creates a team with a validated `name` and records it (the API and the dashboard's key form).
pub(crate) async fn create_team(
    state: &ConsoleState,
    principal: &Principal,
    org: OrgId,
    name: &str,
) -> Result<Team, ApiError> {
    let team = state.store.create_team(org, name).await.map_err(team_err)?;
    audit::record(
        state,
        principal,
        org,
        "team.created",
        Target::new("team", team.id),
        serde_json::json!({"name": team.name}),
    )
    .await;
    Ok(team)
}

/// One team.
#[utoipa::path(get, path = "/teams/{id}", tag = "teams",
    params(("id" = TeamId, Path, description = "Team id")),
    responses((status = 200, body = TeamView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(id): ApiPath<TeamId>,
) -> Result<Json<TeamView>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    let team = state.store.team(org, id).await.map_err(team_err)?;
    Ok(Json(team.into()))
}

/// Rename a team (admin or owner).
#[utoipa::path(patch, path = "/teams/{id}", tag = "teams", request_body = TeamRequest,
    params(("id" = TeamId, Path, description = "Team id")),
    responses((status = 200, body = TeamView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn rename(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(id): ApiPath<TeamId>,
    ApiJson(req): ApiJson<TeamRequest>,
) -> Result<Json<TeamView>, ApiError> {
    let org = principal.require(Role::Admin)?;
    let name = validate::name("name", &req.name)?;
    let before = state.store.team(org, id).await.map_err(team_err)?;
    let team = state
        .store
        .rename_team(org, id, &name)
        .await
        .map_err(team_err)?;
    audit::record(
        &state,
        &principal,
        org,
        "team.renamed",
        Target::new("team", team.id),
        serde_json::json!({"from": before.name, "to": team.name}),
    )
    .await;
    Ok(Json(team.into()))
}

/// Delete a team and its gateway keys, which stop working at once (admin or owner).
#[utoipa::path(delete, path = "/teams/{id}", tag = "teams",
    params(("id" = TeamId, Path, description = "Team id")),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(id): ApiPath<TeamId>,
) -> Result<StatusCode, ApiError> {
    let org = principal.require(Role::Admin)?;
    let team = state.store.team(org, id).await.map_err(team_err)?;
    // Its keys go with it: name them, since they stop working.
    let keys: Vec<serde_json::Value> = state
        .store
        .gateway_keys(org)
        .await?
        .into_iter()
        .filter(|k| k.team_id == id)
        .map(|k| serde_json::json!({"id": k.id, "hint": k.hint, "name": k.name, "was_active": k.revoked_at.is_none()}))
        .collect();
    state.store.delete_team(org, id).await.map_err(team_err)?;
    audit::record(
        &state,
        &principal,
        org,
        "team.deleted",
        Target::new("team", id),
        serde_json::json!({"name": team.name, "api_keys_deleted": keys}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
