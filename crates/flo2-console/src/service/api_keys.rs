//! Gateway keys ("API keys"): what apps send to the data plane. Minted here, shown once, stored
//! as hashes.

use flo2_core::{GatewayKeyId, Role, TeamId};
use flo2_store::{GatewayKey, NewGatewayKey, StoreError};
use flo2_vault::gateway_key::MintedKey;

use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::{validate, ConsoleState};

fn key_err(e: StoreError) -> ApiError {
    ApiError::from_store("API key", e)
}

/// A key to mint.
pub(crate) struct NewKey<'a> {
    /// Unique among the organization's active keys.
    pub name: &'a str,
    /// The team it belongs to.
    pub team: TeamId,
}

/// Gateway keys of the caller's organization, newest first, revoked ones included.
pub(crate) async fn list(
    state: &ConsoleState,
    principal: &Principal,
) -> Result<Vec<GatewayKey>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    Ok(state.store.gateway_keys(org).await?)
}

/// One gateway key.
pub(crate) async fn get(
    state: &ConsoleState,
    principal: &Principal,
    id: GatewayKeyId,
) -> Result<GatewayKey, ApiError> {
    let org = principal.require(Role::Viewer)?;
    state.store.gateway_key(org, id).await.map_err(key_err)
}

/// Mints a gateway key for a team (member or higher); the secret is in the second value, shown
/// once.
pub(crate) async fn create(
    state: &ConsoleState,
    principal: &Principal,
    new: NewKey<'_>,
) -> Result<(GatewayKey, MintedKey), ApiError> {
    let org = principal.require(Role::Member)?;
    let name = validate::name("name", new.name)?;
    state
        .store
        .team(org, new.team)
        .await
        .map_err(|e| ApiError::from_store("team", e))?;
    let minted = flo2_vault::gateway_key::mint();
    let created = state
        .store
        .create_gateway_key(
            org,
            &NewGatewayKey {
                name,
                team_id: new.team,
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

/// Revokes a gateway key (member or higher) and records it; it stops working at once.
pub(crate) async fn revoke(
    state: &ConsoleState,
    principal: &Principal,
    id: GatewayKeyId,
) -> Result<GatewayKey, ApiError> {
    let org = principal.require(Role::Member)?;
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
