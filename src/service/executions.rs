//! The execution service: what the GraphQL resolvers call. It owns the read path (cache, then
//! the index for settled executions, then DataSync), recording what finishes, and the
//! rules for batches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use futures::future::join_all;

use crate::cache::{Cached, ExecutionCache};
use crate::config::CacheConfig;
use crate::datasync::DataSyncClient;
use crate::error::GatewayError;
use crate::metrics::{CacheLookups, Metrics};
use crate::model::{ExecutionArn, TaskExecution};
use crate::request::Caller;
use crate::service::index::IndexService;

/// Most ARNs one `taskExecutions` query may ask for.
pub const MAX_BATCH_ARNS: usize = 100;

/// An error unless a batch of `count` `what`s (ARNs, ids) is within [`MAX_BATCH_ARNS`]: the one
/// rule every batched read shares, whoever counts the batch.
pub fn check_batch(count: usize, what: &str) -> Result<(), GatewayError> {
    if count > MAX_BATCH_ARNS {
        return Err(GatewayError::BadUserInput(format!(
            "at most {MAX_BATCH_ARNS} {what} per query; got {count}"
        )));
    }
    Ok(())
}

/// How fresh an answer must be.
#[derive(async_graphql::Enum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consistency {
    /// A cached description is fine (finished executions: up to an hour; running ones: seconds).
    #[default]
    Cached,
    /// Skip the cache (and refresh it): ask DataSync now, unless the history store holds the
    /// execution finished for good, in which case DataSync's answer could not differ.
    Strong,
}

/// Where an answer came from.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServedFrom {
    /// The gateway's cache: nothing was called for this request.
    Cache,
    /// DataSync, called for this request.
    Upstream,
    /// The history store: the execution finished earlier and was recorded; no DataSync call.
    History,
    /// The gateway's index of executions, as the discovery sync last described it (still running).
    Index,
    /// Pushed to a subscription: the watcher's latest poll of DataSync, on this replica or another.
    Live,
    /// DataSync failed, and this is the last description the gateway had, younger than
    /// `--stale-if-error`; `fetchedAt` says how old, and the response's `extensions.warnings`
    /// names the failure.
    Stale,
}

/// One execution, and where it came from.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub execution: Arc<TaskExecution>,
    pub served_from: ServedFrom,
    /// For a stale answer: the DataSync failure it stands in for.
    pub stale_because: Option<GatewayError>,
}

impl Fetched {
    pub fn new(execution: Arc<TaskExecution>, served_from: ServedFrom) -> Self {
        Fetched { execution, served_from, stale_because: None }
    }

    pub fn arn(&self) -> &ExecutionArn {
        &self.execution.task_execution_arn
    }
}

#[derive(Clone)]
pub struct ExecutionService {
    cache: ExecutionCache,
    /// Descriptions from DataSync kept for `--stale-if-error` after they were fetched, whatever
    /// the cache's lifetimes: what a read falls back on when DataSync fails. Only those the
    /// cache keeps for less than the window (running executions): one it keeps longer is too
    /// old to stand in by the time it expires, and a copy of each would cost every cached
    /// execution a second key and entry.
    last_known: moka::sync::Cache<Arc<str>, Arc<TaskExecution>>,
    stale_if_error: Duration,
    datasync: DataSyncClient,
    index: Option<IndexService>,
    lookups: CacheLookups,
}

impl ExecutionService {
    pub fn new(
        config: &CacheConfig,
        datasync: DataSyncClient,
        index: Option<IndexService>,
        metrics: Metrics,
    ) -> Self {
        let stale_if_error = config.stale_if_error;
        // A zero window keeps nothing (moka's capacity 0); otherwise at least as many as the
        // cache can hold (its weigher puts every execution above a kilobyte).
        let capacity = if stale_if_error.is_zero() { 0 } else { config.max_bytes / 1024 };
        let last_known = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .time_to_live(stale_if_error.max(Duration::from_millis(1)))
            .build();
        let cache = ExecutionCache::for_executions(config, &metrics);
        let lookups = metrics.cache_lookups("executions");
        ExecutionService { cache, last_known, stale_if_error, datasync, index, lookups }
    }

    /// Entries in the execution cache, and what they weigh in bytes, for `/metrics`.
    pub async fn cache_size(&self) -> (u64, u64) {
        (self.cache.entries().await, self.cache.weighed_bytes().await)
    }

    /// The index the service reads settled executions from and records finished ones to.
    pub fn index(&self) -> Option<&IndexService> {
        self.index.as_ref()
    }

    /// One execution by ARN; a DataSync call it needs is `caller`'s.
    pub async fn get(
        &self,
        arn: &ExecutionArn,
        consistency: Consistency,
        caller: &Caller,
    ) -> Result<Fetched, GatewayError> {
        caller.may_see(arn.account_id(), &format_args!("task execution {arn}"))?;
        self.check_served(arn)?;
        let fetched = self.get_or_stale(arn.clone(), consistency, caller).await;
        if let Ok(fetched) = &fetched {
            let result = match fetched.served_from {
                ServedFrom::Cache => "hit",
                ServedFrom::Stale => "stale",
                _ => "miss",
            };
            self.lookups.count(result);
        }
        fetched
    }

    /// Whether the execution cache still holds `execution` (this very description) under its
    /// ARN: a refresh, a poll or a STRONG read replaces it.
    pub async fn is_cached(&self, execution: &Arc<TaskExecution>) -> bool {
        let current = self.cache.peek(execution.task_execution_arn.as_str()).await;
        matches!(current, Some(Cached::Found(current)) if Arc::ptr_eq(&current, execution))
    }

    /// Moves whenever the execution cache gains, replaces or drops an entry.
    pub fn cache_generation(&self) -> u64 {
        self.cache.generation()
    }

    /// A time before which the cache will not expire `execution`'s entry: it was put there
    /// once DataSync (or the store) answered, at `fetched_at` or later.
    pub fn cached_at_least_until(&self, execution: &TaskExecution) -> DateTime<Utc> {
        let ttl = chrono::Duration::from_std(self.cache.ttl(execution)).unwrap_or(chrono::Duration::MAX);
        execution.fetched_at.checked_add_signed(ttl).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// An error unless the gateway serves the execution's account and region.
    pub fn check_served(&self, arn: &ExecutionArn) -> Result<(), GatewayError> {
        self.datasync.site_of(arn.account_id(), arn.region()).map(|_| ())
    }

    /// Many executions by ARN, in the order asked, each with its own result. Each distinct ARN
    /// is looked up once; DataSync calls run concurrently, bounded by the client.
    pub async fn get_many(
        &self,
        arns: &[ExecutionArn],
        consistency: Consistency,
        caller: &Caller,
    ) -> Result<Vec<Result<Fetched, GatewayError>>, GatewayError> {
        check_batch(arns.len(), "ARNs")?;
        let mut distinct: Vec<&ExecutionArn> = arns.iter().collect();
        distinct.sort_unstable();
        distinct.dedup();
        let results = join_all(distinct.iter().map(|arn| self.get(arn, consistency, caller))).await;
        let by_arn: HashMap<&ExecutionArn, Result<Fetched, GatewayError>> =
            distinct.into_iter().zip(results).collect();
        Ok(arns.iter().map(|arn| by_arn[arn].clone()).collect())
    }

    /// The answer, or when DataSync fails a client's read, the last description younger than
    /// `--stale-if-error`, marked as such (never for the gateway's own background work, which
    /// must not take an old description for news).
    async fn get_or_stale(
        &self,
        arn: ExecutionArn,
        consistency: Consistency,
        caller: &Caller,
    ) -> Result<Fetched, GatewayError> {
        match self.get_fresh(arn.clone(), consistency, caller).await {
            Err(error @ (GatewayError::UpstreamThrottled | GatewayError::UpstreamUnavailable(_)))
                if !caller.is_background() =>
            {
                match self.last_description(&arn).await {
                    Some(execution) => {
                        Ok(Fetched { execution, served_from: ServedFrom::Stale, stale_because: Some(error) })
                    }
                    None => Err(error),
                }
            }
            other => other,
        }
    }

    /// The newest description younger than `--stale-if-error`: the cache's (a STRONG read may
    /// fail while it holds one), else one that left it.
    async fn last_description(&self, arn: &ExecutionArn) -> Option<Arc<TaskExecution>> {
        let young = |execution: &Arc<TaskExecution>| {
            (Utc::now() - execution.fetched_at).to_std().is_ok_and(|age| age <= self.stale_if_error)
        };
        if let Some(Cached::Found(cached)) = self.cache.peek(arn.as_str()).await {
            if young(&cached) {
                return Some(cached);
            }
        }
        self.last_known.get(arn.as_str()).filter(young)
    }

    async fn get_fresh(
        &self,
        arn: ExecutionArn,
        consistency: Consistency,
        caller: &Caller,
    ) -> Result<Fetched, GatewayError> {
        if consistency == Consistency::Cached {
            if let Some(cached) = self.cache.peek(arn.as_str()).await {
                return Ok(Fetched::new(cached.into_result()?, ServedFrom::Cache));
            }
        }
        // Boxed: a fetch's future (the store's query, the SDK's call) is kilobytes, and every
        // future that awaits this one would carry its room and copy it on each cache hit.
        Box::pin(self.fill(arn, consistency, caller)).await
    }

    /// A miss, or a STRONG read: fetched, and the cache filled with the answer.
    async fn fill(
        &self,
        arn: ExecutionArn,
        consistency: Consistency,
        caller: &Caller,
    ) -> Result<Fetched, GatewayError> {
        // Set by the fetch, which runs only for the caller that fills the cache entry.
        let from_history = AtomicBool::new(false);
        let fetch = async {
            let (cached, source) = self.fetch(&arn, caller).await?;
            from_history.store(source == ServedFrom::History, Ordering::Relaxed);
            Ok(cached)
        };
        let (cached, fetched) = match consistency {
            Consistency::Cached => {
                let lookup = self.cache.get_or_fetch(arn.shared(), fetch).await?;
                (lookup.value, lookup.fetched)
            }
            Consistency::Strong => {
                let cached = fetch.await?;
                self.cache.put(arn.shared(), cached.clone()).await;
                (cached, true)
            }
        };
        let served_from = match (fetched, from_history.load(Ordering::Relaxed)) {
            (false, _) => ServedFrom::Cache,
            (true, true) => ServedFrom::History,
            (true, false) => ServedFrom::Upstream,
        };
        Ok(Fetched::new(cached.into_result()?, served_from))
    }

    /// The store's snapshot if the execution is settled there, else a DataSync call; as a
    /// cacheable answer (NOT_FOUND is an answer, other errors are not).
    async fn fetch(
        &self,
        arn: &ExecutionArn,
        caller: &Caller,
    ) -> Result<(Cached<TaskExecution>, ServedFrom), GatewayError> {
        if let Some(index) = &self.index {
            if let Some(execution) = index.settled(arn).await {
                return Ok((Cached::Found(Arc::new(execution)), ServedFrom::History));
            }
        }
        match self.describe(arn, caller).await {
            Ok(execution) => Ok((Cached::Found(execution), ServedFrom::Upstream)),
            Err(error @ GatewayError::NotFound(_)) => {
                Ok((Cached::NotFound(error.to_string().into()), ServedFrom::Upstream))
            }
            Err(error) => Err(error),
        }
    }

    /// Asks DataSync now, whatever the cache and the store hold, and keeps the answer in the
    /// cache: the watcher's poll, which client reads between polls are answered from.
    pub async fn refresh(
        &self,
        arn: &ExecutionArn,
        caller: &Caller,
    ) -> Result<Arc<TaskExecution>, GatewayError> {
        let execution = self.describe(arn, caller).await?;
        self.cache.put(arn.shared(), Cached::Found(execution.clone())).await;
        Ok(execution)
    }

    /// One DataSync call, recording the execution if it finished.
    async fn describe(
        &self,
        arn: &ExecutionArn,
        caller: &Caller,
    ) -> Result<Arc<TaskExecution>, GatewayError> {
        let execution = Arc::new(self.datasync.describe_task_execution(arn, caller).await?);
        if self.cache.ttl(&execution) < self.stale_if_error {
            self.last_known.insert(arn.shared(), execution.clone());
        }
        if let (Some(index), true) = (&self.index, execution.is_terminal()) {
            index.writer().record(execution.clone());
        }
        Ok(execution)
    }
}
