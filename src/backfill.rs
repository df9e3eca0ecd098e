//! Start-up backfill: record the finished executions DataSync still lists, so history is not
//! empty until someone happens to read each one.

use futures::StreamExt;

use crate::caller::Caller;
use crate::datasync::DataSyncClient;
use crate::service::{Consistency, ExecutionService};

/// Reads every finished execution listed in `regions` through the service, which records what
/// the store does not have yet. Failures are logged: backfill is best effort.
pub async fn run(service: ExecutionService, datasync: DataSyncClient, regions: Vec<String>) {
    let caller = Caller::internal("backfill");
    for region in regions {
        let arns: Vec<String> = match datasync.list_executions(&region, caller.key()).await {
            Ok(listed) => listed
                .into_iter()
                .filter(|(_, status)| matches!(status.as_str(), "SUCCESS" | "ERROR"))
                .map(|(arn, _)| arn)
                .collect(),
            Err(error) => {
                tracing::warn!(%region, %error, "backfill: could not list executions");
                continue;
            }
        };
        let reads = futures::stream::iter(arns.clone())
            .map(|arn| {
                let (service, caller) = (service.clone(), caller.clone());
                async move { service.get(&arn, Consistency::Cached, &caller).await }
            })
            .buffer_unordered(8);
        let failed = reads.filter(|result| std::future::ready(result.is_err())).count().await;
        tracing::info!(%region, finished = arns.len(), failed, "backfill: finished executions read and recorded");
    }
}
