//! The response cache: a repeated query over executions the cache holds is answered with the
//! bytes it got before, and only while those very descriptions are still the cached ones;
//! answers that read anything else, or failed, are never replayed; authentication and the rate
//! limit still apply to a replay.

use datasync_gateway::simulator::fleet::seeded;
use serde_json::{json, Value};

use std::time::Duration;

use crate::common::{config_with_a_reader_key, history_config, test_config, TestGateway};
use crate::metrics::{scrape, value};

const READ: &str = "query Read($arn: ID!, $c: Consistency) {
    taskExecution(arn: $arn, consistency: $c) { status bytesWritten servedFrom fetchedAt } }";

/// Requests answered by a stored response so far.
async fn replays(gateway: &TestGateway) -> f64 {
    let labels = [("cache", "responses"), ("result", "hit")];
    value(&scrape(gateway).await, "datasync_gateway_cache_lookups_total", &labels)
}

/// The raw body of a POSTed query.
async fn body(gateway: &TestGateway, query: &str, variables: Value) -> String {
    let request = json!({ "query": query, "variables": variables });
    let response = reqwest::Client::new().post(gateway.url("/graphql")).json(&request).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_repeated_query_is_replayed_only_while_the_executions_it_read_are_unchanged() {
    let gateway = TestGateway::start().await;
    let cached = json!({ "arn": seeded::TRANSFERRING });
    let first: Value = serde_json::from_str(&body(&gateway, READ, cached.clone()).await).unwrap();
    assert_eq!(first["data"]["taskExecution"]["servedFrom"], "UPSTREAM", "{first}");
    // Read from the cache: stored. The same question again: the very same bytes, not run.
    let second = body(&gateway, READ, cached.clone()).await;
    assert!(second.contains("\"servedFrom\":\"CACHE\""), "{second}");
    assert_eq!(replays(&gateway).await, 0.0);
    assert_eq!(body(&gateway, READ, cached.clone()).await, second);
    assert_eq!(replays(&gateway).await, 1.0);
    let calls = gateway.describe_calls();

    // A STRONG read replaces the cached description; the stored answer no longer holds.
    let strong: Value = serde_json::from_str(
        &body(&gateway, READ, json!({ "arn": seeded::TRANSFERRING, "c": "STRONG" })).await,
    )
    .unwrap();
    assert_eq!(gateway.describe_calls(), calls + 1);
    let after: Value = serde_json::from_str(&body(&gateway, READ, cached.clone()).await).unwrap();
    assert_eq!(replays(&gateway).await, 1.0, "not replayed: {after}");
    assert_eq!(after["data"]["taskExecution"]["servedFrom"], "CACHE");
    assert_eq!(after["data"]["taskExecution"]["fetchedAt"], strong["data"]["taskExecution"]["fetchedAt"]);
    assert_ne!(after["data"]["taskExecution"]["fetchedAt"], first["data"]["taskExecution"]["fetchedAt"]);
    // Other variables are another question.
    body(&gateway, READ, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    assert_eq!(replays(&gateway).await, 1.0);
}

#[tokio::test]
async fn answers_that_read_tasks_or_failed_are_run_every_time_and_a_document_alone_is_replayed() {
    let gateway = TestGateway::start().await;
    let task = "query Task($arn: ID!) { task(arn: $arn) { name status } }";
    let task_arn = seeded::TRANSFERRING.split("/execution/").next().unwrap();
    let missing = json!({ "arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0ffffffffffffffff/execution/exec-0ffffffffffffffff" });
    for _ in 0..3 {
        body(&gateway, task, json!({ "arn": task_arn })).await;
        let failed: Value = serde_json::from_str(&body(&gateway, READ, missing.clone()).await).unwrap();
        assert_eq!(failed["errors"][0]["extensions"]["code"], "NOT_FOUND", "{failed}");
    }
    assert_eq!(replays(&gateway).await, 0.0);
    // Stored from its second request on (a question asked once is not), then replayed.
    for replayed in [0.0, 0.0, 1.0, 2.0] {
        assert_eq!(body(&gateway, "{ __typename }", json!({})).await, r#"{"data":{"__typename":"Query"}}"#);
        assert_eq!(replays(&gateway).await, replayed);
    }
}

#[tokio::test]
async fn a_replay_still_needs_credentials_and_counts_against_the_callers_rate() {
    let (mut config, key) = config_with_a_reader_key("replay");
    config.limits.rate_limit = 2; // a burst of 4
    let gateway = TestGateway::start_with(config).await;
    let request = json!({ "query": READ, "variables": { "arn": seeded::SUCCEEDED_BASIC } });
    let send = |credential: Option<&str>| {
        let mut post = reqwest::Client::new().post(gateway.url("/graphql")).json(&request);
        if let Some(credential) = credential {
            post = post.header("authorization", format!("Bearer {credential}"));
        }
        async move { post.send().await.unwrap() }
    };
    // Fetched, then stored, then replayed: three of the burst of four.
    for _ in 0..3 {
        assert_eq!(send(Some(&key)).await.status(), 200);
    }
    let anonymous = send(None).await;
    assert_eq!(anonymous.status(), 401);
    let refused: Value = anonymous.json().await.unwrap();
    assert_eq!(refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(send(Some(&key)).await.status().as_u16());
    }
    assert!(statuses.contains(&429), "the rate limit applies to replays: {statuses:?}");
}

#[tokio::test]
async fn an_answer_read_from_history_is_replayed_while_cached_and_not_once_the_entry_expired() {
    // Recorded by one gateway; read back by another whose cache keeps finished executions for
    // 2 s, when the description is already older than that (its `fetchedAt` is no bound then).
    let config = history_config().await;
    let database_url = config.history.database_url.clone();
    let first = TestGateway::start_with(config).await;
    first.query(READ, json!({ "arn": seeded::SUCCEEDED_BASIC })).await;
    first.history_settled(1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut config = test_config();
    config.history.database_url = database_url;
    config.cache.finished_ttl = Duration::from_secs(2);
    let gateway = TestGateway::start_with(config).await;
    let cached = json!({ "arn": seeded::SUCCEEDED_BASIC });

    let from_history = body(&gateway, READ, cached.clone()).await;
    assert!(from_history.contains("\"servedFrom\":\"HISTORY\""), "{from_history}");
    let from_cache = body(&gateway, READ, cached.clone()).await;
    assert!(from_cache.contains("\"servedFrom\":\"CACHE\""), "{from_cache}");
    assert_eq!(body(&gateway, READ, cached.clone()).await, from_cache);
    assert_eq!(replays(&gateway).await, 1.0);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after_expiry = body(&gateway, READ, cached).await;
    assert!(after_expiry.contains("\"servedFrom\":\"HISTORY\""), "not replayed: {after_expiry}");
    assert_eq!(replays(&gateway).await, 1.0);
}
