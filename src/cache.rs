//! The execution cache: moka, with an expiry per entry that depends on what the entry says.
//!
//! A finished execution will not change, so it is kept for long; a running one for seconds;
//! "not found" briefly, so a client retrying a typo does not cost a DataSync call each time.
//! Failures are never cached: the next request tries DataSync again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;

use crate::config::CacheConfig;
use crate::error::GatewayError;
use crate::model::TaskExecution;

/// What DataSync answered for one ARN.
#[derive(Clone, Debug)]
pub enum Cached {
    Found(Arc<TaskExecution>),
    /// DataSync's "no such execution", with the message for the client.
    NotFound(Arc<str>),
}

impl Cached {
    pub fn into_result(self) -> Result<Arc<TaskExecution>, GatewayError> {
        match self {
            Cached::Found(execution) => Ok(execution),
            Cached::NotFound(message) => Err(GatewayError::NotFound(message.to_string())),
        }
    }
}

/// A cache lookup's answer, and whether this caller's own fetch produced it.
pub struct Lookup {
    pub value: Cached,
    pub fetched: bool,
}

#[derive(Clone)]
pub struct ExecutionCache {
    entries: Cache<String, Cached>,
}

impl ExecutionCache {
    pub fn new(config: &CacheConfig) -> Self {
        let policy = ExpiryPolicy {
            finished: config.finished_ttl,
            running: config.running_ttl,
            not_found: config.not_found_ttl,
        };
        ExecutionCache {
            entries: Cache::builder().max_capacity(config.capacity).expire_after(policy).build(),
        }
    }

    /// The cached answer for `key`, or the one `fetch` produces. Concurrent misses for one key
    /// share a single `fetch`: a crowd asking for a cold ARN costs DataSync one call. An error
    /// from `fetch` is returned to every waiter and not cached.
    pub async fn get_or_fetch(
        &self,
        key: &str,
        fetch: impl std::future::Future<Output = Result<Cached, GatewayError>>,
    ) -> Result<Lookup, GatewayError> {
        let entry = self
            .entries
            .entry_by_ref(key)
            .or_try_insert_with(fetch)
            .await
            .map_err(|error| (*error).clone())?;
        Ok(Lookup { fetched: entry.is_fresh(), value: entry.into_value() })
    }

    /// Replaces the entry with a newer answer (after a read that bypassed the cache).
    pub async fn put(&self, key: &str, value: Cached) {
        self.entries.insert(key.to_owned(), value).await;
    }
}

struct ExpiryPolicy {
    finished: Duration,
    running: Duration,
    not_found: Duration,
}

impl ExpiryPolicy {
    fn ttl(&self, value: &Cached) -> Duration {
        match value {
            Cached::Found(execution) if execution.is_settled() => self.finished,
            Cached::Found(_) => self.running,
            Cached::NotFound(_) => self.not_found,
        }
    }
}

impl Expiry<String, Cached> for ExpiryPolicy {
    fn expire_after_create(&self, _key: &String, value: &Cached, _created_at: Instant) -> Option<Duration> {
        Some(self.ttl(value))
    }

    // An insert over an existing entry is a new answer: its own TTL, not what was left of the old one.
    fn expire_after_update(
        &self,
        _key: &String,
        value: &Cached,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl(value))
    }
}
