//! Control mutations through the simulator and moto: starts (idempotent), cancels, bandwidth
//! limits (which the simulator's transfers follow), the cache and the index following them, and
//! the audit trail.

use std::time::{Duration, Instant};

use datasync_gateway::simulator::fleet::seeded;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{error_codes, graphql, history_config, spawn_gateway, test_config, TestGateway, ONE};

const START: &str = "mutation($task: ID!, $key: String, $overrides: StartOverridesInput) {
    startTaskExecution(taskArn: $task, idempotencyKey: $key, overrides: $overrides) { taskExecutionArn status servedFrom }
}";
const CANCEL: &str = "mutation($arn: ID!) { cancelTaskExecution(arn: $arn) { taskExecutionArn status } }";

#[tokio::test]
async fn a_start_with_a_key_starts_once_a_cancel_shows_at_once_and_both_are_audited() {
    let config = history_config().await;
    let database_url = config.history.database_url.clone().unwrap();
    let gateway = TestGateway::start_with(config).await;
    let variables = json!({ "task": seeded::QUICK_TASK, "key": "deploy-2026-11-26-1", "overrides": { "bytesPerSecond": 1048576 } });

    let first = gateway.query(START, variables.clone()).await;
    let started = &first["data"]["startTaskExecution"];
    let arn = started["taskExecutionArn"].as_str().unwrap_or_else(|| panic!("{first}")).to_owned();
    assert_eq!(started["servedFrom"], "UPSTREAM", "read from DataSync at once");
    let again = gateway.query(START, variables.clone()).await;
    assert_eq!(
        again["data"]["startTaskExecution"]["taskExecutionArn"],
        arn.as_str(),
        "a retry: the same execution"
    );
    assert_eq!(gateway.simulator.calls("StartTaskExecution"), 1, "started once");
    let options =
        "query($arn: ID!) { taskExecution(arn: $arn, consistency: STRONG) { options { bytesPerSecond } } }";
    let limited = gateway.query(options, json!({ "arn": arn })).await;
    assert_eq!(
        limited["data"]["taskExecution"]["options"]["bytesPerSecond"], 1_048_576,
        "the override: {limited}"
    );
    let other_task = gateway
        .query(
            START,
            json!({ "task": seeded::QUICK_TASK.replace("0003", "0001"), "key": "deploy-2026-11-26-1" }),
        )
        .await;
    assert_eq!(error_codes(&other_task), ["BAD_USER_INPUT"], "a key is for one task: {other_task}");

    let cancelled = gateway.query(CANCEL, json!({ "arn": arn })).await;
    assert_eq!(cancelled["data"]["cancelTaskExecution"]["status"], "CANCELLING", "{cancelled}");
    let read = gateway.query(ONE, json!({ "arn": arn })).await;
    assert_eq!(read["data"]["taskExecution"]["status"], "CANCELLING", "the cache has the new state: {read}");
    let twice = gateway.query(CANCEL, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    assert_eq!(error_codes(&twice), ["BAD_USER_INPUT"], "a finished execution cannot be cancelled: {twice}");
    let bad = gateway
        .query(START, json!({ "task": seeded::QUICK_TASK, "overrides": { "verifyMode": "SOMETIMES" } }))
        .await;
    assert_eq!(error_codes(&bad), ["BAD_USER_INPUT"], "{bad}");

    let pool = PgPool::connect(&database_url).await.unwrap();
    let audit: Vec<(String, String, String, String, Option<String>)> =
        sqlx::query_as("SELECT caller, action, target, outcome, error_code FROM audit_log ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let actions: Vec<(&str, &str, Option<&str>)> = audit
        .iter()
        .map(|(_, action, _, outcome, code)| (action.as_str(), outcome.as_str(), code.as_deref()))
        .collect();
    assert_eq!(
        actions,
        [
            ("startTaskExecution", "ok", None),
            ("startTaskExecution", "replayed", None),
            ("startTaskExecution", "error", Some("BAD_USER_INPUT")),
            ("cancelTaskExecution", "ok", None),
            ("cancelTaskExecution", "error", Some("BAD_USER_INPUT")),
            ("startTaskExecution", "error", Some("BAD_USER_INPUT")),
        ]
    );
    assert!(audit.iter().all(|(caller, ..)| caller == "ip:127.0.0.1"), "who: {audit:?}");
    assert_eq!(audit[0].2, arn, "what");
    let indexed: String =
        sqlx::query_scalar("SELECT status FROM execution_snapshots WHERE execution_arn = $1")
            .bind(&arn)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(["CANCELLING", "ERROR"].contains(&indexed.as_str()), "indexed and followed: {indexed}");
    pool.close().await;
}

#[tokio::test]
async fn start_and_cancel_through_moto_without_a_database() {
    let task_arn = crate::moto::create_task(["gateway-control-source", "gateway-control-destination"]).await;
    let task_arn = task_arn.as_str();
    let mut config = test_config();
    config.datasync.datasync_endpoint = Some(crate::moto::moto_endpoint());
    config.datasync.regions = vec!["us-east-1".parse().unwrap()];
    let (address, _) = spawn_gateway(config).await;
    let url = format!("http://{address}/graphql");
    let variables = json!({ "task": task_arn, "key": "moto-start-1" });
    let started: Value = graphql(&url, START, variables.clone()).await;
    let arn = started["data"]["startTaskExecution"]["taskExecutionArn"]
        .as_str()
        .unwrap_or_else(|| panic!("{started}"))
        .to_owned();
    let again = graphql(&url, START, variables).await;
    assert_eq!(
        again["data"]["startTaskExecution"]["taskExecutionArn"],
        arn.as_str(),
        "idempotent in memory too"
    );
    // (moto answers ListTaskExecutions with a 500, so the count of starts is checked against
    // the simulator, in the test above.)

    let cancelled = graphql(&url, CANCEL, json!({ "arn": arn })).await;
    assert!(cancelled["errors"].is_null(), "{cancelled}");
    assert_eq!(cancelled["data"]["cancelTaskExecution"]["taskExecutionArn"], arn.as_str());
}

#[tokio::test]
async fn a_start_whose_answer_is_lost_is_found_again_or_said_to_be_unknown_and_never_starts_twice() {
    let gateway = TestGateway::start().await;
    let start = |key: &str| gateway.query(START, json!({ "task": seeded::QUICK_TASK, "key": key }));

    // DataSync started it and the answer was lost: the gateway lists the task's executions and
    // finds the one that started since it asked.
    gateway
        .inject(json!({ "failure": "drop_answer", "count": 1, "operations": ["StartTaskExecution"] }))
        .await;
    let found = start("lost-answer-1").await;
    let arn = found["data"]["startTaskExecution"]["taskExecutionArn"].as_str();
    assert!(arn.is_some_and(|arn| arn.starts_with(seeded::QUICK_TASK)), "reconciled: {found}");
    assert_eq!(gateway.simulator.calls("StartTaskExecution"), 1, "the SDK did not send it again");

    // The answer lost, and the listing too (every attempt of it): the outcome is unknown, said
    // so, not retryable, and a retry with the same key starts nothing.
    let attempts = test_config().datasync.max_attempts;
    let faults = json!({ "failure": "drop_answer", "count": 1 + attempts,
                         "operations": ["StartTaskExecution", "ListTaskExecutions"] });
    gateway.inject(faults).await;
    let unknown = start("lost-answer-2").await;
    assert_eq!(error_codes(&unknown), ["UPSTREAM_OUTCOME_UNKNOWN"], "{unknown}");
    let extensions = unknown["errors"][0]["extensions"].as_object().unwrap();
    assert!(!extensions.contains_key("retryable"), "a blind retry could start it twice: {unknown}");
    let retried = start("lost-answer-2").await;
    assert_eq!(error_codes(&retried), ["UPSTREAM_OUTCOME_UNKNOWN"], "{retried}");
    assert_eq!(
        gateway.simulator.calls("StartTaskExecution"),
        2,
        "one start per first request, none for the retry"
    );

    let client = crate::common::sdk_client(&gateway.simulator.endpoint_url()).await;
    let listed = client.list_task_executions().task_arn(seeded::QUICK_TASK).send().await.unwrap();
    let started_here = listed
        .task_executions()
        .iter()
        .filter(|entry| entry.task_execution_arn().is_some_and(|arn| arn.contains("exec-0f")))
        .count();
    assert_eq!(started_here, 2, "exactly one execution per request that reached DataSync");
}

#[tokio::test]
async fn a_cancel_whose_answer_is_lost_is_sent_once_and_answered_from_what_datasync_says_now() {
    let gateway = TestGateway::start().await;
    gateway
        .inject(json!({ "failure": "drop_answer", "count": 1, "operations": ["CancelTaskExecution"] }))
        .await;
    let cancelled = gateway.query(CANCEL, json!({ "arn": seeded::QUEUED })).await;
    assert_eq!(cancelled["data"]["cancelTaskExecution"]["status"], "CANCELLING", "{cancelled}");
    assert_eq!(
        gateway.simulator.calls("CancelTaskExecution"),
        1,
        "not resent: a second cancel would be refused as if the execution had finished"
    );
}

const UPDATE: &str = "mutation($arn: ID!, $rate: Long!) {
    updateTaskExecution(arn: $arn, bytesPerSecond: $rate) { taskExecutionArn status options { bytesPerSecond } servedFrom }
}";

#[tokio::test]
async fn a_running_executions_bandwidth_changes_once_and_is_audited_and_other_changes_are_refused_before_any_call(
) {
    let config = history_config().await;
    let database_url = config.history.database_url.clone().unwrap();
    let gateway = TestGateway::start_with(config).await;
    let limited = json!({ "arn": seeded::TRANSFERRING, "rate": 1_048_576 });

    let first = gateway.query(UPDATE, limited.clone()).await;
    let updated = &first["data"]["updateTaskExecution"];
    assert_eq!(updated["options"]["bytesPerSecond"], 1_048_576, "{first}");
    assert_eq!(updated["status"], "TRANSFERRING");
    assert_eq!(updated["servedFrom"], "UPSTREAM", "as DataSync describes it after the change");
    let read = gateway.query(ONE, json!({ "arn": seeded::TRANSFERRING })).await;
    assert_eq!(read["data"]["taskExecution"]["servedFrom"], "CACHE", "the cache holds the new state: {read}");
    let again = gateway.query(UPDATE, limited).await;
    assert_eq!(again["data"]["updateTaskExecution"]["options"]["bytesPerSecond"], 1_048_576, "{again}");
    assert_eq!(gateway.simulator.calls("UpdateTaskExecution"), 1, "the same limit again: no second call");
    let unlimited = gateway.query(UPDATE, json!({ "arn": seeded::TRANSFERRING, "rate": -1 })).await;
    assert_eq!(unlimited["data"]["updateTaskExecution"]["options"]["bytesPerSecond"], -1, "{unlimited}");

    let refused = [
        (json!({ "arn": seeded::SUCCEEDED_ENHANCED, "rate": 1_000 }), "Enhanced mode"),
        (json!({ "arn": seeded::SUCCEEDED_BASIC, "rate": 1_000 }), "has finished"),
        (json!({ "arn": seeded::TRANSFERRING, "rate": 0 }), "-1 (no limit) or a positive number"),
        (json!({ "arn": seeded::TRANSFERRING, "rate": -2 }), "-1 (no limit) or a positive number"),
        (
            json!({ "arn": "arn:aws:datasync:us-east-1:1:task/x", "rate": 1_000 }),
            "not a DataSync task execution ARN",
        ),
    ];
    for (variables, reason) in &refused {
        let response = gateway.query(UPDATE, variables.clone()).await;
        assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{variables}: {response}");
        let message = response["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{variables}: {message}");
    }
    assert_eq!(gateway.simulator.calls("UpdateTaskExecution"), 2, "nothing refused reached DataSync");

    let pool = PgPool::connect(&database_url).await.unwrap();
    let audit: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT outcome, arguments->>'bytesPerSecond', error_code FROM audit_log \
         WHERE action = 'updateTaskExecution' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let outcomes: Vec<&str> = audit.iter().map(|(outcome, ..)| outcome.as_str()).collect();
    assert_eq!(outcomes[..3], ["ok", "unchanged", "ok"], "{audit:?}");
    assert_eq!(audit[0].1.as_deref(), Some("1048576"));
    assert!(audit[3..]
        .iter()
        .all(|(outcome, _, code)| outcome == "error" && code.as_deref() == Some("BAD_USER_INPUT")));
    assert_eq!(audit.len(), 3 + refused.len() - 1, "a text that is not an ARN is refused before the service");
    pool.close().await;
}

#[tokio::test]
async fn a_running_transfer_moves_no_faster_than_the_bandwidth_limit_it_is_given() {
    // 100 ms ticks: the quick task transfers its 3 GB in 2 s, 1.5 GB/s, time enough to limit it.
    let tick = Duration::from_millis(100);
    let simulator =
        Simulator::start("127.0.0.1:0".parse().unwrap(), SimulatorConfig::with_tick(tick)).await.unwrap();
    let mut config = test_config();
    config.datasync.datasync_endpoint = Some(simulator.endpoint_url());
    let (address, _) = spawn_gateway(config).await;
    let url = format!("http://{address}/graphql");
    let started = graphql(&url, START, json!({ "task": seeded::QUICK_TASK })).await;
    let arn = started["data"]["startTaskExecution"]["taskExecutionArn"]
        .as_str()
        .unwrap_or_else(|| panic!("{started}"))
        .to_owned();
    let progress = || async {
        let query =
            "query($arn: ID!) { taskExecution(arn: $arn, consistency: STRONG) { status bytesTransferred } }";
        let read = graphql(&url, query, json!({ "arn": arn })).await;
        let execution = &read["data"]["taskExecution"];
        let status = execution["status"].as_str().unwrap_or_else(|| panic!("{read}")).to_owned();
        (status, execution["bytesTransferred"].as_i64().unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match progress().await.0.as_str() {
            "TRANSFERRING" => break,
            "QUEUED" | "LAUNCHING" | "PREPARING" => {}
            other => panic!("{other}: the transfer was over before it could be limited"),
        }
        assert!(Instant::now() < deadline, "never TRANSFERRING");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    const LIMIT: i64 = 1_000_000;
    let limited = graphql(&url, UPDATE, json!({ "arn": arn, "rate": LIMIT })).await;
    assert_eq!(limited["data"]["updateTaskExecution"]["options"]["bytesPerSecond"], LIMIT, "{limited}");
    // The simulator reads its clock for each answer between `before` and the end of `elapsed`:
    // more time than passed between its two readings.
    let before = Instant::now();
    let (_, first) = progress().await;
    tokio::time::sleep(tick * 3).await;
    let (status, second) = progress().await;
    let elapsed = before.elapsed().as_secs_f64();
    assert_eq!(status, "TRANSFERRING", "the limit keeps it transferring");
    let moved = second - first;
    assert!(moved > 0, "still moving: {first} then {second}");
    // Unlimited, it would have moved 1.5 GB/s × 0.3 s and more: 450 MB, not a few hundred KB.
    assert!(
        moved as f64 <= 2.0 * LIMIT as f64 * elapsed,
        "{moved} bytes in {elapsed:.3} s, limited to {LIMIT} bytes/s"
    );
}

#[tokio::test]
async fn a_start_may_ask_for_a_task_report_of_its_own_and_a_bad_destination_is_refused_before_the_call() {
    let gateway = TestGateway::start().await;
    let start = "mutation($task: ID!, $overrides: StartOverridesInput) {
        startTaskExecution(taskArn: $task, overrides: $overrides) {
            taskExecutionArn
            taskReportConfig { destination { s3 { subdirectory s3BucketArn bucketAccessRoleArn } }
                outputType reportLevel objectVersionIds overrides { verified { reportLevel } transferred { reportLevel } } }
            reportResult { status }
        } }";
    let report = json!({
        "s3BucketArn": "arn:aws:s3:::team-reports",
        "bucketAccessRoleArn": "arn:aws:iam::111122223333:role/datasync-reports",
        "subdirectory": "nightly/",
        "outputType": "STANDARD",
        "reportLevel": "ERRORS_ONLY",
        "overrides": { "verified": "SUCCESSES_AND_ERRORS" },
    });
    let started = gateway
        .query(start, json!({ "task": seeded::QUICK_TASK, "overrides": { "taskReport": report } }))
        .await;
    let execution = &started["data"]["startTaskExecution"];
    assert_eq!(
        execution["taskReportConfig"],
        json!({
            "destination": { "s3": { "subdirectory": "nightly/", "s3BucketArn": "arn:aws:s3:::team-reports",
                "bucketAccessRoleArn": "arn:aws:iam::111122223333:role/datasync-reports" } },
            "outputType": "STANDARD", "reportLevel": "ERRORS_ONLY", "objectVersionIds": null,
            "overrides": { "verified": { "reportLevel": "SUCCESSES_AND_ERRORS" }, "transferred": null },
        }),
        "DataSync describes the report asked for: {started}"
    );
    assert_eq!(execution["reportResult"]["status"], "PENDING", "{started}");

    for (bad, field) in [
        (
            json!({ "s3BucketArn": "team-reports", "bucketAccessRoleArn": "arn:aws:iam::111122223333:role/r" }),
            "s3BucketArn",
        ),
        (
            json!({ "s3BucketArn": "arn:aws:s3:::b", "bucketAccessRoleArn": "datasync-reports" }),
            "bucketAccessRoleArn",
        ),
        (
            json!({ "s3BucketArn": "arn:aws:s3:::b", "bucketAccessRoleArn": "arn:aws:iam::111122223333:role/r", "subdirectory": "a;b" }),
            "subdirectory",
        ),
        (
            json!({ "s3BucketArn": "arn:aws:s3:::b", "bucketAccessRoleArn": "arn:aws:iam::111122223333:role/r", "outputType": "UNKNOWN" }),
            "outputType",
        ),
    ] {
        let refused = gateway
            .query(start, json!({ "task": seeded::QUICK_TASK, "overrides": { "taskReport": bad } }))
            .await;
        assert_eq!(error_codes(&refused), ["BAD_USER_INPUT"], "{refused}");
        assert!(refused["errors"][0]["message"].as_str().unwrap().contains(field), "{field}: {refused}");
    }
    assert_eq!(gateway.simulator.calls("StartTaskExecution"), 1, "only the good one was sent");
}
