//! Requests per second per caller (its IP address until authentication exists), so that one
//! client's flood cannot crowd out the others: a GCRA limiter per caller key (governor), with a
//! burst of two seconds' worth. Every GraphQL operation counts, whatever the transport (HTTP,
//! WebSocket, event stream); beyond the rate the caller gets `RATE_LIMITED` with the seconds to
//! wait. The probes, GraphiQL's assets and EventBridge deliveries do not count.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::CallerKey;
use crate::error::GatewayError;
use crate::request::Caller;

/// How often limiters of callers that went quiet are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// Keyed by foldhash, seeded per process, as the gateway's other tables of what clients send:
/// every operation looks its caller up, and SipHash (the default) is slower on a short key.
type Limiter =
    RateLimiter<CallerKey, DefaultKeyedStateStore<CallerKey, foldhash::fast::RandomState>, DefaultClock>;

#[derive(Clone)]
pub struct RateLimits {
    /// `None`: no limit.
    limiter: Option<Arc<Limiter>>,
}

impl RateLimits {
    /// `per_second` requests per caller (0: unlimited).
    pub fn new(per_second: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
            let quota = Quota::per_second(rate).allow_burst(burst);
            Arc::new(Limiter::dashmap_with_hasher(quota, foldhash::fast::RandomState::default()))
        });
        RateLimits { limiter }
    }

    /// Counts one operation of `caller`; `RateLimited` with the seconds to wait beyond the rate.
    pub fn check(&self, caller: &Caller) -> Result<(), GatewayError> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        limiter.check_key(caller.key()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            GatewayError::RateLimited(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })
    }

    /// Forgets, now and then, the callers that have their whole burst back; the task's handle.
    pub fn start_forgetting(&self) -> Option<tokio::task::AbortHandle> {
        let limiter = self.limiter.clone()?;
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(FORGET_EVERY);
            loop {
                ticks.tick().await;
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
        Some(task.abort_handle())
    }
}
