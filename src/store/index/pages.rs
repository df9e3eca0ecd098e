//! History pages: keyset pagination over `(started_at, execution_arn)` (or `(end_time,
//! execution_arn)` in the order of the end), never OFFSET, so a page a thousand deep costs what
//! the first one does.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder};

use super::cursor::Position;
use super::filter::SnapshotFilter;
use super::{IndexStore, StoredSnapshot};
use crate::model::{ExecutionOrder, TaskExecution};
use crate::store::StoreError;

/// Which way a page is read from its boundary: Relay's `first`/`after` or `last`/`before`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// A row as [`IndexStore::page`] selects it.
#[derive(sqlx::FromRow)]
struct PageRecord {
    execution_arn: String,
    /// The time the page is ordered by.
    at: DateTime<Utc>,
    snapshot: StoredSnapshot,
}

pub struct PageRow {
    pub position: Position,
    pub execution: TaskExecution,
}

pub struct Page {
    /// In the query's order, whichever the direction.
    pub rows: Vec<PageRow>,
    /// More rows lie beyond the page in the direction it was read.
    pub has_more: bool,
}

impl IndexStore {
    /// Up to `limit` rows after (forward) or before (backward) `boundary`, in `order`.
    pub async fn page(
        &self,
        filter: &SnapshotFilter,
        order: ExecutionOrder,
        direction: Direction,
        boundary: Option<&Position>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        // Reading backward is reading the opposite order forward, then reversing the page.
        let descending = order.descending() == (direction == Direction::Forward);
        let (comparison, sort) = if descending { ("<", "DESC") } else { (">", "ASC") };
        // Ordered by the end, a page holds only executions that have one.
        let column = if order.by_end() { "end_time" } else { "started_at" };

        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "SELECT execution_arn, {column} AS at, snapshot FROM execution_snapshots \
             JOIN execution_snapshot_documents USING (execution_arn)"
        ));
        filter.push_where(&mut sql);
        if order.by_end() {
            sql.push(" AND end_time IS NOT NULL");
        }
        if let Some(boundary) = boundary {
            sql.push(format_args!(" AND ({column}, execution_arn) {comparison} ("))
                .push_bind(boundary.at)
                .push(", ")
                .push_bind(boundary.execution_arn.clone())
                .push(")");
        }
        sql.push(format_args!(" ORDER BY {column} {sort}, execution_arn {sort} LIMIT "))
            .push_bind(limit as i64 + 1);

        let rows = sql.build_query_as::<PageRecord>().fetch_all(&self.pool).await?;
        let has_more = rows.len() > limit;
        let mut rows = rows
            .into_iter()
            .take(limit)
            .map(|PageRecord { execution_arn, at, snapshot }| {
                let execution = snapshot.decode(&execution_arn)?;
                Ok(PageRow { position: Position { at, execution_arn }, execution })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if direction == Direction::Backward {
            rows.reverse();
        }
        Ok(Page { rows, has_more })
    }

    /// How many snapshots match `filter`.
    pub async fn count(&self, filter: &SnapshotFilter) -> Result<i64, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new("SELECT count(*) FROM execution_snapshots");
        filter.push_where(&mut sql);
        Ok(sql.build_query_scalar::<i64>().fetch_one(&self.pool).await?)
    }
}
