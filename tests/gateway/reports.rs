//! Task reports: the per-file records of the reports the simulator's executions write, read
//! from S3 (the simulator's, and moto's) by the real app, stored in a real PostgreSQL, and
//! queried through GraphQL. What the parts hold is counted here independently, from the
//! objects themselves, with serde_json.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use datasync_gateway::config::Config;
use datasync_gateway::model::RecordsKept;
use datasync_gateway::simulator::fleet::seeded;
use datasync_gateway::simulator::reports::BUCKET;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{graphql, history_config, s3_client, spawn_gateway, GatewayProcess, TEST_TICK};
use crate::moto::moto_endpoint;

const REPORT: &str = "query($arn: ID!) { taskExecution(arn: $arn) { report {
    status outputType
    ingestion { state kept recordsRead recordsKept truncated error attempts parts
                failedParts { key kind part error } }
    counts { kind status count } } } }";

const FILES: &str = "query($arn: ID!, $filter: ReportFileFilter, $first: Int, $after: String) {
    taskExecution(arn: $arn) { report { files(filter: $filter, first: $first, after: $after) {
        pageInfo { hasNextPage endCursor }
        edges { node { taskExecutionArn kind status failed relativePath fileType sourceSize
            destinationSize sourceMtime destinationMtime sourceChecksum destinationChecksum
            timestamp errorCode errorDetail } } } } } }";

/// One record of a part, as the test reads it: kind, path (without a leading `/`), status,
/// whether it is an error, its error code.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Record {
    kind: String,
    path: String,
    status: String,
    failed: bool,
    error_code: Option<String>,
}

/// Every part of `execution`'s report in the simulator's S3: key → records.
async fn parts_of(endpoint: &str, execution: &str) -> BTreeMap<String, Vec<Record>> {
    let s3 = s3_client(endpoint, "AKIDGATEWAYTEST");
    let exec_id = execution.rsplit('/').next().unwrap();
    let task_id = execution.split('/').nth(1).unwrap();
    let prefix = format!("reports/Detailed-Reports/{task_id}/{exec_id}/");
    let listed = s3.list_objects_v2().bucket(BUCKET).prefix(&prefix).send().await.unwrap();
    let mut parts = BTreeMap::new();
    for object in listed.contents() {
        let key = object.key().unwrap().to_owned();
        let body =
            s3.get_object().bucket(BUCKET).key(&key).send().await.unwrap().body.collect().await.unwrap();
        let json: Value = serde_json::from_slice(&body.into_bytes()).unwrap();
        let (list, records) = json
            .as_object()
            .unwrap()
            .iter()
            .find(|(name, _)| *name != "TaskExecutionId")
            .map(|(name, records)| (name.clone(), records.as_array().unwrap().clone()))
            .unwrap();
        let status_field = if list == "Verified" { "VerifyStatus" } else { "TransferStatus" };
        let records = records
            .iter()
            .map(|record| {
                let status = record[status_field].as_str().unwrap().to_owned();
                let code = record.get("ErrorCode").or_else(|| record.get("FailureCode"));
                Record {
                    kind: list.to_uppercase(),
                    path: record["RelativePath"].as_str().unwrap().trim_start_matches('/').to_owned(),
                    failed: status != "SUCCESS" || code.is_some(),
                    status,
                    error_code: code
                        .map(|code| code.as_str().map_or_else(|| code.to_string(), str::to_owned)),
                }
            })
            .collect();
        parts.insert(key, records);
    }
    parts
}

/// The test config with a fresh database and report ingestion on, looking for work every
/// 100 ms, keeping `kept`.
async fn reports_config(simulator: &Simulator, kept: RecordsKept) -> Config {
    let mut config = history_config().await;
    config.datasync.datasync_endpoint = Some(simulator.endpoint_url());
    config.reports.s3_endpoint = Some(simulator.endpoint_url());
    config.reports.report_ingestion = true;
    config.reports.report_records = kept;
    config.reports.report_interval = Duration::from_millis(100);
    config.reports.report_calls_per_second = 10_000.0;
    // A stopped replica's ingestions pass to another within a second.
    config.live.lease_duration = Duration::from_secs(1);
    config.live.poll_interval = Duration::from_millis(100);
    config
}

/// PUTs `body` to the simulator's admin endpoint `/_simulator/{what}`.
async fn admin(simulator: &Simulator, what: &str, body: Value) {
    let url = format!("{}/_simulator/{what}", simulator.endpoint_url());
    let response = reqwest::Client::new().put(url).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "{what}: {:?}", response.text().await);
}

async fn simulator() -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), SimulatorConfig::with_tick(TEST_TICK)).await.unwrap()
}

/// Waits until `arn`'s report ingestion, read through `url` (a gateway's `/graphql`), is in a
/// state `done` accepts; the report.
async fn report_when(url: &str, arn: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let response = graphql(url, REPORT, json!({ "arn": arn })).await;
        let report = &response["data"]["taskExecution"]["report"];
        if done(report) {
            return report.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "the report never got there: {response}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ended(report: &Value) -> bool {
    ["COMPLETE", "PARTIAL", "FAILED"].iter().any(|state| report["ingestion"]["state"] == *state)
}

/// Every file of `arn`'s report through `files`, `first` at a time, with `filter`.
async fn all_files(url: &str, arn: &str, filter: Value, first: i64) -> Vec<Value> {
    let (mut files, mut after) = (Vec::new(), Value::Null);
    loop {
        let variables = json!({ "arn": arn, "filter": filter, "first": first, "after": after });
        let response = graphql(url, FILES, variables).await;
        let page = &response["data"]["taskExecution"]["report"]["files"];
        let edges = page["edges"].as_array().unwrap_or_else(|| panic!("a page: {response}"));
        files.extend(edges.iter().map(|edge| edge["node"].clone()));
        if page["pageInfo"]["hasNextPage"] != true {
            return files;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// Records per (kind, status), as `counts` gives them.
fn tally<'a>(records: impl Iterator<Item = &'a Record>) -> BTreeMap<(String, String), i64> {
    let mut counts = BTreeMap::new();
    for record in records {
        *counts.entry((record.kind.clone(), record.status.clone())).or_default() += 1;
    }
    counts
}

fn counted(report: &Value) -> BTreeMap<(String, String), i64> {
    report["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|count| {
            let key =
                (count["kind"].as_str().unwrap().to_owned(), count["status"].as_str().unwrap().to_owned());
            (
                key,
                count["count"]
                    .as_str()
                    .map_or_else(|| count["count"].as_i64().unwrap(), |n| n.parse().unwrap()),
            )
        })
        .collect()
}

fn long(value: &Value) -> i64 {
    value.as_str().map_or_else(|| value.as_i64().expect("a Long"), |text| text.parse().unwrap())
}

async fn stored_rows(database_url: &str) -> (i64, i64) {
    let pool = PgPool::connect(database_url).await.unwrap();
    let (rows, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT (ingestion_id, kind, part, ordinal)) FROM report_files",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    (rows, distinct)
}

#[tokio::test]
async fn a_report_in_several_parts_is_stored_once_with_every_record_the_parts_hold() {
    let simulator = simulator().await;
    let parts = parts_of(&simulator.endpoint_url(), seeded::FAILED).await;
    let records: Vec<&Record> = parts.values().flatten().collect();
    assert!(
        parts.len() >= 3 && records.iter().any(|r| r.failed),
        "several parts, some failures: {}",
        parts.len()
    );

    let before = simulator.calls("GetObject");
    let config = reports_config(&simulator, RecordsKept::All).await;
    let database_url = config.history.database_url.clone().unwrap();
    let (address, _) = spawn_gateway(config).await;
    let url = format!("http://{address}/graphql");
    let report = report_when(&url, seeded::FAILED, ended).await;
    let ingestion = &report["ingestion"];
    assert_eq!(ingestion["state"], "COMPLETE", "{report}");
    assert_eq!(ingestion["kept"], "ALL");
    assert_eq!(long(&ingestion["recordsRead"]), records.len() as i64);
    assert_eq!(long(&ingestion["recordsKept"]), records.len() as i64);
    assert_eq!(ingestion["parts"], parts.len() as i64);
    assert_eq!(ingestion["truncated"], false);
    assert_eq!(ingestion["failedParts"], json!([]));
    assert_eq!(counted(&report), tally(records.iter().copied()));

    // Every record, page by page, in path order, as the parts hold them.
    let files = all_files(&url, seeded::FAILED, Value::Null, 500).await;
    assert_eq!(files.len(), records.len());
    let paths: Vec<&str> = files.iter().map(|file| file["relativePath"].as_str().unwrap()).collect();
    assert!(paths.windows(2).all(|pair| pair[0] <= pair[1]), "sorted by path");
    let mut read: Vec<Record> = files
        .iter()
        .map(|file| Record {
            kind: file["kind"].as_str().unwrap().to_owned(),
            path: file["relativePath"].as_str().unwrap().to_owned(),
            status: file["status"].as_str().unwrap().to_owned(),
            failed: file["failed"].as_bool().unwrap(),
            error_code: file["errorCode"].as_str().map(str::to_owned),
        })
        .collect();
    let mut expected: Vec<Record> = records.iter().map(|record| (*record).clone()).collect();
    read.sort();
    expected.sort();
    assert_eq!(read, expected);
    let failure = files.iter().find(|file| file["failed"] == true && file["kind"] == "TRANSFERRED").unwrap();
    for field in ["sourceSize", "sourceMtime", "timestamp", "errorCode", "errorDetail", "fileType"] {
        assert!(failure.get(field).is_some_and(|value| !value.is_null()), "{field} of {failure}");
    }
    assert_eq!(failure["taskExecutionArn"], seeded::FAILED);

    // Filters: failed ones under a prefix.
    let prefix = "dir-1/";
    let failed_under =
        all_files(&url, seeded::FAILED, json!({ "failed": true, "pathPrefix": prefix }), 7).await;
    let expected_under = records.iter().filter(|r| r.failed && r.path.starts_with(prefix)).count();
    assert!(expected_under > 0);
    assert_eq!(failed_under.len(), expected_under);

    // Stored once: no part read twice, no record twice, however long the gateway runs on.
    let gets = simulator.calls("GetObject");
    assert_eq!(gets - before, parts.len() as u64, "one GET per part");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(simulator.calls("GetObject"), gets, "nothing read again");
    assert_eq!(stored_rows(&database_url).await, (records.len() as i64, records.len() as i64));
}

#[tokio::test]
async fn under_errors_a_successes_and_errors_report_keeps_only_its_errors() {
    let simulator = simulator().await;
    let parts = parts_of(&simulator.endpoint_url(), seeded::FAILED).await;
    let records: Vec<&Record> = parts.values().flatten().collect();
    let errors: Vec<&Record> = records.iter().copied().filter(|record| record.failed).collect();
    assert!(records.iter().any(|r| r.kind == "TRANSFERRED" && !r.failed), "the report has successes");

    let (address, _) = spawn_gateway(reports_config(&simulator, RecordsKept::Errors).await).await;
    let url = format!("http://{address}/graphql");
    let report = report_when(&url, seeded::FAILED, ended).await;
    assert_eq!(report["ingestion"]["state"], "COMPLETE", "{report}");
    assert_eq!(report["ingestion"]["kept"], "ERRORS");
    assert_eq!(long(&report["ingestion"]["recordsRead"]), records.len() as i64);
    assert_eq!(long(&report["ingestion"]["recordsKept"]), errors.len() as i64);
    assert_eq!(counted(&report), tally(errors.iter().copied()));
    let files = all_files(&url, seeded::FAILED, Value::Null, 500).await;
    assert_eq!(files.len(), errors.len());
    assert!(files.iter().all(|file| file["failed"] == true));
}

#[tokio::test]
async fn a_corrupt_part_is_named_with_why_and_the_other_parts_are_stored() {
    let simulator = simulator().await;
    let parts = parts_of(&simulator.endpoint_url(), seeded::FAILED).await;
    let (corrupt, lost) = parts.iter().nth(1).map(|(key, records)| (key.clone(), records.len())).unwrap();
    admin(&simulator, "objects", json!({ "corrupt": [corrupt] })).await;

    let (address, _) = spawn_gateway(reports_config(&simulator, RecordsKept::All).await).await;
    let url = format!("http://{address}/graphql");
    let report = report_when(&url, seeded::FAILED, ended).await;
    let ingestion = &report["ingestion"];
    assert_eq!(ingestion["state"], "PARTIAL", "{report}");
    assert_eq!(ingestion["failedParts"].as_array().unwrap().len(), 1, "{report}");
    let failed = &ingestion["failedParts"][0];
    assert_eq!(failed["key"], corrupt.as_str());
    let why = failed["error"].as_str().unwrap();
    assert!(why.contains("not a task report part") && why.contains("line 1"), "{why}");
    assert!(ingestion["error"].as_str().unwrap().contains("1 of"), "{report}");
    let total: usize = parts.values().map(Vec::len).sum();
    assert_eq!(long(&ingestion["recordsKept"]), (total - lost) as i64);
}

#[tokio::test]
async fn a_bucket_that_refuses_the_gateway_is_reported_without_a_retry_storm() {
    let simulator = simulator().await;
    admin(&simulator, "buckets", json!({ "denied": [BUCKET] })).await;
    let (address, _) = spawn_gateway(reports_config(&simulator, RecordsKept::All).await).await;
    let url = format!("http://{address}/graphql");
    let report = report_when(&url, seeded::FAILED, ended).await;
    assert_eq!(report["ingestion"]["state"], "FAILED", "{report}");
    let error = report["ingestion"]["error"].as_str().unwrap();
    assert!(error.contains("AccessDenied") && error.contains(BUCKET), "{error}");
    assert_eq!(report["ingestion"]["attempts"], 1);
    // Twenty more intervals: the refusal is not retried.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(simulator.calls("ListObjectsV2"), 1, "one listing, refused, and no retry");
    assert_eq!(simulator.calls("GetObject"), 0);
}

#[tokio::test]
async fn two_replicas_store_a_report_once() {
    let simulator = simulator().await;
    let parts = parts_of(&simulator.endpoint_url(), seeded::FAILED).await;
    let total: usize = parts.values().map(Vec::len).sum();
    let before = simulator.calls("GetObject");
    let first = reports_config(&simulator, RecordsKept::All).await;
    let database_url = first.history.database_url.clone().unwrap();
    let mut second = reports_config(&simulator, RecordsKept::All).await;
    second.history.database_url = Some(database_url.clone());
    let (one, _) = spawn_gateway(first).await;
    let (two, _) = spawn_gateway(second).await;
    // Both read the execution, so both write it (and the report is queued once).
    for address in [one, two] {
        let response =
            graphql(&format!("http://{address}/graphql"), REPORT, json!({ "arn": seeded::FAILED })).await;
        assert!(response["errors"].is_null(), "{response}");
    }
    let report = report_when(&format!("http://{one}/graphql"), seeded::FAILED, ended).await;
    assert_eq!(report["ingestion"]["state"], "COMPLETE", "{report}");
    assert_eq!(long(&report["ingestion"]["recordsKept"]), total as i64);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        simulator.calls("GetObject") - before,
        parts.len() as u64,
        "each part read by one replica, once"
    );
    assert_eq!(stored_rows(&database_url).await, (total as i64, total as i64));
}

#[tokio::test]
async fn an_ingestion_stopped_midway_resumes_after_the_parts_it_stored() {
    let simulator = simulator().await;
    let parts = parts_of(&simulator.endpoint_url(), seeded::FAILED).await;
    let total: usize = parts.values().map(Vec::len).sum();
    // Each part takes a while to read, so that the first replica stops between parts.
    admin(&simulator, "faults", json!({ "failure": null, "latencyMs": 300, "operations": ["GetObject"] }))
        .await;
    let before = simulator.calls("GetObject");

    // The first replica, a process of its own, killed (SIGKILL) once it stored two parts.
    let database_url = history_config().await.history.database_url.unwrap();
    let s3 = simulator.endpoint_url();
    let args = [
        ["--s3-endpoint", s3.as_str()],
        ["--report-records", "all"],
        ["--report-interval", "100ms"],
        ["--lease-duration", "1s"],
        ["--discovery", "off"],
    ];
    let mut first =
        GatewayProcess::start("report-resume", &simulator, &database_url, args.as_flattened(), &[]).await;
    let url = format!("http://{}/graphql", first.address);
    report_when(&url, seeded::FAILED, |report| report["ingestion"]["parts"].as_i64() >= Some(2)).await;
    first.kill();
    let stored_before: i64 = {
        let pool = PgPool::connect(&database_url).await.unwrap();
        let stored = sqlx::query_scalar("SELECT count(*) FROM report_parts").fetch_one(&pool).await.unwrap();
        pool.close().await;
        stored
    };
    assert!(stored_before >= 2 && (stored_before as usize) < parts.len(), "stopped midway: {stored_before}");

    let mut config = reports_config(&simulator, RecordsKept::All).await;
    config.history.database_url = Some(database_url.clone());
    let (address, _) = spawn_gateway(config).await;
    let report = report_when(&format!("http://{address}/graphql"), seeded::FAILED, ended).await;
    assert_eq!(report["ingestion"]["state"], "COMPLETE", "{report}");
    assert_eq!(report["ingestion"]["attempts"], 2, "taken over once: {report}");
    assert_eq!(long(&report["ingestion"]["recordsKept"]), total as i64);
    assert_eq!(report["ingestion"]["parts"], parts.len() as i64);
    assert_eq!(stored_rows(&database_url).await, (total as i64, total as i64), "nothing stored twice");
    // The parts stored before the stop were not read again; the one being read then may be.
    let gets = simulator.calls("GetObject") - before;
    assert!(gets <= parts.len() as u64 + 1, "{gets} GETs for {} parts", parts.len());
}

#[tokio::test]
async fn failing_paths_over_five_failed_executions_are_the_ones_their_reports_list() {
    // Of 90 extra executions, those of the Enhanced-mode task (i % 4 == 1) that fail (i % 10 ==
    // 9) are five: i = 9, 29, 49, 69, 89. Each execution's report lists its failed files.
    let config = SimulatorConfig { extra_executions: 90, ..SimulatorConfig::with_tick(TEST_TICK) };
    let simulator = Simulator::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let task = "arn:aws:datasync:eu-west-1:111122223333:task/task-0a1b2c3d4e5f60002";
    let failed: Vec<String> = [9_u64, 29, 49, 69, 89]
        .iter()
        .map(|i| format!("{task}/execution/exec-{:017x}", 0xe000_0000_0000_0000_u64 + i))
        .collect();
    let mut expected: HashMap<String, (i64, BTreeMap<String, ()>)> = HashMap::new();
    for arn in &failed {
        let mut failed_here: BTreeMap<String, ()> = BTreeMap::new();
        for record in parts_of(&simulator.endpoint_url(), arn).await.values().flatten().filter(|r| r.failed) {
            failed_here.insert(record.path.clone(), ());
        }
        for path in failed_here.keys() {
            let entry = expected.entry(path.clone()).or_default();
            entry.0 += 1;
            entry.1.insert(arn.clone(), ());
        }
    }
    let mut expected: Vec<(String, i64)> = expected.into_iter().map(|(path, (n, _))| (path, n)).collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    assert!(expected[0].1 == 5, "some files fail every time: {:?}", &expected[..3]);
    assert!(expected.iter().any(|(_, n)| *n == 1), "and some once");

    let mut config = reports_config(&simulator, RecordsKept::Errors).await;
    config.history.discovery = true;
    config.history.discovery_interval = Duration::from_secs(3600);
    let (address, _) = spawn_gateway(config).await;
    let url = format!("http://{address}/graphql");
    for arn in &failed {
        let report = report_when(&url, arn, ended).await;
        assert_eq!(report["ingestion"]["state"], "COMPLETE", "{arn}: {report}");
    }
    let since = (chrono::Utc::now() - chrono::Duration::days(30)).to_rfc3339();
    let response = graphql(
        &url,
        "query($task: ID!, $since: DateTime) { failingPaths(taskArn: $task, since: $since, first: 100) {
            relativePath executions lastTaskExecutionArn lastStartedAt lastErrorCode kinds } }",
        json!({ "task": task, "since": since }),
    )
    .await;
    let answer = response["data"]["failingPaths"].as_array().unwrap_or_else(|| panic!("{response}"));
    let answered: Vec<(String, i64)> = answer
        .iter()
        .map(|path| (path["relativePath"].as_str().unwrap().to_owned(), long(&path["executions"])))
        .collect();
    assert_eq!(answered, expected.iter().take(100).cloned().collect::<Vec<_>>());
    // The same records across executions: under one prefix, each failed execution's own.
    let prefix = "dir-1/";
    let mut expected_files = 0;
    for arn in &failed {
        let parts = parts_of(&simulator.endpoint_url(), arn).await;
        expected_files += parts.values().flatten().filter(|r| r.failed && r.path.starts_with(prefix)).count();
    }
    let across = graphql(
        &url,
        "query($task: ID!, $prefix: String) { reportFiles(filter: {
            executions: { taskArns: [$task] }, files: { failed: true, pathPrefix: $prefix } }, first: 1000) {
            pageInfo { hasNextPage } edges { node { taskExecutionArn relativePath } } } }",
        json!({ "task": task, "prefix": prefix }),
    )
    .await;
    let edges = across["data"]["reportFiles"]["edges"].as_array().unwrap_or_else(|| panic!("{across}"));
    assert!(expected_files > 0);
    assert_eq!(edges.len(), expected_files, "{across}");
    assert!(edges
        .iter()
        .all(|edge| failed.iter().any(|arn| edge["node"]["taskExecutionArn"] == arn.as_str())));
    // The latest failure of a path that failed every time is the newest failed execution (i = 9).
    assert_eq!(answer[0]["lastTaskExecutionArn"], failed[0].as_str());
    assert!(answer[0]["lastErrorCode"].is_string(), "{}", answer[0]);
}

#[tokio::test]
async fn retention_prunes_records_with_their_executions_or_before_them() {
    let simulator = simulator().await;
    let config = reports_config(&simulator, RecordsKept::All).await;
    let database_url = config.history.database_url.clone().unwrap();
    let (address, first) = spawn_gateway(config).await;
    let url = format!("http://{address}/graphql");
    // Both seeded executions with a written report: one started 48 hours ago, one 24.
    for arn in [seeded::SUCCEEDED_BASIC, seeded::FAILED] {
        let report = report_when(&url, arn, ended).await;
        assert_eq!(report["ingestion"]["state"], "COMPLETE", "{report}");
    }
    first.abort();
    let _ = first.await;
    let pool = PgPool::connect(&database_url).await.unwrap();
    let ingestions = |pool: PgPool| async move {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT i.execution_arn, (SELECT count(*) FROM report_files f WHERE f.ingestion_id = i.id) \
             FROM report_ingestions i ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        rows
    };
    let stored = ingestions(pool.clone()).await;
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|(_, records)| *records > 0), "{stored:?}");

    // Executions are kept 36 hours (the 48-hour-old one goes, its records with it), reports 12
    // (the 24-hour-old one's records go, the execution stays).
    let mut config = reports_config(&simulator, RecordsKept::All).await;
    config.history.database_url = Some(database_url.clone());
    config.history.history_retention = Some(Duration::from_secs(36 * 3600));
    config.reports.report_retention = Some(Duration::from_secs(12 * 3600));
    let _gateway = spawn_gateway(config).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let executions: Vec<String> =
            sqlx::query_scalar("SELECT execution_arn FROM execution_snapshots ORDER BY 1")
                .fetch_all(&pool)
                .await
                .unwrap();
        let files: i64 =
            sqlx::query_scalar("SELECT count(*) FROM report_files").fetch_one(&pool).await.unwrap();
        let stored = ingestions(pool.clone()).await;
        if stored.is_empty() && files == 0 && !executions.contains(&seeded::SUCCEEDED_BASIC.to_owned()) {
            assert!(executions.contains(&seeded::FAILED.to_owned()), "{executions:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not pruned: {executions:?} {stored:?} {files}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.close().await;
}

#[tokio::test]
async fn a_report_is_read_from_moto_s_s3_as_from_the_simulator_s() {
    let simulator = simulator().await;
    let parts = parts_of(&simulator.endpoint_url(), seeded::FAILED).await;
    let total: usize = parts.values().map(Vec::len).sum();
    // The simulator's report objects, copied as they are into moto's S3 (a real S3 API).
    let source = s3_client(&simulator.endpoint_url(), "AKIDGATEWAYTEST");
    let moto = s3_client(&moto_endpoint(), "AKIDGATEWAYTEST");
    if let Err(error) = moto.create_bucket().bucket(BUCKET).send().await {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        assert_eq!(error.code(), Some("BucketAlreadyOwnedByYou"), "{error:?}");
    }
    for key in parts.keys() {
        let body =
            source.get_object().bucket(BUCKET).key(key).send().await.unwrap().body.collect().await.unwrap();
        moto.put_object()
            .bucket(BUCKET)
            .key(key)
            .content_type("application/json")
            .body(body.into_bytes().into())
            .send()
            .await
            .unwrap();
    }
    let before = simulator.calls("GetObject");
    let mut config = reports_config(&simulator, RecordsKept::All).await;
    config.reports.s3_endpoint = Some(moto_endpoint());
    let (address, _) = spawn_gateway(config).await;
    let report = report_when(&format!("http://{address}/graphql"), seeded::FAILED, ended).await;
    assert_eq!(report["ingestion"]["state"], "COMPLETE", "{report}");
    assert_eq!(long(&report["ingestion"]["recordsKept"]), total as i64);
    assert_eq!(report["ingestion"]["parts"], parts.len() as i64);
    assert_eq!(simulator.calls("GetObject"), before, "the gateway read moto's S3, not the simulator's");
}

#[tokio::test]
async fn a_capped_report_says_it_was_cut_and_keeps_exactly_the_cap() {
    let simulator = simulator().await;
    let parts = parts_of(&simulator.endpoint_url(), seeded::FAILED).await;
    let total: usize = parts.values().map(Vec::len).sum();
    let mut config = reports_config(&simulator, RecordsKept::All).await;
    config.reports.report_max_records = 2_500;
    assert!(total > 2_500);
    let (address, _) = spawn_gateway(config).await;
    let report = report_when(&format!("http://{address}/graphql"), seeded::FAILED, ended).await;
    let ingestion = &report["ingestion"];
    assert_eq!(ingestion["state"], "COMPLETE", "{report}");
    assert_eq!(ingestion["truncated"], true, "{report}");
    assert_eq!(long(&ingestion["recordsKept"]), 2_500);
    // Parts of 1,000: the third is where the cap fell; no part after it was read.
    assert_eq!(ingestion["parts"], 3, "{report}");
}

#[tokio::test]
async fn a_member_account_s_report_is_read_with_the_role_assumed_there() {
    use datasync_gateway::simulator::accounts::account_id;
    let config = SimulatorConfig { accounts: 2, ..SimulatorConfig::with_tick(TEST_TICK) };
    let simulator = Simulator::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let member = account_id(1);
    let arn = seeded::FAILED.replacen(":111122223333:", &format!(":{member}:"), 1);
    let mut config = reports_config(&simulator, RecordsKept::Errors).await;
    config.accounts.organization_role_name = Some("Reader".into());
    config.accounts.sts_endpoint = Some(simulator.endpoint_url());
    config.accounts.organizations_endpoint = Some(simulator.endpoint_url());
    let (address, _) = spawn_gateway(config).await;
    // The member's bucket answers only the member's credentials (the simulator checks the
    // signing key's account): stored at all means read with the role assumed there.
    let report = report_when(&format!("http://{address}/graphql"), &arn, ended).await;
    assert_eq!(report["ingestion"]["state"], "COMPLETE", "{report}");
    assert!(long(&report["ingestion"]["recordsKept"]) > 0, "{report}");
    assert!(simulator.assumed(&member) >= 1);
}

#[tokio::test]
async fn the_backfill_migration_queues_a_recorded_report_where_the_writer_would() {
    let simulator = simulator().await;
    let config = reports_config(&simulator, RecordsKept::All).await;
    let database_url = config.history.database_url.clone().unwrap();
    let (address, server) = spawn_gateway(config).await;
    report_when(&format!("http://{address}/graphql"), seeded::FAILED, ended).await;
    server.abort();
    let _ = server.await;
    let pool = PgPool::connect(&database_url).await.unwrap();
    let queued = "SELECT bucket, prefix, state FROM report_ingestions WHERE execution_arn = $1";
    let (bucket, prefix, _): (String, String, String) =
        sqlx::query_as(queued).bind(seeded::FAILED).fetch_one(&pool).await.unwrap();
    // As an index from before task reports: the execution recorded, its report not queued.
    sqlx::query("DELETE FROM report_ingestions").execute(&pool).await.unwrap();
    let backfill = include_str!("../../migrations/20261212000001_task_reports_backfill.sql");
    sqlx::raw_sql(backfill).execute(&pool).await.unwrap();
    let again: (String, String, String) =
        sqlx::query_as(queued).bind(seeded::FAILED).fetch_one(&pool).await.unwrap();
    assert_eq!(again, (bucket, prefix, "PENDING".to_owned()));
    pool.close().await;
}
