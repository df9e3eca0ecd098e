//! The history service: pages and statistics over recorded executions, for the GraphQL layer.
//! It turns Relay's paging arguments into keyset reads and store failures into safe errors.

use std::sync::Arc;

use crate::datasync::ExecutionArn;
use crate::error::GatewayError;
use crate::service::{Fetched, ServedFrom};
use crate::store::cursor;
use crate::store::filter::SnapshotFilter;
use crate::store::history::{Direction, Order};
use crate::store::stats::{Dimension, Percentiles, StatsRow};
use crate::store::{within, HistoryStore, StoreError};

/// Largest `first`/`last`.
pub const MAX_PAGE_SIZE: usize = 500;
/// Page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Longest a history query may take before the client is told the database is unavailable.
const QUERY_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);
/// Most groups one statistics query may return.
pub const MAX_STATS_GROUPS: usize = 10_000;

/// Relay's paging arguments, as sent.
#[derive(Clone, Debug, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

pub struct HistoryPage {
    /// Each execution with its cursor, in the query's order.
    pub rows: Vec<(String, Fetched)>,
    pub has_previous_page: bool,
    pub has_next_page: bool,
}

#[derive(Clone)]
pub struct HistoryService {
    store: HistoryStore,
}

impl HistoryService {
    pub fn new(store: HistoryStore) -> Self {
        HistoryService { store }
    }

    pub async fn page(
        &self,
        filter: &SnapshotFilter,
        order: Order,
        args: PageArgs,
    ) -> Result<HistoryPage, GatewayError> {
        let digest = cursor::digest(&(filter, order));
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

        let page =
            self.store.page(filter, order, direction, boundary.as_ref(), limit).await.map_err(unavailable)?;
        let rows = page
            .rows
            .into_iter()
            .filter_map(|row| {
                let arn = ExecutionArn::parse(&row.position.execution_arn).ok()?;
                let cursor = cursor::encode(&row.position, &digest);
                let served_from =
                    if row.execution.is_settled() { ServedFrom::History } else { ServedFrom::Index };
                let fetched = Fetched::new(arn, Arc::new(row.execution), served_from);
                Some((cursor, fetched))
            })
            .collect();
        let (has_previous_page, has_next_page) = match direction {
            Direction::Forward => (boundary.is_some(), page.has_more),
            Direction::Backward => (page.has_more, boundary.is_some()),
        };
        Ok(HistoryPage { rows, has_previous_page, has_next_page })
    }

    pub async fn count(&self, filter: &SnapshotFilter) -> Result<i64, GatewayError> {
        within(QUERY_LIMIT, self.store.count(filter)).await.map_err(unavailable)
    }

    pub async fn stats(
        &self,
        filter: &SnapshotFilter,
        group_by: &[Dimension],
        percentiles: Percentiles,
    ) -> Result<Vec<StatsRow>, GatewayError> {
        let rows = within(QUERY_LIMIT, self.store.stats(filter, group_by, MAX_STATS_GROUPS + 1, percentiles))
            .await
            .map_err(unavailable)?;
        if rows.len() > MAX_STATS_GROUPS {
            return Err(bad(format!(
                "more than {MAX_STATS_GROUPS} groups; narrow the filter or group by fewer dimensions"
            )));
        }
        Ok(rows)
    }
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
    tracing::error!(%error, "history query failed");
    match error {
        // The database answered; one stored document does not fit this build's domain type.
        StoreError::Snapshot { .. } => GatewayError::Internal,
        StoreError::Timeout(_) => {
            GatewayError::HistoryUnavailable("the history database did not answer in time")
        }
        _ => GatewayError::HistoryUnavailable("the history database could not be queried"),
    }
}
