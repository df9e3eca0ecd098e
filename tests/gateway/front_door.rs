//! The front door: GraphiQL in a real browser with no network but the gateway, the standard
//! introspection query and GraphQL Code Generator against the live endpoint, object identity,
//! nullable root fields, HTTP caching and automatic persisted queries.
//!
//! The npm clients and Chromium are installed by `scripts/test` (NODE_CLIENTS_DIR,
//! CHROMIUM_PATH); where they could not be, those tests say so loudly and skip.

use datasync_gateway::simulator::fleet::seeded;
use serde_json::{json, Value};
use sha2::Digest;

use crate::common::{
    config_with_a_reader_key, error_codes, history_config, node, node_clients, skip, test_config,
    TestGateway, ONE,
};

/// Runs `query` in GraphiQL in headless Chromium against `gateway` (with `headers` in the
/// Headers tab), waits for `expected` in the result pane, and checks that the page loaded
/// nothing from another origin; the report, or `None` (a loud skip) without Chromium or the npm
/// clients.
async fn graphiql_in_a_browser(
    gateway: &TestGateway,
    query: &str,
    headers: Option<Value>,
    expected: &str,
    screenshot: &str,
) -> Option<Value> {
    if std::env::var_os("CHROMIUM_PATH").is_none() {
        return skip("CHROMIUM_PATH is not set (chromium could not be installed)");
    }
    let dir = node_clients()?;
    let screenshot = std::env::current_dir().unwrap().join("target").join(screenshot);
    let args = ["graphiql-browser.mjs", &gateway.url(""), query, expected, screenshot.to_str().unwrap()];
    let headers = headers.map(|headers| headers.to_string()).unwrap_or_default();
    let envs: &[(&str, &str)] = if headers.is_empty() { &[] } else { &[("GRAPHIQL_HEADERS", &headers)] };
    let output = node(&dir, &args, envs).await;
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(report.lines().last().unwrap()).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["blocked"], json!([]), "the page asked for another origin: {report}");
    Some(report)
}

#[tokio::test]
async fn graphiql_runs_a_query_from_the_url_in_a_real_browser_without_any_other_origin() {
    let query =
        format!("{{ taskExecution(arn: \"{}\") {{ status result {{ errorCode }} }} }}", seeded::FAILED);
    let gateway = TestGateway::start().await;
    let report = graphiql_in_a_browser(&gateway, &query, None, "\"ERROR\"", "graphiql.png").await;
    let Some(report) = report else { return };
    assert!(report["csp"].as_str().unwrap().contains("default-src 'self'"), "{report}");
}

#[tokio::test]
async fn graphiql_runs_a_subscription_with_its_headers_tab_as_credentials_in_a_real_browser() {
    // Authentication on: the Headers tab's key must reach the socket's connection_init, or the
    // gateway closes it with 4401 and no data arrives.
    let (config, key) = config_with_a_reader_key("graphiql");
    let gateway = TestGateway::start_with(config).await;
    // "SUCCESS" in the result pane means data came back: over HTTP a subscription gets only an error.
    let query =
        format!("subscription {{ taskExecutionUpdated(arn: \"{}\") {{ status }} }}", seeded::SUCCEEDED_BASIC);
    let headers = json!({ "X-API-Key": key });
    let report =
        graphiql_in_a_browser(&gateway, &query, Some(headers), "\"SUCCESS\"", "graphiql-subscription.png")
            .await;
    let Some(report) = report else { return };
    // The result pane shows the subscription's data, not an error that happens to name it.
    let result = report["resultSnippet"].as_str().unwrap_or_else(|| panic!("{report}"));
    assert!(result.contains("\"taskExecutionUpdated\""), "{report}");
    assert!(!result.contains("\"errors\""), "{report}");
    assert_eq!(report["cspViolations"], json!([]), "{report}");
}

#[tokio::test]
async fn the_standard_introspection_query_yields_the_committed_schema() {
    let Some(dir) = node_clients() else { return };
    let gateway = TestGateway::start().await;
    let schema = std::env::current_dir().unwrap().join("schema.graphql");
    let output =
        node(&dir, &["introspected-schema.mjs", &gateway.url(""), schema.to_str().unwrap()], &[]).await;
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn graphql_code_generator_builds_types_from_the_live_endpoint() {
    let Some(dir) = node_clients() else { return };
    let gateway = TestGateway::start().await;
    let base = gateway.url("");
    let output = node(
        &dir,
        &["node_modules/.bin/graphql-codegen", "--config", "codegen.ts"],
        &[("GATEWAY_URL", &base)],
    )
    .await;
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = std::fs::read_to_string(dir.join("generated/graphql.ts")).unwrap();
    assert!(generated.contains("TaskExecutionStatus"), "typed enums generated");
}

#[tokio::test]
async fn the_raw_introspection_query_answers_within_the_default_limits() {
    let gateway = TestGateway::start().await;
    let query = std::fs::read_to_string("tests/clients/introspection-query.graphql").unwrap();
    let response = gateway.query(&query, json!({})).await;
    assert_eq!(response["errors"], Value::Null, "{response:.600}");
    assert!(response["data"]["__schema"]["types"].as_array().unwrap().len() > 20);
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let mut config = test_config();
    config.limits.introspection = false;
    let gateway = TestGateway::start_with(config).await;
    let response = gateway.query("{ __schema { queryType { name } } }", json!({})).await;
    assert!(response["data"]["__schema"].is_null() || !error_codes(&response).is_empty(), "{response}");
    assert_ne!(response["data"]["__schema"]["queryType"]["name"], "Query", "{response}");
    let data = gateway.query(ONE, json!({ "arn": seeded::FAILED })).await;
    assert_eq!(data["data"]["taskExecution"]["status"], "ERROR");
}

#[tokio::test]
async fn every_node_reads_back_by_its_id() {
    let gateway = TestGateway::start().await;
    let arns: Vec<&str> = seeded::ALL.iter().map(|(_, arn)| *arn).collect();
    let listed = gateway
        .query(
            "query($arns: [ID!]!) { taskExecutions(arns: $arns) { id taskExecutionArn } }",
            json!({ "arns": arns }),
        )
        .await;
    let items = listed["data"]["taskExecutions"].as_array().unwrap();
    assert!(items.iter().filter(|item| !item.is_null()).count() >= 10, "{listed}");
    for item in items.iter().filter(|item| !item.is_null()) {
        assert_eq!(item["id"], item["taskExecutionArn"]);
        let id = item["id"].as_str().unwrap();
        let node = gateway
            .query(
                "query($id: ID!) { node(id: $id) { __typename id ... on TaskExecution { status } } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(node["data"]["node"]["id"], id, "{node}");
        assert_eq!(node["data"]["node"]["__typename"], "TaskExecution");
    }
    let nodes =
        gateway.query("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({ "ids": arns })).await;
    assert_eq!(nodes["data"]["nodes"].as_array().unwrap().len(), arns.len(), "{nodes}");
}

#[tokio::test]
async fn one_missing_execution_does_not_blank_the_other_root_fields() {
    let gateway = TestGateway::start().await;
    let missing = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-00000000000000bad";
    let response = gateway
        .query(
            "query($a: ID!, $b: ID!) { found: taskExecution(arn: $a) { status } missing: taskExecution(arn: $b) { status } }",
            json!({ "a": seeded::FAILED, "b": missing }),
        )
        .await;
    assert_eq!(response["data"]["found"]["status"], "ERROR", "{response}");
    let data = response.pointer("/data").and_then(Value::as_object).expect("data is an object");
    assert!(data.get("missing").is_some_and(Value::is_null), "the key is present, null: {response}");
    assert_eq!(error_codes(&response), ["NOT_FOUND"]);
    assert_eq!(response["errors"][0]["path"], json!(["missing"]));
}

async fn cache_control(gateway: &TestGateway, query: &str, variables: Value) -> String {
    let response = reqwest::Client::new()
        .post(gateway.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    response.headers()["cache-control"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn settled_answers_and_history_may_be_cached_live_ones_and_errors_may_not() {
    let gateway = TestGateway::start_with(history_config().await).await;
    let settled = cache_control(&gateway, ONE, json!({ "arn": seeded::FAILED })).await;
    assert!(settled.starts_with("public, max-age="), "{settled}");
    assert_eq!(cache_control(&gateway, ONE, json!({ "arn": seeded::TRANSFERRING })).await, "no-store");
    assert_eq!(cache_control(&gateway, ONE, json!({ "arn": "nope" })).await, "no-store");
    let history =
        cache_control(&gateway, "{ executionHistory(first: 5) { edges { cursor } } }", json!({})).await;
    assert!(history.starts_with("public, max-age="), "{history}");
}

/// `GET /graphql` with only a persisted query's hash.
async fn get_by_hash(gateway: &TestGateway, extensions: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .get(gateway.url("/graphql"))
        .query(&[("extensions", extensions.to_string())])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn automatic_persisted_queries_register_then_answer_by_hash_over_get() {
    let gateway = TestGateway::start().await;
    let query = format!("{{ taskExecution(arn: \"{}\") {{ status }} }}", seeded::FAILED);
    let hash = format!("{:x}", sha2::Sha256::digest(query.as_bytes()));
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });

    let (_, miss) = gateway.post_json(json!({ "extensions": extensions })).await;
    assert_eq!(error_codes(&miss), ["PERSISTED_QUERY_NOT_FOUND"], "{miss}");
    let (_, stored) = gateway.post_json(json!({ "query": query, "extensions": extensions })).await;
    assert_eq!(stored["data"]["taskExecution"]["status"], "ERROR", "{stored}");

    let response = get_by_hash(&gateway, &extensions).await;
    assert!(response.headers()["cache-control"].to_str().unwrap().starts_with("public"));
    let by_hash: Value = response.json().await.unwrap();
    assert_eq!(by_hash["data"]["taskExecution"]["status"], "ERROR", "{by_hash}");
}

#[tokio::test]
async fn the_root_sends_people_to_graphiql_and_assets_come_from_the_gateway() {
    let gateway = TestGateway::start().await;
    let no_redirects =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let root = no_redirects.get(gateway.url("/")).send().await.unwrap();
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()["location"], "/graphiql");
    let page = gateway.get("/graphiql").await;
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    let page = page.text().await.unwrap();
    assert!(!page.contains("http://") && !page.contains("https://"), "no external URL in the page");
    for asset in [
        "react.production.min.js",
        "react-dom.production.min.js",
        "graphiql.min.js",
        "graphiql.min.css",
        "graphiql-init.js",
    ] {
        assert!(page.contains(&format!("/graphiql/assets/{asset}")), "{asset}");
        let response = gateway.get(&format!("/graphiql/assets/{asset}")).await;
        assert_eq!(response.status(), 200, "{asset}");
    }
}

#[tokio::test]
async fn a_persisted_mutation_is_refused_over_get_like_any_mutation() {
    let gateway = TestGateway::start().await;
    let mutation = "mutation { __typename }";
    let hash = format!("{:x}", sha2::Sha256::digest(mutation.as_bytes()));
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    // Registered by the POST, where a mutation may run.
    let (status, stored) = gateway.post_json(json!({ "query": mutation, "extensions": extensions })).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["data"]["__typename"], "Mutation", "{stored}");
    let response = get_by_hash(&gateway, &extensions).await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}
