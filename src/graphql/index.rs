//! The index's GraphQL face: the filter input, the Relay connection of executions (all, or
//! history: the finished ones), the statistics groups. Thin over [`IndexService`].

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::context::{cache_hint, caller, index, resolver_span, Coded};
use super::TaskExecutionNode;
use crate::error::GatewayError;
use crate::model::{
    AccountId, DataSyncEnum, EnumValue, ExecutionOrder, Long, Region, StatsDimension, TaskArn,
    TaskExecutionStatus, TaskMode,
};
use crate::request::Caller;
use crate::service::index::{
    IndexPage, IndexService, PageArgs, Percentiles, Scope, SnapshotFilter, StatsRow,
};

/// Which recorded executions to include; conditions combine with AND.
#[derive(InputObject, Default)]
pub struct ExecutionFilter {
    /// Executions of any of these tasks (at most 100 ARNs).
    task_arns: Option<Vec<ID>>,
    /// Executions with any of these statuses (recorded executions are SUCCESS or ERROR).
    statuses: Option<Vec<TaskExecutionStatus>>,
    /// Executions in this AWS region, e.g. `us-east-1`.
    region: Option<String>,
    /// Executions of tasks in this 12-digit AWS account (the one-account form of `accountIds`;
    /// not with it).
    account_id: Option<String>,
    /// Executions of tasks in any of these 12-digit AWS accounts (at most 100).
    account_ids: Option<Vec<String>>,
    /// Executions in this task mode.
    task_mode: Option<TaskMode>,
    /// Executions that started at or after this time.
    started_after: Option<DateTime<Utc>>,
    /// Executions that started before this time.
    started_before: Option<DateTime<Utc>>,
    /// Executions that ended at or after this time (only those that have ended).
    ended_after: Option<DateTime<Utc>>,
    /// Executions that ended before this time (only those that have ended).
    ended_before: Option<DateTime<Utc>>,
    /// Executions that failed with this DataSync error code.
    error_code: Option<String>,
    /// Only executions still running (true) or only finished ones (false).
    running: Option<bool>,
    /// Executions whose indexed state changed at or after this time.
    updated_after: Option<DateTime<Utc>>,
}

impl ExecutionFilter {
    /// This filter, narrowed to one task's executions.
    pub fn for_task(self, task_arn: &TaskArn) -> Self {
        ExecutionFilter { task_arns: Some(vec![ID(task_arn.to_string())]), ..self }
    }
}

/// The filter as the index reads it, narrowed to the accounts `caller` may see: identifiers
/// parsed here, where the text enters; enums as DataSync's strings (`UNKNOWN` is no status to
/// filter by). Its bounds are the service's to check. Every read of the index from GraphQL
/// (pages, counts, statistics, events) takes its filter from here.
pub fn snapshot_filter(
    filter: Option<ExecutionFilter>,
    caller: &Caller,
) -> Result<SnapshotFilter, GatewayError> {
    let visible_accounts = caller.accounts().accounts().map(<[AccountId]>::to_vec);
    Ok(SnapshotFilter { visible_accounts, ..parse_filter(filter)? })
}

fn parse_filter(filter: Option<ExecutionFilter>) -> Result<SnapshotFilter, GatewayError> {
    {
        let filter = filter.unwrap_or_default();
        let bad = |message: String| GatewayError::BadUserInput(message);
        let task_arns = filter
            .task_arns
            .unwrap_or_default()
            .iter()
            .map(|arn| TaskArn::parse(arn).map_err(|invalid| bad(format!("filter.taskArns: {invalid}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let statuses = filter
            .statuses
            .unwrap_or_default()
            .into_iter()
            .map(|status| status.wire().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("filter.statuses: UNKNOWN is not a status to filter by".into()))?;
        let task_mode = filter
            .task_mode
            .map(|mode| {
                mode.wire().ok_or_else(|| bad("filter.taskMode: UNKNOWN is not a mode to filter by".into()))
            })
            .transpose()?
            .map(str::to_owned);
        let region = filter
            .region
            .map(|region| {
                Region::parse(&region).map_err(|_| bad("filter.region must look like `us-east-1`".into()))
            })
            .transpose()?;
        if filter.account_id.is_some() && filter.account_ids.is_some() {
            return Err(bad("filter: give accountId or accountIds, not both".into()));
        }
        let account_ids = (filter.account_id.into_iter().chain(filter.account_ids.into_iter().flatten()))
            .map(|account| {
                AccountId::parse(&account)
                    .map_err(|_| bad("filter.accountId and filter.accountIds must be 12 digits".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SnapshotFilter {
            task_arns,
            statuses,
            region,
            account_ids,
            visible_accounts: None,
            task_mode,
            started_after: filter.started_after,
            started_before: filter.started_before,
            ended_after: filter.ended_after,
            ended_before: filter.ended_before,
            error_code: filter.error_code,
            running: filter.running,
            updated_after: filter.updated_after,
        })
    }
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
    /// The 12-digit account, when grouped by ACCOUNT.
    account_id: Option<String>,
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
            account_id: row.key.account_id,
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
    index: IndexService,
    filter: SnapshotFilter,
}

#[Object]
impl HistoryTotals {
    /// How many recorded executions match the filter (one extra query; ask only when needed).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<Long> {
        let count = self.index.count(&self.filter).instrument(resolver_span(ctx)).await;
        Ok(count.coded()?.into())
    }
}

pub type HistoryConnection = Connection<String, TaskExecutionNode, HistoryTotals, EmptyFields>;

/// A page of the executions in `scope`, as a Relay connection.
pub async fn page(
    ctx: &Context<'_>,
    filter: Option<ExecutionFilter>,
    scope: Scope,
    order_by: ExecutionOrder,
    args: PageArgs,
) -> Result<HistoryConnection> {
    let service = index(ctx)?;
    let page = service.page(snapshot_filter(filter, caller(ctx)?).coded()?, scope, order_by, args);
    connection(ctx, service, page.instrument(resolver_span(ctx)).await.coded()?)
}

fn connection(ctx: &Context<'_>, service: &IndexService, page: IndexPage) -> Result<HistoryConnection> {
    let hint = cache_hint(ctx);
    hint.served_history();
    let totals = HistoryTotals { index: service.clone(), filter: page.filter };
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
    let service = index(ctx)?;
    // Histograms are read only when a percentile is selected.
    let selected = ctx.look_ahead();
    let percentiles = if exact {
        Percentiles::Exact
    } else if selected.field("p50DurationMs").exists() || selected.field("p95DurationMs").exists() {
        Percentiles::Approximate
    } else {
        Percentiles::NotWanted
    };
    let rows = service.stats(snapshot_filter(filter, caller(ctx)?).coded()?, &group_by, percentiles);
    let rows = rows.instrument(resolver_span(ctx)).await.coded()?;
    cache_hint(ctx).served_history();
    Ok(rows.into_iter().map(ExecutionStatsGroup::from).collect())
}
