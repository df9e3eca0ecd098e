//! The history store: finished executions as snapshots in PostgreSQL (sqlx), for reads that must
//! not cost an AWS call, history pages and statistics.
//!
//! Each submodule owns its SQL: `snapshots` (this file) writes and reads single rows, [`history`]
//! pages, [`stats`] aggregates (reading [`duration_histogram`]s), [`writer`] queues writes off the request path.

pub mod changes;
mod control;
pub mod cursor;
pub mod duration_histogram;
pub mod filter;
pub mod history;
pub mod leases;
pub mod spool;
pub mod stats;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::datasync::ExecutionArn;
use crate::model::TaskExecution;

/// The shape of `snapshot`: bump it when the domain type changes incompatibly, and teach
/// [`HistoryStore::get`] to read the old one.
pub const SNAPSHOT_VERSION: i32 = 1;

/// A store failure. Its text is for the log only: it can carry SQL and connection details.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored snapshot of {arn} is unreadable: {source}")]
    Snapshot { arn: String, source: sqlx::Error },
    #[error("no answer from the database within {0:?}")]
    Timeout(Duration),
}

/// Runs a store call with a client-side time limit: a database that stops answering on an open
/// connection (a failover, a silent network) would otherwise hold the caller until TCP gives up.
pub async fn within<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, call).await.unwrap_or(Err(StoreError::Timeout(limit)))
}

#[derive(Clone)]
pub struct HistoryStore {
    pool: PgPool,
}

impl HistoryStore {
    /// Connects (lazily: the gateway starts even when the database is down) with short timeouts,
    /// so that a database outage fails history calls quickly instead of holding requests.
    /// Statements also get a server-side `statement_timeout` of 30 s.
    pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.options([("statement_timeout", "30s")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(2))
            .connect_lazy_with(options);
        Ok(HistoryStore { pool })
    }

    /// Applies the migrations in `migrations/` that have not been applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // On a connection of its own without the 30 s statement limit, which is for queries: a
        // migration may rebuild over every recorded execution (the rollups' rebuild over 10M
        // took 32 s). Detached, so the setting never reaches the pool.
        let mut connection = self.pool.acquire().await?.detach();
        sqlx::query!("SET statement_timeout = 0").execute(&mut connection).await?;
        // sqlx's `CREATE TABLE IF NOT EXISTS _sqlx_migrations` draws a NOTICE on every start
        // (and so on every CLI command), which sqlx logs.
        sqlx::query!("SET client_min_messages = warning").execute(&mut connection).await?;
        sqlx::migrate!("./migrations").run(&mut connection).await?;
        Ok(())
    }

    /// For modules outside `store` that own a table of their own (`auth::keys`).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn ping(&self) -> bool {
        // query_scalar!: the column `?column?` is no Rust name for query!'s record.
        sqlx::query_scalar!("SELECT 1").fetch_one(&self.pool).await.is_ok()
    }

    /// The stored snapshot of one execution, if any.
    pub async fn get(&self, arn: &ExecutionArn) -> Result<Option<TaskExecution>, StoreError> {
        let snapshot = sqlx::query_scalar!(
            r#"SELECT snapshot AS "snapshot: StoredSnapshot" FROM execution_snapshot_documents WHERE execution_arn = $1"#,
            arn.as_str(),
        )
        .fetch_optional(&self.pool)
        .await?;
        snapshot.map(|snapshot| snapshot.decode(arn.as_str())).transpose()
    }

    /// Inserts snapshots, or updates one when DataSync's answer moved on: a running execution's
    /// counters or status, or a task report that was pending and is now written. Idempotent for
    /// finished executions: writing the same snapshot twice changes nothing.
    /// One statement, so columns and document never disagree. The batch must not repeat an ARN.
    pub async fn upsert(&self, batch: &[Arc<TaskExecution>]) -> Result<(), StoreError> {
        // The column values and, in the same order, the documents, each serialised once.
        let mut rows: Vec<(ExecutionArn, &TaskExecution)> = Vec::with_capacity(batch.len());
        let mut documents: Vec<serde_json::Value> = Vec::with_capacity(batch.len());
        // In ARN order, so that two upserts that share rows (the watcher's, the snapshot
        // writer's, the sync's) lock them in the same order and cannot deadlock; in any other
        // order they can, the likely cause of a discovery sync failing now and then in tests
        // with "the index could not be read or written".
        let mut ordered: Vec<&Arc<TaskExecution>> = batch.iter().collect();
        ordered.sort_unstable_by(|a, b| a.task_execution_arn.cmp(&b.task_execution_arn));
        for execution in ordered {
            // Cannot fail for what the mapping builds (the ARN was validated, the type
            // serialises); logged rather than failing the whole batch should that change.
            let arn = match ExecutionArn::parse(&execution.task_execution_arn) {
                Ok(arn) => arn,
                Err(error) => {
                    tracing::error!(%error, "snapshot not recorded");
                    continue;
                }
            };
            match serde_json::to_value(execution.as_ref()) {
                Ok(json) => documents.push(json),
                Err(error) => {
                    tracing::error!(%arn, %error, "snapshot not recorded");
                    continue;
                }
            }
            rows.push((arn, execution.as_ref()));
        }
        if rows.is_empty() {
            return Ok(());
        }
        let arns: Vec<String> = rows.iter().map(|(arn, _)| arn.as_str().to_owned()).collect();
        let mut insert = QueryBuilder::<Postgres>::new(
            "WITH changed AS (INSERT INTO execution_snapshots (execution_arn, task_arn, region, account_id, \
             status, task_mode, start_time, started_at, first_seen_terminal, updated_at, total_duration_ms, \
             prepare_duration_ms, transfer_duration_ms, verify_duration_ms, bytes_transferred, bytes_written, \
             bytes_compressed, files_transferred, files_verified, files_deleted, files_skipped, error_code, \
             report_status) ",
        );
        insert.push_values(rows, |mut row, (arn, e)| {
            let result = e.result.clone().unwrap_or_default();
            row.push_bind(arn.as_str().to_owned())
                .push_bind(arn.task_arn().to_owned())
                .push_bind(arn.region().to_owned())
                .push_bind(arn.account_id().to_owned())
                .push_bind(e.status.raw().to_owned())
                .push_bind(e.task_mode.as_ref().map(|mode| mode.raw().to_owned()))
                .push_bind(e.start_time)
                .push_bind(e.start_time.unwrap_or(e.fetched_at))
                .push_bind(e.is_terminal().then_some(e.fetched_at))
                .push_bind(e.fetched_at)
                .push_bind(result.total_duration.map(|d| d.0))
                .push_bind(result.prepare_duration.map(|d| d.0))
                .push_bind(result.transfer_duration.map(|d| d.0))
                .push_bind(result.verify_duration.map(|d| d.0))
                .push_bind(e.bytes_transferred.0)
                .push_bind(e.bytes_written.0)
                .push_bind(e.bytes_compressed.0)
                .push_bind(e.files_transferred.0)
                .push_bind(e.files_verified.0)
                .push_bind(e.files_deleted.0)
                .push_bind(e.files_skipped.0)
                .push_bind(result.error_code)
                .push_bind(
                    e.report_result.as_ref().and_then(|r| r.status.as_ref()).map(|s| s.raw().to_owned()),
                );
        });
        insert.push(
            " ON CONFLICT (execution_arn) DO UPDATE SET status = EXCLUDED.status, \
             updated_at = EXCLUDED.updated_at, task_mode = EXCLUDED.task_mode, \
             start_time = COALESCE(EXCLUDED.start_time, execution_snapshots.start_time), \
             started_at = CASE WHEN EXCLUDED.start_time IS NULL THEN execution_snapshots.started_at \
                          ELSE EXCLUDED.started_at END, \
             first_seen_terminal = COALESCE(execution_snapshots.first_seen_terminal, EXCLUDED.first_seen_terminal), total_duration_ms = EXCLUDED.total_duration_ms, \
             prepare_duration_ms = EXCLUDED.prepare_duration_ms, transfer_duration_ms = EXCLUDED.transfer_duration_ms, \
             verify_duration_ms = EXCLUDED.verify_duration_ms, bytes_transferred = EXCLUDED.bytes_transferred, \
             bytes_written = EXCLUDED.bytes_written, bytes_compressed = EXCLUDED.bytes_compressed, \
             files_transferred = EXCLUDED.files_transferred, files_verified = EXCLUDED.files_verified, \
             files_deleted = EXCLUDED.files_deleted, files_skipped = EXCLUDED.files_skipped, \
             error_code = EXCLUDED.error_code, report_status = EXCLUDED.report_status \
             WHERE (execution_snapshots.status, execution_snapshots.report_status) \
             IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.report_status) \
             OR execution_snapshots.status NOT IN ('SUCCESS', 'ERROR') \
             RETURNING execution_arn) \
             INSERT INTO execution_snapshot_documents (execution_arn, snapshot_version, snapshot) \
             SELECT document.execution_arn, ",
        );
        insert
            .push_bind(SNAPSHOT_VERSION)
            .push(", document.snapshot FROM unnest(")
            .push_bind(arns)
            .push("::text[], ")
            .push_bind(documents)
            .push(
                "::jsonb[]) AS document (execution_arn, snapshot) \
                 JOIN changed ON changed.execution_arn = document.execution_arn \
                 ON CONFLICT (execution_arn) DO UPDATE SET snapshot_version = EXCLUDED.snapshot_version, \
                 snapshot = EXCLUDED.snapshot",
            );
        insert.build().execute(&self.pool).await?;
        Ok(())
    }

    /// The status and report status the index holds for each of `arns` that it has.
    pub async fn index_states(
        &self,
        arns: &[String],
    ) -> Result<std::collections::HashMap<String, (String, Option<String>)>, StoreError> {
        let rows = sqlx::query!(
            "SELECT execution_arn, status, report_status FROM execution_snapshots WHERE execution_arn = ANY($1)",
            arns,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|row| (row.execution_arn, (row.status, row.report_status))).collect())
    }

    /// Records that a sync of `region` at `at` saw DataSync list exactly `arns`: those are
    /// listed, and the region's rows a sync listed before but not this one no longer are.
    pub async fn mark_listed(
        &self,
        region: &str,
        arns: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query!(
            "UPDATE execution_snapshots SET last_listed_at = $2, listed = true WHERE execution_arn = ANY($1)",
            arns,
            at,
        )
        .execute(&mut *transaction)
        .await?;
        sqlx::query!(
            "UPDATE execution_snapshots SET listed = false \
             WHERE region = $1 AND listed AND last_listed_at <> $2",
            region,
            at,
        )
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Deletes executions that started before `cutoff`; how many.
    pub async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = sqlx::query!("DELETE FROM execution_snapshots WHERE started_at < $1", cutoff)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected())
    }
}

/// The `snapshot` column (JSONB), decoded straight into the domain type. Decoding it never fails
/// the row: the outcome is kept, so that an unreadable document becomes
/// [`StoreError::Snapshot`] naming its execution rather than an anonymous decode error.
/// Selected as `snapshot AS "snapshot: StoredSnapshot"` by the query macros.
#[derive(Debug)]
pub(crate) struct StoredSnapshot(Result<TaskExecution, sqlx::error::BoxDynError>);

impl StoredSnapshot {
    fn decode(self, arn: &str) -> Result<TaskExecution, StoreError> {
        self.0.map_err(|source| StoreError::Snapshot {
            arn: arn.to_owned(),
            source: sqlx::Error::ColumnDecode { index: format!("{:?}", "snapshot"), source },
        })
    }
}

impl sqlx::Type<Postgres> for StoredSnapshot {
    fn type_info() -> PgTypeInfo {
        <Json<TaskExecution> as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Json<TaskExecution> as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for StoredSnapshot {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(StoredSnapshot(
            <Json<TaskExecution> as sqlx::Decode<'r, Postgres>>::decode(value).map(|json| json.0),
        ))
    }
}
