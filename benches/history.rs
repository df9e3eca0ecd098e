//! History benchmark: loads 1,000,000 snapshots into PostgreSQL, then measures latency through
//! the GraphQL endpoint of a real gateway. Run it with `scripts/bench` (which starts a throwaway
//! PostgreSQL); figures go in BENCHMARKS.md.
//!
//! Environment: BENCH_DATABASE_URL (a server where the bench may create `bench_history`),
//! BENCH_ROWS (default 1000000; 10000000 for the opt-in large run), BENCH_SAMPLES (default 200),
//! BENCH_DEPTH (how many pages deep the deep-page rows go, default 1000), BENCH_REUSE=1 to keep a
//! database loaded by an earlier run with the same BENCH_ROWS.

#[allow(dead_code)] // Each benchmark uses part of it.
mod common;

use std::time::Instant;

use datasync_gateway::app::Application;
use datasync_gateway::config::Config;
use datasync_gateway::datasync::DataSyncClient;
use datasync_gateway::model::ExecutionArn;
use datasync_gateway::simulator::fleet::seeded;
use serde_json::{json, Value};

use common::{env_or, post, print_latencies, time};
use sqlx::{Connection, Executor, PgConnection};

const TASKS: i64 = 50;
const DAYS: i64 = 90;
/// Running executions added to the load (see `load`).
const RUNNING: i64 = 1_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("BENCH_DATABASE_URL").expect("BENCH_DATABASE_URL (run scripts/bench)");
    let rows: i64 = env_or("BENCH_ROWS", 1_000_000);
    let samples: usize = env_or("BENCH_SAMPLES", 200);
    let (server, _) = admin_url.rsplit_once('/').expect("a URL ending in /DATABASE");
    let database_url = format!("{server}/bench_history");

    let reuse = std::env::var("BENCH_REUSE").is_ok_and(|value| value == "1");
    let mut admin = PgConnection::connect(&admin_url).await?;
    if !reuse {
        admin.execute("DROP DATABASE IF EXISTS bench_history").await?;
    }
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_database WHERE datname = 'bench_history')")
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        admin.execute("CREATE DATABASE bench_history").await?;
    }

    let mut config = Config::defaults();
    // One load generator is one caller: the per-caller rate limit would be what is measured.
    config.limits.rate_limit = 0;
    config.listen = "127.0.0.1:0".parse()?;
    config.datasync.simulator = true;
    config.history.database_url = Some(database_url.clone());
    config.history.discovery = false;
    let app = Application::build(config.clone()).await?;
    let template = template(&app, &config).await?;
    let url = format!("http://{}/graphql", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));

    let loading = Instant::now();
    let mut db = PgConnection::connect(&database_url).await?;
    let loaded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM execution_snapshots").fetch_one(&mut db).await?;
    if loaded != rows + RUNNING {
        db.execute("TRUNCATE execution_snapshots CASCADE").await?;
        load(&mut db, rows, &template).await?;
    }
    let sizes: (i64, i64, i64) = sqlx::query_as(
        "SELECT pg_relation_size('execution_snapshots'), pg_indexes_size('execution_snapshots'), \
                pg_total_relation_size('execution_snapshot_documents')",
    )
    .fetch_one(&mut db)
    .await?;
    println!(
        "loaded {rows} snapshots in {:.1} s; execution_snapshots {} MB + indexes {} MB, documents {} MB",
        loading.elapsed().as_secs_f64(),
        sizes.0 >> 20,
        sizes.1 >> 20,
        sizes.2 >> 20
    );

    let client = reqwest::Client::new();
    let mut results = Vec::new();

    let first_page =
        json!({ "query": PAGE, "variables": { "filter": { "statuses": ["ERROR"] }, "first": 50 } });
    results.push((
        "executionHistory: failed executions, first page of 50",
        time(&client, &url, &first_page, samples).await?,
    ));

    let task = format!("arn:aws:datasync:us-east-1:111122223333:task/task-{:017x}", 8);
    let task_week = json!({ "query": PAGE, "variables": { "filter": {
        "taskArns": [task], "statuses": ["ERROR"],
        "startedAfter": "2026-11-01T00:00:00Z", "startedBefore": "2026-11-08T00:00:00Z" }, "first": 50 } });
    results.push((
        "executionHistory: one task's failures in one week, first page",
        time(&client, &url, &task_week, samples).await?,
    ));

    let unfiltered_first = json!({ "query": PAGE, "variables": { "first": 50 } });
    results.push((
        "executionHistory: all executions, first page of 50",
        time(&client, &url, &unfiltered_first, samples).await?,
    ));

    // A cursor 1,000 pages deep (fewer on a small load), reached the way a client would.
    let depth = (rows / 50 - 1).min(env_or("BENCH_DEPTH", 1_000));
    let mut after = Value::Null;
    for _ in 0..depth {
        let page =
            post(&client, &url, &json!({ "query": PAGE, "variables": { "first": 50, "after": after } }))
                .await?;
        after = page["data"]["executionHistory"]["pageInfo"]["endCursor"].clone();
    }
    let deep = json!({ "query": PAGE, "variables": { "first": 50, "after": after } });
    let deep_label =
        format!("executionHistory: all executions, page {} by cursor ({} rows deep)", depth + 1, depth * 50);
    results.push((&deep_label, time(&client, &url, &deep, samples).await?));

    // The same two pages in the order of the end, which dashboards sort finished runs by.
    let by_end = |after: &Value| json!({ "query": PAGE, "variables": { "first": 50, "after": after, "order": "ENDED_AT_DESC" } });
    results.push((
        "executionHistory: all executions by end time, first page of 50",
        time(&client, &url, &by_end(&Value::Null), samples).await?,
    ));
    let mut after = Value::Null;
    for _ in 0..depth {
        let page = post(&client, &url, &by_end(&after)).await?;
        after = page["data"]["executionHistory"]["pageInfo"]["endCursor"].clone();
    }
    let deep_by_end_label =
        format!("executionHistory: all executions by end time, page {} by cursor", depth + 1);
    results.push((&deep_by_end_label, time(&client, &url, &by_end(&after), samples).await?));

    let offset_sql = format!(
        "SELECT execution_arn, started_at, snapshot FROM execution_snapshots \
         JOIN execution_snapshot_documents USING (execution_arn) \
         ORDER BY started_at DESC, execution_arn DESC OFFSET {} LIMIT 50",
        depth * 50
    );
    let mut offset_times = Vec::new();
    for i in 0..samples + 10 {
        let started = Instant::now();
        let fetched = sqlx::query(&offset_sql).fetch_all(&mut db).await?;
        assert_eq!(fetched.len(), 50);
        if i >= 10 {
            offset_times.push(started.elapsed());
        }
    }
    let offset_label = format!("the same page by OFFSET {}, plain SQL (no GraphQL, no HTTP)", depth * 50);
    results.push((&offset_label, offset_times));

    // The index: the same rows through `executions`, plus 1,000 running ones of the
    // simulator's real tasks, so a dashboard page can show task names and locations.
    let failed_index =
        json!({ "query": EXECUTIONS, "variables": { "filter": { "statuses": ["ERROR"] }, "first": 50 } });
    results
        .push(("executions: failed, first page of 50", time(&client, &url, &failed_index, samples).await?));
    let task_index =
        json!({ "query": EXECUTIONS, "variables": { "filter": { "taskArns": [task] }, "first": 50 } });
    results
        .push(("executions: one task, first page of 50", time(&client, &url, &task_index, samples).await?));
    let running = json!({ "query": EXECUTIONS, "variables": { "filter": { "running": true }, "first": 50 } });
    results.push(("executions: running, first page of 50", time(&client, &url, &running, samples).await?));
    let mut after = Value::Null;
    for _ in 0..depth {
        let page = post(
            &client,
            &url,
            &json!({ "query": EXECUTIONS, "variables": { "first": 50, "after": after } }),
        )
        .await?;
        after = page["data"]["executions"]["pageInfo"]["endCursor"].clone();
    }
    let deep_index = json!({ "query": EXECUTIONS, "variables": { "first": 50, "after": after } });
    let deep_label = format!("executions: page {} by cursor", depth + 1);
    results.push((&deep_label, time(&client, &url, &deep_index, samples).await?));
    let dashboard = json!({ "query": DASHBOARD });
    results.push((
        "dashboard: running executions with task name and locations, page of 50, warm",
        time(&client, &url, &dashboard, samples).await?,
    ));

    // Statistics come from the rollups (percentiles from their histograms, within 1%) or, with
    // `exact: true`, from every execution: the latter for the same TASK×DAY query, to compare.
    let stats_query = |group_by: &[&str], figures: &str, exact: bool| {
        let group_by = serde_json::to_string(group_by).unwrap().replace('"', "");
        json!({ "query": format!("{{ executionStats(groupBy: {group_by}, exact: {exact}) {{ {figures} }} }}") })
    };
    let exact_task_day =
        stats_query(&["TASK", "DAY"], "taskArn day count failed p50DurationMs p95DurationMs", true);
    let groups = post(&client, &url, &exact_task_day).await?;
    let group_count = groups["data"]["executionStats"].as_array().map_or(0, Vec::len);
    assert_eq!(group_count as i64, TASKS * DAYS, "{groups:.300}");
    results.push((
        "executionStats groupBy [TASK, DAY], exact: every row read (4,500 groups)",
        time(&client, &url, &exact_task_day, samples.min(30)).await?,
    ));

    // Every grouping the issue names (each dimension alone, each pair with TASK or DAY) and
    // none, from the rollups: counts and sums alone, then with both percentiles.
    let rollup_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM execution_rollups").fetch_one(&mut db).await?;
    let buckets: i64 =
        sqlx::query_scalar("SELECT sum(length(duration_histogram) / 6)::bigint FROM execution_rollups")
            .fetch_one(&mut db)
            .await?;
    println!("{rollup_rows} rollup rows holding {buckets} histogram buckets");
    let groupings: [&[&str]; 13] = [
        &[],
        &["TASK"],
        &["STATUS"],
        &["DAY"],
        &["REGION"],
        &["ERROR_CODE"],
        &["TASK", "DAY"],
        &["TASK", "STATUS"],
        &["TASK", "REGION"],
        &["TASK", "ERROR_CODE"],
        &["DAY", "STATUS"],
        &["DAY", "REGION"],
        &["DAY", "ERROR_CODE"],
    ];
    const SUMS: &str = "taskArn status day region errorCode count failed bytesWritten avgDurationMs";
    let with_percentiles = format!("{SUMS} p50DurationMs p95DurationMs");
    let labels: Vec<(String, String)> = groupings
        .iter()
        .map(|grouping| {
            (
                format!("executionStats groupBy {grouping:?}, counts and sums"),
                format!("executionStats groupBy {grouping:?}, with p50 and p95"),
            )
        })
        .collect();
    let mut accuracy = Vec::new();
    for (grouping, (sums_label, percentiles_label)) in groupings.iter().zip(&labels) {
        let sums = stats_query(grouping, SUMS, false);
        post(&client, &url, &sums).await?;
        results.push((sums_label, time(&client, &url, &sums, samples.min(50)).await?));
        let percentiles = stats_query(grouping, &with_percentiles, false);
        post(&client, &url, &percentiles).await?;
        results.push((percentiles_label, time(&client, &url, &percentiles, samples.min(50)).await?));
        let from_rollups = post(&client, &url, &percentiles).await?;
        let exact = post(&client, &url, &stats_query(grouping, &with_percentiles, true)).await?;
        accuracy.push((
            grouping,
            from_rollups["data"]["executionStats"].clone(),
            exact["data"]["executionStats"].clone(),
        ));
    }

    println!();
    print_latencies("query", results);
    println!();
    print_accuracy(&accuracy);
    Ok(())
}

/// Percentiles from the rollups beside `percentile_cont` over the same rows (`exact: true`):
/// the largest relative difference over each grouping's groups, and the overall figures.
fn print_accuracy(accuracy: &[(&&[&str], Value, Value)]) {
    println!("| groupBy | groups | largest p50 error | largest p95 error |");
    println!("| --- | ---: | ---: | ---: |");
    let mut overall = None;
    for (grouping, from_rollups, exact) in accuracy {
        let (from_rollups, exact) = (from_rollups.as_array().unwrap(), exact.as_array().unwrap());
        assert_eq!(from_rollups.len(), exact.len(), "{grouping:?}");
        let largest = |field: &str| {
            from_rollups
                .iter()
                .zip(exact)
                .filter_map(|(a, b)| {
                    Some((a[field].as_f64()? - b[field].as_f64()?).abs() / b[field].as_f64()?)
                })
                .fold(0.0, f64::max)
        };
        println!(
            "| {grouping:?} | {} | {:.3}% | {:.3}% |",
            exact.len(),
            100.0 * largest("p50DurationMs"),
            100.0 * largest("p95DurationMs")
        );
        if grouping.is_empty() {
            overall = Some((from_rollups[0].clone(), exact[0].clone()));
        }
    }
    if let Some((from_rollups, exact)) = overall {
        println!();
        println!("| all executions | from rollups | exact `percentile_cont` |");
        println!("| --- | ---: | ---: |");
        for field in ["p50DurationMs", "p95DurationMs"] {
            println!(
                "| {field} | {:.1} | {:.1} |",
                from_rollups[field].as_f64().unwrap_or(f64::NAN),
                exact[field].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
}

const EXECUTIONS: &str = "query($filter: ExecutionFilter, $first: Int, $after: String) {
    executions(filter: $filter, first: $first, after: $after) {
        pageInfo { hasNextPage endCursor }
        edges { cursor node { taskExecutionArn status startTime bytesWritten result { totalDuration errorCode } } }
    }
}";

const DASHBOARD: &str = "{ executions(filter: { running: true }, first: 50) { edges { node {
    taskExecutionArn status startTime progress { bytesPercent }
    task { name sourceLocation { locationUri } destinationLocation { locationUri } }
} } } }";

const PAGE: &str = "query($filter: ExecutionFilter, $first: Int, $after: String, $order: HistoryOrder) {
    executionHistory(filter: $filter, first: $first, after: $after, orderBy: $order) {
        pageInfo { hasNextPage endCursor }
        edges { cursor node { taskExecutionArn status startTime bytesWritten result { totalDuration errorCode } } }
    }
}";

/// A real snapshot (the simulator's finished Basic execution, through the real mapping), which
/// the load varies per row.
async fn template(app: &Application, config: &Config) -> anyhow::Result<Value> {
    let simulator = app.simulator().expect("simulator mode");
    let regions = vec![ExecutionArn::parse(seeded::SUCCEEDED_BASIC)?.region().parse()?];
    let mut datasync_config = config.datasync.clone();
    datasync_config.datasync_endpoint = Some(simulator.endpoint_url());
    let client =
        DataSyncClient::connect(&datasync_config, &config.accounts, regions, Default::default()).await?;
    let execution = client
        .describe_task_execution(
            &ExecutionArn::parse(seeded::SUCCEEDED_BASIC)?,
            &datasync_gateway::request::Caller::internal("bench"),
        )
        .await?;
    Ok(serde_json::to_value(execution)?)
}

/// 50 tasks in two regions, one execution every 7.8 s over 90 days, 10% failed with one of
/// five error codes, durations spread over an hour.
async fn load(db: &mut PgConnection, rows: i64, template: &Value) -> anyhow::Result<()> {
    let insert = format!(
        "INSERT INTO execution_snapshots (execution_arn, task_arn, region, account_id, status, task_mode,
             start_time, started_at, first_seen_terminal, updated_at, total_duration_ms, prepare_duration_ms,
             transfer_duration_ms, verify_duration_ms, bytes_transferred, bytes_written, bytes_compressed,
             files_transferred, files_verified, files_deleted, files_skipped, error_code, report_status,
             launch_time, end_time)
         SELECT arn, task, region, '111122223333', status, 'BASIC', started, started,
             started + duration * interval '1 millisecond', started + duration * interval '1 millisecond',
             duration, duration / 10, duration * 8 / 10, duration / 10, bytes, bytes, bytes / 2,
             i % 5000, i % 5000, 0, 0, error_code, 'SUCCESS',
             started, started + duration * interval '1 millisecond'
         FROM (
             SELECT i, task || '/execution/exec-' || lpad(to_hex(i), 17, '0') AS arn, task, region,
                    CASE WHEN i % 10 = 0 THEN 'ERROR' ELSE 'SUCCESS' END AS status,
                    CASE WHEN i % 10 = 0 THEN (ARRAY['OpCancelled', 'ErrorCodeS3AccessDenied',
                         'ErrorCodeNetworkTimeout', 'ErrorCodeVerificationFailed', 'ErrorCodeLocationUnavailable'])[(i / 10) % 5 + 1]
                    END AS error_code,
                    timestamptz '2026-11-25 00:00:00+00' - interval '{DAYS} days'
                        + (i - 1) * (interval '{DAYS} days' / {rows}) AS started,
                    60000 + (i * 7919) % 3600000 AS duration,
                    (i * 104729) % 100000000000 AS bytes
             FROM (SELECT i, 'arn:aws:datasync:' || CASE WHEN i % {TASKS} % 2 = 0 THEN 'us-east-1' ELSE 'eu-west-1' END
                          || ':111122223333:task/task-' || lpad(to_hex(i % {TASKS}), 17, '0') AS task,
                          CASE WHEN i % {TASKS} % 2 = 0 THEN 'us-east-1' ELSE 'eu-west-1' END AS region
                   FROM generate_series(1::bigint, {rows}) AS i) numbered
         ) generated"
    );
    sqlx::query(&insert).execute(&mut *db).await?;
    // 1,000 running executions of the simulator's four tasks, started in the last hours.
    let running = "INSERT INTO execution_snapshots (execution_arn, task_arn, region, account_id, status, task_mode,
             start_time, started_at, updated_at, bytes_transferred, bytes_written, bytes_compressed,
             files_transferred, files_verified, files_deleted, files_skipped)
         SELECT task || '/execution/exec-' || lpad(to_hex(x'd000000000000000'::bigint + i), 17, '0'), task,
             split_part(task, ':', 4), '111122223333', 'TRANSFERRING', 'BASIC',
             now() - i * interval '10 seconds', now() - i * interval '10 seconds', now(), i, i, i, i, 0, 0, 0
         FROM (SELECT i, (ARRAY['arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001',
                                'arn:aws:datasync:eu-west-1:111122223333:task/task-0a1b2c3d4e5f60002',
                                'arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60003',
                                'arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60004'])[i % 4 + 1] AS task
               FROM generate_series(1::bigint, 1000) AS i) running";
    debug_assert_eq!(RUNNING, 1_000);
    sqlx::query(running).execute(&mut *db).await?;
    let documents = "INSERT INTO execution_snapshot_documents (execution_arn, snapshot_version, snapshot)
         SELECT execution_arn, 1,
             jsonb_set(jsonb_set(jsonb_set(jsonb_set(jsonb_set($1::jsonb,
                 '{taskExecutionArn}', to_jsonb(execution_arn)), '{status}', to_jsonb(status)),
                 '{startTime}', to_jsonb(start_time)), '{bytesWritten}', to_jsonb(bytes_written)),
                 '{result}', ($1::jsonb -> 'result')
                     || jsonb_build_object('totalDuration', total_duration_ms, 'errorCode', error_code))
         FROM execution_snapshots";
    sqlx::query(documents).bind(template).execute(&mut *db).await?;
    // What autovacuum would do after a large insert; index-only scans need the visibility map.
    db.execute("VACUUM ANALYZE execution_snapshots, execution_snapshot_documents").await?;
    Ok(())
}
