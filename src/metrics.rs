//! Prometheus metrics, served at `/metrics` (on the admin address when there is one).
//!
//! prometheus-client rather than the `metrics` facade: its registry is a value, not a process
//! global, so each gateway owns its own (tests run many gateways in one process and check
//! exact counts) and nothing is recorded by code that was not handed a [`Metrics`].
//!
//! Counters and histograms are recorded where things happen; levels (cache entries, backlogs,
//! open connections, the watcher's state) are read when `/metrics` is scraped ([`Levels`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Operation names kept as label values; the rest are counted as `other`, so that clients
/// naming operations freely cannot grow the registry without bound.
const MAX_OPERATION_NAMES: usize = 200;
/// Times a name must be seen before it gets a label of its own: an attacker's one-off names
/// never do, so they cannot take the places of the names real clients send again and again.
const NAME_EARNS_LABEL: u32 = 3;
/// Names counted while they earn a label; when full, every count is halved and those at zero
/// are forgotten, which keeps the frequent ones.
const MAX_CANDIDATE_NAMES: usize = 10_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
    /// query, mutation or subscription.
    pub kind: &'static str,
    pub transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

/// A trusted document: its id and operation name, both from the documents the gateway serves,
/// so the label set is bounded by them.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DocumentLabels {
    document: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabels {
    name: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: &'static str,
    region: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegionLabels {
    region: String,
}

/// A site: the account is empty for the gateway's own account when no accounts are configured.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteLabels {
    account: String,
    region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_buckets() -> Histogram {
    // 0.5 ms to ~33 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    operations: Family<OperationLabels, Counter>,
    operation_seconds: HistogramFamily<OperationLabels>,
    operation_names: Mutex<OperationNames>,
    operation_series: RwLock<OperationSeries>,
    errors: Family<CodeLabels, Counter>,
    trusted_documents: Family<DocumentLabels, Counter>,
    untrusted_operations: Family<OutcomeLabels, Counter>,
    cache_lookups: Family<CacheLabels, Counter>,
    cache_evictions: Family<NameLabels, Counter>,
    datasync_calls: Family<CallLabels, Counter>,
    datasync_seconds: HistogramFamily<RegionLabels>,
    report_bucket_calls: Family<CallLabels, Counter>,
    report_ingestions: Family<OutcomeLabels, Counter>,
    report_records: Counter,
    webhook_deliveries: Family<OutcomeLabels, Counter>,
    webhook_delivery_seconds: Histogram,
    budget_wait_seconds: HistogramFamily<RegionLabels>,
    levels: Levels,
}

/// Levels, set from the gateway's state when `/metrics` is scraped.
#[derive(Default)]
pub struct Levels {
    cache_entries: Family<NameLabels, Gauge>,
    cache_weighed_bytes: Family<NameLabels, Gauge>,
    pub writer_backlog: Gauge,
    pub writer_written: Gauge,
    pub writer_dropped: Gauge,
    sync_last_run: Family<SiteLabels, Gauge<f64, AtomicU64>>,
    sync_failed: Family<SiteLabels, Gauge>,
    accounts: Family<StatusLabels, Gauge>,
    pub sync_standby: Gauge,
    pub watcher_following: Gauge,
    pub watcher_leased: Gauge,
    pub watcher_polls: Gauge,
    pub watcher_failed_polls: Gauge,
    pub hints_queued: Gauge,
    pub hints_dropped: Gauge,
    pub watcher_leases_ok: Gauge,
    pub subscriptions: Gauge,
    pub subscribed_executions: Gauge,
    pub streaming_connections: Gauge,
    pub http_connections: Gauge,
    pub webhook_backlog: Gauge,
    pub webhook_oldest_pending_seconds: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("datasync_gateway");
        let operations = Family::default();
        let operation_seconds: HistogramFamily<OperationLabels> =
            Family::new_with_constructor(latency_buckets);
        let errors = Family::default();
        let trusted_documents = Family::default();
        let untrusted_operations = Family::default();
        let cache_lookups = Family::default();
        let cache_evictions = Family::default();
        let datasync_calls = Family::default();
        let report_bucket_calls = Family::default();
        let report_ingestions = Family::default();
        let report_records = Counter::default();
        let webhook_deliveries: Family<OutcomeLabels, Counter> = Family::default();
        // At zero from the start, so that a rate over them means something before the first failure.
        for outcome in ["delivered", "retry", "failed"] {
            let _ = webhook_deliveries.get_or_create(&OutcomeLabels { outcome });
        }
        let webhook_delivery_seconds = latency_buckets();
        let datasync_seconds: HistogramFamily<RegionLabels> = Family::new_with_constructor(latency_buckets);
        let budget_wait_seconds: HistogramFamily<RegionLabels> =
            Family::new_with_constructor(latency_buckets);
        let levels = Levels::default();
        registry.register(
            "graphql_operations",
            "GraphQL operations run, by name, type and transport",
            operations.clone(),
        );
        registry.register(
            "graphql_operation_seconds",
            "Time to answer a GraphQL operation (a subscription: to its first result)",
            operation_seconds.clone(),
        );
        registry.register(
            "graphql_errors",
            "Errors in GraphQL responses, by extensions.code",
            errors.clone(),
        );
        registry.register(
            "trusted_documents_requested",
            "Operations admitted as a trusted document, by its id and operation name (an answer \
             replayed from the response cache is not admitted again, and not counted)",
            trusted_documents.clone(),
        );
        registry.register(
            "untrusted_operations",
            "Operations that are not trusted documents, by what the gate did: audited (ran, \
             --trusted-documents-mode audit), bypassed (ran for an operator or a bypass key), \
             refused (enforce)",
            untrusted_operations.clone(),
        );
        registry.register(
            "cache_lookups",
            "Execution reads by what answered them: hit (cache), miss (DataSync or history), stale",
            cache_lookups.clone(),
        );
        registry.register(
            "cache_evictions",
            "Entries a cache dropped to stay within its capacity",
            cache_evictions.clone(),
        );
        registry.register("cache_entries", "Entries in each cache", levels.cache_entries.clone());
        registry.register(
            "cache_weighed_bytes",
            "What each cache bounded in bytes weighs, against its limit",
            levels.cache_weighed_bytes.clone(),
        );
        registry.register(
            "datasync_calls",
            "DataSync calls, by operation, region and outcome",
            datasync_calls.clone(),
        );
        registry.register(
            "datasync_call_seconds",
            "DataSync call latency (retries included), by region",
            datasync_seconds.clone(),
        );
        registry.register(
            "report_bucket_calls",
            "S3 calls reading task reports, by operation, region and outcome",
            report_bucket_calls.clone(),
        );
        registry.register(
            "report_ingestions",
            "Task report ingestions ended, by outcome (COMPLETE, PARTIAL, FAILED, RETRY)",
            report_ingestions.clone(),
        );
        registry.register("report_records_stored", "Task report records stored", report_records.clone());
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered, retry (failed, tried again later), \
             failed (the last attempt failed, or the endpoint answered 410 Gone)",
            webhook_deliveries.clone(),
        );
        registry.register(
            "webhook_delivery_seconds",
            "From an event's recording in the outbox to its delivery, retries included",
            webhook_delivery_seconds.clone(),
        );
        registry.register(
            "webhook_backlog",
            "Webhook deliveries pending, over every enabled endpoint (as of this replica's last look)",
            levels.webhook_backlog.clone(),
        );
        registry.register(
            "webhook_oldest_pending_seconds",
            "Age of the oldest pending webhook delivery's event (0: none pending)",
            levels.webhook_oldest_pending_seconds.clone(),
        );
        registry.register(
            "datasync_budget_wait_seconds",
            "Time calls waited for the region's call budget",
            budget_wait_seconds.clone(),
        );
        registry.register(
            "history_writer_backlog",
            "Snapshots waiting to be written to PostgreSQL",
            levels.writer_backlog.clone(),
        );
        registry.register(
            "history_writer_written",
            "Snapshots written since start",
            levels.writer_written.clone(),
        );
        registry.register(
            "history_writer_dropped",
            "Snapshots given up on since start",
            levels.writer_dropped.clone(),
        );
        registry.register(
            "sync_last_run_timestamp_seconds",
            "When each site (an account's region) was last synced by this replica",
            levels.sync_last_run.clone(),
        );
        registry.register(
            "sync_last_run_failed",
            "1 when the site's last sync on this replica failed",
            levels.sync_failed.clone(),
        );
        registry.register(
            "datasync_accounts",
            "Accounts by status: served, unreachable (its role refused), left (the organisation)",
            levels.accounts.clone(),
        );
        registry.register(
            "sync_standby",
            "1 when another replica runs the discovery sync",
            levels.sync_standby.clone(),
        );
        registry.register(
            "watcher_following",
            "Running executions this replica polls",
            levels.watcher_following.clone(),
        );
        registry.register("watcher_leased", "Of those, held by lease", levels.watcher_leased.clone());
        registry.register("watcher_polls", "Polls since start", levels.watcher_polls.clone());
        registry.register(
            "watcher_failed_polls",
            "Failed polls since start",
            levels.watcher_failed_polls.clone(),
        );
        registry.register(
            "hints_queued",
            "EventBridge hints waiting to be polled",
            levels.hints_queued.clone(),
        );
        registry.register(
            "hints_dropped",
            "EventBridge hints dropped since start because the queue was full",
            levels.hints_dropped.clone(),
        );
        registry.register(
            "watcher_leases_ok",
            "1 when the last lease claim reached PostgreSQL",
            levels.watcher_leases_ok.clone(),
        );
        registry.register(
            "subscriptions_open",
            "Subscriptions open on this replica, one per client operation",
            levels.subscriptions.clone(),
        );
        registry.register(
            "subscribed_executions",
            "Subscriptions to executions and the fleet feed on this replica after sharing: identical \
             operations from many clients count once",
            levels.subscribed_executions.clone(),
        );
        registry.register(
            "streaming_connections_open",
            "Open WebSockets and event streams",
            levels.streaming_connections.clone(),
        );
        registry.register("http_connections_open", "Open HTTP connections", levels.http_connections.clone());
        Metrics {
            inner: Arc::new(Inner {
                registry,
                operations,
                operation_seconds,
                operation_names: Mutex::default(),
                operation_series: RwLock::default(),
                errors,
                trusted_documents,
                untrusted_operations,
                cache_lookups,
                cache_evictions,
                datasync_calls,
                datasync_seconds,
                report_bucket_calls,
                report_ingestions,
                report_records,
                webhook_deliveries,
                webhook_delivery_seconds,
                budget_wait_seconds,
                levels,
            }),
        }
    }
}

impl Metrics {
    /// One GraphQL operation answered (or its stream started) after `elapsed`.
    pub fn operation(
        &self,
        name: Option<&str>,
        kind: &'static str,
        transport: &'static str,
        elapsed: Duration,
    ) {
        if self.with_settled(name, kind, transport, |series| series.count(elapsed)).is_some() {
            return;
        }
        let labels = OperationLabels { operation: self.operation_label(name), kind, transport };
        let series = Series {
            kind,
            transport,
            counted: SettledOperation {
                count: self.inner.operations.get_or_create(&labels).clone(),
                seconds: self.inner.operation_seconds.get_or_create(&labels).clone(),
            },
        };
        series.counted.count(elapsed);
        // Kept once the label is the name's own for good (or there is no name); "other" is not,
        // since a name counted there may earn its own label.
        if name.is_none_or(|name| name == labels.operation) {
            let mut known = self.inner.operation_series.write().unwrap_or_else(PoisonError::into_inner);
            let all = match name {
                None => &mut known.anonymous,
                Some(name) => known.named.entry(name.into()).or_default(),
            };
            if !all.iter().any(|known| known.kind == kind && known.transport == transport) {
                all.push(series);
            }
        }
    }

    /// The series [`operation`](Self::operation) counts the operation in, once its label is
    /// settled. Whoever counts the same operation again and again (a stored answer, each time
    /// it is replayed) may keep it, and count with no lock taken and no name looked up.
    pub fn settled_operation(
        &self,
        name: Option<&str>,
        kind: &str,
        transport: &str,
    ) -> Option<SettledOperation> {
        self.with_settled(name, kind, transport, SettledOperation::clone)
    }

    fn with_settled<R>(
        &self,
        name: Option<&str>,
        kind: &str,
        transport: &str,
        then: impl FnOnce(&SettledOperation) -> R,
    ) -> Option<R> {
        let known = self.inner.operation_series.read().unwrap_or_else(PoisonError::into_inner);
        let all = match name {
            None => Some(&known.anonymous),
            Some(name) => known.named.get(name),
        };
        let series = all?.iter().find(|s| s.kind == kind && s.transport == transport)?;
        Some(then(&series.counted))
    }

    fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name.filter(|name| name.len() <= 64) else {
            return name.map_or("anonymous", |_| "other").to_owned();
        };
        let mut names = self.inner.operation_names.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if names.labelled(name) {
            name.to_owned()
        } else {
            "other".to_owned()
        }
    }

    pub fn error(&self, code: &str) {
        self.inner.errors.get_or_create(&CodeLabels { code: code.to_owned() }).inc();
    }

    /// An operation admitted as the trusted document `id`.
    pub fn trusted_document(&self, id: &str, operation: Option<&str>) {
        let labels = DocumentLabels {
            document: id.to_owned(),
            operation: operation.unwrap_or("anonymous").to_owned(),
        };
        self.inner.trusted_documents.get_or_create(&labels).inc();
    }

    /// An operation that is not a trusted document: `audited`, `bypassed` or `refused`.
    pub fn untrusted_operation(&self, outcome: &'static str) {
        self.inner.untrusted_operations.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// `cache`'s lookup counters.
    pub fn cache_lookups(&self, cache: &'static str) -> CacheLookups {
        let family = self.inner.cache_lookups.clone();
        let hit = family.get_or_create(&CacheLabels { cache, result: "hit" }).clone();
        let miss = family.get_or_create(&CacheLabels { cache, result: "miss" }).clone();
        CacheLookups { cache, family, hit, miss }
    }

    /// Shows a cache's counters at 0 from the start (so `rate()` has a first point).
    pub fn cache_created(&self, cache: &'static str) {
        self.inner.cache_evictions.get_or_create(&NameLabels { name: cache }).inc_by(0);
        self.inner.levels.cache_entries.get_or_create(&NameLabels { name: cache }).set(0);
    }

    pub fn cache_eviction(&self, cache: &'static str) {
        self.inner.cache_evictions.get_or_create(&NameLabels { name: cache }).inc();
    }

    pub fn datasync_call(
        &self,
        operation: &'static str,
        region: &str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        let region = region.to_owned();
        self.inner
            .datasync_calls
            .get_or_create(&CallLabels { operation, region: region.clone(), outcome })
            .inc();
        self.inner.datasync_seconds.get_or_create(&RegionLabels { region }).observe(elapsed.as_secs_f64());
    }

    /// One S3 call reading a task report.
    pub fn report_bucket_call(&self, operation: &'static str, region: &str, outcome: &'static str) {
        let labels = CallLabels { operation, region: region.to_owned(), outcome };
        self.inner.report_bucket_calls.get_or_create(&labels).inc();
    }

    /// An ingestion ended (`outcome`: its state, or RETRY), having stored `records` this time.
    pub fn report_ingestion(&self, outcome: &'static str, records: u64) {
        self.inner.report_ingestions.get_or_create(&OutcomeLabels { outcome }).inc();
        self.inner.report_records.inc_by(records);
    }

    /// One webhook delivery attempt; a delivered one `after` its event was recorded.
    pub fn webhook_delivery(&self, outcome: &'static str, after: Option<Duration>) {
        self.inner.webhook_deliveries.get_or_create(&OutcomeLabels { outcome }).inc();
        if let Some(after) = after {
            self.inner.webhook_delivery_seconds.observe(after.as_secs_f64());
        }
    }

    pub fn budget_wait(&self, region: &str, waited: Duration) {
        self.inner
            .budget_wait_seconds
            .get_or_create(&RegionLabels { region: region.to_owned() })
            .observe(waited.as_secs_f64());
    }

    pub fn levels(&self) -> &Levels {
        &self.inner.levels
    }

    pub fn set_cache_entries(&self, cache: &'static str, entries: u64) {
        self.inner.levels.cache_entries.get_or_create(&NameLabels { name: cache }).set(entries as i64);
    }

    /// A cache bounded in bytes: its entries, and what they weigh.
    pub fn set_weighed_cache(&self, cache: &'static str, (entries, bytes): (u64, u64)) {
        self.set_cache_entries(cache, entries);
        self.inner.levels.cache_weighed_bytes.get_or_create(&NameLabels { name: cache }).set(bytes as i64);
    }

    /// A site's last sync; `account` is empty for the gateway's own account unlisted.
    pub fn set_sync(&self, account: &str, region: &str, last_run: f64, failed: bool) {
        let labels = SiteLabels { account: account.to_owned(), region: region.to_owned() };
        self.inner.levels.sync_last_run.get_or_create(&labels).set(last_run);
        self.inner.levels.sync_failed.get_or_create(&labels).set(i64::from(failed));
    }

    /// How many accounts are served, unreachable and gone.
    pub fn set_accounts(&self, served: usize, unreachable: usize, left: usize) {
        for (status, count) in [("served", served), ("unreachable", unreachable), ("left", left)] {
            self.inner.levels.accounts.get_or_create(&StatusLabels { status }).set(count as i64);
        }
    }

    /// The registry in Prometheus's text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// One cache's lookup counters, hits and misses resolved once: a lookup on the request path is
/// then one atomic add, not a label set hashed under the family's lock.
#[derive(Clone)]
pub struct CacheLookups {
    cache: &'static str,
    family: Family<CacheLabels, Counter>,
    hit: Counter,
    miss: Counter,
}

impl CacheLookups {
    /// A lookup whose result was `result` (`hit`, `miss`, or another such as `stale`).
    pub fn count(&self, result: &'static str) {
        match result {
            "hit" => self.hit.inc(),
            "miss" => self.miss.inc(),
            _ => self.family.get_or_create(&CacheLabels { cache: self.cache, result }).inc(),
        };
    }
}

/// The series of operations whose label is settled (a labelled name's, or no name's), resolved
/// once: counting one is then a read lock and a hash of its name, not the candidates' mutex, a
/// label string and two label-set lookups under the families' locks.
#[derive(Default)]
struct OperationSeries {
    named: HashMap<Box<str>, Vec<Series>, foldhash::fast::RandomState>,
    anonymous: Vec<Series>,
}

struct Series {
    kind: &'static str,
    transport: &'static str,
    counted: SettledOperation,
}

/// An operation's count and latency series, its label settled ([`Metrics::settled_operation`]).
#[derive(Clone)]
pub struct SettledOperation {
    count: Counter,
    seconds: Histogram,
}

impl SettledOperation {
    /// One more of the operation, answered after `elapsed`.
    pub fn count(&self, elapsed: Duration) {
        self.count.inc();
        self.seconds.observe(elapsed.as_secs_f64());
    }
}

/// Which operation names have a label of their own: those seen `NAME_EARNS_LABEL` times, up to
/// `MAX_OPERATION_NAMES` of them.
#[derive(Default)]
struct OperationNames {
    labelled: HashSet<String>,
    seen: HashMap<String, u32>,
}

impl OperationNames {
    /// Counts `name` once; whether it has a label of its own.
    fn labelled(&mut self, name: &str) -> bool {
        if self.labelled.contains(name) {
            return true;
        }
        if self.labelled.len() >= MAX_OPERATION_NAMES {
            return false;
        }
        if !self.seen.contains_key(name) && self.seen.len() >= MAX_CANDIDATE_NAMES {
            self.seen.retain(|_, count| {
                *count /= 2;
                *count > 0
            });
        }
        let count = self.seen.entry(name.to_owned()).or_default();
        *count += 1;
        if *count < NAME_EARNS_LABEL {
            return false;
        }
        self.seen.remove(name);
        self.labelled.insert(name.to_owned());
        true
    }
}

#[cfg(test)]
mod operation_name_tests {
    use super::*;

    #[test]
    fn one_off_names_never_take_the_labels_of_names_sent_again_and_again() {
        let mut names = OperationNames::default();
        for n in 0..50_000 {
            assert!(!names.labelled(&format!("attack{n}")), "a name seen once has no label");
        }
        let frequent = (0..NAME_EARNS_LABEL).map(|_| names.labelled("Dashboard")).last();
        assert_eq!(frequent, Some(true), "a name sent again and again gets its label");
        assert!(names.seen.len() <= MAX_CANDIDATE_NAMES, "the candidates stay bounded");
    }
}
