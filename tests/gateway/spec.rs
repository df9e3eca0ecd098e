//! Responses by the GraphQL spec and GraphQL-over-HTTP: field errors leave their field `null`
//! and present (or null the nearest nullable parent), checked against graphql-js as the
//! reference; a request that never ran has no `data`; `application/graphql-response+json` keeps
//! a validation failure's errors; limit errors say which limit; the root types' names.
//!
//! Key presence is read from the JSON object itself: indexing a `serde_json::Value` answers
//! `Null` for a missing key too, so it cannot tell `"gone": null` from no `gone` at all.

use datasync_gateway::simulator::fleet::seeded;
use serde_json::{json, Value};

use crate::common::{error_codes, node, node_clients, test_config, TestGateway};

const MISSING: &str =
    "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-00000000000000bad";
const TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001";

/// The object at `pointer` (a JSON pointer), which must be there.
fn object<'a>(response: &'a Value, pointer: &str) -> &'a serde_json::Map<String, Value> {
    response
        .pointer(pointer)
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("no object at {pointer}: {response}"))
}

/// `key` is in `object`, with the value `null`.
fn present_null(object: &serde_json::Map<String, Value>, key: &str) -> bool {
    object.get(key).is_some_and(Value::is_null)
}

/// The gateway's `data` must be what graphql-js makes of the same query when its resolvers
/// return what the gateway returned and fail where the gateway reported errors.
async fn assert_graphql_js_agrees(query: &str, variables: &Value, response: &Value) {
    let dir = node_clients().expect("the npm clients (graphql-js) are installed by scripts/test");
    let case =
        std::env::temp_dir().join(format!("reference-case-{}-{}.json", std::process::id(), rand_suffix()));
    std::fs::write(
        &case,
        json!({ "query": query, "variables": variables, "response": response }).to_string(),
    )
    .unwrap();
    let schema = std::env::current_dir().unwrap().join("schema.graphql");
    let output =
        node(&dir, &["reference-execution.mjs", schema.to_str().unwrap(), case.to_str().unwrap()], &[]).await;
    let _ = std::fs::remove_file(&case);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let reference: Value = serde_json::from_slice(&output.stdout).unwrap();
    let data = response.as_object().and_then(|r| r.get("data")).expect("the response has a data entry");
    assert_eq!(
        data, &reference["data"],
        "graphql-js completes {query} differently; the gateway said {response}"
    );
}

fn rand_suffix() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[tokio::test]
async fn an_errored_nullable_root_field_is_present_as_null_beside_the_others() {
    let gateway = TestGateway::start().await;
    let query = "query($a: ID!, $b: ID!) { ok: taskExecution(arn: $a) { status } gone: taskExecution(arn: $b) { status } }";
    let variables = json!({ "a": seeded::FAILED, "b": MISSING });
    let response = gateway.query(query, variables.clone()).await;
    let data = object(&response, "/data");
    assert!(present_null(data, "gone"), "{response}");
    assert_eq!(data["ok"]["status"], "ERROR", "{response}");
    assert_eq!(error_codes(&response), ["NOT_FOUND"]);
    assert_eq!(response["errors"][0]["path"], json!(["gone"]));
    assert_graphql_js_agrees(query, &variables, &response).await;

    // Alone, it still answers data (not `"data": null`, which means a non-null root failed).
    let query = "query($b: ID!) { gone: taskExecution(arn: $b) { status } }";
    let variables = json!({ "b": MISSING });
    let response = gateway.query(query, variables.clone()).await;
    assert!(present_null(object(&response, "/data"), "gone"), "{response}");
    assert_graphql_js_agrees(query, &variables, &response).await;
}

#[tokio::test]
async fn a_list_item_that_errors_is_null_in_its_place() {
    let gateway = TestGateway::start().await;
    let query = "query($arns: [ID!]!) { taskExecutions(arns: $arns) { status } }";
    let variables = json!({ "arns": [seeded::FAILED, MISSING, seeded::SUCCEEDED_BASIC] });
    let response = gateway.query(query, variables.clone()).await;
    let items = response.pointer("/data/taskExecutions").and_then(Value::as_array).expect("a list");
    assert_eq!(items.len(), 3, "{response}");
    assert!(
        items[1].is_null() && items[0]["status"] == "ERROR" && items[2]["status"] == "SUCCESS",
        "{response}"
    );
    assert_graphql_js_agrees(query, &variables, &response).await;
}

#[tokio::test]
async fn a_nullable_nested_field_that_errors_is_present_as_null_and_its_object_stays() {
    // Without a database, `latestExecution` (nullable) fails with HISTORY_UNAVAILABLE. It is
    // the object's only field: async-graphql alone turned the whole `task` into null.
    let gateway = TestGateway::start().await;
    let query = "query($t: ID!) { task(arn: $t) { latestExecution { status } } }";
    let variables = json!({ "t": TASK });
    let response = gateway.query(query, variables.clone()).await;
    assert!(present_null(object(&response, "/data/task"), "latestExecution"), "{response}");
    assert_eq!(error_codes(&response), ["HISTORY_UNAVAILABLE"]);
    assert_graphql_js_agrees(query, &variables, &response).await;
}

#[tokio::test]
async fn a_non_null_field_that_errors_nulls_its_nearest_nullable_parent() {
    let gateway = TestGateway::start().await;
    // `Task.executions` is non-null: its error nulls the task (nullable), through an alias,
    // a fragment on the `Node` interface and a named fragment.
    let query = "query($t: ID!) { n: node(id: $t) { __typename id ...Runs } \
                 plain: task(arn: $t) { name } } \
                 fragment Runs on Task { label: name runs: executions(first: 1) { totalCount } }";
    let variables = json!({ "t": TASK });
    let response = gateway.query(query, variables.clone()).await;
    let data = object(&response, "/data");
    assert!(present_null(data, "n"), "{response}");
    assert!(data["plain"]["name"].is_string(), "{response}");
    assert_eq!(response["errors"][0]["path"], json!(["n", "runs"]), "{response}");
    assert_graphql_js_agrees(query, &variables, &response).await;

    // A non-null root field's error reaches `data` itself, whatever else answered.
    let query =
        "query($a: ID!) { ok: taskExecution(arn: $a) { status } executions(first: 1) { totalCount } }";
    let variables = json!({ "a": seeded::FAILED });
    let response = gateway.query(query, variables.clone()).await;
    assert!(present_null(response.as_object().unwrap(), "data"), "{response}");
    assert_eq!(error_codes(&response), ["HISTORY_UNAVAILABLE"]);
    assert_graphql_js_agrees(query, &variables, &response).await;
}

#[tokio::test]
async fn errors_inside_list_items_of_a_page_are_completed_as_graphql_js_does() {
    let gateway = TestGateway::start().await;
    let query = "{ tasks(first: 3) { edges { node { name latestExecution { status } } } } }";
    let response = gateway.query(query, json!({})).await;
    let edges = response.pointer("/data/tasks/edges").and_then(Value::as_array).expect("edges");
    assert_eq!(edges.len(), 3, "{response}");
    for edge in edges {
        assert!(present_null(object(edge, "/node"), "latestExecution"), "{response}");
    }
    assert_graphql_js_agrees(query, &json!({}), &response).await;
}

#[tokio::test]
async fn a_request_that_never_ran_has_no_data_entry() {
    let gateway = TestGateway::start().await;
    for query in ["{ nope }", "{ taskExecution(arn: ", "query A { __typename } query B { __typename }"] {
        let (status, response) = gateway.post_json(json!({ "query": query })).await;
        assert_eq!(status, 200, "application/json keeps 200: {response}");
        let response = response.as_object().unwrap();
        assert!(!response.contains_key("data"), "{query}: {response:?}");
        assert!(!response["errors"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn graphql_response_json_keeps_a_validation_failure_as_graphql_errors_with_400() {
    let gateway = TestGateway::start().await;
    let response = reqwest::Client::new()
        .post(gateway.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json, application/json;q=0.9")
        .body(json!({ "query": "{ nope }" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/graphql-response+json");
    let body: Value = response.json().await.unwrap();
    assert!(!body.as_object().unwrap().contains_key("data"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("nope"), "the validation error itself, not a transport error: {body}");
    assert_eq!(error_codes(&body), ["GRAPHQL_VALIDATION_FAILED"]);

    // A field error under that media type is still a 200 with data.
    let response = reqwest::Client::new()
        .post(gateway.url("/graphql"))
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .body(
            json!({ "query": format!("{{ gone: taskExecution(arn: \"{MISSING}\") {{ status }} }}") })
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(present_null(object(&body, "/data"), "gone"), "{body}");
}

/// A document that has run skips the rules its text passed (`src/graphql/schemas.rs`); what
/// depends on a request's variables is still judged on each request, with the answer a
/// document never run before gets.
#[tokio::test]
async fn a_document_that_ran_is_judged_again_on_its_variables_and_its_complexity() {
    let mut config = test_config();
    config.limits.max_query_complexity = 500;
    let gateway = TestGateway::start_with(config).await;
    let query = "query Read($arns: [ID!]!, $consistency: Consistency) {
        taskExecutions(arns: $arns, consistency: $consistency) { status bytesWritten filesTransferred startTime taskArn } }";
    let wrong = json!({ "arns": [seeded::FAILED], "consistency": "SOMETIMES" });
    let (status, refused_first) = gateway.post_json(json!({ "query": query, "variables": wrong })).await;
    assert_eq!(status, 200);

    let fine = json!({ "arns": [seeded::FAILED], "consistency": "CACHED" });
    for _ in 0..3 {
        let response = gateway.query(query, fine.clone()).await;
        assert_eq!(response["data"]["taskExecutions"][0]["status"], "ERROR", "{response}");
    }
    let (_, refused_after) = gateway.post_json(json!({ "query": query, "variables": wrong })).await;
    assert_eq!(refused_after, refused_first, "the same refusal before and after the document ran");
    assert!(!refused_after.as_object().unwrap().contains_key("data"), "{refused_after}");
    assert_eq!(error_codes(&refused_after), ["GRAPHQL_VALIDATION_FAILED"]);
    assert!(refused_after["errors"][0]["message"].as_str().unwrap().contains("SOMETIMES"), "{refused_after}");

    // A list in place of an enum, and a null for a non-null list: refused the same way.
    for variables in [json!({ "arns": [seeded::FAILED], "consistency": ["CACHED"] }), json!({ "arns": null })]
    {
        let response = gateway.query(query, variables.clone()).await;
        assert!(!response.as_object().unwrap().contains_key("data"), "{variables}: {response}");
        let codes = error_codes(&response);
        assert!(
            !codes.is_empty() && codes.iter().all(|code| code == "GRAPHQL_VALIDATION_FAILED"),
            "{response}"
        );
    }

    // Complexity depends on the variables (the list's length): 100 ARNs x 5 fields + 1 is 501.
    let arns: Vec<&str> = (0..100).map(|_| seeded::FAILED).collect();
    let response = gateway.query(query, json!({ "arns": arns })).await;
    assert_eq!(error_codes(&response), ["GRAPHQL_VALIDATION_FAILED"], "{response}");
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("complexity is 501") && message.contains("limit is 500"), "{message}");
}

#[tokio::test]
async fn a_complexity_refusal_names_the_limit_the_value_and_the_flag() {
    let mut config = test_config();
    config.limits.max_query_complexity = 500;
    let gateway = TestGateway::start_with(config).await;
    // 100 ARNs x 5 fields + 1 for the list field itself: 501, over 500.
    let arns: Vec<String> = (0..100).map(|_| seeded::FAILED.to_owned()).collect();
    let query = "query($arns: [ID!]!) { taskExecutions(arns: $arns) { status bytesWritten filesTransferred startTime taskArn } }";
    let response = gateway.query(query, json!({ "arns": arns })).await;
    assert_eq!(error_codes(&response), ["GRAPHQL_VALIDATION_FAILED"], "{response}");
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("complexity is 501")
            && message.contains("limit is 500")
            && message.contains("--max-query-complexity"),
        "{message}"
    );
}

#[tokio::test]
async fn the_root_types_are_query_mutation_and_subscription() {
    let gateway = TestGateway::start().await;
    let response = gateway
        .query(
            "{ __schema { queryType { name } mutationType { name } subscriptionType { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        response["data"]["__schema"],
        json!({ "queryType": { "name": "Query" }, "mutationType": { "name": "Mutation" },
                "subscriptionType": { "name": "Subscription" } }),
        "{response}"
    );
}
