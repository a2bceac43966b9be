//! `GET /audit-log`: the organization's control-plane changes, newest first, a page at a time
//! ([`crate::service::audit_log`]).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use flo2_core::UserId;
use flo2_store::AuditEntry;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::service::audit_log::{self, AuditQuery};
use crate::ConsoleState;

/// Who made a change.
#[derive(Serialize, ToSchema)]
pub struct ActorView {
    /// User id; `null` for changes nobody signed in made (a throttled login).
    id: Option<UserId>,
    /// Their email when the change was made.
    email: Option<String>,
}

/// One change.
#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    id: Uuid,
    time: DateTime<Utc>,
    actor: ActorView,
    /// A stable dotted name such as `provider_key.created` (the README lists them all).
    action: String,
    /// The kind of object changed (`api_key`, `member`, `price`, ...).
    target_type: String,
    /// Its id (a route's name for routes).
    target_id: Option<String>,
    /// The address the change came from.
    client_address: Option<String>,
    /// What else the change needs to be understood; keys appear by id and hint, never a secret.
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        AuditEntryView {
            id: e.id,
            time: e.at,
            actor: ActorView {
                id: e.actor_id,
                email: e.actor_email,
            },
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            client_address: e.client_address,
            details: e.details,
        }
    }
}

/// A page of entries.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    next_cursor: Option<String>,
}

/// The organization's control-plane changes, newest first (admin or owner).
#[utoipa::path(get, path = "/audit-log", tag = "audit-log", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let (entries, next_cursor) = audit_log::page(&state, &principal, &query).await?;
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(AuditEntryView::from).collect(),
        next_cursor,
    }))
}
