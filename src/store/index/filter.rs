//! Which snapshots a history page or a statistic covers, as one SQL `WHERE` clause.

use chrono::{DateTime, Timelike, Utc};
use sqlx::{Postgres, QueryBuilder};

use crate::model::{AccountId, Region, TaskArn, TaskExecution};

/// DataSync's terminal statuses, as an SQL list (the partial index on running rows repeats it).
const FINISHED: &str = "('SUCCESS', 'ERROR')";

/// A validated filter; every condition is optional and they combine with AND. Values are bound
/// as parameters, never spliced into SQL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SnapshotFilter {
    pub task_arns: Vec<TaskArn>,
    /// DataSync's status strings.
    pub statuses: Vec<String>,
    pub region: Option<Region>,
    /// Executions of any of these accounts.
    pub account_ids: Vec<AccountId>,
    /// The accounts the caller may see (`None`: every account). Apart from `account_ids`, which
    /// the caller asks for: both hold, so asking for another account finds nothing.
    pub visible_accounts: Option<Vec<AccountId>>,
    pub task_mode: Option<String>,
    /// Inclusive.
    pub started_after: Option<DateTime<Utc>>,
    /// Exclusive.
    pub started_before: Option<DateTime<Utc>>,
    /// Inclusive; only executions that have ended.
    pub ended_after: Option<DateTime<Utc>>,
    /// Exclusive; only executions that have ended.
    pub ended_before: Option<DateTime<Utc>>,
    pub error_code: Option<String>,
    /// `Some(true)`: only executions still running; `Some(false)`: only finished ones.
    pub running: Option<bool>,
    /// Rows written at or after this time.
    pub updated_after: Option<DateTime<Utc>>,
}

impl SnapshotFilter {
    /// Appends ` WHERE …` (always present, so callers can add `AND …`).
    pub fn push_where(&self, sql: &mut QueryBuilder<'_, Postgres>) {
        sql.push(" WHERE TRUE");
        self.push_attributes(sql);
        if let Some(after) = self.started_after {
            sql.push(" AND started_at >= ").push_bind(after);
        }
        if let Some(before) = self.started_before {
            sql.push(" AND started_at < ").push_bind(before);
        }
        if let Some(after) = self.ended_after {
            sql.push(" AND end_time >= ").push_bind(after);
        }
        if let Some(before) = self.ended_before {
            sql.push(" AND end_time < ").push_bind(before);
        }
        match self.running {
            Some(true) => sql.push(format_args!(" AND status NOT IN {FINISHED}")),
            Some(false) => sql.push(format_args!(" AND status IN {FINISHED}")),
            None => sql,
        };
        if let Some(updated_after) = self.updated_after {
            sql.push(" AND updated_at >= ").push_bind(updated_after);
        }
    }

    /// The conditions on what an execution is (task, status, region, account, mode, error), whose
    /// columns the snapshots and the rollups share.
    fn push_attributes(&self, sql: &mut QueryBuilder<'_, Postgres>) {
        push_any_of(sql, "task_arn", &self.task_arns);
        push_any_of(sql, "status", &self.statuses);
        push_any_of(sql, "account_id", &self.account_ids);
        if let Some(visible) = &self.visible_accounts {
            // Never empty (a caller scoped to no account is refused before), but if it were,
            // `push_any_of` would read it as "any": say "none" instead.
            if visible.is_empty() {
                sql.push(" AND FALSE");
            }
            push_any_of(sql, "account_id", visible);
        }
        let equal = [
            ("region", self.region.as_ref().map(Region::as_str)),
            ("task_mode", self.task_mode.as_deref()),
            ("error_code", self.error_code.as_deref()),
        ];
        for (column, value) in equal {
            if let Some(value) = value {
                sql.push(format_args!(" AND {column} = ")).push_bind(value.to_owned());
            }
        }
    }

    /// Whether the conditions can be put over `execution_rollups` (finished executions per UTC
    /// day, task, status, error code and task mode): not for running executions, rows written
    /// since a time, or bounds in the middle of a day.
    pub fn fits_rollups(&self) -> bool {
        let midnight = |time: &DateTime<Utc>| time.time() == chrono::NaiveTime::MIN;
        let day_bounds = [self.started_after, self.started_before].iter().flatten().all(midnight);
        let by_end = self.ended_after.is_some() || self.ended_before.is_some();
        self.running == Some(false) && self.updated_after.is_none() && !by_end && day_bounds
    }

    /// The conditions over `execution_rollups`, for a filter that [fits](Self::fits_rollups).
    pub fn push_rollup_where(&self, sql: &mut QueryBuilder<'_, Postgres>) {
        sql.push(" WHERE TRUE");
        self.push_attributes(sql);
        if let Some(after) = self.started_after {
            sql.push(" AND started_day >= ").push_bind(after.date_naive());
        }
        if let Some(before) = self.started_before {
            sql.push(" AND started_day < ").push_bind(before.date_naive());
        }
    }

    /// Whether `execution` is one the `WHERE` clause would select, as its index row would hold
    /// it: the same conditions, for events that are matched in memory instead of in SQL.
    pub fn matches(&self, execution: &TaskExecution) -> bool {
        let arn = &execution.task_execution_arn;
        let equal = |wanted: &Option<String>, value: Option<&str>| {
            wanted.as_deref().is_none_or(|wanted| Some(wanted) == value)
        };
        // Times as PostgreSQL compares them: the row's and the bound's, each to the microsecond.
        let started_at = as_stored(execution.start_time.unwrap_or(execution.fetched_at));
        let updated_at = as_stored(execution.fetched_at);
        let ended_at = execution.end_time.map(as_stored);
        let error_code = execution.result.as_ref().and_then(|result| result.error_code.as_deref());
        (self.task_arns.is_empty() || self.task_arns.iter().any(|task| arn.belongs_to(task)))
            && (self.statuses.is_empty()
                || self.statuses.iter().any(|status| status == execution.status.raw()))
            && self.region.as_ref().is_none_or(|region| region.as_str() == arn.region())
            && (self.account_ids.is_empty() || self.account_ids.contains(&arn.account_id()))
            && self.visible_accounts.as_ref().is_none_or(|visible| visible.contains(&arn.account_id()))
            && equal(&self.task_mode, execution.task_mode.as_ref().map(|mode| mode.raw()))
            && equal(&self.error_code, error_code)
            && self.started_after.is_none_or(|after| started_at >= as_stored(after))
            && self.started_before.is_none_or(|before| started_at < as_stored(before))
            && self.ended_after.is_none_or(|after| ended_at.is_some_and(|ended| ended >= as_stored(after)))
            && self.ended_before.is_none_or(|before| ended_at.is_some_and(|ended| ended < as_stored(before)))
            && self.running.is_none_or(|running| running != execution.is_terminal())
            && self.updated_after.is_none_or(|after| updated_at >= as_stored(after))
    }
}

/// `time` to the microsecond, as a `timestamptz` column or parameter holds it (sqlx drops the
/// nanoseconds; for times after 2000, the only ones DataSync has, that is rounding down).
fn as_stored(time: DateTime<Utc>) -> DateTime<Utc> {
    time.with_nanosecond(time.nanosecond() / 1_000 * 1_000).unwrap_or(time)
}

/// `column = ANY(values)`, or `column = value` for one: PostgreSQL plans a one-element ANY
/// poorly (measured: 59 ms instead of 1.6 ms for one task's failures in a week, 1M rows).
fn push_any_of<T: AsRef<str>>(sql: &mut QueryBuilder<'_, Postgres>, column: &str, values: &[T]) {
    match values {
        [] => {}
        [value] => {
            sql.push(format_args!(" AND {column} = ")).push_bind(value.as_ref().to_owned());
        }
        _ => {
            let values: Vec<String> = values.iter().map(|value| value.as_ref().to_owned()).collect();
            sql.push(format_args!(" AND {column} = ANY(")).push_bind(values).push(")");
        }
    }
}
