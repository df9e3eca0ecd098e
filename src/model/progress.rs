//! Progress figures derived from one execution description.

use async_graphql::SimpleObject;

use super::{Long, TaskExecution, TaskExecutionStatus, TaskMode};

/// How far an execution has got, computed from DataSync's counters as of `fetchedAt`.
/// A figure is null where DataSync has not yet given enough to compute it.
#[derive(Clone, Debug, PartialEq, SimpleObject)]
pub struct Progress {
    /// Percentage (0–100) of `estimatedBytesToTransfer` written so far (`bytesWritten`). Null until
    /// DataSync has estimated the size (after PREPARING); 100 for a successful execution with nothing to transfer.
    pub bytes_percent: Option<f64>,
    /// Percentage (0–100) of `estimatedFilesToTransfer` transferred so far (`filesTransferred`).
    pub files_percent: Option<f64>,
    /// Percentage (0–100) of `estimatedFoldersToTransfer` transferred so far
    /// (`foldersTransferred`): Enhanced mode, which counts directories apart from files; null
    /// in Basic mode.
    pub folders_percent: Option<f64>,
    /// Bytes written per second. Once finished, by AWS's transfer performance formula:
    /// `bytesWritten / result.transferDuration` in Basic mode, `bytesWritten /
    /// result.totalDuration` in Enhanced mode (which reports no phase durations). While running,
    /// the average since `startTime`.
    pub bytes_per_second: Option<f64>,
    /// Milliseconds since the execution started: `result.totalDuration` once finished, else the time
    /// from `startTime` to `fetchedAt`.
    pub elapsed_ms: Option<Long>,
    /// Milliseconds left at the average rate so far; 0 once finished.
    pub estimated_remaining_ms: Option<Long>,
}

impl Progress {
    pub(super) fn of(execution: &TaskExecution) -> Self {
        let succeeded = execution.status.get() == TaskExecutionStatus::Success;
        let elapsed_ms = elapsed_ms(execution);
        let rate_over = |ms: Option<i64>| {
            ms.filter(|ms| *ms > 0).map(|ms| execution.bytes_written.0 as f64 / (ms as f64 / 1000.0))
        };
        let bytes_per_second = if execution.is_terminal() {
            rate_over(performance_ms(execution))
        } else {
            rate_over(elapsed_ms)
        };

        let estimated_bytes = execution.estimated_bytes_to_transfer.0;
        let estimated_remaining_ms = if execution.is_terminal() {
            Some(0)
        } else {
            match bytes_per_second {
                Some(rate) if rate > 0.0 && estimated_bytes > 0 => {
                    let left = (estimated_bytes - execution.bytes_written.0).max(0) as f64;
                    Some((left / rate * 1000.0).round() as i64)
                }
                _ => None,
            }
        };

        Progress {
            bytes_percent: percent(execution.bytes_written.0, estimated_bytes, succeeded),
            files_percent: percent(
                execution.files_transferred.0,
                execution.estimated_files_to_transfer.0,
                succeeded,
            ),
            folders_percent: execution.folders.as_ref().and_then(|folders| {
                let done = folders.folders_transferred?.0;
                percent(done, folders.estimated_folders_to_transfer?.0, succeeded)
            }),
            bytes_per_second,
            elapsed_ms: elapsed_ms.map(Long),
            estimated_remaining_ms: estimated_remaining_ms.map(Long),
        }
    }
}

/// The duration AWS divides by for a finished execution's throughput: TRANSFERRING's in Basic
/// mode, the whole run's in Enhanced mode.
fn performance_ms(execution: &TaskExecution) -> Option<i64> {
    let result = execution.result.as_ref()?;
    let enhanced = execution.task_mode.as_ref().is_some_and(|mode| mode.get() == TaskMode::Enhanced);
    let duration = if enhanced { result.total_duration } else { result.transfer_duration };
    duration.map(|duration| duration.0)
}

fn elapsed_ms(execution: &TaskExecution) -> Option<i64> {
    if execution.is_terminal() {
        // Once finished, only DataSync's own figure is right: fetchedAt keeps moving.
        return execution.result.as_ref()?.total_duration.map(|d| d.0);
    }
    let started = execution.start_time?;
    Some((execution.fetched_at - started).num_milliseconds().max(0))
}

fn percent(done: i64, estimated: i64, succeeded: bool) -> Option<f64> {
    if estimated > 0 {
        Some((done as f64 * 100.0 / estimated as f64).clamp(0.0, 100.0))
    } else if succeeded {
        Some(100.0)
    } else {
        None
    }
}
