//! Reads of stored task report records: one execution's report (its ingestion, counts, files),
//! records across executions, and the paths that keep failing. Bounds and cursors are checked
//! here; the SQL is the store's ([`ReportStore`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::GatewayError;
use crate::model::{AccountId, ExecutionArn, ReportKind, TaskArn};
use crate::service::index::checked;
use crate::store::index::filter::SnapshotFilter;
use crate::store::reports::{Executions, ReportStore};
pub use crate::store::reports::{FailingPath, FileCursor, FileFilter, FileRow, Ingestion, StoredPart};
use crate::store::within;

/// Records in a page when `first` is not given, and at most.
pub const DEFAULT_FILES: usize = 100;
pub const MAX_FILES: usize = 1000;
/// Paths `failingPaths` answers when `first` is not given, and at most.
pub const DEFAULT_PATHS: usize = 20;
pub const MAX_PATHS: usize = 500;
/// How far back `failingPaths` looks when `since` is not given.
const DEFAULT_SINCE: chrono::Duration = chrono::Duration::days(30);

#[derive(Clone)]
pub struct ReportService {
    store: ReportStore,
    limit: Duration,
}

/// A page of records, and whether more follow.
pub struct FilePage {
    pub rows: Vec<FileRow>,
    pub has_next_page: bool,
}

impl ReportService {
    pub fn new(store: ReportStore, limit: Duration) -> Self {
        ReportService { store, limit }
    }

    pub async fn ingestion(&self, execution: &ExecutionArn) -> Result<Option<Ingestion>, GatewayError> {
        Ok(within(self.limit, self.store.ingestion(execution)).await?)
    }

    pub async fn parts(&self, ingestion: i64) -> Result<Vec<StoredPart>, GatewayError> {
        Ok(within(self.limit, self.store.parts(ingestion)).await?)
    }

    pub async fn counts(&self, ingestion: i64) -> Result<Vec<(ReportKind, String, i64)>, GatewayError> {
        Ok(within(self.limit, self.store.counts(ingestion)).await?)
    }

    /// A page of one ingestion's records.
    pub async fn files(
        &self,
        ingestion: i64,
        filter: &FileFilter,
        first: Option<i32>,
        after: Option<&str>,
    ) -> Result<FilePage, GatewayError> {
        self.page(&Executions::One(ingestion), filter, first, after).await
    }

    /// A page of the records of the executions `executions` selects.
    pub async fn across(
        &self,
        executions: SnapshotFilter,
        filter: &FileFilter,
        first: Option<i32>,
        after: Option<&str>,
    ) -> Result<FilePage, GatewayError> {
        let executions = checked(executions)?;
        self.page(&Executions::Matching(&executions), filter, first, after).await
    }

    async fn page(
        &self,
        executions: &Executions<'_>,
        filter: &FileFilter,
        first: Option<i32>,
        after: Option<&str>,
    ) -> Result<FilePage, GatewayError> {
        let first = bounded("first", first, DEFAULT_FILES, MAX_FILES)?;
        let after = after
            .map(|text| {
                FileCursor::decode(text).ok_or_else(|| {
                    GatewayError::BadUserInput(
                        "`after` is not a cursor of this list; start again without it".into(),
                    )
                })
            })
            .transpose()?;
        let mut rows =
            within(self.limit, self.store.files(executions, filter, after.as_ref(), first)).await?;
        let has_next_page = rows.len() as i64 > first;
        rows.truncate(first as usize);
        Ok(FilePage { rows, has_next_page })
    }

    /// The paths that failed in the most executions of `task` since `since` (30 days ago when
    /// not given), seen by a caller of `visible` accounts (`None`: all).
    pub async fn failing_paths(
        &self,
        task: &TaskArn,
        since: Option<DateTime<Utc>>,
        visible: Option<&[AccountId]>,
        first: Option<i32>,
    ) -> Result<Vec<FailingPath>, GatewayError> {
        let first = bounded("first", first, DEFAULT_PATHS, MAX_PATHS)?;
        let since = since.unwrap_or_else(|| Utc::now() - DEFAULT_SINCE);
        Ok(within(self.limit, self.store.failing_paths(task, since, visible, first)).await?)
    }
}

/// `value`, or `default`, checked to lie in 1..=`max`.
fn bounded(name: &str, value: Option<i32>, default: usize, max: usize) -> Result<i64, GatewayError> {
    match value {
        None => Ok(default as i64),
        Some(value) if value >= 1 && value as usize <= max => Ok(i64::from(value)),
        Some(value) => {
            Err(GatewayError::BadUserInput(format!("{name} must be between 1 and {max}; got {value}")))
        }
    }
}
