//! executionHistory and executionStats over a few hundred recorded executions, checked against
//! figures computed here from the same data.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use datasync_gateway::model::TaskExecution;
use datasync_gateway::store::index::writer::IndexWriter;
use datasync_gateway::store::Database;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{error_codes, history_config, TestGateway};

const TASKS: [&str; 3] = [
    "arn:aws:datasync:us-east-1:111122223333:task/task-00000000000000001",
    "arn:aws:datasync:us-east-1:111122223333:task/task-00000000000000002",
    "arn:aws:datasync:eu-west-1:111122223333:task/task-00000000000000003",
];

/// One recorded execution, as the test knows it.
#[derive(Clone, Debug)]
struct Row {
    arn: String,
    task: &'static str,
    status: &'static str,
    error_code: Option<&'static str>,
    started_at: DateTime<Utc>,
    duration_ms: i64,
    bytes: i64,
}

impl Row {
    fn region(&self) -> &str {
        self.task.split(':').nth(3).unwrap()
    }

    fn execution(&self) -> TaskExecution {
        let result = json!({ "totalDuration": self.duration_ms, "errorCode": self.error_code });
        serde_json::from_value(json!({
            "taskExecutionArn": self.arn, "status": self.status, "options": null,
            "excludes": [], "includes": [], "startTime": self.started_at,
            "estimatedFilesToTransfer": 10, "estimatedBytesToTransfer": self.bytes,
            "filesTransferred": 10, "bytesWritten": self.bytes, "bytesTransferred": self.bytes,
            "bytesCompressed": 0, "result": result, "filesDeleted": 0, "filesSkipped": 0,
            "filesVerified": 10, "estimatedFilesToDelete": 0, "taskMode": "BASIC", "filesPrepared": 0,
            "fetchedAt": self.started_at + Duration::hours(3),
            "endTime": self.started_at + Duration::milliseconds(self.duration_ms),
        }))
        .unwrap()
    }
}

/// `count` rows; every five share a start time, ARNs sort differently from start order.
fn dataset(count: usize, first_id: usize) -> Vec<Row> {
    let base = Utc.with_ymd_and_hms(2026, 11, 1, 22, 0, 0).unwrap();
    (first_id..first_id + count)
        .map(|i| {
            let task = TASKS[i % 3];
            let id = (i * 7919) % 100_003;
            let failed = i % 4 == 0;
            Row {
                arn: format!("{task}/execution/exec-{id:017x}"),
                task,
                status: if failed { "ERROR" } else { "SUCCESS" },
                error_code: failed.then_some(if i % 8 == 0 {
                    "ErrorCodeS3AccessDenied"
                } else {
                    "OpCancelled"
                }),
                started_at: base + Duration::minutes(70 * (i / 5) as i64),
                duration_ms: 1_000 + (i as i64 * 37 % 500) * 100,
                bytes: i as i64 * 1_000_003,
            }
        })
        .collect()
}

async fn record(database_url: &str, rows: &[Row]) {
    let store = Database::connect_lazy(database_url, 2).unwrap().index();
    let batch: Vec<Arc<TaskExecution>> = rows.iter().map(|row| Arc::new(row.execution())).collect();
    store.upsert(&batch).await.unwrap();
}

/// A gateway whose history holds `rows`.
async fn gateway_with(rows: &[Row]) -> (TestGateway, String) {
    let config = history_config().await;
    let database_url = config.history.database_url.clone().unwrap();
    let gateway = TestGateway::start_with(config).await;
    record(&database_url, rows).await;
    (gateway, database_url)
}

/// Newest first, ties broken by ARN (descending), as the gateway orders.
fn newest_first(rows: &[Row]) -> Vec<String> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| (b.started_at, &b.arn).cmp(&(a.started_at, &a.arn)));
    rows.into_iter().map(|row| row.arn).collect()
}

const PAGE: &str = "query($filter: ExecutionFilter, $order: HistoryOrder, $first: Int, $after: String,
                          $last: Int, $before: String) {
    executionHistory(filter: $filter, orderBy: $order, first: $first, after: $after, last: $last, before: $before) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { taskExecutionArn servedFrom } }
    }
}";

async fn page(gateway: &TestGateway, variables: Value) -> Value {
    let response = gateway.query(PAGE, variables).await;
    assert!(response["errors"].is_null(), "{response}");
    response["data"]["executionHistory"].clone()
}

fn arns(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["taskExecutionArn"].as_str().unwrap().into())
        .collect()
}

#[tokio::test]
async fn pages_walk_every_row_once_forward_and_backward_with_filters() {
    let rows = dataset(300, 0);
    let (gateway, _) = gateway_with(&rows).await;
    let filter = json!({ "statuses": ["ERROR", "SUCCESS"], "taskArns": [TASKS[0], TASKS[2]],
                         "startedAfter": "2026-11-02T00:00:00Z", "startedBefore": "2026-11-12T00:00:00Z" });
    let expected: Vec<String> = newest_first(
        &rows
            .iter()
            .filter(|r| r.task != TASKS[1])
            .filter(|r| r.started_at >= Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap())
            .filter(|r| r.started_at < Utc.with_ymd_and_hms(2026, 11, 12, 0, 0, 0).unwrap())
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert!(expected.len() > 100, "{}", expected.len());

    let mut forward = Vec::new();
    let mut after = Value::Null;
    for page_number in 0.. {
        let p = page(&gateway, json!({ "filter": filter, "first": 7, "after": after })).await;
        assert_eq!(p["totalCount"], expected.len());
        assert_eq!(p["pageInfo"]["hasPreviousPage"], page_number > 0);
        assert!(p["edges"].as_array().unwrap().iter().all(|e| e["node"]["servedFrom"] == "HISTORY"));
        forward.extend(arns(&p));
        after = p["pageInfo"]["endCursor"].clone();
        if p["pageInfo"]["hasNextPage"] == false {
            break;
        }
        assert_eq!(arns(&p).len(), 7);
    }
    assert_eq!(forward, expected);

    let mut backward = Vec::new();
    let mut before = Value::Null;
    loop {
        let p = page(&gateway, json!({ "filter": filter, "last": 7, "before": before })).await;
        let mut this = arns(&p);
        this.extend(backward);
        backward = this;
        before = p["pageInfo"]["startCursor"].clone();
        if p["pageInfo"]["hasPreviousPage"] == false {
            break;
        }
    }
    assert_eq!(backward, expected);
}

#[tokio::test]
async fn oldest_first_with_region_and_error_code_filters() {
    let rows = dataset(300, 0);
    let (gateway, _) = gateway_with(&rows).await;
    let mut expected: Vec<String> = newest_first(
        &rows
            .iter()
            .filter(|r| r.region() == "us-east-1" && r.error_code == Some("OpCancelled"))
            .cloned()
            .collect::<Vec<_>>(),
    );
    expected.reverse();
    let filter = json!({ "region": "us-east-1", "errorCode": "OpCancelled", "accountId": "111122223333" });
    let p = page(&gateway, json!({ "filter": filter, "order": "STARTED_AT_ASC", "first": 500 })).await;
    assert_eq!(arns(&p), expected);
    assert_eq!(p["pageInfo"]["hasNextPage"], false);

    let none = page(&gateway, json!({ "filter": { "errorCode": "x' OR '1'='1" } })).await;
    assert_eq!(none["totalCount"], 0, "a string that looks like SQL is just a string");
}

#[tokio::test]
async fn a_cursor_keeps_its_place_when_rows_are_added() {
    let rows = dataset(200, 0);
    let (gateway, database_url) = gateway_with(&rows).await;
    let first = page(&gateway, json!({ "first": 10 })).await;
    assert_eq!(arns(&first), newest_first(&rows)[..10]);

    // Newer than everything, and some among the rows still to come.
    let mut added = dataset(3, 1_000);
    for (row, minutes) in added.iter_mut().zip([100_000, 30, 35]) {
        row.started_at = Utc.with_ymd_and_hms(2026, 11, 1, 22, 0, 0).unwrap() + Duration::minutes(minutes);
    }
    record(&database_url, &added).await;

    let next = page(&gateway, json!({ "first": 10, "after": first["pageInfo"]["endCursor"] })).await;
    let all: Vec<Row> = rows.iter().chain(&added).cloned().collect();
    let order = newest_first(&all);
    let position = order.iter().position(|arn| *arn == arns(&first)[9]).unwrap();
    assert_eq!(arns(&next), order[position + 1..position + 11]);
    assert_eq!(next["totalCount"], 203);
}

/// PostgreSQL's `percentile_cont`: linear interpolation between the closest ranks.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let position = p * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    sorted[low] + (position - low as f64) * (sorted[high] - sorted[low])
}

#[tokio::test]
async fn stats_per_task_and_day_match_figures_computed_independently() {
    let rows = dataset(300, 0);
    let (gateway, _) = gateway_with(&rows).await;
    let mut expected: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
    for row in &rows {
        let day = row.started_at.format("%Y-%m-%d").to_string();
        expected.entry((row.task.to_owned(), day)).or_default().push(row);
    }
    // From the rollups, percentiles within their histograms' 1%; from every execution, exact.
    for (exact, percentile_error) in [(false, 0.01), (true, 1e-9)] {
        let response = gateway
            .query(
                "query($exact: Boolean) { executionStats(groupBy: [TASK, DAY], exact: $exact) {
                   taskArn day status count succeeded failed successRate bytesTransferred bytesWritten
                   filesTransferred avgDurationMs p50DurationMs p95DurationMs } }",
                json!({ "exact": exact }),
            )
            .await;
        let groups = response["data"]["executionStats"].as_array().unwrap_or_else(|| panic!("{response}"));
        assert_eq!(groups.len(), expected.len());
        for (group, ((task, day), members)) in groups.iter().zip(&expected) {
            assert_eq!(group["taskArn"], task.as_str());
            assert_eq!(group["day"], day.as_str());
            assert_eq!(group["status"], Value::Null, "not grouped by status");
            let count = members.len();
            let succeeded = members.iter().filter(|r| r.status == "SUCCESS").count();
            assert_eq!(group["count"], count);
            assert_eq!(group["succeeded"], succeeded);
            assert_eq!(group["failed"], count - succeeded);
            assert!((group["successRate"].as_f64().unwrap() - succeeded as f64 / count as f64).abs() < 1e-9);
            assert_eq!(group["bytesWritten"], members.iter().map(|r| r.bytes).sum::<i64>());
            assert_eq!(group["filesTransferred"], 10 * count);
            let mut durations: Vec<f64> = members.iter().map(|r| r.duration_ms as f64).collect();
            durations.sort_by(f64::total_cmp);
            let avg = durations.iter().sum::<f64>() / count as f64;
            for (field, value, error) in [
                ("avgDurationMs", avg, 1e-9),
                ("p50DurationMs", percentile(&durations, 0.5), percentile_error),
                ("p95DurationMs", percentile(&durations, 0.95), percentile_error),
            ] {
                let read = group[field].as_f64().unwrap();
                assert!(
                    (read - value).abs() <= error * value,
                    "{field}: {group} vs {value} (exact: {exact})"
                );
            }
        }
    }
}

#[tokio::test]
async fn failures_grouped_by_error_code() {
    let rows = dataset(300, 0);
    let (gateway, _) = gateway_with(&rows).await;
    let response = gateway
        .query(
            "{ executionStats(filter: { statuses: [ERROR] }, groupBy: [ERROR_CODE]) { errorCode count failed } }",
            json!({}),
        )
        .await;
    let count = |code| rows.iter().filter(|r| r.error_code == Some(code)).count();
    assert_eq!(
        response["data"]["executionStats"],
        json!([
            { "errorCode": "ErrorCodeS3AccessDenied", "count": count("ErrorCodeS3AccessDenied"),
              "failed": count("ErrorCodeS3AccessDenied") },
            { "errorCode": "OpCancelled", "count": count("OpCancelled"), "failed": count("OpCancelled") },
        ])
    );
}

#[tokio::test]
async fn bad_paging_and_filters_are_bad_user_input_and_say_what_to_fix() {
    let rows = dataset(20, 0);
    let (gateway, _) = gateway_with(&rows).await;
    let first = page(&gateway, json!({ "first": 5 })).await;
    let cursor = first["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    let mut tampered = cursor.clone().into_bytes();
    tampered[12] = if tampered[12] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let cases = [
        (json!({ "first": 501 }), "between 1 and 500"),
        (json!({ "first": 0 }), "between 1 and 500"),
        (json!({ "last": -1 }), "between 1 and 500"),
        (json!({ "first": 5, "last": 5 }), "not both"),
        (json!({ "first": 5, "before": cursor }), "`before` goes with `last`"),
        (json!({ "first": 5, "after": "garbage" }), "cursor"),
        (json!({ "first": 5, "after": tampered }), "cursor"),
        (json!({ "first": 5, "after": cursor, "order": "STARTED_AT_ASC" }), "different filter or order"),
        (json!({ "filter": { "region": "us-east-1" }, "after": cursor }), "different filter or order"),
        (
            json!({ "filter": { "startedAfter": "2026-11-10T00:00:00Z", "startedBefore": "2026-11-01T00:00:00Z" } }),
            "startedAfter must be earlier",
        ),
        (json!({ "filter": { "taskArns": ["task-1"] } }), "not a DataSync task ARN"),
        (json!({ "filter": { "statuses": ["UNKNOWN"] } }), "UNKNOWN"),
        (json!({ "filter": { "region": "US EAST; DROP TABLE" } }), "filter.region"),
        (json!({ "filter": { "accountId": "12" } }), "12 digits"),
        (json!({ "filter": { "accountIds": ["111122223333", "x"] } }), "12 digits"),
        (json!({ "filter": { "accountId": "111122223333", "accountIds": ["111122223333"] } }), "not both"),
    ];
    for (variables, fix) in cases {
        let response = gateway.query(PAGE, variables.clone()).await;
        assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{variables}: {response}");
        let message = response["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(fix), "{variables}: {message}");
        assert!(!message.to_lowercase().contains("select"), "{message}");
    }
}

#[tokio::test]
async fn a_later_report_result_updates_the_row_and_a_repeat_changes_nothing() {
    let (_gateway, database_url) = gateway_with(&[]).await;
    let row = &dataset(1, 7)[0];
    let with_report = |status: &str| {
        let mut execution = serde_json::to_value(row.execution()).unwrap();
        execution["reportResult"] = json!({ "status": status });
        Arc::new(serde_json::from_value::<TaskExecution>(execution).unwrap())
    };
    let store = Database::connect_lazy(&database_url, 1).unwrap().index();
    let read = || async {
        let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
        let row: (Option<String>, Value, DateTime<Utc>) = sqlx::query_as(
            "SELECT report_status, snapshot -> 'reportResult', updated_at FROM execution_snapshots \
             JOIN execution_snapshot_documents USING (execution_arn)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        row
    };

    store.upsert(&[with_report("PENDING")]).await.unwrap();
    assert_eq!(read().await.0.as_deref(), Some("PENDING"));
    store.upsert(&[with_report("SUCCESS")]).await.unwrap();
    let (status, document, updated_at) = read().await;
    assert_eq!(status.as_deref(), Some("SUCCESS"));
    assert_eq!(document, json!({ "status": "SUCCESS", "errorCode": null, "errorDetail": null }));

    let mut later = (*with_report("SUCCESS")).clone();
    later.fetched_at += Duration::hours(1);
    store.upsert(&[Arc::new(later)]).await.unwrap();
    assert_eq!(read().await.2, updated_at, "the same answer fetched again is not a change");
}

/// The sync's read of an execution can land after the watcher's later one (and a replica's
/// clock can run ahead of another's): the index never goes back to an older answer, nor from
/// finished to running; and a finished answer is written over a running row whatever its age,
/// as the live feed announces it.
#[tokio::test]
async fn an_older_answer_or_a_running_one_never_replaces_a_finished_row() {
    let (_gateway, database_url) = gateway_with(&[]).await;
    let row = &dataset(1, 9)[0];
    let described = |status: &str, hours: i64| {
        let mut execution = row.execution();
        execution.status = serde_json::from_value(json!(status)).unwrap();
        execution.fetched_at = row.started_at + Duration::hours(hours);
        Arc::new(execution)
    };
    let store = Database::connect_lazy(&database_url, 1).unwrap().index();
    let pool = PgPool::connect(&database_url).await.unwrap();
    let recorded = || async {
        let row: (String, String) = sqlx::query_as(
            "SELECT status, snapshot ->> 'status' FROM execution_snapshots \
             JOIN execution_snapshot_documents USING (execution_arn)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        row
    };
    let success = || ("SUCCESS".to_owned(), "SUCCESS".to_owned());

    let updated_at = || async {
        let (updated_at,): (DateTime<Utc>,) =
            sqlx::query_as("SELECT updated_at FROM execution_snapshots").fetch_one(&pool).await.unwrap();
        updated_at
    };

    store.upsert(&[described("TRANSFERRING", 1)]).await.unwrap();
    store.upsert(&[described("VERIFYING", 4)]).await.unwrap();
    store.upsert(&[described("SUCCESS", 3)]).await.unwrap();
    assert_eq!(recorded().await, success(), "a finished answer stamped earlier was not written");
    assert_eq!(updated_at().await, row.started_at + Duration::hours(4), "updated_at went back");
    store.upsert(&[described("TRANSFERRING", 2)]).await.unwrap();
    assert_eq!(recorded().await, success(), "an older answer was written over a newer one");
    store.upsert(&[described("VERIFYING", 5)]).await.unwrap();
    assert_eq!(recorded().await, success(), "a finished execution went back to running");
    // In one batch, the newest of an ARN's descriptions is the one written, a finished one first.
    store.upsert(&[described("ERROR", 7), described("SUCCESS", 6)]).await.unwrap();
    assert_eq!(recorded().await, ("ERROR".to_owned(), "ERROR".to_owned()));
    store.upsert(&[described("TRANSFERRING", 9), described("SUCCESS", 8)]).await.unwrap();
    assert_eq!(recorded().await, success());
}

#[tokio::test]
async fn retention_deletes_executions_that_started_before_the_cutoff() {
    let rows = dataset(100, 0);
    let (gateway, database_url) = gateway_with(&rows).await;
    let cutoff = Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap();
    let store = Database::connect_lazy(&database_url, 1).unwrap().index();

    let deleted = store.prune(cutoff).await.unwrap();

    let kept: Vec<Row> = rows.iter().filter(|r| r.started_at >= cutoff).cloned().collect();
    assert_eq!(deleted as usize, rows.len() - kept.len());
    let p = page(&gateway, json!({ "first": 500 })).await;
    assert_eq!(arns(&p), newest_first(&kept), "documents go with their rows");
    let pool = PgPool::connect(&database_url).await.unwrap();
    let documents: i64 = sqlx::query_scalar("SELECT count(*) FROM execution_snapshot_documents")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(documents as usize, kept.len());
}

#[tokio::test]
async fn a_snapshot_postgres_refuses_is_dropped_without_blocking_the_rest() {
    let config = history_config().await;
    let database_url = config.history.database_url.clone().unwrap();
    let store = datasync_gateway::app::open_store(&database_url, 2).await.unwrap();
    let (writer, _task) = IndexWriter::start(store.index(), 100, std::time::Duration::from_secs(30));
    let rows = dataset(3, 40);
    let mut refused = rows[0].execution();
    // PostgreSQL's jsonb cannot hold a NUL character.
    refused.result.as_mut().unwrap().error_detail = Some("bad \u{0} byte".into());

    writer.record(Arc::new(refused));
    writer.record(Arc::new(rows[1].execution()));
    writer.record(Arc::new(rows[2].execution()));
    assert_eq!(writer.flush(std::time::Duration::from_secs(30)).await, 0);

    let status = writer.status();
    assert_eq!((status.written, status.dropped), (2, 1), "{status:?}");
    let pool = PgPool::connect(&database_url).await.unwrap();
    let mut recorded: Vec<String> =
        sqlx::query_scalar("SELECT execution_arn FROM execution_snapshots").fetch_all(&pool).await.unwrap();
    recorded.sort();
    let mut expected = vec![rows[1].arn.clone(), rows[2].arn.clone()];
    expected.sort();
    assert_eq!(recorded, expected);
}

/// `executionStats` reads the rollups (percentiles from their histograms); with `exact: true`,
/// every execution. Per grouping, both must say the same (percentiles within 1%).
async fn stats_both_ways(gateway: &TestGateway, filter: &Value) {
    use StatsDimension::*;
    let groupings: [&[StatsDimension]; 12] = [
        &[],
        &[Task],
        &[Status],
        &[Day],
        &[Region],
        &[ErrorCode],
        &[Task, Day],
        &[Task, Status],
        &[Task, Region],
        &[Task, ErrorCode],
        &[Day, Status],
        &[Day, ErrorCode],
    ];
    const QUERY: &str = "query($filter: ExecutionFilter, $groupBy: [StatsDimension!], $exact: Boolean) {
        executionStats(filter: $filter, groupBy: $groupBy, exact: $exact) {
            taskArn status day region errorCode count succeeded failed bytesTransferred bytesWritten
            filesTransferred avgDurationMs p50DurationMs p95DurationMs } }";
    for grouping in groupings {
        let group_by: Vec<&str> = grouping.iter().map(StatsDimension::name).collect();
        let answer = |exact: bool| {
            gateway.query(QUERY, json!({ "filter": filter, "groupBy": group_by, "exact": exact }))
        };
        let (mut rolled_up, mut exact) = (answer(false).await, answer(true).await);
        let shown = format!("{grouping:?} {filter}: {rolled_up} vs {exact}");
        let rolled_up =
            rolled_up["data"]["executionStats"].as_array_mut().unwrap_or_else(|| panic!("{shown}"));
        let exact = exact["data"]["executionStats"].as_array_mut().unwrap_or_else(|| panic!("{shown}"));
        assert!(!exact.is_empty(), "{shown}");
        assert_eq!(rolled_up.len(), exact.len(), "{shown}");
        for (from_rollups, from_rows) in rolled_up.iter_mut().zip(exact.iter_mut()) {
            // Averages to rounding, percentiles within the histograms' 1%, the rest equal.
            for (field, tolerance) in
                [("avgDurationMs", 1e-9), ("p50DurationMs", 0.01 + 1e-9), ("p95DurationMs", 0.01 + 1e-9)]
            {
                let a = from_rollups.as_object_mut().unwrap().remove(field).unwrap();
                let b = from_rows.as_object_mut().unwrap().remove(field).unwrap();
                let close = match (a.as_f64(), b.as_f64()) {
                    (Some(a), Some(b)) => (a - b).abs() <= tolerance * b.abs(),
                    _ => a == b,
                };
                assert!(close, "{field}: {a} vs {b} in {shown}");
            }
        }
        assert_eq!(rolled_up, exact, "{shown}");
    }
}

/// A database written by a release without duration histograms: the migration that adds them
/// fills them from the snapshots already there, so percentiles are right from the first query.
#[tokio::test]
async fn histograms_are_built_for_executions_recorded_before_they_existed() {
    let config = history_config().await;
    let database_url = config.history.database_url.clone().unwrap();
    let mut earlier = sqlx::migrate::Migrator::new(std::path::Path::new("migrations")).await.unwrap();
    let before: Vec<_> =
        earlier.migrations.iter().filter(|migration| migration.version < 20261201000001).cloned().collect();
    assert!(before.len() < earlier.migrations.len(), "the histogram migration is among them");
    earlier.migrations = before.into();
    let pool = PgPool::connect(&database_url).await.unwrap();
    earlier.run(&pool).await.unwrap();
    // Written as the gateway of that time wrote them: its columns only (today's store writes
    // columns that schema does not have yet).
    for row in dataset(200, 0) {
        sqlx::query(
            "INSERT INTO execution_snapshots (execution_arn, task_arn, region, account_id, status, task_mode, \
             start_time, started_at, first_seen_terminal, updated_at, total_duration_ms, bytes_transferred, \
             bytes_written, bytes_compressed, files_transferred, files_verified, files_deleted, files_skipped, \
             error_code) VALUES ($1, $2, $3, '111122223333', $4, 'BASIC', $5, $5, $5, $5, $6, $7, $7, 0, 10, 10, \
             0, 0, $8)",
        )
        .bind(&row.arn)
        .bind(row.task)
        .bind(row.region())
        .bind(row.status)
        .bind(row.started_at)
        .bind(row.duration_ms)
        .bind(row.bytes)
        .bind(row.error_code)
        .execute(&pool)
        .await
        .unwrap();
    }

    let gateway = TestGateway::start_with(config).await;
    stats_both_ways(&gateway, &json!({})).await;
    let empty: i64 =
        sqlx::query_scalar("SELECT count(*) FROM execution_rollups WHERE duration_histogram = ''")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(empty, 0);
}

#[derive(Clone, Copy, Debug)]
enum StatsDimension {
    Task,
    Status,
    Day,
    Region,
    ErrorCode,
}

impl StatsDimension {
    fn name(&self) -> &'static str {
        match self {
            StatsDimension::Task => "TASK",
            StatsDimension::Status => "STATUS",
            StatsDimension::Day => "DAY",
            StatsDimension::Region => "REGION",
            StatsDimension::ErrorCode => "ERROR_CODE",
        }
    }
}

#[tokio::test]
async fn statistics_from_rollups_match_every_execution_through_repeats_rewrites_and_retention() {
    let rows = dataset(300, 0);
    let (gateway, database_url) = gateway_with(&rows).await;
    let whole_days =
        json!({ "startedAfter": "2026-11-03T00:00:00Z", "startedBefore": "2026-11-10T00:00:00Z" });
    let one_task = json!({ "taskArns": [TASKS[1]], "statuses": ["ERROR"] });
    for filter in [json!({}), whole_days.clone(), one_task.clone()] {
        stats_both_ways(&gateway, &filter).await;
    }

    // The same executions written again, some with a report result arriving later (a rewrite
    // of a finished row), one running execution, then the same one finished.
    record(&database_url, &rows[..50]).await;
    let store = Database::connect_lazy(&database_url, 1).unwrap().index();
    let reported: Vec<Arc<TaskExecution>> = rows[50..80]
        .iter()
        .map(|row| {
            let mut execution = serde_json::to_value(row.execution()).unwrap();
            execution["reportResult"] = json!({ "status": "SUCCESS" });
            execution["bytesWritten"] = json!(row.bytes + 1);
            Arc::new(serde_json::from_value(execution).unwrap())
        })
        .collect();
    store.upsert(&reported).await.unwrap();
    let mut late = dataset(1, 5000)[0].clone();
    late.status = "TRANSFERRING";
    record(&database_url, &[late.clone()]).await;
    late.status = "SUCCESS";
    record(&database_url, &[late]).await;
    for filter in [json!({}), whole_days.clone(), one_task.clone()] {
        stats_both_ways(&gateway, &filter).await;
    }

    let pruned = store.prune(Utc.with_ymd_and_hms(2026, 11, 3, 9, 0, 0).unwrap()).await.unwrap();
    assert!(pruned > 0);
    for filter in [json!({}), whole_days, one_task] {
        stats_both_ways(&gateway, &filter).await;
    }
    let pool = PgPool::connect(&database_url).await.unwrap();
    let (finished, rolled_up): (i64, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM execution_snapshots WHERE status IN ('SUCCESS', 'ERROR')),
                (SELECT sum(executions)::bigint FROM execution_rollups)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(Some(finished), rolled_up, "each finished execution counted once");

    // And counts without percentiles are read from there (an aside to prove it, not a use).
    sqlx::query("UPDATE execution_rollups SET executions = executions + 1000").execute(&pool).await.unwrap();
    let counted = gateway.query("{ executionStats { count } }", json!({})).await;
    let rollup_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM execution_rollups").fetch_one(&pool).await.unwrap();
    assert_eq!(counted["data"]["executionStats"][0]["count"], finished + 1000 * rollup_rows, "{counted}");
    // As are percentiles: every duration moved to the 1 ms bucket.
    sqlx::query("UPDATE execution_rollups SET duration_histogram = '\\x000100000001'")
        .execute(&pool)
        .await
        .unwrap();
    let median = gateway.query("{ executionStats { p50DurationMs } }", json!({})).await;
    let median = median["data"]["executionStats"][0]["p50DurationMs"].as_f64();
    assert!(median.is_some_and(|median| (0.98..1.0).contains(&median)), "{median:?}");
}

#[tokio::test]
async fn an_unreadable_snapshot_is_an_error_naming_its_execution_not_a_panic() {
    use datasync_gateway::model::ExecutionArn;
    use datasync_gateway::model::ExecutionOrder;
    use datasync_gateway::store::index::filter::SnapshotFilter;
    use datasync_gateway::store::index::pages::Direction;
    use datasync_gateway::store::StoreError;

    let rows = dataset(2, 0);
    let (_gateway, database_url) = gateway_with(&rows).await;
    let (broken, readable) = (&rows[0].arn, &rows[1].arn);
    let pool = PgPool::connect(&database_url).await.unwrap();
    sqlx::query(
        "UPDATE execution_snapshot_documents SET snapshot = '\"not an execution\"' WHERE execution_arn = $1",
    )
    .bind(broken)
    .execute(&pool)
    .await
    .unwrap();
    let store = Database::connect_lazy(&database_url, 1).unwrap().index();
    let names_broken = |result: Result<_, StoreError>| match result {
        Err(StoreError::Snapshot { arn, .. }) => assert_eq!(&arn, broken),
        Err(other) => panic!("not a snapshot error: {other}"),
        Ok(_) => panic!("an unreadable snapshot was read"),
    };

    names_broken(store.get(&ExecutionArn::parse(broken).unwrap()).await.map(|_| ()));
    names_broken(store.get_many(&[ExecutionArn::parse(broken).unwrap()]).await.map(|_| ()));
    let page = store
        .page(&SnapshotFilter::default(), ExecutionOrder::StartedAtDesc, Direction::Forward, None, 10)
        .await;
    names_broken(page.map(|_| ()));
    let found = store.get(&ExecutionArn::parse(readable).unwrap()).await.unwrap();
    assert_eq!(found.map(|execution| execution.task_execution_arn.to_string()).as_ref(), Some(readable));
}

/// A retention reaching before the earliest representable time: the gateway serves with it
/// (deleting nothing), and `prune` says what is wrong instead of panicking.
#[tokio::test]
async fn a_retention_past_the_earliest_time_is_answered_not_a_panic() {
    let mut config = history_config().await;
    let database_url = config.history.database_url.clone().unwrap();
    config.history.history_retention = Some(std::time::Duration::from_secs(31_557_600) * 400_000);
    config.history.history_prune_interval = std::time::Duration::from_secs(1);
    let gateway = TestGateway::start_with(config).await;
    let rows = dataset(1, 0);
    let store = Database::connect_lazy(&database_url, 1).unwrap().index();
    store.upsert(&[Arc::new(rows[0].execution())]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await; // past the retention task's second tick
    let page = gateway.query("{ executions { edges { node { taskExecutionArn } } } }", json!({})).await;
    assert_eq!(page["data"]["executions"]["edges"].as_array().map(Vec::len), Some(1), "{page}");

    let pruned = tokio::process::Command::new(env!("CARGO_BIN_EXE_datasync-gateway"))
        .args(["prune", "--database-url", &database_url, "--history-retention", "400000y"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&pruned.stderr);
    assert_eq!(pruned.status.code(), Some(1), "an error exit, not a panic (101): {stderr}");
    assert!(stderr.contains("--history-retention reaches before year 1"), "{stderr}");
}

/// Pages in the order of the end (what dashboards sort finished runs by), by keyset across
/// pages, and filtered by the end.
#[tokio::test]
async fn history_pages_by_the_end_time_and_filters_by_it() {
    let rows = dataset(40, 0);
    let (gateway, _) = gateway_with(&rows).await;
    let end = |row: &Row| row.started_at + Duration::milliseconds(row.duration_ms);
    let mut expected: Vec<&Row> = rows.iter().collect();
    expected.sort_by(|a, b| (end(b), &b.arn).cmp(&(end(a), &a.arn)));
    let expected: Vec<String> = expected.iter().map(|row| row.arn.clone()).collect();

    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let response =
            gateway.query(PAGE, json!({ "order": "ENDED_AT_DESC", "first": 15, "after": after })).await;
        let page = &response["data"]["executionHistory"];
        seen.extend(arns(page));
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, expected, "newest end first, ties by ARN, across pages");

    let oldest = gateway.query(PAGE, json!({ "order": "ENDED_AT_ASC", "first": 500 })).await;
    let mut ascending = expected.clone();
    ascending.reverse();
    assert_eq!(arns(&oldest["data"]["executionHistory"]), ascending);

    let cut = end(&rows[17]);
    let filter =
        json!({ "endedAfter": cut.to_rfc3339(), "endedBefore": (cut + Duration::hours(2)).to_rfc3339() });
    let response = gateway.query(PAGE, json!({ "filter": filter, "first": 500 })).await;
    let mut filtered = arns(&response["data"]["executionHistory"]);
    filtered.sort();
    let mut wanted: Vec<String> = rows
        .iter()
        .filter(|row| end(row) >= cut && end(row) < cut + Duration::hours(2))
        .map(|row| row.arn.clone())
        .collect();
    wanted.sort();
    assert!(!wanted.is_empty() && wanted.len() < rows.len());
    assert_eq!(filtered, wanted, "{response}");
    let backwards = json!({ "endedAfter": cut.to_rfc3339(), "endedBefore": cut.to_rfc3339() });
    let refused = gateway.query(PAGE, json!({ "filter": backwards })).await;
    assert_eq!(error_codes(&refused), ["BAD_USER_INPUT"], "{refused}");
}
