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
