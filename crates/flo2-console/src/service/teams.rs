//! Teams of the caller's organization.

use flo2_core::{Role, TeamId};
use flo2_store::Team;

use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::{validate, ConsoleState};

fn team_err(e: flo2_store::StoreError) -> ApiError {
    ApiError::from_store("team", e)
}

/// Teams of the caller's organization.
pub(crate) async fn list(
    state: &ConsoleState,
    principal: &Principal,
) -> Result<Vec<Team>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    Ok(state.store.teams(org).await?)
}

/// One team.
pub(crate) async fn get(
    state: &ConsoleState,
    principal: &Principal,
    id: TeamId,
) -> Result<Team, ApiError> {
    let org = principal.require(Role::Viewer)?;
    state.store.team(org, id).await.map_err(team_err)
}

/// Creates a team (admin or owner) and records it. `field` is where the name was typed: `name`
/// on the API and the organization page, `new_team` on the API-key form.
pub(crate) async fn create(
    state: &ConsoleState,
    principal: &Principal,
    field: &str,
    name: &str,
) -> Result<Team, ApiError> {
    let org = principal.require(Role::Admin)?;
    let name = validate::name(field, name)?;
    let team = state
        .store
        .create_team(org, &name)
        .await
        .map_err(team_err)?;
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

/// Renames a team (admin or owner) and records it.
pub(crate) async fn rename(
    state: &ConsoleState,
    principal: &Principal,
    id: TeamId,
    name: &str,
) -> Result<Team, ApiError> {
    let org = principal.require(Role::Admin)?;
    let name = validate::name("name", name)?;
    let before = state.store.team(org, id).await.map_err(team_err)?;
    let team = state
        .store
        .rename_team(org, id, &name)
        .await
        .map_err(team_err)?;
    audit::record(
        state,
        principal,
        org,
        "team.renamed",
        Target::new("team", team.id),
        serde_json::json!({"from": before.name, "to": team.name}),
    )
    .await;
    Ok(team)
}

/// Deletes a team and its gateway keys, which stop working at once (admin or owner).
pub(crate) async fn delete(
    state: &ConsoleState,
    principal: &Principal,
    id: TeamId,
) -> Result<(), ApiError> {
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
        state,
        principal,
        org,
        "team.deleted",
        Target::new("team", id),
        serde_json::json!({"name": team.name, "api_keys_deleted": keys}),
    )
    .await;
    Ok(())
}
