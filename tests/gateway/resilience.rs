//! What clients get when DataSync or the database fail: a stale answer, marked, within the
//! `--stale-if-error` window; past it, an error that says whether and when to retry.

use std::time::Duration;

use datasync_gateway::simulator::fleet::seeded;
use serde_json::{json, Value};

use crate::common::{test_config, TestGateway, ONE};

async fn gateway(stale_if_error: Duration) -> TestGateway {
    let mut config = test_config();
    config.cache.running_ttl = Duration::from_millis(50);
    config.cache.stale_if_error = stale_if_error;
    config.datasync.max_attempts = 1;
    TestGateway::start_with(config).await
}

/// POSTs `ONE` for `arn`: status, the JSON body, and the response's headers.
async fn read(gateway: &TestGateway, arn: &str) -> (reqwest::StatusCode, Value, reqwest::header::HeaderMap) {
    let body = json!({ "query": ONE, "variables": { "arn": arn } });
    let response = reqwest::Client::new().post(gateway.url("/graphql")).json(&body).send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, response.json().await.unwrap(), headers)
}

#[tokio::test]
async fn when_datasync_fails_the_last_description_is_served_marked_stale_with_a_warning() {
    let gateway = gateway(Duration::from_secs(300)).await;
    let (_, fresh, _) = read(&gateway, seeded::TRANSFERRING).await;
    assert_eq!(fresh["data"]["taskExecution"]["servedFrom"], "UPSTREAM");
    tokio::time::sleep(Duration::from_millis(100)).await;
    gateway.inject(json!({ "failure": "throttle", "count": null })).await;

    let (status, stale, headers) = read(&gateway, seeded::TRANSFERRING).await;
    assert_eq!(status, 200);
    let execution = &stale["data"]["taskExecution"];
    assert_eq!(execution["servedFrom"], "STALE", "{stale}");
    assert_eq!(execution["fetchedAt"], fresh["data"]["taskExecution"]["fetchedAt"], "its age shows");
    assert!(stale["errors"].is_null(), "{stale}");
    let warning = &stale["extensions"]["warnings"][0];
    assert_eq!(
        (warning["code"].as_str(), warning["upstreamCode"].as_str()),
        (Some("STALE"), Some("UPSTREAM_THROTTLED")),
        "{stale}"
    );
    assert_eq!(warning["executionArn"], seeded::TRANSFERRING);
    assert!(warning["message"].as_str().unwrap().contains("throttling"), "{warning}");
    assert_eq!(headers["cache-control"], "no-store", "a stale answer is not for HTTP caches");
}

#[tokio::test]
async fn past_the_window_the_error_says_it_is_retryable_and_when() {
    let gateway = gateway(Duration::from_millis(200)).await;
    read(&gateway, seeded::TRANSFERRING).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    gateway.inject(json!({ "failure": "server_error", "count": null })).await;

    let (_, failed, headers) = read(&gateway, seeded::TRANSFERRING).await;
    assert_eq!(failed["data"]["taskExecution"], Value::Null);
    let extensions = &failed["errors"][0]["extensions"];
    assert_eq!(extensions["code"], "UPSTREAM_UNAVAILABLE", "{failed}");
    assert_eq!((extensions["retryable"].as_bool(), extensions["retryAfter"].as_u64()), (Some(true), Some(5)));
    assert_eq!(headers["retry-after"], "5", "the whole request failed with a retryable error");

    // An error no retry cures says nothing of the kind.
    let (_, refused, headers) = read(&gateway, "arn:aws:datasync:nowhere").await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(refused["errors"][0]["extensions"]["retryable"].is_null());
    assert!(headers.get("retry-after").is_none());
    let history = gateway.query("{ executionHistory(first: 1) { totalCount } }", json!({})).await;
    let extensions = &history["errors"][0]["extensions"];
    assert_eq!(extensions["code"], "HISTORY_UNAVAILABLE", "{history}");
    assert!(extensions["retryable"].is_null(), "no database configured: retrying will not help");
}
