//! OpenTelemetry traces: the real binary exporting OTLP/HTTP (JSON) to a receiver in the test,
//! continuing the caller's `traceparent`, with spans for the request, the resolvers that do
//! I/O, the DataSync call and the SQL statements, parented as they ran.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use axum::Json;
use datasync_gateway::simulator::fleet::seeded;
use serde_json::{json, Value};

use crate::common::{start_simulator, test_database, GatewayProcess};

/// The caller's trace: its id and the span the gateway's request span must be a child of.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP receiver: every span posted to `/v1/traces`, flattened.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let collected = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |Json(export): Json<Value>| async move {
            let mut spans = collected.lock().unwrap();
            for resource in export["resourceSpans"].as_array().into_iter().flatten() {
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    for span in scope["spans"].as_array().into_iter().flatten() {
                        let mut span = span.clone();
                        span["resource"] = resource["resource"].clone();
                        spans.push(span);
                    }
                }
            }
            Json(json!({}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, spans)
}

/// A span's attribute (or its resource's), as OTLP/JSON writes it (integers as strings).
fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    let mut attributes = [&span["attributes"], &span["resource"]["attributes"]]
        .into_iter()
        .filter_map(Value::as_array)
        .flatten();
    let value = &attributes.find(|attribute| attribute["key"] == key)?["value"];
    value.get("stringValue").or_else(|| value.get("intValue"))
}

/// A timestamp in nanoseconds, which OTLP/JSON may write as a string.
fn nanos(value: &Value) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_str()?.parse().ok())
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
}

#[tokio::test]
async fn a_request_is_traced_through_resolvers_datasync_and_sql_and_exported_at_shutdown() {
    let (endpoint, spans) = receiver().await;
    let simulator = start_simulator().await;
    let database_url = test_database().await;
    // A batch delay far beyond the test: what arrives was sent by the shutdown's flush.
    let envs = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
    ];
    let mut gateway =
        GatewayProcess::start("traces", &simulator, &database_url, &["--discovery", "off"], &envs).await;

    let query = "query Dashboard($arn: ID!) {
        taskExecution(arn: $arn) { status }
        executions(first: 5) { edges { node { taskExecutionArn } } }
    }";
    let request = reqwest::Client::new()
        .post(format!("http://{}/graphql", gateway.address))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01"))
        .json(&json!({ "query": query, "variables": { "arn": seeded::SUCCEEDED_BASIC } }));
    let response: Value = request.send().await.unwrap().json().await.unwrap();
    assert_eq!(response["data"]["taskExecution"]["status"], "SUCCESS", "{response}");
    assert!(spans.lock().unwrap().is_empty(), "nothing is exported before the batch is due");

    assert!(gateway.terminate().await.success());
    let spans: Vec<Value> =
        spans.lock().unwrap().iter().filter(|span| span["traceId"] == TRACE_ID).cloned().collect();
    let named = |name: &str| {
        spans
            .iter()
            .find(|span| span["name"] == name)
            .unwrap_or_else(|| panic!("no span {name} in the caller's trace: {spans:#?}"))
    };

    let request = named("POST /graphql");
    assert_eq!(request["parentSpanId"], CALLER_SPAN_ID, "the caller's trace is continued");
    assert_eq!(request["kind"], 2, "a server span");
    assert_eq!(attribute(request, "http.response.status_code"), Some(&json!("200")));
    assert_eq!(attribute(request, "graphql.operation.name"), Some(&json!("Dashboard")));
    assert_eq!(attribute(request, "service.name"), Some(&json!("datasync-gateway")));

    let read = named("resolve taskExecution");
    assert_eq!(read["parentSpanId"], request["spanId"]);
    let describe = named("DataSync/DescribeTaskExecution");
    assert_eq!(describe["parentSpanId"], read["spanId"], "the call belongs to the resolver that made it");
    assert_eq!(describe["kind"], 3, "a client span");
    assert_eq!(attribute(describe, "cloud.region"), Some(&json!("us-east-1")));

    let page = named("resolve executions");
    assert_eq!(page["parentSpanId"], request["spanId"]);
    let statements: Vec<&Value> =
        spans.iter().filter(|span| span["parentSpanId"] == page["spanId"]).collect();
    assert!(!statements.is_empty(), "the page's SQL is traced: {spans:#?}");
    for statement in statements {
        assert_eq!(statement["name"], "SELECT");
        assert_eq!(attribute(statement, "db.system.name"), Some(&json!("postgresql")));
        let text = attribute(statement, "db.query.text").and_then(Value::as_str).unwrap_or_default();
        assert!(text.contains("FROM"), "the statement's text, with its parameters unbound: {text}");
        let (start, end) = (nanos(&statement["startTimeUnixNano"]), nanos(&statement["endTimeUnixNano"]));
        assert!(nanos(&page["startTimeUnixNano"]) <= start && start <= end, "{statement}");
    }
}
