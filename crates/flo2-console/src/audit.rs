//! Recording control-plane changes in the organization's audit log.
//!
//! Every handler that changes something calls `record` once the change has succeeded, so a
//! failed change is never recorded. Entries hold ids, names and hints, never a secret.

use std::net::IpAddr;

use flo2_core::{OrgId, UserId};
use flo2_store::NewAuditEntry;
use serde_json::Value;

use crate::auth::Principal;
use crate::ConsoleState;

/// Every action the audit log records (the dashboard's filter offers them; the README lists
/// them with their meaning). Names are stable: scripts filter on them.
pub const ACTIONS: &[&str] = &[
    "account.signed_up",
    "login.throttled",
    "organization.created",
    "organization.renamed",
    "member.role_changed",
    "member.removed",
    "member.left",
    "invitation.created",
    "invitation.revoked",
    "invitation.accepted",
    "team.created",
    "team.renamed",
    "team.deleted",
    "provider_key.created",
    "provider_key.updated",
    "provider_key.rotated",
    "provider_key.deleted",
    "api_key.created",
    "api_key.revoked",
    "price.set",
    "price.deleted",
    "route.created",
    "route.updated",
    "route.deleted",
    "config.entry_skipped",
];

/// What an entry is about: the kind of object and its id.
pub(crate) struct Target<'a> {
    /// `api_key`, `member`, `price`, ...
    pub kind: &'a str,
    /// Its id (or a route's name).
    pub id: Option<String>,
}

impl<'a> Target<'a> {
    /// An object of `kind` with `id`.
    pub fn new(kind: &'a str, id: impl ToString) -> Self {
        Self {
            kind,
            id: Some(id.to_string()),
        }
    }
}

/// Appends an entry for a change `principal` made in `org`. The change has already happened:
/// when the entry cannot be written the error is logged, and the caller's answer stays the
/// change's own.
pub(crate) async fn record(
    state: &ConsoleState,
    principal: &Principal,
    org: OrgId,
    action: &str,
    target: Target<'_>,
    details: Value,
) {
    write(state, org, &entry(principal, action, target, details)).await;
}

/// The entry for a change `principal` makes, for a store write that commits it together with
/// the change.
pub(crate) fn entry(
    principal: &Principal,
    action: &str,
    target: Target<'_>,
    details: Value,
) -> NewAuditEntry {
    NewAuditEntry {
        actor: Some(principal.user),
        action: action.to_owned(),
        target_type: target.kind.to_owned(),
        target_id: target.id,
        client_address: principal.client_address.map(|a| a.to_string()),
        details,
    }
}

/// [`record`] for a change without a signed-in principal (sign-up, a throttled login).
pub(crate) async fn record_as(
    state: &ConsoleState,
    org: OrgId,
    actor: Option<UserId>,
    client_address: Option<String>,
    action: &str,
    target: Target<'_>,
    details: Value,
) {
    let entry = NewAuditEntry {
        actor,
        action: action.to_owned(),
        target_type: target.kind.to_owned(),
        target_id: target.id,
        client_address,
        details,
    };
    write(state, org, &entry).await;
}

/// Appends `entry`; a failure is logged, never the change's answer.
async fn write(state: &ConsoleState, org: OrgId, entry: &NewAuditEntry) {
    if let Err(err) = state.store.record_audit(org, entry).await {
        tracing::error!(%org, action = %entry.action, error = %err, "cannot write the audit log entry");
    }
}

/// Records a login refused by the throttle in each organization of the account it named (if
/// the email belongs to an account). One call from the login path.
pub(crate) async fn login_throttled(state: &ConsoleState, email: &str, address: Option<IpAddr>) {
    // An attacker keeps trying after the lock: one entry per account and address a minute says
    // as much as one per attempt, and the log cannot be grown without bound.
    static SEEN: std::sync::OnceLock<moka::sync::Cache<(String, Option<IpAddr>), ()>> =
        std::sync::OnceLock::new();
    let seen = SEEN.get_or_init(|| {
        moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(std::time::Duration::from_secs(60))
            .build()
    });
    let key = (email.to_owned(), address);
    if seen.contains_key(&key) {
        return;
    }
    seen.insert(key, ());
    let user = match state.store.user_by_email(email).await {
        Ok(user) => user,
        Err(flo2_store::StoreError::NotFound) => return,
        Err(err) => {
            tracing::error!(error = %err, "cannot look up a throttled login's account");
            return;
        }
    };
    let orgs = match state.store.memberships(user.id).await {
        Ok(m) => m,
        Err(err) => {
            tracing::error!(error = %err, "cannot look up a throttled login's organizations");
            return;
        }
    };
    for m in orgs {
        record_as(
            state,
            m.organization.id,
            None,
            address.map(|a| a.to_string()),
            "login.throttled",
            Target::new("user", user.id),
            serde_json::json!({ "email": user.email }),
        )
        .await;
    }
}
