//! The query root.

use async_graphql::{Context, ErrorExtensions, Object, Result, ID};

use super::TaskExecutionNode;
use crate::service::{Consistency, ExecutionService};

/// Reads of DataSync task executions.
pub struct Query;

// `consistency` is nullable so that a query declaring `$consistency: Consistency` and not
// sending it gets the default: async-graphql passes such an unset variable as null.

#[Object]
impl Query {
    /// One task execution by ARN. Errors: `BAD_USER_INPUT` (not an execution ARN), `NOT_FOUND`
    /// (DataSync does not have it), `UPSTREAM_THROTTLED`, `UPSTREAM_UNAVAILABLE`.
    async fn task_execution(
        &self,
        ctx: &Context<'_>,
        arn: ID,
        #[graphql(default_with = "Some(Consistency::Cached)")] consistency: Option<Consistency>,
    ) -> Result<TaskExecutionNode> {
        let consistency = consistency.unwrap_or_default();
        let service = ctx.data_unchecked::<ExecutionService>();
        Ok(service.get(&arn, consistency).await.map_err(|error| error.extend())?.into())
    }

    /// Up to 100 task executions by ARN, in the order given. Each item fails on its own: a bad or
    /// unknown ARN gives a null item and an error whose `path` points at it, and the rest still load.
    /// Repeated ARNs are fetched once.
    async fn task_executions(
        &self,
        ctx: &Context<'_>,
        arns: Vec<ID>,
        #[graphql(default_with = "Some(Consistency::Cached)")] consistency: Option<Consistency>,
    ) -> Result<Vec<Option<Result<TaskExecutionNode>>>> {
        let consistency = consistency.unwrap_or_default();
        let service = ctx.data_unchecked::<ExecutionService>();
        let arns: Vec<String> = arns.into_iter().map(|arn| arn.0).collect();
        let results = service.get_many(&arns, consistency).await.map_err(|error| error.extend())?;
        Ok(results
            .into_iter()
            .map(|result| Some(result.map(TaskExecutionNode::from).map_err(|error| error.extend())))
            .collect())
    }
}
