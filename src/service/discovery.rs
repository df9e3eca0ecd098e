//! The discovery sync: on a schedule, lists each served site's (account's region's) tasks and
//! executions and brings the index up to date, so that lists and dashboards are answered from
//! PostgreSQL and AWS's cost is set by this schedule, not by client traffic.
//!
//! Per site and run: ListTasks (refreshes the cached task list), ListTaskExecutions (every
//! page), then DescribeTaskExecution for each listed execution that is new to the index, or
//! finished with its task report still pending, through the same cache as client reads, so a
//! client's read and the sync share calls. (Executions the index holds as running are the
//! watcher's: one replica polls each under its lease, and a second describer would double it.)
//! Described executions go to the index through [`Live::observed`], so subscribers hear of new
//! ones; what DataSync no longer lists is marked so. An execution that fails to describe stays
//! unsettled and is tried again next run; a run that fails (throttling, a page token DataSync
//! rejects, an account whose role is refused) is retried whole at the next one, and fails
//! alone: the other sites are synced as usual.
//!
//! Each site is a job of its own, `discovery:<site>`, under its own lease in `job_leases`. The
//! sites are split by rendezvous hashing between the replicas that run the sync (each holds a
//! `discovery-replica:<name>` lease, and its heartbeat is alive): every replica computes the
//! same owner for each site from the same list, takes its own sites' leases and gives up the
//! others. A lease is only taken from a replica whose heartbeat or lease ran out, so a site is
//! not synced by two replicas at once unless its holder stalls past its heartbeat mid-run (the
//! run does not check its lease again); a dead replica's sites move as soon as its heartbeat
//! runs out.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::datasync::DataSyncClient;
use crate::error::GatewayError;
use crate::model::{ExecutionArn, Site, TaskExecution};
use crate::request::Caller;
use crate::service::executions::{Consistency, ExecutionService};
use crate::service::live::Live;
use crate::service::tasks::TaskService;
use crate::store::coordination::sync_runs::SyncRun;
use crate::store::coordination::Coordination;
use crate::store::index::IndexStore;
use crate::store::within;

/// Descriptions in flight at once per site during a run.
const DESCRIBE_CONCURRENCY: usize = 4;

/// Sites synced at once by one replica: each has a call budget of its own, so a replica with
/// many accounts' sites keeps several budgets busy, not one after another.
const SITES_AT_ONCE: usize = 8;

/// What each site job's lease is named after.
const JOB_PREFIX: &str = "discovery:";

/// What a replica running the sync holds a lease named after (with its name), so that the
/// sites are split between those replicas only: one started with `--discovery off` has a
/// heartbeat too, and would be given sites it never syncs.
const SYNCING_REPLICA: &str = "discovery-replica:";

/// The last run of one site on this replica, for `/readyz`.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteSync {
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

#[derive(Clone)]
pub struct Discovery {
    status: Arc<Mutex<HashMap<Site, SiteSync>>>,
    /// Whether this replica holds no site's job (another runs them, or the leases could not be read).
    standby: Arc<std::sync::atomic::AtomicBool>,
    coordination: Coordination,
    limit: Duration,
}

impl Discovery {
    /// Starts syncing this replica's share of the served sites now and then every `interval`;
    /// the sync's task.
    pub fn start(sync: SyncParts, interval: Duration) -> (Self, tokio::task::AbortHandle) {
        let discovery = Discovery {
            status: Arc::default(),
            standby: Arc::default(),
            coordination: sync.coordination.clone(),
            limit: sync.limit,
        };
        let sync = Arc::new(Sync { parts: sync, caller: Caller::internal("discovery") });
        let (status, standby) = (discovery.status.clone(), discovery.standby.clone());
        // Held across runs with room for one to be late; a dead holder's are taken as soon as
        // its heartbeat runs out, else within three intervals.
        let lease = interval * 3;
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let held = match sync.hold_share(lease).await {
                    Ok(held) => held,
                    Err(error) => {
                        tracing::warn!(%error, "discovery: the job leases could not be read; skipping this run");
                        standby.store(true, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                };
                standby.store(held.is_empty(), std::sync::atomic::Ordering::Relaxed);
                let reports: Vec<(Site, SiteSync)> = futures::stream::iter(held)
                    .map(|site| {
                        let sync = sync.clone();
                        async move {
                            let report = sync.site(&site).await;
                            (site, report)
                        }
                    })
                    .buffer_unordered(SITES_AT_ONCE)
                    .collect()
                    .await;
                let mut status = status.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                for (site, report) in reports {
                    let runs = status.get(&site).map_or(0, |previous| previous.runs) + 1;
                    status.insert(site, SiteSync { runs, ..report });
                }
            }
        });
        (discovery, task.abort_handle())
    }

    /// This replica's last run of each site it synced.
    pub fn status(&self) -> HashMap<Site, SiteSync> {
        self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Whether this replica leaves the sync to others.
    pub fn standby(&self) -> bool {
        self.standby.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every site's last run, by any replica.
    pub async fn runs(&self) -> Result<Vec<SyncRun>, GatewayError> {
        within(self.limit, self.coordination.sync_runs()).await.map_err(GatewayError::from)
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

/// The replica that syncs `job` among `replicas`: the one scoring highest for it. Every replica
/// computes the same answer from the same list, and when one joins or leaves, only the jobs it
/// wins or held move.
fn owner<'a>(job: &str, replicas: &'a [String]) -> Option<&'a str> {
    replicas.iter().max_by_key(|replica| fnv1a(job, replica)).map(String::as_str)
}

/// FNV-1a over `job`, a separator and `replica`: the same on every replica and every build.
fn fnv1a(job: &str, replica: &str) -> u64 {
    let bytes = job.bytes().chain(std::iter::once(0)).chain(replica.bytes());
    bytes.fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

struct Sync {
    parts: SyncParts,
    caller: Caller,
}

impl Sync {
    /// Takes this replica's share of the sites' jobs (and gives up the rest); the sites it holds.
    async fn hold_share(&self, lease: Duration) -> Result<Vec<Site>, crate::store::StoreError> {
        let parts = &self.parts;
        let me = parts.live.replica();
        let syncing = format!("{SYNCING_REPLICA}{me}");
        within(parts.limit, parts.coordination.acquire_job(&syncing, me, lease)).await?;
        let mut replicas = within(parts.limit, parts.coordination.live_replicas(SYNCING_REPLICA)).await?;
        if !replicas.iter().any(|replica| replica == me) {
            // Its first heartbeat may not be written yet.
            replicas.push(me.to_owned());
        }
        let sites = parts.datasync.sites();
        let jobs: Vec<(String, Site)> =
            sites.into_iter().map(|site| (format!("{JOB_PREFIX}{site}"), site)).collect();
        let mine: Vec<String> = jobs
            .iter()
            .filter(|(job, _)| owner(job, &replicas) == Some(me))
            .map(|(job, _)| job.clone())
            .collect();
        let held: HashSet<String> =
            within(parts.limit, parts.coordination.hold_jobs(JOB_PREFIX, &mine, me, lease))
                .await?
                .into_iter()
                .collect();
        Ok(jobs.into_iter().filter(|(job, _)| held.contains(job)).map(|(_, site)| site).collect())
    }

    async fn site(&self, site: &Site) -> SiteSync {
        let started = Instant::now();
        let last_run_at = Utc::now();
        let mut report = SiteSync { last_run_at: Some(last_run_at), ..SiteSync::default() };
        if let Err(error) = self.run(site, &mut report).await {
            tracing::warn!(%site, %error, "discovery sync failed; retried at the next run");
            report.error = Some(error.to_string());
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(%site, ?report, "discovery sync");
        let run = SyncRun {
            account_id: site.account,
            region: site.region.clone(),
            last_run_at,
            duration_ms: report.duration_ms as i64,
            error: report.error.clone(),
            replica: self.parts.live.replica().to_owned(),
            listed: report.listed as i32,
            described: report.described as i32,
            runs: 1,
        };
        let parts = &self.parts;
        if let Err(error) = within(parts.limit, parts.coordination.record_sync(&site.to_string(), &run)).await
        {
            tracing::warn!(%site, %error, "discovery: the run could not be recorded");
        }
        report
    }

    async fn run(&self, site: &Site, report: &mut SiteSync) -> Result<(), GatewayError> {
        let parts = &self.parts;
        let tasks = parts.datasync.list_tasks(site, &self.caller).await?;
        report.tasks = tasks.len();
        parts.tasks.listed(site, tasks).await;

        let listed_at = Utc::now();
        let listed = parts.datasync.list_executions(site, None, &self.caller).await?;
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
                    tracing::debug!(%site, %error, "discovery: an execution could not be described");
                }
            }
        }
        report.described = described.len();
        parts.live.observed(&described).await.map_err(unavailable)?;
        within(parts.limit, parts.index.mark_listed(site, &arns, listed_at)).await.map_err(unavailable)?;
        Ok(())
    }
}

fn unavailable(error: crate::store::StoreError) -> GatewayError {
    tracing::warn!(%error, "discovery: the index could not be read or written");
    error.into()
}
