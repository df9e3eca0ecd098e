//! The snapshot writer: records finished executions off the request path.
//!
//! Requests hand snapshots to a bounded in-memory backlog keyed by ARN (so a crowd reading one
//! execution queues it once); one background task writes the backlog in batches, and while
//! PostgreSQL is down it keeps the backlog and retries with backoff. On graceful shutdown
//! [`SnapshotWriter::flush`] drains it; what it cannot write in time is handed to the spool
//! ([`SnapshotWriter::unwritten`]). A snapshot is lost only if the backlog is full, if
//! PostgreSQL refuses that very row (both counted as `dropped` in `/readyz` and logged), or if
//! the process dies without a graceful shutdown; the execution is then recorded again the next
//! time it is read from DataSync.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::{within, HistoryStore, StoreError};
use crate::model::TaskExecution;

const BATCH_SIZE: usize = 500;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const WRITE_LIMIT: Duration = Duration::from_secs(30);

/// The writer's figures, for `/readyz`.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct WriterStatus {
    /// Snapshots waiting to be written (including a batch being written).
    pub backlog: usize,
    pub written: u64,
    pub dropped: u64,
    /// Whether the last write succeeded.
    pub healthy: bool,
}

#[derive(Clone)]
pub struct SnapshotWriter {
    shared: Arc<Shared>,
}

struct Shared {
    pending: Mutex<HashMap<Arc<str>, Arc<TaskExecution>>>,
    capacity: usize,
    /// The batch being written.
    in_flight: Mutex<Vec<Arc<TaskExecution>>>,
    wake: Notify,
    written: AtomicU64,
    dropped: AtomicU64,
    healthy: AtomicBool,
}

impl SnapshotWriter {
    /// Starts the background task writing to `store`; it runs as long as the runtime does.
    pub fn start(store: HistoryStore, capacity: usize) -> Self {
        let writer = SnapshotWriter {
            shared: Arc::new(Shared {
                pending: Mutex::new(HashMap::new()),
                capacity,
                in_flight: Mutex::new(Vec::new()),
                wake: Notify::new(),
                written: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                healthy: AtomicBool::new(true),
            }),
        };
        tokio::spawn(write_loop(store, writer.shared.clone()));
        writer
    }

    /// Queues a finished execution; a newer snapshot of the same ARN replaces a queued one.
    pub fn record(&self, execution: Arc<TaskExecution>) {
        let mut pending = self.shared.pending();
        let arn = &execution.task_execution_arn;
        let queued = pending.len() + self.shared.in_flight().len();
        if queued >= self.shared.capacity && !pending.contains_key(arn) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%arn, backlog = pending.len(), "history backlog full; snapshot not recorded");
            return;
        }
        pending.insert(arn.clone(), execution);
        drop(pending);
        self.shared.wake.notify_one();
    }

    pub fn status(&self) -> WriterStatus {
        // Read under the lock: a failed batch moves from in-flight back to pending under it,
        // so the sum never shows 0 while a snapshot is still unwritten.
        let pending = self.shared.pending();
        let backlog = pending.len() + self.shared.in_flight().len();
        drop(pending);
        WriterStatus {
            backlog,
            written: self.shared.written.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            healthy: self.shared.healthy.load(Ordering::Relaxed),
        }
    }

    /// Everything not yet written: the backlog and the batch being written (which may still
    /// land; writing it again later is harmless, the upsert is idempotent).
    pub fn unwritten(&self) -> Vec<Arc<TaskExecution>> {
        let pending = self.shared.pending();
        let mut unwritten: Vec<_> = self.shared.in_flight().clone();
        unwritten.extend(pending.values().cloned());
        unwritten
    }

    /// Waits until the backlog is written or `timeout` passes; returns what is left.
    pub async fn flush(&self, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let backlog = self.status().backlog;
            if backlog == 0 || tokio::time::Instant::now() >= deadline {
                return backlog;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Arc<TaskExecution>>> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, Vec<Arc<TaskExecution>>> {
        self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take_batch(&self) -> Vec<Arc<TaskExecution>> {
        let mut pending = self.pending();
        let arns: Vec<Arc<str>> = pending.keys().take(BATCH_SIZE).cloned().collect();
        let batch: Vec<_> = arns.iter().filter_map(|arn| pending.remove(arn)).collect();
        self.in_flight().clone_from(&batch);
        batch
    }

    fn batch_done(&self) {
        self.in_flight().clear();
    }

    /// Puts a batch that failed back, unless a newer snapshot of an ARN arrived meanwhile.
    fn restore(&self, batch: Vec<Arc<TaskExecution>>) {
        let mut pending = self.pending();
        for execution in batch {
            pending.entry(execution.task_execution_arn.clone()).or_insert(execution);
        }
        self.in_flight().clear();
    }
}

async fn write_loop(store: HistoryStore, shared: Arc<Shared>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let batch = shared.take_batch();
        if batch.is_empty() {
            shared.wake.notified().await;
            continue;
        }
        match within(WRITE_LIMIT, store.upsert(&batch)).await {
            Ok(()) => {
                shared.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                shared.batch_done();
                if !shared.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!("history store reachable again; backlog being written");
                }
                backoff = MIN_BACKOFF;
            }
            // The database answers but refuses the batch: a row it will never take would block
            // every batch after it, so write one at a time and give up on what still fails.
            Err(StoreError::Database(sqlx::Error::Database(refused))) => {
                tracing::warn!(error = %refused, batch = batch.len(), "batch refused; writing snapshots one by one");
                for execution in batch {
                    let arn = execution.task_execution_arn.clone();
                    match within(WRITE_LIMIT, store.upsert(&[execution])).await {
                        Ok(()) => shared.written.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            tracing::error!(%arn, %error, "snapshot refused by the database; not recorded");
                            shared.dropped.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                shared.batch_done();
            }
            Err(error) => {
                let size = batch.len();
                shared.restore(batch);
                shared.healthy.store(false, Ordering::Relaxed);
                let backlog = shared.pending().len();
                tracing::warn!(%error, batch = size, backlog, retry_in = ?backoff, "could not write snapshots");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
