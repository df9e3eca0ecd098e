//! The discovery sync: on a schedule, lists each served region's tasks and executions and brings
//! the index up to date, so that lists and dashboards are answered from PostgreSQL and AWS's
//! cost is set by this schedule, not by client traffic.
//!
//! Per region and run: ListTasks (refreshes the cached task list), ListTaskExecutions (every
//! page), then DescribeTaskExecution for each listed execution that is new to the index, or
//! finished with its task report still pending, through the same cache as client reads, so a
//! client's read and the sync share calls. (Executions the index holds as running are the
//! watcher's: one replica polls each under its lease, and a second describer would double it.) Described executions
//! go to the index through [`Live::observed`], so subscribers hear of new ones; what DataSync
//! no longer lists is marked so. With several replicas, one runs the sync at a time: the one
//! holding the `discovery` job lease. An execution that fails to describe stays unsettled and is tried again
//! next run; a run that fails (throttling, a page token DataSync rejects) is retried whole at
//! the next one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::datasync::DataSyncClient;
use crate::error::GatewayError;
use crate::model::{ExecutionArn, TaskExecution};
use crate::request::Caller;
use crate::service::executions::{Consistency, ExecutionService};
use crate::service::live::Live;
use crate::service::tasks::TaskService;
use crate::store::coordination::Coordination;
use crate::store::index::IndexStore;
use crate::store::within;

/// Descriptions in flight at once per region during a run.
const DESCRIBE_CONCURRENCY: usize = 4;

/// The last run of one region, for `/readyz`.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionSync {
    pub last_run_at: Option<DateTime<Utc>>,
    pub duration_ms: u64,
    pub tasks: usize,
    pub listed: usize,
    pub described: usize,
    /// Executions that could not be described this run (tried again next run).
    pub failed: usize,
    /// Why the last run failed, if it did.
    pub error: Option<String>,
    pub runs: u64,
}

/// The job lease's name, in `job_leases`.
const JOB: &str = "discovery";

#[derive(Clone)]
pub struct Discovery {
    status: Arc<Mutex<HashMap<String, RegionSync>>>,
    /// Whether another replica runs the sync (or the lease could not be read).
    standby: Arc<std::sync::atomic::AtomicBool>,
}

impl Discovery {
    /// Starts syncing every served region now and then every `interval`; the sync's task.
    pub fn start(sync: SyncParts, interval: Duration) -> (Self, tokio::task::AbortHandle) {
        let discovery = Discovery { status: Arc::default(), standby: Arc::default() };
        let sync = Sync { parts: sync, caller: Caller::internal("discovery") };
        let (status, standby) = (discovery.status.clone(), discovery.standby.clone());
        // Held across runs with room for one to be late; a dead holder's is taken within three intervals.
        let lease = interval * 3;
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let parts = &sync.parts;
                let held =
                    within(parts.limit, parts.coordination.acquire_job(JOB, parts.live.replica(), lease))
                        .await;
                standby.store(!matches!(held, Ok(true)), std::sync::atomic::Ordering::Relaxed);
                match held {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(error) => {
                        tracing::warn!(%error, "discovery: the job lease could not be read; skipping this run");
                        continue;
                    }
                }
                for region in parts.datasync.regions().into_iter().map(str::to_owned).collect::<Vec<_>>() {
                    let report = sync.region(&region).await;
                    let mut status = status.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    let runs = status.get(&region).map_or(0, |previous| previous.runs) + 1;
                    status.insert(region, RegionSync { runs, ..report });
                }
            }
        });
        (discovery, task.abort_handle())
    }

    pub fn status(&self) -> HashMap<String, RegionSync> {
        self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Whether this replica leaves the sync to another.
    pub fn standby(&self) -> bool {
        self.standby.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// What the sync reads and writes through.
pub struct SyncParts {
    pub executions: ExecutionService,
    pub tasks: TaskService,
    pub datasync: DataSyncClient,
    /// Which executions the index holds, and what DataSync still lists.
    pub index: IndexStore,
    pub coordination: Coordination,
    /// Where described executions go (the index's one writer) and who hears of them.
    pub live: Live,
    /// Each database call's time limit.
    pub limit: Duration,
}

struct Sync {
    parts: SyncParts,
    caller: Caller,
}

impl Sync {
    async fn region(&self, region: &str) -> RegionSync {
        let started = Instant::now();
        let mut report = RegionSync { last_run_at: Some(Utc::now()), ..RegionSync::default() };
        if let Err(error) = self.run(region, &mut report).await {
            tracing::warn!(%region, %error, "discovery sync failed; retried at the next run");
            report.error = Some(error.to_string());
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(%region, ?report, "discovery sync");
        report
    }

    async fn run(&self, region: &str, report: &mut RegionSync) -> Result<(), GatewayError> {
        let parts = &self.parts;
        let tasks = parts.datasync.list_tasks(region, &self.caller).await?;
        report.tasks = tasks.len();
        parts.tasks.listed(region, tasks).await;

        let listed_at = Utc::now();
        let listed = parts.datasync.list_executions(region, None, &self.caller).await?;
        report.listed = listed.len();
        let arns: Vec<ExecutionArn> = listed.iter().map(|(arn, _)| arn.clone()).collect();
        let known = within(parts.limit, parts.index.index_states(&arns)).await.map_err(unavailable)?;
        // What to describe: executions new to the index, and finished ones whose task report
        // was still pending. Running ones are the watcher's (one replica polls each, under its
        // lease); describing them here too would poll them twice.
        let stale: Vec<ExecutionArn> = listed
            .iter()
            .filter(|(arn, _)| match known.get(arn) {
                None => true,
                Some((_, report_status)) => report_status.as_deref() == Some("PENDING"),
            })
            .map(|(arn, _)| arn.clone())
            .collect();

        // Owned futures: a stream of futures borrowing `self` is not `Send` enough for a task.
        let results: Vec<Result<Arc<TaskExecution>, GatewayError>> = futures::stream::iter(stale)
            .map(|arn| {
                let (executions, caller) = (parts.executions.clone(), self.caller.clone());
                async move { Ok(executions.get(&arn, Consistency::Cached, &caller).await?.execution) }
            })
            .buffer_unordered(DESCRIBE_CONCURRENCY)
            .collect()
            .await;
        let mut described = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(execution) => described.push(execution),
                Err(error) => {
                    report.failed += 1;
                    tracing::debug!(%region, %error, "discovery: an execution could not be described");
                }
            }
        }
        report.described = described.len();
        parts.live.observed(&described).await.map_err(unavailable)?;
        within(parts.limit, parts.index.mark_listed(region, &arns, listed_at)).await.map_err(unavailable)?;
        Ok(())
    }
}

fn unavailable(error: crate::store::StoreError) -> GatewayError {
    tracing::warn!(%error, "discovery: the index could not be read or written");
    error.into()
}
