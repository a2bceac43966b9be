//! Teams of the current organization ([`crate::service::teams`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use flo2_core::TeamId;
use flo2_store::Team;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::service::teams;
use crate::ConsoleState;

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

/// Teams of the current organization.
#[utoipa::path(get, path = "/teams", tag = "teams",
    responses((status = 200, body = [TeamView]), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<TeamView>>, ApiError> {
    let teams = teams::list(&state, &principal).await?;
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
    let team = teams::create(&state, &principal, "name", &req.name).await?;
    Ok((StatusCode::CREATED, Json(team.into())))
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
    let team = teams::get(&state, &principal, id).await?;
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
    let team = teams::rename(&state, &principal, id, &req.name).await?;
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
    teams::delete(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
