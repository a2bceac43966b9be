//! Organizations: list, create, rename, and switch the session's current one
//! ([`crate::service::organizations`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use flo2_core::OrgId;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::service::organizations::{self, OrganizationView};
use crate::ConsoleState;

/// A name for a new or renamed organization.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationName {
    name: String,
}

/// Which organization the session should work in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchOrganization {
    organization_id: OrgId,
}

/// Every organization the caller belongs to.
#[utoipa::path(get, path = "/organizations", tag = "organizations",
    responses((status = 200, body = [OrganizationView]), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<OrganizationView>>, ApiError> {
    organizations::list(&state, &principal).await.map(Json)
}

/// Create another organization; the caller becomes its owner. The session stays where it is.
#[utoipa::path(post, path = "/organizations", tag = "organizations", request_body = OrganizationName,
    responses((status = 201, body = OrganizationView), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<OrganizationName>,
) -> Result<(StatusCode, Json<OrganizationView>), ApiError> {
    let created = organizations::create(&state, &principal, &req.name).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The session's current organization.
#[utoipa::path(get, path = "/organization", tag = "organizations",
    responses((status = 200, body = OrganizationView), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn current(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<OrganizationView>, ApiError> {
    organizations::current(&state, &principal).await.map(Json)
}

/// Rename the current organization (admin or owner).
#[utoipa::path(patch, path = "/organization", tag = "organizations", request_body = OrganizationName,
    responses((status = 200, body = OrganizationView), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn rename(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<OrganizationName>,
) -> Result<Json<OrganizationView>, ApiError> {
    organizations::rename(&state, &principal, &req.name)
        .await
        .map(Json)
}

/// Make another organization the session's current one.
#[utoipa::path(post, path = "/session/organization", tag = "organizations", request_body = SwitchOrganization,
    responses((status = 200, body = OrganizationView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn switch(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<SwitchOrganization>,
) -> Result<Json<OrganizationView>, ApiError> {
    organizations::switch(&state, &principal, req.organization_id)
        .await
        .map(Json)
}
