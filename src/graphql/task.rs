//! The `Task` and `Location` objects, and the `tasks` connection.
//!
//! A task listed by `tasks` is known by its ListTasks entry (ARN, name, status); the rest of its
//! fields come from DescribeTask, fetched (through the task cache) only when a query selects one.

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, InputObject, Object, Result, ID};
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;
use tracing::Instrument;

use super::context::{caller, page_complexity, read_execution, resolver_span, tasks as task_service, Coded};
use super::index::{self, execution_stats, ExecutionFilter, ExecutionStatsGroup, HistoryConnection};
use super::TaskExecutionNode;
use crate::error::GatewayError;
use crate::model::{
    AccountId, EnumValue, ExecutionArn, ExecutionOrder, FilterRule, Location, LocationArn, ManifestConfig,
    StatsDimension, Task, TaskArn, TaskExecutionOptions, TaskMode, TaskReportConfig, TaskSchedule,
    TaskScheduleDetails, TaskStatus, TaskSummary,
};
use crate::service::executions::Consistency;
use crate::service::index::{PageArgs, Scope};
use crate::service::tasks::TaskListing;

/// One DataSync task: what it copies from where to where, and how.
pub struct TaskNode {
    arn: TaskArn,
    /// The ListTasks entry, when the node came from a list (or a cached one was found).
    summary: OnceCell<Option<TaskSummary>>,
    described: OnceCell<Arc<Task>>,
}

impl TaskNode {
    pub fn from_arn(arn: TaskArn) -> Self {
        TaskNode { arn, summary: OnceCell::new(), described: OnceCell::new() }
    }

    fn from_summary(summary: TaskSummary) -> Self {
        TaskNode {
            arn: summary.task_arn.clone(),
            summary: OnceCell::new_with(Some(Some(summary))),
            described: OnceCell::new(),
        }
    }

    pub fn described_already(task: Arc<Task>) -> Self {
        TaskNode {
            arn: task.task_arn.clone(),
            summary: OnceCell::new_with(Some(None)),
            described: OnceCell::new_with(Some(task)),
        }
    }

    /// The task's list entry: the node's own, else the cached list's (no AWS call either way).
    async fn summary(&self, ctx: &Context<'_>) -> Option<&TaskSummary> {
        self.summary.get_or_init(|| task_service(ctx).cached_summary(&self.arn)).await.as_ref()
    }

    /// DescribeTask's answer, fetched once per object (and cached across requests). Boxed: the
    /// SDK call's future is large, and each of the ~20 fields below would otherwise carry a copy
    /// of it in the object's resolver (a stack overflow in debug builds).
    async fn described(&self, ctx: &Context<'_>) -> Result<&Arc<Task>> {
        self.described
            .get_or_try_init(|| {
                Box::pin(async {
                    let task = task_service(ctx).get(&self.arn, caller(ctx)?).instrument(resolver_span(ctx));
                    task.await.coded()
                })
            })
            .await
    }
}

#[Object(name = "Task")]
impl TaskNode {
    /// The task ARN: globally unique, so it serves as the object's identity (`Node`).
    pub async fn id(&self) -> ID {
        ID(self.arn.to_string())
    }

    /// The task's ARN.
    async fn task_arn(&self) -> &TaskArn {
        &self.arn
    }

    /// The AWS region the task is in.
    async fn region(&self) -> &str {
        self.arn.region()
    }

    /// The AWS account that owns the task.
    async fn account_id(&self) -> AccountId {
        self.arn.account_id()
    }

    /// The task's name, if it was given one.
    async fn name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        match self.summary(ctx).await {
            Some(summary) => Ok(summary.name.clone()),
            None => Ok(self.described(ctx).await?.name.clone()),
        }
    }

    /// AVAILABLE, RUNNING, …; `UNKNOWN` for a value this gateway does not know (see `statusRaw`).
    async fn status(&self, ctx: &Context<'_>) -> Result<EnumValue<TaskStatus>> {
        match self.summary(ctx).await {
            Some(summary) => Ok(summary.status.clone()),
            None => Ok(self.described(ctx).await?.status.clone()),
        }
    }

    /// Exactly the status string DataSync sent.
    async fn status_raw(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.status(ctx).await?.raw().to_owned())
    }

    /// Basic or Enhanced mode.
    async fn task_mode(&self, ctx: &Context<'_>) -> Result<Option<EnumValue<TaskMode>>> {
        Ok(self.described(ctx).await?.task_mode.clone())
    }

    /// Where data is read from.
    async fn source_location_arn(&self, ctx: &Context<'_>) -> Result<Option<LocationArn>> {
        Ok(self.described(ctx).await?.source_location_arn.clone())
    }

    /// Where data is written to.
    async fn destination_location_arn(&self, ctx: &Context<'_>) -> Result<Option<LocationArn>> {
        Ok(self.described(ctx).await?.destination_location_arn.clone())
    }

    /// The source location with its URI; null when DataSync does not list it.
    async fn source_location(&self, ctx: &Context<'_>) -> Result<Option<Location>> {
        let arn = self.described(ctx).await?.source_location_arn.clone();
        location(ctx, arn).await
    }

    /// The destination location with its URI; null when DataSync does not list it.
    async fn destination_location(&self, ctx: &Context<'_>) -> Result<Option<Location>> {
        let arn = self.described(ctx).await?.destination_location_arn.clone();
        location(ctx, arn).await
    }

    /// The CloudWatch log group executions log to.
    async fn cloud_watch_log_group_arn(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.described(ctx).await?.cloud_watch_log_group_arn.clone())
    }

    /// The ARNs of the network interfaces DataSync created for traffic at the source location.
    async fn source_network_interface_arns(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self.described(ctx).await?.source_network_interface_arns.clone())
    }

    /// The ARNs of the network interfaces DataSync created for traffic at the destination.
    async fn destination_network_interface_arns(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(self.described(ctx).await?.destination_network_interface_arns.clone())
    }

    /// The task's default options; an execution may override them.
    async fn options(&self, ctx: &Context<'_>) -> Result<Option<TaskExecutionOptions>> {
        Ok(self.described(ctx).await?.options.clone())
    }

    /// Filter rules that exclude data.
    async fn excludes(&self, ctx: &Context<'_>) -> Result<Vec<FilterRule>> {
        Ok(self.described(ctx).await?.excludes.clone())
    }

    /// Filter rules that limit the transfer to matching data.
    async fn includes(&self, ctx: &Context<'_>) -> Result<Vec<FilterRule>> {
        Ok(self.described(ctx).await?.includes.clone())
    }

    /// The manifest listing what to transfer, when one is used.
    async fn manifest_config(&self, ctx: &Context<'_>) -> Result<Option<ManifestConfig>> {
        Ok(self.described(ctx).await?.manifest_config.clone())
    }

    /// Where and how task reports are written, when configured.
    async fn task_report_config(&self, ctx: &Context<'_>) -> Result<Option<TaskReportConfig>> {
        Ok(self.described(ctx).await?.task_report_config.clone())
    }

    /// When the task runs on its own, if it is scheduled.
    async fn schedule(&self, ctx: &Context<'_>) -> Result<Option<TaskSchedule>> {
        Ok(self.described(ctx).await?.schedule.clone())
    }

    /// Why and when the schedule was last enabled or disabled.
    async fn schedule_details(&self, ctx: &Context<'_>) -> Result<Option<TaskScheduleDetails>> {
        Ok(self.described(ctx).await?.schedule_details.clone())
    }

    /// Why the task is UNAVAILABLE, if it is.
    async fn error_code(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.described(ctx).await?.error_code.clone())
    }

    /// Details of `errorCode`.
    async fn error_detail(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.described(ctx).await?.error_detail.clone())
    }

    /// When the task was created.
    async fn creation_time(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(self.described(ctx).await?.creation_time)
    }

    /// The ARN of the execution running now, if any.
    async fn current_task_execution_arn(&self, ctx: &Context<'_>) -> Result<Option<ExecutionArn>> {
        Ok(self.described(ctx).await?.current_task_execution_arn.clone())
    }

    /// The execution running now, if any, read as `taskExecution` reads it.
    async fn current_execution(&self, ctx: &Context<'_>) -> Result<Option<TaskExecutionNode>> {
        match self.described(ctx).await?.current_task_execution_arn.clone() {
            Some(arn) => Box::pin(read_execution(ctx, &arn, Consistency::Cached)).await.map(Some),
            None => Ok(None),
        }
    }

    /// The task's executions in the gateway's index, running and finished, as `executions`.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_complexity(first.or(last), child_complexity)")]
    async fn executions(
        &self,
        ctx: &Context<'_>,
        filter: Option<ExecutionFilter>,
        #[graphql(default_with = "Some(ExecutionOrder::StartedAtDesc)")] order_by: Option<ExecutionOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<HistoryConnection> {
        let filter = Some(filter.unwrap_or_default().for_task(&self.arn));
        let args = PageArgs { first, after, last, before };
        Box::pin(index::page(ctx, filter, Scope::All, order_by.unwrap_or_default(), args)).await
    }

    /// The task's most recently started execution in the index.
    async fn latest_execution(&self, ctx: &Context<'_>) -> Result<Option<TaskExecutionNode>> {
        let filter = Some(ExecutionFilter::default().for_task(&self.arn));
        let args = PageArgs { first: Some(1), ..PageArgs::default() };
        let page =
            Box::pin(index::page(ctx, filter, Scope::All, ExecutionOrder::StartedAtDesc, args)).await?;
        Ok(page.edges.into_iter().next().map(|edge| edge.node))
    }

    /// Statistics of the task's finished executions, as `executionStats` with this task.
    #[graphql(complexity = "100 * child_complexity")]
    async fn stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(Vec::new())")] group_by: Option<Vec<StatsDimension>>,
        #[graphql(default_with = "Some(false)")] exact: Option<bool>,
    ) -> Result<Vec<ExecutionStatsGroup>> {
        let filter = Some(ExecutionFilter::default().for_task(&self.arn));
        Box::pin(execution_stats(ctx, filter, group_by.unwrap_or_default(), exact.unwrap_or_default())).await
    }

    /// When the gateway received the task's description from DataSync.
    async fn fetched_at(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        Ok(self.described(ctx).await?.fetched_at)
    }
}

async fn location(ctx: &Context<'_>, arn: Option<LocationArn>) -> Result<Option<Location>> {
    let Some(arn) = arn else { return Ok(None) };
    let location = Box::pin(task_service(ctx).location(&arn, caller(ctx)?)).instrument(resolver_span(ctx));
    location.await.coded()
}

/// Which tasks `tasks` lists; conditions combine with AND.
#[derive(InputObject, Default)]
pub struct TaskFilter {
    /// Tasks in any of these regions (default: every region the gateway serves).
    regions: Option<Vec<String>>,
    /// Tasks with any of these statuses.
    statuses: Option<Vec<TaskStatus>>,
    /// Tasks whose name contains this text (case-insensitive).
    name_contains: Option<String>,
    /// Tasks of any of these 12-digit AWS accounts.
    account_ids: Option<Vec<String>>,
}

pub type TaskConnection = Connection<String, TaskNode, EmptyFields, EmptyFields>;

/// The `tasks` page: every matching task, ordered by ARN, `first` after the cursor `after`.
pub async fn tasks(
    ctx: &Context<'_>,
    filter: TaskFilter,
    first: Option<i32>,
    after: Option<String>,
) -> Result<TaskConnection> {
    let accounts = filter
        .account_ids
        .map(|accounts| {
            accounts
                .iter()
                .map(|account| AccountId::parse(account))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| GatewayError::BadUserInput("filter.accountIds must be 12 digits".into()))
        })
        .transpose()
        .coded()?;
    let listing = TaskListing {
        regions: filter.regions,
        statuses: filter.statuses,
        name_contains: filter.name_contains,
        accounts,
    };
    let page = task_service(ctx).page(listing, first, after.as_deref(), caller(ctx)?);
    let page = page.instrument(resolver_span(ctx)).await.coded()?;
    let mut connection = TaskConnection::new(page.has_previous_page, page.has_next_page);
    connection
        .edges
        .extend(page.tasks.into_iter().map(|(cursor, task)| Edge::new(cursor, TaskNode::from_summary(task))));
    Ok(connection)
}
