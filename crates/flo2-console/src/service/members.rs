//! Members, roles and invitations by link. Owners alone may grant, change or remove the owner
//! role.

use chrono::{DateTime, Duration, Utc};
use flo2_core::{InviteId, OrgId, Role, UserId};
use flo2_store::{Invite, Member, NewInvite, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::organizations::OrganizationView;
use crate::audit::{self, Target};
use crate::auth::Principal;
use crate::error::ApiError;
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

/// A new invitation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// Role the invitee gets; inviting an owner needs the owner role.
    pub(crate) role: Role,
    /// Who it is for (informational; no mail is sent).
    #[serde(default)]
    pub(crate) email: Option<String>,
    /// Validity in hours, 1 to 720; defaults to FLO2_INVITE_TTL_HOURS.
    #[serde(default)]
    pub(crate) expires_in_hours: Option<u32>,
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
    pub(crate) url: Option<String>,
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

fn member_err(e: StoreError) -> ApiError {
    ApiError::from_store("member", e)
}

/// Members of the caller's organization.
pub(crate) async fn list(
    state: &ConsoleState,
    principal: &Principal,
) -> Result<Vec<MemberView>, ApiError> {
    let org = principal.require(Role::Viewer)?;
    let members = state.store.members(org).await?;
    Ok(members.into_iter().map(Into::into).collect())
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

/// Changes a member's role (admin or owner) and records it.
pub(crate) async fn change_role(
    state: &ConsoleState,
    principal: &Principal,
    user: UserId,
    role: Role,
) -> Result<MemberView, ApiError> {
    let org = principal.require(Role::Admin)?;
    let (_, caller) = principal.org()?;
    let target = state.store.member(org, user).await.map_err(member_err)?;
    check_owner_rules(caller, target.role, Some(role))?;
    state
        .store
        .set_role(org, user, role)
        .await
        .map_err(member_err)?;
    let member = state.store.member(org, user).await.map_err(member_err)?;
    audit::record(
        state,
        principal,
        org,
        "member.role_changed",
        Target::new("member", user),
        serde_json::json!({"email": member.email, "from": target.role, "to": member.role}),
    )
    .await;
    Ok(member.into())
}

/// Removes a member (admin or owner), or lets the caller leave, and records it.
pub(crate) async fn remove(
    state: &ConsoleState,
    principal: &Principal,
    user: UserId,
) -> Result<(), ApiError> {
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
        state,
        principal,
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
    Ok(())
}

/// Invitations of the caller's organization (admin or owner).
pub(crate) async fn invites(
    state: &ConsoleState,
    principal: &Principal,
) -> Result<Vec<InviteView>, ApiError> {
    let org = principal.require(Role::Admin)?;
    let invites = state.store.invites(org).await?;
    Ok(invites.into_iter().map(Into::into).collect())
}

/// Makes an invitation link (admin or owner); its token is in this answer only.
pub(crate) async fn create_invite(
    state: &ConsoleState,
    principal: &Principal,
    req: InviteRequest,
) -> Result<InviteView, ApiError> {
    let org = principal.require(Role::Admin)?;
    let (_, caller) = principal.org()?;
    check_owner_rules(caller, Role::Viewer, Some(req.role))?;
    let email = req.email.as_deref().map(validate::email).transpose()?;
    let hours = match req.expires_in_hours {
        Some(h @ 1..=720) => i64::from(h),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "expires_in_hours",
                "`expires_in_hours` must be 1 to 720",
            ))
        }
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
        state,
        principal,
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
    Ok(view)
}

/// Withdraws a pending invitation (admin or owner) and records it.
pub(crate) async fn revoke_invite(
    state: &ConsoleState,
    principal: &Principal,
    id: InviteId,
) -> Result<(), ApiError> {
    let org = principal.require(Role::Admin)?;
    state
        .store
        .revoke_invite(org, id)
        .await
        .map_err(|e| ApiError::from_store("invitation", e))?;
    audit::record(
        state,
        principal,
        org,
        "invitation.revoked",
        Target::new("invitation", id),
        serde_json::json!({}),
    )
    .await;
    Ok(())
}

/// Joins the invitation's organization and makes it the session's current one.
pub(crate) async fn accept_invite(
    state: &ConsoleState,
    principal: &Principal,
    token: &str,
) -> Result<OrganizationView, ApiError> {
    let hash = flo2_vault::token::hash(token.trim());
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
        state,
        principal,
        org,
        "invitation.accepted",
        Target::new("member", principal.user),
        serde_json::json!({"role": role}),
    )
    .await;
    state.store.set_session_org(principal.session, org).await?;
    let o = state.store.organization(org).await?;
    Ok(OrganizationView {
        id: o.id,
        name: o.name,
        role,
        created_at: o.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owners_touch_the_owner_role() {
        assert!(check_owner_rules(Role::Admin, Role::Member, Some(Role::Admin)).is_ok());
        let e = check_owner_rules(Role::Admin, Role::Owner, Some(Role::Member)).unwrap_err();
        assert_eq!((e.code(), e.field()), ("forbidden", None));
        assert!(check_owner_rules(Role::Admin, Role::Member, Some(Role::Owner)).is_err());
        assert!(check_owner_rules(Role::Owner, Role::Owner, None).is_ok());
    }
}
