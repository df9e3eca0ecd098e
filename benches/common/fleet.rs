//! The simulator's fleet as the benchmarks read it.

use aws_sdk_datasync::types::TaskExecutionStatus;
use datasync_gateway::simulator::Simulator;

/// `count` finished (SUCCESS or ERROR) executions of the simulator's fleet, listed over the SDK.
pub async fn finished_executions(simulator: &Simulator, count: usize) -> anyhow::Result<Vec<String>> {
    let mut arns = Vec::with_capacity(count);
    for region in datasync_gateway::simulator::fleet::REGIONS {
        let sdk = aws_sdk_datasync::Client::new(
            &aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(simulator.endpoint_url())
                .region(aws_config::Region::new(region))
                .credentials_provider(aws_credential_types::Credentials::from_keys(
                    "AKIDBENCH",
                    "secret",
                    None,
                ))
                .load()
                .await,
        );
        let mut pages = sdk.list_task_executions().into_paginator().send();
        while let Some(page) = pages.next().await {
            for execution in page?.task_executions() {
                if matches!(
                    execution.status(),
                    Some(TaskExecutionStatus::Success | TaskExecutionStatus::Error)
                ) {
                    arns.extend(execution.task_execution_arn().map(str::to_owned));
                }
            }
        }
    }
    anyhow::ensure!(arns.len() >= count, "the simulator has {} finished executions", arns.len());
    arns.truncate(count);
    Ok(arns)
}
