//! The history store through the gateway: recording finished executions, reading them back
//! without DataSync, and surviving a database outage.

use std::time::Duration;

use datasync_gateway::simulator::fleet::seeded;
use futures::future::join_all;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::common::{error_codes, history_config, spawn_gateway, start_simulator, TestGateway, ONE};
use crate::proxy::TcpProxy;

async fn rows(database_url: &str) -> Vec<(String, String, Option<String>)> {
    let pool = PgPool::connect(database_url).await.unwrap();
    let rows =
        sqlx::query_as("SELECT execution_arn, status, report_status FROM execution_snapshots ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows
}

#[tokio::test]
async fn a_finished_execution_is_recorded_once_however_often_it_is_read() {
    let config = history_config().await;
    let database_url = config.history.database_url.clone().unwrap();
    let gateway = TestGateway::start_with(config).await;

    let reads =
        (0..100).map(|_| gateway.query(ONE, json!({ "arn": seeded::FAILED, "consistency": "STRONG" })));
    for response in join_all(reads).await {
        assert_eq!(response["data"]["taskExecution"]["status"], "ERROR", "{response}");
    }
    gateway.query(ONE, json!({ "arn": seeded::TRANSFERRING })).await;
    gateway.history_settled(1).await;

    let recorded = rows(&database_url).await;
    assert_eq!(recorded, [(seeded::FAILED.to_owned(), "ERROR".to_owned(), Some("SUCCESS".to_owned()))]);
}

#[tokio::test]
async fn after_a_restart_a_finished_execution_comes_from_history_without_calling_datasync() {
    let config = history_config().await;
    let first = TestGateway::start_with(config.clone()).await;
    let live = first.query(crate::common::FULL, json!({ "arn": seeded::SUCCEEDED_ENHANCED })).await;
    first.history_settled(1).await;
    drop(first);

    let restarted = TestGateway::start_with(config).await;
    let again = restarted.query(crate::common::FULL, json!({ "arn": seeded::SUCCEEDED_ENHANCED })).await;
    let cached = restarted.query(ONE, json!({ "arn": seeded::SUCCEEDED_ENHANCED })).await;

    assert_eq!(again["data"]["taskExecution"]["servedFrom"], "HISTORY");
    assert_eq!(cached["data"]["taskExecution"]["servedFrom"], "CACHE");
    assert_eq!(restarted.describe_calls(), 0);
    let without = |mut response: Value| {
        response["data"]["taskExecution"]["servedFrom"] = Value::Null;
        response
    };
    assert_eq!(without(again), without(live), "the snapshot holds every field");
}

#[tokio::test]
async fn a_finished_execution_with_its_report_pending_is_recorded_but_read_from_datasync() {
    let config = history_config().await;
    let database_url = config.history.database_url.clone().unwrap();
    let gateway = TestGateway::start_with(config).await;
    gateway.query(ONE, json!({ "arn": seeded::REPORT_PENDING })).await;
    gateway.history_settled(1).await;
    let strong = gateway.query(ONE, json!({ "arn": seeded::REPORT_PENDING, "consistency": "STRONG" })).await;

    assert_eq!(strong["data"]["taskExecution"]["servedFrom"], "UPSTREAM", "the report may still change");
    assert_eq!(rows(&database_url).await[0].2.as_deref(), Some("PENDING"));
}

#[tokio::test]
async fn snapshots_queued_while_postgres_is_down_arrive_once_it_is_back() {
    let mut config = history_config().await;
    let database_url = config.history.database_url.clone().unwrap();
    let proxy = TcpProxy::start(&database_url).await;
    config.history.database_url = Some(proxy.url(&database_url));
    let gateway = TestGateway::start_with(config).await;

    proxy.stop().await;
    let finished = [seeded::SUCCEEDED_BASIC, seeded::FAILED, seeded::CANCELLED, seeded::SUCCEEDED_ENHANCED];
    for arn in finished {
        let response = gateway.query(ONE, json!({ "arn": arn })).await;
        assert_eq!(
            response["data"]["taskExecution"]["servedFrom"], "UPSTREAM",
            "live reads work: {response}"
        );
    }
    let down = gateway.get("/readyz").await;
    assert_eq!(down.status(), 503, "a replica without its database is not ready");
    let down: Value = down.json().await.unwrap();
    assert_eq!(
        (&down["status"], &down["history"]["reachable"]),
        (&json!("unready"), &json!(false)),
        "{down}"
    );
    assert_eq!(down["history"]["writer"]["backlog"], finished.len(), "{down}");

    proxy.resume().await;
    let up = gateway.history_settled(finished.len() as u64).await;
    assert_eq!(up["status"], "ready", "{up}");
    assert_eq!(up["history"]["writer"]["written"], finished.len(), "each written once: {up}");
    let mut expected: Vec<&str> = finished.to_vec();
    expected.sort_unstable();
    let recorded: Vec<String> = rows(&database_url).await.into_iter().map(|row| row.0).collect();
    assert_eq!(recorded, expected);
}

#[tokio::test]
async fn history_without_a_database_is_unavailable_with_a_code() {
    let gateway = TestGateway::start().await;
    let response = gateway.query("{ executionHistory { edges { cursor } } }", json!({})).await;
    assert_eq!(error_codes(&response), ["HISTORY_UNAVAILABLE"]);
    let stats = gateway.query("{ executionStats { count } }", json!({})).await;
    assert_eq!(error_codes(&stats), ["HISTORY_UNAVAILABLE"]);
}

/// A gateway whose database is reached through a proxy the test can cut, stopped on demand.
struct ProxiedGateway {
    proxy: TcpProxy,
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    _simulator: datasync_gateway::simulator::Simulator,
}

/// Starts one for `config`, whose DataSync endpoint is set to the simulator it uses (so that a
/// later gateway with the same config reads the same executions).
async fn proxied_gateway(config: &mut datasync_gateway::config::Config) -> ProxiedGateway {
    let database_url = config.history.database_url.clone().unwrap();
    let proxy = TcpProxy::start(&database_url).await;
    let simulator = start_simulator().await;
    config.datasync.datasync_endpoint = Some(simulator.endpoint_url());
    let mut proxied = config.clone();
    proxied.history.database_url = Some(proxy.url(&database_url));
    let app = datasync_gateway::app::Application::build(proxied).await.unwrap();
    let url = format!("http://{}/graphql", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    ProxiedGateway { proxy, url, stop, server, _simulator: simulator }
}

async fn read(url: &str, arn: &str) {
    let body = json!({ "query": ONE, "variables": { "arn": arn } });
    reqwest::Client::new().post(url).json(&body).send().await.unwrap();
}

#[tokio::test]
async fn a_graceful_shutdown_writes_what_is_queued() {
    let mut config = history_config().await;
    let gateway = proxied_gateway(&mut config).await;
    gateway.proxy.stop().await;
    read(&gateway.url, seeded::SUCCEEDED_BASIC).await;
    gateway.stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!gateway.server.is_finished(), "shutdown waits for the queued snapshot");
    gateway.proxy.resume().await;
    gateway.server.await.unwrap();

    assert_eq!(rows(&config.history.database_url.unwrap()).await.len(), 1);
}

#[tokio::test]
async fn snapshots_that_cannot_be_written_at_shutdown_are_spooled_and_written_at_the_next_start() {
    let mut config = history_config().await;
    config.history.history_flush_timeout = Duration::from_millis(200);
    let database_url = config.history.database_url.clone().unwrap();
    let gateway = proxied_gateway(&mut config).await;
    gateway.proxy.stop().await;
    let finished = [seeded::SUCCEEDED_BASIC, seeded::FAILED, seeded::SUCCEEDED_ENHANCED];
    for arn in finished {
        read(&gateway.url, arn).await;
    }
    gateway.stop.send(()).unwrap();
    gateway.server.await.unwrap();
    let spooled: Vec<_> = std::fs::read_dir(&config.history.spool_dir).unwrap().collect();
    assert_eq!(spooled.len(), 1, "one spool file");
    assert!(rows(&database_url).await.is_empty(), "nothing reached the database");

    // The next start, with the database back, writes the spool once and removes it.
    gateway.proxy.resume().await;
    let (_address, _server) = spawn_gateway(config.clone()).await;
    let recorded: Vec<String> = rows(&database_url).await.into_iter().map(|row| row.0).collect();
    let mut expected: Vec<String> = finished.iter().map(|arn| arn.to_string()).collect();
    expected.sort();
    assert_eq!(recorded, expected, "each spooled execution recorded exactly once");
    assert_eq!(std::fs::read_dir(&config.history.spool_dir).unwrap().count(), 0, "spool emptied");
}
