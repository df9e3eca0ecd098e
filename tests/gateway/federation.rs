//! The gateway as an Apollo Federation 2 subgraph: its SDL as committed, and composed for real
//! with a second subgraph by `@apollo/gateway`, queried across both.

use datasync_gateway::simulator::fleet::seeded;
use serde_json::{json, Value};

use crate::common::{node, node_clients, TestGateway};

#[test]
fn the_committed_federation_sdl_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.federation.graphql");
    let committed = std::fs::read_to_string(path).expect("schema.federation.graphql is committed");
    assert!(
        committed == datasync_gateway::graphql::federation_sdl(),
        "schema.federation.graphql differs from the code; run\n  cargo run -- print-schema --federation > schema.federation.graphql"
    );
}

#[tokio::test]
async fn a_live_gateway_serves_its_federation_sdl_and_entities() {
    let gateway = TestGateway::start().await;
    let served = gateway.query("{ _service { sdl } }", json!({})).await;
    assert_eq!(served["data"]["_service"]["sdl"], datasync_gateway::graphql::federation_sdl().as_str());
    let entities = gateway
        .query(
            "query($r: [_Any!]!) { _entities(representations: $r) { ... on TaskExecution { id status } ... on Task { id name } } }",
            json!({ "r": [
                { "__typename": "TaskExecution", "id": seeded::SUCCEEDED_BASIC },
                { "__typename": "TaskExecution", "id": seeded::FAILED },
                { "__typename": "TaskExecution", "id": seeded::SUCCEEDED_BASIC },
                { "__typename": "Task", "id": seeded::QUICK_TASK },
            ] }),
        )
        .await;
    let list = entities["data"]["_entities"].as_array().unwrap_or_else(|| panic!("{entities}"));
    let statuses: Vec<&str> = list[..3].iter().map(|entity| entity["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["SUCCESS", "ERROR", "SUCCESS"]);
    assert_eq!(list[3]["name"], "demo-quick-copy");
    assert_eq!(gateway.describe_calls(), 2, "each distinct execution read once");
}

#[tokio::test]
async fn composed_with_another_subgraph_by_a_real_federation_gateway_and_queried_across_both() {
    let Some(dir) = node_clients() else { return };
    let gateway = TestGateway::start().await;
    let url = gateway.url("/graphql");
    let run = |query: String, owned: String| {
        let (dir, url) = (dir.clone(), url.clone());
        async move {
            let output = node(&dir, &["federation.mjs", &url, &query], &[("OWNED_EXECUTIONS", &owned)]).await;
            let stdout = String::from_utf8_lossy(&output.stdout).to_string();
            assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
            serde_json::from_str::<Value>(stdout.lines().last().unwrap()).unwrap()
        }
    };

    let query = format!(
        "{{ taskExecution(arn: \"{}\") {{ id status owner task {{ name }} }} }}",
        seeded::SUCCEEDED_BASIC
    );
    let out = run(query, String::new()).await;
    let execution = &out["result"]["data"]["taskExecution"];
    assert_eq!(execution["status"], "SUCCESS", "{out}");
    assert_eq!(execution["owner"], "team-0101", "from the other subgraph: {out}");
    assert_eq!(execution["task"]["name"], "nightly-nfs-to-s3");
    let supergraph = out["supergraph"].as_str().unwrap();
    assert!(
        supergraph.contains("@join__type(graph: DATASYNC, key: \"id\")"),
        "keyed by id in the supergraph"
    );

    // References from the other subgraph resolved by this one's `_entities`.
    let calls_before = gateway.describe_calls();
    let owned = [seeded::TRANSFERRING, seeded::VERIFYING, seeded::TRANSFERRING].join(",");
    let out = run("{ ownedExecutions { id status owner } }".into(), owned).await;
    let statuses: Vec<&str> = out["result"]["data"]["ownedExecutions"]
        .as_array()
        .unwrap_or_else(|| panic!("{out}"))
        .iter()
        .map(|execution| execution["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["TRANSFERRING", "VERIFYING", "TRANSFERRING"], "{out}");
    assert_eq!(gateway.describe_calls() - calls_before, 2, "two distinct executions, one read each");
}
