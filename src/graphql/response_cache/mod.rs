//! Stored answers to repeated queries: the bytes of a response, replayed for the same request
//! for as long as every execution it read is still the one the cache holds. Most traffic is a
//! dashboard asking the same questions over and over; parsing, validating, resolving and
//! serialising them again would give the same bytes.
//!
//! Exact by construction, not by a lifetime: a response is stored only when everything it read
//! was an execution answered from the execution cache ([`CacheHint`] keeps the list, holding
//! each description's `Arc`), and replayed only while the cache still holds those very `Arc`s
//! (a refresh, a poll or a STRONG read replaces them) and none of them can have expired. Then
//! running the query again would read the same descriptions, from the cache, and write the
//! same bytes. Anything read elsewhere (history, tasks, DataSync itself), any error or warning,
//! and any mutation or subscription is not stored. Nor is a question asked once: an answer is
//! stored from the second miss of its request on ([`Doorkeeper`]), so that one-off queries cost
//! no insertion and do not evict answers that repeat.
//!
//! A replay checks the cache's generation first, which moves with every entry added, replaced
//! or dropped: unchanged, and before the earliest time any of the reads could expire (their
//! `fetchedAt` plus TTL: a lower bound, since an entry is inserted after it was fetched), nothing
//! the response read can have changed. Otherwise each execution is looked up in the cache, which
//! answers exactly (an expired entry is not returned): an answer built from history, whose
//! `fetchedAt` is old, is replayed this way. The answers replayed lately are also kept in a
//! table ahead of moka ([`front`]), where a hit takes no lock; they are checked the same way.
//!
//! The key is the request as received (a POST's body, a GET's query string) and whether the
//! client accepts `application/graphql-response+json`: a hit needs no JSON parsing at all, and
//! the same question spelled differently is merely a miss. What happens before the lookup
//! stays as it is for every request: authentication, the rate limit, the body and media-type
//! checks. A stored response passed the query limits when it was made, and those do not change
//! while the gateway runs. What a query answers depends on who asks only through the accounts
//! the caller may see, which are part of the key (roles gate mutations only); a field that
//! depended on anything else of the caller would have to report itself to the hint as read
//! elsewhere. Whether a query may run at all also depends, with trusted documents enforced, on
//! the documents served and on whether the caller may bypass them: that is part of the key too
//! ([`TrustPolicy::replay_scope`](super::TrustPolicy::replay_scope)), so an operator's ad-hoc
//! answer is never replayed to a reader, nor a document's once a reload removed it.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::cache_hint::{CacheHint, ReplayableReads};
use super::doorkeeper::Doorkeeper;
use crate::metrics::{CacheLookups, Metrics, SettledOperation};
use crate::model::TaskExecution;
use crate::request::AccountScope;
use crate::service::executions::ExecutionService;
use front::Front;

mod front;

/// Requests larger than this are not stored (each key is kept whole, beside its response).
const MAX_KEY_BYTES: usize = 16 * 1024;

/// What makes two requests the same question.
#[derive(Hash, PartialEq, Eq)]
pub struct ResponseKey {
    /// A POST's body, or a GET's query string (marked by `get`).
    request: Bytes,
    get: bool,
    /// `application/graphql-response+json` accepted (it changes the content type).
    graphql_response_json: bool,
    /// The accounts the caller may see: one scope's answer is never replayed to another.
    accounts: AccountScope,
    /// What the caller may run ([`TrustPolicy::replay_scope`](super::TrustPolicy::replay_scope)).
    trust: u64,
}

impl ResponseKey {
    pub fn post(
        body: &Bytes,
        graphql_response_json: bool,
        accounts: &AccountScope,
        trust: u64,
    ) -> Option<Self> {
        let request = || body.clone();
        Self::of(body.len(), request, false, graphql_response_json, accounts, trust)
    }

    pub fn get(
        query: &str,
        graphql_response_json: bool,
        accounts: &AccountScope,
        trust: u64,
    ) -> Option<Self> {
        let request = || Bytes::copy_from_slice(query.as_bytes());
        Self::of(query.len(), request, true, graphql_response_json, accounts, trust)
    }

    /// The key of a request of `len` bytes, its bytes taken only if it is small enough to keep.
    fn of(
        len: usize,
        request: impl FnOnce() -> Bytes,
        get: bool,
        graphql_response_json: bool,
        accounts: &AccountScope,
        trust: u64,
    ) -> Option<Self> {
        (len <= MAX_KEY_BYTES).then(|| ResponseKey {
            request: request(),
            get,
            graphql_response_json,
            accounts: accounts.clone(),
            trust,
        })
    }
}

/// A response as sent, and what it was made from.
pub struct StoredResponse {
    /// The request it answers (moka's key too), and its fingerprint: its slot [in front](front).
    key: Arc<ResponseKey>,
    fingerprint: u64,
    pub answer: Answer,
    /// Kept as sent, for the operation metrics of each replay.
    pub operation_name: Option<Box<str>>,
    /// The series a replay counts in, if the operation's label was settled when it was stored.
    counted: Option<SettledOperation>,
    /// Weak: a stored answer must not keep alive what the execution cache let go (100,000
    /// answers held 100,000 descriptions past the execution cache's own bound). A weak
    /// reference keeps only the allocation, so its address cannot be reused by another
    /// description while the answer is stored.
    reads: Vec<Weak<TaskExecution>>,
    /// Until then (`None`: ever), with the generation unchanged, none of `reads` can have
    /// expired. An instant rather than a wall-clock time: a replay compares it with the clock
    /// its request read already.
    fresh_until: Option<Instant>,
    /// A cache generation at which all of `reads` were known to be current.
    generation: AtomicU64,
}

/// What a replay is counted as in the operation metrics: a query, over HTTP (the only
/// transport that replays).
const REPLAY: (&str, &str) = ("query", "http");

impl StoredResponse {
    /// Counts a replay of this answer, `elapsed` after its request came, as the query it answers.
    pub fn count_replay(&self, metrics: &Metrics, elapsed: Duration) {
        match &self.counted {
            Some(counted) => counted.count(elapsed),
            None => metrics.operation(self.operation_name.as_deref(), REPLAY.0, REPLAY.1, elapsed),
        }
    }
}

type Entries = moka::sync::Cache<Arc<ResponseKey>, Arc<StoredResponse>, foldhash::fast::RandomState>;

/// Requests remembered as asked lately, by a fingerprint of their key.
const SEEN_SLOTS: usize = 64 * 1024;

#[derive(Clone)]
pub struct ResponseCache {
    entries: Option<Entries>,
    /// An answer is stored from its request's second miss on: a one-off question (a distinct
    /// operation, an alias made up each time) costs no insertion, nor evicts one that repeats.
    seen: Doorkeeper,
    /// The answers replayed lately, read without a lock; a subset of `entries`.
    front: Arc<Front>,
    fingerprints: foldhash::fast::RandomState,
    executions: ExecutionService,
    metrics: Metrics,
    lookups: CacheLookups,
}

impl ResponseCache {
    /// Up to `capacity_bytes` of responses (their bodies and keys); 0 stores none.
    pub fn new(capacity_bytes: u64, executions: ExecutionService, metrics: &Metrics) -> Self {
        let front = Arc::new(Front::new(front::SLOTS));
        let entries = (capacity_bytes > 0).then(|| entries(capacity_bytes, &front));
        ResponseCache {
            entries,
            seen: Doorkeeper::new(SEEN_SLOTS),
            front,
            fingerprints: foldhash::fast::RandomState::default(),
            executions,
            metrics: metrics.clone(),
            lookups: metrics.cache_lookups("responses"),
        }
    }

    pub fn enabled(&self) -> bool {
        self.entries.is_some()
    }

    /// Stored answers, and what they weigh in bytes against `--response-cache-bytes`.
    pub fn size(&self) -> (u64, u64) {
        let Some(entries) = &self.entries else { return (0, 0) };
        entries.run_pending_tasks();
        (entries.entry_count(), entries.weighted_size())
    }

    /// The generation to pass to [`ResponseCache::offer`], taken before the query runs.
    pub fn generation(&self) -> u64 {
        self.executions.cache_generation()
    }

    /// The stored response for `key`, if every execution it read is still the cached one.
    /// `now`: when the request came.
    pub async fn get(&self, key: &ResponseKey, now: Instant) -> Option<Arc<StoredResponse>> {
        let entries = self.entries.as_ref()?;
        let fingerprint = self.fingerprints.hash_one(key);
        let stored = self.current(entries, key, fingerprint, now).await;
        if stored.is_some() {
            self.lookups.count("hit");
        } else {
            self.lookups.count("miss");
            self.seen.count(fingerprint);
        }
        stored
    }

    async fn current(
        &self,
        entries: &Entries,
        key: &ResponseKey,
        fingerprint: u64,
        now: Instant,
    ) -> Option<Arc<StoredResponse>> {
        if let Some(stored) = self.front.get(fingerprint, key) {
            let held = !front::sampled() || entries.get(key).is_some_and(|held| Arc::ptr_eq(&held, &stored));
            if held && self.unchanged(&stored, now).await {
                return Some(stored);
            }
            self.front.remove(&stored);
        }
        let stored = entries.get(key)?;
        if !self.unchanged(&stored, now).await {
            entries.invalidate(key);
            return None;
        }
        self.front.put(&stored);
        Some(stored)
    }

    /// Whether every execution `stored` read is still the one the execution cache holds.
    async fn unchanged(&self, stored: &StoredResponse, now: Instant) -> bool {
        let generation = self.generation();
        if stored.generation.load(Ordering::Acquire) == generation
            && stored.fresh_until.is_none_or(|until| now < until)
        {
            return true;
        }
        // Boxed: looking the executions up is a future of a kilobyte, which would otherwise
        // size every request's future (a replay's too) and be copied with it.
        Box::pin(self.reads_unchanged(stored, generation)).await
    }

    async fn reads_unchanged(&self, stored: &StoredResponse, generation: u64) -> bool {
        for read in &stored.reads {
            let current = match read.upgrade() {
                Some(execution) => self.executions.is_cached(&execution).await,
                None => false,
            };
            if !current {
                return false;
            }
        }
        stored.generation.store(generation, Ordering::Release);
        true
    }

    /// Stores `body`, the answer to `key`, if what `hint` saw allows a replay and the same
    /// request missed before. `generation` is the cache's from before the query ran.
    pub fn offer(&self, key: ResponseKey, generation: u64, hint: &CacheHint, answer: Answer) {
        let Some(entries) = &self.entries else { return };
        let Some(ReplayableReads { operation_name, executions: reads }) = hint.replayable() else { return };
        let fingerprint = self.fingerprints.hash_one(&key);
        if !self.seen.repeated(fingerprint) {
            return;
        }
        let fresh_until = reads
            .iter()
            .map(|execution| self.executions.cached_at_least_until(execution))
            .min()
            .and_then(as_instant);
        // Copied to its length: the buffer it was written into grew by doubling, and the room
        // left over would be kept (and not weighed) for as long as the answer is stored.
        let answer = Answer { body: Bytes::copy_from_slice(&answer.body), ..answer };
        // The request's bytes may be a slice of the connection's whole read buffer: kept as they
        // are, a 100-byte key held kilobytes. Copied once, here, rather than on every lookup.
        let key = Arc::new(ResponseKey { request: Bytes::copy_from_slice(&key.request), ..key });
        let counted = self.metrics.settled_operation(operation_name.as_deref(), REPLAY.0, REPLAY.1);
        let stored = StoredResponse {
            key: key.clone(),
            fingerprint,
            answer,
            operation_name,
            counted,
            reads: reads.iter().map(Arc::downgrade).collect(),
            fresh_until,
            generation: AtomicU64::new(generation),
        };
        entries.insert(key, Arc::new(stored));
    }
}

/// Stored answers bounded by their weight; whatever moka lets go leaves the `front` too.
fn entries(capacity_bytes: u64, front: &Arc<Front>) -> Entries {
    let front = front.clone();
    moka::sync::Cache::builder()
        .max_capacity(capacity_bytes)
        .weigher(|key: &Arc<ResponseKey>, stored: &Arc<StoredResponse>| {
            u32::try_from(weight(key, stored)).unwrap_or(u32::MAX)
        })
        .eviction_listener(move |_, stored: Arc<StoredResponse>, _| front.remove(&stored))
        .build_with_hasher(foldhash::fast::RandomState::default())
}

/// `until` on this process's monotonic clock; `None` if beyond what it counts.
fn as_instant(until: DateTime<Utc>) -> Option<Instant> {
    let left = (until - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now().checked_add(left)
}

/// What one stored answer occupies, in bytes: its key and body, the allocation each read keeps
/// (a description's, once the execution cache has dropped it), and the entry itself (the
/// cache's node, both `Arc`s, the stored struct, the operation name), measured with
/// `cargo bench --bench response_memory` against RSS (BENCHMARKS.md).
fn weight(key: &ResponseKey, stored: &StoredResponse) -> usize {
    const ENTRY_BYTES: usize = 768;
    let read_bytes = std::mem::size_of::<TaskExecution>() + 2 * std::mem::size_of::<usize>();
    key.request.len()
        + stored.answer.body.len()
        + stored.operation_name.as_ref().map_or(0, |name| name.len())
        + stored.reads.len() * read_bytes
        + ENTRY_BYTES
}

/// What a client receives of a response (beside its status), and what is stored of it.
#[derive(Clone)]
pub struct Answer {
    pub body: Bytes,
    pub content_type: &'static str,
    pub cache_control: HeaderValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(request: &'static str, body_bytes: usize) -> Arc<StoredResponse> {
        let key = Arc::new(ResponseKey {
            request: Bytes::from_static(request.as_bytes()),
            get: false,
            graphql_response_json: false,
            accounts: AccountScope::All,
            trust: 0,
        });
        Arc::new(StoredResponse {
            fingerprint: foldhash::fast::FixedState::default().hash_one(&key),
            key,
            answer: Answer {
                body: vec![b' '; body_bytes].into(),
                content_type: "application/json",
                cache_control: HeaderValue::from_static("no-store"),
            },
            operation_name: None,
            counted: None,
            reads: Vec::new(),
            fresh_until: None,
            generation: AtomicU64::new(0),
        })
    }

    #[test]
    fn the_front_answers_only_its_own_key_and_lets_go_only_of_the_answer_it_holds() {
        let front = Front::new(1);
        let (a, b) = (stored("a", 10), stored("b", 10));
        front.put(&a);
        assert!(front.get(a.fingerprint, &a.key).is_some_and(|held| Arc::ptr_eq(&held, &a)));
        assert!(front.get(b.fingerprint, &b.key).is_none(), "one slot, holding another key");
        front.put(&b);
        assert!(front.get(a.fingerprint, &a.key).is_none(), "taken by b");
        front.remove(&a);
        assert!(front.get(b.fingerprint, &b.key).is_some(), "a was not there to remove");
        front.remove(&b);
        assert!(front.get(b.fingerprint, &b.key).is_none());

        let large = stored("large", front::MAX_ANSWER_BYTES + 1);
        front.put(&large);
        assert!(front.get(large.fingerprint, &large.key).is_none(), "large answers stay in moka");
    }

    #[test]
    fn what_moka_lets_go_leaves_the_front() {
        let front = Arc::new(Front::new(16));
        let entries = entries(1 << 20, &front);
        let (a, replaced, b) = (stored("a", 10), stored("a", 20), stored("b", 10));
        for answer in [&a, &b] {
            entries.insert(answer.key.clone(), answer.clone());
            front.put(answer);
        }
        entries.insert(replaced.key.clone(), replaced.clone());
        entries.invalidate(&b.key);
        entries.run_pending_tasks();
        assert!(front.get(a.fingerprint, &a.key).is_none(), "replaced in moka");
        assert!(front.get(b.fingerprint, &b.key).is_none(), "invalidated in moka");

        front.put(&replaced);
        entries.invalidate_all();
        entries.run_pending_tasks();
        assert!(front.get(replaced.fingerprint, &replaced.key).is_none(), "all dropped from moka");
    }
}
