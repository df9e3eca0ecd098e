//! What a read of the index asks for: the order of its pages and the dimensions statistics are
//! grouped by. Defined once here, with their GraphQL names, and used as they are by the store
//! and the schema (no second enum mapped to this one).

use async_graphql::Enum;

/// The order of history pages.
#[derive(Enum, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[graphql(name = "HistoryOrder")]
pub enum ExecutionOrder {
    /// Latest start first; ties broken by ARN.
    // The serialised names are part of every cursor's query digest: renaming them would turn
    // cursors issued before into errors.
    #[default]
    #[serde(rename = "NewestFirst")]
    StartedAtDesc,
    /// Earliest start first; ties broken by ARN.
    #[serde(rename = "OldestFirst")]
    StartedAtAsc,
    /// Latest end first, ties broken by ARN; only executions that have ended.
    EndedAtDesc,
    /// Earliest end first, ties broken by ARN; only executions that have ended.
    EndedAtAsc,
}

impl ExecutionOrder {
    /// Whether pages in this order go from the latest to the earliest.
    pub fn descending(self) -> bool {
        matches!(self, ExecutionOrder::StartedAtDesc | ExecutionOrder::EndedAtDesc)
    }

    /// Whether this order is by the end (else by the start).
    pub fn by_end(self) -> bool {
        matches!(self, ExecutionOrder::EndedAtDesc | ExecutionOrder::EndedAtAsc)
    }
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
    /// The AWS account that owns the task.
    Account,
}
