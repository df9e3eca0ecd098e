//! The simulator's other operations, through the real SDK: what makes it usable as a DataSync
//! endpoint for demos and for other services' tests.

use std::time::Duration;

use datasync_gateway::simulator::fleet::seeded;
use datasync_gateway::simulator::{Simulator, SimulatorConfig};

use crate::common::{sdk_client, sdk_client_in};

async fn simulator() -> (Simulator, aws_sdk_datasync::Client) {
    let tick = Duration::from_secs(1);
    let simulator =
        Simulator::start("127.0.0.1:0".parse().unwrap(), SimulatorConfig::with_tick(tick)).await.unwrap();
    let client = sdk_client(&simulator.endpoint_url()).await;
    (simulator, client)
}

#[tokio::test]
async fn tasks_can_be_listed_by_region_and_described() {
    let (simulator, client) = simulator().await;
    for region in ["us-east-1", "eu-west-1"] {
        let regional = sdk_client_in(&simulator.endpoint_url(), region).await;
        let tasks = regional.list_tasks().send().await.unwrap();
        let arns: Vec<_> = tasks.tasks().iter().filter_map(|task| task.task_arn()).collect();
        assert!(!arns.is_empty(), "tasks in {region}");
        assert!(arns.iter().all(|arn| arn.split(':').nth(3) == Some(region)), "{arns:?}");
    }
    let eu_task = "arn:aws:datasync:eu-west-1:111122223333:task/task-0a1b2c3d4e5f60002";
    let wrong_region = client.describe_task().task_arn(eu_task).send().await.unwrap_err();
    assert!(wrong_region.into_service_error().is_invalid_request_exception());

    let task = client.describe_task().task_arn(seeded::QUICK_TASK).send().await.unwrap();
    assert_eq!(task.name(), Some("demo-quick-copy"));
    let missing = client
        .describe_task()
        .task_arn("arn:aws:datasync:us-east-1:111122223333:task/task-00000000000000000")
        .send()
        .await
        .unwrap_err();
    assert!(missing.into_service_error().is_invalid_request_exception());
}

#[tokio::test]
async fn executions_can_be_listed_by_task_page_by_page() {
    let (_simulator, client) = simulator().await;
    let task = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001";
    let first = client.list_task_executions().task_arn(task).max_results(2).send().await.unwrap();
    assert_eq!(first.task_executions().len(), 2);
    let token = first.next_token().expect("more pages");
    let rest = client.list_task_executions().task_arn(task).next_token(token).send().await.unwrap();
    assert_eq!(rest.task_executions().len(), 2);
    assert_eq!(rest.next_token(), None);
    let all: Vec<_> = first.task_executions().iter().chain(rest.task_executions()).collect();
    assert!(all.iter().all(|e| e.task_execution_arn().unwrap().starts_with(task)));
    let statuses: Vec<_> = all.iter().map(|e| e.status().unwrap().as_str()).collect();
    assert_eq!(statuses, ["SUCCESS", "ERROR", "TRANSFERRING", "QUEUED"]);
}

#[tokio::test]
async fn a_started_execution_can_be_cancelled_once() {
    let (_simulator, client) = simulator().await;
    let started = client.start_task_execution().task_arn(seeded::QUICK_TASK).send().await.unwrap();
    let arn = started.task_execution_arn().unwrap();

    let described = client.describe_task_execution().task_execution_arn(arn).send().await.unwrap();
    assert_eq!(described.status().unwrap().as_str(), "QUEUED");
    client.cancel_task_execution().task_execution_arn(arn).send().await.unwrap();
    let cancelling = client.describe_task_execution().task_execution_arn(arn).send().await.unwrap();
    assert_eq!(cancelling.status().unwrap().as_str(), "CANCELLING");
    let again = client.cancel_task_execution().task_execution_arn(arn).send().await.unwrap_err();
    assert!(again.into_service_error().is_invalid_request_exception());
}

#[tokio::test]
async fn a_scheduled_task_starts_executions_on_its_own() {
    let tick = Duration::from_millis(20);
    let config = SimulatorConfig { schedule_ticks: Some(5), ..SimulatorConfig::with_tick(tick) };
    let simulator = Simulator::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let client = sdk_client(&simulator.endpoint_url()).await;
    let quick = |listed: &aws_sdk_datasync::operation::list_task_executions::ListTaskExecutionsOutput| {
        listed.task_executions().len()
    };
    let before = quick(&client.list_task_executions().task_arn(seeded::QUICK_TASK).send().await.unwrap());
    tokio::time::sleep(tick * 12).await;
    let after = quick(&client.list_task_executions().task_arn(seeded::QUICK_TASK).send().await.unwrap());
    assert!(after >= before + 2, "two scheduled starts in 12 ticks: {before} -> {after}");
}
