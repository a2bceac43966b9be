//! Routes: named virtual models (`GET /routes`, `GET/PUT/DELETE /routes/{name}`). A request whose
//! `model` is a route name is served by the route's strategy, fallback and race settings
//! ([`crate::service::routes`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use flo2_core::RoutePolicy;
use flo2_store::Route;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::service::routes;
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

/// Routes of the current organization.
#[utoipa::path(get, path = "/routes", tag = "routes",
    responses((status = 200, body = [RouteView]), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<RouteView>>, ApiError> {
    let routes = routes::list(&state, &principal).await?;
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
    let route = routes::get(&state, &principal, &name).await?;
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
    let (route, created) = routes::save(&state, &principal, &name, &policy).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(route.into())))
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
    routes::delete(&state, &principal, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
