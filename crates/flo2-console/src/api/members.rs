//! Members, roles and invitations by link.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use flo2_core::{InviteId, OrgId, Role, UserId};
use flo2_store::{Invite, Member, NewInvite, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::organizations::OrganizationView;
use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::{validate, ConsoleState};

/// A member of the current organization.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    user_id: UserId,
    email: String,
    role: Role,
    joined_at: DateTime<Utc>,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        MemberView {
            user_id: m.user_id,
            email: m.email,
            role: m.role,
            joined_at: m.joined_at,
        }
    }
}

/// A role change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    role: Role,
}

/// A new invitation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// Role the invitee gets; inviting an owner needs the owner role.
    role: Role,
    /// Who it is for (informational; no mail is sent).
    #[serde(default)]
    email: Option<String>,
    /// Validity in hours, 1 to 720; defaults to FLO2_INVITE_TTL_HOURS.
    #[serde(default)]
    expires_in_hours: Option<u32>,
}

/// State of an invitation.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InviteStatus {
    /// Can still be accepted.
    Pending,
    /// Used.
    Accepted,
    /// Withdrawn.
    Revoked,
    /// Past its expiry.
    Expired,
}

/// An invitation. `token` and `url` appear only in the answer that creates it.
#[derive(Serialize, ToSchema)]
pub struct InviteView {
    id: InviteId,
    role: Role,
    email: Option<String>,
    status: InviteStatus,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

impl From<Invite> for InviteView {
    fn from(i: Invite) -> Self {
        let status = if i.accepted_at.is_some() {
            InviteStatus::Accepted
        } else if i.revoked_at.is_some() {
            InviteStatus::Revoked
        } else if i.expires_at <= Utc::now() {
            InviteStatus::Expired
        } else {
            InviteStatus::Pending
        };
        InviteView {
            id: i.id,
            role: i.role,
            email: i.email,
            status,
            created_at: i.created_at,
            expires_at: i.expires_at,
            token: None,
            url: None,
        }
    }
}

/// An invitation token to accept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvite {
    token: String,
}

fn member_err(e: StoreError) -> ApiError {
    ApiError::from_store("member", e)
}

/// Members of the current organization.
#[utoipa::path(get, path = "/members", tag = "members",
    responses((status = 200, body = [MemberView]), (status = 401, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    let members = state.store.members(org).await?;
    Ok(Json(members.into_iter().map(Into::into).collect()))
}

/// Owners alone may grant, change or remove the owner role.
fn check_owner_rules(caller: Role, target: Role, new: Option<Role>) -> Result<(), ApiError> {
    let touches_owner = target == Role::Owner || new == Some(Role::Owner);
    if touches_owner && caller != Role::Owner {
        return Err(ApiError::forbidden(
            "only an owner can grant, change or remove the owner role",
        ));
    }
    Ok(())
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
    let org = principal.require(Role::Admin)?;
    let (_, caller) = principal.org()?;
    let target = state.store.member(org, user).await.map_err(member_err)?;
    check_owner_rules(caller, target.role, Some(req.role))?;
    state
        .store
        .set_role(org, user, req.role)
        .await
        .map_err(member_err)?;
    let member = state.store.member(org, user).await.map_err(member_err)?;
    audit::record(
        &state,
        &principal,
        org,
        "member.role_changed",
        Target::new("member", user),
        serde_json::json!({"email": member.email, "from": target.role, "to": member.role}),
    )
    .await;
    Ok(Json(member.into()))
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
    let (org, caller) = principal.org()?;
    let target = state.store.member(org, user).await.map_err(member_err)?;
    if user != principal.user {
        principal.require(Role::Admin)?;
        check_owner_rules(caller, target.role, None)?;
    }
    // Removing a member leaves the gateway keys they created active: they belong to teams, and
    // apps depend on them. The entry names them, so an admin can revoke them if they should go.
    let keys: Vec<serde_json::Value> = state
        .store
        .gateway_keys(org)
        .await?
        .into_iter()
        .filter(|k| k.created_by == Some(user) && k.revoked_at.is_none())
        .map(|k| serde_json::json!({"id": k.id, "hint": k.hint, "name": k.name, "team_id": k.team_id, "status": "active"}))
        .collect();
    state
        .store
        .remove_member(org, user)
        .await
        .map_err(member_err)?;
    let action = if user == principal.user {
        "member.left"
    } else {
        "member.removed"
    };
    audit::record(
        &state,
        &principal,
        org,
        action,
        Target::new("member", user),
        serde_json::json!({
            "email": target.email,
            "role": target.role,
            "api_keys_created": keys,
            "api_keys_policy": "kept_active",
        }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Invitations of the current organization.
#[utoipa::path(get, path = "/invites", tag = "members",
    responses((status = 200, body = [InviteView])), security(("bearer" = [])))]
pub async fn list_invites(
    State(state): State<ConsoleState>,
    principal: Principal,
) -> Result<Json<Vec<InviteView>>, ApiError> {
    let org = principal.require(Role::Admin)?;
    let invites = state.store.invites(org).await?;
    Ok(Json(invites.into_iter().map(Into::into).collect()))
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
    let org = principal.require(Role::Admin)?;
    let (_, caller) = principal.org()?;
    check_owner_rules(caller, Role::Viewer, Some(req.role))?;
    let email = req.email.as_deref().map(validate::email).transpose()?;
    let hours = match req.expires_in_hours {
        Some(h @ 1..=720) => i64::from(h),
        Some(_) => return Err(ApiError::invalid("`expires_in_hours` must be 1 to 720")),
        None => state.settings.invite_ttl.num_hours(),
    };
    let token = flo2_vault::token::generate("flo2_inv_");
    let invite = state
        .store
        .create_invite(
            org,
            &NewInvite {
                role: req.role,
                email,
                token_hash: flo2_vault::token::hash(token.expose()).to_vec(),
                expires_at: Utc::now() + Duration::hours(hours),
                created_by: principal.user,
            },
        )
        .await?;
    audit::record(
        &state,
        &principal,
        org,
        "invitation.created",
        Target::new("invitation", invite.id),
        serde_json::json!({"role": invite.role, "email": invite.email, "expires_at": invite.expires_at}),
    )
    .await;
    let mut view = InviteView::from(invite);
    view.url = Some(format!(
        "{}/invite#{}",
        state.settings.public_url.trim_end_matches('/'),
        token.expose()
    ));
    view.token = Some(token.into_inner());
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
    let org = principal.require(Role::Admin)?;
    state
        .store
        .revoke_invite(org, id)
        .await
        .map_err(|e| ApiError::from_store("invitation", e))?;
    audit::record(
        &state,
        &principal,
        org,
        "invitation.revoked",
        Target::new("invitation", id),
        serde_json::json!({}),
    )
    .await;
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
    let hash = flo2_vault::token::hash(req.token.trim());
    let (org, role): (OrgId, Role) = match state.store.accept_invite(&hash, principal.user).await {
        Ok(accepted) => accepted,
        Err(StoreError::Conflict) => {
            return Err(ApiError::conflict(
                "you are already a member of that organization",
            ))
        }
        Err(e) => return Err(ApiError::from_store("invitation", e)),
    };
    audit::record(
        &state,
        &principal,
        org,
        "invitation.accepted",
        Target::new("member", principal.user),
        serde_json::json!({"role": role}),
    )
    .await;
    state.store.set_session_org(principal.session, org).await?;
    let o = state.store.organization(org).await?;
    Ok(Json(OrganizationView {
        id: o.id,
        name: o.name,
        role,
        created_at: o.created_at,
    }))
}
