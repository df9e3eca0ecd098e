//! Failed authentications per client address. Each distinct bad API key costs a database
//! lookup (its id is new), so a flood of random keys from one address was ~1,500 queries a
//! second; past a few failures a second, an address is refused before anything is looked up.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures an address may have in a burst, and how many it earns back a second.
const BURST: f64 = 10.0;
const PER_SECOND: f64 = 5.0;

#[derive(Clone)]
pub struct FailedAuthentications {
    buckets: moka::sync::Cache<IpAddr, Arc<Mutex<Bucket>>>,
}

struct Bucket {
    left: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        self.left = (self.left + now.duration_since(self.at).as_secs_f64() * PER_SECOND).min(BURST);
        self.at = now;
    }
}

impl Default for FailedAuthentications {
    fn default() -> Self {
        // An address idle for a minute has its whole burst back: nothing to remember.
        let buckets =
            moka::sync::Cache::builder().max_capacity(100_000).time_to_idle(Duration::from_secs(60)).build();
        FailedAuthentications { buckets }
    }
}

impl FailedAuthentications {
    /// `None` while `peer` may try again; else in how many seconds it may.
    pub fn refused_for(&self, peer: IpAddr) -> Option<u64> {
        let bucket = self.buckets.get(&peer)?;
        let mut bucket = bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        bucket.refill(Instant::now());
        (bucket.left < 1.0).then(|| ((1.0 - bucket.left) / PER_SECOND).ceil().max(1.0) as u64)
    }

    /// Counts one failure of `peer`.
    pub fn failed(&self, peer: IpAddr) {
        let now = Instant::now();
        let bucket = self.buckets.get_with(peer, || Arc::new(Mutex::new(Bucket { left: BURST, at: now })));
        let mut bucket = bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        bucket.refill(now);
        bucket.left = (bucket.left - 1.0).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_past_its_burst_and_others_are_not() {
        let failures = FailedAuthentications::default();
        let (flooding, other): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..BURST as usize {
            assert_eq!(failures.refused_for(flooding), None);
            failures.failed(flooding);
        }
        assert!(failures.refused_for(flooding).is_some_and(|seconds| seconds >= 1));
        assert_eq!(failures.refused_for(other), None);
    }
}
