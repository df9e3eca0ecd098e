//! Executions an outside source (EventBridge) says changed, polled at once by a task of their
//! own: a bounded, de-duplicated queue, so that a flood of hints neither grows without bound
//! nor delays the watcher's regular polls. Hints poll as a caller of their own
//! (`internal:hints`), so the call budget and the in-flight slots give them turns beside the
//! watcher's, not before it (5,000 hints inside the watcher's cycle froze it for 7 minutes).
//! Past the bound a hint is dropped and counted: the next poll or sync catches the change up.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use futures::StreamExt;
use tokio::sync::Notify;

use super::Live;
use crate::model::ExecutionArn;
use crate::request::Caller;

/// Hints waiting at most; beyond, new ones are dropped.
pub const MAX_QUEUED_HINTS: usize = 1_000;
/// Hinted polls in flight at once.
const HINT_CONCURRENCY: usize = 8;

#[derive(Default)]
pub struct Hints {
    queue: Mutex<(VecDeque<ExecutionArn>, HashSet<ExecutionArn>)>,
    wake: Notify,
    dropped: AtomicU64,
}

/// `/readyz`'s view of the queue.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct HintStatus {
    pub queued: usize,
    pub dropped: u64,
}

impl Hints {
    /// Queues `arn` unless it is queued already; `false` when the queue is full (dropped).
    pub fn push(&self, arn: ExecutionArn) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (order, queued) = &mut *queue;
        if queued.contains(&arn) {
            return true;
        }
        if order.len() >= MAX_QUEUED_HINTS {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        queued.insert(arn.clone());
        order.push_back(arn);
        drop(queue);
        self.wake.notify_one();
        true
    }

    fn take(&self, most: usize) -> Vec<ExecutionArn> {
        let mut queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (order, queued) = &mut *queue;
        let taken: Vec<ExecutionArn> = order.drain(..most.min(order.len())).collect();
        for arn in &taken {
            queued.remove(arn);
        }
        taken
    }

    pub fn status(&self) -> HintStatus {
        let queued = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).0.len();
        HintStatus { queued, dropped: self.dropped.load(Ordering::Relaxed) }
    }
}

/// Polls hinted executions as they come, a few at a time, and hands what it read to
/// [`Live::observed`] as the watcher does.
pub(super) async fn run(live: Live) {
    let hints = &live.shared.hints;
    let caller = Caller::internal("hints");
    loop {
        let batch = hints.take(HINT_CONCURRENCY * 4);
        if batch.is_empty() {
            hints.wake.notified().await;
            continue;
        }
        let described: Vec<_> = futures::stream::iter(batch)
            .map(|arn| {
                let (executions, caller) = (live.shared.executions.clone(), caller.clone());
                async move { executions.refresh(&arn, &caller).await }
            })
            .buffer_unordered(HINT_CONCURRENCY)
            .filter_map(|polled| async move { polled.ok() })
            .collect()
            .await;
        if let Err(error) = live.observed(&described).await {
            tracing::warn!(%error, "hinted polls could not be indexed; subscribers on this replica still get them");
        }
    }
}
