//! Members, roles and invitations by link ([`crate::service::members`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use flo2_core::{InviteId, Role, UserId};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::service::members::{self, InviteRequest, InviteView, MemberView};
use crate::service::organizations::OrganizationView;
use crate::ConsoleState;

/// A role change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    role: Role,
}

/// An invitation token to accept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvite {
    token: String,
}

/// Members of the current organization.
#[utoipa::path(get, path = "/members", tag = "members",
    responses((status = 200, body = [MemberView]), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    members::list(&state, &principal).await.map(Json)
}

/// Change a member's role (admin or owner).
#[utoipa::path(patch, path = "/members/{user_id}", tag = "members", request_body = RoleChange,
    params(("user_id" = UserId, Path, description = "Member's user id")),
    responses((status = 200, body = MemberView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn change_role(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(user): ApiPath<UserId>,
    ApiJson(req): ApiJson<RoleChange>,
) -> Result<Json<MemberView>, ApiError> {
    members::change_role(&state, &principal, user, req.role)
        .await
        .map(Json)
}

/// Remove a member (admin or owner), or leave the organization yourself.
#[utoipa::path(delete, path = "/members/{user_id}", tag = "members",
    params(("user_id" = UserId, Path, description = "Member's user id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn remove(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(user): ApiPath<UserId>,
) -> Result<StatusCode, ApiError> {
    members::remove(&state, &principal, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invitations of the current organization.
#[utoipa::path(get, path = "/invites", tag = "members",
    responses((status = 200, body = [InviteView])), security(("bearer" = [])))]
pub async fn list_invites(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<InviteView>>, ApiError> {
    members::invites(&state, &principal).await.map(Json)
}

/// Invite someone by link (admin or owner). The token is shown in this answer only.
#[utoipa::path(post, path = "/invites", tag = "members", request_body = InviteRequest,
    responses((status = 201, body = InviteView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_invite(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<InviteRequest>,
) -> Result<(StatusCode, Json<InviteView>), ApiError> {
    let view = members::create_invite(&state, &principal, req).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Withdraw a pending invitation (admin or owner).
#[utoipa::path(delete, path = "/invites/{id}", tag = "members",
    params(("id" = InviteId, Path, description = "Invitation id")),
    responses((status = 204), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn revoke_invite(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiPath(id): ApiPath<InviteId>,
) -> Result<StatusCode, ApiError> {
    members::revoke_invite(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept an invitation: join its organization and make it the session's current one.
#[utoipa::path(post, path = "/invites/accept", tag = "members", request_body = AcceptInvite,
    responses((status = 200, body = OrganizationView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn accept_invite(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiJson(req): ApiJson<AcceptInvite>,
) -> Result<Json<OrganizationView>, ApiError> {
    members::accept_invite(&state, &principal, &req.token)
        .await
        .map(Json)
}
