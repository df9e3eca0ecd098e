//! Task reports. Run it with `scripts/bench reports`.
//!
//! - Ingestion: one execution's report of BENCH_REPORT_RECORDS records (default 1,000,000, in
//!   parts of 1,000, Enhanced mode's schema), written by the in-process simulator (whose S3
//!   serves the parts' bytes, generated before the gateway reads them) and stored
//!   (`--report-records all`) by a gateway process (release build): the time from queued to
//!   stored (the database's own timestamps), and the process's resident memory before and at
//!   its peak during ingestion (sampled every 50 ms).
//! - Reads: BENCH_REPORT_STORED records (default 10,000,000) loaded with SQL: 100 tasks × 10
//!   executions over 30 days, about 9,900 failed records each, plus one execution of 100,000
//!   (its own task); then, through a gateway process: the first page (100) of that execution's
//!   failed files, the page 1,000 pages deep (after 99,900 records), a `pathPrefix` page,
//!   `failingPaths` of one task over 30 days (10 executions, ~99,000 records), and the bytes
//!   each stored record takes.
//!
//! Environment: BENCH_DATABASE_URL (a server where the bench may create `bench_reports_*`),
//! BENCH_SAMPLES (default 200).

#[allow(dead_code)] // Each benchmark uses part of it.
mod common;

use std::time::{Duration, Instant};

use common::process::{rss_kib, GatewayProcess};
use common::{database, env_or, post, print_latencies, time};
use datasync_gateway::simulator::fleet::seeded;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};

/// The Enhanced-mode task of the seeded fleet: 2,500,000 files, a report config.
const ENHANCED_TASK: &str = "arn:aws:datasync:eu-west-1:111122223333:task/task-0a1b2c3d4e5f60002";
/// The big execution of the read benchmark, and its task.
const BIG_TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-00000000000000bbb";
const BIG_RECORDS: i64 = 100_000;
const TASKS: i64 = 100;
const PER_TASK: i64 = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin_url =
        std::env::var("BENCH_DATABASE_URL").expect("BENCH_DATABASE_URL (run scripts/bench reports)");
    let records: i64 = env_or("BENCH_REPORT_RECORDS", 1_000_000);
    let stored: i64 = env_or("BENCH_REPORT_STORED", 10_000_000);
    let samples: usize = env_or("BENCH_SAMPLES", 200);
    if records > 0 {
        ingestion(&admin_url, records).await?;
    }
    reads(&admin_url, stored, samples).await?;
    Ok(())
}

async fn ingestion(admin_url: &str, records: i64) -> anyhow::Result<()> {
    let url = database(admin_url, "bench_reports_ingest").await?;
    // A millisecond a tick: the started execution transfers for 7.2 s, then writes its report.
    let config =
        SimulatorConfig { report_files: records, ..SimulatorConfig::with_tick(Duration::from_millis(1)) };
    let simulator = Simulator::start("127.0.0.1:0".parse()?, config).await?;
    let endpoint = simulator.endpoint_url();
    let gateway = GatewayProcess::start(
        &[
            &gateway_args(&endpoint, &url)[..],
            &[
                "--s3-endpoint",
                &endpoint,
                "--report-records",
                "all",
                "--report-max-records",
                &records.to_string(),
                "--report-interval",
                "100ms",
                "--report-calls-per-second",
                "100000",
            ][..],
        ]
        .concat(),
    )
    .await?;
    // Started over the SDK, not through the gateway (which would follow it, and store its report
    // as soon as it is written): the bench reads it once the simulator has its report ready.
    let sdk = aws_sdk_datasync::Client::from_conf(
        aws_sdk_datasync::Config::builder()
            .behavior_version(aws_sdk_datasync::config::BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(aws_sdk_datasync::config::Region::new("eu-west-1"))
            .credentials_provider(aws_credential_types::Credentials::from_keys("AKIDBENCH", "secret", None))
            .build(),
    );
    let arn = sdk
        .start_task_execution()
        .task_arn(ENHANCED_TASK)
        .send()
        .await?
        .task_execution_arn
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let described = sdk.describe_task_execution().task_execution_arn(&arn).send().await?;
        let written =
            described.report_result().and_then(|report| report.status()).map(|status| status.as_str());
        if written == Some("SUCCESS") {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the execution's report was never written");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The simulator generates a part's JSON when it is first listed or read, and keeps it: the
    // bench lists the report once, so that the gateway then reads stored bytes, as from S3.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .force_path_style(true)
            .region(aws_sdk_s3::config::Region::new("eu-west-1"))
            .credentials_provider(aws_credential_types::Credentials::from_keys("AKIDBENCH", "secret", None))
            .build(),
    );
    let mut pages = s3
        .list_objects_v2()
        .bucket(datasync_gateway::simulator::reports::BUCKET)
        .prefix("reports/Detailed-Reports/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        page?;
    }
    let client = reqwest::Client::new();
    let graphql = gateway.url("/graphql");
    let before_kib = rss_kib(gateway.pid)?;
    let report = json!({ "query": "query($arn: ID!) { taskExecution(arn: $arn, consistency: STRONG) {
        status report { status ingestion { state recordsKept parts } } } }", "variables": { "arn": arn } });
    let (mut peak_kib, deadline) = (before_kib, Instant::now() + Duration::from_secs(600));
    let ingestion = loop {
        let answer = post(&client, &graphql, &report).await?;
        peak_kib = peak_kib.max(rss_kib(gateway.pid)?);
        let ingestion = &answer["data"]["taskExecution"]["report"]["ingestion"];
        if ingestion["state"] == "COMPLETE" {
            break ingestion.clone();
        }
        anyhow::ensure!(ingestion["state"] != "FAILED" && ingestion["state"] != "PARTIAL", "{answer}");
        anyhow::ensure!(Instant::now() < deadline, "not stored within 10 minutes: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut db = PgConnection::connect(&url).await?;
    let seconds: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM finished_at - queued_at)::float8 FROM report_ingestions WHERE execution_arn = $1",
    )
    .bind(&arn)
    .fetch_one(&mut db)
    .await?;
    let kept = &ingestion["recordsKept"];
    let kept: i64 = kept.as_i64().or_else(|| kept.as_str()?.parse().ok()).unwrap_or(0);
    anyhow::ensure!(kept == records, "stored {kept} of {records}");
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("| report ingestion (`--report-records all`) | figure |\n| --- | --- |");
    println!("| records stored | {kept} |");
    println!("| parts (GetObject calls) | {} |", ingestion["parts"]);
    println!("| queued → stored, s | {seconds:.1} |");
    println!("| records/s | {:.0} |", kept as f64 / seconds);
    println!("| gateway RSS before, MiB | {:.1} |", mib(before_kib));
    println!("| gateway RSS peak during, MiB | {:.1} |", mib(peak_kib));
    println!("| added by ingesting, MiB | {:.1} |\n", mib(peak_kib) - mib(before_kib));
    Ok(())
}

async fn reads(admin_url: &str, stored: i64, samples: usize) -> anyhow::Result<()> {
    let url = database(admin_url, "bench_reports_read").await?;
    let simulator =
        Simulator::start("127.0.0.1:0".parse()?, SimulatorConfig::with_tick(Duration::from_secs(2))).await?;
    let endpoint = simulator.endpoint_url();
    let base = [&gateway_args(&endpoint, &url)[..], &["--report-ingestion", "off"][..]].concat();
    // The first start applies the migrations and records a real description (the simulator's
    // finished Basic execution, with its report config), which the load copies per execution.
    let first = GatewayProcess::start(&base).await?;
    let read = json!({ "query": "query($arn: ID!) { taskExecution(arn: $arn) { status } }",
                       "variables": { "arn": seeded::SUCCEEDED_BASIC } });
    post(&reqwest::Client::new(), &first.url("/graphql"), &read).await?;
    let mut db = PgConnection::connect(&url).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let template: Value = loop {
        let stored: Option<Value> =
            sqlx::query_scalar("SELECT snapshot FROM execution_snapshot_documents WHERE execution_arn = $1")
                .bind(seeded::SUCCEEDED_BASIC)
                .fetch_optional(&mut db)
                .await?;
        if let Some(template) = stored {
            break template;
        }
        anyhow::ensure!(Instant::now() < deadline, "the template execution was never recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(first);
    db.execute("TRUNCATE execution_snapshots CASCADE").await?;
    let loading = Instant::now();
    load(&mut db, stored, &template).await?;
    let load_seconds = loading.elapsed().as_secs_f64();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM report_files").fetch_one(&mut db).await?;
    let bytes: i64 =
        sqlx::query_scalar("SELECT pg_total_relation_size('report_files')").fetch_one(&mut db).await?;
    let heap: i64 = sqlx::query_scalar("SELECT pg_relation_size('report_files')").fetch_one(&mut db).await?;

    let gateway = GatewayProcess::start(&base).await?;
    let client = reqwest::Client::new();
    let graphql = gateway.url("/graphql");
    let big = format!("{BIG_TASK}/execution/exec-00000000000000bbb");
    let page =
        "query($arn: ID!, $after: String, $filter: ReportFileFilter) { taskExecution(arn: $arn) { report {
        files(filter: $filter, first: 100, after: $after) { pageInfo { endCursor }
            edges { node { relativePath kind status errorCode errorDetail sourceSize } } } } } }";
    let failed = json!({ "failed": true });
    let first = json!({ "query": page, "variables": { "arn": big, "filter": failed } });
    // The cursor 1,000 pages in: walked once, then the page after it timed.
    let mut after = Value::Null;
    for _ in 0..999 {
        let answer = post(
            &client,
            &graphql,
            &json!({ "query": page, "variables": { "arn": big, "filter": failed, "after": after } }),
        )
        .await?;
        after = answer["data"]["taskExecution"]["report"]["files"]["pageInfo"]["endCursor"].clone();
    }
    anyhow::ensure!(after.is_string(), "no cursor 999 pages in");
    let deep = json!({ "query": page, "variables": { "arn": big, "filter": failed, "after": after } });
    let prefix = json!({ "query": page, "variables": { "arn": big, "filter": { "failed": true, "pathPrefix": "dir-0777/" } } });
    let since = (chrono::Utc::now() - chrono::Duration::days(30)).to_rfc3339();
    let failing = json!({ "query": "query($task: ID!, $since: DateTime) { failingPaths(taskArn: $task, since: $since, first: 20) {
        relativePath executions lastTaskExecutionArn lastErrorCode } }",
        "variables": { "task": task_arn(7), "since": since } });
    let paths = post(&client, &graphql, &failing).await?;
    anyhow::ensure!(
        paths["data"]["failingPaths"].as_array().is_some_and(|paths| !paths.is_empty()),
        "{paths}"
    );

    println!("| stored records | figure |\n| --- | --- |");
    println!("| records | {rows} |");
    println!("| loaded with SQL (insert, index, analyze), s | {load_seconds:.0} |");
    println!("| bytes per record, table and index | {} |", bytes / rows.max(1));
    println!("| bytes per record, table alone | {}  |\n", heap / rows.max(1));
    print_latencies(
        &format!("reads over {rows} stored records, through a gateway process"),
        vec![
            (
                "first page (100) of one execution's failed files",
                time(&client, &graphql, &first, samples).await?,
            ),
            (
                "the page after 999 pages (99,900 records deep)",
                time(&client, &graphql, &deep, samples).await?,
            ),
            ("a pathPrefix page", time(&client, &graphql, &prefix, samples).await?),
            (
                "failingPaths of one task over 30 days (~99,000 failed records)",
                time(&client, &graphql, &failing, samples).await?,
            ),
        ],
    );
    Ok(())
}

/// A gateway process's arguments for the simulator at `endpoint` and the database `url`, no sync.
fn gateway_args<'a>(endpoint: &'a str, url: &'a str) -> [&'a str; 11] {
    [
        "--database-url",
        url,
        "--datasync-endpoint",
        endpoint,
        "--fake-credentials",
        "--regions",
        "us-east-1,eu-west-1",
        "--rate-limit",
        "0",
        "--discovery",
        "off",
    ]
}

fn task_arn(task: i64) -> String {
    format!("arn:aws:datasync:us-east-1:111122223333:task/task-{task:017x}")
}

/// The executions (rows and documents: what `taskExecution` reads back), their ingestions and
/// `stored` failed records, as described at the top.
async fn load(db: &mut PgConnection, stored: i64, template: &Value) -> anyhow::Result<()> {
    let per_execution = (stored - BIG_RECORDS).max(0) / (TASKS * PER_TASK);
    // Executions of 100 tasks, 10 each over the last 30 days, and the big one.
    db.execute(
        format!(
            "INSERT INTO execution_snapshots (execution_arn, task_arn, region, account_id, status, task_mode,
                 start_time, started_at, first_seen_terminal, updated_at, bytes_transferred, bytes_written,
                 bytes_compressed, files_transferred, files_verified, files_deleted, files_skipped, error_code,
                 report_status, end_time)
             SELECT task || '/execution/exec-' || lpad(to_hex(i), 17, '0'), task, 'us-east-1', '111122223333',
                 'ERROR', 'BASIC', started, started, started, started, 0, 0, 0, 0, 0, 0, 0,
                 'ErrorCodeNetworkTimeout', 'SUCCESS', started + interval '1 hour'
             FROM (SELECT i, 'arn:aws:datasync:us-east-1:111122223333:task/task-' || lpad(to_hex(i % {TASKS}), 17, '0') AS task,
                          now() - (i * interval '29 days' / {n}) AS started
                   FROM generate_series(1, {n}) AS i) generated
             UNION ALL SELECT '{BIG_TASK}/execution/exec-00000000000000bbb', '{BIG_TASK}', 'us-east-1',
                 '111122223333', 'ERROR', 'BASIC', now() - interval '1 day', now() - interval '1 day',
                 now(), now(), 0, 0, 0, 0, 0, 0, 0, 'ErrorCodeNetworkTimeout', 'SUCCESS', now()",
            n = TASKS * PER_TASK
        )
        .as_str(),
    )
    .await?;
    // Documents: the template's, with each execution's ARN, status and start.
    sqlx::query(
        "INSERT INTO execution_snapshot_documents (execution_arn, snapshot_version, snapshot)
         SELECT execution_arn, 1, jsonb_set(jsonb_set(jsonb_set($1::jsonb,
             '{taskExecutionArn}', to_jsonb(execution_arn)), '{status}', to_jsonb(status)),
             '{startTime}', to_jsonb(start_time))
         FROM execution_snapshots",
    )
    .bind(template)
    .execute(&mut *db)
    .await?;
    db.execute(
        "INSERT INTO report_ingestions (execution_arn, bucket, prefix, state, kept, records_read, records_kept,
             finished_at)
         SELECT execution_arn, 'reports', 'reports/Detailed-Reports/', 'COMPLETE', 'errors', 0, 0, now()
         FROM execution_snapshots",
    )
    .await?;
    // Records without the primary key, which is built once afterwards (as a restore would); in
    // ingestion order, as COPY writes them, a part's records together.
    db.execute("ALTER TABLE report_files DROP CONSTRAINT report_files_pkey").await?;
    let insert = |ingestions: &str, count: i64| {
        format!(
            "INSERT INTO report_files (ingestion_id, relative_path, kind, part, ordinal, status, failed, file_type,
                 source_size, destination_size, source_mtime, destination_mtime, source_checksum,
                 destination_checksum, event_time, error_code, error_detail)
             SELECT i.id, 'dir-' || lpad(((i.id * 7919 + k * 104729) % 200000 / 100)::text, 4, '0')
                     || '/file-' || ((i.id * 7919 + k * 104729) % 200000) || '.dat',
                 'Transferred', k / 1000 + 1, k % 1000 + 1, 'FAILED', true, 'Regular',
                 k * 37, k * 37, '2026-11-01T10:00:00.123456789Z', '2026-11-01T10:00:00.123456789Z',
                 'SHA256:' || md5(k::text) || md5(i.id::text), NULL, '2026-11-28T10:00:00.123456789Z',
                 '40974', 'S3 Get Object Failed'
             FROM ({ingestions}) i, generate_series(0::bigint, {count} - 1) AS k
             ORDER BY i.id, k"
        )
    };
    db.execute(
        insert("SELECT id FROM report_ingestions WHERE execution_arn NOT LIKE '%bbb'", per_execution)
            .as_str(),
    )
    .await?;
    db.execute(
        insert("SELECT id FROM report_ingestions WHERE execution_arn LIKE '%bbb'", BIG_RECORDS).as_str(),
    )
    .await?;
    db.execute(
        "UPDATE report_ingestions i SET records_read = n, records_kept = n
         FROM (SELECT ingestion_id, count(*) AS n FROM report_files GROUP BY ingestion_id) f WHERE f.ingestion_id = i.id",
    )
    .await?;
    db.execute(
        "ALTER TABLE report_files ADD CONSTRAINT report_files_pkey
             PRIMARY KEY (ingestion_id, relative_path, kind, part, ordinal)",
    )
    .await?;
    db.execute("VACUUM ANALYZE execution_snapshots, report_ingestions, report_files").await?;
    Ok(())
}
