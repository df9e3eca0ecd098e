//! One filter, two implementations: `SnapshotFilter::push_where` selects an index page in SQL,
//! `SnapshotFilter::matches` decides in memory whether a live event belongs to a subscription
//! with that filter. A subscriber and a reader of the same filter must see the same executions,
//! so over generated executions (written by the store's real upsert) and generated filters
//! (every condition), the ARNs PostgreSQL returns are exactly those `matches` accepts.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use datasync_gateway::model::ExecutionOrder;
use datasync_gateway::model::{AccountId, Region, TaskArn, TaskExecution};
use datasync_gateway::store::index::filter::SnapshotFilter;
use datasync_gateway::store::index::pages::Direction;
use datasync_gateway::store::Database;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

use crate::common::test_database;

/// Three regions, two accounts; the last task is in neither filter's usual values.
const TASKS: [&str; 4] = [
    "arn:aws:datasync:us-east-1:111122223333:task/task-00000000000000001",
    "arn:aws:datasync:us-east-1:111122223333:task/task-00000000000000002",
    "arn:aws:datasync:eu-west-1:111122223333:task/task-00000000000000003",
    "arn:aws:datasync:eu-west-1:444455556666:task/task-00000000000000004",
];
/// A task no execution has, for filters that name it.
const NO_SUCH_TASK: &str = "arn:aws:datasync:ap-south-1:111122223333:task/task-00000000000000009";
const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-south-1"];
const ACCOUNTS: [&str; 3] = ["111122223333", "444455556666", "999999999999"];
/// DataSync's statuses, and one it may add (moto sends `INITIALIZING`): kept raw, running.
const STATUSES: [&str; 9] = [
    "QUEUED",
    "CANCELLING",
    "LAUNCHING",
    "PREPARING",
    "TRANSFERRING",
    "VERIFYING",
    "SUCCESS",
    "ERROR",
    "INITIALIZING",
];
const MODES: [&str; 3] = ["BASIC", "ENHANCED", "TURBO"];
const ERROR_CODES: [&str; 2] = ["OpCancelled", "ErrorCodeS3AccessDenied"];

/// An execution as generated: what the filter looks at.
#[derive(Clone, Debug)]
struct Generated {
    task: usize,
    status: &'static str,
    task_mode: Option<&'static str>,
    /// `None`: no result at all; `Some(None)`: a result without an error code.
    error_code: Option<Option<&'static str>>,
    start_time: Option<DateTime<Utc>>,
    end_time: Option<DateTime<Utc>>,
    fetched_at: DateTime<Utc>,
}

impl Generated {
    fn execution(&self, index: usize) -> TaskExecution {
        let result = self.error_code.map(|code| json!({ "errorCode": code }));
        serde_json::from_value(json!({
            "taskExecutionArn": format!("{}/execution/exec-{index:017x}", TASKS[self.task]),
            "status": self.status, "options": null, "excludes": [], "includes": [],
            "startTime": self.start_time, "estimatedFilesToTransfer": 0, "estimatedBytesToTransfer": 0,
            "filesTransferred": 0, "bytesWritten": 0, "bytesTransferred": 0, "bytesCompressed": 0,
            "result": result, "filesDeleted": 0, "filesSkipped": 0, "filesVerified": 0,
            "estimatedFilesToDelete": 0, "taskMode": self.task_mode, "filesPrepared": 0,
            "endTime": self.end_time, "fetchedAt": self.fetched_at,
        }))
        .unwrap()
    }
}

/// A few instants a second apart, each on the second, a millisecond past it, or at one of two
/// times within one microsecond: equal and nearly equal times are where `>=` and `<` are told
/// apart, and DataSync's and the gateway's clocks give nanoseconds.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let base = Utc.with_ymd_and_hms(2026, 11, 1, 22, 0, 0).unwrap();
    (0i64..3, prop::sample::select(vec![0i64, 1_000_000, 1_000_200, 1_000_700, 999_999_999]))
        .prop_map(move |(seconds, nanos)| base + Duration::seconds(seconds) + Duration::nanoseconds(nanos))
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        0..TASKS.len(),
        prop::sample::select(STATUSES.to_vec()),
        prop::option::of(prop::sample::select(MODES.to_vec())),
        prop::option::of(prop::option::of(prop::sample::select(ERROR_CODES.to_vec()))),
        prop::option::weighted(0.8, instant()),
        prop::option::weighted(0.5, instant()),
        instant(),
    )
        .prop_map(|(task, status, task_mode, error_code, start_time, end_time, fetched_at)| Generated {
            task,
            status,
            task_mode,
            error_code,
            start_time,
            end_time,
            fetched_at,
        })
}

/// A condition present a quarter of the time.
fn some<S: Strategy>(strategy: S) -> impl Strategy<Value = Option<S::Value>> {
    prop::option::weighted(0.25, strategy)
}

fn text(values: &[&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(values.to_vec()).prop_map(str::to_owned)
}

/// Every condition, each present a quarter of the time.
fn filter() -> impl Strategy<Value = SnapshotFilter> {
    let mut tasks: Vec<TaskArn> = TASKS.iter().map(|task| task.parse().unwrap()).collect();
    tasks.push(NO_SUCH_TASK.parse().unwrap());
    (
        some(prop::sample::subsequence(tasks, 1..=2)).prop_map(Option::unwrap_or_default),
        some(prop::sample::subsequence(STATUSES.map(str::to_owned).to_vec(), 1..=4))
            .prop_map(Option::unwrap_or_default),
        some(text(&REGIONS).prop_map(|region| region.parse::<Region>().unwrap())),
        some(prop::sample::subsequence(ACCOUNTS.map(|a| AccountId::parse(a).unwrap()).to_vec(), 1..=2))
            .prop_map(Option::unwrap_or_default),
        some(prop::sample::subsequence(ACCOUNTS.map(|a| AccountId::parse(a).unwrap()).to_vec(), 0..=2)),
        some(text(&MODES)),
        (some(instant()), some(instant()), some(instant()), some(instant())),
        some(text(&ERROR_CODES)),
        some(any::<bool>()),
        some(instant()),
    )
        .prop_map(
            |(
                task_arns,
                statuses,
                region,
                account_ids,
                visible_accounts,
                task_mode,
                (started_after, started_before, ended_after, ended_before),
                error_code,
                running,
                updated_after,
            )| {
                SnapshotFilter {
                    task_arns,
                    statuses,
                    region,
                    account_ids,
                    visible_accounts,
                    task_mode,
                    started_after,
                    started_before,
                    ended_after,
                    ended_before,
                    error_code,
                    running,
                    updated_after,
                }
            },
        )
}

#[test]
fn the_sql_filter_and_the_in_memory_filter_select_the_same_executions() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (store, pool) = runtime.block_on(async {
        let url = test_database().await;
        let database = Database::connect_lazy(&url, 2).unwrap();
        database.migrate().await.unwrap();
        (database.index(), sqlx::PgPool::connect(&url).await.unwrap())
    });
    // Comparisons where the filter kept some executions and not others: the ones that test it.
    let discriminating = AtomicUsize::new(0);
    let comparisons = AtomicUsize::new(0);

    let config = Config { cases: 48, failure_persistence: None, max_shrink_iters: 512, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let strategy = (prop::collection::vec(generated(), 4..32), prop::collection::vec(filter(), 1..12));
    let outcome = runner.run(&strategy, |(generated, filters)| {
        let executions: Vec<Arc<TaskExecution>> =
            generated.iter().enumerate().map(|(index, one)| Arc::new(one.execution(index))).collect();
        runtime.block_on(async {
            sqlx::query("TRUNCATE execution_snapshots, execution_snapshot_documents CASCADE")
                .execute(&pool)
                .await
                .unwrap();
            store.upsert(&executions).await.unwrap();
            for filter in &filters {
                let page = store
                    .page(filter, ExecutionOrder::StartedAtDesc, Direction::Forward, None, 1_000)
                    .await
                    .unwrap();
                let in_sql: BTreeSet<String> =
                    page.rows.iter().map(|row| row.position.execution_arn.clone()).collect();
                let in_memory: BTreeSet<String> = executions
                    .iter()
                    .filter(|execution| filter.matches(execution))
                    .map(|execution| execution.task_execution_arn.to_string())
                    .collect();
                if in_sql != in_memory {
                    let differing: Vec<String> = in_sql
                        .symmetric_difference(&in_memory)
                        .map(|arn| {
                            let index =
                                executions.iter().position(|e| e.task_execution_arn.as_str() == arn).unwrap();
                            let side = if in_sql.contains(arn) { "SQL only" } else { "matches only" };
                            format!("  {side}: {arn}\n    {:?}", generated[index])
                        })
                        .collect();
                    return Err(TestCaseError::fail(format!(
                        "the filter {filter:?}\nselects differently in SQL and in memory:\n{}",
                        differing.join("\n")
                    )));
                }
                let count = store.count(filter).await.unwrap();
                prop_assert_eq!(count, in_sql.len() as i64, "count(filter) agrees with the page");
                comparisons.fetch_add(1, Ordering::Relaxed);
                if !in_sql.is_empty() && in_sql.len() < executions.len() {
                    discriminating.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        })
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    let (discriminating, comparisons) = (discriminating.into_inner(), comparisons.into_inner());
    assert!(
        discriminating * 5 >= comparisons,
        "only {discriminating} of {comparisons} generated filters kept some executions and not others"
    );
}
