//! Live following: running executions polled once per interval whatever the audience, and the
//! changes pushed to subscribers on every replica.
//!
//! - [`hub`]: what this replica knows of running executions, and its subscribers' channels;
//! - `watcher`: polls the running executions this replica holds leases on, and those it is
//!   told about (EventBridge hints);
//! - `listen`: changes written by other replicas, from PostgreSQL's `NOTIFY`.
//!
//! With a database, each running execution in the index is polled by the one replica holding
//! its lease, and every description it gets is written to the index and announced; without one
//! (or while it is down), each replica polls what its own subscribers follow. Whatever is
//! observed is written through the index's one writer ([`Live::observed`]) before it is pushed.

mod hints;
pub mod hub;
mod listen;
mod watcher;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::Notify;

use crate::error::GatewayError;
use crate::model::{ExecutionArn, TaskExecution};
use crate::request::Caller;
use crate::service::executions::{Consistency, ExecutionService, ServedFrom};
use crate::service::index::IndexService;
use crate::store::coordination::Coordination;
use crate::store::index::filter::SnapshotFilter;
use crate::store::{within, StoreError};
pub use hints::HintStatus;
use hints::Hints;
use hub::{ExecutionEvent, Hub};
pub use watcher::WatcherStatus;

/// The database, for a replica that has one: the index it writes through and reads back
/// from, and the leases and notifications it shares with the other replicas.
#[derive(Clone)]
pub struct LiveStore {
    pub index: IndexService,
    pub coordination: Coordination,
    /// Each lease, heartbeat and notification call's time limit.
    pub limit: Duration,
}

/// How live following is set up.
#[derive(Clone, Copy, Debug)]
pub struct LiveSettings {
    /// How often each running execution is polled (QUEUED ones half as often).
    pub poll_interval: Duration,
    /// How long a lease lasts without renewal; a dead replica's work is taken over within two.
    pub lease: Duration,
}

#[derive(Clone)]
pub struct Live {
    shared: Arc<Shared>,
}

struct Shared {
    hub: Arc<Hub>,
    executions: ExecutionService,
    store: Option<LiveStore>,
    /// This process, as the owner of leases and the origin of notifications.
    replica: String,
    settings: LiveSettings,
    /// Wakes the watcher: something to poll now, or leases to claim now.
    poke: Notify,
    claim_now: AtomicBool,
    /// Set at shutdown: the watcher stops claiming and polling.
    stopping: AtomicBool,
    /// Executions to poll at once (EventBridge said they changed).
    hints: Arc<Hints>,
    status: Mutex<WatcherStatus>,
}

impl Live {
    /// Starts the watcher and, with a database, the listener for other replicas' changes; the
    /// handles of those tasks.
    pub fn start(
        executions: ExecutionService,
        store: Option<LiveStore>,
        settings: LiveSettings,
    ) -> (Self, Vec<tokio::task::AbortHandle>) {
        let replica = replica_id();
        tracing::info!(%replica, poll_interval = ?settings.poll_interval, lease = ?settings.lease, "live following");
        let live = Live {
            shared: Arc::new(Shared {
                hub: Arc::default(),
                executions,
                store,
                status: Mutex::new(WatcherStatus::new(&replica, &settings)),
                replica,
                settings,
                poke: Notify::new(),
                claim_now: AtomicBool::new(true),
                stopping: AtomicBool::new(false),
                hints: Arc::default(),
            }),
        };
        let mut tasks = vec![
            tokio::spawn(watcher::run(live.clone())).abort_handle(),
            tokio::spawn(hints::run(live.clone())).abort_handle(),
        ];
        if live.shared.store.is_some() {
            tasks.push(tokio::spawn(listen::run(live.clone())).abort_handle());
        }
        (live, tasks)
    }

    pub fn replica(&self) -> &str {
        &self.shared.replica
    }

    pub fn status(&self) -> WatcherStatus {
        let mut status = self.shared.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        (status.running_known, status.subscribers) = self.shared.hub.counts();
        status
    }

    /// `arn` now, then each change until it finishes. Errors (a malformed or unknown ARN, DataSync
    /// failing) come before the first description.
    pub async fn follow(
        &self,
        arn: &ExecutionArn,
        caller: &Caller,
    ) -> Result<impl Stream<Item = (Arc<TaskExecution>, ServedFrom)>, GatewayError> {
        // Subscribed before the first read, so that no change between the two is missed.
        let changes = self.shared.hub.subscribe(arn);
        let fetched = self.shared.executions.get(arn, Consistency::Cached, caller).await?;
        let (first, served_from) = (fetched.execution, fetched.served_from);
        if !first.is_terminal() {
            // Into the index, so that a replica takes its lease; and the watcher told to look.
            if let Err(error) = self.observed(std::slice::from_ref(&first)).await {
                tracing::debug!(%error, "a followed execution could not be indexed; this replica polls it");
            }
            self.shared.poke.notify_one();
        }
        // The first description is served from wherever reads are; each later one is a pushed
        // change newer than the last one sent, until one is terminal.
        let changes = futures::stream::unfold((first.clone(), changes), |(last, mut changes)| async move {
            if last.is_terminal() {
                return None;
            }
            loop {
                let next = changes.next().await?;
                if next.fetched_at > last.fetched_at {
                    return Some(((next.clone(), ServedFrom::Live), (next, changes)));
                }
            }
        });
        Ok(futures::stream::once(async move { (first, served_from) }).chain(changes))
    }

    /// Fleet events matching `filter`, from now on.
    pub fn events(&self, filter: SnapshotFilter) -> impl Stream<Item = ExecutionEvent> {
        let feed = self.shared.hub.feed();
        futures::stream::unfold((feed, filter), |(mut feed, filter)| async move {
            loop {
                match feed.recv().await {
                    Ok(event) if filter.matches(&event.execution) => return Some((event, (feed, filter))),
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a fleet-feed subscriber fell behind; events skipped");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// An outside hint that `arn` changed, to `status` if known: it is polled soon, unless this
    /// replica already knows it in that status or too many hints wait already (dropped, and
    /// counted). Whether a poll was queued.
    pub fn hint(&self, arn: &ExecutionArn, status: Option<&str>) -> Result<bool, GatewayError> {
        self.shared.executions.check_served(arn)?;
        if status.is_some_and(|status| self.shared.hub.knows(arn, status)) {
            return Ok(false);
        }
        Ok(self.shared.hints.push(arn.clone()))
    }

    /// The hint queue's length and what it dropped.
    pub fn hint_status(&self) -> HintStatus {
        self.shared.hints.status()
    }

    /// New descriptions: written to the index (through its one writer), then pushed to this
    /// replica's subscribers and, those that are news, announced to the other replicas. Written
    /// first, so that a client told an execution FINISHED and reading the index at once reads
    /// it finished. With the database down they are pushed all the same (from memory, and kept
    /// in the writer's backlog), and the error returned.
    pub async fn observed(&self, executions: &[Arc<TaskExecution>]) -> Result<(), StoreError> {
        let written = match &self.shared.store {
            Some(store) if !executions.is_empty() => store.index.write(executions).await,
            _ => Ok(()),
        };
        let news: Vec<ExecutionArn> = executions
            .iter()
            .filter(|execution| self.shared.hub.publish((*execution).clone()))
            .map(|execution| execution.task_execution_arn.clone())
            .collect();
        written?;
        let Some(store) = &self.shared.store else { return Ok(()) };
        if news.is_empty() {
            return Ok(());
        }
        if executions.iter().any(|execution| !execution.is_terminal()) {
            // Running rows that may be new to the index: claim them now, not at the next renewal.
            self.shared.claim_now.store(true, Ordering::Relaxed);
            self.shared.poke.notify_one();
        }
        within(store.limit, store.coordination.notify_changed(&self.shared.replica, &news)).await
    }

    /// Stops the watcher and gives up this replica's leases, so that another takes its
    /// executions (and the discovery sync) at once.
    pub async fn release(&self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        self.shared.poke.notify_one();
        if let Some(store) = &self.shared.store {
            let replica = &self.shared.replica;
            let coordination = &store.coordination;
            let released = async {
                Ok((
                    coordination.release_executions(replica).await?,
                    coordination.release_jobs(replica).await?,
                ))
            };
            match within(store.limit, released).await {
                Ok((executions, ())) => tracing::info!(executions, "leases released"),
                Err(error) => {
                    tracing::warn!(%error, "could not release this replica's leases; they run out instead")
                }
            }
        }
    }
}

/// A name for this process that no other replica has: host, process id and start time.
fn replica_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "gateway".into());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos() % 1_000_000_000_000)
        .unwrap_or_default();
    format!("{host}-{}-{started:x}", std::process::id())
}
