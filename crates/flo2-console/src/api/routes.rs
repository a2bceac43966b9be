//! Routes: named virtual models (`GET /routes`, `GET/PUT/DELETE /routes/{name}`). A request whose
//! `model` is a route name is served by the route's strategy, fallback and race settings.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use flo2_core::route::validate_name;
use flo2_core::{OrgId, Role, RoutePolicy};
use flo2_store::Route;
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::ConsoleState;

/// A route.
#[derive(Serialize, ToSchema)]
pub struct RouteView {
    name: String,
    #[serde(flatten)]
    policy: RoutePolicy,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Route> for RouteView {
    fn from(r: Route) -> Self {
        RouteView {
            name: r.name,
            policy: r.policy,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn route_err(e: flo2_store::StoreError) -> ApiError {
    ApiError::from_store("route", e)
}

/// Routes of the current organization.
#[utoipa::path(get, path = "/routes", tag = "routes",
    responses((status = 200, body = [RouteView]), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<RouteView>>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    let routes = state.store.routes(org).await.map_err(route_err)?;
    Ok(Json(routes.into_iter().map(Into::into).collect()))
}

/// One route.
#[utoipa::path(get, path = "/routes/{name}", tag = "routes",
    params(("name" = String, Path, description = "Route name")),
    responses((status = 200, body = RouteView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<RouteView>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    let route = state.store.route(org, &name).await.map_err(route_err)?;
    Ok(Json(route.into()))
}

/// Create or replace a route (admin or owner). 201 when created, 200 when replaced.
#[utoipa::path(put, path = "/routes/{name}", tag = "routes", request_body = RoutePolicy,
    params(("name" = String, Path, description = "Route name: a-z, 0-9, '.', '_', '-'")),
    responses((status = 200, body = RouteView), (status = 201, body = RouteView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(policy): ApiJson<RoutePolicy>,
) -> Result<(StatusCode, Json<RouteView>), ApiError> {
    let org = principal.require(Role::Admin)?;
    validate_name(&name).map_err(|e| ApiError::invalid(format!("route name: {e}")))?;
    policy
        .check_model_ids()
        .map_err(|e| ApiError::unprocessable(e.0))?;
    policy.validate().map_err(|e| ApiError::invalid(e.0))?;
    let (route, created) = save_route(&state, &principal, org, &name, &policy).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(route.into())))
}

/// Stores a validated route after checking its pinned credentials, and records it (the API and
/// the dashboard save here); true when it was created.
pub(crate) async fn save_route(
    state: &ConsoleState,
    principal: &Principal,
    org: OrgId,
    name: &str,
    policy: &RoutePolicy,
) -> Result<(Route, bool), ApiError> {
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

/// Deletes one of `org`'s routes and records it (the API and the dashboard delete here).
pub(crate) async fn remove_route(
    state: &ConsoleState,
    principal: &Principal,
    org: OrgId,
    name: &str,
) -> Result<(), ApiError> {
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
pub(crate) async fn check_credentials(
    state: &ConsoleState,
    org: flo2_core::OrgId,
    policy: &RoutePolicy,
) -> Result<(), ApiError> {
    let credentials = state.store.credentials(org).await?;
    for (i, target) in policy.targets.iter().enumerate() {
        for id in &target.credentials {
            match credentials.iter().find(|c| c.id == *id) {
                Some(c) if c.provider == target.provider => {}
                Some(_) => {
                    return Err(ApiError::invalid(format!(
                        "`targets[{i}].credentials`: {id} is not a {} key",
                        target.provider
                    )))
                }
                None => {
                    return Err(ApiError::invalid(format!(
                        "`targets[{i}].credentials`: no provider key {id} in this organization"
                    )))
                }
            }
        }
    }
    Ok(())
}

/// Delete a route (admin or owner). Requests naming it get 404 from then on.
#[utoipa::path(delete, path = "/routes/{name}", tag = "routes",
    params(("name" = String, Path, description = "Route name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let org = principal.require(Role::Admin)?;
    remove_route(&state, &principal, org, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
