//! `/metrics`, parsed by a Prometheus text parser, against what the simulator counted.

use datasync_gateway::simulator::fleet::seeded;
use serde_json::json;

use crate::common::{history_config, TestGateway};

const READ: &str = "query Read($arn: ID!) { taskExecution(arn: $arn) { status } }";

/// The current metrics of `gateway`, parsed.
pub async fn scrape(gateway: &TestGateway) -> prometheus_parse::Scrape {
    parse(&gateway.get("/metrics").await.text().await.unwrap())
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap()
}

/// The value of the sample named `name` whose labels include all of `labels`, summed.
pub fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .filter(|sample| labels.iter().all(|(key, wanted)| sample.labels.get(key) == Some(*wanted)))
        .map(|sample| match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_count_what_the_simulator_saw() {
    let gateway = TestGateway::start().await;
    // The second read of SUCCEEDED_BASIC is an execution-cache hit, and its response is stored;
    // the third is that response replayed.
    let reads = [seeded::SUCCEEDED_BASIC, seeded::FAILED, seeded::TRANSFERRING, seeded::SUCCEEDED_BASIC];
    for arn in reads.into_iter().chain([seeded::SUCCEEDED_BASIC]) {
        let response = gateway.query(READ, json!({ "arn": arn })).await;
        assert!(response["errors"].is_null(), "{response}");
    }
    gateway.query(READ, json!({ "arn": "arn:aws:datasync:nowhere" })).await;

    let response = gateway.get("/metrics").await;
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    let scrape = parse(&text);

    let calls =
        value(&scrape, "datasync_gateway_datasync_calls_total", &[("operation", "DescribeTaskExecution")]);
    assert_eq!(calls, gateway.describe_calls() as f64, "{text}");
    assert_eq!(calls, 3.0, "three distinct executions");
    let ok = value(
        &scrape,
        "datasync_gateway_datasync_calls_total",
        &[("outcome", "ok"), ("region", "us-east-1")],
    );
    assert_eq!(ok, 3.0);
    // A name gets a label of its own the third time it is seen; the first two count as `other`.
    let operations = [("operation", "Read"), ("kind", "query"), ("transport", "http")];
    assert_eq!(value(&scrape, "datasync_gateway_graphql_operations_total", &operations), 4.0);
    assert_eq!(value(&scrape, "datasync_gateway_graphql_operation_seconds_count", &operations), 4.0);
    assert_eq!(value(&scrape, "datasync_gateway_graphql_operations_total", &[("operation", "other")]), 2.0);
    assert_eq!(value(&scrape, "datasync_gateway_graphql_errors_total", &[("code", "BAD_USER_INPUT")]), 1.0);
    let lookups = |cache, result| {
        value(&scrape, "datasync_gateway_cache_lookups_total", &[("cache", cache), ("result", result)])
    };
    assert_eq!(lookups("executions", "miss"), 3.0);
    assert_eq!(lookups("executions", "hit"), 1.0);
    assert_eq!(lookups("responses", "miss"), 5.0);
    assert_eq!(lookups("responses", "hit"), 1.0);
    assert_eq!(value(&scrape, "datasync_gateway_cache_entries", &[("name", "executions")]), 3.0);
    assert_eq!(value(&scrape, "datasync_gateway_datasync_budget_wait_seconds_count", &[]), 3.0);
    assert!(value(&scrape, "datasync_gateway_http_connections_open", &[]) >= 1.0, "{text}");
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
}

#[tokio::test]
async fn the_grafana_dashboard_asks_only_for_metrics_the_gateway_exports() {
    // Families appear once they have a sample: a gateway with a database and the sync, which
    // has answered a query and refused one.
    let mut config = history_config().await;
    config.history.discovery = true;
    let gateway = TestGateway::start_with(config).await;
    gateway.query(READ, json!({ "arn": seeded::TRANSFERRING })).await;
    gateway.query(READ, json!({ "arn": "arn:aws:datasync:nowhere" })).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let text = loop {
        let text = gateway.get("/metrics").await.text().await.unwrap();
        if text.contains("datasync_gateway_sync_last_run_failed{") || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let families: std::collections::HashSet<&str> =
        text.lines().filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("deploy/grafana/datasync-gateway.json").unwrap())
            .unwrap();
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (start, _) in expr.match_indices("datasync_gateway_") {
                let name: String =
                    expr[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                let family = ["_total", "_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(&name);
                assert!(
                    families.contains(family),
                    "panel {:?} asks for {name}, not exported",
                    panel["title"]
                );
                asked += 1;
            }
        }
    }
    assert!(asked >= 20, "{asked}");
}
