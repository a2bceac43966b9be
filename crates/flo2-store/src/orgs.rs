//! Organizations (tenants), their wrapped data keys, and signup.

use chrono::{DateTime, Utc};
use flo2_core::{OrgId, Role, UserId};

use crate::pool::{on_pool, BeginWrite as _};
use crate::types::{parse_role, DbTime, DbUuid};
use crate::users::NewUser;
use crate::{Store, StoreError};

macro_rules! insert_org {
    ($tx:ident, $org:expr, $now:expr) => {
        sqlx::query("INSERT INTO organizations (id, name, dek_key_id, dek_wrapped, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(DbUuid::from($org.id))
            .bind(&$org.name)
            .bind(&$org.data_key.key_id)
            .bind(&$org.data_key.wrapped)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
    };
}

macro_rules! insert_membership {
    ($tx:ident, $org:expr, $user:expr, $role:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(DbUuid::from($org))
        .bind(DbUuid::from($user))
        .bind($role.as_str())
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    };
}
pub(crate) use insert_membership;

/// An organization as the API shows it.
#[derive(Clone, Debug)]
pub struct Organization {
    /// Its id.
    pub id: OrgId,
    /// Display name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An organization a user belongs to, with the user's role in it.
#[derive(Clone, Debug)]
pub struct Membership {
    /// The organization.
    pub organization: Organization,
    /// The user's role there.
    pub role: Role,
}

/// A data key as stored: which master key wrapped it, and the wrapped bytes.
#[derive(Clone, Debug)]
pub struct StoredDataKey {
    /// Fingerprint of the wrapping master key, as hex.
    pub key_id: String,
    /// `version || nonce || ciphertext+tag`.
    pub wrapped: Vec<u8>,
}

/// A new organization, with its data key already wrapped by the vault.
#[derive(Clone, Debug)]
pub struct NewOrganization {
    /// Its id (the data key's associated data binds to it, so it is chosen before wrapping).
    pub id: OrgId,
    /// Display name.
    pub name: String,
    /// Its wrapped data key.
    pub data_key: StoredDataKey,
}

#[derive(sqlx::FromRow)]
struct OrgRow {
    id: DbUuid,
    name: String,
    created_at: DbTime,
}

impl From<OrgRow> for Organization {
    fn from(r: OrgRow) -> Self {
        Organization {
            id: r.id.into(),
            name: r.name,
            created_at: r.created_at.0,
        }
    }
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    id: DbUuid,
    name: String,
    created_at: DbTime,
    role: String,
}

impl Store {
    /// Creates a user, an organization, and the user's owner membership, atomically.
    pub async fn signup(&self, user: &NewUser, org: &NewOrganization) -> Result<(), StoreError> {
        let now = DbTime::now();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await?;
            sqlx::query("INSERT INTO users (id, email, password_hash, created_at, password_changed_at) VALUES ($1, $2, $3, $4, $4)")
                .bind(DbUuid::from(user.id))
                .bind(&user.email)
                .bind(&user.password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            insert_org!(tx, org, now);
            insert_membership!(tx, org.id, user.id, Role::Owner, now);
            tx.commit().await
        })?;
        Ok(())
    }

    /// Creates another organization owned by an existing user.
    pub async fn create_organization(
        &self,
        owner: UserId,
        org: &NewOrganization,
    ) -> Result<(), StoreError> {
        let now = DbTime::now();
        on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await?;
            insert_org!(tx, org, now);
            insert_membership!(tx, org.id, owner, Role::Owner, now);
            tx.commit().await
        })?;
        Ok(())
    }

    /// The organization `org`.
    pub async fn organization(&self, org: OrgId) -> Result<Organization, StoreError> {
        let row: OrgRow = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT id, name, created_at FROM organizations WHERE id = $1"
        )
        .bind(DbUuid::from(org))
        .fetch_one(p)
        .await)?;
        Ok(row.into())
    }

    /// Renames `org`.
    pub async fn rename_organization(&self, org: OrgId, name: &str) -> Result<(), StoreError> {
        let done = on_pool!(&self.pool, p => sqlx::query("UPDATE organizations SET name = $2 WHERE id = $1")
            .bind(DbUuid::from(org))
            .bind(name)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Every organization `user` belongs to, with the role, oldest first.
    pub async fn memberships(&self, user: UserId) -> Result<Vec<Membership>, StoreError> {
        let rows: Vec<MembershipRow> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT o.id, o.name, o.created_at, m.role FROM memberships m \
             JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.created_at, o.id"
        )
        .bind(DbUuid::from(user))
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(Membership {
                    role: parse_role(&r.role)?,
                    organization: Organization {
                        id: r.id.into(),
                        name: r.name,
                        created_at: r.created_at.0,
                    },
                })
            })
            .collect()
    }

    /// `org`'s wrapped data key.
    pub async fn data_key(&self, org: OrgId) -> Result<StoredDataKey, StoreError> {
        let (key_id, wrapped): (String, Vec<u8>) = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT dek_key_id, dek_wrapped FROM organizations WHERE id = $1"
        )
        .bind(DbUuid::from(org))
        .fetch_one(p)
        .await)?;
        Ok(StoredDataKey { key_id, wrapped })
    }

    /// The distinct master key fingerprints that wrap stored data keys; start-up checks that the
    /// configured keyring holds all of them.
    pub async fn master_key_ids_in_use(&self) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(&self.pool, p => sqlx::query_scalar(
            "SELECT DISTINCT dek_key_id FROM organizations ORDER BY dek_key_id"
        )
        .fetch_all(p)
        .await)?)
    }

    /// Up to `limit` organizations whose data key is not wrapped by `key_id`, for rotation.
    pub async fn data_keys_not_wrapped_by(
        &self,
        key_id: &str,
        limit: i64,
    ) -> Result<Vec<(OrgId, StoredDataKey)>, StoreError> {
        let rows: Vec<(DbUuid, String, Vec<u8>)> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT id, dek_key_id, dek_wrapped FROM organizations WHERE dek_key_id <> $1 ORDER BY id LIMIT $2"
        )
        .bind(key_id)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, key_id, wrapped)| (id.into(), StoredDataKey { key_id, wrapped }))
            .collect())
    }

    /// Replaces `org`'s wrapped data key if it is still wrapped by `expected_key_id`
    /// (compare-and-swap, so concurrent rotations cannot lose a key). True when replaced.
    pub async fn replace_data_key(
        &self,
        org: OrgId,
        expected_key_id: &str,
        new: &StoredDataKey,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(&self.pool, p => sqlx::query(
            "UPDATE organizations SET dek_key_id = $3, dek_wrapped = $4 WHERE id = $1 AND dek_key_id = $2"
        )
        .bind(DbUuid::from(org))
        .bind(expected_key_id)
        .bind(&new.key_id)
        .bind(&new.wrapped)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        // No change notice: the data key itself is unchanged, so every cached decryption stays valid.
        Ok(done == 1)
    }
}
