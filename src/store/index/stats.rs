//! Aggregates over snapshots: counts, sums and duration percentiles per group. They come from
//! `execution_rollups` (kept by triggers as snapshots are written) when the filter fits their
//! grain (whole days), percentiles then from the rollups' duration histograms (within 1%);
//! otherwise, or when exact percentiles are asked for, from every matching snapshot.

use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::{FromRow, Postgres, QueryBuilder};

use super::duration_histogram::DurationHistogram;
use super::filter::SnapshotFilter;
use super::IndexStore;
use crate::model::StatsDimension;
use crate::store::StoreError;

/// Every dimension, in the order of the key columns.
const DIMENSIONS: [StatsDimension; 6] = [
    StatsDimension::Task,
    StatsDimension::Status,
    StatsDimension::Day,
    StatsDimension::Region,
    StatsDimension::ErrorCode,
    StatsDimension::Account,
];

/// A dimension's column (or expression) and the name it is selected as.
fn key_column(dimension: StatsDimension) -> (&'static str, &'static str) {
    match dimension {
        StatsDimension::Task => ("task_arn", "task_arn"),
        StatsDimension::Status => ("status", "status"),
        StatsDimension::Day => ("started_day", "day"),
        StatsDimension::Region => ("region", "region"),
        StatsDimension::ErrorCode => ("error_code", "error_code"),
        StatsDimension::Account => ("account_id", "account_id"),
    }
}

/// What a statistics query needs of duration percentiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Percentiles {
    NotWanted,
    /// Within [`RELATIVE_ERROR`](super::duration_histogram::RELATIVE_ERROR) of `Exact`: from the
    /// rollups' histograms when the filter fits them.
    Approximate,
    /// `percentile_cont` over every matching snapshot (and so are the counts and sums).
    Exact,
}

/// `SELECT * FROM (SELECT <keys>, ` with every dimension, grouped or NULL. `rollups` reads the
/// rollups' empty-string error code as none.
fn select_keys(dimensions: &[StatsDimension], rollups: bool) -> QueryBuilder<'static, Postgres> {
    let mut sql = QueryBuilder::<Postgres>::new("SELECT * FROM (SELECT ");
    for dimension in DIMENSIONS {
        let (expression, name) = key_column(dimension);
        if dimensions.contains(&dimension) {
            if rollups && dimension == StatsDimension::ErrorCode {
                sql.push("NULLIF(error_code, '') AS error_code, ");
            } else {
                sql.push(format_args!("{expression} AS {name}, "));
            }
        } else if dimension == StatsDimension::Day {
            sql.push("NULL::date AS day, ");
        } else {
            sql.push(format_args!("NULL::text AS {name}, "));
        }
    }
    sql
}

/// ` GROUP BY <keys>` (on the source's columns), the fence, the order (by the selected names)
/// and the limit.
fn push_grouping(sql: &mut QueryBuilder<'_, Postgres>, dimensions: &[StatsDimension], max_groups: usize) {
    let (columns, names): (Vec<&str>, Vec<&str>) = DIMENSIONS
        .iter()
        .filter(|dimension| dimensions.contains(dimension))
        .map(|&dimension| key_column(dimension))
        .unzip();
    if !columns.is_empty() {
        sql.push(format_args!(" GROUP BY {}", columns.join(", ")));
    }
    sql.push(" OFFSET 0) groups");
    if !names.is_empty() {
        sql.push(format_args!(" ORDER BY {}", names.join(", ")));
    }
    sql.push(" LIMIT ").push_bind(max_groups as i64);
}

/// Which group figures are for; a field is `None` when not grouped by it (or, for the error
/// code, for executions without one).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupKey {
    pub task_arn: Option<String>,
    pub status: Option<String>,
    pub day: Option<String>,
    pub region: Option<String>,
    pub error_code: Option<String>,
    pub account_id: Option<String>,
}

/// One group's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatsRow {
    pub key: GroupKey,
    pub count: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub bytes_transferred: i64,
    pub bytes_written: i64,
    pub files_transferred: i64,
    pub avg_duration_ms: Option<f64>,
    pub p50_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<f64>,
}

impl IndexStore {
    /// Figures per group of `dimensions` (one overall group when empty), ordered by key, at most
    /// `max_groups` of them.
    pub async fn stats(
        &self,
        filter: &SnapshotFilter,
        dimensions: &[StatsDimension],
        max_groups: usize,
        percentiles: Percentiles,
    ) -> Result<Vec<StatsRow>, StoreError> {
        if percentiles != Percentiles::Exact && filter.fits_rollups() {
            return self.stats_from_rollups(filter, dimensions, max_groups, percentiles).await;
        }
        // The grouping runs in a subquery fenced by OFFSET 0 and the order and limit apply to
        // its result: with a LIMIT inside, PostgreSQL chose to walk the task index and fetch a
        // million rows at random (measured: 4.9 s).
        let mut sql = select_keys(dimensions, false);
        sql.push(
            "count(*) AS count, \
             count(*) FILTER (WHERE status = 'SUCCESS') AS succeeded, \
             count(*) FILTER (WHERE status = 'ERROR') AS failed, \
             coalesce(sum(bytes_transferred), 0)::bigint AS bytes_transferred, \
             coalesce(sum(bytes_written), 0)::bigint AS bytes_written, \
             coalesce(sum(files_transferred), 0)::bigint AS files_transferred, \
             avg(total_duration_ms)::float8 AS avg_duration_ms, \
             percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY total_duration_ms) AS percentiles \
             FROM execution_snapshots",
        );
        filter.push_where(&mut sql);
        push_grouping(&mut sql, dimensions, max_groups);

        // Groupings the task/day index does not serve sort the matching rows; with the default
        // 4 MB of work_mem a million of them spill to disk.
        let mut transaction = self.pool.begin().await?;
        sqlx::query!("SET LOCAL work_mem = '64MB'").execute(&mut *transaction).await?;
        let rows = sql.build_query_as::<StatsRecord>().fetch_all(&mut *transaction).await?;
        transaction.commit().await?;
        Ok(rows.into_iter().map(StatsRow::from).collect())
    }

    /// Counts and sums from the rollups, percentiles (when wanted) from their histograms, read
    /// in one snapshot of the database.
    async fn stats_from_rollups(
        &self,
        filter: &SnapshotFilter,
        dimensions: &[StatsDimension],
        max_groups: usize,
        percentiles: Percentiles,
    ) -> Result<Vec<StatsRow>, StoreError> {
        let mut sums = rollup_query(filter, dimensions, max_groups);
        if percentiles == Percentiles::NotWanted {
            let rows = sums.build_query_as::<StatsRecord>().fetch_all(&self.pool).await?;
            return Ok(rows.into_iter().map(StatsRow::from).collect());
        }
        let mut transaction = self.pool.begin().await?;
        sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *transaction)
            .await?;
        let mut rows: Vec<StatsRow> = sums
            .build_query_as::<StatsRecord>()
            .fetch_all(&mut *transaction)
            .await?
            .into_iter()
            .map(StatsRow::from)
            .collect();
        // Merged here, not in SQL: PostgreSQL has no cheap sum of histograms, and the rows are
        // few (one per day, task, status, error code and mode) with a few hundred buckets each.
        let mut histograms: HashMap<GroupKey, DurationHistogram> = HashMap::new();
        let mut sql = select_keys(dimensions, true);
        sql.push("duration_histogram FROM execution_rollups");
        filter.push_rollup_where(&mut sql);
        sql.push(" AND timed <> 0) histograms");
        let mut stream = sql.build().fetch(&mut *transaction);
        while let Some(row) = stream.try_next().await? {
            // Read from the row in place (not build_query_as): the histogram is borrowed, not copied.
            let row = HistogramRecord::from_row(&row)?;
            histograms.entry(row.key.into()).or_default().add(row.duration_histogram);
        }
        drop(stream);
        transaction.commit().await?;
        for row in &mut rows {
            if let Some(histogram) = histograms.remove(&row.key) {
                [row.p50_duration_ms, row.p95_duration_ms] = histogram.percentiles([0.5, 0.95]);
            }
        }
        Ok(rows)
    }
}

/// Counts and sums from the rollups, for a filter that fits their grain.
fn rollup_query(
    filter: &SnapshotFilter,
    dimensions: &[StatsDimension],
    max_groups: usize,
) -> QueryBuilder<'static, Postgres> {
    let mut sql = select_keys(dimensions, true);
    sql.push(
        "coalesce(sum(executions), 0)::bigint AS count, \
         coalesce(sum(executions) FILTER (WHERE status = 'SUCCESS'), 0)::bigint AS succeeded, \
         coalesce(sum(executions) FILTER (WHERE status = 'ERROR'), 0)::bigint AS failed, \
         coalesce(sum(bytes_transferred), 0)::bigint AS bytes_transferred, \
         coalesce(sum(bytes_written), 0)::bigint AS bytes_written, \
         coalesce(sum(files_transferred), 0)::bigint AS files_transferred, \
         (sum(duration_ms) / nullif(sum(timed), 0))::float8 AS avg_duration_ms, \
         NULL::float8[] AS percentiles \
         FROM execution_rollups",
    );
    filter.push_rollup_where(&mut sql);
    // Rows whose executions were all pruned or rewritten away stay at zero.
    sql.push(" AND executions <> 0");
    push_grouping(&mut sql, dimensions, max_groups);
    sql
}

/// The key columns [`select_keys`] selected.
#[derive(sqlx::FromRow)]
struct KeyColumns {
    task_arn: Option<String>,
    status: Option<String>,
    day: Option<chrono::NaiveDate>,
    region: Option<String>,
    error_code: Option<String>,
    account_id: Option<String>,
}

impl From<KeyColumns> for GroupKey {
    fn from(key: KeyColumns) -> Self {
        GroupKey {
            task_arn: key.task_arn,
            status: key.status,
            day: key.day.map(|day| day.format("%Y-%m-%d").to_string()),
            region: key.region,
            error_code: key.error_code,
            account_id: key.account_id,
        }
    }
}

/// A row of the figures' queries ([`HistoryStore::stats`], [`rollup_query`]).
#[derive(sqlx::FromRow)]
struct StatsRecord {
    #[sqlx(flatten)]
    key: KeyColumns,
    count: i64,
    succeeded: i64,
    failed: i64,
    bytes_transferred: i64,
    bytes_written: i64,
    files_transferred: i64,
    avg_duration_ms: Option<f64>,
    /// p50 and p95, when computed exactly.
    percentiles: Option<Vec<Option<f64>>>,
}

impl From<StatsRecord> for StatsRow {
    fn from(row: StatsRecord) -> Self {
        let percentile = |i: usize| row.percentiles.as_ref().and_then(|p| p.get(i).copied().flatten());
        StatsRow {
            p50_duration_ms: percentile(0),
            p95_duration_ms: percentile(1),
            key: row.key.into(),
            count: row.count,
            succeeded: row.succeeded,
            failed: row.failed,
            bytes_transferred: row.bytes_transferred,
            bytes_written: row.bytes_written,
            files_transferred: row.files_transferred,
            avg_duration_ms: row.avg_duration_ms,
        }
    }
}

/// A row of the rollups' histograms per group.
#[derive(sqlx::FromRow)]
struct HistogramRecord<'r> {
    #[sqlx(flatten)]
    key: KeyColumns,
    duration_histogram: &'r [u8],
}
