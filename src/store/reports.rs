//! Task reports' records: `report_ingestions` (one per execution whose detailed report is to be
//! stored, queued by the index writer), `report_parts` (each part stored, or why it could not
//! be) and `report_files` (the records kept). See the migration `20261210000001_task_reports`.
//!
//! A part is written in one transaction: its records by `COPY`, its `report_parts` row and the
//! ingestion's counters, the last only while the writer still holds the ingestion's lease. So a
//! part is stored whole or not at all, never twice, and a stopped ingestion resumes after the
//! parts it stored.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::index::filter::SnapshotFilter;
use super::webhooks::outbox::{self, OutboxEvent};
use super::{identifier, StoreError};
use crate::model::{
    ExecutionArn, IngestionState, RecordsKept, ReportKind, ReportRecord, TaskArn, WebhookEventKind,
};

#[derive(Clone)]
pub struct ReportStore {
    pub(super) pool: PgPool,
}

/// An ingestion a replica took: what it needs to carry on.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: i64,
    pub execution_arn: ExecutionArn,
    pub bucket: String,
    pub prefix: String,
    pub records_kept: i64,
    /// This one included.
    pub attempts: i32,
}

/// A part as stored: its counts, or why it could not be.
#[derive(Clone, Debug)]
pub struct StoredPart {
    pub key: String,
    pub kind: ReportKind,
    pub part: i32,
    pub records_read: i64,
    pub records_kept: i64,
    pub error: Option<String>,
}

/// What the gateway holds of one execution's report.
#[derive(Clone, Debug)]
pub struct Ingestion {
    pub id: i64,
    pub state: IngestionState,
    pub kept: Option<RecordsKept>,
    pub records_read: i64,
    pub records_kept: i64,
    pub truncated: bool,
    pub error: Option<String>,
    pub attempts: i32,
    pub queued_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What reading a part found: its records' counts, or why it could not be read whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartCounts {
    pub read: i64,
    pub kept: i64,
    /// Reading stopped at the per-execution cap.
    pub cut: bool,
}

/// Why a part was not read whole.
#[derive(Clone, Debug)]
pub enum PartFault {
    /// It is not a report part (broken JSON, another execution's): recorded on the part, for good.
    Unreadable(String),
    /// Reading it broke off (the connection to S3): nothing recorded, the part is read again.
    Interrupted(String),
}

/// How a part's write ended.
#[derive(Debug)]
pub enum PartWritten {
    /// Stored, with its `report_parts` row.
    Stored(PartCounts),
    /// Not stored: recorded as unreadable, or to be read again.
    Faulted(PartFault),
    /// The lease was lost to another replica meanwhile: nothing is stored.
    LeaseLost,
}

/// One record as read from a page: the execution, and the record's place in its report.
#[derive(Clone, Debug)]
pub struct FileRow {
    pub ingestion_id: i64,
    pub execution_arn: ExecutionArn,
    pub kind: ReportKind,
    pub part: i32,
    pub ordinal: i32,
    pub failed: bool,
    pub record: ReportRecord,
}

/// Which records a page holds: conditions combine with AND.
#[derive(Clone, Debug, Default)]
pub struct FileFilter {
    pub kinds: Vec<ReportKind>,
    /// DataSync's status strings (`SUCCESS`, `FAILED`, …).
    pub statuses: Vec<String>,
    pub failed: Option<bool>,
    pub path_prefix: Option<String>,
    pub path_contains: Option<String>,
}

/// A path that failed in several executions of a task.
#[derive(Clone, Debug)]
pub struct FailingPath {
    pub relative_path: String,
    pub executions: i64,
    pub last_execution_arn: ExecutionArn,
    pub last_started_at: DateTime<Utc>,
    pub last_error_code: Option<String>,
    pub last_error_detail: Option<String>,
    pub kinds: Vec<ReportKind>,
}

/// Where a page of records starts: after this record, in (path, ingestion, kind, part, ordinal)
/// order. Opaque to clients.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileCursor {
    path: String,
    ingestion: i64,
    kind: String,
    part: i32,
    ordinal: i32,
}

impl FileCursor {
    pub fn of(row: &FileRow) -> Self {
        FileCursor {
            path: row.record.relative_path.clone(),
            ingestion: row.ingestion_id,
            kind: row.kind.list().to_owned(),
            part: row.part,
            ordinal: row.ordinal,
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a cursor serialises"))
    }

    /// `None` for text this gateway did not issue.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok().filter(|bytes| bytes.len() <= 8192)?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The columns `COPY` fills, in the order [`encode_row`] writes them.
const COPY_REPORT_FILES: &str =
    "COPY report_files (ingestion_id, relative_path, kind, part, ordinal, status, \
     failed, file_type, source_size, destination_size, source_mtime, destination_mtime, source_checksum, \
     destination_checksum, event_time, error_code, error_detail) FROM STDIN (FORMAT text)";

/// Appends `record` to `buffer` as one line of `COPY … (FORMAT text)`.
pub fn encode_row(
    buffer: &mut Vec<u8>,
    ingestion: i64,
    kind: ReportKind,
    part: i32,
    ordinal: i32,
    record: &ReportRecord,
) {
    let numbers = |buffer: &mut Vec<u8>, value: i64| buffer.extend_from_slice(value.to_string().as_bytes());
    numbers(buffer, ingestion);
    buffer.push(b'\t');
    copy_text(buffer, Some(&record.relative_path));
    buffer.push(b'\t');
    copy_text(buffer, Some(kind.list()));
    buffer.push(b'\t');
    numbers(buffer, i64::from(part));
    buffer.push(b'\t');
    numbers(buffer, i64::from(ordinal));
    buffer.push(b'\t');
    copy_text(buffer, Some(&record.status));
    buffer.push(b'\t');
    buffer.push(if record.is_error() { b't' } else { b'f' });
    buffer.push(b'\t');
    copy_text(buffer, record.file_type.as_deref());
    for size in [record.source_size, record.destination_size] {
        buffer.push(b'\t');
        match size {
            Some(size) => numbers(buffer, size),
            None => buffer.extend_from_slice(b"\\N"),
        }
    }
    for text in [
        &record.source_mtime,
        &record.destination_mtime,
        &record.source_checksum,
        &record.destination_checksum,
        &record.timestamp,
        &record.error_code,
        &record.error_detail,
    ] {
        buffer.push(b'\t');
        copy_text(buffer, text.as_deref());
    }
    buffer.push(b'\n');
}

/// A text field of `COPY`'s text format: `\N` for NULL; backslash, tab, newline and carriage
/// return escaped; NUL (which PostgreSQL's text cannot hold) dropped.
fn copy_text(buffer: &mut Vec<u8>, text: Option<&str>) {
    let Some(text) = text else {
        buffer.extend_from_slice(b"\\N");
        return;
    };
    for byte in text.bytes() {
        match byte {
            b'\\' => buffer.extend_from_slice(b"\\\\"),
            b'\t' => buffer.extend_from_slice(b"\\t"),
            b'\n' => buffer.extend_from_slice(b"\\n"),
            b'\r' => buffer.extend_from_slice(b"\\r"),
            0 => {}
            _ => buffer.push(byte),
        }
    }
}

impl ReportStore {
    /// Takes up to `limit` ingestions that are due and that no live replica holds, for `lease`:
    /// one held by a replica whose heartbeat ran out is taken at once, before its lease does.
    /// Not one whose holder has no heartbeat yet: a replica claims as it starts, before its
    /// first heartbeat is written, and two starting together took each other's. `NO KEY
    /// UPDATE`: a part being written holds its ingestion's row `KEY SHARE` through the foreign
    /// key, which must not hide the row.
    pub async fn claim(&self, owner: &str, lease: Duration, limit: i64) -> Result<Vec<Claimed>, StoreError> {
        let rows = sqlx::query!(
            "UPDATE report_ingestions SET state = 'RUNNING', owner = $1, \
                 lease_expires = now() + make_interval(secs => $2), attempts = attempts + 1 \
             WHERE id IN ( \
                 SELECT id FROM report_ingestions queued \
                 WHERE state IN ('PENDING', 'RUNNING') AND next_attempt_at <= now() \
                   AND (state = 'PENDING' OR queued.owner IS NULL OR lease_expires < now() \
                        OR EXISTS (SELECT 1 FROM job_leases beat \
                            WHERE beat.name = 'replica:' || queued.owner AND beat.expires_at <= now())) \
                 ORDER BY next_attempt_at LIMIT $3 \
                 FOR NO KEY UPDATE SKIP LOCKED) \
             RETURNING id, execution_arn, bucket, prefix, records_kept, attempts",
            owner,
            lease.as_secs_f64(),
            limit,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Claimed {
                    id: row.id,
                    execution_arn: identifier(&row.execution_arn)?,
                    bucket: row.bucket,
                    prefix: row.prefix,
                    records_kept: row.records_kept,
                    attempts: row.attempts,
                })
            })
            .collect()
    }

    /// Keys of the parts of ingestion `id` already stored or recorded as unreadable.
    pub async fn done_parts(&self, id: i64) -> Result<HashSet<String>, StoreError> {
        let keys = sqlx::query_scalar!("SELECT key FROM report_parts WHERE ingestion_id = $1", id)
            .fetch_all(&self.pool)
            .await?;
        Ok(keys.into_iter().collect())
    }

    /// Writes one part: the `COPY` lines `chunks` brings ([`encode_row`]), then, if `read`
    /// says the part was read whole, its row and the ingestion's counters, all in one
    /// transaction, while `owner` still holds the lease (renewed for `lease`). A part that could
    /// not be read leaves nothing but its row, saying why.
    pub async fn write_part(
        &self,
        claimed: &Claimed,
        owner: &str,
        lease: Duration,
        part: &StoredPart,
        mut chunks: tokio::sync::mpsc::Receiver<Vec<u8>>,
        read: impl Future<Output = Result<PartCounts, PartFault>>,
    ) -> Result<PartWritten, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let mut copy = transaction.copy_in_raw(COPY_REPORT_FILES).await?;
        while let Some(chunk) = chunks.recv().await {
            copy.send(chunk).await?;
        }
        let counts = match read.await {
            Ok(counts) => counts,
            Err(fault) => {
                let why = match &fault {
                    PartFault::Unreadable(why) | PartFault::Interrupted(why) => why.clone(),
                };
                copy.abort(why.clone()).await.ok();
                transaction.rollback().await.ok();
                if let PartFault::Unreadable(_) = fault {
                    let unreadable = StoredPart { error: Some(why), records_kept: 0, ..part.clone() };
                    self.record_part(claimed.id, &unreadable).await?;
                }
                return Ok(PartWritten::Faulted(fault));
            }
        };
        let (records_read, records_kept) = (counts.read, counts.kept);
        copy.finish().await?;
        let held = sqlx::query!(
            "UPDATE report_ingestions SET records_read = records_read + $3, records_kept = records_kept + $4, \
                 lease_expires = now() + make_interval(secs => $5) \
             WHERE id = $1 AND owner = $2 AND state = 'RUNNING'",
            claimed.id,
            owner,
            records_read,
            records_kept,
            lease.as_secs_f64(),
        )
        .execute(&mut *transaction)
        .await?
        .rows_affected()
            == 1;
        if !held {
            transaction.rollback().await?;
            return Ok(PartWritten::LeaseLost);
        }
        sqlx::query!(
            "INSERT INTO report_parts (ingestion_id, key, kind, part, records_read, records_kept, error) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
            claimed.id,
            part.key,
            part.kind.list(),
            part.part,
            records_read,
            records_kept,
        )
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(PartWritten::Stored(counts))
    }

    async fn record_part(&self, id: i64, part: &StoredPart) -> Result<(), StoreError> {
        sqlx::query!(
            "INSERT INTO report_parts (ingestion_id, key, kind, part, records_read, records_kept, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ingestion_id, key) DO NOTHING",
            id,
            part.key,
            part.kind.list(),
            part.part,
            part.records_read,
            part.records_kept,
            part.error,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends ingestion `id` (held by `owner`) in `state`.
    pub async fn finish(
        &self,
        id: i64,
        owner: &str,
        state: IngestionState,
        kept: RecordsKept,
        truncated: bool,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        let finished = sqlx::query!(
            "UPDATE report_ingestions SET state = $3, kept = $4, truncated = $5, error = $6, \
                 finished_at = now(), owner = NULL, lease_expires = NULL \
             WHERE id = $1 AND owner = $2 \
             RETURNING execution_arn, records_read, records_kept, finished_at AS \"finished_at!\", \
                 (SELECT snapshot FROM execution_snapshot_documents documents \
                  WHERE documents.execution_arn = report_ingestions.execution_arn) AS execution",
            id,
            owner,
            state.as_str(),
            kept.as_str(),
            truncated,
            error,
        )
        .fetch_optional(&mut *transaction)
        .await?;
        // Webhooks hear of it in the same transaction: never an event for a report not stored.
        if let Some(finished) = finished {
            let event = OutboxEvent {
                event_id: outbox::event_id(&finished.execution_arn, "report"),
                event_type: "report.ready",
                execution_arn: finished.execution_arn,
                occurred_at: finished.finished_at,
                data: serde_json::json!({
                    "kind": WebhookEventKind::ReportReady,
                    "ingestion": {
                        "state": state.as_str(), "recordsRead": finished.records_read,
                        "recordsKept": finished.records_kept, "truncated": truncated, "error": error,
                    },
                    "execution": finished.execution,
                }),
            };
            outbox::append(&mut transaction, &[event]).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Gives ingestion `id` back to the queue, to be tried again after `delay`.
    pub async fn retry_later(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        delay: Duration,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE report_ingestions SET state = 'PENDING', error = $3, owner = NULL, lease_expires = NULL, \
                 next_attempt_at = now() + make_interval(secs => $4) \
             WHERE id = $1 AND owner = $2",
            id,
            owner,
            error,
            delay.as_secs_f64(),
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives up `owner`'s ingestions at shutdown, so that another replica resumes them at once.
    pub async fn release(&self, owner: &str) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE report_ingestions SET state = 'PENDING', owner = NULL, lease_expires = NULL \
             WHERE owner = $1 AND state = 'RUNNING'",
            owner,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What the gateway holds of `execution`'s report, if it queued one.
    pub async fn ingestion(&self, execution: &ExecutionArn) -> Result<Option<Ingestion>, StoreError> {
        let row = sqlx::query!(
            "SELECT id, state, kept, records_read, records_kept, truncated, error, attempts, queued_at, \
                 finished_at FROM report_ingestions WHERE execution_arn = $1",
            execution.as_str(),
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| Ingestion {
            id: row.id,
            state: IngestionState::parse(&row.state).unwrap_or(IngestionState::Pending),
            kept: row.kept.as_deref().and_then(RecordsKept::parse),
            records_read: row.records_read,
            records_kept: row.records_kept,
            truncated: row.truncated,
            error: row.error,
            attempts: row.attempts,
            queued_at: row.queued_at,
            finished_at: row.finished_at,
        }))
    }

    /// The parts of ingestion `id`, in key order.
    pub async fn parts(&self, id: i64) -> Result<Vec<StoredPart>, StoreError> {
        let rows = sqlx::query!(
            "SELECT key, kind, part, records_read, records_kept, error FROM report_parts \
             WHERE ingestion_id = $1 ORDER BY key",
            id,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(StoredPart {
                    kind: ReportKind::from_list(&row.kind)?,
                    key: row.key,
                    part: row.part,
                    records_read: row.records_read,
                    records_kept: row.records_kept,
                    error: row.error,
                })
            })
            .collect())
    }

    /// Records kept of ingestion `id`, per kind and status.
    pub async fn counts(&self, id: i64) -> Result<Vec<(ReportKind, String, i64)>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT kind, status, count(*) AS "count!" FROM report_files WHERE ingestion_id = $1
               GROUP BY kind, status ORDER BY kind, status"#,
            id,
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| Some((ReportKind::from_list(&row.kind)?, row.status, row.count)))
            .collect())
    }

    /// A page of records, in path order: those of the ingestions `executions` selects (one
    /// execution's, or those of the executions a filter selects), matching `filter`, after
    /// `after`; `first + 1` rows at most, so the caller can tell whether more follow.
    pub async fn files(
        &self,
        executions: &Executions<'_>,
        filter: &FileFilter,
        after: Option<&FileCursor>,
        first: i64,
    ) -> Result<Vec<FileRow>, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new(
            "SELECT f.ingestion_id, i.execution_arn, f.relative_path, f.kind, f.part, f.ordinal, f.status, \
             f.failed, f.file_type, f.source_size, f.destination_size, f.source_mtime, f.destination_mtime, \
             f.source_checksum, f.destination_checksum, f.event_time, f.error_code, f.error_detail \
             FROM report_files f JOIN report_ingestions i ON i.id = f.ingestion_id WHERE ",
        );
        executions.push(&mut sql);
        filter.push(&mut sql);
        if let Some(after) = after {
            sql.push(" AND (f.relative_path, f.ingestion_id, f.kind, f.part, f.ordinal) > (")
                .push_bind(after.path.clone())
                .push(" COLLATE \"C\", ")
                .push_bind(after.ingestion)
                .push(", ")
                .push_bind(after.kind.clone())
                .push(", ")
                .push_bind(after.part)
                .push(", ")
                .push_bind(after.ordinal)
                .push(")");
        }
        sql.push(" ORDER BY f.relative_path, f.ingestion_id, f.kind, f.part, f.ordinal LIMIT ")
            .push_bind(first + 1);
        let rows = sql.build_query_as::<FileRecordRow>().fetch_all(&self.pool).await?;
        rows.into_iter().map(FileRecordRow::into_row).collect()
    }

    /// The paths that failed in the most executions of `task` that started at or after `since`
    /// (among the accounts `visible` lists, `None`: all), most first, then by path.
    pub async fn failing_paths(
        &self,
        task: &TaskArn,
        since: DateTime<Utc>,
        visible: Option<&[crate::model::AccountId]>,
        first: i64,
    ) -> Result<Vec<FailingPath>, StoreError> {
        let visible: Option<Vec<&str>> =
            visible.map(|accounts| accounts.iter().map(|a| a.as_str()).collect());
        // The counting pass reads only paths and ingestions; the latest failure and the kinds
        // are then looked up for the few paths answered, by the primary key (ingestion, path).
        // Aggregating every failure's ARN and error in order took 1.1 s over 99,000 records.
        let rows = sqlx::query!(
            r#"WITH runs AS (
                   SELECT i.id, s.execution_arn, s.started_at FROM execution_snapshots s
                   JOIN report_ingestions i ON i.execution_arn = s.execution_arn
                   WHERE s.task_arn = $1 AND s.started_at >= $2
                     AND ($3::text[] IS NULL OR s.account_id = ANY($3))),
               top AS (
                   SELECT relative_path, count(*) AS executions FROM (
                       SELECT DISTINCT f.relative_path, f.ingestion_id FROM report_files f
                       WHERE f.ingestion_id IN (SELECT id FROM runs) AND f.failed) failed
                   GROUP BY relative_path ORDER BY 2 DESC, 1 LIMIT $4)
               SELECT top.relative_path AS "relative_path!", top.executions AS "executions!",
                   last.execution_arn AS "last_execution_arn!", last.started_at AS "last_started_at!",
                   last.error_code AS last_error_code, last.error_detail AS last_error_detail,
                   kinds.kinds AS "kinds!"
               FROM top
               CROSS JOIN LATERAL (
                   SELECT r.execution_arn, r.started_at, f.error_code, f.error_detail FROM runs r
                   JOIN report_files f ON f.ingestion_id = r.id AND f.relative_path = top.relative_path
                   WHERE f.failed ORDER BY r.started_at DESC, r.execution_arn DESC, f.kind LIMIT 1) last
               CROSS JOIN LATERAL (
                   SELECT array_agg(DISTINCT f.kind) AS kinds FROM runs r
                   JOIN report_files f ON f.ingestion_id = r.id AND f.relative_path = top.relative_path
                   WHERE f.failed) kinds
               ORDER BY top.executions DESC, top.relative_path"#,
            task.as_str(),
            since,
            visible as Option<Vec<&str>>,
            first,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(FailingPath {
                    relative_path: row.relative_path,
                    executions: row.executions,
                    last_execution_arn: identifier(&row.last_execution_arn)?,
                    last_started_at: row.last_started_at,
                    last_error_code: row.last_error_code,
                    last_error_detail: row.last_error_detail,
                    kinds: row.kinds.iter().filter_map(|kind| ReportKind::from_list(kind)).collect(),
                })
            })
            .collect()
    }

    /// Deletes the records of executions that started before `cutoff` (the executions stay);
    /// how many ingestions.
    pub async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = sqlx::query!(
            "DELETE FROM report_ingestions WHERE execution_arn IN \
                 (SELECT execution_arn FROM execution_snapshots WHERE started_at < $1)",
            cutoff,
        )
        .execute(&self.pool)
        .await?;
        Ok(deleted.rows_affected())
    }
}

/// Whose records a page reads.
pub enum Executions<'a> {
    /// One ingestion's.
    One(i64),
    /// Those of the executions the filter selects.
    Matching(&'a SnapshotFilter),
}

impl Executions<'_> {
    fn push(&self, sql: &mut QueryBuilder<'_, Postgres>) {
        match self {
            Executions::One(id) => {
                sql.push("f.ingestion_id = ").push_bind(*id);
            }
            Executions::Matching(filter) => {
                sql.push("i.execution_arn IN (SELECT execution_arn FROM execution_snapshots");
                filter.push_where(sql);
                sql.push(")");
            }
        }
    }
}

impl FileFilter {
    fn push(&self, sql: &mut QueryBuilder<'_, Postgres>) {
        if !self.kinds.is_empty() {
            let kinds: Vec<&str> = self.kinds.iter().map(|kind| kind.list()).collect();
            sql.push(" AND f.kind = ANY(").push_bind(kinds).push(")");
        }
        if !self.statuses.is_empty() {
            sql.push(" AND f.status = ANY(").push_bind(self.statuses.clone()).push(")");
        }
        if let Some(failed) = self.failed {
            sql.push(" AND f.failed = ").push_bind(failed);
        }
        if let Some(prefix) = &self.path_prefix {
            // A range of the primary key: paths compare bytewise (COLLATE "C").
            sql.push(" AND f.relative_path >= ").push_bind(prefix.clone()).push(" COLLATE \"C\"");
            if let Some(end) = prefix_end(prefix) {
                sql.push(" AND f.relative_path < ").push_bind(end).push(" COLLATE \"C\"");
            }
        }
        if let Some(part) = &self.path_contains {
            sql.push(" AND strpos(f.relative_path, ").push_bind(part.clone()).push(") > 0");
        }
    }
}

/// The least text above every text starting with `prefix`, bytewise; `None` when there is none
/// (a prefix of U+10FFFF only).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=0x10FFFF).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[derive(sqlx::FromRow)]
struct FileRecordRow {
    ingestion_id: i64,
    execution_arn: String,
    relative_path: String,
    kind: String,
    part: i32,
    ordinal: i32,
    status: String,
    failed: bool,
    file_type: Option<String>,
    source_size: Option<i64>,
    destination_size: Option<i64>,
    source_mtime: Option<String>,
    destination_mtime: Option<String>,
    source_checksum: Option<String>,
    destination_checksum: Option<String>,
    event_time: Option<String>,
    error_code: Option<String>,
    error_detail: Option<String>,
}

impl FileRecordRow {
    fn into_row(self) -> Result<FileRow, StoreError> {
        let kind = ReportKind::from_list(&self.kind).ok_or_else(|| StoreError::Snapshot {
            arn: self.execution_arn.clone(),
            source: sqlx::Error::Decode(format!("unknown report kind {:?}", self.kind).into()),
        })?;
        Ok(FileRow {
            ingestion_id: self.ingestion_id,
            execution_arn: identifier(&self.execution_arn)?,
            kind,
            part: self.part,
            ordinal: self.ordinal,
            failed: self.failed,
            record: ReportRecord {
                relative_path: self.relative_path,
                status: self.status,
                file_type: self.file_type,
                source_size: self.source_size,
                destination_size: self.destination_size,
                source_mtime: self.source_mtime,
                destination_mtime: self.destination_mtime,
                source_checksum: self.source_checksum,
                destination_checksum: self.destination_checksum,
                timestamp: self.event_time,
                error_code: self.error_code,
                error_detail: self.error_detail,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_lines_escape_what_the_text_format_would_misread() {
        let record = ReportRecord {
            relative_path: "dir\\with\ttab\nand\rreturn\0nul".into(),
            status: "FAILED".into(),
            source_size: Some(42),
            error_detail: Some("a \\N that is text".into()),
            ..ReportRecord::default()
        };
        let mut line = Vec::new();
        encode_row(&mut line, 7, ReportKind::Verified, 3, 9, &record);
        let line = String::from_utf8(line).unwrap();
        let fields: Vec<&str> = line.strip_suffix('\n').unwrap().split('\t').collect();
        assert_eq!(fields.len(), 17, "{line:?}");
        assert_eq!(
            fields[..7],
            ["7", "dir\\\\with\\ttab\\nand\\rreturnnul", "Verified", "3", "9", "FAILED", "t"]
        );
        assert_eq!(fields[7], "\\N");
        assert_eq!(fields[8], "42");
        assert_eq!(fields[16], "a \\\\N that is text");
    }

    #[test]
    fn a_prefix_ends_at_the_next_text_bytewise() {
        assert_eq!(prefix_end("dir-1/").as_deref(), Some("dir-10"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }

    #[test]
    fn cursors_read_back_and_refuse_what_was_not_issued() {
        let cursor = FileCursor {
            path: "dir-1/file.dat".into(),
            ingestion: 4,
            kind: "Verified".into(),
            part: 2,
            ordinal: 17,
        };
        assert_eq!(FileCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(FileCursor::decode("not a cursor"), None);
        assert_eq!(FileCursor::decode(&URL_SAFE_NO_PAD.encode(b"{\"path\": 1}")), None);
    }
}
