//! What the resolvers of one request served, as far as the client's transport needs to know:
//! how long HTTP caches (a browser, a CDN in front of GET queries) may reuse the answer,
//! warnings to put in the response's `extensions`, and whether the gateway may replay the
//! answer itself ([`super::response_cache`]). The lifetime depends on what was served, not on
//! the query's shape: a finished execution never changes, a running one changes by the second.
//! The HTTP handler turns the shortest lifetime into `Cache-Control` (`no-store` when anything
//! was live, stale or failed).
//!
//! Every resolver that reads anything reports it here: an execution with [`CacheHint::served`],
//! history with [`CacheHint::served_history`], anything else with [`CacheHint::served_other`].
//! A read not reported would let the response cache replay an answer that no longer holds.

use std::sync::{Arc, Mutex};

use async_graphql::{Response, Value};

use crate::model::TaskExecution;
use crate::service::executions::{Fetched, ServedFrom};

/// Reuse of a settled execution (finished, report settled).
const SETTLED_SECONDS: u32 = 300;
/// Reuse of history pages and statistics, which grow as executions finish.
const HISTORY_SECONDS: u32 = 60;

#[derive(Clone, Debug, Default)]
pub struct CacheHint {
    max_age: Arc<Mutex<Option<u32>>>,
    warnings: Arc<Mutex<Vec<Value>>>,
    reads: Arc<Mutex<Reads>>,
}

/// What a replay of the response depends on.
#[derive(Debug, Default)]
struct Reads {
    /// Set once the operation turned out to be a query: its name.
    query: Option<Option<Box<str>>>,
    /// The descriptions served from the execution cache.
    executions: Vec<Arc<TaskExecution>>,
    /// Something was read from anywhere else.
    elsewhere: bool,
}

/// A query's name, and the descriptions it read from the execution cache.
pub struct ReplayableReads {
    pub operation_name: Option<Box<str>>,
    pub executions: Vec<Arc<TaskExecution>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CacheHint {
    pub fn served(&self, fetched: &Fetched) {
        let reusable = fetched.execution.is_settled() && fetched.served_from != ServedFrom::Stale;
        self.allow(if reusable { SETTLED_SECONDS } else { 0 });
        let mut reads = lock(&self.reads);
        if fetched.served_from == ServedFrom::Cache {
            reads.executions.push(fetched.execution.clone());
        } else {
            reads.elsewhere = true;
        }
        drop(reads);
        if let Some(failure) = &fetched.stale_because {
            let warning = serde_json::json!({
                "code": "STALE",
                "message": format!(
                    "{failure}; served the description of {} fetched at {}",
                    fetched.arn(), fetched.execution.fetched_at.to_rfc3339()
                ),
                "upstreamCode": failure.code().as_str(),
                "executionArn": fetched.arn().as_str(),
                "fetchedAt": fetched.execution.fetched_at.to_rfc3339(),
            });
            if let Ok(warning) = Value::from_json(warning) {
                lock(&self.warnings).push(warning);
            }
        }
    }

    /// Puts the warnings gathered so far into `response.extensions.warnings` (each once).
    pub fn attach_warnings(&self, response: &mut Response) {
        let warnings = std::mem::take(&mut *lock(&self.warnings));
        if !warnings.is_empty() {
            response.extensions.insert("warnings".into(), Value::List(warnings));
        }
    }

    pub fn served_history(&self) {
        self.allow(HISTORY_SECONDS);
        self.served_other();
    }

    /// A read of anything but an execution or history (a task, a location list): no effect on
    /// HTTP caching, but the gateway does not replay the answer.
    pub fn served_other(&self) {
        lock(&self.reads).elsewhere = true;
    }

    /// The operation that ran is a query (only those are replayed), named `name`.
    pub fn ran_query(&self, name: Option<&str>) {
        lock(&self.reads).query = Some(name.map(Into::into));
    }

    /// For a query that read nothing but cached executions: what a replay depends on.
    /// (Whether the response carries errors or warnings is for the caller to check: warnings
    /// have moved into the response by then.)
    pub fn replayable(&self) -> Option<ReplayableReads> {
        let mut reads = lock(&self.reads);
        if reads.elsewhere {
            return None;
        }
        let operation_name = reads.query.take()?;
        Some(ReplayableReads { operation_name, executions: std::mem::take(&mut reads.executions) })
    }

    fn allow(&self, seconds: u32) {
        let mut max_age = lock(&self.max_age);
        *max_age = Some(max_age.map_or(seconds, |current| current.min(seconds)));
    }

    /// Seconds the whole answer may be reused; `None` when it must not be stored.
    pub fn max_age(&self) -> Option<u32> {
        let max_age = *lock(&self.max_age);
        max_age.filter(|seconds| *seconds > 0)
    }
}
