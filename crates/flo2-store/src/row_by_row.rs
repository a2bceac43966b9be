//! Reading an organization's configuration one row at a time, so that one row which cannot be
//! read back (a value written by hand, or by an older version that validated less) is left out
//! and reported instead of failing every read of the organization.

use flo2_core::OrgId;
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};

use crate::types::DbUuid;
use crate::StoreError;

/// A stored entry that could not be read back and was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedEntry {
    /// The table it lives in (`prices`, `routes`, `provider_credentials`).
    pub table: &'static str,
    /// Its id, when even that could not be read: `None`.
    pub id: Option<String>,
    /// Why it could not be read (never a secret: rows hold ciphertext, not keys).
    pub reason: String,
}

/// Entries read row by row, and those that were left out.
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    /// The entries that could be read.
    pub entries: Vec<T>,
    /// The entries that could not.
    pub skipped: Vec<SkippedEntry>,
}

impl<T> Loaded<T> {
    /// The entries, after logging each skipped one as an error (for readers that only list).
    pub fn logged(self, org: OrgId) -> Vec<T> {
        for s in &self.skipped {
            tracing::error!(%org, table = s.table, id = ?s.id, reason = %s.reason,
                "a stored entry cannot be read back; leaving it out");
        }
        self.entries
    }
}

/// Decodes each row into `Raw`, then into `T`; a row failing either step is skipped.
pub(crate) fn decode_rows<R, Raw, T>(rows: &[R], table: &'static str) -> Loaded<T>
where
    R: Row,
    Raw: for<'r> FromRow<'r, R>,
    T: TryFrom<Raw, Error = StoreError>,
    for<'r> &'r str: ColumnIndex<R>,
    for<'r> DbUuid: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut loaded = Loaded {
        entries: Vec::with_capacity(rows.len()),
        skipped: Vec::new(),
    };
    for row in rows {
        let decoded = Raw::from_row(row)
            .map_err(StoreError::from)
            .and_then(T::try_from);
        match decoded {
            Ok(entry) => loaded.entries.push(entry),
            Err(err) => loaded.skipped.push(SkippedEntry {
                table,
                id: row
                    .try_get::<DbUuid, _>("id")
                    .ok()
                    .map(|id| id.0.to_string()),
                reason: err.to_string(),
            }),
        }
    }
    loaded
}
