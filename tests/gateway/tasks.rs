//! Tasks and locations: read live through their caches, with a task's description fetched once
//! however many executions of it a query shows; regions outside the served list are refused.

use datasync_gateway::simulator::fleet::seeded;
use serde_json::{json, Value};

use crate::common::{error_codes, TestGateway};

const SHOWN_WITH_TASKS: &str = "query($arns: [ID!]!) { taskExecutions(arns: $arns) {
    status task { id name status taskMode sourceLocation { locationUri locationType } destinationLocation { locationUri locationType } }
} }";

#[tokio::test]
async fn executions_shown_with_their_tasks_cost_one_describe_per_task_cold_and_nothing_warm() {
    let gateway = TestGateway::start().await;
    let arns: Vec<&str> = seeded::ALL.iter().map(|(_, arn)| *arn).collect();
    let first = gateway.query(SHOWN_WITH_TASKS, json!({ "arns": arns })).await;
    let items = first["data"]["taskExecutions"].as_array().unwrap();
    let shown: Vec<&Value> = items.iter().filter(|item| !item.is_null()).collect();
    assert!(shown.len() >= 10, "{first}");
    for item in &shown {
        let task = &item["task"];
        assert!(task["name"].is_string(), "{item}");
        assert!(task["sourceLocation"]["locationUri"].as_str().unwrap().starts_with("nfs://"), "{item}");
        assert!(task["destinationLocation"]["locationUri"].as_str().unwrap().starts_with("s3://"), "{item}");
        assert_eq!(task["sourceLocation"]["locationType"], "NFS", "{item}");
        assert_eq!(task["destinationLocation"]["locationType"], "S3", "{item}");
    }
    let distinct_tasks: std::collections::HashSet<&str> =
        shown.iter().map(|item| item["task"]["id"].as_str().unwrap()).collect();
    assert_eq!(gateway.simulator.calls("DescribeTask"), distinct_tasks.len() as u64);
    assert_eq!(gateway.simulator.calls("ListLocations"), 2, "one list per region");

    let calls_before = gateway.simulator.calls("DescribeTask") + gateway.simulator.calls("ListLocations");
    let describes_before = gateway.describe_calls();
    let again = gateway.query(SHOWN_WITH_TASKS, json!({ "arns": arns })).await;
    assert_eq!(again["data"], first["data"].clone(), "same answer");
    let calls_after = gateway.simulator.calls("DescribeTask") + gateway.simulator.calls("ListLocations");
    assert_eq!(calls_after, calls_before, "warm: no task or location calls");
    assert!(gateway.describe_calls() - describes_before <= 8, "only running executions are re-read");
}

#[tokio::test]
async fn a_task_reads_back_by_arn_and_as_a_node() {
    let gateway = TestGateway::start().await;
    let task = gateway
        .query(
            "query($arn: ID!) { task(arn: $arn) { id taskArn name status statusRaw region accountId taskMode
                sourceLocationArn creationTime currentTaskExecutionArn currentExecution { status } fetchedAt } }",
            json!({ "arn": seeded::QUICK_TASK }),
        )
        .await;
    let task = &task["data"]["task"];
    assert_eq!(task["id"], seeded::QUICK_TASK, "{task}");
    assert_eq!(task["name"], "demo-quick-copy");
    assert_eq!(task["region"], "us-east-1");
    assert_eq!(task["accountId"], "111122223333");
    assert!(task["creationTime"].is_string());
    // The quick task's seeded execution reports a status DataSync does not know: still running.
    assert_eq!(task["status"], "RUNNING");
    assert!(task["currentExecution"]["status"].is_string(), "{task}");

    let node = gateway
        .query(
            "query($id: ID!) { node(id: $id) { __typename id ... on Task { name } } }",
            json!({ "id": seeded::QUICK_TASK }),
        )
        .await;
    assert_eq!(node["data"]["node"]["__typename"], "Task", "{node}");
    assert_eq!(node["data"]["node"]["name"], "demo-quick-copy");
}

#[tokio::test]
async fn unknown_tasks_and_regions_not_served_are_clear_errors_without_needless_calls() {
    let gateway = TestGateway::start().await;
    let missing = "arn:aws:datasync:us-east-1:111122223333:task/task-0000000000000dead";
    let response =
        gateway.query("query($arn: ID!) { task(arn: $arn) { name } }", json!({ "arn": missing })).await;
    assert_eq!(error_codes(&response), ["NOT_FOUND"], "{response}");
    assert_eq!(response["data"]["task"], Value::Null);

    let elsewhere_task = "arn:aws:datasync:ap-south-1:111122223333:task/task-0a1b2c3d4e5f60001";
    let elsewhere_execution = format!("{elsewhere_task}/execution/exec-0a1b2c3d4e5f60101");
    let calls_before = gateway.simulator.calls("DescribeTask");
    for (query, arn) in [
        ("query($arn: ID!) { task(arn: $arn) { name } }", elsewhere_task.to_owned()),
        ("query($arn: ID!) { taskExecution(arn: $arn) { status } }", elsewhere_execution),
    ] {
        let response = gateway.query(query, json!({ "arn": arn })).await;
        assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
        let message = response["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("ap-south-1") && message.contains("eu-west-1, us-east-1"), "{message}");
    }
    assert_eq!(gateway.describe_calls(), 0);
    assert_eq!(gateway.simulator.calls("DescribeTask"), calls_before);
    let tasks = gateway
        .query("{ tasks(filter: { regions: [\"ap-south-1\"] }) { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(error_codes(&tasks), ["BAD_USER_INPUT"], "{tasks}");
}

#[tokio::test]
async fn tasks_are_listed_across_regions_filtered_and_paged() {
    let gateway = TestGateway::start().await;
    let page = "query($filter: TaskFilter, $first: Int, $after: String) {
        tasks(filter: $filter, first: $first, after: $after) {
            pageInfo { hasNextPage endCursor } edges { node { taskArn name region status } }
        } }";
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let response = gateway.query(page, json!({ "first": 3, "after": after })).await;
        let tasks = &response["data"]["tasks"];
        for edge in tasks["edges"].as_array().unwrap() {
            seen.push(edge["node"]["taskArn"].as_str().unwrap().to_owned());
        }
        if tasks["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = Some(tasks["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    let mut expected = seen.clone();
    expected.sort();
    expected.dedup();
    assert_eq!(seen, expected, "every task once, in ARN order");
    assert_eq!(seen.len(), 4);

    let europe = gateway.query(page, json!({ "filter": { "regions": ["eu-west-1"] } })).await;
    let europe = europe["data"]["tasks"]["edges"].as_array().unwrap();
    assert!(!europe.is_empty() && europe.iter().all(|edge| edge["node"]["region"] == "eu-west-1"));
    let named = gateway.query(page, json!({ "filter": { "nameContains": "QUICK" } })).await;
    assert_eq!(named["data"]["tasks"]["edges"][0]["node"]["name"], "demo-quick-copy", "{named}");
    assert_eq!(named["data"]["tasks"]["edges"].as_array().unwrap().len(), 1);
    assert_eq!(gateway.simulator.calls("ListTasks"), 2, "each region listed once, then cached");
}

/// EventBridge's "DataSync Task State Change": the task's status in the cached list changes at
/// once, and its description is read again on next use, not when its cache entry runs out.
#[tokio::test]
async fn a_task_state_change_event_refreshes_the_task_at_once() {
    let mut config = crate::common::test_config();
    config.live.eventbridge_secret = Some("s3cret-for-tests".into());
    let gateway = TestGateway::start_with(config).await;
    let task = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60004";
    const LIST: &str = "{ tasks { edges { node { taskArn status } } } }";
    let status_listed = |response: &Value| {
        let edges = response["data"]["tasks"]["edges"].as_array().unwrap_or_else(|| panic!("{response}"));
        edges.iter().find(|edge| edge["node"]["taskArn"] == task).map(|edge| edge["node"]["status"].clone())
    };
    assert_eq!(status_listed(&gateway.query(LIST, json!({})).await), Some(json!("AVAILABLE")));
    let described =
        gateway.query("query($arn: ID!) { task(arn: $arn) { taskMode } }", json!({ "arn": task })).await;
    assert_eq!(described["data"]["task"]["taskMode"], "BASIC", "{described}");
    let (lists, describes) = (gateway.simulator.calls("ListTasks"), gateway.simulator.calls("DescribeTask"));

    let post = |event: Value| {
        reqwest::Client::new()
            .post(gateway.url("/events/eventbridge"))
            .header("x-eventbridge-secret", "s3cret-for-tests")
            .json(&event)
            .send()
    };
    let event = json!({
        "version": "0", "id": "task-1", "detail-type": "DataSync Task State Change", "source": "aws.datasync",
        "account": "111122223333", "time": "2026-11-29T00:00:00Z", "region": "us-east-1",
        "resources": [task], "detail": { "State": "UNAVAILABLE" }
    });
    let accepted = post(event).await.unwrap();
    assert_eq!(accepted.status(), 202);
    assert_eq!(accepted.json::<Value>().await.unwrap()["taskArn"], task);

    assert_eq!(status_listed(&gateway.query(LIST, json!({})).await), Some(json!("UNAVAILABLE")), "at once");
    assert_eq!(gateway.simulator.calls("ListTasks"), lists, "from the cached list, updated in place");
    gateway.query("query($arn: ID!) { task(arn: $arn) { taskMode } }", json!({ "arn": task })).await;
    assert_eq!(gateway.simulator.calls("DescribeTask"), describes + 1, "the description is read again");

    let elsewhere = json!({ "source": "aws.datasync", "detail-type": "DataSync Task State Change",
        "resources": ["arn:aws:datasync:ap-south-1:111122223333:task/task-0a1b2c3d4e5f60004"] });
    assert_eq!(post(elsewhere).await.unwrap().status(), 400, "a region not served");
    let other =
        json!({ "source": "aws.datasync", "detail-type": "DataSync Location Change", "resources": [task] });
    assert_eq!(post(other).await.unwrap().status(), 400, "other detail-types are still refused");
}
