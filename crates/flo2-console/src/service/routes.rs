//! Routes: named virtual models. Saving checks the name, the policy and its pinned credentials.

use flo2_core::route::{validate_name, RouteError};
use flo2_core::{Role, RoutePolicy};
use flo2_store::Route;

use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::ConsoleState;

fn route_err(e: flo2_store::StoreError) -> ApiError {
    ApiError::from_store("route", e)
}

/// A policy refused as malformed (400), naming its field.
pub(crate) fn invalid_policy(e: RouteError) -> ApiError {
    ApiError::invalid_field(e.field, e.message)
}

/// Routes of the caller's organization.
pub(crate) async fn list(
    state: &ConsoleState,
    principal: &Principal,
) -> Result<Vec<Route>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    state.store.routes(org).await.map_err(route_err)
}

/// One route.
pub(crate) async fn get(
    state: &ConsoleState,
    principal: &Principal,
    name: &str,
) -> Result<Route, ApiError> {
    let org = principal.require(Role::Viewer)?;
    state.store.route(org, name).await.map_err(route_err)
}

/// Creates or replaces the route `name` (admin or owner) after checking the name, the policy
/// (model ids that are URL syntax are 422, the rest 400) and its pinned credentials, and records
/// it; true when it was created.
pub(crate) async fn save(
    state: &ConsoleState,
    principal: &Principal,
    name: &str,
    policy: &RoutePolicy,
) -> Result<(Route, bool), ApiError> {
    let org = principal.require(Role::Admin)?;
    validate_name(name).map_err(|e| ApiError::invalid_field("name", format!("route name: {e}")))?;
    policy
        .check_model_ids()
        .map_err(|e| ApiError::refused_field(e.field, e.message))?;
    policy.validate().map_err(invalid_policy)?;
    check_credentials(state, org, policy).await?;
    let (route, created) = state
        .store
        .put_route(org, name, policy)
        .await
        .map_err(route_err)?;
    let action = if created {
        "route.created"
    } else {
        "route.updated"
    };
    audit::record(
        state,
        principal,
        org,
        action,
        Target::new("route", &route.name),
        serde_json::json!({"id": route.id, "policy": route.policy}),
    )
    .await;
    Ok((route, created))
}

/// Deletes a route (admin or owner) and records it.
pub(crate) async fn delete(
    state: &ConsoleState,
    principal: &Principal,
    name: &str,
) -> Result<(), ApiError> {
    let org = principal.require(Role::Admin)?;
    state
        .store
        .delete_route(org, name)
        .await
        .map_err(route_err)?;
    audit::record(
        state,
        principal,
        org,
        "route.deleted",
        Target::new("route", name),
        serde_json::json!({}),
    )
    .await;
    Ok(())
}

/// Pinned credentials must be the organization's keys for the target's provider. Another
/// tenant's id reads exactly like an unknown one.
async fn check_credentials(
    state: &ConsoleState,
    org: flo2_core::OrgId,
    policy: &RoutePolicy,
) -> Result<(), ApiError> {
    let credentials = state.store.credentials(org).await?;
    for (i, target) in policy.targets.iter().enumerate() {
        let field = format!("targets[{i}].credentials");
        for id in &target.credentials {
            match credentials.iter().find(|c| c.id == *id) {
                Some(c) if c.provider == target.provider => {}
                Some(_) => {
                    return Err(ApiError::invalid_field(
                        &field,
                        format!("`{field}`: {id} is not a {} key", target.provider),
                    ))
                }
                None => {
                    return Err(ApiError::invalid_field(
                        &field,
                        format!("`{field}`: no provider key {id} in this organization"),
                    ))
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> RoutePolicy {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn policy_refusals_carry_their_field() {
        let cases = [
            (r#"{"strategy":"priority","targets":[]}"#, "targets"),
            (
                r#"{"strategy":"priority","targets":[{"provider":"openai","model":"m","weight":0}]}"#,
                "targets[0].weight",
            ),
            (
                r#"{"strategy":"race","targets":[{"provider":"openai","model":"m"}]}"#,
                "targets",
            ),
            (
                r#"{"strategy":"priority","targets":[{"provider":"openai","model":"m"}],"fallback":{"deadline_ms":1}}"#,
                "fallback.deadline_ms",
            ),
            (
                r#"{"strategy":"priority","targets":[{"provider":"openai","model":"m"}],"max_input_per_mtok":"x"}"#,
                "max_input_per_mtok",
            ),
        ];
        for (json, field) in cases {
            let err = invalid_policy(policy(json).validate().unwrap_err());
            assert_eq!(err.field(), Some(field), "{json}");
            assert_eq!(err.code(), "invalid_field", "{json}");
        }
    }
}
