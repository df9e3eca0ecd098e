//! Changes written by other replicas: each `NOTIFY` names an execution whose row changed, and
//! the row is read back and published to this replica's subscribers. A notification is only a
//! wake-up: after the listening connection was lost (notifications sent meanwhile are gone),
//! every execution this replica shows is read back, so no change is lost with them.

use std::collections::HashSet;
use std::time::Duration;

use super::Live;
use crate::model::ExecutionArn;

const RETRY: Duration = Duration::from_secs(1);

pub(super) async fn run(live: Live) {
    let Some(store) = live.shared.store.clone() else { return };
    let mut listener = loop {
        match store.coordination.listener().await {
            Ok(listener) => break listener,
            Err(error) => {
                tracing::debug!(%error, "cannot listen for other replicas' changes yet; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    };
    resync(&live).await;
    loop {
        let first = match listener.try_recv().await {
            Ok(Some(notification)) => notification,
            Ok(None) => {
                tracing::info!(
                    "listening for other replicas' changes again; reading back what may have been missed"
                );
                resync(&live).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "lost the connection listening for other replicas' changes; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        // What arrived together is read back together.
        let mut arns = HashSet::new();
        for notification in std::iter::once(first).chain(std::iter::from_fn(|| listener.next_buffered())) {
            let Some((origin, arn)) = notification.payload().split_once(' ') else { continue };
            let arn = match ExecutionArn::parse(arn) {
                Ok(arn) => arn,
                Err(error) => {
                    tracing::error!(payload = notification.payload(), %error, "a change notification names no execution; ignored");
                    continue;
                }
            };
            let hub = &live.shared.hub;
            // What this replica shows, or holds as running (so that it learns the finish).
            let wanted = hub.is_watched(&arn) || hub.is_running(&arn) || hub.has_feed_subscribers();
            if origin != live.replica() && wanted {
                arns.insert(arn);
            }
        }
        if !arns.is_empty() {
            read_back(&live, &arns.into_iter().collect::<Vec<_>>()).await;
        }
    }
}

/// Reads back every execution this replica's subscribers may be shown.
async fn resync(live: &Live) {
    let Some(store) = &live.shared.store else { return };
    read_back(live, &live.shared.hub.watched()).await;
    match store.index.running().await {
        Ok(running) => {
            for execution in running {
                live.shared.hub.publish(execution.into());
            }
        }
        Err(error) => tracing::warn!(%error, "could not read the running executions back"),
    }
}

async fn read_back(live: &Live, arns: &[ExecutionArn]) {
    let Some(store) = &live.shared.store else { return };
    match store.index.descriptions(arns).await {
        Ok(executions) => {
            for execution in executions {
                live.shared.hub.publish(execution.into());
            }
        }
        Err(error) => tracing::warn!(%error, "could not read other replicas' changes back"),
    }
}
