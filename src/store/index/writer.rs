//! The index writer: the one path by which execution rows are written, whoever observed the
//! execution (a client's read, the watcher, the discovery sync, EventBridge hints, control).
//!
//! Descriptions wait in a bounded in-memory backlog keyed by ARN (so a crowd reading one
//! execution queues it once, and a newer description replaces a queued one); one background
//! task writes the backlog in batches, and while PostgreSQL is down it keeps the backlog and
//! retries with backoff. [`IndexWriter::record`] queues and returns; [`IndexWriter::write`]
//! queues and waits for the batch that holds them, so that a change is announced only once it
//! is durable. On graceful shutdown [`IndexWriter::flush`] drains the backlog; what it cannot
//! write in time is handed to the spool ([`IndexWriter::unwritten`]). A description is lost
//! only if the backlog is full, if PostgreSQL refuses that very row (both counted as `dropped`
//! in `/readyz` and logged), or if the process dies without a graceful shutdown; the execution
//! is then recorded again the next time it is observed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};

use super::IndexStore;
use crate::model::{ExecutionArn, TaskExecution};
use crate::store::{within, StoreError};

const BATCH_SIZE: usize = 500;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The writer's figures, for `/readyz`.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct WriterStatus {
    /// Descriptions waiting to be written (including a batch being written).
    pub backlog: usize,
    pub written: u64,
    pub dropped: u64,
    /// Whether the last write succeeded.
    pub healthy: bool,
}

/// Why a write that was waited for did not land (yet): the text is for the log.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WriteError {
    /// The database failed the batch; the rows stay queued and are retried.
    #[error("the index could not be written ({0}); retrying in the background")]
    Unavailable(String),
    /// The database refused the row itself; it is not retried.
    #[error("the database refused the row: {0}")]
    Refused(String),
    /// The backlog is full; the row was not queued.
    #[error("the index writer's backlog is full")]
    BacklogFull,
    #[error("no answer from the index writer within {0:?}")]
    Timeout(Duration),
}

#[derive(Clone)]
pub struct IndexWriter {
    shared: Arc<Shared>,
}

/// A queued description, and who waits for it to be written.
struct Queued {
    execution: Arc<TaskExecution>,
    waiting: Vec<oneshot::Sender<Result<(), WriteError>>>,
}

struct Shared {
    pending: Mutex<HashMap<ExecutionArn, Queued>>,
    capacity: usize,
    /// The batch being written.
    in_flight: Mutex<Vec<Arc<TaskExecution>>>,
    wake: Notify,
    written: AtomicU64,
    dropped: AtomicU64,
    healthy: AtomicBool,
}

impl IndexWriter {
    /// Starts the task writing to `store`, each batch within `limit`; its handle, for the
    /// application to end it with itself.
    pub fn start(store: IndexStore, capacity: usize, limit: Duration) -> (Self, tokio::task::AbortHandle) {
        let writer = IndexWriter {
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
        let task = tokio::spawn(write_loop(store, writer.shared.clone(), limit));
        (writer, task.abort_handle())
    }

    /// Queues a description; a newer one of the same ARN replaces a queued one (an older one
    /// does not).
    pub fn record(&self, execution: Arc<TaskExecution>) {
        self.queue(execution, None);
    }

    /// Queues `executions` and waits, at most `limit`, until the batches holding them are
    /// written. On an error they stay queued (unless refused or the backlog is full).
    pub async fn write(&self, executions: &[Arc<TaskExecution>], limit: Duration) -> Result<(), WriteError> {
        let receivers: Vec<_> = executions
            .iter()
            .filter_map(|execution| {
                let (sender, receiver) = oneshot::channel();
                self.queue(execution.clone(), Some(sender)).then_some(receiver)
            })
            .collect();
        if receivers.len() < executions.len() {
            return Err(WriteError::BacklogFull);
        }
        let all = async {
            for receiver in receivers {
                // A sender dropped unanswered means the writer task ended (the app is stopping).
                receiver.await.unwrap_or(Err(WriteError::Unavailable("the writer stopped".into())))?;
            }
            Ok(())
        };
        tokio::time::timeout(limit, all).await.unwrap_or(Err(WriteError::Timeout(limit)))
    }

    /// Whether it was queued (or merged with a queued one).
    fn queue(
        &self,
        execution: Arc<TaskExecution>,
        waiter: Option<oneshot::Sender<Result<(), WriteError>>>,
    ) -> bool {
        let mut pending = self.shared.pending();
        let arn = &execution.task_execution_arn;
        let queued = pending.len() + self.shared.in_flight().len();
        if queued >= self.shared.capacity && !pending.contains_key(arn) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%arn, backlog = pending.len(), "index backlog full; description not recorded");
            return false;
        }
        let entry = pending
            .entry(arn.clone())
            .or_insert_with(|| Queued { execution: execution.clone(), waiting: Vec::new() });
        if execution.fetched_at >= entry.execution.fetched_at {
            entry.execution = execution;
        }
        entry.waiting.extend(waiter);
        drop(pending);
        self.shared.wake.notify_one();
        true
    }

    pub fn status(&self) -> WriterStatus {
        // Read under the lock: a failed batch moves from in-flight back to pending under it,
        // so the sum never shows 0 while a description is still unwritten.
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
        unwritten.extend(pending.values().map(|queued| queued.execution.clone()));
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

/// A batch taken from the backlog: what is written, and who waits for it.
struct Batch {
    executions: Vec<Arc<TaskExecution>>,
    waiting: Vec<(ExecutionArn, oneshot::Sender<Result<(), WriteError>>)>,
}

impl Batch {
    /// Tells the waiters of `arn` (all of them when `None`) how the write went.
    fn answer(&mut self, arn: Option<&ExecutionArn>, result: Result<(), WriteError>) {
        let (answered, kept) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(waiting, _)| arn.is_none_or(|arn| arn == waiting));
        self.waiting = kept;
        for (_, waiter) in answered {
            let _ = waiter.send(result.clone());
        }
    }
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<ExecutionArn, Queued>> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, Vec<Arc<TaskExecution>>> {
        self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take_batch(&self) -> Batch {
        let mut pending = self.pending();
        let arns: Vec<ExecutionArn> = pending.keys().take(BATCH_SIZE).cloned().collect();
        let mut batch = Batch { executions: Vec::with_capacity(arns.len()), waiting: Vec::new() };
        for arn in arns {
            if let Some(queued) = pending.remove(&arn) {
                batch.executions.push(queued.execution);
                batch.waiting.extend(queued.waiting.into_iter().map(|waiter| (arn.clone(), waiter)));
            }
        }
        self.in_flight().clone_from(&batch.executions);
        batch
    }

    fn batch_done(&self) {
        self.in_flight().clear();
    }

    /// Puts a batch that failed back, unless a newer description of an ARN arrived meanwhile.
    fn restore(&self, executions: Vec<Arc<TaskExecution>>) {
        let mut pending = self.pending();
        for execution in executions {
            pending
                .entry(execution.task_execution_arn.clone())
                .or_insert_with(|| Queued { execution, waiting: Vec::new() });
        }
        self.in_flight().clear();
    }
}

async fn write_loop(store: IndexStore, shared: Arc<Shared>, limit: Duration) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut batch = shared.take_batch();
        if batch.executions.is_empty() {
            shared.wake.notified().await;
            continue;
        }
        match within(limit, store.upsert(&batch.executions)).await {
            Ok(()) => {
                shared.written.fetch_add(batch.executions.len() as u64, Ordering::Relaxed);
                shared.batch_done();
                batch.answer(None, Ok(()));
                if !shared.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!("index reachable again; backlog being written");
                }
                backoff = MIN_BACKOFF;
            }
            // The database answers but refuses the batch: a row it will never take would block
            // every batch after it, so write one at a time and give up on what still fails.
            Err(StoreError::Database(sqlx::Error::Database(refused))) => {
                tracing::warn!(error = %refused, batch = batch.executions.len(), "batch refused; writing rows one by one");
                for execution in std::mem::take(&mut batch.executions) {
                    let arn = execution.task_execution_arn.clone();
                    match within(limit, store.upsert(&[execution])).await {
                        Ok(()) => {
                            shared.written.fetch_add(1, Ordering::Relaxed);
                            batch.answer(Some(&arn), Ok(()));
                        }
                        Err(error) => {
                            tracing::error!(%arn, %error, "row refused by the database; not recorded");
                            shared.dropped.fetch_add(1, Ordering::Relaxed);
                            batch.answer(Some(&arn), Err(WriteError::Refused(error.to_string())));
                        }
                    }
                }
                shared.batch_done();
            }
            Err(error) => {
                let size = batch.executions.len();
                shared.restore(std::mem::take(&mut batch.executions));
                shared.healthy.store(false, Ordering::Relaxed);
                // Those waiting go on without it (a change is pushed from memory while the
                // database is down); the rows stay queued and are written once it is back.
                batch.answer(None, Err(WriteError::Unavailable(error.to_string())));
                let backlog = shared.pending().len();
                tracing::warn!(%error, batch = size, backlog, retry_in = ?backoff, "could not write to the index");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
