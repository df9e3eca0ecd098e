//! DataSync tasks and locations, as DescribeTask, ListTasks and ListLocations describe them.
//! Built from the SDK's output only in `crate::datasync::mapping`, like [`super::TaskExecution`].

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use super::*;

/// The fields DataSync's `DescribeTask` returns that people use, named as DataSync names them.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// The task's ARN.
    pub task_arn: TaskArn,
    /// The task's name, if it was given one.
    pub name: Option<String>,
    /// AVAILABLE, RUNNING, …; `UNKNOWN` for a value this gateway does not know (`statusRaw` has it).
    pub status: EnumValue<TaskStatus>,
    /// Basic or Enhanced mode.
    pub task_mode: Option<EnumValue<TaskMode>>,
    /// Where data is read from.
    pub source_location_arn: Option<LocationArn>,
    /// Where data is written to.
    pub destination_location_arn: Option<LocationArn>,
    /// The CloudWatch log group executions log to.
    pub cloud_watch_log_group_arn: Option<String>,
    /// The network interfaces DataSync created for traffic at the source.
    pub source_network_interface_arns: Vec<String>,
    /// The network interfaces DataSync created for traffic at the destination.
    pub destination_network_interface_arns: Vec<String>,
    /// The task's default options; an execution may override them.
    pub options: Option<TaskExecutionOptions>,
    /// Filter rules that exclude data.
    pub excludes: Vec<FilterRule>,
    /// Filter rules that limit the transfer to matching data.
    pub includes: Vec<FilterRule>,
    /// The manifest listing what to transfer, when one is used.
    pub manifest_config: Option<ManifestConfig>,
    /// Where and how task reports are written, when configured.
    pub task_report_config: Option<TaskReportConfig>,
    /// When the task runs on its own, if it is scheduled.
    pub schedule: Option<TaskSchedule>,
    /// Why and when the schedule was last enabled or disabled.
    pub schedule_details: Option<TaskScheduleDetails>,
    /// Why the task is UNAVAILABLE, if it is.
    pub error_code: Option<String>,
    /// Details of `errorCode`.
    pub error_detail: Option<String>,
    /// When the task was created.
    pub creation_time: Option<DateTime<Utc>>,
    /// The ARN of the execution running now, if any.
    pub current_task_execution_arn: Option<ExecutionArn>,
    /// When the gateway received this description from DataSync.
    pub fetched_at: DateTime<Utc>,
}

/// A task's schedule.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct TaskSchedule {
    /// A cron or rate expression, e.g. `cron(0 12 ? * SUN,WED *)`.
    pub schedule_expression: String,
    /// ENABLED or DISABLED.
    pub status: Option<EnumValue<ScheduleStatus>>,
}

/// The schedule's last change.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct TaskScheduleDetails {
    /// When the schedule was last enabled or disabled.
    pub status_update_time: Option<DateTime<Utc>>,
    /// Why DataSync disabled the schedule (e.g. repeated failures).
    pub disabled_reason: Option<String>,
    /// USER or SERVICE.
    pub disabled_by: Option<EnumValue<ScheduleDisabledBy>>,
}

/// One entry of ListTasks: enough to list and filter tasks without describing each.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskSummary {
    pub task_arn: TaskArn,
    pub name: Option<String>,
    pub status: EnumValue<TaskStatus>,
}

/// A DataSync location (ListLocations): where a task reads or writes.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct Location {
    /// The location's ARN.
    pub location_arn: LocationArn,
    /// Where it points, e.g. `s3://bucket/prefix/`, `nfs://host/path/`, `smb://host/share/`.
    pub location_uri: String,
    /// What kind of storage it is, from the URI's scheme.
    pub location_type: LocationType,
}

/// What kind of storage a location is, from its URI's scheme (DataSync's ListLocations says no
/// more).
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocationType {
    /// Amazon S3 (`s3://`).
    S3,
    /// Amazon EFS (`efs://`).
    Efs,
    /// Amazon FSx for Windows File Server (`fsxw://`).
    FsxWindows,
    /// Amazon FSx for Lustre (`fsxl://`).
    FsxLustre,
    /// Amazon FSx for OpenZFS (`fsxz://`).
    FsxOpenzfs,
    /// Amazon FSx for NetApp ONTAP (`fsxn-nfs://`, `fsxn-smb://`).
    FsxOntap,
    /// An NFS server (`nfs://`).
    Nfs,
    /// An SMB server (`smb://`).
    Smb,
    /// A Hadoop cluster (`hdfs://`).
    Hdfs,
    /// Azure Blob Storage (`azure-blob://`).
    AzureBlob,
    /// Another object store (`object-storage://`).
    ObjectStorage,
    /// A scheme this gateway does not know; `locationUri` has it.
    Unknown,
}

impl LocationType {
    /// The type of the location at `uri`, by its scheme.
    pub fn of_uri(uri: &str) -> Self {
        match uri.split_once("://").map_or("", |(scheme, _)| scheme) {
            "s3" => LocationType::S3,
            "efs" => LocationType::Efs,
            "fsxw" => LocationType::FsxWindows,
            "fsxl" => LocationType::FsxLustre,
            "fsxz" => LocationType::FsxOpenzfs,
            "fsxn-nfs" | "fsxn-smb" => LocationType::FsxOntap,
            "nfs" => LocationType::Nfs,
            "smb" => LocationType::Smb,
            "hdfs" => LocationType::Hdfs,
            "azure-blob" => LocationType::AzureBlob,
            "object-storage" => LocationType::ObjectStorage,
            _ => LocationType::Unknown,
        }
    }
}

/// What a start may change for one execution (`StartTaskExecution`'s overrides).
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartOverrides {
    pub bytes_per_second: Option<i64>,
    /// `POINT_IN_TIME_CONSISTENT`, `ONLY_FILES_TRANSFERRED` or `NONE`.
    pub verify_mode: Option<String>,
    /// A DataSync filter pattern (`/photos*|/docs`) of what to transfer.
    pub includes: Option<String>,
    /// A DataSync filter pattern of what not to transfer.
    pub excludes: Option<String>,
    /// A task report for this execution, instead of the task's.
    pub task_report: Option<StartTaskReport>,
}

/// A task report asked for at the start (StartTaskExecution's `TaskReportConfig`), as
/// DataSync's wire strings.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTaskReport {
    pub s3_bucket_arn: String,
    pub bucket_access_role_arn: String,
    pub subdirectory: Option<String>,
    /// `SUMMARY_ONLY` or `STANDARD`.
    pub output_type: Option<String>,
    /// `ERRORS_ONLY` or `SUCCESSES_AND_ERRORS`.
    pub report_level: Option<String>,
    /// `INCLUDE` or `NONE`.
    pub object_version_ids: Option<String>,
    /// Report levels per kind of item: (`Transferred`, `Verified`, `Deleted` or `Skipped`, level).
    pub overrides: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::LocationType;

    #[test]
    fn a_locations_type_is_read_from_its_uris_scheme() {
        let cases = [
            ("s3://bucket/prefix/", LocationType::S3),
            ("efs://us-east-1.fs-0123/", LocationType::Efs),
            ("fsxw://us-east-1.fs-0123/share/", LocationType::FsxWindows),
            ("fsxn-smb://us-east-1.fs-0123/svm/vol/", LocationType::FsxOntap),
            ("nfs://host/export/", LocationType::Nfs),
            ("smb://host/share/", LocationType::Smb),
            ("hdfs://namenode:8020/data/", LocationType::Hdfs),
            ("azure-blob://account.blob.core.windows.net/container/", LocationType::AzureBlob),
            ("object-storage://host/bucket/", LocationType::ObjectStorage),
            ("gopher://host/", LocationType::Unknown),
            ("", LocationType::Unknown),
        ];
        for (uri, expected) in cases {
            assert_eq!(LocationType::of_uri(uri), expected, "{uri}");
        }
    }
}
