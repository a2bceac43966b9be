//! Organizations: list, create, rename, and switch the session's current one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use flo2_core::{OrgId, Role};
use flo2_store::{Membership, NewOrganization, StoredDataKey};
use flo2_vault::DataKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::{validate, ConsoleState};

/// An organization and the caller's role in it.
#[derive(Clone, Serialize, ToSchema)]
pub struct OrganizationView {
    /// Organization id.
    pub id: OrgId,
    /// Display name.
    pub name: String,
    /// The caller's role.
    pub role: Role,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<Membership> for OrganizationView {
    fn from(m: Membership) -> Self {
        OrganizationView {
            id: m.organization.id,
            name: m.organization.name,
            role: m.role,
            created_at: m.organization.created_at,
        }
    }
}

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

/// A new organization with a fresh data key wrapped by the primary master key.
pub(crate) fn new_organization(
    state: &ConsoleState,
    name: String,
) -> Result<NewOrganization, ApiError> {
    let id = OrgId::new();
    let wrapped = state.keyring.wrap(id, &DataKey::generate())?;
    Ok(NewOrganization {
        id,
        name,
        data_key: StoredDataKey {
            key_id: wrapped.key_id.to_string(),
            wrapped: wrapped.blob,
        },
    })
}

/// Every organization the caller belongs to.
#[utoipa::path(get, path = "/organizations", tag = "organizations",
    responses((status = 200, body = [OrganizationView]), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<OrganizationView>>, ApiError> {
    let orgs = state.store.memberships(principal.user).await?;
    Ok(Json(orgs.into_iter().map(Into::into).collect()))
}

/// Create another organization; the caller becomes its owner. The session stays where it is.
#[utoipa::path(post, path = "/organizations", tag = "organizations", request_body = OrganizationName,
    responses((status = 201, body = OrganizationView), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<OrganizationName>,
) -> Result<(StatusCode, Json<OrganizationView>), ApiError> {
    let name = validate::name("name", &req.name)?;
    let org = new_organization(&state, name)?;
    state
        .store
        .create_organization(principal.user, &org)
        .await?;
    let created = state.store.organization(org.id).await?;
    audit::record(
        &state,
        &principal,
        created.id,
        "organization.created",
        Target::new("organization", created.id),
        serde_json::json!({"name": created.name}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(OrganizationView {
            id: created.id,
            name: created.name,
            role: Role::Owner,
            created_at: created.created_at,
        }),
    ))
}

async fn current_view(
    state: &ConsoleState,
    principal: &Principal,
) -> Result<OrganizationView, ApiError> {
    let (id, role) = principal.org()?;
    let org = state.store.organization(id).await?;
    Ok(OrganizationView {
        id: org.id,
        name: org.name,
        role,
        created_at: org.created_at,
    })
}

/// The session's current organization.
#[utoipa::path(get, path = "/organization", tag = "organizations",
    responses((status = 200, body = OrganizationView), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn current(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<OrganizationView>, ApiError> {
    current_view(&state, &principal).await.map(Json)
}

/// Rename the current organization (admin or owner).
#[utoipa::path(patch, path = "/organization", tag = "organizations", request_body = OrganizationName,
    responses((status = 200, body = OrganizationView), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn rename(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<OrganizationName>,
) -> Result<Json<OrganizationView>, ApiError> {
    let org = principal.require(Role::Admin)?;
    let name = validate::name("name", &req.name)?;
    let before = state.store.organization(org).await?;
    state.store.rename_organization(org, &name).await?;
    audit::record(
        &state,
        &principal,
        org,
        "organization.renamed",
        Target::new("organization", org),
        serde_json::json!({"from": before.name, "to": name}),
    )
    .await;
    current_view(&state, &principal).await.map(Json)
}

/// Make another organization the session's current one.
#[utoipa::path(post, path = "/session/organization", tag = "organizations", request_body = SwitchOrganization,
    responses((status = 200, body = OrganizationView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn switch(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<SwitchOrganization>,
) -> Result<Json<OrganizationView>, ApiError> {
    let role = state
        .store
        .role_of(req.organization_id, principal.user)
        .await
        .map_err(|e| ApiError::from_store("organization", e))?;
    state
        .store
        .set_session_org(principal.session, req.organization_id)
        .await?;
    let org = state.store.organization(req.organization_id).await?;
    Ok(Json(OrganizationView {
        id: org.id,
        name: org.name,
        role,
        created_at: org.created_at,
    }))
}
