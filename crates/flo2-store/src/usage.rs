//! Usage records: one row per upstream call, written in batches off the request path.

use chrono::{DateTime, Utc};
use flo2_core::{CredentialId, GatewayKeyId, OrgId, TeamId};
use uuid::Uuid;

use crate::pool::{on_pool, BeginWrite as _, Pool};
use crate::types::{DbTime, DbUuid};
use crate::{Store, StoreError};

/// Text that is nearly always one of a few names fixed in the code (a provider, a role, a
/// failure kind): borrowed from the program, so metering a call does not allocate them, and
/// owned when read back from the database or a spill file.
pub type Text = std::borrow::Cow<'static, str>;

/// One upstream call. Serializable so the usage pipeline can spill it to disk while the database
/// is unreachable.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsageRecord {
    /// Record id; inserting the same id twice keeps one row (replays are idempotent).
    pub id: Uuid,
    /// Tenant.
    pub org_id: OrgId,
    /// Team of the gateway key.
    pub team_id: Option<TeamId>,
    /// The gateway key.
    pub gateway_key_id: Option<GatewayKeyId>,
    /// The inbound request (`x-flo2-request-id`); several attempts share it.
    pub request_id: Uuid,
    /// Attempt number within the request, from 1.
    pub attempt: i64,
    /// `primary`, `fallback`, `race`, `judge`, `cache_hit`.
    pub attempt_role: Text,
    /// `openai` or `anthropic`: the API the caller used.
    pub inbound_api: Text,
    /// The model (or route) the caller asked for.
    pub requested_model: String,
    /// The route, if one was used.
    pub route: Option<String>,
    /// Provider called.
    pub provider: Text,
    /// Model called, as the provider names it.
    pub model: String,
    /// Credential used.
    pub credential_id: Option<CredentialId>,
    /// HTTP status of the attempt (499 when the caller went away first).
    pub status: i64,
    /// Short machine-readable failure kind, if it failed.
    pub error_kind: Option<Text>,
    /// Input tokens at the full input price.
    pub input_tokens: i64,
    /// Output tokens, reasoning included.
    pub output_tokens: i64,
    /// Input tokens read from the prompt cache.
    pub cached_input_tokens: i64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: i64,
    /// Of the output, reasoning tokens.
    pub reasoning_tokens: i64,
    /// Exact cost in pico-USD.
    pub cost_picousd: i64,
    /// What the requested or baseline model would have cost, pico-USD.
    pub baseline_cost_picousd: i64,
    /// Token counts are flo2's estimate, not the provider's report.
    pub tokens_estimated: bool,
    /// The organization had no price for the model: the cost of 0 is unknown, not free.
    /// (Absent from spill files written before the flag existed.)
    #[serde(default)]
    pub unpriced: bool,
    /// Answered from flo2's cache.
    pub cache_hit: bool,
    /// Total latency.
    pub latency_ms: i64,
    /// Time to first token, for streams.
    pub ttft_ms: Option<i64>,
    /// When the attempt started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
}

impl UsageRecord {
    /// Whether a text holds NUL, which PostgreSQL text cannot store. The caller chooses
    /// `requested_model`, so one such record would otherwise fail its whole batch on every retry
    /// and stop usage from being written at all.
    fn holds_nul(&self) -> bool {
        [
            Some(self.requested_model.as_str()),
            self.route.as_deref(),
            Some(self.model.as_str()),
            self.error_kind.as_deref(),
            Some(&self.attempt_role),
            Some(&self.inbound_api),
            Some(&self.provider),
        ]
        .into_iter()
        .flatten()
        .any(|text| text.contains('\0'))
    }

    /// The record with each NUL replaced by U+FFFD, on both databases so they read back alike.
    fn without_nul(&self) -> Self {
        fn clean(text: &str) -> String {
            text.replace('\0', "\u{FFFD}")
        }
        fn clean_text(text: &Text) -> Text {
            if text.contains('\0') {
                Text::Owned(clean(text))
            } else {
                text.clone()
            }
        }
        Self {
            attempt_role: clean_text(&self.attempt_role),
            inbound_api: clean_text(&self.inbound_api),
            requested_model: clean(&self.requested_model),
            route: self.route.as_deref().map(clean),
            provider: clean_text(&self.provider),
            model: clean(&self.model),
            error_kind: self.error_kind.as_ref().map(clean_text),
            ..self.clone()
        }
    }
}

#[derive(sqlx::FromRow)]
struct UsageRow {
    id: DbUuid,
    org_id: DbUuid,
    team_id: Option<DbUuid>,
    gateway_key_id: Option<DbUuid>,
    request_id: DbUuid,
    attempt: i64,
    attempt_role: String,
    inbound_api: String,
    requested_model: String,
    route: Option<String>,
    provider: String,
    model: String,
    credential_id: Option<DbUuid>,
    status: i64,
    error_kind: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    cached_input_tokens: i64,
    cache_write_tokens: i64,
    reasoning_tokens: i64,
    cost_picousd: i64,
    baseline_cost_picousd: i64,
    tokens_estimated: bool,
    unpriced: bool,
    cache_hit: bool,
    latency_ms: i64,
    ttft_ms: Option<i64>,
    started_at: DbTime,
    finished_at: DbTime,
}

impl From<UsageRow> for UsageRecord {
    fn from(r: UsageRow) -> Self {
        UsageRecord {
            id: r.id.0,
            org_id: r.org_id.into(),
            team_id: r.team_id.map(Into::into),
            gateway_key_id: r.gateway_key_id.map(Into::into),
            request_id: r.request_id.0,
            attempt: r.attempt,
            attempt_role: r.attempt_role.into(),
            inbound_api: r.inbound_api.into(),
            requested_model: r.requested_model,
            route: r.route,
            provider: r.provider.into(),
            model: r.model,
            credential_id: r.credential_id.map(Into::into),
            status: r.status,
            error_kind: r.error_kind.map(Text::from),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cached_input_tokens: r.cached_input_tokens,
            cache_write_tokens: r.cache_write_tokens,
            reasoning_tokens: r.reasoning_tokens,
            cost_picousd: r.cost_picousd,
            baseline_cost_picousd: r.baseline_cost_picousd,
            tokens_estimated: r.tokens_estimated,
            unpriced: r.unpriced,
            cache_hit: r.cache_hit,
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
            started_at: r.started_at.0,
            finished_at: r.finished_at.0,
        }
    }
}

const COLUMNS: &str = "id, org_id, team_id, gateway_key_id, request_id, attempt, attempt_role, inbound_api, \
    requested_model, route, provider, model, credential_id, status, error_kind, input_tokens, output_tokens, \
    cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_picousd, baseline_cost_picousd, \
    tokens_estimated, unpriced, cache_hit, latency_ms, ttft_ms, started_at, finished_at";

/// SQLite statement sizes, in rows, a batch is cut into (largest first). Every statement text
/// is parsed once and then reused from the statement cache; a statement per batch size was a new
/// parse for nearly every batch. 256 rows × 29 binds stays under SQLite's 32,766 parameters.
const STATEMENT_ROWS: [usize; 5] = [256, 64, 16, 4, 1];

/// `records` cut into runs of [`STATEMENT_ROWS`] sizes, in order, each with its size's index.
fn statement_chunks<T>(mut records: &[T]) -> impl Iterator<Item = (usize, &[T])> {
    std::iter::from_fn(move || {
        let at = STATEMENT_ROWS.iter().position(|&n| n <= records.len())?;
        let (chunk, rest) = records.split_at(STATEMENT_ROWS[at]);
        records = rest;
        Some((at, chunk))
    })
}

/// The SQLite insert of `STATEMENT_ROWS[size]` rows, one text per size, written once per
/// process. Building it per batch with `QueryBuilder` formatted a placeholder per bound value
/// (29 per row): a tenth of the instructions the usage write of a request cost (callgrind).
fn sqlite_insert(size: usize) -> &'static str {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        STATEMENT_ROWS
            .iter()
            .map(|&n| {
                let row = format!("({})", vec!["?"; binds_per_row()].join(", "));
                format!(
                    "INSERT INTO usage_records ({COLUMNS}) VALUES {} ON CONFLICT (id) DO NOTHING",
                    vec![row; n].join(", ")
                )
            })
            .collect()
    });
    &texts[size]
}

/// Values bound per usage row: one per name in [`COLUMNS`].
fn binds_per_row() -> usize {
    COLUMNS.split(',').count()
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds one record's values, in [`COLUMNS`] order.
fn bind_sqlite_row<'q>(q: SqliteQuery<'q>, r: &'q UsageRecord) -> SqliteQuery<'q> {
    q.bind(DbUuid(r.id))
        .bind(DbUuid::from(r.org_id))
        .bind(r.team_id.map(DbUuid::from))
        .bind(r.gateway_key_id.map(DbUuid::from))
        .bind(DbUuid(r.request_id))
        .bind(r.attempt)
        .bind(r.attempt_role.as_ref())
        .bind(r.inbound_api.as_ref())
        .bind(r.requested_model.as_str())
        .bind(r.route.as_deref())
        .bind(r.provider.as_ref())
        .bind(r.model.as_str())
        .bind(r.credential_id.map(DbUuid::from))
        .bind(r.status)
        .bind(r.error_kind.as_deref())
        .bind(r.input_tokens)
        .bind(r.output_tokens)
        .bind(r.cached_input_tokens)
        .bind(r.cache_write_tokens)
        .bind(r.reasoning_tokens)
        .bind(r.cost_picousd)
        .bind(r.baseline_cost_picousd)
        .bind(r.tokens_estimated)
        .bind(r.unpriced)
        .bind(r.cache_hit)
        .bind(r.latency_ms)
        .bind(r.ttft_ms)
        .bind(DbTime::from(r.started_at))
        .bind(DbTime::from(r.finished_at))
}

impl Store {
    /// Writes records in multi-row statements inside one transaction. A record whose id is
    /// already stored is skipped, so retrying a batch after an unclear failure is safe.
    pub async fn insert_usage(&self, records: &[UsageRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // Rare enough (a caller typed a NUL into a model name) to pay a copy of the batch.
        if records.iter().any(UsageRecord::holds_nul) {
            let storable: Vec<UsageRecord> = records.iter().map(UsageRecord::without_nul).collect();
            return self.insert_storable(&storable).await;
        }
        self.insert_storable(records).await
    }

    /// [`Store::insert_usage`] for records that hold no NUL.
    async fn insert_storable(&self, records: &[UsageRecord]) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Postgres(p) => insert_unnest(p, records).await,
            Pool::Sqlite(p) => {
                let mut tx = p.begin_write().await?;
                for (size, chunk) in statement_chunks(records) {
                    let query = chunk
                        .iter()
                        .fold(sqlx::query(sqlite_insert(size)), bind_sqlite_row);
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    }

    /// `org`'s records, oldest first (at most `limit`).
    pub async fn usage_records(
        &self,
        org: OrgId,
        limit: i64,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        let rows: Vec<UsageRow> = on_pool!(&self.pool, p => sqlx::query_as(
            &format!("SELECT {COLUMNS} FROM usage_records WHERE org_id = $1 ORDER BY started_at, id LIMIT $2")
        )
        .bind(DbUuid::from(org))
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(UsageRecord::from).collect())
    }
}

/// PostgreSQL: the whole batch as one column array per field, in one statement whose text never
/// changes, so it is parsed and planned once per connection instead of once per batch size.
async fn insert_unnest(pool: &sqlx::PgPool, records: &[UsageRecord]) -> Result<(), StoreError> {
    fn column<'r, T>(records: &'r [UsageRecord], f: impl Fn(&'r UsageRecord) -> T) -> Vec<T> {
        records.iter().map(f).collect()
    }
    let r = records;
    sqlx::query(&format!(
        "INSERT INTO usage_records ({COLUMNS}) SELECT * FROM UNNEST(\
         $1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::int8[], $7::text[], \
         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::uuid[], $14::int8[], \
         $15::text[], $16::int8[], $17::int8[], $18::int8[], $19::int8[], $20::int8[], $21::int8[], \
         $22::int8[], $23::bool[], $24::bool[], $25::bool[], $26::int8[], $27::int8[], \
         $28::timestamptz[], $29::timestamptz[]) ON CONFLICT (id) DO NOTHING"
    ))
    .bind(column(r, |r| r.id))
    .bind(column(r, |r| r.org_id.as_uuid()))
    .bind(column(r, |r| r.team_id.map(|t| t.as_uuid())))
    .bind(column(r, |r| r.gateway_key_id.map(|k| k.as_uuid())))
    .bind(column(r, |r| r.request_id))
    .bind(column(r, |r| r.attempt))
    .bind(column(r, |r| r.attempt_role.as_ref()))
    .bind(column(r, |r| r.inbound_api.as_ref()))
    .bind(column(r, |r| r.requested_model.as_str()))
    .bind(column(r, |r| r.route.as_deref()))
    .bind(column(r, |r| r.provider.as_ref()))
    .bind(column(r, |r| r.model.as_str()))
    .bind(column(r, |r| r.credential_id.map(|c| c.as_uuid())))
    .bind(column(r, |r| r.status))
    .bind(column(r, |r| r.error_kind.as_deref()))
    .bind(column(r, |r| r.input_tokens))
    .bind(column(r, |r| r.output_tokens))
    .bind(column(r, |r| r.cached_input_tokens))
    .bind(column(r, |r| r.cache_write_tokens))
    .bind(column(r, |r| r.reasoning_tokens))
    .bind(column(r, |r| r.cost_picousd))
    .bind(column(r, |r| r.baseline_cost_picousd))
    .bind(column(r, |r| r.tokens_estimated))
    .bind(column(r, |r| r.unpriced))
    .bind(column(r, |r| r.cache_hit))
    .bind(column(r, |r| r.latency_ms))
    .bind(column(r, |r| r.ttft_ms))
    .bind(column(r, |r| r.started_at))
    .bind(column(r, |r| r.finished_at))
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_into_the_fixed_statement_sizes_in_order() {
        let records: Vec<i64> = (0..599).collect();
        let sizes: Vec<usize> = statement_chunks(&records).map(|(_, c)| c.len()).collect();
        assert_eq!(sizes, [256, 256, 64, 16, 4, 1, 1, 1]);
        assert!(statement_chunks(&records).all(|(at, c)| STATEMENT_ROWS[at] == c.len()));
        let order: Vec<i64> = statement_chunks(&records)
            .flat_map(|(_, c)| c)
            .copied()
            .collect();
        assert_eq!(order, records);
        assert_eq!(statement_chunks::<i64>(&[]).count(), 0);
    }

    #[test]
    fn the_sqlite_statements_bind_one_value_per_column() {
        assert_eq!(binds_per_row(), 29);
        // SQLite's limit on bound parameters per statement.
        assert!(STATEMENT_ROWS[0] * binds_per_row() <= 32_766);
        for (size, rows) in STATEMENT_ROWS.into_iter().enumerate() {
            let text = sqlite_insert(size);
            assert_eq!(text.matches('?').count(), rows * binds_per_row());
            assert!(
                text.ends_with(") ON CONFLICT (id) DO NOTHING"),
                "{text:.80}"
            );
        }
    }
}
