//! The discovery sync and the fleet view: every execution of every served region in one index,
//! running and finished, listed from PostgreSQL at no AWS cost.

use std::time::Duration;

use datasync_gateway::simulator::fleet::{self, seeded};
use datasync_gateway::simulator::{Simulator, SimulatorConfig};
use serde_json::{json, Value};
use sqlx::PgPool;

use datasync_gateway::config::Config;

use crate::common::{
    error_codes, graphql, history_config, sdk_client, spawn_gateway, TestGateway, TEST_TICK,
};

const PAGE: &str = "query($filter: ExecutionFilter, $first: Int, $after: String) {
    executions(filter: $filter, first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { node { taskExecutionArn status region servedFrom task { name } } }
    } }";

/// The history test config with the discovery sync on, every second.
async fn discovery_config() -> datasync_gateway::config::Config {
    let mut config = history_config().await;
    config.history.discovery = true;
    config.history.discovery_interval = Duration::from_secs(1);
    // The watcher follows what the sync finds running; a crashed gateway's leases pass on soon.
    config.live.poll_interval = Duration::from_millis(100);
    config.live.lease_duration = Duration::from_secs(1);
    config
}

/// A simulator with `extra` finished executions and a gateway indexing it (its discovery config,
/// as `adjust` leaves it); the simulator, the gateway's `/graphql` URL and its database URL.
async fn indexed(extra: usize, adjust: impl FnOnce(&mut Config)) -> (Simulator, String, String) {
    let config = SimulatorConfig { extra_executions: extra, ..SimulatorConfig::with_tick(TEST_TICK) };
    let simulator = Simulator::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let mut config = discovery_config().await;
    config.datasync.datasync_endpoint = Some(simulator.endpoint_url());
    adjust(&mut config);
    let database_url = config.history.database_url.clone().unwrap();
    let (address, _) = spawn_gateway(config).await;
    (simulator, format!("http://{address}/graphql"), database_url)
}

/// `/readyz` beside a gateway's `/graphql` URL, once every region has synced `runs` more times.
async fn synced_at(graphql_url: &str, runs: u64) -> Value {
    synced(graphql_url.trim_end_matches("/graphql"), runs).await
}

/// One sync at start-up, and one poll of each running execution, then none while a test
/// measures (see [`quiet`]).
fn once(config: &mut Config) {
    config.history.discovery_interval = Duration::from_secs(3600);
    config.live.poll_interval = Duration::from_secs(3600);
}

/// Waits until the start-up sync ran and the watcher polled what it found running once.
async fn quiet(graphql_url: &str) {
    synced_at(graphql_url, 1).await;
    let base = graphql_url.trim_end_matches("/graphql");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ready: Value = reqwest::get(format!("{base}/readyz")).await.unwrap().json().await.unwrap();
        let watcher = &ready["live"]["watcher"];
        if watcher["following"].as_u64() > Some(0)
            && watcher["polls"].as_u64() >= watcher["following"].as_u64()
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the watcher never settled: {ready}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every node of `field` (a connection), walking forward `first` at a time.
async fn walk_forward(url: &str, query: &str, field: &str, variables: Value, first: i64) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut page_variables = variables.clone();
        page_variables["first"] = json!(first);
        page_variables["after"] = json!(after);
        let response = graphql(url, query, page_variables).await;
        let page = &response["data"][field];
        nodes.extend(
            page["edges"]
                .as_array()
                .unwrap_or_else(|| panic!("a page: {response}"))
                .iter()
                .map(|edge| edge["node"].clone()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
}

/// Waits until every region has been synced `runs` times after now; the `/readyz` report.
async fn synced(base: &str, runs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let start: Value = reqwest::get(format!("{base}/readyz")).await.unwrap().json().await.unwrap();
    let runs_of =
        |ready: &Value, region: &str| ready["discovery"]["regions"][region]["runs"].as_u64().unwrap_or(0);
    loop {
        let ready: Value = reqwest::get(format!("{base}/readyz")).await.unwrap().json().await.unwrap();
        if fleet::REGIONS.iter().all(|region| runs_of(&ready, region) >= runs_of(&start, region) + runs) {
            return ready;
        }
        assert!(tokio::time::Instant::now() < deadline, "the sync never ran: {ready}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every node of `executions(filter)`, walking the pages `page_size` at a time.
async fn all_executions(gateway: &TestGateway, filter: Value, page_size: i64) -> Vec<Value> {
    walk_forward(&gateway.url("/graphql"), PAGE, "executions", json!({ "filter": filter }), page_size).await
}

#[tokio::test]
async fn the_sync_indexes_every_execution_of_both_regions_once_across_pages() {
    let (simulator, url, _) = indexed(250, |_| {}).await;
    let ready = synced_at(&url, 1).await;
    for region in fleet::REGIONS {
        let report = &ready["discovery"]["regions"][region];
        assert_eq!(report["error"], Value::Null, "{report}");
    }
    assert!(simulator.calls("ListTaskExecutions") >= 3, "more than one page was listed");

    let nodes = walk_forward(&url, PAGE, "executions", json!({}), 100).await;
    let mut arns: Vec<&str> = nodes.iter().map(|node| node["taskExecutionArn"].as_str().unwrap()).collect();
    let total = arns.len();
    arns.sort_unstable();
    arns.dedup();
    assert_eq!(arns.len(), total, "each execution once");
    let seeded_executions = seeded::ALL.iter().filter(|(_, arn)| arn.contains("/execution/")).count();
    assert_eq!(total, seeded_executions + 250, "every seeded execution and the extra ones");
    for region in fleet::REGIONS {
        assert!(nodes.iter().any(|node| node["region"] == region), "{region} indexed");
    }
    assert!(nodes.iter().any(|node| node["servedFrom"] == "INDEX"), "running executions are in the index");
}

#[tokio::test]
async fn running_executions_are_listed_then_recorded_once_when_they_finish() {
    let gateway = TestGateway::start_with(discovery_config().await).await;
    synced(&gateway.url(""), 1).await;
    let running = all_executions(&gateway, json!({ "running": true }), 50).await;
    assert!(running.iter().any(|node| node["taskExecutionArn"] == seeded::TRANSFERRING), "{running:?}");
    assert!(running.iter().all(|node| !matches!(node["status"].as_str(), Some("SUCCESS" | "ERROR"))));

    let client = sdk_client(&gateway.simulator.endpoint_url()).await;
    let started = client.start_task_execution().task_arn(seeded::QUICK_TASK).send().await.unwrap();
    let arn = started.task_execution_arn().unwrap().to_owned();
    synced(&gateway.url(""), 1).await;
    let running = all_executions(&gateway, json!({ "running": true }), 50).await;
    assert!(
        running.iter().any(|node| node["taskExecutionArn"] == arn.as_str()),
        "the new execution is listed as running"
    );

    // The quick task takes 31 ticks of 50 ms; the watcher records it as it finishes.
    tokio::time::sleep(TEST_TICK * 32).await;
    synced(&gateway.url(""), 2).await;
    let finished = all_executions(&gateway, json!({ "running": false }), 50).await;
    let node =
        finished.iter().find(|node| node["taskExecutionArn"] == arn.as_str()).expect("recorded as finished");
    assert_eq!(node["status"], "SUCCESS");
    let history = gateway
        .query(
            "query($f: ExecutionFilter) { executionHistory(filter: $f) { totalCount } }",
            json!({ "f": { "taskArns": [seeded::QUICK_TASK] } }),
        )
        .await;
    assert_eq!(history["data"]["executionHistory"]["totalCount"], 1, "recorded once: {history}");
}

#[tokio::test]
async fn executions_that_finish_while_the_gateway_is_down_are_recorded_at_the_next_start() {
    let simulator = Simulator::start("127.0.0.1:0".parse().unwrap(), SimulatorConfig::with_tick(TEST_TICK))
        .await
        .unwrap();
    let mut config = discovery_config().await;
    config.datasync.datasync_endpoint = Some(simulator.endpoint_url());
    let database_url = config.history.database_url.clone().unwrap();
    let client = sdk_client(&simulator.endpoint_url()).await;

    let (address, server) = spawn_gateway(config.clone()).await;
    let base = format!("http://{address}");
    synced(&base, 1).await;
    let quick_arns: Vec<String> = {
        let mut arns = Vec::new();
        for _ in 0..2 {
            let started = client.start_task_execution().task_arn(seeded::QUICK_TASK).send().await.unwrap();
            arns.push(started.task_execution_arn().unwrap().to_owned());
        }
        arns
    };
    synced(&base, 1).await;
    server.abort();

    tokio::time::sleep(TEST_TICK * 64).await;
    let (address, _server) = spawn_gateway(config).await;
    synced(&format!("http://{address}"), 1).await;
    // The index held them as running: the watcher claims them at start and polls them at once.
    let pool = PgPool::connect(&database_url).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for arn in &quick_arns {
        loop {
            let status: String =
                sqlx::query_scalar("SELECT status FROM execution_snapshots WHERE execution_arn = $1")
                    .bind(arn)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            if status == "SUCCESS" {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{arn} stayed {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    pool.close().await;
}

#[tokio::test]
async fn throttling_during_a_sync_delays_it_while_client_reads_still_answer() {
    let mut config = discovery_config().await;
    config.datasync.max_attempts = 1;
    let gateway = TestGateway::start_with(config).await;
    synced(&gateway.url(""), 1).await;
    gateway.inject(json!({ "failure": "throttle", "count": null })).await;
    let ready = synced(&gateway.url(""), 1).await;
    let errors: Vec<&Value> =
        fleet::REGIONS.iter().map(|region| &ready["discovery"]["regions"][region]["error"]).collect();
    assert!(errors.iter().any(|error| error.is_string()), "the sync reports the throttling: {ready}");

    // Index-backed reads need no DataSync call at all.
    let page = gateway.query(PAGE, json!({ "first": 5 })).await;
    assert_eq!(page["errors"], Value::Null, "{page}");

    gateway.inject(json!({})).await;
    let ready = synced(&gateway.url(""), 1).await;
    for region in fleet::REGIONS {
        assert_eq!(ready["discovery"]["regions"][region]["error"], Value::Null, "recovered: {ready}");
    }
}

#[tokio::test]
async fn a_tasks_page_shows_its_executions_and_latest_one_from_the_index() {
    let gateway = TestGateway::start_with(discovery_config().await).await;
    synced(&gateway.url(""), 1).await;
    let response = gateway
        .query(
            "query($arn: ID!) { task(arn: $arn) { name
                latestExecution { taskExecutionArn }
                executions(first: 10) { totalCount edges { node { taskExecutionArn } } }
                stats { count failed } } }",
            json!({ "arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001" }),
        )
        .await;
    let task = &response["data"]["task"];
    assert_eq!(error_codes(&response), Vec::<String>::new(), "{response}");
    let executions = task["executions"]["edges"].as_array().unwrap();
    assert_eq!(task["executions"]["totalCount"], executions.len() as u64);
    assert!(executions.iter().all(|edge| edge["node"]["taskExecutionArn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/")));
    assert_eq!(task["latestExecution"]["taskExecutionArn"], executions[0]["node"]["taskExecutionArn"]);
    assert_eq!(task["stats"][0]["failed"], 1, "{task}");
}

#[tokio::test]
async fn without_a_database_index_backed_fields_say_what_to_configure() {
    let gateway = TestGateway::start().await;
    let response = gateway.query(PAGE, json!({})).await;
    assert_eq!(error_codes(&response), ["HISTORY_UNAVAILABLE"]);
    assert!(response["errors"][0]["message"].as_str().unwrap().contains("--database-url"));
    let tasks = gateway.query("{ tasks { edges { node { name } } } }", json!({})).await;
    assert_eq!(tasks["data"]["tasks"]["edges"].as_array().unwrap().len(), 4, "tasks are live: {tasks}");
}

#[tokio::test]
async fn under_the_call_budget_the_sync_yields_and_a_client_read_goes_first() {
    let (simulator, url, _) = indexed(400, |config| config.datasync.calls_per_second = 4.0).await;
    // The first sync has ~400 executions to describe at under 4 calls a second.
    while simulator.calls("DescribeTaskExecution") < 4 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let strong = "query($arn: ID!) { taskExecution(arn: $arn, consistency: STRONG) { status } }";
    let response = graphql(&url, strong, json!({ "arn": seeded::FAILED })).await;
    assert_eq!(response["data"]["taskExecution"]["status"], "ERROR", "{response}");
    let readyz = url.replace("/graphql", "/readyz");
    let ready: Value = reqwest::get(readyz).await.unwrap().json().await.unwrap();
    assert_eq!(
        ready["discovery"]["regions"]["us-east-1"]["runs"],
        Value::Null,
        "the sync is still on its first run: {ready}"
    );
    assert!(simulator.calls("DescribeTaskExecution") < 40, "the sync spends at most the budget");
}

/// Every DataSync call the simulator has answered.
fn all_calls(simulator: &Simulator) -> u64 {
    ["DescribeTaskExecution", "ListTaskExecutions", "DescribeTask", "ListTasks", "ListLocations"]
        .iter()
        .map(|operation| simulator.calls(operation))
        .sum()
}

const DASHBOARD: &str = "{ executions(first: 50) { edges { node {
    taskExecutionArn status progress { bytesPercent }
    task { name sourceLocation { locationUri } destinationLocation { locationUri } }
} } } }";

#[tokio::test]
async fn a_dashboard_page_costs_a_describe_per_task_cold_and_no_call_at_all_warm() {
    let (simulator, url, _) = indexed(60, once).await;
    quiet(&url).await;

    let before = all_calls(&simulator);
    let (describes, lists) = (simulator.calls("DescribeTask"), simulator.calls("ListLocations"));
    let post = |query| graphql(&url, query, json!({}));
    let cold = post(DASHBOARD).await;
    let edges = cold["data"]["executions"]["edges"].as_array().expect("a page");
    assert_eq!(edges.len(), 50, "{cold}");
    assert!(edges.iter().all(|edge| edge["node"]["task"]["sourceLocation"]["locationUri"].is_string()));
    let tasks: std::collections::HashSet<&str> =
        edges.iter().map(|edge| edge["node"]["task"]["name"].as_str().unwrap()).collect();
    assert!(
        simulator.calls("DescribeTask") - describes <= tasks.len() as u64,
        "at most one describe per task"
    );
    assert!(simulator.calls("ListLocations") - lists <= 2, "at most one location list per region");
    let cold_calls = all_calls(&simulator);
    assert!(
        cold_calls - before <= tasks.len() as u64 + 2,
        "nothing but task descriptions and location lists"
    );

    let warm = post(DASHBOARD).await;
    assert_eq!(warm["data"], cold["data"]);
    assert_eq!(all_calls(&simulator), cold_calls, "a warm page costs no DataSync call of any kind");
}

#[tokio::test]
async fn pages_over_running_and_finished_executions_keep_one_order_forward_and_backward() {
    let (_simulator, url, database_url) = indexed(30, once).await;
    synced_at(&url, 1).await;

    // The expected order, computed here from the indexed start times (several seeded executions
    // start at the same instant: ties are broken by ARN).
    let pool = PgPool::connect(&database_url).await.unwrap();
    let mut rows: Vec<(chrono::DateTime<chrono::Utc>, String)> =
        sqlx::query_as("SELECT started_at, execution_arn FROM execution_snapshots")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = rows.into_iter().map(|(_, arn)| arn).collect();
    assert!(expected.len() > 30);

    let query = "query($first: Int, $after: String, $last: Int, $before: String) {
        executions(first: $first, after: $after, last: $last, before: $before) {
            pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
            edges { node { taskExecutionArn } } } }";
    let post = |variables: Value| {
        let url = url.clone();
        async move { graphql(&url, query, variables).await["data"]["executions"].clone() }
    };
    let arns = |page: &Value| -> Vec<String> {
        page["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| edge["node"]["taskExecutionArn"].as_str().unwrap().to_owned())
            .collect()
    };
    let forward: Vec<String> = walk_forward(&url, query, "executions", json!({}), 7)
        .await
        .iter()
        .map(|node| node["taskExecutionArn"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(forward, expected, "forward");

    let mut backward = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let page = post(json!({ "last": 7, "before": before })).await;
        let mut arns = arns(&page);
        arns.extend(backward);
        backward = arns;
        if page["pageInfo"]["hasPreviousPage"] != true {
            break;
        }
        before = Some(page["pageInfo"]["startCursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(backward, expected, "backward");
}
