//! The hub: this replica's latest description of each running execution it knows, and the
//! channels that push changes to its subscribers. Every source of news (the watcher's polls,
//! the discovery sync, other replicas through PostgreSQL, a subscription's first read) goes
//! through [`Hub::publish`], which keeps only what is new: a duplicate or an older description
//! (events are reordered, replicas race) changes nothing and reaches nobody.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::broadcast;

pub use crate::model::ExecutionEventKind;
use crate::model::{EnumValue, ExecutionArn, TaskExecution, TaskExecutionStatus};

/// Changes queued per execution for a subscriber that is slow to take them; one that falls
/// further behind skips to the latest description.
const PER_EXECUTION_BACKLOG: usize = 64;
/// Events queued for the fleet feed's slowest subscriber.
pub const FEED_BACKLOG: usize = 4_096;
/// How long a finished execution is remembered, so that a late duplicate is not news.
const FINISHED_MEMORY: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug)]
pub struct ExecutionEvent {
    pub kind: ExecutionEventKind,
    pub previous_status: Option<EnumValue<TaskExecutionStatus>>,
    pub execution: Arc<TaskExecution>,
}

pub struct Hub {
    state: Mutex<State>,
    feed: broadcast::Sender<ExecutionEvent>,
    finished: moka::sync::Cache<ExecutionArn, ()>,
}

#[derive(Default)]
struct State {
    /// Running executions, as last described.
    latest: HashMap<ExecutionArn, Arc<TaskExecution>>,
    /// Executions with subscribers on this replica.
    channels: HashMap<ExecutionArn, broadcast::Sender<Arc<TaskExecution>>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            state: Mutex::default(),
            feed: broadcast::channel(FEED_BACKLOG).0,
            finished: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(FINISHED_MEMORY)
                .build(),
        }
    }
}

impl Hub {
    /// Takes a description in; whether it was news (and so was pushed).
    pub fn publish(&self, execution: Arc<TaskExecution>) -> bool {
        let arn = &execution.task_execution_arn;
        if self.finished.contains_key(arn) {
            return false;
        }
        let mut state = self.state();
        let previous = state.latest.get(arn).cloned();
        if let Some(previous) = &previous {
            if !execution.supersedes(previous) || same_state(previous, &execution) {
                return false;
            }
        }
        if execution.is_terminal() {
            state.latest.remove(arn);
            self.finished.insert(arn.clone(), ());
        } else {
            state.latest.insert(arn.clone(), execution.clone());
        }
        if let Some(channel) = state.channels.get(arn) {
            let _ = channel.send(execution.clone());
        }
        drop(state);
        let previous_status = previous.map(|previous| previous.status.clone());
        if let Some(kind) = ExecutionEventKind::of(previous_status.as_ref(), &execution) {
            let _ = self.feed.send(ExecutionEvent { kind, previous_status, execution });
        }
        true
    }

    /// The changes of `arn` from now on, until the returned subscription is dropped.
    pub fn subscribe(self: &Arc<Self>, arn: &ExecutionArn) -> Subscription {
        let receiver = self
            .state()
            .channels
            .entry(arn.clone())
            .or_insert_with(|| broadcast::channel(PER_EXECUTION_BACKLOG).0)
            .subscribe();
        Subscription { hub: self.clone(), arn: arn.clone(), receiver: Some(receiver) }
    }

    /// The fleet feed from now on.
    pub fn feed(&self) -> broadcast::Receiver<ExecutionEvent> {
        self.feed.subscribe()
    }

    pub fn has_feed_subscribers(&self) -> bool {
        self.feed.receiver_count() > 0
    }

    /// Executions that have subscribers on this replica.
    pub fn watched(&self) -> Vec<ExecutionArn> {
        self.state().channels.keys().cloned().collect()
    }

    pub fn is_watched(&self, arn: &ExecutionArn) -> bool {
        self.state().channels.contains_key(arn)
    }

    /// Whether `arn` is known to be running (so news of it, its finish above all, is wanted).
    pub fn is_running(&self, arn: &ExecutionArn) -> bool {
        self.state().latest.contains_key(arn)
    }

    /// Whether `arn` finished (lately: finished executions are remembered for a while).
    pub fn is_finished(&self, arn: &ExecutionArn) -> bool {
        self.finished.contains_key(arn)
    }

    /// Whether `arn` is known, in `status` (a DataSync status string) or finished.
    pub fn knows(&self, arn: &ExecutionArn, status: &str) -> bool {
        self.is_finished(arn)
            || self.state().latest.get(arn).is_some_and(|latest| latest.status.raw() == status)
    }

    /// Running executions known, and subscribers (for `/readyz`).
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state();
        let subscribers = state.channels.values().map(broadcast::Sender::receiver_count).sum::<usize>();
        (state.latest.len(), subscribers + self.feed.receiver_count())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Everything a client can see of an execution, apart from when it was fetched.
fn same_state(a: &TaskExecution, b: &TaskExecution) -> bool {
    TaskExecution { fetched_at: b.fetched_at, ..a.clone() } == *b
}

/// One subscriber's channel; the last one to go removes it.
pub struct Subscription {
    hub: Arc<Hub>,
    arn: ExecutionArn,
    receiver: Option<broadcast::Receiver<Arc<TaskExecution>>>,
}

impl Subscription {
    /// The next change. A subscriber that fell behind skips what it missed and goes on from
    /// the oldest change still queued (the last one, the finish, is never skipped).
    pub async fn next(&mut self) -> Option<Arc<TaskExecution>> {
        let receiver = self.receiver.as_mut()?;
        loop {
            match receiver.recv().await {
                Ok(execution) => return Some(execution),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(arn = %self.arn, missed, "a subscriber fell behind; changes skipped");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let mut state = self.hub.state();
        if state.channels.get(&self.arn).is_some_and(|channel| channel.receiver_count() == 0) {
            state.channels.remove(&self.arn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execution(status: &str, bytes: i64, at_ms: i64) -> Arc<TaskExecution> {
        let json = serde_json::json!({
            "taskExecutionArn": "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-0a1b2c3d4e5f60101",
            "status": status, "options": null, "excludes": [], "includes": [], "manifestConfig": null,
            "startTime": null, "estimatedFilesToTransfer": 0, "estimatedBytesToTransfer": 0,
            "filesTransferred": 0, "bytesWritten": bytes, "bytesTransferred": 0, "bytesCompressed": 0,
            "result": null, "taskReportConfig": null, "filesDeleted": 0, "filesSkipped": 0,
            "filesVerified": 0, "reportResult": null, "estimatedFilesToDelete": 0, "taskMode": null,
            "filesPrepared": 0, "filesListed": null, "filesFailed": null,
            "fetchedAt": chrono::DateTime::from_timestamp_millis(at_ms).unwrap(),
        });
        Arc::new(serde_json::from_value(json).unwrap())
    }

    #[tokio::test]
    async fn publishes_news_once_in_order_and_forgets_nothing_it_should_remember() {
        let hub = Arc::new(Hub::default());
        let mut feed = hub.feed();
        let mut subscription = hub.subscribe(&execution("QUEUED", 0, 0).task_execution_arn);
        assert!(hub.publish(execution("TRANSFERRING", 10, 1_000)));
        assert!(!hub.publish(execution("TRANSFERRING", 10, 2_000)), "same state, later: no news");
        assert!(!hub.publish(execution("PREPARING", 0, 500)), "older than what is known: no news");
        assert!(hub.publish(execution("TRANSFERRING", 20, 3_000)), "counters moved");
        assert!(hub.publish(execution("TRANSFERRING", 25, 6_000)));
        assert!(hub.publish(execution("SUCCESS", 30, 4_000)), "finished, though stamped earlier: news");
        assert!(!hub.publish(execution("SUCCESS", 30, 5_000)), "a finished execution is not news again");

        let bytes: Vec<i64> = [(); 4]
            .iter()
            .map(|_| subscription.receiver.as_mut().unwrap().try_recv().unwrap().bytes_written.0)
            .collect();
        assert_eq!(bytes, [10, 20, 25, 30]);
        let kinds: Vec<_> = [(); 2].iter().map(|_| feed.try_recv().unwrap().kind).collect();
        assert_eq!(kinds, [ExecutionEventKind::Started, ExecutionEventKind::Finished]);
        assert!(feed.try_recv().is_err(), "counter changes are not fleet events");

        assert_eq!(hub.watched().len(), 1);
        drop(subscription);
        assert!(hub.watched().is_empty(), "the last subscriber gone, the channel goes");
    }
}
