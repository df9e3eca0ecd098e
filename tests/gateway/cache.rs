//! The cache: one DataSync call for a crowd, reuse while valid, expiry, STRONG reads.

use std::time::Duration;

use datasync_gateway::simulator::fleet::seeded;
use futures::future::join_all;
use serde_json::json;

use crate::common::{error_codes, sdk_client, test_config, TestGateway, ONE};

#[tokio::test]
async fn two_hundred_concurrent_cold_queries_cost_one_datasync_call() {
    let gateway = TestGateway::start().await;
    let queries = (0..200).map(|_| gateway.query(ONE, json!({ "arn": seeded::SUCCEEDED_BASIC })));
    let responses = join_all(queries).await;

    for response in &responses {
        assert_eq!(response["data"]["taskExecution"]["status"], "SUCCESS", "{response}");
    }
    assert_eq!(gateway.describe_calls(), 1);
    let upstream =
        responses.iter().filter(|r| r["data"]["taskExecution"]["servedFrom"] == "UPSTREAM").count();
    assert_eq!(upstream, 1, "exactly one request made the call");
    let fetched_at: std::collections::HashSet<_> =
        responses.iter().map(|r| r["data"]["taskExecution"]["fetchedAt"].to_string()).collect();
    assert_eq!(fetched_at.len(), 1, "all share the one description");
}

#[tokio::test]
async fn a_finished_execution_is_served_from_cache_afterwards() {
    let gateway = TestGateway::start().await;
    let first = gateway.query(ONE, json!({ "arn": seeded::FAILED })).await;
    let second = gateway.query(ONE, json!({ "arn": seeded::FAILED })).await;

    assert_eq!(first["data"]["taskExecution"]["servedFrom"], "UPSTREAM");
    assert_eq!(second["data"]["taskExecution"]["servedFrom"], "CACHE");
    assert_eq!(first["data"]["taskExecution"]["fetchedAt"], second["data"]["taskExecution"]["fetchedAt"]);
    assert_eq!(gateway.describe_calls(), 1);
}

#[tokio::test]
async fn a_running_execution_expires_after_the_running_ttl_but_a_finished_one_does_not() {
    let mut config = test_config();
    config.cache.running_ttl = Duration::from_millis(200);
    let gateway = TestGateway::start_with(config).await;

    for arn in [seeded::TRANSFERRING, seeded::SUCCEEDED_BASIC] {
        gateway.query(ONE, json!({ "arn": arn })).await;
    }
    assert_eq!(gateway.describe_calls(), 2);
    tokio::time::sleep(Duration::from_millis(400)).await;

    let running = gateway.query(ONE, json!({ "arn": seeded::TRANSFERRING })).await;
    let finished = gateway.query(ONE, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    assert_eq!(running["data"]["taskExecution"]["servedFrom"], "UPSTREAM");
    assert_eq!(finished["data"]["taskExecution"]["servedFrom"], "CACHE");
    assert_eq!(gateway.describe_calls(), 3);
}

#[tokio::test]
async fn a_pending_report_keeps_a_finished_execution_on_the_short_ttl() {
    let mut config = test_config();
    config.cache.running_ttl = Duration::from_millis(200);
    let gateway = TestGateway::start_with(config).await;

    gateway.query(ONE, json!({ "arn": seeded::REPORT_PENDING })).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = gateway.query(ONE, json!({ "arn": seeded::REPORT_PENDING })).await;

    assert_eq!(again["data"]["taskExecution"]["servedFrom"], "UPSTREAM");
    assert_eq!(gateway.describe_calls(), 2);
}

#[tokio::test]
async fn strong_consistency_calls_datasync_and_refreshes_the_cache() {
    let gateway = TestGateway::start().await;
    let cached = gateway.query(ONE, json!({ "arn": seeded::TRANSFERRING })).await;
    let strong = gateway.query(ONE, json!({ "arn": seeded::TRANSFERRING, "consistency": "STRONG" })).await;
    let after = gateway.query(ONE, json!({ "arn": seeded::TRANSFERRING })).await;

    assert_eq!(strong["data"]["taskExecution"]["servedFrom"], "UPSTREAM");
    assert_eq!(gateway.describe_calls(), 2);
    let fetched =
        |r: &serde_json::Value| r["data"]["taskExecution"]["fetchedAt"].as_str().unwrap().to_owned();
    assert!(fetched(&strong) > fetched(&cached));
    assert_eq!(after["data"]["taskExecution"]["servedFrom"], "CACHE");
    assert_eq!(fetched(&after), fetched(&strong), "the STRONG read replaced the cached entry");
}

#[tokio::test]
async fn not_found_is_cached_briefly() {
    let mut config = test_config();
    config.cache.not_found_ttl = Duration::from_secs(1);
    let gateway = TestGateway::start_with(config).await;
    let missing = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-00000000000000bad";

    for _ in 0..3 {
        let response = gateway.query(ONE, json!({ "arn": missing })).await;
        assert_eq!(error_codes(&response), ["NOT_FOUND"]);
    }
    assert_eq!(gateway.describe_calls(), 1);
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    gateway.query(ONE, json!({ "arn": missing })).await;
    assert_eq!(gateway.describe_calls(), 2);
}

#[tokio::test]
async fn failures_are_not_cached() {
    let mut config = test_config();
    config.datasync.max_attempts = 1;
    let gateway = TestGateway::start_with(config).await;
    gateway.inject(json!({ "failure": "server_error", "count": 1 })).await;

    let failed = gateway.query(ONE, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    let retried = gateway.query(ONE, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;

    assert_eq!(error_codes(&failed), ["UPSTREAM_UNAVAILABLE"]);
    assert_eq!(retried["data"]["taskExecution"]["status"], "SUCCESS");
    assert_eq!(retried["data"]["taskExecution"]["servedFrom"], "UPSTREAM");
    assert_eq!(gateway.describe_calls(), 2);
}

#[tokio::test]
async fn a_new_execution_is_followed_through_every_phase_with_strong_reads() {
    let gateway = TestGateway::start().await;
    let started = sdk_client(&gateway.simulator.endpoint_url())
        .await
        .start_task_execution()
        .task_arn(seeded::QUICK_TASK)
        .send()
        .await
        .unwrap();
    let arn = started.task_execution_arn().unwrap().to_owned();

    let mut seen: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.last().map(String::as_str) != Some("SUCCESS") {
        assert!(tokio::time::Instant::now() < deadline, "never finished; saw {seen:?}");
        let response = gateway.query(ONE, json!({ "arn": arn, "consistency": "STRONG" })).await;
        let status = response["data"]["taskExecution"]["status"].as_str().expect("a status").to_owned();
        if seen.last() != Some(&status) {
            seen.push(status);
        }
        tokio::time::sleep(TEST_POLL).await;
    }
    let order = ["QUEUED", "LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS"];
    let positions: Vec<usize> = seen.iter().map(|s| order.iter().position(|o| o == s).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "statuses went backwards: {seen:?}");
    assert!(seen.contains(&"TRANSFERRING".to_owned()), "{seen:?}");
}

const TEST_POLL: Duration = Duration::from_millis(20);
