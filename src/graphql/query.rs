//! The query root.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ErrorExtensions, Object, Result, ID};
use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::context::{
    cache_hint, caller, execution_arn, executions, page_complexity, read_execution, resolver_span,
    sized_complexity, task_arn, tasks, Coded,
};
use super::federation::ExecutionEntities;
use super::index::{self, ExecutionFilter, ExecutionStatsGroup, HistoryConnection};
use super::node::Node;
use super::report::{self, FailingPathNode, ReportFileConnection, ReportFilesFilter};
use super::task::{TaskConnection, TaskFilter, TaskNode};
use super::webhook::{self, WebhookNode};
use super::TaskExecutionNode;
use crate::error::GatewayError;
use crate::model::{ExecutionOrder, StatsDimension};
use crate::service::accounts::{Account, AccountService};
use crate::service::executions::{check_batch, Consistency};
use crate::service::index::{PageArgs, Scope};
use crate::service::tasks::MAX_TASK_PAGE;

pub struct Query;

/// A task or an execution, by the shape of its ARN.
async fn read_node(ctx: &Context<'_>, id: &str) -> Result<Node> {
    if id.contains("/execution/") {
        let arn = execution_arn(id).coded()?;
        return read_execution(ctx, &arn, Consistency::Cached).await.map(Node::TaskExecution);
    }
    read_task(ctx, id).await.map(Node::Task)
}

/// One task, described (through the task cache).
async fn read_task(ctx: &Context<'_>, arn: &str) -> Result<TaskNode> {
    let arn = task_arn(arn).coded()?;
    let task = Box::pin(tasks(ctx).get(&arn, caller(ctx)?)).instrument(resolver_span(ctx)).await.coded()?;
    Ok(TaskNode::described_already(task))
}

/// One execution by the ARN as sent.
async fn read_one(ctx: &Context<'_>, arn: &str, consistency: Consistency) -> Result<TaskExecutionNode> {
    read_execution(ctx, &execution_arn(arn).coded()?, consistency).await
}

/// Many executions by the ARNs as sent, each item with its own result: one that does not
/// parse fails alone, the rest are read together.
async fn read_many(
    ctx: &Context<'_>,
    arns: Vec<ID>,
    consistency: Consistency,
) -> Result<Vec<Option<Result<TaskExecutionNode>>>> {
    // Counted here, before parsing: the service sees only the ARNs that parse.
    check_batch(arns.len(), "ARNs").coded()?;
    let parsed: Vec<Result<_, GatewayError>> = arns.iter().map(|arn| execution_arn(arn)).collect();
    let valid: Vec<_> = parsed.iter().filter_map(|arn| arn.as_ref().ok().cloned()).collect();
    let read = Box::pin(executions(ctx).get_many(&valid, consistency, caller(ctx)?));
    let mut results = read.instrument(resolver_span(ctx)).await.coded()?.into_iter();
    let hint = cache_hint(ctx);
    Ok(parsed
        .into_iter()
        .map(|arn| {
            let result = arn.and_then(|_| results.next().expect("one result per valid ARN"));
            result.as_ref().map(|fetched| hint.served(fetched)).ok();
            Some(result.map(TaskExecutionNode::from).coded())
        })
        .collect())
}

/// How many groups a statistics query counts as, for complexity.
const STATS_COMPLEXITY_GROUPS: usize = 100;

// Resolvers that reach the database or DataSync box that work: async-graphql runs every root
// field in a future sized for the largest resolver's, copied for each field it resolves, so one
// inline page query or SDK call would make a cached `taskExecution` read pay for its room.

// Arguments with defaults are nullable so that a query declaring e.g. `$consistency: Consistency`
// and not sending it gets the default: async-graphql passes such an unset variable as null.

/// Reads of DataSync task executions: live (through the cache) and recorded history.
#[Object]
impl Query {
    /// Federation: a `TaskExecution` another subgraph refers to by `id`.
    #[graphql(entity)]
    async fn find_task_execution_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<TaskExecutionNode> {
        let Some(loader) = ctx.data_opt::<DataLoader<ExecutionEntities>>() else {
            return read_one(ctx, &id, Consistency::Cached).await;
        };
        let Ok(arn) = execution_arn(&id) else { return read_one(ctx, &id, Consistency::Cached).await };
        match Box::pin(loader.load_one(arn)).await {
            Ok(Some(fetched)) => {
                cache_hint(ctx).served(&fetched);
                Ok(fetched.into())
            }
            // Not batched away: read alone, for its own error.
            Ok(None) => read_one(ctx, &id, Consistency::Cached).await,
            Err(error) => Err(error.extend()),
        }
    }

    /// Federation: a `Task` another subgraph refers to by `id`.
    #[graphql(entity)]
    async fn find_task_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<TaskNode> {
        read_task(ctx, &id).await
    }

    /// One task execution by ARN; null with an error when it cannot be read, so the request's
    /// other root fields still answer. Errors: `BAD_USER_INPUT` (not an execution ARN),
    /// `NOT_FOUND` (DataSync does not have it), `UPSTREAM_THROTTLED`, `UPSTREAM_UNAVAILABLE`.
    async fn task_execution(
        &self,
        ctx: &Context<'_>,
        arn: ID,
        #[graphql(default_with = "Some(Consistency::Cached)")] consistency: Option<Consistency>,
    ) -> Result<Option<TaskExecutionNode>> {
        read_one(ctx, &arn, consistency.unwrap_or_default()).await.map(Some)
    }

    /// The object with this `id` (for a task or an execution, its ARN); null with an error as
    /// for `taskExecution`.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        read_node(ctx, &id).await.map(Some)
    }

    /// Up to 100 objects by `id`, in the order given; each fails on its own, as in `taskExecutions`.
    #[graphql(complexity = "ids.len() * child_complexity + 1")]
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Vec<Option<Result<Node>>>> {
        check_batch(ids.len(), "ids").coded()?;
        Ok(futures::future::join_all(ids.iter().map(|id| read_node(ctx, id)))
            .await
            .into_iter()
            .map(Some)
            .collect())
    }

    /// One task by ARN; null with an error when it cannot be read. Errors: `BAD_USER_INPUT`,
    /// `NOT_FOUND`, `UPSTREAM_THROTTLED`, `UPSTREAM_UNAVAILABLE`.
    async fn task(&self, ctx: &Context<'_>, arn: ID) -> Result<Option<TaskNode>> {
        read_task(ctx, &arn).await.map(Some)
    }

    /// The tasks DataSync lists in the regions served, ordered by ARN, at most 100 a page.
    /// Listed live (ListTasks, cached a minute); a task's other fields are described on demand.
    #[graphql(complexity = "sized_complexity(first, MAX_TASK_PAGE, MAX_TASK_PAGE, child_complexity)")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        filter: Option<TaskFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<TaskConnection> {
        Box::pin(super::task::tasks(ctx, filter.unwrap_or_default(), first, after)).await
    }

    /// The AWS accounts this gateway serves (one, its own, unless accounts are configured),
    /// each with its regions, whether its role can be assumed, and each region's last
    /// discovery sync.
    async fn accounts(&self, ctx: &Context<'_>) -> Result<Vec<Account>> {
        cache_hint(ctx).served_other();
        Box::pin(ctx.data_unchecked::<AccountService>().list(caller(ctx)?)).await.coded()
    }

    /// Up to 100 task executions by ARN, in the order given. Each item fails on its own: a bad or
    /// unknown ARN gives a null item and an error whose `path` points at it, and the rest still load.
    /// Repeated ARNs are fetched once. Complexity: the selection's times the number of ARNs.
    #[graphql(complexity = "arns.len() * child_complexity + 1")]
    async fn task_executions(
        &self,
        ctx: &Context<'_>,
        arns: Vec<ID>,
        #[graphql(default_with = "Some(Consistency::Cached)")] consistency: Option<Consistency>,
    ) -> Result<Vec<Option<Result<TaskExecutionNode>>>> {
        read_many(ctx, arns, consistency.unwrap_or_default()).await
    }

    /// Recorded executions (finished ones the gateway has seen), a page at a time: a Relay
    /// connection with opaque cursors. Use `first`/`after` forward or `last`/`before` backward;
    /// at most 500 per page, 50 when neither is given. Errors: `BAD_USER_INPUT` (bad filter,
    /// cursor or page size), `HISTORY_UNAVAILABLE` (no database, or it is down). Complexity: the
    /// selection's times the page size.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_complexity(first.or(last), child_complexity)")]
    async fn execution_history(
        &self,
        ctx: &Context<'_>,
        filter: Option<ExecutionFilter>,
        #[graphql(default_with = "Some(ExecutionOrder::StartedAtDesc)")] order_by: Option<ExecutionOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<HistoryConnection> {
        let args = PageArgs { first, after, last, before };
        Box::pin(index::page(ctx, filter, Scope::Finished, order_by.unwrap_or_default(), args)).await
    }

    /// Every execution the gateway's index holds, running and finished, across tasks and
    /// regions: the discovery sync keeps it current, so a page costs AWS nothing. Each node is
    /// as of its `fetchedAt`; `servedFrom` is HISTORY for settled ones and INDEX for the rest.
    /// Paging, errors and complexity as for `executionHistory`.
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
        let args = PageArgs { first, after, last, before };
        Box::pin(index::page(ctx, filter, Scope::All, order_by.unwrap_or_default(), args)).await
    }

    /// Counts, sums and duration percentiles of recorded executions, per group of `groupBy`
    /// (one overall group when empty), ordered by the group key. At most 10,000 groups.
    /// Read from daily rollups when the filter allows (see `p50DurationMs`); `exact: true`
    /// reads every matching execution instead, for exact percentiles (slower over many).
    /// Complexity: the selection's times 100 (the group count is not known in advance).
    #[graphql(complexity = "STATS_COMPLEXITY_GROUPS * child_complexity")]
    async fn execution_stats(
        &self,
        ctx: &Context<'_>,
        filter: Option<ExecutionFilter>,
        #[graphql(default_with = "Some(Vec::new())")] group_by: Option<Vec<StatsDimension>>,
        #[graphql(default_with = "Some(false)")] exact: Option<bool>,
    ) -> Result<Vec<ExecutionStatsGroup>> {
        Box::pin(index::execution_stats(ctx, filter, group_by.unwrap_or_default(), exact.unwrap_or_default()))
            .await
    }

    /// Task report records across executions (those `filter.executions` selects, as
    /// `executions` would), sorted by path, then execution: at most 1,000 a page, 100 by default.
    #[graphql(complexity = "sized_complexity(first, 100, 1000, child_complexity)")]
    async fn report_files(
        &self,
        ctx: &Context<'_>,
        filter: Option<ReportFilesFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ReportFileConnection> {
        Box::pin(report::report_files(ctx, filter, first, after)).await
    }

    /// "Which files keep failing": the paths that failed in the most executions of `taskArn`
    /// that started at or after `since` (default: 30 days ago), per their task reports, most
    /// first; at most 500, 20 by default.
    #[graphql(complexity = "sized_complexity(first, 20, 500, child_complexity)")]
    async fn failing_paths(
        &self,
        ctx: &Context<'_>,
        task_arn: ID,
        since: Option<DateTime<Utc>>,
        first: Option<i32>,
    ) -> Result<Vec<FailingPathNode>> {
        Box::pin(report::failing_paths(ctx, task_arn, since, first)).await
    }

    /// Every webhook endpoint (operator role).
    async fn webhooks(&self, ctx: &Context<'_>) -> Result<Vec<WebhookNode>> {
        Box::pin(webhook::webhooks(ctx)).await
    }

    /// One webhook endpoint and its delivery log (operator role); null if there is none.
    async fn webhook(&self, ctx: &Context<'_>, id: ID) -> Result<Option<WebhookNode>> {
        Box::pin(webhook::webhook(ctx, id)).await
    }
}
