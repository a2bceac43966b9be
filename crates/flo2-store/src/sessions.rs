//! Console login sessions. The signed token names a session row, so logout and password
//! changes can revoke tokens before they expire.

use chrono::{DateTime, Utc};
use flo2_core::{OrgId, SessionId, UserId};

use crate::pool::on_pool;
use crate::types::{DbTime, DbUuid};
use crate::{Store, StoreError};

/// A stored session.
#[derive(Clone, Debug)]
pub struct Session {
    /// Its id (the token's `sid` claim).
    pub id: SessionId,
    /// Who is logged in.
    pub user_id: UserId,
    /// The organization the session is working in.
    pub org_id: Option<OrgId>,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
    /// Set by logout or a password change.
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: DbUuid,
    user_id: DbUuid,
    org_id: Option<DbUuid>,
    expires_at: DbTime,
    revoked_at: Option<DbTime>,
}

impl Store {
    /// Starts a session for `user` working in `org`.
    pub async fn create_session(
        &self,
        user: UserId,
        org: Option<OrgId>,
        expires_at: DateTime<Utc>,
    ) -> Result<Session, StoreError> {
        let id = SessionId::new();
        on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO sessions (id, user_id, org_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(DbUuid::from(id))
        .bind(DbUuid::from(user))
        .bind(org.map(DbUuid::from))
        .bind(DbTime::now())
        .bind(DbTime::from(expires_at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(Session {
            id,
            user_id: user,
            org_id: org,
            expires_at,
            revoked_at: None,
        })
    }

    /// The session `id`.
    pub async fn session(&self, id: SessionId) -> Result<Session, StoreError> {
        let r: SessionRow = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT id, user_id, org_id, expires_at, revoked_at FROM sessions WHERE id = $1"
        )
        .bind(DbUuid::from(id))
        .fetch_one(p)
        .await)?;
        Ok(Session {
            id: r.id.into(),
            user_id: r.user_id.into(),
            org_id: r.org_id.map(Into::into),
            expires_at: r.expires_at.0,
            revoked_at: r.revoked_at.map(|t| t.0),
        })
    }

    /// Switches the organization a session works in.
    pub async fn set_session_org(&self, id: SessionId, org: OrgId) -> Result<(), StoreError> {
        on_pool!(&self.pool, p => sqlx::query("UPDATE sessions SET org_id = $2 WHERE id = $1")
            .bind(DbUuid::from(id))
            .bind(DbUuid::from(org))
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends a session (logout).
    pub async fn revoke_session(&self, id: SessionId) -> Result<(), StoreError> {
        on_pool!(&self.pool, p => sqlx::query(
            "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(DbUuid::from(id))
        .bind(DbTime::now())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
