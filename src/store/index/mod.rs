//! The index of executions: one row per execution in `execution_snapshots` (the columns
//! pages, filters and statistics read) and its description as DataSync gave it in
//! `execution_snapshot_documents` (JSONB). History is the index's finished part.
//!
//! Each file owns its SQL: this one writes and reads single rows, [`pages`] pages,
//! [`stats`] aggregates (reading [`duration_histogram`]s), [`filter`] the `WHERE` clause every
//! read shares; [`writer`] is the one path rows are written by, and [`spool`] keeps what it
//! could not write across a restart.

pub mod cursor;
pub mod duration_histogram;
pub mod filter;
pub mod pages;
pub mod spool;
pub mod stats;
pub mod writer;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::webhooks::outbox;
use super::{identifier, StoreError};
use crate::model::{AccountId, ExecutionArn, Site, TaskExecution};

/// The shape of `snapshot`: bump it when the domain type changes incompatibly, and teach
/// [`IndexStore::get`] to read the old one.
pub const SNAPSHOT_VERSION: i32 = 1;

/// Most running executions read back at once.
const MAX_RUNNING: i64 = 10_000;

#[derive(Clone)]
pub struct IndexStore {
    pub(super) pool: PgPool,
}

impl IndexStore {
    /// Whether the database answers.
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

    /// Inserts rows, or updates one when DataSync's answer moved on: a running execution's
    /// counters or status, or a task report that was pending and is now written. Idempotent for
    /// finished executions: writing the same description twice changes nothing. One
    /// statement, so columns and document never disagree, and a report DataSync has written whole
    /// is queued to be stored (`report_ingestions`) with the row that records it. Never
    /// backwards ([`TaskExecution::supersedes`]): a running description over a finished row (a
    /// discovery sync's read landing after the watcher's) or one older than the row's is not
    /// written, while a finished one over a running row always is, and the row's `updated_at`
    /// stays the later of the two. Of an ARN repeated in the batch, the one that supersedes
    /// the others is written. Only the [`writer`] calls it.
    pub async fn upsert(&self, batch: &[Arc<TaskExecution>]) -> Result<(), StoreError> {
        // In ARN order, so that two upserts that share rows (the watcher's, the writer's, the
        // sync's) lock them in the same order and cannot deadlock; in any other order they can,
        // the likely cause of a discovery sync failing now and then in tests with "the index
        // could not be read or written".
        let mut rows: Vec<&TaskExecution> = batch.iter().map(Arc::as_ref).collect();
        rows.sort_unstable_by(|a, b| {
            a.task_execution_arn
                .cmp(&b.task_execution_arn)
                .then(b.is_terminal().cmp(&a.is_terminal()))
                .then(b.fetched_at.cmp(&a.fetched_at))
        });
        rows.dedup_by(|a, b| a.task_execution_arn == b.task_execution_arn);
        // The documents, in the same order, each serialised once.
        let mut documents: Vec<serde_json::Value> = Vec::with_capacity(rows.len());
        for execution in &rows {
            // The domain type always serialises; should that change, the batch fails whole
            // rather than recording rows without their documents.
            let document = serde_json::to_value(execution)
                .map_err(|error| StoreError::Database(sqlx::Error::Encode(error.into())))?;
            documents.push(document);
        }
        if rows.is_empty() {
            return Ok(());
        }
        let arns: Vec<&str> = rows.iter().map(|execution| execution.task_execution_arn.as_str()).collect();
        // Reports written whole, to be stored: queued in this statement, with the row that says
        // so, and only when that row changed (once per execution, `ON CONFLICT` aside).
        let (mut reported, mut buckets, mut prefixes) = (Vec::new(), Vec::new(), Vec::new());
        for execution in &rows {
            if let Some(source) = execution.report_source() {
                reported.push(execution.task_execution_arn.as_str());
                buckets.push(source.bucket);
                prefixes.push(source.prefix);
            }
        }
        // `previous`, the rows as they were before this statement (every part of it reads the
        // same snapshot), tells what each change is news of, for the webhook outbox.
        let mut insert = QueryBuilder::<Postgres>::new(
            "WITH previous AS (SELECT execution_arn, status FROM execution_snapshots WHERE execution_arn = ANY(",
        );
        insert.push_bind(arns.clone()).push(
            "::text[])), \
             changed AS (INSERT INTO execution_snapshots (execution_arn, task_arn, region, account_id, \
             status, task_mode, start_time, started_at, first_seen_terminal, updated_at, total_duration_ms, \
             prepare_duration_ms, transfer_duration_ms, verify_duration_ms, bytes_transferred, bytes_written, \
             bytes_compressed, files_transferred, files_verified, files_deleted, files_skipped, error_code, \
             report_status, launch_time, end_time) ",
        );
        insert.push_values(&rows, |mut row, e| {
            let arn = &e.task_execution_arn;
            let result = e.result.clone().unwrap_or_default();
            row.push_bind(arn.as_str().to_owned())
                .push_bind(arn.task_arn().as_str().to_owned())
                .push_bind(arn.region().to_owned())
                .push_bind(arn.account_id().as_str().to_owned())
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
                )
                .push_bind(e.launch_time)
                .push_bind(e.end_time);
        });
        insert.push(
            " ON CONFLICT (execution_arn) DO UPDATE SET status = EXCLUDED.status, \
             updated_at = GREATEST(EXCLUDED.updated_at, execution_snapshots.updated_at), task_mode = EXCLUDED.task_mode, \
             start_time = COALESCE(EXCLUDED.start_time, execution_snapshots.start_time), \
             started_at = CASE WHEN EXCLUDED.start_time IS NULL THEN execution_snapshots.started_at \
                          ELSE EXCLUDED.started_at END, \
             first_seen_terminal = COALESCE(execution_snapshots.first_seen_terminal, EXCLUDED.first_seen_terminal), total_duration_ms = EXCLUDED.total_duration_ms, \
             prepare_duration_ms = EXCLUDED.prepare_duration_ms, transfer_duration_ms = EXCLUDED.transfer_duration_ms, \
             verify_duration_ms = EXCLUDED.verify_duration_ms, bytes_transferred = EXCLUDED.bytes_transferred, \
             bytes_written = EXCLUDED.bytes_written, bytes_compressed = EXCLUDED.bytes_compressed, \
             files_transferred = EXCLUDED.files_transferred, files_verified = EXCLUDED.files_verified, \
             files_deleted = EXCLUDED.files_deleted, files_skipped = EXCLUDED.files_skipped, \
             error_code = EXCLUDED.error_code, report_status = EXCLUDED.report_status, \
             launch_time = COALESCE(EXCLUDED.launch_time, execution_snapshots.launch_time), \
             end_time = COALESCE(EXCLUDED.end_time, execution_snapshots.end_time) \
             WHERE (EXCLUDED.updated_at >= execution_snapshots.updated_at \
                    OR (EXCLUDED.status IN ('SUCCESS', 'ERROR') \
                        AND execution_snapshots.status NOT IN ('SUCCESS', 'ERROR'))) \
             AND NOT (execution_snapshots.status IN ('SUCCESS', 'ERROR') \
                      AND EXCLUDED.status NOT IN ('SUCCESS', 'ERROR')) \
             AND ((execution_snapshots.status, execution_snapshots.report_status) \
                  IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.report_status) \
                  OR execution_snapshots.status NOT IN ('SUCCESS', 'ERROR')) \
             RETURNING execution_arn, status), \
             queued AS (INSERT INTO report_ingestions (execution_arn, bucket, prefix) \
             SELECT report.execution_arn, report.bucket, report.prefix FROM unnest(",
        );
        insert
            .push_bind(reported)
            .push("::text[], ")
            .push_bind(buckets)
            .push("::text[], ")
            .push_bind(prefixes)
            .push(
                "::text[]) AS report (execution_arn, bucket, prefix) \
                 JOIN changed ON changed.execution_arn = report.execution_arn \
                 ON CONFLICT (execution_arn) DO NOTHING), \
                 documents AS (INSERT INTO execution_snapshot_documents (execution_arn, snapshot_version, snapshot) \
                 SELECT document.execution_arn, ",
            );
        insert
            .push_bind(SNAPSHOT_VERSION)
            .push(", document.snapshot FROM unnest(")
            .push_bind(arns)
            .push("::text[], ")
            .push_bind(&documents)
            .push(
                "::jsonb[]) AS document (execution_arn, snapshot) \
                 JOIN changed ON changed.execution_arn = document.execution_arn \
                 ON CONFLICT (execution_arn) DO UPDATE SET snapshot_version = EXCLUDED.snapshot_version, \
                 snapshot = EXCLUDED.snapshot) \
                 SELECT changed.execution_arn, previous.status FROM changed \
                 LEFT JOIN previous ON previous.execution_arn = changed.execution_arn",
            );
        let mut transaction = self.pool.begin().await?;
        let changes: Vec<(String, Option<String>)> =
            insert.build_query_as().fetch_all(&mut *transaction).await?;
        let events = outbox::execution_events(&rows, &documents, &changes);
        if !events.is_empty() {
            outbox::append(&mut transaction, &events).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The status and report status the index holds for each of `arns` that it has.
    pub async fn index_states(
        &self,
        arns: &[ExecutionArn],
    ) -> Result<HashMap<ExecutionArn, (String, Option<String>)>, StoreError> {
        let arns: Vec<&str> = arns.iter().map(ExecutionArn::as_str).collect();
        let rows = sqlx::query!(
            "SELECT execution_arn, status, report_status FROM execution_snapshots WHERE execution_arn = ANY($1)",
            &arns as &[&str],
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| Ok((identifier(&row.execution_arn)?, (row.status, row.report_status))))
            .collect()
    }

    /// Records that a sync of `site` at `at` saw DataSync list exactly `arns`: those are
    /// listed, and the site's rows a sync listed before but not this one no longer are.
    pub async fn mark_listed(
        &self,
        site: &Site,
        arns: &[ExecutionArn],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let arns: Vec<&str> = arns.iter().map(ExecutionArn::as_str).collect();
        let mut transaction = self.pool.begin().await?;
        sqlx::query!(
            "UPDATE execution_snapshots SET last_listed_at = $2, listed = true WHERE execution_arn = ANY($1)",
            &arns as &[&str],
            at,
        )
        .execute(&mut *transaction)
        .await?;
        sqlx::query!(
            "UPDATE execution_snapshots SET listed = false \
             WHERE region = $1 AND ($3::text IS NULL OR account_id = $3) AND listed AND last_listed_at <> $2",
            site.region.as_str(),
            at,
            site.account.as_ref().map(AccountId::as_str),
        )
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The stored descriptions of those of `arns` the index has.
    pub async fn get_many(&self, arns: &[ExecutionArn]) -> Result<Vec<TaskExecution>, StoreError> {
        let arns: Vec<&str> = arns.iter().map(ExecutionArn::as_str).collect();
        let rows = sqlx::query!(
            r#"SELECT execution_arn, snapshot AS "snapshot: StoredSnapshot" FROM execution_snapshot_documents WHERE execution_arn = ANY($1)"#,
            &arns as &[&str],
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| row.snapshot.decode(&row.execution_arn)).collect()
    }

    /// The stored descriptions of the executions the index holds as running.
    pub async fn running(&self) -> Result<Vec<TaskExecution>, StoreError> {
        let rows = sqlx::query!(
            "SELECT d.execution_arn, d.snapshot AS \"snapshot: StoredSnapshot\" FROM execution_snapshots s \
             JOIN execution_snapshot_documents d USING (execution_arn) \
             WHERE s.status NOT IN ('SUCCESS', 'ERROR') \
             ORDER BY s.started_at DESC, s.execution_arn DESC LIMIT $1",
            MAX_RUNNING,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|row| row.snapshot.decode(&row.execution_arn)).collect()
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
/// the row: the outcome is kept, so that an unreadable document (its ARN included) becomes
/// [`StoreError::Snapshot`] naming its execution rather than an anonymous decode error, logged
/// by whoever surfaces it, never a row silently left out. Selected as
/// `snapshot AS "snapshot: StoredSnapshot"` by the query macros.
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
