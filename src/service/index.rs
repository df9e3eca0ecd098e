//! The index service: every read of the index of executions (pages of `executions` and
//! `executionHistory`, counts, statistics, and the settled descriptions the execution path
//! reads instead of calling DataSync), and the one way an execution is written to it (its
//! [`IndexWriter`]). "History" is the index's finished part: a scope of the same reads.
//!
//! It checks filters and paging arguments, turns Relay's arguments into keyset reads, and
//! store failures into safe errors.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Datelike;

use crate::config::StoreTimeouts;
use crate::error::GatewayError;
use crate::model::{ExecutionArn, ExecutionOrder, StatsDimension, TaskExecution};
use crate::service::executions::{Fetched, ServedFrom};
use crate::store::index::cursor;
use crate::store::index::pages::Direction;

// What pages and statistics are read with and give, as the store defines them: part of this
// service's API, so that its callers need not reach into the store.
pub use crate::store::index::filter::SnapshotFilter;
pub use crate::store::index::stats::{Percentiles, StatsRow};
use crate::store::index::writer::IndexWriter;
use crate::store::index::IndexStore;
use crate::store::{within, StoreError};

/// Largest `first`/`last`.
pub const MAX_PAGE_SIZE: usize = 500;
/// Page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Most groups one statistics query may return.
pub const MAX_STATS_GROUPS: usize = 10_000;
/// Most task ARNs, or accounts, one filter may name.
const MAX_FILTER_IDS: usize = 100;

/// Relay's paging arguments, as sent.
#[derive(Clone, Debug, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// `filter` with its bounds checked (its identifiers were parsed where they entered); the
/// message names the field.
pub fn checked(filter: SnapshotFilter) -> Result<SnapshotFilter, GatewayError> {
    if filter.task_arns.len() > MAX_FILTER_IDS {
        return Err(bad(format!(
            "filter.taskArns takes at most {MAX_FILTER_IDS} ARNs; got {}",
            filter.task_arns.len()
        )));
    }
    if filter.account_ids.len() > MAX_FILTER_IDS {
        return Err(bad(format!(
            "filter.accountIds takes at most {MAX_FILTER_IDS} accounts; got {}",
            filter.account_ids.len()
        )));
    }
    if filter
        .error_code
        .as_ref()
        .is_some_and(|code| code.is_empty() || code.len() > 256 || code.contains('\0'))
    {
        return Err(bad("filter.errorCode must be 1 to 256 characters, without NUL"));
    }
    for (name, time) in [
        ("startedAfter", filter.started_after),
        ("startedBefore", filter.started_before),
        ("endedAfter", filter.ended_after),
        ("endedBefore", filter.ended_before),
        ("updatedAfter", filter.updated_after),
    ] {
        if time.is_some_and(|time| !(1..=9999).contains(&time.year())) {
            return Err(bad(format!("filter.{name} must be between the years 1 and 9999")));
        }
    }
    for (after, before, names) in [
        (
            filter.started_after,
            filter.started_before,
            "filter.startedAfter must be earlier than filter.startedBefore",
        ),
        (
            filter.ended_after,
            filter.ended_before,
            "filter.endedAfter must be earlier than filter.endedBefore",
        ),
    ] {
        if let (Some(after), Some(before)) = (after, before) {
            if after >= before {
                return Err(bad(names));
            }
        }
    }
    Ok(filter)
}

/// One page of the index.
pub struct IndexPage {
    /// Each execution with its cursor, in the query's order.
    pub rows: Vec<(String, Fetched)>,
    pub has_previous_page: bool,
    pub has_next_page: bool,
    /// The filter the page was read with, for a count of the whole query.
    pub filter: SnapshotFilter,
}

/// Which executions a read covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every execution the index holds, running and finished (`executions`).
    All,
    /// Finished ones only (`executionHistory`, statistics).
    Finished,
}

#[derive(Clone)]
pub struct IndexService {
    store: IndexStore,
    writer: IndexWriter,
    timeouts: StoreTimeouts,
    /// Until when the execution path skips the store, after it failed.
    paused_until: Arc<Mutex<Option<Instant>>>,
}

impl IndexService {
    pub fn new(store: IndexStore, writer: IndexWriter, timeouts: StoreTimeouts) -> Self {
        IndexService { store, writer, timeouts, paused_until: Arc::default() }
    }

    /// Whether the database answers (within the read limit), for readiness.
    pub async fn reachable(&self) -> bool {
        within(self.timeouts.read, async { Ok(self.store.ping().await) }).await.unwrap_or(false)
    }

    /// The one writer of execution rows.
    pub fn writer(&self) -> &IndexWriter {
        &self.writer
    }

    /// A page of the executions in `scope`.
    pub async fn page(
        &self,
        filter: SnapshotFilter,
        scope: Scope,
        order: ExecutionOrder,
        args: PageArgs,
    ) -> Result<IndexPage, GatewayError> {
        let filter = scoped(checked(filter)?, scope)?;
        let digest = cursor::digest(&(&filter, order));
        let (direction, limit, boundary) = match (args.first, args.last) {
            (Some(_), Some(_)) => return Err(bad("give `first` or `last`, not both")),
            (_, Some(last)) => {
                if args.after.is_some() {
                    return Err(bad("`after` goes with `first`; use `before` with `last`"));
                }
                (Direction::Backward, page_size("last", last)?, args.before)
            }
            (first, None) => {
                if args.before.is_some() {
                    return Err(bad("`before` goes with `last`; use `after` with `first`"));
                }
                let limit = first.map_or(Ok(DEFAULT_PAGE_SIZE), |first| page_size("first", first))?;
                (Direction::Forward, limit, args.after)
            }
        };
        let boundary = boundary
            .map(|cursor| cursor::decode(&cursor, &digest).map_err(|error| bad(error.to_string())))
            .transpose()?;

        let read = self.store.page(&filter, order, direction, boundary.as_ref(), limit);
        let page = within(self.timeouts.query, read).await.map_err(unavailable)?;
        let rows = page
            .rows
            .into_iter()
            .map(|row| {
                let cursor = cursor::encode(&row.position, &digest);
                let served_from =
                    if row.execution.is_settled() { ServedFrom::History } else { ServedFrom::Index };
                (cursor, Fetched::new(Arc::new(row.execution), served_from))
            })
            .collect();
        let (has_previous_page, has_next_page) = match direction {
            Direction::Forward => (boundary.is_some(), page.has_more),
            Direction::Backward => (page.has_more, boundary.is_some()),
        };
        Ok(IndexPage { rows, has_previous_page, has_next_page, filter })
    }

    /// How many executions `filter` (as a page read it) matches.
    pub async fn count(&self, filter: &SnapshotFilter) -> Result<i64, GatewayError> {
        within(self.timeouts.query, self.store.count(filter)).await.map_err(unavailable)
    }

    /// Statistics of finished executions, per group of `group_by`.
    pub async fn stats(
        &self,
        filter: SnapshotFilter,
        group_by: &[StatsDimension],
        percentiles: Percentiles,
    ) -> Result<Vec<StatsRow>, GatewayError> {
        let filter = scoped(checked(filter)?, Scope::Finished)?;
        let read = self.store.stats(&filter, group_by, MAX_STATS_GROUPS + 1, percentiles);
        let rows = within(self.timeouts.query, read).await.map_err(unavailable)?;
        if rows.len() > MAX_STATS_GROUPS {
            return Err(bad(format!(
                "more than {MAX_STATS_GROUPS} groups; narrow the filter or group by fewer dimensions"
            )));
        }
        Ok(rows)
    }

    /// The stored descriptions of those of `arns` the index has (what another replica wrote).
    pub async fn descriptions(&self, arns: &[ExecutionArn]) -> Result<Vec<TaskExecution>, StoreError> {
        within(self.timeouts.coordination, self.store.get_many(arns)).await
    }

    /// The stored descriptions of the executions the index holds as running.
    pub async fn running(&self) -> Result<Vec<TaskExecution>, StoreError> {
        within(self.timeouts.coordination, self.store.running()).await
    }

    /// Writes `executions` through the writer and waits until they are durable.
    pub async fn write(&self, executions: &[Arc<TaskExecution>]) -> Result<(), StoreError> {
        Ok(self.writer.write(executions, self.timeouts.coordination).await?)
    }

    /// The settled description of `arn`, if the index has one and can be asked: what the
    /// execution path answers instead of calling DataSync. After the store failed, it is
    /// skipped for a while, so that live reads go straight to DataSync instead of each waiting.
    pub async fn settled(&self, arn: &ExecutionArn) -> Option<TaskExecution> {
        let paused = |until: &Option<Instant>| until.is_some_and(|until| Instant::now() < until);
        if paused(&self.paused_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner())) {
            return None;
        }
        match within(self.timeouts.read, self.store.get(arn)).await {
            Ok(found) => found.filter(TaskExecution::is_settled),
            // One unreadable document is not an outage: DataSync has the answer.
            Err(error @ StoreError::Snapshot { .. }) => {
                tracing::error!(%arn, %error, "stored snapshot unreadable; reading from DataSync");
                None
            }
            Err(error) => {
                tracing::warn!(%arn, %error, "index unavailable; reading from DataSync for a while");
                *self.paused_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                    Some(Instant::now() + self.timeouts.read_pause);
                None
            }
        }
    }
}

/// The filter restricted to `scope`; asking a finished-only field for running executions is a
/// mistake worth saying.
fn scoped(mut filter: SnapshotFilter, scope: Scope) -> Result<SnapshotFilter, GatewayError> {
    if scope == Scope::Finished {
        if filter.running == Some(true) {
            return Err(bad(
                "history and statistics cover finished executions; use `executions` for running ones",
            ));
        }
        filter.running = Some(false);
    }
    Ok(filter)
}

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::BadUserInput(message.into())
}

fn page_size(name: &str, value: i32) -> Result<usize, GatewayError> {
    match usize::try_from(value) {
        Ok(size @ 1..=MAX_PAGE_SIZE) => Ok(size),
        _ => Err(bad(format!("`{name}` must be between 1 and {MAX_PAGE_SIZE}; got {value}"))),
    }
}

fn unavailable(error: StoreError) -> GatewayError {
    tracing::error!(%error, "index query failed");
    GatewayError::from(error)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn refused(filter: SnapshotFilter) -> String {
        match checked(filter) {
            Err(GatewayError::BadUserInput(message)) => message,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn filters_out_of_bounds_are_refused_naming_the_field() {
        let task = crate::model::TaskArn::parse(
            "arn:aws:datasync:us-east-1:111222333444:task/task-0208075f79cedf4a2",
        );
        let many = SnapshotFilter { task_arns: vec![task.unwrap(); 101], ..Default::default() };
        assert!(refused(many).contains("filter.taskArns takes at most 100"));
        let nul = SnapshotFilter { error_code: Some("a\0b".into()), ..Default::default() };
        assert!(refused(nul).contains("filter.errorCode"));
        let year_0 = chrono::Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap();
        assert!(refused(SnapshotFilter { updated_after: Some(year_0), ..Default::default() })
            .contains("updatedAfter"));
        let now = chrono::Utc::now();
        let backwards =
            SnapshotFilter { started_after: Some(now), started_before: Some(now), ..Default::default() };
        assert!(refused(backwards).contains("earlier than"));
        assert!(checked(SnapshotFilter { started_before: Some(now), ..Default::default() }).is_ok());
    }

    #[test]
    fn history_is_the_finished_part_of_the_index() {
        let all = scoped(SnapshotFilter::default(), Scope::All).unwrap();
        assert_eq!(all.running, None);
        let finished = scoped(SnapshotFilter::default(), Scope::Finished).unwrap();
        assert_eq!(finished.running, Some(false));
        let running = SnapshotFilter { running: Some(true), ..Default::default() };
        assert!(scoped(running, Scope::Finished).is_err(), "history has no running executions to give");
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size("first", 1).unwrap(), 1);
        assert_eq!(page_size("first", 500).unwrap(), 500);
        for wrong in [0, -1, 501, i32::MAX] {
            assert!(page_size("first", wrong).is_err(), "{wrong}");
        }
    }
}
