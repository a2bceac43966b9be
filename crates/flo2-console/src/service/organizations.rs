//! Organizations: list, create, rename, and switch the session's current one.

use chrono::{DateTime, Utc};
use flo2_core::{OrgId, Role};
use flo2_store::{Membership, NewOrganization, StoredDataKey};
use flo2_vault::DataKey;
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::ApiError;
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
pub(crate) async fn list(
    state: &ConsoleState,
    principal: &Principal,
) -> Result<Vec<OrganizationView>, ApiError> {
    let orgs = state.store.memberships(principal.user).await?;
    Ok(orgs.into_iter().map(Into::into).collect())
}

/// Creates another organization; the caller becomes its owner. The session stays where it is.
pub(crate) async fn create(
    state: &ConsoleState,
    principal: &Principal,
    name: &str,
) -> Result<OrganizationView, ApiError> {
    let name = validate::name("name", name)?;
    let org = new_organization(state, name)?;
    state
        .store
        .create_organization(principal.user, &org)
        .await?;
    let created = state.store.organization(org.id).await?;
    audit::record(
        state,
        principal,
        created.id,
        "organization.created",
        Target::new("organization", created.id),
        serde_json::json!({"name": created.name}),
    )
    .await;
    Ok(OrganizationView {
        id: created.id,
        name: created.name,
        role: Role::Owner,
        created_at: created.created_at,
    })
}

/// The session's current organization.
pub(crate) async fn current(
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

/// Renames the current organization (admin or owner) and records it.
pub(crate) async fn rename(
    state: &ConsoleState,
    principal: &Principal,
    name: &str,
) -> Result<OrganizationView, ApiError> {
    let org = principal.require(Role::Admin)?;
    let name = validate::name("name", name)?;
    let before = state.store.organization(org).await?;
    state.store.rename_organization(org, &name).await?;
    audit::record(
        state,
        principal,
        org,
        "organization.renamed",
        Target::new("organization", org),
        serde_json::json!({"from": before.name, "to": name}),
    )
    .await;
    current(state, principal).await
}

/// Makes another of the caller's organizations the session's current one.
pub(crate) async fn switch(
    state: &ConsoleState,
    principal: &Principal,
    to: OrgId,
) -> Result<OrganizationView, ApiError> {
    let role = state
        .store
        .role_of(to, principal.user)
        .await
        .map_err(|e| ApiError::from_store("organization", e))?;
    state.store.set_session_org(principal.session, to).await?;
    let org = state.store.organization(to).await?;
    Ok(OrganizationView {
        id: org.id,
        name: org.name,
        role,
        created_at: org.created_at,
    })
}
