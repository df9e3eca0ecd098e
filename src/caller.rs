//! Who a request comes from, and how many DataSync calls it may still cause.
//!
//! The identity is the key under which DataSync calls take turns (see
//! [`crate::datasync::fair`]): the client's IP address until authentication exists. The budget
//! is shared by every operation and field of one HTTP request, so aliases and batches cannot
//! multiply what one request costs AWS.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::datasync::fair::CallerKey;
use crate::error::GatewayError;

#[derive(Clone, Debug)]
pub struct Caller {
    key: CallerKey,
    budget: Arc<CallBudget>,
    /// The gateway's own background work, which yields to clients under the call budget.
    background: bool,
}

#[derive(Debug)]
struct CallBudget {
    limit: usize,
    spent: AtomicUsize,
}

impl Caller {
    /// A client at `address`, allowed `upstream_calls` DataSync calls for this request.
    pub fn client(address: IpAddr, upstream_calls: usize) -> Self {
        Self::with_key(format!("ip:{address}"), upstream_calls, false)
    }

    /// The gateway's own background work (the discovery sync): bounded by its schedule, not by a budget.
    pub fn internal(task: &str) -> Self {
        Self::with_key(format!("internal:{task}"), usize::MAX, true)
    }

    fn with_key(key: String, limit: usize, background: bool) -> Self {
        let budget = Arc::new(CallBudget { limit, spent: AtomicUsize::new(0) });
        Caller { key: key.into(), budget, background }
    }

    pub fn is_background(&self) -> bool {
        self.background
    }

    pub fn key(&self) -> &CallerKey {
        &self.key
    }

    /// Takes one DataSync call from the request's budget.
    pub fn spend_upstream_call(&self) -> Result<(), GatewayError> {
        let budget = &self.budget;
        let spent = budget.spent.fetch_add(1, Ordering::Relaxed);
        if spent >= budget.limit {
            budget.spent.fetch_sub(1, Ordering::Relaxed);
            return Err(GatewayError::UpstreamCallLimit(budget.limit));
        }
        Ok(())
    }
}
