//! The subscription root: an execution followed until it finishes, and the fleet's events.
//! Thin over [`crate::service::live`]; the transports are `/graphql/ws` and server-sent events.

use std::sync::Arc;

use async_graphql::parser::types::{OperationType, Selection};
use async_graphql::{Context, Request, Result, SimpleObject, Subscription, ID};
use futures::{Stream, StreamExt};

use super::context::{caller, execution_arn, Coded};
use super::index::{snapshot_filter, ExecutionFilter};
use super::TaskExecutionNode;
use crate::model::{EnumValue, TaskExecution, TaskExecutionStatus};
use crate::service::executions::{Fetched, ServedFrom};
use crate::service::index::checked;
use crate::service::live::hub::{ExecutionEvent, ExecutionEventKind};
use crate::service::live::Live;

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
        let arn = execution_arn(&arn).coded()?;
        let changes = ctx.data_unchecked::<Live>().follow(&arn, caller(ctx)?).await.coded()?;
        Ok(changes.map(|(execution, served_from)| node(execution, served_from)))
    }

    /// An event whenever an execution matching `filter` starts, changes status or finishes, on
    /// any replica. Counter changes are not events (follow one execution for those).
    async fn execution_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<ExecutionFilter>,
    ) -> Result<impl Stream<Item = ExecutionEventNode>> {
        let filter = snapshot_filter(filter, caller(ctx)?).and_then(checked).coded()?;
        let events = ctx.data_unchecked::<Live>().events(filter);
        Ok(events.map(|ExecutionEvent { kind, previous_status, execution }| ExecutionEventNode {
            kind,
            previous_status,
            execution: node(execution, ServedFrom::Live),
        }))
    }
}

fn node(execution: Arc<TaskExecution>, served_from: ServedFrom) -> TaskExecutionNode {
    Fetched::new(execution, served_from).into()
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
