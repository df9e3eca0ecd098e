//! The domain types every room shares: one DataSync task execution as DataSync described it at
//! one moment, tasks and locations, the identifiers of all of them ([`ExecutionArn`] and the rest,
//! parsed once where text enters), and what a read of the index asks for.
//!
//! An execution is built from the SDK's output in exactly one place (`crate::datasync::mapping`),
//! held by the cache, serialised by the store, and exposed by GraphQL. The GraphQL derives live
//! here so that the field list is written once; the derived fields (progress, ARN parts, ...) are
//! methods here and are exposed by `crate::graphql::execution`.
//!
//! Imports nothing of the crate: every other room stands on it.

mod account;
mod enums;
mod event;
mod ids;
mod index;
mod progress;
mod report;
mod scalars;
mod task;

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use account::Site;
pub use enums::*;
pub use event::{ExecutionEventKind, WebhookEventKind};
pub use ids::{AccountId, ExecutionArn, InvalidId, LocationArn, Region, TaskArn};
pub use index::{ExecutionOrder, StatsDimension};
pub use progress::Progress;
pub use report::{IngestionState, RecordsKept, ReportKind, ReportRecord, ReportSource};
pub use scalars::Long;
pub use task::*;

/// The fields DataSync's `DescribeTaskExecution` returns, named as DataSync names them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
#[graphql(name = "DescribeTaskExecutionFields")]
pub struct TaskExecution {
    /// The execution's ARN; it contains the ARN of the task it belongs to.
    // Its text is shared with the cache's key (`ExecutionArn::shared`) rather than a copy.
    pub task_execution_arn: ExecutionArn,
    /// The execution's status. `UNKNOWN` when DataSync sent a value this gateway does not know;
    /// `statusRaw` has the string.
    pub status: EnumValue<TaskExecutionStatus>,
    /// How the task was configured for this execution: verification, overwrites, metadata, bandwidth, logging.
    pub options: Option<TaskExecutionOptions>,
    /// Filter rules that exclude data from the transfer.
    pub excludes: Vec<FilterRule>,
    /// Filter rules that limit the transfer to matching data.
    pub includes: Vec<FilterRule>,
    // This and the other parts most executions lack are boxed: inline, they took a third of
    // every cached execution's memory while empty.
    /// The manifest listing what to transfer, when one is used.
    pub manifest_config: Option<Box<ManifestConfig>>,
    /// When the execution started.
    pub start_time: Option<DateTime<Utc>>,
    /// Files, objects and directories DataSync expects to transfer (known after PREPARING).
    pub estimated_files_to_transfer: Long,
    /// Logical bytes DataSync expects to write to the destination (known after PREPARING).
    pub estimated_bytes_to_transfer: Long,
    /// Files, objects and directories actually transferred over the network so far.
    pub files_transferred: Long,
    /// Logical bytes actually written to the destination so far.
    pub bytes_written: Long,
    /// Bytes sent to the network before compression.
    pub bytes_transferred: Long,
    /// Physical bytes sent over the network after compression (not reported in Enhanced mode).
    pub bytes_compressed: Long,
    /// Per-phase statuses and durations, and the error if the execution failed.
    pub result: Option<TaskExecutionResult>,
    /// Where and how the task report is written, when one is configured.
    pub task_report_config: Option<Box<TaskReportConfig>>,
    /// Files, objects and directories deleted at the destination.
    pub files_deleted: Long,
    /// Files, objects and directories skipped.
    pub files_skipped: Long,
    /// Files, objects and directories verified.
    pub files_verified: Long,
    /// Whether the task report was produced.
    pub report_result: Option<Box<ReportResult>>,
    /// Files, objects and directories DataSync expects to delete at the destination.
    pub estimated_files_to_delete: Long,
    /// Basic or Enhanced mode. `taskModeRaw` has the string DataSync sent.
    pub task_mode: Option<EnumValue<TaskMode>>,
    /// Objects DataSync will attempt to transfer after comparing the locations (Enhanced mode).
    pub files_prepared: Long,
    /// Objects found at the locations (Enhanced mode).
    pub files_listed: Option<Box<FilesListed>>,
    /// Objects that failed in each phase (Enhanced mode).
    pub files_failed: Option<Box<FilesFailed>>,
    /// When the execution actually began. For a queued execution, later than `startTime`: it
    /// waited for the task's earlier executions to finish.
    #[serde(default)]
    pub launch_time: Option<DateTime<Utc>>,
    /// When the execution ended.
    #[serde(default)]
    pub end_time: Option<DateTime<Utc>>,
    /// Directories, which Enhanced mode counts apart from files (exposed as `foldersTransferred`
    /// and the rest by `crate::graphql::execution`). Absent when DataSync sent none (Basic mode).
    #[graphql(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folders: Option<Box<FolderCounters>>,
    /// When the gateway received this description from DataSync.
    pub fetched_at: DateTime<Utc>,
}

/// How the task was configured for this execution.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct TaskExecutionOptions {
    /// If and how integrity is checked at the end of the transfer.
    pub verify_mode: Option<EnumValue<VerifyMode>>,
    /// Whether destination data may be modified.
    pub overwrite_mode: Option<EnumValue<OverwriteMode>>,
    /// Whether access times are preserved.
    pub atime: Option<EnumValue<Atime>>,
    /// Whether modification times are preserved.
    pub mtime: Option<EnumValue<Mtime>>,
    /// How file owners are copied.
    pub uid: Option<EnumValue<Uid>>,
    /// How file groups are copied.
    pub gid: Option<EnumValue<Gid>>,
    /// What happens to destination files missing at the source.
    pub preserve_deleted_files: Option<EnumValue<PreserveDeletedFiles>>,
    /// Whether device metadata is recreated.
    pub preserve_devices: Option<EnumValue<PreserveDevices>>,
    /// Whether POSIX permissions are copied.
    pub posix_permissions: Option<EnumValue<PosixPermissions>>,
    /// Bandwidth limit in bytes per second; -1 means no limit (not applicable to Enhanced mode).
    pub bytes_per_second: Option<Long>,
    /// Whether the execution queues behind another execution of the task.
    pub task_queueing: Option<EnumValue<TaskQueueing>>,
    /// What is published to CloudWatch Logs.
    pub log_level: Option<EnumValue<LogLevel>>,
    /// Only changes, or everything.
    pub transfer_mode: Option<EnumValue<TransferMode>>,
    /// Which parts of SMB security descriptors are copied.
    pub security_descriptor_copy_flags: Option<EnumValue<SmbSecurityDescriptorCopyFlags>>,
    /// Whether object tags are copied.
    pub object_tags: Option<EnumValue<ObjectTags>>,
}

/// A rule that includes or excludes data by path pattern.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct FilterRule {
    /// How `value` is interpreted.
    pub filter_type: Option<EnumValue<FilterType>>,
    /// The pattern(s), separated by `|`, for example `/folder1|/folder2`.
    pub value: Option<String>,
}

/// The manifest that lists the files or objects to transfer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ManifestConfig {
    /// What the manifest is used for.
    pub action: Option<EnumValue<ManifestAction>>,
    /// The manifest's file format.
    pub format: Option<EnumValue<ManifestFormat>>,
    /// Where the manifest is hosted.
    pub source: Option<ManifestSource>,
}

/// Where a manifest is hosted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSource {
    /// The S3 object holding the manifest.
    pub s3: Option<S3ManifestConfig>,
}

/// A manifest stored in Amazon S3.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct S3ManifestConfig {
    /// The object key of the manifest, for example `prefix/my-manifest.csv`.
    pub manifest_object_path: String,
    /// The IAM role DataSync uses to read the manifest.
    pub bucket_access_role_arn: String,
    /// The bucket holding the manifest.
    pub s3_bucket_arn: String,
    /// The object version used; absent means the latest version.
    pub manifest_object_version_id: Option<String>,
}

/// Per-phase statuses and durations of an execution, and its error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct TaskExecutionResult {
    /// Milliseconds spent in PREPARING (always 0 in Enhanced mode).
    pub prepare_duration: Option<Long>,
    /// Status of the PREPARING phase.
    pub prepare_status: Option<EnumValue<PhaseStatus>>,
    /// Milliseconds the execution ran in total.
    pub total_duration: Option<Long>,
    /// Milliseconds spent in TRANSFERRING (always 0 in Enhanced mode).
    pub transfer_duration: Option<Long>,
    /// Status of the TRANSFERRING phase.
    pub transfer_status: Option<EnumValue<PhaseStatus>>,
    /// Milliseconds spent in VERIFYING (always 0 in Enhanced mode).
    pub verify_duration: Option<Long>,
    /// Status of the VERIFYING phase.
    pub verify_status: Option<EnumValue<PhaseStatus>>,
    /// DataSync's code for the error the execution met, if any.
    pub error_code: Option<String>,
    /// DataSync's description of that error.
    pub error_detail: Option<String>,
}

/// Where and how the task report is written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct TaskReportConfig {
    /// Where the report is uploaded.
    pub destination: Option<ReportDestination>,
    /// Summary only, or the full list of items.
    pub output_type: Option<EnumValue<ReportOutputType>>,
    /// Errors only, or successes and errors.
    pub report_level: Option<EnumValue<ReportLevel>>,
    /// Whether new S3 object version IDs are included.
    pub object_version_ids: Option<EnumValue<ObjectVersionIds>>,
    /// Report levels for particular kinds of item.
    pub overrides: Option<ReportOverrides>,
}

/// Where a task report is uploaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ReportDestination {
    /// The S3 bucket receiving the report.
    pub s3: Option<ReportDestinationS3>,
}

/// An S3 bucket that receives task reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ReportDestinationS3 {
    /// The bucket prefix for reports.
    pub subdirectory: Option<String>,
    /// The bucket's ARN.
    pub s3_bucket_arn: String,
    /// The IAM role DataSync uses to upload the report.
    pub bucket_access_role_arn: String,
}

/// Report levels for particular kinds of item, overriding the report's own level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ReportOverrides {
    /// For items DataSync attempted to transfer.
    pub transferred: Option<ReportOverride>,
    /// For items DataSync attempted to verify.
    pub verified: Option<ReportOverride>,
    /// For items DataSync attempted to delete at the destination.
    pub deleted: Option<ReportOverride>,
    /// For items DataSync skipped.
    pub skipped: Option<ReportOverride>,
}

/// One report-level override.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ReportOverride {
    /// Errors only, or successes and errors.
    pub report_level: Option<EnumValue<ReportLevel>>,
}

/// Whether DataSync produced a complete task report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    /// Still working on it, done, or failed.
    pub status: Option<EnumValue<PhaseStatus>>,
    /// DataSync's code for why the report is incomplete.
    pub error_code: Option<String>,
    /// DataSync's description of that error.
    pub error_detail: Option<String>,
}

/// Objects DataSync found at the locations (Enhanced mode).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct FilesListed {
    /// Objects found at the source (only the manifest's, or those matching an include filter).
    pub at_source: Long,
    /// Objects found at the destination, when deleting what is not at the source.
    pub at_destination_for_delete: Long,
}

/// Objects that failed in each phase (Enhanced mode).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct FilesFailed {
    /// Objects that failed to prepare.
    pub prepare: Long,
    /// Objects that failed to transfer.
    pub transfer: Long,
    /// Objects that failed to verify.
    pub verify: Long,
    /// Objects that failed to delete.
    pub delete: Long,
}

/// DataSync's directory counters (Enhanced mode), each null when DataSync did not send it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderCounters {
    pub estimated_folders_to_transfer: Option<Long>,
    pub estimated_folders_to_delete: Option<Long>,
    pub folders_skipped: Option<Long>,
    pub folders_prepared: Option<Long>,
    pub folders_transferred: Option<Long>,
    pub folders_verified: Option<Long>,
    pub folders_deleted: Option<Long>,
    pub folders_listed: Option<FoldersListed>,
    pub folders_failed: Option<FoldersFailed>,
}

/// Directories DataSync found at the locations (Enhanced mode).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct FoldersListed {
    /// Directories found at the source (with a manifest, only those it names; with an include
    /// filter, only those that match).
    pub at_source: Long,
    /// Directories found at the destination, when DataSync deletes what is not at the source.
    pub at_destination_for_delete: Long,
}

/// Directories that failed in each phase (Enhanced mode).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, SimpleObject)]
#[serde(rename_all = "camelCase")]
pub struct FoldersFailed {
    /// Directories that could not be listed.
    pub list: Long,
    /// Directories that failed to prepare.
    pub prepare: Long,
    /// Directories that failed to transfer.
    pub transfer: Long,
    /// Directories that failed to verify.
    pub verify: Long,
    /// Directories that failed to delete.
    pub delete: Long,
}

impl TaskExecution {
    /// SUCCESS or ERROR: DataSync will not change the status again.
    pub fn is_terminal(&self) -> bool {
        self.status.get().is_terminal()
    }

    /// Whether this description should replace `previous`, an earlier one of the same
    /// execution: a finished one always replaces a running one and never the reverse, whatever
    /// their ages (DataSync does not leave SUCCESS or ERROR, while two reads can be stamped in
    /// another order than DataSync answered them: replicas' clocks, a slow response); otherwise
    /// the later fetched wins. The index's upsert applies the same rule in SQL.
    pub fn supersedes(&self, previous: &TaskExecution) -> bool {
        match (self.is_terminal(), previous.is_terminal()) {
            (true, false) => true,
            (false, true) => false,
            _ => self.fetched_at >= previous.fetched_at,
        }
    }

    /// Terminal, and no task report still pending: nothing in the description will change.
    pub fn is_settled(&self) -> bool {
        let report_pending = self
            .report_result
            .as_ref()
            .and_then(|report| report.status.as_ref())
            .is_some_and(|status| status.get() == PhaseStatus::Pending);
        self.is_terminal() && !report_pending
    }

    /// Where its detailed task report is, once DataSync has written it whole: a STANDARD report
    /// whose `ReportResult` is SUCCESS. `None` otherwise (no report, a summary only, pending,
    /// or incomplete).
    pub fn report_source(&self) -> Option<ReportSource> {
        let written = self.report_result.as_ref()?.status.as_ref()?.get() == PhaseStatus::Success;
        let config = self.task_report_config.as_deref()?;
        let standard = config.output_type.as_ref()?.get() == ReportOutputType::Standard;
        let s3 = config.destination.as_ref()?.s3.as_ref()?;
        // `arn:aws:s3:::name` names a bucket; an access point's ARN is itself what S3 takes.
        let bucket = match s3.s3_bucket_arn.split_once(":::") {
            Some((_, name)) => name.to_owned(),
            None => s3.s3_bucket_arn.clone(),
        };
        let prefix = report::detailed_prefix(s3.subdirectory.as_deref(), &self.task_execution_arn);
        (written && standard).then_some(ReportSource { bucket, prefix })
    }

    /// Progress figures clients would otherwise compute, as of `fetched_at`.
    pub fn progress(&self) -> Progress {
        Progress::of(self)
    }
}
