//! The one mapping from the SDK's outputs to the domain types: [`TaskExecution`], [`Task`],
//! [`TaskSummary`], [`Location`].
//!
//! Everything downstream (cache, store, GraphQL) sees only the domain type, so this is the only
//! file that changes when the SDK does.

use aws_sdk_datasync::operation::describe_task::DescribeTaskOutput;
use aws_sdk_datasync::operation::describe_task_execution::DescribeTaskExecutionOutput;
use aws_sdk_datasync::types as sdk;
use chrono::{DateTime, Utc};

use crate::model::*;

/// Builds the domain type. `requested` is the ARN that was asked for: DataSync echoes it, but
/// a partial implementation (moto) may not, and the cache key must match what was asked.
pub fn task_execution(
    requested: &ExecutionArn,
    output: &DescribeTaskExecutionOutput,
    fetched_at: DateTime<Utc>,
) -> TaskExecution {
    TaskExecution {
        task_execution_arn: requested.clone(),
        status: output
            .status()
            .map(|status| EnumValue::from_wire(status.as_str()))
            .unwrap_or_else(|| EnumValue::from_wire("")),
        options: output.options().map(options),
        excludes: output.excludes().iter().map(filter_rule).collect(),
        includes: output.includes().iter().map(filter_rule).collect(),
        manifest_config: output.manifest_config().map(manifest_config).map(Box::new),
        start_time: output.start_time().and_then(timestamp),
        estimated_files_to_transfer: output.estimated_files_to_transfer().into(),
        estimated_bytes_to_transfer: output.estimated_bytes_to_transfer().into(),
        files_transferred: output.files_transferred().into(),
        bytes_written: output.bytes_written().into(),
        bytes_transferred: output.bytes_transferred().into(),
        bytes_compressed: output.bytes_compressed().into(),
        result: output.result().map(result),
        task_report_config: output.task_report_config().map(task_report_config).map(Box::new),
        files_deleted: output.files_deleted().into(),
        files_skipped: output.files_skipped().into(),
        files_verified: output.files_verified().into(),
        report_result: output
            .report_result()
            .map(|report| ReportResult {
                status: wire(report.status()),
                error_code: report.error_code().map(str::to_owned),
                error_detail: report.error_detail().map(str::to_owned),
            })
            .map(Box::new),
        estimated_files_to_delete: output.estimated_files_to_delete().into(),
        task_mode: wire(output.task_mode()),
        files_prepared: output.files_prepared().into(),
        files_listed: output
            .files_listed()
            .map(|listed| FilesListed {
                at_source: listed.at_source().into(),
                at_destination_for_delete: listed.at_destination_for_delete().into(),
            })
            .map(Box::new),
        files_failed: output
            .files_failed()
            .map(|failed| FilesFailed {
                prepare: failed.prepare().into(),
                transfer: failed.transfer().into(),
                verify: failed.verify().into(),
                delete: failed.delete().into(),
            })
            .map(Box::new),
        launch_time: output.launch_time().and_then(timestamp),
        end_time: output.end_time().and_then(timestamp),
        folders: folder_counters(output).map(Box::new),
        fetched_at,
    }
}

/// The directory counters, when DataSync sent any of them.
fn folder_counters(output: &DescribeTaskExecutionOutput) -> Option<FolderCounters> {
    let long = |value: Option<i64>| value.map(Long);
    let counters = FolderCounters {
        estimated_folders_to_transfer: long(output.estimated_folders_to_transfer()),
        estimated_folders_to_delete: long(output.estimated_folders_to_delete()),
        folders_skipped: long(output.folders_skipped()),
        folders_prepared: long(output.folders_prepared()),
        folders_transferred: long(output.folders_transferred()),
        folders_verified: long(output.folders_verified()),
        folders_deleted: long(output.folders_deleted()),
        folders_listed: output.folders_listed().map(|listed| FoldersListed {
            at_source: listed.at_source().into(),
            at_destination_for_delete: listed.at_destination_for_delete().into(),
        }),
        folders_failed: output.folders_failed().map(|failed| FoldersFailed {
            list: failed.list().into(),
            prepare: failed.prepare().into(),
            transfer: failed.transfer().into(),
            verify: failed.verify().into(),
            delete: failed.delete().into(),
        }),
    };
    (counters != FolderCounters::default()).then_some(counters)
}

/// A task as DescribeTask describes it. `requested` is the ARN asked for, as for executions.
pub fn task(requested: &TaskArn, output: &DescribeTaskOutput, fetched_at: DateTime<Utc>) -> Task {
    Task {
        task_arn: requested.clone(),
        name: output.name().map(str::to_owned),
        status: wire(output.status()).unwrap_or_else(|| EnumValue::from_wire("")),
        task_mode: wire(output.task_mode()),
        source_location_arn: identifier("SourceLocationArn", output.source_location_arn()),
        destination_location_arn: identifier("DestinationLocationArn", output.destination_location_arn()),
        cloud_watch_log_group_arn: output.cloud_watch_log_group_arn().map(str::to_owned),
        source_network_interface_arns: output.source_network_interface_arns().to_vec(),
        destination_network_interface_arns: output.destination_network_interface_arns().to_vec(),
        options: output.options().map(options),
        excludes: output.excludes().iter().map(filter_rule).collect(),
        includes: output.includes().iter().map(filter_rule).collect(),
        manifest_config: output.manifest_config().map(manifest_config),
        task_report_config: output.task_report_config().map(task_report_config),
        schedule: output.schedule().map(|schedule| TaskSchedule {
            schedule_expression: schedule.schedule_expression().to_owned(),
            status: wire(schedule.status()),
        }),
        schedule_details: output.schedule_details().map(|details| TaskScheduleDetails {
            status_update_time: details.status_update_time().and_then(timestamp),
            disabled_reason: details.disabled_reason().map(str::to_owned),
            disabled_by: wire(details.disabled_by()),
        }),
        error_code: output.error_code().map(str::to_owned),
        error_detail: output.error_detail().map(str::to_owned),
        creation_time: output.creation_time().and_then(timestamp),
        current_task_execution_arn: identifier(
            "CurrentTaskExecutionArn",
            output.current_task_execution_arn(),
        ),
        fetched_at,
    }
}

pub fn task_summary(entry: &sdk::TaskListEntry) -> Option<TaskSummary> {
    Some(TaskSummary {
        task_arn: identifier("TaskArn", entry.task_arn())?,
        name: entry.name().map(str::to_owned),
        status: wire(entry.status()).unwrap_or_else(|| EnumValue::from_wire("")),
    })
}

pub fn location(entry: &sdk::LocationListEntry) -> Option<Location> {
    let location_uri = entry.location_uri().unwrap_or_default().to_owned();
    Some(Location {
        location_arn: identifier("LocationArn", entry.location_arn())?,
        location_type: LocationType::of_uri(&location_uri),
        location_uri,
    })
}

/// An identifier DataSync sent, parsed: one that does not match DataSync's own pattern could
/// not be asked about again, so it is logged and left out rather than passed on as text.
pub fn identifier<T: std::str::FromStr<Err = InvalidId>>(member: &str, text: Option<&str>) -> Option<T> {
    match text?.parse() {
        Ok(id) => Some(id),
        Err(error) => {
            tracing::warn!(member, %error, "DataSync sent an identifier that does not parse; left out");
            None
        }
    }
}

/// Every SDK enum can give back the exact string it was parsed from, known or not.
fn wire<E: DataSyncEnum>(value: Option<&impl AsRef<str>>) -> Option<EnumValue<E>> {
    value.map(|value| EnumValue::from_wire(value.as_ref()))
}

fn timestamp(value: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(value.secs(), value.subsec_nanos())
}

fn options(options: &sdk::Options) -> TaskExecutionOptions {
    TaskExecutionOptions {
        verify_mode: wire(options.verify_mode()),
        overwrite_mode: wire(options.overwrite_mode()),
        atime: wire(options.atime()),
        mtime: wire(options.mtime()),
        uid: wire(options.uid()),
        gid: wire(options.gid()),
        preserve_deleted_files: wire(options.preserve_deleted_files()),
        preserve_devices: wire(options.preserve_devices()),
        posix_permissions: wire(options.posix_permissions()),
        bytes_per_second: options.bytes_per_second().map(Long),
        task_queueing: wire(options.task_queueing()),
        log_level: wire(options.log_level()),
        transfer_mode: wire(options.transfer_mode()),
        security_descriptor_copy_flags: wire(options.security_descriptor_copy_flags()),
        object_tags: wire(options.object_tags()),
    }
}

fn filter_rule(rule: &sdk::FilterRule) -> FilterRule {
    FilterRule { filter_type: wire(rule.filter_type()), value: rule.value().map(str::to_owned) }
}

fn manifest_config(config: &sdk::ManifestConfig) -> ManifestConfig {
    ManifestConfig {
        action: wire(config.action()),
        format: wire(config.format()),
        source: config.source().map(|source| ManifestSource {
            s3: source.s3().map(|s3| S3ManifestConfig {
                manifest_object_path: s3.manifest_object_path().to_owned(),
                bucket_access_role_arn: s3.bucket_access_role_arn().to_owned(),
                s3_bucket_arn: s3.s3_bucket_arn().to_owned(),
                manifest_object_version_id: s3.manifest_object_version_id().map(str::to_owned),
            }),
        }),
    }
}

fn result(result: &sdk::TaskExecutionResultDetail) -> TaskExecutionResult {
    TaskExecutionResult {
        prepare_duration: result.prepare_duration().map(Long),
        prepare_status: wire(result.prepare_status()),
        total_duration: result.total_duration().map(Long),
        transfer_duration: result.transfer_duration().map(Long),
        transfer_status: wire(result.transfer_status()),
        verify_duration: result.verify_duration().map(Long),
        verify_status: wire(result.verify_status()),
        error_code: result.error_code().map(str::to_owned),
        error_detail: result.error_detail().map(str::to_owned),
    }
}

fn task_report_config(config: &sdk::TaskReportConfig) -> TaskReportConfig {
    let level =
        |o: Option<&sdk::ReportOverride>| o.map(|o| ReportOverride { report_level: wire(o.report_level()) });
    TaskReportConfig {
        destination: config.destination().map(|destination| ReportDestination {
            s3: destination.s3().map(|s3| ReportDestinationS3 {
                subdirectory: s3.subdirectory().map(str::to_owned),
                s3_bucket_arn: s3.s3_bucket_arn().to_owned(),
                bucket_access_role_arn: s3.bucket_access_role_arn().to_owned(),
            }),
        }),
        output_type: wire(config.output_type()),
        report_level: wire(config.report_level()),
        object_version_ids: wire(config.object_version_ids()),
        overrides: config.overrides().map(|overrides| ReportOverrides {
            transferred: level(overrides.transferred()),
            verified: level(overrides.verified()),
            deleted: level(overrides.deleted()),
            skipped: level(overrides.skipped()),
        }),
    }
}

/// A report asked for at a start, as the SDK sends it (the way out; [`task_report_config`] is the way in).
pub fn start_task_report(
    report: &crate::model::StartTaskReport,
) -> aws_sdk_datasync::types::TaskReportConfig {
    use aws_sdk_datasync::types::{
        ObjectVersionIds, ReportDestination, ReportDestinationS3, ReportOutputType, ReportOverride,
        ReportOverrides, TaskReportConfig,
    };
    let s3 = ReportDestinationS3::builder()
        .s3_bucket_arn(&report.s3_bucket_arn)
        .bucket_access_role_arn(&report.bucket_access_role_arn)
        .set_subdirectory(report.subdirectory.clone())
        .build()
        .expect("the bucket and the role are set");
    let level = |kind: &str| {
        let level = report.overrides.iter().find(|(named, _)| named == kind)?;
        Some(ReportOverride::builder().report_level(level.1.as_str().into()).build())
    };
    let overrides = ReportOverrides::builder()
        .set_transferred(level("Transferred"))
        .set_verified(level("Verified"))
        .set_deleted(level("Deleted"))
        .set_skipped(level("Skipped"))
        .build();
    TaskReportConfig::builder()
        .destination(ReportDestination::builder().s3(s3).build())
        .set_output_type(report.output_type.as_deref().map(ReportOutputType::from))
        .set_report_level(report.report_level.as_deref().map(Into::into))
        .set_object_version_ids(report.object_version_ids.as_deref().map(ObjectVersionIds::from))
        .set_overrides((!report.overrides.is_empty()).then_some(overrides))
        .build()
}
