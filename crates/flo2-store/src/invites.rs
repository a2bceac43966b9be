//! Invitations: single-use link tokens (stored as hashes) that add a user to an organization.

use chrono::{DateTime, Utc};
use flo2_core::{InviteId, OrgId, Role, UserId};

use crate::orgs::insert_membership;
use crate::pool::{on_pool, BeginWrite as _};
use crate::types::{parse_role, DbTime, DbUuid};
use crate::{Store, StoreError};

/// A stored invitation (never its token).
#[derive(Clone, Debug)]
pub struct Invite {
    /// Its id.
    pub id: InviteId,
    /// The role the invitee gets.
    pub role: Role,
    /// Who it was meant for, if the inviter said.
    pub email: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// After this it can no longer be accepted.
    pub expires_at: DateTime<Utc>,
    /// When it was used.
    pub accepted_at: Option<DateTime<Utc>>,
    /// When it was withdrawn.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An invitation to store.
#[derive(Clone, Debug)]
pub struct NewInvite {
    /// The role the invitee gets.
    pub role: Role,
    /// Optional addressee.
    pub email: Option<String>,
    /// SHA-256 of the link token.
    pub token_hash: Vec<u8>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// The inviter.
    pub created_by: UserId,
}

#[derive(sqlx::FromRow)]
struct InviteRow {
    id: DbUuid,
    role: String,
    email: Option<String>,
    created_at: DbTime,
    expires_at: DbTime,
    accepted_at: Option<DbTime>,
    revoked_at: Option<DbTime>,
}

impl TryFrom<InviteRow> for Invite {
    type Error = StoreError;
    fn try_from(r: InviteRow) -> Result<Self, StoreError> {
        Ok(Invite {
            id: r.id.into(),
            role: parse_role(&r.role)?,
            email: r.email,
            created_at: r.created_at.0,
            expires_at: r.expires_at.0,
            accepted_at: r.accepted_at.map(|t| t.0),
            revoked_at: r.revoked_at.map(|t| t.0),
        })
    }
}

const COLUMNS: &str =
    "SELECT id, role, email, created_at, expires_at, accepted_at, revoked_at FROM invites";

impl Store {
    /// Stores an invitation to `org`.
    pub async fn create_invite(&self, org: OrgId, new: &NewInvite) -> Result<Invite, StoreError> {
        let id = InviteId::new();
        on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO invites (id, org_id, token_hash, role, email, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(DbUuid::from(id))
        .bind(DbUuid::from(org))
        .bind(&new.token_hash)
        .bind(new.role.as_str())
        .bind(&new.email)
        .bind(DbUuid::from(new.created_by))
        .bind(DbTime::now())
        .bind(DbTime::from(new.expires_at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        self.invite(org, id).await
    }

    /// `org`'s invitations, newest first.
    pub async fn invites(&self, org: OrgId) -> Result<Vec<Invite>, StoreError> {
        let rows: Vec<InviteRow> = on_pool!(&self.pool, p => sqlx::query_as(
            &format!("{COLUMNS} WHERE org_id = $1 ORDER BY created_at DESC, id DESC")
        )
        .bind(DbUuid::from(org))
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(Invite::try_from).collect()
    }

    /// One invitation of `org`.
    pub async fn invite(&self, org: OrgId, id: InviteId) -> Result<Invite, StoreError> {
        let row: InviteRow = on_pool!(&self.pool, p => sqlx::query_as(
            &format!("{COLUMNS} WHERE org_id = $1 AND id = $2")
        )
        .bind(DbUuid::from(org))
        .bind(DbUuid::from(id))
        .fetch_one(p)
        .await)?;
        row.try_into()
    }

    /// Withdraws an unused invitation of `org`.
    pub async fn revoke_invite(&self, org: OrgId, id: InviteId) -> Result<(), StoreError> {
        let done = on_pool!(&self.pool, p => sqlx::query(
            "UPDATE invites SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL"
        )
        .bind(DbUuid::from(org))
        .bind(DbUuid::from(id))
        .bind(DbTime::now())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        if done == 0 {
            // Unknown, another tenant's, already used or already withdrawn: all look the same.
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Uses the invitation whose token hashes to `token_hash`: adds `user` to its organization
    /// with its role. `NotFound` for unknown, expired, used or withdrawn tokens; `Conflict` when
    /// the user is already a member.
    pub async fn accept_invite(
        &self,
        token_hash: &[u8],
        user: UserId,
    ) -> Result<(OrgId, Role), StoreError> {
        let now = DbTime::now();
        let accepted = on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await?;
            let found: Option<(DbUuid, DbUuid, String)> = sqlx::query_as(
                "SELECT id, org_id, role FROM invites WHERE token_hash = $1 \
                 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id, org, role)) = found else {
                return Err(StoreError::NotFound);
            };
            let role = parse_role(&role)?;
            // The `accepted_at IS NULL` guard makes a concurrent second use fail.
            let done = sqlx::query("UPDATE invites SET accepted_at = $2, accepted_by = $3 WHERE id = $1 AND accepted_at IS NULL")
                .bind(id)
                .bind(now)
                .bind(DbUuid::from(user))
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            insert_membership!(tx, OrgId::from(org), user, role, now);
            tx.commit().await?;
            (OrgId::from(org), role)
        });
        Ok(accepted)
    }
}
