//! Bad input and upstream failures: each gets a clear error with a stable code, never a hang.

use std::time::Duration;

use datasync_gateway::simulator::fleet::seeded;
use serde_json::json;

use crate::common::{error_codes, graphql, spawn_gateway, test_config, TestGateway, ONE};

#[tokio::test]
async fn malformed_arns_are_rejected_without_calling_datasync() {
    let gateway = TestGateway::start().await;
    let bad = [
        "",
        "exec-0a1b2c3d4e5f60101",
        "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001",
        "arn:aws:datasync:us-east-1:1111:task/task-0a1b2c3d4e5f60001/execution/exec-0a1b2c3d4e5f60101",
        "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-0a1b2c3d4e5f60101' OR 1=1",
        &"x".repeat(10_000),
    ];
    for arn in bad {
        let response = gateway.query(ONE, json!({ "arn": arn })).await;
        assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{arn:.40}");
        // A field error: the nullable field is there, null (not a missing key, not `data: null`).
        assert_eq!(response.get("data"), Some(&json!({ "taskExecution": null })), "{arn:.40}");
        assert!(response["errors"][0]["message"].as_str().unwrap().len() < 600);
    }
    assert_eq!(gateway.describe_calls(), 0);
}

#[tokio::test]
async fn a_batch_loads_each_distinct_arn_once_and_fails_items_on_their_own() {
    let gateway = TestGateway::start().await;
    let missing = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-00000000000000bad";
    let arns = [seeded::SUCCEEDED_BASIC, "not-an-arn", seeded::FAILED, seeded::SUCCEEDED_BASIC, missing];
    let response = gateway
        .query(
            "query($arns: [ID!]!) { taskExecutions(arns: $arns) { taskExecutionArn status } }",
            json!({ "arns": arns }),
        )
        .await;

    let items = response["data"]["taskExecutions"].as_array().expect("a list");
    assert_eq!(items.len(), 5);
    assert_eq!(items[0]["status"], "SUCCESS");
    assert_eq!(items[1], json!(null));
    assert_eq!(items[2]["status"], "ERROR");
    assert_eq!(items[3]["taskExecutionArn"], seeded::SUCCEEDED_BASIC);
    assert_eq!(items[4], json!(null));
    let errors = response["errors"].as_array().unwrap();
    let by_index: Vec<(i64, &str)> = errors
        .iter()
        .map(|e| (e["path"][1].as_i64().unwrap(), e["extensions"]["code"].as_str().unwrap()))
        .collect();
    assert_eq!(by_index, [(1, "BAD_USER_INPUT"), (4, "NOT_FOUND")]);
    assert_eq!(gateway.describe_calls(), 3, "three distinct valid ARNs");
}

#[tokio::test]
async fn a_batch_of_more_than_100_arns_is_rejected_whole() {
    let gateway = TestGateway::start().await;
    let arns = vec![seeded::SUCCEEDED_BASIC; 101];
    let response = gateway
        .query("query($arns: [ID!]!) { taskExecutions(arns: $arns) { status } }", json!({ "arns": arns }))
        .await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"]);
    assert_eq!(gateway.describe_calls(), 0);
}

#[tokio::test]
async fn throttling_that_outlasts_the_retries_is_upstream_throttled() {
    let gateway = TestGateway::start().await;
    gateway.inject(json!({ "failure": "throttle" })).await;
    let response = gateway.query(ONE, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    assert_eq!(error_codes(&response), ["UPSTREAM_THROTTLED"]);
    assert_eq!(gateway.describe_calls(), 3, "the default three attempts");
}

#[tokio::test]
async fn a_throttled_call_is_retried_and_succeeds() {
    let gateway = TestGateway::start().await;
    gateway.inject(json!({ "failure": "throttle", "count": 2 })).await;
    let response = gateway.query(ONE, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    assert_eq!(response["data"]["taskExecution"]["status"], "SUCCESS", "{response}");
    assert_eq!(gateway.describe_calls(), 3);
}

#[tokio::test]
async fn server_errors_are_upstream_unavailable() {
    let gateway = TestGateway::start().await;
    gateway.inject(json!({ "failure": "server_error" })).await;
    let response = gateway.query(ONE, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    assert_eq!(error_codes(&response), ["UPSTREAM_UNAVAILABLE"]);
    assert!(!response.to_string().contains("simulated failure"), "upstream messages stay in the log");
}

#[tokio::test]
async fn rejected_credentials_are_upstream_unavailable_and_not_blamed_on_the_client() {
    let gateway = TestGateway::start().await;
    gateway.inject(json!({ "failure": "access_denied" })).await;
    let response = gateway.query(ONE, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    assert_eq!(error_codes(&response), ["UPSTREAM_UNAVAILABLE"]);
    assert!(response["errors"][0]["message"].as_str().unwrap().contains("credentials"), "{response}");
    assert_eq!(gateway.describe_calls(), 1, "not retried");
}

#[tokio::test]
async fn dropped_connections_are_upstream_unavailable() {
    let gateway = TestGateway::start().await;
    gateway.inject(json!({ "failure": "drop" })).await;
    let response = gateway.query(ONE, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    assert_eq!(error_codes(&response), ["UPSTREAM_UNAVAILABLE"]);
}

#[tokio::test]
async fn a_datasync_slower_than_the_timeout_is_upstream_unavailable() {
    let mut config = test_config();
    config.datasync.attempt_timeout = Duration::from_millis(100);
    config.datasync.call_timeout = Duration::from_millis(300);
    let gateway = TestGateway::start_with(config).await;
    gateway.inject(json!({ "latencyMs": 5_000 })).await;

    let response = gateway.query(ONE, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    assert_eq!(error_codes(&response), ["UPSTREAM_UNAVAILABLE"]);
    assert!(response["errors"][0]["message"].as_str().unwrap().contains("timed out"), "{response}");
}

#[tokio::test]
async fn a_request_past_the_time_limit_gets_504_with_a_code() {
    let mut config = test_config();
    config.limits.request_timeout = Duration::from_millis(200);
    let gateway = TestGateway::start_with(config).await;
    gateway.inject(json!({ "latencyMs": 2_000 })).await;
    let (status, body) =
        gateway.post_json(json!({ "query": ONE, "variables": { "arn": seeded::SUCCEEDED_BASIC } })).await;
    assert_eq!(status, 504);
    assert_eq!(error_codes(&body), ["REQUEST_TIMEOUT"]);
}

#[tokio::test]
async fn an_unreachable_datasync_is_upstream_unavailable() {
    let mut config = test_config();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    config.datasync.datasync_endpoint = Some(format!("http://{address}"));
    let (address, _) = spawn_gateway(config).await;
    let url = format!("http://{address}/graphql");
    let response = graphql(&url, ONE, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    assert_eq!(error_codes(&response), ["UPSTREAM_UNAVAILABLE"]);
}

#[tokio::test]
async fn documents_that_do_not_validate_or_are_too_deep_are_rejected_with_a_code() {
    let gateway = TestGateway::start().await;
    for query in [
        "{ taskExecution(arn: \"x\") { noSuchField } }".to_owned(),
        "{ taskExecution { status } }".to_owned(),
        "{ taskExecution(arn: ".to_owned(),
        // Valid, but nested deeper than the limit of 12.
        format!("{{ __schema {{ types {}{{ name }}{} }} }}", "{ fields { type ".repeat(7), " } }".repeat(7)),
    ] {
        let response = gateway.query(&query, json!({})).await;
        assert_eq!(error_codes(&response), ["GRAPHQL_VALIDATION_FAILED"], "{query}: {response}");
    }
    assert_eq!(gateway.describe_calls(), 0);
}

#[tokio::test]
async fn variables_of_the_wrong_type_or_missing_fail_validation() {
    let gateway = TestGateway::start().await;
    let missing = gateway.query("query($arn: ID!) { taskExecution(arn: $arn) { status } }", json!({})).await;
    let wrong = gateway.query(ONE, json!({ "arn": seeded::FAILED, "consistency": "SOMETIMES" })).await;
    assert_eq!(error_codes(&missing), ["GRAPHQL_VALIDATION_FAILED"], "{missing}");
    assert_eq!(error_codes(&wrong), ["GRAPHQL_VALIDATION_FAILED"], "{wrong}");
    assert_eq!(gateway.describe_calls(), 0);
}

#[tokio::test]
async fn requests_that_are_not_graphql_get_400_with_a_code() {
    let gateway = TestGateway::start().await;
    let client = reqwest::Client::new();

    let garbage =
        client.post(gateway.url("/graphql")).header("content-type", "application/json").body("{nope");
    let response = garbage.send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_codes(&body), ["BAD_REQUEST"]);

    let (status, body) = gateway.post_json(json!(vec![json!({ "query": "{ __typename }" }); 11])).await;
    assert_eq!(status, 400);
    assert_eq!(error_codes(&body), ["BAD_REQUEST"]);

    let huge = json!({ "query": format!("{{ __typename }} #{}", "x".repeat(100_000)) });
    let response = client.post(gateway.url("/graphql")).json(&huge).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_codes(&body), ["BAD_REQUEST"]);
}
