//! The caches in front of DataSync: moka, with an expiry per entry that depends on what the
//! entry says, and concurrent misses for one key sharing one fetch. May import: `model`,
//! `config`, `error`, `metrics`.
//!
//! A finished execution will not change, so it is kept for long; a running one for seconds;
//! "not found" briefly, so a client retrying a typo does not cost a DataSync call each time.
//! Tasks and the lists of tasks and locations per region change rarely and are kept for a
//! minute or a few. Failures are never cached: the next request tries DataSync again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::Expiry;

use crate::config::CacheConfig;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::model::{Location, Task, TaskExecution, TaskSummary};

/// What DataSync answered for one key.
#[derive(Debug)]
pub enum Cached<V> {
    Found(Arc<V>),
    /// DataSync's "no such thing", with the message for the client.
    NotFound(Arc<str>),
}

impl<V> Clone for Cached<V> {
    fn clone(&self) -> Self {
        match self {
            Cached::Found(value) => Cached::Found(value.clone()),
            Cached::NotFound(message) => Cached::NotFound(message.clone()),
        }
    }
}

impl<V> Cached<V> {
    pub fn into_result(self) -> Result<Arc<V>, GatewayError> {
        match self {
            Cached::Found(value) => Ok(value),
            Cached::NotFound(message) => Err(GatewayError::NotFound(message.to_string())),
        }
    }
}

/// A cache lookup's answer, and whether this caller's own fetch produced it.
pub struct Lookup<V> {
    pub value: Cached<V>,
    pub fetched: bool,
}

/// Answers by key, each kept as long as its policy says.
pub struct AnswerCache<V> {
    /// Keyed by shared text: an execution's key is the very ARN its description holds.
    entries: Cache<Arc<str>, Cached<V>>,
    found_ttl: FoundTtl<V>,
    /// Moves whenever an entry is added, replaced or removed (for any reason): what a copy of
    /// the cache's answers, like a stored response, checks to know it still holds.
    generation: Arc<AtomicU64>,
}

impl<V> Clone for AnswerCache<V> {
    fn clone(&self) -> Self {
        AnswerCache {
            entries: self.entries.clone(),
            found_ttl: self.found_ttl.clone(),
            generation: self.generation.clone(),
        }
    }
}

pub type ExecutionCache = AnswerCache<TaskExecution>;

/// How much an [`AnswerCache`] holds.
pub enum Capacity<V> {
    Entries(u64),
    /// About this many bytes of memory, each entry weighed by the function.
    Bytes(u64, fn(&str, &V) -> u32),
}

impl<V: Send + Sync + 'static> AnswerCache<V> {
    /// `found_ttl` says how long an answer may be reused; "not found" is kept for `not_found_ttl`.
    /// Entries dropped for room are counted as evictions of `name`.
    pub fn new(
        name: &'static str,
        capacity: Capacity<V>,
        found_ttl: impl Fn(&V) -> Duration + Send + Sync + 'static,
        not_found_ttl: Duration,
        metrics: &Metrics,
    ) -> Self {
        let found_ttl: FoundTtl<V> = Arc::new(found_ttl);
        let policy = ExpiryPolicy { found: found_ttl.clone(), not_found: not_found_ttl };
        let metrics = metrics.clone();
        metrics.cache_created(name);
        let generation = Arc::new(AtomicU64::new(0));
        let moved = generation.clone();
        let builder = match capacity {
            Capacity::Entries(entries) => Cache::builder().max_capacity(entries),
            Capacity::Bytes(bytes, weigh) => {
                Cache::builder().max_capacity(bytes).weigher(move |key: &Arc<str>, value: &Cached<V>| {
                    match value {
                        Cached::Found(found) => weigh(key, found),
                        Cached::NotFound(message) => {
                            (ENTRY_OVERHEAD_BYTES + key.len() + message.len()) as u32
                        }
                    }
                })
            }
        };
        let entries = builder
            .expire_after(policy)
            .eviction_listener(move |_, _, cause| {
                moved.fetch_add(1, Ordering::Release);
                if cause == RemovalCause::Size {
                    metrics.cache_eviction(name);
                }
            })
            .build();
        AnswerCache { entries, found_ttl, generation }
    }

    /// See the field: equal values mean no entry was added, replaced or removed in between.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// How long an entry holding `value` is kept from its insertion.
    pub fn ttl(&self, value: &V) -> Duration {
        (self.found_ttl)(value)
    }

    /// Entries held (after moka has applied what it had pending).
    pub async fn entries(&self) -> u64 {
        self.entries.run_pending_tasks().await;
        self.entries.entry_count()
    }

    /// What the entries weigh, in bytes, against `--cache-max-bytes`.
    pub async fn weighed_bytes(&self) -> u64 {
        self.entries.run_pending_tasks().await;
        self.entries.weighted_size()
    }

    /// The cached answer for `key`, or the one `fetch` produces. Concurrent misses for one key
    /// share a single `fetch`: a crowd asking for a cold key costs DataSync one call. An error
    /// from `fetch` is returned to every waiter and not cached.
    pub async fn get_or_fetch(
        &self,
        key: impl Into<Arc<str>>,
        fetch: impl std::future::Future<Output = Result<Cached<V>, GatewayError>>,
    ) -> Result<Lookup<V>, GatewayError> {
        let entry = self
            .entries
            .entry(key.into())
            .or_try_insert_with(fetch)
            .await
            .map_err(|error| (*error).clone())?;
        if entry.is_fresh() {
            self.generation.fetch_add(1, Ordering::Release);
        }
        Ok(Lookup { fetched: entry.is_fresh(), value: entry.into_value() })
    }

    /// The cached answer for `key`, if there is one; never fetches.
    pub async fn peek(&self, key: &str) -> Option<Cached<V>> {
        self.entries.get(key).await
    }

    /// Drops the entry: the next read fetches (DataSync said it changed).
    pub async fn forget(&self, key: &str) {
        self.entries.invalidate(key).await;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Replaces the entry with a newer answer (after a read that bypassed the cache).
    pub async fn put(&self, key: impl Into<Arc<str>>, value: Cached<V>) {
        self.entries.insert(key.into(), value).await;
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// What moka and the allocator spend on an entry beside its key and value: an estimate; `cargo
/// bench --bench memory` shows the resulting weights err on the safe side.
const ENTRY_OVERHEAD_BYTES: usize = 250;

/// An execution's approximate footprint in the cache: its struct, the heap its strings and
/// lists take (about its JSON length: what is not a known enum member is text), its key.
fn execution_bytes(key: &str, execution: &TaskExecution) -> u32 {
    let text = serde_json::to_vec(execution).map_or(0, |json| json.len());
    let bytes = ENTRY_OVERHEAD_BYTES + std::mem::size_of::<TaskExecution>() + text + key.len();
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl ExecutionCache {
    pub fn for_executions(config: &CacheConfig, metrics: &Metrics) -> Self {
        let (finished, running) = (config.finished_ttl, config.running_ttl);
        AnswerCache::new(
            "executions",
            Capacity::Bytes(config.max_bytes, execution_bytes),
            move |execution: &TaskExecution| if execution.is_settled() { finished } else { running },
            config.not_found_ttl,
            metrics,
        )
    }
}

/// Sites (an account's region) whose lists of tasks and of locations are kept: the 5,000 of
/// 1,000 accounts in 5 regions, at most some 100 tasks each.
const LISTED_SITES: u64 = 8_192;

/// Tasks by ARN, and per site the lists of tasks and locations.
#[derive(Clone)]
pub struct TaskCaches {
    pub tasks: AnswerCache<Task>,
    pub task_lists: AnswerCache<Vec<TaskSummary>>,
    pub locations: AnswerCache<Vec<Location>>,
}

impl TaskCaches {
    pub fn new(config: &CacheConfig, metrics: &Metrics) -> Self {
        let (task_ttl, list_ttl, not_found) = (config.task_ttl, config.location_ttl, config.not_found_ttl);
        TaskCaches {
            tasks: AnswerCache::new(
                "tasks",
                Capacity::Entries(config.task_capacity),
                move |_: &Task| task_ttl,
                not_found,
                metrics,
            ),
            task_lists: AnswerCache::new(
                "task_lists",
                Capacity::Entries(LISTED_SITES),
                move |_: &Vec<TaskSummary>| task_ttl,
                not_found,
                metrics,
            ),
            locations: AnswerCache::new(
                "locations",
                Capacity::Entries(LISTED_SITES),
                move |_: &Vec<Location>| list_ttl,
                not_found,
                metrics,
            ),
        }
    }
}

type FoundTtl<V> = Arc<dyn Fn(&V) -> Duration + Send + Sync>;

struct ExpiryPolicy<V> {
    found: FoundTtl<V>,
    not_found: Duration,
}

impl<V> ExpiryPolicy<V> {
    fn ttl(&self, value: &Cached<V>) -> Duration {
        match value {
            Cached::Found(found) => (self.found)(found),
            Cached::NotFound(_) => self.not_found,
        }
    }
}

impl<V> Expiry<Arc<str>, Cached<V>> for ExpiryPolicy<V> {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        value: &Cached<V>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(self.ttl(value))
    }

    // An insert over an existing entry is a new answer: its own TTL, not what was left of the old one.
    fn expire_after_update(
        &self,
        _key: &Arc<str>,
        value: &Cached<V>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl(value))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn execution(status: &str, report_status: Option<&str>) -> TaskExecution {
        serde_json::from_value(serde_json::json!({
            "taskExecutionArn": "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60001/execution/exec-0a1b2c3d4e5f60101",
            "status": status, "options": null, "excludes": [], "includes": [], "startTime": null,
            "estimatedFilesToTransfer": 0, "estimatedBytesToTransfer": 0, "filesTransferred": 0,
            "bytesWritten": 0, "bytesTransferred": 0, "bytesCompressed": 0, "result": null,
            "filesDeleted": 0, "filesSkipped": 0, "filesVerified": 0, "estimatedFilesToDelete": 0,
            "reportResult": report_status.map(|status| serde_json::json!({ "status": status })),
            "taskMode": null, "filesPrepared": 0, "fetchedAt": "2026-11-01T22:00:00Z",
        }))
        .unwrap()
    }

    /// Short lifetimes for running executions and "not found", an hour for settled ones.
    fn cache() -> ExecutionCache {
        let mut config = crate::config::Config::defaults().cache;
        config.running_ttl = Duration::from_millis(150);
        config.not_found_ttl = Duration::from_millis(150);
        config.finished_ttl = Duration::from_secs(3600);
        ExecutionCache::for_executions(&config, &Metrics::default())
    }

    /// `get_or_fetch` with a fetch that counts its calls and answers `answer`.
    async fn lookup(
        cache: &ExecutionCache,
        key: &str,
        calls: &AtomicUsize,
        answer: Result<Cached<TaskExecution>, GatewayError>,
    ) -> Result<Lookup<TaskExecution>, GatewayError> {
        cache
            .get_or_fetch(key, async {
                calls.fetch_add(1, Ordering::SeqCst);
                answer
            })
            .await
    }

    #[test]
    fn only_a_settled_execution_is_kept_for_the_finished_lifetime() {
        let cache = cache();
        let (finished, running) = (Duration::from_secs(3600), Duration::from_millis(150));
        assert_eq!(cache.ttl(&execution("SUCCESS", None)), finished);
        assert_eq!(cache.ttl(&execution("ERROR", Some("SUCCESS"))), finished, "report written");
        assert_eq!(cache.ttl(&execution("SUCCESS", Some("PENDING"))), running, "its report may still change");
        for status in ["QUEUED", "LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "CANCELLING"] {
            assert_eq!(cache.ttl(&execution(status, None)), running, "{status}");
        }
        assert_eq!(cache.ttl(&execution("INITIALIZING", None)), running, "a status this build does not know");
    }

    #[tokio::test]
    async fn a_running_execution_and_not_found_expire_with_their_lifetime_a_settled_one_stays() {
        let cache = cache();
        let calls = AtomicUsize::new(0);
        let found = |status| Ok(Cached::Found(Arc::new(execution(status, None))));
        let not_found = || Ok(Cached::NotFound("no such execution".into()));

        for (key, answer) in
            [("running", found("TRANSFERRING")), ("finished", found("SUCCESS")), ("typo", not_found())]
        {
            assert!(lookup(&cache, key, &calls, answer).await.unwrap().fetched, "{key}: a miss fetches");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        for key in ["running", "finished", "typo"] {
            let hit = lookup(&cache, key, &calls, Err(GatewayError::Internal)).await.unwrap();
            assert!(!hit.fetched, "{key}: fresh, answered from the cache");
        }
        assert!(matches!(
            lookup(&cache, "typo", &calls, Err(GatewayError::Internal)).await.unwrap().value,
            Cached::NotFound(message) if &*message == "no such execution"
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 3, "hits do not fetch");

        tokio::time::sleep(Duration::from_millis(400)).await;
        let finished = lookup(&cache, "finished", &calls, Err(GatewayError::Internal)).await.unwrap();
        assert!(!finished.fetched, "a settled execution outlives the running lifetime");
        for key in ["running", "typo"] {
            let again = lookup(&cache, key, &calls, found("SUCCESS")).await.unwrap();
            assert!(again.fetched, "{key}: expired, fetched again");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        let replaced = cache.peek("running").await.expect("the new answer is cached");
        assert!(matches!(replaced, Cached::Found(execution) if execution.status.raw() == "SUCCESS"));
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch_and_one_answer() {
        let cache = cache();
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(Cached::Found(Arc::new(execution("SUCCESS", None))))
        };
        let lookups =
            futures::future::join_all((0..16).map(|_| cache.get_or_fetch("crowded", fetch()))).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one fetch for the crowd");
        let lookups: Vec<Lookup<TaskExecution>> = lookups.into_iter().map(Result::unwrap).collect();
        assert_eq!(lookups.iter().filter(|lookup| lookup.fetched).count(), 1, "one caller's own fetch");
        let Cached::Found(first) = &lookups[0].value else { panic!("found") };
        for lookup in &lookups {
            assert!(
                matches!(&lookup.value, Cached::Found(value) if Arc::ptr_eq(value, first)),
                "the same answer"
            );
        }
    }

    #[tokio::test]
    async fn a_failed_fetch_reaches_every_waiter_and_is_not_cached() {
        let cache = cache();
        let calls = AtomicUsize::new(0);
        let failing = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err::<Cached<TaskExecution>, _>(GatewayError::UpstreamThrottled)
        };
        let failures =
            futures::future::join_all((0..4).map(|_| cache.get_or_fetch("flaky", failing()))).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one fetch");
        assert!(failures.iter().all(|failure| matches!(failure, Err(GatewayError::UpstreamThrottled))));
        assert!(cache.peek("flaky").await.is_none(), "nothing cached");
        let generation = cache.generation();
        let retried =
            lookup(&cache, "flaky", &calls, Ok(Cached::Found(Arc::new(execution("SUCCESS", None)))));
        assert!(retried.await.unwrap().fetched, "the next request asks again");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(cache.generation() > generation, "a new entry moves the generation");
    }

    #[tokio::test]
    async fn put_replaces_an_answer_and_moves_the_generation_a_hit_or_a_peek_does_not() {
        let cache = cache();
        let calls = AtomicUsize::new(0);
        assert!(cache.peek("key").await.is_none(), "peek never fetches");
        lookup(&cache, "key", &calls, Ok(Cached::Found(Arc::new(execution("TRANSFERRING", None)))))
            .await
            .unwrap();
        let generation = cache.generation();
        lookup(&cache, "key", &calls, Err(GatewayError::Internal)).await.unwrap();
        cache.peek("key").await.unwrap();
        assert_eq!(cache.generation(), generation, "reads change nothing");
        cache.put("key", Cached::Found(Arc::new(execution("SUCCESS", None)))).await;
        assert!(cache.generation() > generation);
        let hit = lookup(&cache, "key", &calls, Err(GatewayError::Internal)).await.unwrap();
        assert!(!hit.fetched);
        assert!(matches!(hit.value, Cached::Found(execution) if execution.status.raw() == "SUCCESS"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
