//! The `TaskExecution` object: DataSync's fields plus the ones clients would otherwise compute.

use std::sync::Arc;

use async_graphql::{ComplexObject, SimpleObject, ID};

use super::report::TaskReportNode;
use super::task::TaskNode;
use crate::model::{
    AccountId, FolderCounters, FoldersFailed, FoldersListed, Long, Progress, TaskArn, TaskExecution,
};
use crate::service::executions::{Fetched, ServedFrom};

/// One execution of a DataSync task, as DataSync described it at `fetchedAt`.
#[derive(SimpleObject)]
#[graphql(name = "TaskExecution", complex)]
pub struct TaskExecutionNode {
    #[graphql(flatten)]
    execution: Arc<TaskExecution>,
    #[graphql(skip)]
    served_from: ServedFrom,
}

impl TaskExecutionNode {
    fn folders(&self) -> Option<&FolderCounters> {
        self.execution.folders.as_deref()
    }
}

impl From<Fetched> for TaskExecutionNode {
    fn from(Fetched { execution, served_from, .. }: Fetched) -> Self {
        TaskExecutionNode { execution, served_from }
    }
}

#[ComplexObject]
impl TaskExecutionNode {
    /// The execution ARN: globally unique, so it serves as the object's identity (`Node`).
    pub async fn id(&self) -> ID {
        ID(self.execution.task_execution_arn.to_string())
    }

    /// Exactly the status string DataSync sent; differs from `status` only when that is `UNKNOWN`.
    async fn status_raw(&self) -> &str {
        self.execution.status.raw()
    }

    /// Exactly the task mode string DataSync sent.
    async fn task_mode_raw(&self) -> Option<&str> {
        self.execution.task_mode.as_ref().map(|mode| mode.raw())
    }

    /// The ARN of the task this is an execution of.
    async fn task_arn(&self) -> TaskArn {
        self.execution.task_execution_arn.task_arn()
    }

    /// The task this is an execution of (its description is fetched, and cached, only when a
    /// field of it beyond `taskArn`, `region` or `id` is selected).
    async fn task(&self) -> TaskNode {
        TaskNode::from_arn(self.execution.task_execution_arn.task_arn())
    }

    /// The `exec-…` part of the ARN.
    async fn execution_id(&self) -> &str {
        self.execution.task_execution_arn.execution_id()
    }

    /// The AWS region the execution runs in.
    async fn region(&self) -> &str {
        self.execution.task_execution_arn.region()
    }

    /// The AWS account that owns the task.
    async fn account_id(&self) -> AccountId {
        self.execution.task_execution_arn.account_id()
    }

    /// Directories DataSync expects to transfer (Enhanced mode, which counts directories apart
    /// from files; null where DataSync does not send it, as in Basic mode).
    async fn estimated_folders_to_transfer(&self) -> Option<Long> {
        self.folders()?.estimated_folders_to_transfer
    }

    /// Directories DataSync expects to delete at the destination (Enhanced mode).
    async fn estimated_folders_to_delete(&self) -> Option<Long> {
        self.folders()?.estimated_folders_to_delete
    }

    /// Directories skipped (Enhanced mode).
    async fn folders_skipped(&self) -> Option<Long> {
        self.folders()?.folders_skipped
    }

    /// Directories DataSync will attempt to transfer after comparing the locations (Enhanced mode).
    async fn folders_prepared(&self) -> Option<Long> {
        self.folders()?.folders_prepared
    }

    /// Directories transferred so far (Enhanced mode).
    async fn folders_transferred(&self) -> Option<Long> {
        self.folders()?.folders_transferred
    }

    /// Directories verified (Enhanced mode).
    async fn folders_verified(&self) -> Option<Long> {
        self.folders()?.folders_verified
    }

    /// Directories deleted at the destination (Enhanced mode).
    async fn folders_deleted(&self) -> Option<Long> {
        self.folders()?.folders_deleted
    }

    /// Directories found at the locations (Enhanced mode).
    async fn folders_listed(&self) -> Option<&FoldersListed> {
        self.folders()?.folders_listed.as_ref()
    }

    /// Directories that failed in each phase (Enhanced mode).
    async fn folders_failed(&self) -> Option<&FoldersFailed> {
        self.folders()?.folders_failed.as_ref()
    }

    /// SUCCESS or ERROR: the status will not change again.
    async fn is_terminal(&self) -> bool {
        self.execution.is_terminal()
    }

    /// Percentages, rate and time left, computed from the counters as of `fetchedAt`.
    async fn progress(&self) -> Progress {
        self.execution.progress()
    }

    /// Its task report: DataSync's result, and the per-file records the gateway stored of it
    /// (`files`). Null when the execution has no report config.
    async fn report(&self) -> Option<TaskReportNode> {
        TaskReportNode::of(&self.execution)
    }

    /// Whether this answer came from the gateway's cache or from a DataSync call made for this request.
    async fn served_from(&self) -> ServedFrom {
        self.served_from
    }
}
