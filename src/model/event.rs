//! What a new description of an execution is news of: the one rule the live feed (the hub) and
//! the webhook outbox (the index writer) both follow, so a subscriber and a webhook hear of the
//! same changes.

use serde::{Deserialize, Serialize};

use super::{EnumValue, TaskExecution, TaskExecutionStatus};

/// What happened to an execution.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionEventKind {
    /// First seen, not finished.
    Started,
    /// Its status moved on, not to a terminal one.
    StatusChanged,
    /// It reached SUCCESS or ERROR.
    Finished,
}

impl ExecutionEventKind {
    /// The event `execution` makes after `previous`, the status last known (`None`: never seen
    /// before); `None` when it is no news (the same status, or already finished).
    pub fn of(previous: Option<&EnumValue<TaskExecutionStatus>>, execution: &TaskExecution) -> Option<Self> {
        match previous {
            Some(previous) if previous.get().is_terminal() => None,
            _ if execution.is_terminal() => Some(ExecutionEventKind::Finished),
            None => Some(ExecutionEventKind::Started),
            Some(previous) if *previous != execution.status => Some(ExecutionEventKind::StatusChanged),
            Some(_) => None,
        }
    }

    /// Its name in a webhook's `type`: `execution.started` and so on.
    pub fn webhook_type(self) -> &'static str {
        match self {
            ExecutionEventKind::Started => "execution.started",
            ExecutionEventKind::StatusChanged => "execution.status_changed",
            ExecutionEventKind::Finished => "execution.finished",
        }
    }
}

/// What a webhook can be told of: the live feed's events, and a task report stored.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WebhookEventKind {
    /// First seen, not finished.
    Started,
    /// Its status moved on, not to a terminal one.
    StatusChanged,
    /// It reached SUCCESS or ERROR.
    Finished,
    /// Its task report's records were stored (`report { ingestion }` says how it went).
    ReportReady,
}

impl WebhookEventKind {
    pub const ALL: [WebhookEventKind; 4] = [
        WebhookEventKind::Started,
        WebhookEventKind::StatusChanged,
        WebhookEventKind::Finished,
        WebhookEventKind::ReportReady,
    ];

    /// Its name, as stored and as in an event's `data.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventKind::Started => "STARTED",
            WebhookEventKind::StatusChanged => "STATUS_CHANGED",
            WebhookEventKind::Finished => "FINISHED",
            WebhookEventKind::ReportReady => "REPORT_READY",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        WebhookEventKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}
