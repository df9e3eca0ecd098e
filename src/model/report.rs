//! DataSync's task reports: what a detailed report says of each file, whichever task mode wrote
//! it. Built from the reports' JSON in one place (`crate::datasync::task_report`).

use serde::{Deserialize, Serialize};

use super::ExecutionArn;

/// Which of a detailed report's lists a record is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
pub enum ReportKind {
    /// Files and objects DataSync attempted to transfer.
    Transferred,
    /// Those it attempted to verify (a failure is a mismatch, or one it could not read).
    Verified,
    /// Those it attempted to delete at the destination.
    Deleted,
    /// Those it skipped.
    Skipped,
}

impl ReportKind {
    pub const ALL: [ReportKind; 4] =
        [ReportKind::Transferred, ReportKind::Verified, ReportKind::Deleted, ReportKind::Skipped];

    /// The name of its list in a report part, e.g. `"Transferred"`.
    pub fn list(self) -> &'static str {
        match self {
            ReportKind::Transferred => "Transferred",
            ReportKind::Verified => "Verified",
            ReportKind::Deleted => "Deleted",
            ReportKind::Skipped => "Skipped",
        }
    }

    /// The name it has in a report part's key, e.g. `"transferred"` in `….files-transferred-v1-…`.
    pub fn in_key(self) -> &'static str {
        match self {
            ReportKind::Transferred => "transferred",
            ReportKind::Verified => "verified",
            ReportKind::Deleted => "deleted",
            ReportKind::Skipped => "skipped",
        }
    }

    pub fn from_key(name: &str) -> Option<Self> {
        ReportKind::ALL.into_iter().find(|kind| kind.in_key() == name)
    }

    pub fn from_list(name: &str) -> Option<Self> {
        ReportKind::ALL.into_iter().find(|kind| kind.list() == name)
    }
}

/// One file of a detailed report, as the report gives it. Times stay as the report's text:
/// DataSync writes nanoseconds, which PostgreSQL's timestamps would round.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportRecord {
    /// Relative to the location, without a leading `/`: Basic mode writes one and Enhanced mode
    /// does not, and the same file must compare equal across executions of either.
    pub relative_path: String,
    /// `SUCCESS`, `FAILED`, or whatever else DataSync wrote.
    pub status: String,
    /// `Regular`, `Directory`, `Object`, …
    pub file_type: Option<String>,
    pub source_size: Option<i64>,
    pub destination_size: Option<i64>,
    pub source_mtime: Option<String>,
    pub destination_mtime: Option<String>,
    pub source_checksum: Option<String>,
    pub destination_checksum: Option<String>,
    /// When DataSync transferred, verified, deleted or skipped it.
    pub timestamp: Option<String>,
    /// Enhanced mode's `ErrorCode`, or Basic mode's numeric `FailureCode` as text.
    pub error_code: Option<String>,
    /// Enhanced mode's `ErrorDetail`, Basic mode's `FailureReason`, or a skip's reason.
    pub error_detail: Option<String>,
}

impl ReportRecord {
    /// Whether DataSync reports it as anything but a success (a failure, a mismatch, a skip
    /// for a reason).
    pub fn is_error(&self) -> bool {
        self.status != "SUCCESS" || self.error_code.is_some() || self.error_detail.is_some()
    }
}

/// Which records of a report the gateway keeps (`--report-records`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, async_graphql::Enum)]
pub enum RecordsKept {
    /// Failures, mismatches and skips for a reason.
    Errors,
    /// Every record.
    All,
}

impl RecordsKept {
    pub fn keeps(self, record: &ReportRecord) -> bool {
        self == RecordsKept::All || record.is_error()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordsKept::Errors => "errors",
            RecordsKept::All => "all",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [RecordsKept::Errors, RecordsKept::All].into_iter().find(|kept| kept.as_str() == text)
    }
}

/// Where an execution's detailed report is, once DataSync has written it whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportSource {
    /// A bucket name, or an access point's ARN (which S3 takes as a bucket).
    pub bucket: String,
    /// `<subdirectory>/Detailed-Reports/<task-id>/<exec-id>/`.
    pub prefix: String,
}

/// How far the gateway got in storing a report's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum IngestionState {
    /// Queued; a replica takes it soon (or retries it later after a failure it may recover from).
    Pending,
    /// A replica is storing its parts.
    Running,
    /// Every part stored (up to the per-execution cap, see `truncated`).
    Complete,
    /// Some parts could not be read or parsed (see `failedParts`); the others are stored.
    Partial,
    /// Nothing could be stored (the bucket refused the gateway, or retries ran out; see `error`).
    Failed,
}

impl IngestionState {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestionState::Pending => "PENDING",
            IngestionState::Running => "RUNNING",
            IngestionState::Complete => "COMPLETE",
            IngestionState::Partial => "PARTIAL",
            IngestionState::Failed => "FAILED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        use IngestionState::*;
        [Pending, Running, Complete, Partial, Failed].into_iter().find(|state| state.as_str() == text)
    }
}

/// Where the detailed parts of `execution`'s report are, under the report's `subdirectory`:
/// `<subdirectory>/Detailed-Reports/task-…/exec-…/`.
pub fn detailed_prefix(subdirectory: Option<&str>, execution: &ExecutionArn) -> String {
    let arn = execution.as_str();
    let (task, exec) = arn
        .rsplit_once("/execution/")
        .map(|(task, exec)| (task.rsplit('/').next().unwrap_or_default(), exec))
        .unwrap_or_default();
    let subdirectory = subdirectory.map(|sub| sub.trim_end_matches('/')).filter(|sub| !sub.is_empty());
    match subdirectory {
        Some(sub) => format!("{sub}/Detailed-Reports/{task}/{exec}/"),
        None => format!("Detailed-Reports/{task}/{exec}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_of_an_execution_s_detailed_report() {
        let arn = ExecutionArn::parse(
            "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-0a1b2c3d4e5f60102",
        )
        .unwrap();
        let expected = "Detailed-Reports/task-0a1b2c3d4e5f60001/exec-0a1b2c3d4e5f60102/";
        assert_eq!(detailed_prefix(None, &arn), expected);
        assert_eq!(detailed_prefix(Some(""), &arn), expected);
        assert_eq!(detailed_prefix(Some("reports/"), &arn), format!("reports/{expected}"));
        assert_eq!(detailed_prefix(Some("a/b"), &arn), format!("a/b/{expected}"));
    }
}
