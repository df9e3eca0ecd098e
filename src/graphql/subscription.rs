//! The subscription root: an execution followed until it finishes, and the fleet's events.
//! Thin over [`crate::live`]; the transports are `/graphql/ws` and server-sent events.

use std::sync::Arc;

use async_graphql::parser::types::{OperationType, Selection};
use async_graphql::{Context, ErrorExtensions, Request, Result, SimpleObject, Subscription, ID};
use futures::{Stream, StreamExt};

use super::history::ExecutionFilter;
use super::query::caller;
use super::TaskExecutionNode;
use crate::datasync::ExecutionArn;
use crate::live::hub::{ExecutionEvent, ExecutionEventKind};
use crate::live::Live;
use crate::model::{EnumValue, TaskExecution, TaskExecutionStatus};
use crate::service::{Fetched, ServedFrom};

pub struct Subscription;

/// Something that happened to an execution.
#[derive(SimpleObject)]
#[graphql(name = "ExecutionEvent")]
pub struct ExecutionEventNode {
    kind: ExecutionEventKind,
    /// The status before (none for STARTED, or when this replica had not seen it before).
    previous_status: Option<EnumValue<TaskExecutionStatus>>,
    /// The execution as it is now.
    execution: TaskExecutionNode,
}

#[Subscription]
impl Subscription {
    /// The execution now, then each change of its status, counters or result as the watcher sees
    /// it (one DataSync poll per execution per interval, however many subscribe), then completes
    /// after SUCCESS or ERROR. Unknown ARN: NOT_FOUND, then complete.
    async fn task_execution_updated(
        &self,
        ctx: &Context<'_>,
        arn: ID,
    ) -> Result<impl Stream<Item = TaskExecutionNode>> {
        let live = ctx.data_unchecked::<Live>();
        let changes = live.follow(&arn, caller(ctx)?).await.map_err(|error| error.extend())?;
        Ok(changes.filter_map(|(execution, served_from)| std::future::ready(node(execution, served_from))))
    }

    /// An event whenever an execution matching `filter` starts, changes status or finishes, on
    /// any replica. Counter changes are not events (follow one execution for those).
    async fn execution_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<ExecutionFilter>,
    ) -> Result<impl Stream<Item = ExecutionEventNode>> {
        let filter = filter.unwrap_or_default().validate().map_err(|error| error.extend())?;
        let events = ctx.data_unchecked::<Live>().events(filter);
        Ok(events.filter_map(|ExecutionEvent { kind, previous_status, execution }| {
            std::future::ready(node(execution, ServedFrom::Live).map(|execution| ExecutionEventNode {
                kind,
                previous_status,
                execution,
            }))
        }))
    }
}

fn node(execution: Arc<TaskExecution>, served_from: ServedFrom) -> Option<TaskExecutionNode> {
    match ExecutionArn::parse(&execution.task_execution_arn) {
        Ok(arn) => Some(Fetched::new(arn, execution, served_from).into()),
        // Cannot happen for what DataSync described (the mapping validated the ARN).
        Err(error) => {
            tracing::error!(%error, "an execution ARN does not parse; change not pushed");
            None
        }
    }
}

/// Root fields whose results are states (a subscriber joining a shared execution gets the latest
/// first), as opposed to events.
const STATE_FIELDS: [&str; 1] = ["taskExecutionUpdated"];

/// For a subscription: whether a subscriber joining it late gets the latest result first.
/// `None` for queries and mutations, and for a document that does not parse.
pub(super) fn replays_latest(request: &mut Request) -> Option<bool> {
    let (_, operation) = super::chosen_operation(request)?;
    if operation.node.ty != OperationType::Subscription {
        return None;
    }
    let items = &operation.node.selection_set.node.items;
    Some(
        !items.is_empty()
            && items.iter().all(|item| match &item.node {
                Selection::Field(field) => STATE_FIELDS.contains(&field.node.name.node.as_str()),
                _ => false,
            }),
    )
}
