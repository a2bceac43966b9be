//! Column codecs that let one query text run on both databases.
//!
//! PostgreSQL has native `uuid` and `timestamptz`; SQLite stores both as text. These wrappers
//! encode to whichever the connected database uses, so repository code binds one type.
//! SQLite timestamps use a fixed-width UTC format (microseconds, `Z`), so text order is time order.

use chrono::{DateTime, SecondsFormat, Utc};
use flo2_core::Role;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use uuid::Uuid;

use crate::StoreError;

/// A UUID column: `uuid` on PostgreSQL, hyphenated text on SQLite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DbUuid(pub Uuid);

/// A UTC timestamp column: `timestamptz` on PostgreSQL, fixed-width RFC 3339 text on SQLite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DbTime(pub DateTime<Utc>);

impl DbTime {
    /// The current time, truncated to microseconds (PostgreSQL's precision) so values read back
    /// compare equal on both databases.
    pub fn now() -> Self {
        Self::from(Utc::now())
    }

    /// The SQLite column text: fixed-width, so comparing texts compares times.
    pub(crate) fn sqlite_text(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

/// The earliest time both databases store and read back: 0001-01-01T00:00:00Z. SQLite keeps
/// times as fixed-width RFC 3339 text, which has four year digits and no sign.
pub fn earliest_storable_time() -> DateTime<Utc> {
    DateTime::from_timestamp(-62_135_596_800, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The latest time both databases store and read back: 9999-12-31T23:59:59.999999Z (year 10000
/// would need a fifth year digit, which RFC 3339 text cannot hold).
pub fn latest_storable_time() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 999_999_000).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whether `t` lies within what both databases store and read back.
pub fn is_storable_time(t: DateTime<Utc>) -> bool {
    (earliest_storable_time()..=latest_storable_time()).contains(&t)
}

impl DbUuid {
    /// The SQLite column text.
    pub(crate) fn sqlite_text(&self) -> String {
        self.0.hyphenated().to_string()
    }
}

impl From<DateTime<Utc>> for DbTime {
    fn from(t: DateTime<Utc>) -> Self {
        let micros = t.timestamp_micros();
        Self(DateTime::from_timestamp_micros(micros).unwrap_or(t))
    }
}

macro_rules! uuid_conversions {
    ($($id:ty),*) => {$(
        impl From<$id> for DbUuid {
            fn from(id: $id) -> Self { DbUuid(id.as_uuid()) }
        }
        impl From<DbUuid> for $id {
            fn from(id: DbUuid) -> Self { <$id>::from_uuid(id.0) }
        }
    )*};
}
uuid_conversions!(
    flo2_core::OrgId,
    flo2_core::UserId,
    flo2_core::TeamId,
    flo2_core::CredentialId,
    flo2_core::GatewayKeyId,
    flo2_core::SessionId,
    flo2_core::InviteId
);

impl Type<Sqlite> for DbUuid {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for DbUuid {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.sqlite_text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbUuid {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Ok(DbUuid(Uuid::parse_str(text)?))
    }
}

impl Type<Postgres> for DbUuid {
    fn type_info() -> PgTypeInfo {
        <Uuid as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for DbUuid {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <Uuid as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbUuid {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <Uuid as Decode<'r, Postgres>>::decode(value).map(DbUuid)
    }
}

impl Type<Sqlite> for DbTime {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for DbTime {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(self.sqlite_text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for DbTime {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Ok(DbTime(
            DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc),
        ))
    }
}

impl Type<Postgres> for DbTime {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for DbTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

/// PostgreSQL's epoch (2000-01-01T00:00:00Z) in microseconds since the Unix epoch.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl<'r> Decode<'r, Postgres> for DbTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.format() == PgValueFormat::Binary {
            // Microseconds since PostgreSQL's epoch. Decoded here, not by sqlx: its chrono
            // decoding panics on `infinity` (i64::MAX) and on anything past chrono's range, and
            // one such row must be an error, not a crashed request.
            let micros = <i64 as Decode<'r, Postgres>>::decode(value)?;
            return POSTGRES_EPOCH_MICROS
                .checked_add(micros)
                .and_then(DateTime::from_timestamp_micros)
                .map(DbTime)
                .ok_or_else(|| "timestamp outside the range flo2 reads".into());
        }
        <DateTime<Utc> as Decode<'r, Postgres>>::decode(value).map(DbTime)
    }
}

/// A role column (`owner`, `admin`, `member`, `viewer`); anything else is a corrupt row.
pub(crate) fn parse_role(text: &str) -> Result<Role, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("role {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storable_times_are_four_digit_years() {
        assert_eq!(
            DbTime(earliest_storable_time()).sqlite_text(),
            "0001-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            DbTime(latest_storable_time()).sqlite_text(),
            "9999-12-31T23:59:59.999999Z"
        );
        let after = latest_storable_time() + chrono::Duration::microseconds(1);
        assert!(!is_storable_time(after));
        assert!(!is_storable_time(
            earliest_storable_time() - chrono::Duration::microseconds(1)
        ));
    }

    #[test]
    fn sqlite_time_text_sorts_like_time() {
        let a = DbTime::from(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let b = DbTime::from(DateTime::from_timestamp(1_700_000_000, 500_000_000).unwrap());
        let (fa, fb) = (a.sqlite_text(), b.sqlite_text());
        assert_eq!(fa.len(), fb.len());
        assert!(fa < fb);
    }
}
