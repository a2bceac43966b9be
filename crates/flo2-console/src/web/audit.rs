//! The audit log page (`/app/audit`, admins and owners): filters, a table of changes newest
//! first, and a link to the next page, over the same reader as `GET /api/v1/audit-log`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDateTime;
use flo2_core::Role;
use serde::Deserialize;

use super::account::chrome;
use super::session::WebUser;
use super::usage::encode;
use super::{error_page, render, Chrome};
use crate::error::ApiError;
use crate::service::audit_log::{self, AuditQuery};
use crate::ConsoleState;

/// The page's filters as the form sends them (times as `datetime-local`, UTC).
#[derive(Default, Deserialize)]
pub struct AuditForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    cursor: String,
}

/// One entry as shown.
pub struct AuditRow {
    date: String,
    time: String,
    actor: String,
    action: String,
    target_type: String,
    target_id: Option<String>,
    address: String,
    details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    q: AuditForm,
    /// (user id, email, selected).
    members: Vec<(String, String, bool)>,
    /// (action, selected).
    actions: Vec<(&'static str, bool)>,
    rows: Vec<AuditRow>,
    next: Option<String>,
    error: Option<String>,
}

fn time(field: &str, text: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .map(|t| Some(t.and_utc()))
        .map_err(|_| ApiError::invalid_field(field, format!("`{field}` must be a date and time")))
}

impl AuditForm {
    fn query(&self) -> Result<AuditQuery, ApiError> {
        Ok(AuditQuery {
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            actor: Some(self.actor.trim())
                .filter(|a| !a.is_empty())
                .map(|a| {
                    a.parse()
                        .map_err(|_| ApiError::invalid_field("actor", "`actor` is not a member"))
                })
                .transpose()?,
            action: Some(self.action.trim().to_owned()).filter(|a| !a.is_empty()),
            limit: None,
            cursor: Some(self.cursor.trim().to_owned()).filter(|c| !c.is_empty()),
        })
    }

    /// The link to the page after this one: the same filters and `cursor`.
    fn next_link(&self, cursor: &str) -> String {
        let pairs = [
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            ("actor", self.actor.as_str()),
            ("action", self.action.as_str()),
            ("cursor", cursor),
        ];
        let query: Vec<String> = pairs
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v.trim())))
            .collect();
        format!("/app/audit?{}", query.join("&"))
    }
}

/// `GET /app/audit`.
pub async fn page(
    State(state): State<ConsoleState>,
    user: WebUser,
    Query(q): Query<AuditForm>,
) -> Response {
    let org = match user.principal.require(Role::Admin) {
        Ok(org) => org,
        Err(e) => return error_page(&e),
    };
    let members = match state.store.members(org).await {
        Ok(m) => m,
        Err(e) => return error_page(&e.into()),
    };
    let read = match q.query() {
        Ok(query) => audit_log::page(&state, &user.principal, &query).await,
        Err(e) => Err(e),
    };
    let (entries, next, error, status) = match read {
        Ok((entries, next)) => (entries, next, None, StatusCode::OK),
        Err(e) => (Vec::new(), None, Some(e.message().to_owned()), e.status()),
    };
    let rows = entries
        .into_iter()
        .map(|e| AuditRow {
            date: e.at.format("%Y-%m-%d").to_string(),
            time: e.at.format("%H:%M:%S").to_string(),
            actor: e
                .actor_email
                .unwrap_or_else(|| "nobody signed in".to_owned()),
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            address: e.client_address.unwrap_or_else(|| "—".to_owned()),
            details: e.details.to_string(),
        })
        .collect();
    let page = AuditPage {
        chrome: chrome(&state, &user).await,
        members: members
            .into_iter()
            .map(|m| {
                let id = m.user_id.to_string();
                let selected = id == q.actor.trim();
                (id, m.email, selected)
            })
            .collect(),
        actions: crate::audit::ACTIONS
            .iter()
            .map(|a| (*a, *a == q.action.trim()))
            .collect(),
        rows,
        next: next.map(|c| q.next_link(&c)),
        error,
        q,
    };
    render(status, &page)
}
