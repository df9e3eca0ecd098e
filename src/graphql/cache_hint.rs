//! How long HTTP caches (a browser, a CDN in front of GET queries) may reuse an answer. It
//! depends on what the resolvers served, not on the query's shape: a finished execution never
//! changes, a running one changes by the second. Resolvers report each thing they serve; the
//! HTTP handler turns the shortest lifetime into `Cache-Control` (`no-store` when anything
//! was live or failed).

use std::sync::{Arc, Mutex};

use crate::service::Fetched;

/// Reuse of a settled execution (finished, report settled).
const SETTLED_SECONDS: u32 = 300;
/// Reuse of history pages and statistics, which grow as executions finish.
const HISTORY_SECONDS: u32 = 60;

#[derive(Clone, Debug, Default)]
pub struct CacheHint(Arc<Mutex<Option<u32>>>);

impl CacheHint {
    pub fn served(&self, fetched: &Fetched) {
        self.allow(if fetched.execution.is_settled() { SETTLED_SECONDS } else { 0 });
    }

    pub fn served_history(&self) {
        self.allow(HISTORY_SECONDS);
    }

    fn allow(&self, seconds: u32) {
        let mut max_age = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *max_age = Some(max_age.map_or(seconds, |current| current.min(seconds)));
    }

    /// Seconds the whole answer may be reused; `None` when it must not be stored.
    pub fn max_age(&self) -> Option<u32> {
        let max_age = *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        max_age.filter(|seconds| *seconds > 0)
    }
}
