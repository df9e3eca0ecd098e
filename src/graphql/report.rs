//! Task reports' GraphQL face: `TaskExecution.report`, with what the gateway stored of it
//! (ingestion, counts, files), `reportFiles` across executions and `failingPaths`. Thin over
//! [`ReportService`].

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;
use tracing::Instrument;

use super::context::{cache_hint, caller, resolver_span, task_arn, Coded};
use super::index::{snapshot_filter, ExecutionFilter};
use crate::error::GatewayError;
use crate::model::{
    EnumValue, IngestionState, Long, PhaseStatus, RecordsKept, ReportKind, ReportOutputType, TaskExecution,
};
use crate::service::reports::{
    FailingPath, FileCursor, FileFilter, FilePage, FileRow, Ingestion, ReportService, StoredPart,
};

/// The report service; without a database, the error every stored-report field answers.
fn reports<'a>(ctx: &Context<'a>) -> Result<&'a ReportService> {
    cache_hint(ctx).served_other();
    ctx.data_opt::<ReportService>()
        .ok_or_else(|| async_graphql::ErrorExtensions::extend(&GatewayError::HistoryNotConfigured))
}

/// An execution's task report: DataSync's result, and the records the gateway stored of it.
pub struct TaskReportNode {
    execution: Arc<TaskExecution>,
    ingestion: OnceCell<Option<Ingestion>>,
}

impl TaskReportNode {
    /// The report of `execution`, if it has a report config.
    pub fn of(execution: &Arc<TaskExecution>) -> Option<Self> {
        execution
            .task_report_config
            .is_some()
            .then(|| TaskReportNode { execution: execution.clone(), ingestion: OnceCell::new() })
    }

    async fn stored(&self, ctx: &Context<'_>) -> Result<Option<&Ingestion>> {
        let service = reports(ctx)?;
        let arn = &self.execution.task_execution_arn;
        let ingestion = self
            .ingestion
            .get_or_try_init(|| async { service.ingestion(arn).instrument(resolver_span(ctx)).await.coded() })
            .await?;
        Ok(ingestion.as_ref())
    }
}

#[Object(name = "TaskReport")]
impl TaskReportNode {
    /// DataSync's: still writing it (PENDING), written whole (SUCCESS), or incomplete (ERROR).
    async fn status(&self) -> Option<&EnumValue<PhaseStatus>> {
        self.execution.report_result.as_ref()?.status.as_ref()
    }

    /// SUMMARY_ONLY reports have no per-file records to store.
    async fn output_type(&self) -> Option<&EnumValue<ReportOutputType>> {
        self.execution.task_report_config.as_ref()?.output_type.as_ref()
    }

    /// What the gateway stored of the report's records: null until DataSync has written a
    /// STANDARD report whole (or where the gateway has no database).
    async fn ingestion(&self, ctx: &Context<'_>) -> Result<Option<ReportIngestion>> {
        let Some(ingestion) = self.stored(ctx).await? else { return Ok(None) };
        let parts = reports(ctx)?.parts(ingestion.id).instrument(resolver_span(ctx)).await.coded()?;
        Ok(Some(ReportIngestion::new(ingestion, parts)))
    }

    /// Records stored, per kind and status.
    async fn counts(&self, ctx: &Context<'_>) -> Result<Vec<ReportCount>> {
        let Some(ingestion) = self.stored(ctx).await? else { return Ok(Vec::new()) };
        let counts = reports(ctx)?.counts(ingestion.id).instrument(resolver_span(ctx)).await.coded()?;
        Ok(counts
            .into_iter()
            .map(|(kind, status, count)| ReportCount { kind, status, count: count.into() })
            .collect())
    }

    /// The records stored, sorted by path (then kind): at most 1,000 a page, 100 by default.
    #[graphql(complexity = "super::context::sized_complexity(first, 100, 1000, child_complexity)")]
    async fn files(
        &self,
        ctx: &Context<'_>,
        filter: Option<ReportFileFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ReportFileConnection> {
        let Some(ingestion) = self.stored(ctx).await? else {
            return Ok(Connection::new(false, false));
        };
        let filter = filter.unwrap_or_default().parsed();
        let page = reports(ctx)?.files(ingestion.id, &filter, first, after.as_deref());
        Ok(connection(page.instrument(resolver_span(ctx)).await.coded()?))
    }
}

/// What the gateway stored of a report.
#[derive(SimpleObject)]
pub struct ReportIngestion {
    state: IngestionState,
    /// Which records were kept (`--report-records`); null until it ends.
    kept: Option<RecordsKept>,
    /// Records read from the parts stored so far.
    records_read: Long,
    /// Records stored (all, or the errors among those read).
    records_kept: Long,
    /// The per-execution cap (`--report-max-records`) was reached: parts after it were not read.
    truncated: bool,
    /// Why it failed or is incomplete, or why the last attempt was interrupted.
    error: Option<String>,
    attempts: i32,
    /// Parts stored (or found unreadable) so far.
    parts: i32,
    /// Parts that could not be read, with why; their records are not stored.
    failed_parts: Vec<ReportPartFailure>,
    queued_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl ReportIngestion {
    fn new(ingestion: &Ingestion, parts: Vec<StoredPart>) -> Self {
        ReportIngestion {
            state: ingestion.state,
            kept: ingestion.kept,
            records_read: ingestion.records_read.into(),
            records_kept: ingestion.records_kept.into(),
            truncated: ingestion.truncated,
            error: ingestion.error.clone(),
            attempts: ingestion.attempts,
            parts: i32::try_from(parts.len()).unwrap_or(i32::MAX),
            failed_parts: parts
                .into_iter()
                .filter_map(|part| {
                    Some(ReportPartFailure {
                        error: part.error?,
                        key: part.key,
                        kind: part.kind,
                        part: part.part,
                    })
                })
                .collect(),
            queued_at: ingestion.queued_at,
            finished_at: ingestion.finished_at,
        }
    }
}

/// A report part whose records could not be stored.
#[derive(SimpleObject)]
pub struct ReportPartFailure {
    /// The object's S3 key.
    key: String,
    kind: ReportKind,
    /// Its number, from 1.
    part: i32,
    error: String,
}

#[derive(SimpleObject)]
pub struct ReportCount {
    kind: ReportKind,
    /// DataSync's status, e.g. SUCCESS or FAILED.
    status: String,
    count: Long,
}

/// Which records of a report; conditions combine with AND.
#[derive(InputObject, Default)]
pub struct ReportFileFilter {
    kinds: Option<Vec<ReportKind>>,
    /// DataSync's statuses, e.g. `["FAILED"]`.
    statuses: Option<Vec<String>>,
    /// Only failures, mismatches and skips for a reason (true), or only the rest (false).
    failed: Option<bool>,
    /// Paths starting with this (relative to the location, without a leading `/`).
    path_prefix: Option<String>,
    /// Paths containing this.
    path_contains: Option<String>,
}

impl ReportFileFilter {
    fn parsed(self) -> FileFilter {
        FileFilter {
            kinds: self.kinds.unwrap_or_default(),
            statuses: self.statuses.unwrap_or_default(),
            failed: self.failed,
            // Stored paths have no leading `/` (Basic mode writes one, Enhanced mode does not).
            path_prefix: self.path_prefix.map(|prefix| prefix.trim_start_matches('/').to_owned()),
            path_contains: self.path_contains,
        }
    }
}

/// Which records across executions; conditions combine with AND.
#[derive(InputObject, Default)]
pub struct ReportFilesFilter {
    /// Records of these executions (the execution filter of `executions`).
    executions: Option<ExecutionFilter>,
    /// Which records of them.
    files: Option<ReportFileFilter>,
}

/// One file of a task report, as the report gives it.
pub struct ReportFileNode(FileRow);

#[Object(name = "ReportFile")]
impl ReportFileNode {
    /// The execution whose report lists it.
    async fn task_execution_arn(&self) -> ID {
        ID(self.0.execution_arn.to_string())
    }

    /// Which of the report's lists it is in.
    async fn kind(&self) -> ReportKind {
        self.0.kind
    }

    /// DataSync's status (`SUCCESS`, `FAILED`, …).
    async fn status(&self) -> &str {
        &self.0.record.status
    }

    /// Anything but a success: a failure, a mismatch, a skip for a reason.
    async fn failed(&self) -> bool {
        self.0.failed
    }

    /// Relative to the location, without a leading `/` (whichever task mode wrote it).
    async fn relative_path(&self) -> &str {
        &self.0.record.relative_path
    }

    /// `Regular`, `Directory`, `Object`, …
    async fn file_type(&self) -> Option<&str> {
        self.0.record.file_type.as_deref()
    }

    async fn source_size(&self) -> Option<Long> {
        self.0.record.source_size.map(Long::from)
    }

    async fn destination_size(&self) -> Option<Long> {
        self.0.record.destination_size.map(Long::from)
    }

    /// As the report writes it (ISO 8601, with DataSync's nanoseconds).
    async fn source_mtime(&self) -> Option<&str> {
        self.0.record.source_mtime.as_deref()
    }

    async fn destination_mtime(&self) -> Option<&str> {
        self.0.record.destination_mtime.as_deref()
    }

    /// E.g. `SHA256:…`.
    async fn source_checksum(&self) -> Option<&str> {
        self.0.record.source_checksum.as_deref()
    }

    async fn destination_checksum(&self) -> Option<&str> {
        self.0.record.destination_checksum.as_deref()
    }

    /// When DataSync transferred, verified, deleted or skipped it (as the report writes it).
    async fn timestamp(&self) -> Option<&str> {
        self.0.record.timestamp.as_deref()
    }

    /// Enhanced mode's `ErrorCode`, or Basic mode's numeric `FailureCode`.
    async fn error_code(&self) -> Option<&str> {
        self.0.record.error_code.as_deref()
    }

    /// Enhanced mode's `ErrorDetail`, or Basic mode's `FailureReason`.
    async fn error_detail(&self) -> Option<&str> {
        self.0.record.error_detail.as_deref()
    }
}

pub type ReportFileConnection = Connection<String, ReportFileNode, EmptyFields, EmptyFields>;

fn connection(page: FilePage) -> ReportFileConnection {
    let mut connection = Connection::new(false, page.has_next_page);
    connection.edges.extend(
        page.rows.into_iter().map(|row| Edge::new(FileCursor::of(&row).encode(), ReportFileNode(row))),
    );
    connection
}

/// A path that failed in several executions of a task.
pub struct FailingPathNode(FailingPath);

#[Object(name = "FailingPath")]
impl FailingPathNode {
    async fn relative_path(&self) -> &str {
        &self.0.relative_path
    }

    /// Executions whose report lists it as failed.
    async fn executions(&self) -> Long {
        self.0.executions.into()
    }

    /// The latest of them (by start).
    async fn last_task_execution_arn(&self) -> ID {
        ID(self.0.last_execution_arn.to_string())
    }

    /// When that execution started.
    async fn last_started_at(&self) -> DateTime<Utc> {
        self.0.last_started_at
    }

    /// Its error there.
    async fn last_error_code(&self) -> Option<&str> {
        self.0.last_error_code.as_deref()
    }

    async fn last_error_detail(&self) -> Option<&str> {
        self.0.last_error_detail.as_deref()
    }

    /// The lists it failed in (transferred, verified, …).
    async fn kinds(&self) -> &[ReportKind] {
        &self.0.kinds
    }
}

/// `Query.reportFiles`.
pub async fn report_files(
    ctx: &Context<'_>,
    filter: Option<ReportFilesFilter>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<ReportFileConnection> {
    let filter = filter.unwrap_or_default();
    let executions = snapshot_filter(filter.executions, caller(ctx)?).coded()?;
    let files = filter.files.unwrap_or_default().parsed();
    let page = reports(ctx)?.across(executions, &files, first, after.as_deref());
    Ok(connection(page.instrument(resolver_span(ctx)).await.coded()?))
}

/// `Query.failingPaths`.
pub async fn failing_paths(
    ctx: &Context<'_>,
    task: ID,
    since: Option<DateTime<Utc>>,
    first: Option<i32>,
) -> Result<Vec<FailingPathNode>> {
    let task = task_arn(&task).coded()?;
    let caller = caller(ctx)?;
    let visible = caller.accounts().accounts();
    let paths = reports(ctx)?.failing_paths(&task, since, visible, first);
    Ok(paths.instrument(resolver_span(ctx)).await.coded()?.into_iter().map(FailingPathNode).collect())
}
