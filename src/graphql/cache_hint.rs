//! What the resolvers of one request served, as far as the client's transport needs to know:
//! how long HTTP caches (a browser, a CDN in front of GET queries) may reuse the answer, and
//! warnings to put in the response's `extensions`. The lifetime depends on what was served,
//! not on the query's shape: a finished execution never changes, a running one changes by the
//! second. Resolvers report each thing they serve; the HTTP handler turns the shortest lifetime
//! into `Cache-Control` (`no-store` when anything was live, stale or failed).

use std::sync::{Arc, Mutex};

use async_graphql::{Response, Value};

use crate::service::{Fetched, ServedFrom};

/// Reuse of a settled execution (finished, report settled).
const SETTLED_SECONDS: u32 = 300;
/// Reuse of history pages and statistics, which grow as executions finish.
const HISTORY_SECONDS: u32 = 60;

#[derive(Clone, Debug, Default)]
pub struct CacheHint {
    max_age: Arc<Mutex<Option<u32>>>,
    warnings: Arc<Mutex<Vec<Value>>>,
}

impl CacheHint {
    pub fn served(&self, fetched: &Fetched) {
        let reusable = fetched.execution.is_settled() && fetched.served_from != ServedFrom::Stale;
        self.allow(if reusable { SETTLED_SECONDS } else { 0 });
        if let Some(failure) = &fetched.stale_because {
            let warning = serde_json::json!({
                "code": "STALE",
                "message": format!(
                    "{failure}; served the description of {} fetched at {}",
                    fetched.arn, fetched.execution.fetched_at.to_rfc3339()
                ),
                "upstreamCode": failure.code(),
                "executionArn": fetched.arn.as_str(),
                "fetchedAt": fetched.execution.fetched_at.to_rfc3339(),
            });
            if let Ok(warning) = Value::from_json(warning) {
                self.warnings.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(warning);
            }
        }
    }

    /// Puts the warnings gathered so far into `response.extensions.warnings` (each once).
    pub fn attach_warnings(&self, response: &mut Response) {
        let warnings =
            std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        if !warnings.is_empty() {
            response.extensions.insert("warnings".into(), Value::List(warnings));
        }
    }

    pub fn served_history(&self) {
        self.allow(HISTORY_SECONDS);
    }

    fn allow(&self, seconds: u32) {
        let mut max_age = self.max_age.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *max_age = Some(max_age.map_or(seconds, |current| current.min(seconds)));
    }

    /// Seconds the whole answer may be reused; `None` when it must not be stored.
    pub fn max_age(&self) -> Option<u32> {
        let max_age = *self.max_age.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        max_age.filter(|seconds| *seconds > 0)
    }
}
