//! Users and organization memberships.

use chrono::{DateTime, Utc};
use flo2_core::{OrgId, Role, UserId};

use crate::pool::{on_pool, BeginWrite as _};
use crate::types::{parse_role, DbTime, DbUuid};
use crate::{Store, StoreError};

/// A user to create. The email must already be normalised (trimmed, lowercased).
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Its id.
    pub id: UserId,
    /// Normalised email, unique across flo2.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// A stored user.
#[derive(Clone)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Normalised email.
    pub email: String,
    /// argon2id PHC string; never leaves the console.
    pub password_hash: String,
    /// When the password last changed; sessions issued before it are void.
    pub password_changed_at: DateTime<Utc>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// A member of an organization.
#[derive(Clone, Debug)]
pub struct Member {
    /// The user.
    pub user_id: UserId,
    /// Their email.
    pub email: String,
    /// Their role here.
    pub role: Role,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: DbUuid,
    email: String,
    password_hash: String,
    password_changed_at: DbTime,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id.into(),
            email: r.email,
            password_hash: r.password_hash,
            password_changed_at: r.password_changed_at.0,
        }
    }
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: DbUuid,
    email: String,
    role: String,
    created_at: DbTime,
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;
    fn try_from(r: MemberRow) -> Result<Self, StoreError> {
        Ok(Member {
            user_id: r.user_id.into(),
            email: r.email,
            role: parse_role(&r.role)?,
            joined_at: r.created_at.0,
        })
    }
}

const MEMBER_COLUMNS: &str = "SELECT m.user_id, u.email, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id";

impl Store {
    /// The user with this (normalised) email.
    pub async fn user_by_email(&self, email: &str) -> Result<User, StoreError> {
        let row: UserRow = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT id, email, password_hash, password_changed_at FROM users WHERE email = $1"
        )
        .bind(email)
        .fetch_one(p)
        .await)?;
        Ok(row.into())
    }

    /// The user `id`.
    pub async fn user(&self, id: UserId) -> Result<User, StoreError> {
        let row: UserRow = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT id, email, password_hash, password_changed_at FROM users WHERE id = $1"
        )
        .bind(DbUuid::from(id))
        .fetch_one(p)
        .await)?;
        Ok(row.into())
    }

    /// Sets a new password hash and revokes every session of the user, atomically.
    pub async fn change_password(&self, id: UserId, password_hash: &str) -> Result<(), StoreError> {
        let now = DbTime::now();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await?;
            let done = sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE id = $1")
                .bind(DbUuid::from(id))
                .bind(password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                .bind(DbUuid::from(id))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// `user`'s role in `org`, or `NotFound` when not a member.
    pub async fn role_of(&self, org: OrgId, user: UserId) -> Result<Role, StoreError> {
        let role: String = on_pool!(&self.pool, p => sqlx::query_scalar(
            "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2"
        )
        .bind(DbUuid::from(org))
        .bind(DbUuid::from(user))
        .fetch_one(p)
        .await)?;
        parse_role(&role)
    }

    /// Members of `org`, by join time.
    pub async fn members(&self, org: OrgId) -> Result<Vec<Member>, StoreError> {
        let rows: Vec<MemberRow> = on_pool!(&self.pool, p => sqlx::query_as(
            &format!("{MEMBER_COLUMNS} WHERE m.org_id = $1 ORDER BY m.created_at, m.user_id")
        )
        .bind(DbUuid::from(org))
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(Member::try_from).collect()
    }

    /// One member of `org`.
    pub async fn member(&self, org: OrgId, user: UserId) -> Result<Member, StoreError> {
        let row: MemberRow = on_pool!(&self.pool, p => sqlx::query_as(
            &format!("{MEMBER_COLUMNS} WHERE m.org_id = $1 AND m.user_id = $2")
        )
        .bind(DbUuid::from(org))
        .bind(DbUuid::from(user))
        .fetch_one(p)
        .await)?;
        Member::try_from(row)
    }

    /// Changes a member's role; refuses to leave `org` without an owner.
    pub async fn set_role(&self, org: OrgId, user: UserId, role: Role) -> Result<(), StoreError> {
        self.change_membership(org, user, Some(role)).await
    }

    /// Removes a member; refuses to leave `org` without an owner.
    pub async fn remove_member(&self, org: OrgId, user: UserId) -> Result<(), StoreError> {
        self.change_membership(org, user, None).await
    }

    async fn change_membership(
        &self,
        org: OrgId,
        user: UserId,
        role: Option<Role>,
    ) -> Result<(), StoreError> {
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await?;
            let done = match role {
                Some(role) => sqlx::query("UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2")
                    .bind(DbUuid::from(org))
                    .bind(DbUuid::from(user))
                    .bind(role.as_str())
                    .execute(&mut *tx)
                    .await?,
                None => sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
                    .bind(DbUuid::from(org))
                    .bind(DbUuid::from(user))
                    .execute(&mut *tx)
                    .await?,
            };
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let owners: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner'")
                .bind(DbUuid::from(org))
                .fetch_one(&mut *tx)
                .await?;
            if owners == 0 {
                // Dropping the transaction rolls the change back.
                return Err(StoreError::LastOwner);
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
