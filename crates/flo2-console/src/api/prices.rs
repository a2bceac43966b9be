//! Prices: the catalog's list prices and the organization's effective-dated overrides
//! ([`crate::service::prices`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::service::prices::{self, NewPrice, PriceQuery, PriceView};
use crate::ConsoleState;

/// The catalog's list prices and the organization's overrides.
#[utoipa::path(get, path = "/prices", tag = "prices", params(PriceQuery),
    responses((status = 200, body = [PriceView]), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiQuery(filter): ApiQuery<PriceQuery>,
) -> Result<Json<Vec<PriceView>>, ApiError> {
    prices::list(&state, &principal, filter).await.map(Json)
}

/// Set an organization price for a model from a point in time (admin or owner).
#[utoipa::path(post, path = "/prices", tag = "prices", request_body = NewPrice,
    responses((status = 201, body = PriceView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<NewPrice>,
) -> Result<(StatusCode, Json<PriceView>), ApiError> {
    let view = prices::create(&state, &principal, req).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Delete one of the organization's prices (admin or owner). Calls from then on are costed at
/// the next price in effect, or the catalog's.
#[utoipa::path(delete, path = "/prices/{id}", tag = "prices",
    params(("id" = Uuid, Path, description = "Price id (the `id` of an organization entry)")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    prices::delete(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
