//! History and statistics: the filter input, the Relay connection, the stats groups.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Datelike, Utc};
use tracing::Instrument;

use super::query::cache_hint;
use super::{resolver_span, TaskExecutionNode};
use crate::datasync::arn::{is_region, validate_task_arn};
use crate::error::GatewayError;
use crate::history::{HistoryService, PageArgs};
use crate::model::{DataSyncEnum, EnumValue, Long, TaskExecutionStatus, TaskMode};
use crate::store::filter::SnapshotFilter;
use crate::store::history::Order;
use crate::store::stats::{Dimension, Percentiles, StatsRow};

/// Which recorded executions to include; conditions combine with AND.
#[derive(InputObject, Default)]
pub struct ExecutionFilter {
    /// Executions of any of these tasks (at most 100 ARNs).
    task_arns: Option<Vec<ID>>,
    /// Executions with any of these statuses (recorded executions are SUCCESS or ERROR).
    statuses: Option<Vec<TaskExecutionStatus>>,
    /// Executions in this AWS region, e.g. `us-east-1`.
    region: Option<String>,
    /// Executions of tasks in this 12-digit AWS account.
    account_id: Option<String>,
    /// Executions in this task mode.
    task_mode: Option<TaskMode>,
    /// Executions that started at or after this time.
    started_after: Option<DateTime<Utc>>,
    /// Executions that started before this time.
    started_before: Option<DateTime<Utc>>,
    /// Executions that failed with this DataSync error code.
    error_code: Option<String>,
    /// Only executions still running (true) or only finished ones (false).
    running: Option<bool>,
    /// Executions whose indexed state changed at or after this time.
    updated_after: Option<DateTime<Utc>>,
}

impl ExecutionFilter {
    /// This filter, narrowed to one task's executions.
    pub fn for_task(self, task_arn: &str) -> Self {
        ExecutionFilter { task_arns: Some(vec![ID(task_arn.to_owned())]), ..self }
    }

    pub(super) fn validate(self) -> Result<SnapshotFilter, GatewayError> {
        let bad = |message: String| GatewayError::BadUserInput(message);
        let task_arns: Vec<String> =
            self.task_arns.unwrap_or_default().into_iter().map(|arn| arn.0).collect();
        if task_arns.len() > 100 {
            return Err(bad(format!("filter.taskArns takes at most 100 ARNs; got {}", task_arns.len())));
        }
        for arn in &task_arns {
            validate_task_arn(arn).map_err(|invalid| bad(format!("filter.taskArns: {invalid}")))?;
        }
        let statuses = self
            .statuses
            .unwrap_or_default()
            .into_iter()
            .map(|status| status.wire().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("filter.statuses: UNKNOWN is not a status to filter by".into()))?;
        let task_mode = self
            .task_mode
            .map(|mode| {
                mode.wire().ok_or_else(|| bad("filter.taskMode: UNKNOWN is not a mode to filter by".into()))
            })
            .transpose()?
            .map(str::to_owned);
        if self.region.as_deref().is_some_and(|region| !is_region(region)) {
            return Err(bad("filter.region must look like `us-east-1`".into()));
        }
        if let Some(account) = &self.account_id {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("filter.accountId must be 12 digits".into()));
            }
        }
        if self
            .error_code
            .as_ref()
            .is_some_and(|code| code.is_empty() || code.len() > 256 || code.contains('\0'))
        {
            return Err(bad("filter.errorCode must be 1 to 256 characters, without NUL".into()));
        }
        for (name, time) in [
            ("startedAfter", self.started_after),
            ("startedBefore", self.started_before),
            ("updatedAfter", self.updated_after),
        ] {
            if time.is_some_and(|time| !(1..=9999).contains(&time.year())) {
                return Err(bad(format!("filter.{name} must be between the years 1 and 9999")));
            }
        }
        if let (Some(after), Some(before)) = (self.started_after, self.started_before) {
            if after >= before {
                return Err(bad("filter.startedAfter must be earlier than filter.startedBefore".into()));
            }
        }
        Ok(SnapshotFilter {
            task_arns,
            statuses,
            region: self.region,
            account_id: self.account_id,
            task_mode,
            started_after: self.started_after,
            started_before: self.started_before,
            error_code: self.error_code,
            running: self.running,
            updated_after: self.updated_after,
        })
    }
}

/// The order of history pages.
#[derive(Enum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HistoryOrder {
    /// Latest start first; ties broken by ARN.
    #[default]
    StartedAtDesc,
    /// Earliest start first; ties broken by ARN.
    StartedAtAsc,
}

/// What statistics can be grouped by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsDimension {
    /// The task ARN.
    Task,
    /// SUCCESS or ERROR.
    Status,
    /// The UTC day the execution started.
    Day,
    /// The AWS region.
    Region,
    /// DataSync's error code (null for executions without one).
    ErrorCode,
}

/// Figures for one group of recorded executions. Key fields not grouped by are null.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ExecutionStatsGroup {
    /// The task, when grouped by TASK.
    task_arn: Option<String>,
    /// The status, when grouped by STATUS.
    status: Option<EnumValue<TaskExecutionStatus>>,
    /// The UTC day (YYYY-MM-DD) executions started, when grouped by DAY.
    day: Option<String>,
    /// The region, when grouped by REGION.
    region: Option<String>,
    /// The error code, when grouped by ERROR_CODE.
    error_code: Option<String>,
    /// Executions in the group.
    count: Long,
    /// Of which SUCCESS.
    succeeded: Long,
    /// Of which ERROR.
    failed: Long,
    /// Sum of `bytesTransferred`.
    bytes_transferred: Long,
    /// Sum of `bytesWritten`.
    bytes_written: Long,
    /// Sum of `filesTransferred`.
    files_transferred: Long,
    /// Mean of `result.totalDuration`, in milliseconds.
    avg_duration_ms: Option<f64>,
    /// Median of `result.totalDuration`, in milliseconds, interpolated as SQL's
    /// `percentile_cont`. Within 1% of it when read from the daily rollups (a filter without
    /// `running`, `updatedAfter` or a time of day in its bounds); exact with `exact: true`.
    p50_duration_ms: Option<f64>,
    /// 95th percentile of `result.totalDuration`, in milliseconds, read as `p50DurationMs`.
    p95_duration_ms: Option<f64>,
}

#[async_graphql::ComplexObject]
impl ExecutionStatsGroup {
    /// `succeeded / count`, 0–1.
    async fn success_rate(&self) -> Option<f64> {
        (self.count.0 > 0).then(|| self.succeeded.0 as f64 / self.count.0 as f64)
    }
}

impl From<StatsRow> for ExecutionStatsGroup {
    fn from(row: StatsRow) -> Self {
        ExecutionStatsGroup {
            task_arn: row.key.task_arn,
            status: row.key.status.map(EnumValue::from_wire),
            day: row.key.day,
            region: row.key.region,
            error_code: row.key.error_code,
            count: row.count.into(),
            succeeded: row.succeeded.into(),
            failed: row.failed.into(),
            bytes_transferred: row.bytes_transferred.into(),
            bytes_written: row.bytes_written.into(),
            files_transferred: row.files_transferred.into(),
            avg_duration_ms: row.avg_duration_ms,
            p50_duration_ms: row.p50_duration_ms,
            p95_duration_ms: row.p95_duration_ms,
        }
    }
}

/// Figures about a whole history query, computed only when asked for.
pub struct HistoryTotals {
    history: HistoryService,
    filter: SnapshotFilter,
}

#[Object]
impl HistoryTotals {
    /// How many recorded executions match the filter (one extra query; ask only when needed).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<Long> {
        let count = self.history.count(&self.filter).instrument(resolver_span(ctx)).await;
        Ok(count.map_err(|error| error.extend())?.into())
    }
}

pub type HistoryConnection = Connection<String, TaskExecutionNode, HistoryTotals, EmptyFields>;

/// The filter restricted to `scope`; asking a finished-only field for running executions is a
/// mistake worth saying.
fn scoped(
    filter: Result<SnapshotFilter, GatewayError>,
    scope: Scope,
) -> Result<SnapshotFilter, GatewayError> {
    let mut filter = filter?;
    if scope == Scope::Finished {
        if filter.running == Some(true) {
            return Err(GatewayError::BadUserInput(
                "history and statistics cover finished executions; use `executions` for running ones".into(),
            ));
        }
        filter.running = Some(false);
    }
    Ok(filter)
}

fn history_service<'a>(ctx: &Context<'a>) -> Result<&'a HistoryService> {
    ctx.data_opt::<HistoryService>().ok_or_else(|| GatewayError::HistoryNotConfigured.extend())
}

/// Which executions a page covers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every execution the index holds, running and finished (`executions`).
    All,
    /// Finished ones only (`executionHistory`, statistics).
    Finished,
}

/// A page of the index, as a Relay connection.
pub async fn execution_page(
    ctx: &Context<'_>,
    filter: Option<ExecutionFilter>,
    order_by: HistoryOrder,
    args: PageArgs,
    scope: Scope,
) -> Result<HistoryConnection> {
    let history = history_service(ctx)?;
    let filter = scoped(filter.unwrap_or_default().validate(), scope).map_err(|error| error.extend())?;
    let order = match order_by {
        HistoryOrder::StartedAtDesc => Order::NewestFirst,
        HistoryOrder::StartedAtAsc => Order::OldestFirst,
    };
    let page = history.page(&filter, order, args).instrument(resolver_span(ctx)).await;
    let page = page.map_err(|error| error.extend())?;
    let hint = cache_hint(ctx);
    hint.served_history();
    let totals = HistoryTotals { history: history.clone(), filter };
    let mut connection =
        Connection::with_additional_fields(page.has_previous_page, page.has_next_page, totals);
    connection.edges.extend(page.rows.into_iter().map(|(cursor, fetched)| {
        hint.served(&fetched);
        Edge::new(cursor, fetched.into())
    }));
    Ok(connection)
}

pub async fn execution_stats(
    ctx: &Context<'_>,
    filter: Option<ExecutionFilter>,
    group_by: Vec<StatsDimension>,
    exact: bool,
) -> Result<Vec<ExecutionStatsGroup>> {
    let history = history_service(ctx)?;
    let filter =
        scoped(filter.unwrap_or_default().validate(), Scope::Finished).map_err(|error| error.extend())?;
    let dimensions: Vec<Dimension> = group_by
        .into_iter()
        .map(|dimension| match dimension {
            StatsDimension::Task => Dimension::Task,
            StatsDimension::Status => Dimension::Status,
            StatsDimension::Day => Dimension::Day,
            StatsDimension::Region => Dimension::Region,
            StatsDimension::ErrorCode => Dimension::ErrorCode,
        })
        .collect();
    // Histograms are read only when a percentile is selected.
    let selected = ctx.look_ahead();
    let percentiles = if exact {
        Percentiles::Exact
    } else if selected.field("p50DurationMs").exists() || selected.field("p95DurationMs").exists() {
        Percentiles::Approximate
    } else {
        Percentiles::NotWanted
    };
    let rows = history.stats(&filter, &dimensions, percentiles).instrument(resolver_span(ctx)).await;
    let rows = rows.map_err(|error| error.extend())?;
    cache_hint(ctx).served_history();
    Ok(rows.into_iter().map(ExecutionStatsGroup::from).collect())
}
