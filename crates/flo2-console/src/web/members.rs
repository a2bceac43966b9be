//! The organization page: switch between your organizations or create one, members and their
//! roles, invitation links, and teams; plus `/invite`, where an invited user joins. Reads come
//! from the store; every write goes through [`crate::service`], so the role and owner rules are
//! the API's own.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use flo2_core::{OrgId, Role, UserId};
use serde::Deserialize;

use super::account::chrome;
use super::session::{self, WebUser};
use super::{forbidden_form, render, Chrome};
use crate::error::ApiError;
use crate::service::members::{self, InviteRequest};
use crate::service::{organizations, teams};
use crate::ConsoleState;

/// One of the user's organizations.
pub struct OrgRow {
    id: String,
    name: String,
    role: String,
    current: bool,
}

/// A member.
pub struct MemberRow {
    id: UserId,
    email: String,
    role: String,
    joined: String,
    me: bool,
}

/// An invitation.
pub struct InviteRow {
    id: String,
    role: String,
    email: String,
    status: &'static str,
    expires: String,
    pending: bool,
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    chrome: Chrome,
    organization: String,
    organizations: Vec<OrgRow>,
    members: Vec<MemberRow>,
    invites: Vec<InviteRow>,
    teams: Vec<(String, String, String)>,
    roles: Vec<&'static str>,
    invite_roles: Vec<&'static str>,
    can_admin: bool,
    invite_link: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    chrome: Chrome,
    logged_in: bool,
    error: Option<String>,
}

/// `?done=...`.
#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// Any posted form: its CSRF token and its other fields as strings.
#[derive(Deserialize)]
pub struct Fields {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    rest: std::collections::HashMap<String, String>,
}

impl Fields {
    fn get(&self, k: &str) -> String {
        self.rest.get(k).cloned().unwrap_or_default()
    }
}

/// The role a form names.
fn role(text: &str) -> Result<Role, ApiError> {
    text.parse::<Role>()
        .map_err(|_| ApiError::invalid_field("role", format!("`role`: {text:?} is not a role")))
}

fn day(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

async fn page(
    state: &ConsoleState,
    user: &WebUser,
    invite_link: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let (org, role) = match user.principal.org() {
        Ok(o) => o,
        Err(e) => return super::error_page(&e),
    };
    let can_admin = role.at_least(Role::Admin);
    let loaded = async {
        let orgs = state.store.memberships(user.principal.user).await?;
        let members = state.store.members(org).await?;
        let invites = if can_admin {
            state.store.invites(org).await?
        } else {
            Vec::new()
        };
        let teams = state.store.teams(org).await?;
        Ok::<_, flo2_store::StoreError>((orgs, members, invites, teams))
    }
    .await;
    let (orgs, members, invites, teams) = match loaded {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "loading the organization page failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let now = chrono::Utc::now();
    let chrome = chrome(state, user).await;
    let page = MembersPage {
        organization: chrome.organization.clone().unwrap_or_default(),
        chrome,
        organizations: orgs
            .into_iter()
            .map(|m| OrgRow {
                current: m.organization.id == org,
                id: m.organization.id.to_string(),
                name: m.organization.name,
                role: m.role.to_string(),
            })
            .collect(),
        members: members
            .into_iter()
            .map(|m| MemberRow {
                me: m.user_id == user.principal.user,
                id: m.user_id,
                email: m.email,
                role: m.role.to_string(),
                joined: day(m.joined_at),
            })
            .collect(),
        invites: invites
            .into_iter()
            .map(|i| {
                let status = if i.accepted_at.is_some() {
                    "accepted"
                } else if i.revoked_at.is_some() {
                    "revoked"
                } else if i.expires_at <= now {
                    "expired"
                } else {
                    "pending"
                };
                InviteRow {
                    id: i.id.to_string(),
                    role: i.role.to_string(),
                    email: i.email.unwrap_or_else(|| "anyone with the link".to_owned()),
                    status,
                    expires: day(i.expires_at),
                    pending: status == "pending",
                }
            })
            .collect(),
        teams: teams
            .into_iter()
            .map(|t| (t.id.to_string(), t.name, day(t.created_at)))
            .collect(),
        // Only an owner may hand out the owner role (the API enforces it too).
        roles: Role::ALL
            .iter()
            .filter(|r| role == Role::Owner || **r != Role::Owner)
            .map(|r| r.as_str())
            .collect(),
        invite_roles: Role::ALL
            .iter()
            .filter(|r| role == Role::Owner || **r != Role::Owner)
            .map(|r| r.as_str())
            .collect(),
        can_admin,
        invite_link,
        notice,
        error,
    };
    render(status, &page)
}

/// `GET /app/members`.
pub async fn show(
    State(state): State<ConsoleState>,
    user: WebUser,
    Query(q): Query<Done>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("role") => Some("Role changed.".to_owned()),
        Some("removed") => Some("Member removed; their access ended at once.".to_owned()),
        Some("revoked") => Some("Invitation revoked.".to_owned()),
        Some("team") => Some("Team created.".to_owned()),
        Some("team-deleted") => Some("Team deleted, with its API keys.".to_owned()),
        Some("switched") => Some("Switched organization.".to_owned()),
        Some("created") => Some("Organization created; you own it and work in it now.".to_owned()),
        _ => None,
    };
    page(&state, &user, None, notice, None, StatusCode::OK).await
}

/// Runs a write if the form is genuine: back to the page with `done`, or the page with the error.
async fn write(
    state: &ConsoleState,
    user: &WebUser,
    csrf: &str,
    done: &str,
    action: impl std::future::Future<Output = Result<(), ApiError>>,
) -> Response {
    if !user.csrf_ok(csrf) {
        return forbidden_form();
    }
    match action.await {
        Ok(()) => Redirect::to(&format!("/app/members?done={done}")).into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => super::error_page(&e),
        Err(e) => {
            page(
                state,
                user,
                None,
                None,
                Some(e.message().to_owned()),
                e.status(),
            )
            .await
        }
    }
}

/// `POST /app/members/{user}/role`.
pub async fn change_role(
    State(state): State<ConsoleState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let action = async {
        let id: UserId = id.parse().map_err(|_| ApiError::not_found("member"))?;
        let role = role(&f.get("role"))?;
        members::change_role(&state, &user.principal, id, role)
            .await
            .map(|_| ())
    };
    write(&state, &user, &f.csrf, "role", action).await
}

/// `POST /app/members/{user}/remove`.
pub async fn remove(
    State(state): State<ConsoleState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let action = async {
        let id: UserId = id.parse().map_err(|_| ApiError::not_found("member"))?;
        members::remove(&state, &user.principal, id).await
    };
    write(&state, &user, &f.csrf, "removed", action).await
}

/// `POST /app/invites`: the page shows the link once.
pub async fn create_invite(
    State(state): State<ConsoleState>,
    user: WebUser,
    Form(f): Form<Fields>,
) -> Response {
    if !user.csrf_ok(&f.csrf) {
        return forbidden_form();
    }
    let email = Some(f.get("email")).filter(|e| !e.trim().is_empty());
    let result = async {
        let req = InviteRequest {
            role: role(&f.get("role"))?,
            email,
            expires_in_hours: None,
        };
        members::create_invite(&state, &user.principal, req).await
    }
    .await;
    match result {
        Ok(view) => page(&state, &user, view.url, None, None, StatusCode::CREATED).await,
        Err(e) => {
            page(
                &state,
                &user,
                None,
                None,
                Some(e.message().to_owned()),
                e.status(),
            )
            .await
        }
    }
}

/// `POST /app/invites/{id}/revoke`.
pub async fn revoke_invite(
    State(state): State<ConsoleState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let action = async {
        let id = id.parse().map_err(|_| ApiError::not_found("invitation"))?;
        members::revoke_invite(&state, &user.principal, id).await
    };
    write(&state, &user, &f.csrf, "revoked", action).await
}

/// `POST /app/teams`.
pub async fn create_team(
    State(state): State<ConsoleState>,
    user: WebUser,
    Form(f): Form<Fields>,
) -> Response {
    let action = async {
        teams::create(&state, &user.principal, "name", &f.get("name"))
            .await
            .map(|_| ())
    };
    write(&state, &user, &f.csrf, "team", action).await
}

/// `POST /app/teams/{id}/delete`.
pub async fn delete_team(
    State(state): State<ConsoleState>,
    user: WebUser,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let action = async {
        let id = id.parse().map_err(|_| ApiError::not_found("team"))?;
        teams::delete(&state, &user.principal, id).await
    };
    write(&state, &user, &f.csrf, "team-deleted", action).await
}

/// `POST /app/organization/switch`.
pub async fn switch(
    State(state): State<ConsoleState>,
    user: WebUser,
    Form(f): Form<Fields>,
) -> Response {
    let action = async {
        let to: OrgId = f
            .get("organization_id")
            .parse()
            .map_err(|_| ApiError::not_found("organization"))?;
        organizations::switch(&state, &user.principal, to)
            .await
            .map(|_| ())
    };
    write(&state, &user, &f.csrf, "switched", action).await
}

/// `POST /app/organizations`: a new organization, which the session then works in.
pub async fn create_organization(
    State(state): State<ConsoleState>,
    user: WebUser,
    Form(f): Form<Fields>,
) -> Response {
    let action = async {
        let created = organizations::create(&state, &user.principal, &f.get("name")).await?;
        organizations::switch(&state, &user.principal, created.id)
            .await
            .map(|_| ())
    };
    write(&state, &user, &f.csrf, "created", action).await
}

/// `GET /invite`: the page an invitation link opens (the token is in the URL fragment).
pub async fn invite_page(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    let token = session::session_token(&state, &headers).map(str::to_owned);
    let user = match token {
        Some(t) => crate::auth::Principal::from_token(&state, &t).await.ok(),
        None => None,
    };
    let chrome = match &user {
        Some(p) => {
            let w = WebUser {
                csrf: state.guard.session_token(&p.session.to_string()),
                principal: p.clone(),
            };
            chrome(&state, &w).await
        }
        None => Chrome::anonymous(),
    };
    render(
        StatusCode::OK,
        &InvitePage {
            chrome,
            logged_in: user.is_some(),
            error: None,
        },
    )
}

/// `POST /invite`: joins the organization and works in it.
pub async fn accept(
    State(state): State<ConsoleState>,
    user: WebUser,
    Form(f): Form<Fields>,
) -> Response {
    if !user.csrf_ok(&f.csrf) {
        return forbidden_form();
    }
    let result =
        async { members::accept_invite(&state, &user.principal, &f.get("token")).await }.await;
    match result {
        Ok(_) => Redirect::to("/app").into_response(),
        Err(e) => {
            let page = InvitePage {
                chrome: chrome(&state, &user).await,
                logged_in: true,
                error: Some(e.message().to_owned()),
            };
            render(e.status(), &page)
        }
    }
}
