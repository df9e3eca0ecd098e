//! DataSync's task reports: what a detailed report says of each file, whichever task mode wrote
//! it. Built from the reports' JSON in one place (`crate::datasync::task_report`).

use serde::{Deserialize, Serialize};

/// Which of a detailed report's lists a record is from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReportKind {
    Transferred,
    Verified,
    Deleted,
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
