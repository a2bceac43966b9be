//! Provider credentials: tenants' upstream API keys, stored encrypted by flo2-vault.

use chrono::{DateTime, Utc};
use flo2_core::{CredentialId, OrgId, ProviderKind};

use crate::changes::{write_with_change, Change};
use crate::pool::on_pool;
use crate::row_by_row::{decode_rows, Loaded};
use crate::types::{DbTime, DbUuid};
use crate::{Store, StoreError};

/// A stored credential. The ciphertext is only readable with the organization's data key.
#[derive(Clone, Debug)]
pub struct Credential {
    /// Its id (bound into the ciphertext's associated data).
    pub id: CredentialId,
    /// Which provider the key is for.
    pub provider: ProviderKind,
    /// Unique within the organization.
    pub name: String,
    /// Overrides the provider's default base URL.
    pub base_url: Option<String>,
    /// A non-secret reminder of the key, such as `…a1b2`.
    pub hint: String,
    /// AES-256-GCM ciphertext of the key.
    pub ciphertext: Vec<u8>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// When it was last changed (rotation, rename).
    pub updated_at: DateTime<Utc>,
}

/// A credential to store; the caller encrypts the key for `(org, id)` first.
#[derive(Clone, Debug)]
pub struct NewCredential {
    /// Its id, chosen before encryption because the ciphertext binds to it.
    pub id: CredentialId,
    /// Which provider.
    pub provider: ProviderKind,
    /// Unique within the organization.
    pub name: String,
    /// Optional base URL override.
    pub base_url: Option<String>,
    /// Encrypted key.
    pub ciphertext: Vec<u8>,
    /// Hint of the key.
    pub hint: String,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct CredentialUpdate {
    /// New name.
    pub name: Option<String>,
    /// New base URL; `Some(None)` clears it.
    pub base_url: Option<Option<String>>,
    /// Rotated key: new ciphertext and hint.
    pub secret: Option<(Vec<u8>, String)>,
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: DbUuid,
    provider: String,
    name: String,
    base_url: Option<String>,
    hint: String,
    ciphertext: Vec<u8>,
    created_at: DbTime,
    updated_at: DbTime,
}

impl TryFrom<CredentialRow> for Credential {
    type Error = StoreError;
    fn try_from(r: CredentialRow) -> Result<Self, StoreError> {
        Ok(Credential {
            id: r.id.into(),
            provider: r
                .provider
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("provider {:?}", r.provider)))?,
            name: r.name,
            base_url: r.base_url,
            hint: r.hint,
            ciphertext: r.ciphertext,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

const COLUMNS: &str =
    "SELECT id, provider, name, base_url, hint, ciphertext, created_at, updated_at FROM provider_credentials";

impl Store {
    /// Stores a credential; `Conflict` when the name is taken in `org`.
    pub async fn create_credential(
        &self,
        org: OrgId,
        new: &NewCredential,
    ) -> Result<Credential, StoreError> {
        let now = DbTime::now();
        let change = Change::org_config(org);
        write_with_change!(self, &change, tx => {
            sqlx::query(
                "INSERT INTO provider_credentials (id, org_id, provider, name, base_url, ciphertext, hint, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(DbUuid::from(new.id))
            .bind(DbUuid::from(org))
            .bind(new.provider.as_str())
            .bind(&new.name)
            .bind(&new.base_url)
            .bind(&new.ciphertext)
            .bind(&new.hint)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        self.credential(org, new.id).await
    }

    /// `org`'s credentials by name. A row that cannot be read back is left out with an error in
    /// the log (see [`Store::credentials_loaded`]).
    pub async fn credentials(&self, org: OrgId) -> Result<Vec<Credential>, StoreError> {
        Ok(self.credentials_loaded(org).await?.logged(org))
    }

    /// `org`'s credentials by name, read row by row: a row that cannot be read back is left out
    /// and reported in [`Loaded::skipped`].
    pub async fn credentials_loaded(&self, org: OrgId) -> Result<Loaded<Credential>, StoreError> {
        let sql = format!("{COLUMNS} WHERE org_id = $1 ORDER BY name");
        Ok(on_pool!(&self.pool, p => {
            let rows = sqlx::query(&sql).bind(DbUuid::from(org)).fetch_all(p).await?;
            decode_rows::<_, CredentialRow, Credential>(&rows, "provider_credentials")
        }))
    }

    /// One credential of `org`.
    pub async fn credential(&self, org: OrgId, id: CredentialId) -> Result<Credential, StoreError> {
        let row: CredentialRow = on_pool!(&self.pool, p => sqlx::query_as(
            &format!("{COLUMNS} WHERE org_id = $1 AND id = $2")
        )
        .bind(DbUuid::from(org))
        .bind(DbUuid::from(id))
        .fetch_one(p)
        .await)?;
        row.try_into()
    }

    /// Renames, re-points or rotates a credential of `org`, atomically.
    pub async fn update_credential(
        &self,
        org: OrgId,
        id: CredentialId,
        update: &CredentialUpdate,
    ) -> Result<Credential, StoreError> {
        let current = self.credential(org, id).await?;
        let name = update.name.as_ref().unwrap_or(&current.name);
        let base_url = update.base_url.as_ref().unwrap_or(&current.base_url);
        let (ciphertext, hint) = update
            .secret
            .as_ref()
            .map(|(c, h)| (c, h))
            .unwrap_or((&current.ciphertext, &current.hint));
        let change = Change::org_config(org);
        write_with_change!(self, &change, tx => {
            // `updated_at = $8` guards against a concurrent update between read and write.
            let done = sqlx::query(
                "UPDATE provider_credentials SET name = $3, base_url = $4, ciphertext = $5, hint = $6, updated_at = $7 \
                 WHERE org_id = $1 AND id = $2 AND updated_at = $8",
            )
            .bind(DbUuid::from(org))
            .bind(DbUuid::from(id))
            .bind(name)
            .bind(base_url)
            .bind(ciphertext)
            .bind(hint)
            .bind(DbTime::now())
            .bind(DbTime::from(current.updated_at))
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict);
            }
        });
        self.credential(org, id).await
    }

    /// Deletes a credential of `org`.
    pub async fn delete_credential(&self, org: OrgId, id: CredentialId) -> Result<(), StoreError> {
        let change = Change::org_config(org);
        write_with_change!(self, &change, tx => {
            let done = sqlx::query("DELETE FROM provider_credentials WHERE org_id = $1 AND id = $2")
                .bind(DbUuid::from(org))
                .bind(DbUuid::from(id))
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        });
        Ok(())
    }
}
