//! The query root.

use async_graphql::{Context, ErrorExtensions, Object, Result, ID};

use async_graphql::dataloader::DataLoader;

use tracing::Instrument;

use super::cache_hint::CacheHint;
use super::federation::ExecutionEntities;
use super::history::{
    self, ExecutionFilter, ExecutionStatsGroup, HistoryConnection, HistoryOrder, Scope, StatsDimension,
};
use super::node::Node;
use super::resolver_span;
use super::task::{task_service, TaskConnection, TaskFilter, TaskNode, MAX_TASK_PAGE};
use super::TaskExecutionNode;
use crate::caller::Caller;
use crate::error::GatewayError;
use crate::history::{PageArgs, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::service::{Consistency, ExecutionService, MAX_BATCH_ARNS};

pub struct Query;

/// A task or an execution, by the shape of its ARN.
async fn read_node(ctx: &Context<'_>, id: &str) -> Result<Node> {
    if id.contains("/execution/") {
        return read_one(ctx, id, Consistency::Cached).await.map(Node::TaskExecution);
    }
    read_task(ctx, id).await.map(Node::Task)
}

/// One task, described (through the task cache).
async fn read_task(ctx: &Context<'_>, arn: &str) -> Result<TaskNode> {
    let service = task_service(ctx);
    let task = service
        .get(arn, caller(ctx)?)
        .instrument(resolver_span(ctx))
        .await
        .map_err(|error| error.extend())?;
    Ok(TaskNode::described_already(task))
}

pub(super) async fn read_one(
    ctx: &Context<'_>,
    arn: &str,
    consistency: Consistency,
) -> Result<TaskExecutionNode> {
    let service = ctx.data_unchecked::<ExecutionService>();
    let fetched = service.get(arn, consistency, caller(ctx)?).instrument(resolver_span(ctx)).await;
    let fetched = fetched.map_err(|error| error.extend())?;
    cache_hint(ctx).served(&fetched);
    Ok(fetched.into())
}

async fn read_many(
    ctx: &Context<'_>,
    arns: Vec<ID>,
    consistency: Consistency,
) -> Result<Vec<Option<Result<TaskExecutionNode>>>> {
    let service = ctx.data_unchecked::<ExecutionService>();
    let arns: Vec<String> = arns.into_iter().map(|arn| arn.0).collect();
    let results = service.get_many(&arns, consistency, caller(ctx)?).instrument(resolver_span(ctx)).await;
    let results = results.map_err(|error| error.extend())?;
    let hint = cache_hint(ctx);
    Ok(results
        .into_iter()
        .map(|result| {
            result.as_ref().map(|fetched| hint.served(fetched)).ok();
            Some(result.map(TaskExecutionNode::from).map_err(|error| error.extend()))
        })
        .collect())
}

/// The request's cache hint; one that the transport did not provide is simply not read.
pub(super) fn cache_hint(ctx: &Context<'_>) -> CacheHint {
    ctx.data_opt::<CacheHint>().cloned().unwrap_or_default()
}

/// How many groups a statistics query counts as, for complexity.
const STATS_COMPLEXITY_GROUPS: usize = 100;

/// A history or index page's complexity: its selection's, times the page size asked for.
pub(super) fn page_complexity(size: Option<i32>, child_complexity: usize) -> usize {
    sized_complexity(size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, child_complexity)
}

/// A list's complexity: its selection's, times the size asked for (`default` when none, at
/// most `max`).
fn sized_complexity(size: Option<i32>, default: usize, max: usize, child_complexity: usize) -> usize {
    let size = size.map_or(default, |size| usize::try_from(size).unwrap_or(0).min(max));
    size.saturating_mul(child_complexity).saturating_add(1)
}

/// Who sent the request: every transport puts a [`Caller`] in the request's data.
pub(super) fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Caller> {
    ctx.data_opt::<Caller>().ok_or_else(|| {
        tracing::error!("a GraphQL request arrived without its caller");
        GatewayError::Internal.extend()
    })
}

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
        match loader.load_one(id.0.clone()).await {
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
        if ids.len() > MAX_BATCH_ARNS {
            let message = format!("at most {MAX_BATCH_ARNS} ids per query; got {}", ids.len());
            return Err(GatewayError::BadUserInput(message).extend());
        }
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
        super::task::tasks(ctx, filter.unwrap_or_default(), first, after).await
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
        #[graphql(default_with = "Some(HistoryOrder::StartedAtDesc)")] order_by: Option<HistoryOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<HistoryConnection> {
        let args = PageArgs { first, after, last, before };
        history::execution_page(ctx, filter, order_by.unwrap_or_default(), args, Scope::Finished).await
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
        #[graphql(default_with = "Some(HistoryOrder::StartedAtDesc)")] order_by: Option<HistoryOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<HistoryConnection> {
        let args = PageArgs { first, after, last, before };
        history::execution_page(ctx, filter, order_by.unwrap_or_default(), args, Scope::All).await
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
        history::execution_stats(ctx, filter, group_by.unwrap_or_default(), exact.unwrap_or_default()).await
    }
}
