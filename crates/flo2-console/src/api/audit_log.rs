//! `GET /audit-log`: the organization's control-plane changes, newest first, a page at a time.

use axum::extract::State;
use axum::Json;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use flo2_core::{OrgId, Role, UserId};
use flo2_store::{AuditEntry, AuditFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::ConsoleState;

/// Entries per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most entries one page holds.
pub const MAX_LIMIT: u32 = 500;

/// Filters and paging.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Entries before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Entries made by this user (id).
    pub actor: Option<UserId>,
    /// Entries with this action, e.g. `api_key.revoked`.
    pub action: Option<String>,
    /// Entries per page: 1 to 500 (default 50).
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

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

fn encode_cursor(seq: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("audit:{seq}"))
}

fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::invalid("`cursor` is not a cursor this API gave out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("audit:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)
}

/// One page of `org`'s entries for `query` (the API and the dashboard page read here).
pub(crate) async fn page(
    state: &ConsoleState,
    org: OrgId,
    query: &AuditQuery,
) -> Result<(Vec<AuditEntry>, Option<String>), ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "`limit` must be 1 to {MAX_LIMIT}"
        )));
    }
    let filter = AuditFilter {
        from: query.from,
        to: query.to,
        actor: query.actor,
        action: query
            .action
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned),
        before_seq: query.cursor.as_deref().map(decode_cursor).transpose()?,
    };
    // One more than the page holds says whether another page follows.
    let mut entries = state
        .store
        .audit_log(org, &filter, i64::from(limit) + 1)
        .await?;
    let next = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|e| encode_cursor(e.seq))
    } else {
        None
    };
    Ok((entries, next))
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
    let org = principal.require(Role::Admin)?;
    let (entries, next_cursor) = page(&state, org, &query).await?;
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(AuditEntryView::from).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)).ok(), Some(42));
        assert!(decode_cursor("not-a-cursor").is_err());
        assert!(
            decode_cursor(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("x:1")).is_err()
        );
    }
}
