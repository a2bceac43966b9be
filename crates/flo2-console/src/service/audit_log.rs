//! The audit log reader: the organization's control-plane changes, newest first, a page at a
//! time. (Entries are written by [`crate::audit`].)

use base64::Engine as _;
use chrono::{DateTime, Utc};
use flo2_core::{Role, UserId};
use flo2_store::{AuditEntry, AuditFilter};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::error::ApiError;
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

fn encode_cursor(seq: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("audit:{seq}"))
}

fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::invalid_field("cursor", "`cursor` is not a cursor this API gave out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("audit:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)
}

/// One page of the caller's organization's entries for `query` (admin or owner), and the cursor
/// of the next page.
pub(crate) async fn page(
    state: &ConsoleState,
    principal: &Principal,
    query: &AuditQuery,
) -> Result<(Vec<AuditEntry>, Option<String>), ApiError> {
    let org = principal.require(Role::Admin)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("`limit` must be 1 to {MAX_LIMIT}"),
        ));
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_bad_cursor_names_the_cursor() {
        assert_eq!(decode_cursor("junk").unwrap_err().field(), Some("cursor"));
    }

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
