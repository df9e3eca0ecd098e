//! A call budget per region. AWS publishes no rate limits for DataSync and throttles per
//! account, so the gateway spends at most `rate` calls a second in each region, whoever asks.
//! A burst of five seconds' worth may be spent at once after a quiet spell (a page of cold reads
//! should not crawl), and client reads come first: background work (the discovery sync) only
//! spends while more than half of that burst is left, so it is what yields when the budget runs
//! short.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The burst, in seconds of the rate.
const BURST_SECONDS: f64 = 5.0;

pub struct CallBudget {
    rate: f64,
    /// Calls that may be spent at once after a quiet spell.
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl CallBudget {
    pub fn new(calls_per_second: f64) -> Self {
        let rate = calls_per_second.max(0.1);
        let burst = (rate * BURST_SECONDS).max(1.0);
        CallBudget { rate, burst, state: Mutex::new((burst, Instant::now())) }
    }

    /// Waits until a call may be made, and counts it.
    pub async fn spend(&self, background: bool) {
        let reserve = if background { self.burst / 2.0 } else { 0.0 };
        loop {
            match self.try_spend(reserve) {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    fn try_spend(&self, reserve: f64) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, last) = &mut *state;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens - 1.0 >= reserve {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 + reserve - *tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn clients_spend_the_whole_budget_background_work_only_the_upper_half() {
        let budget = CallBudget::new(4.0);
        for _ in 0..10 {
            assert!(budget.try_spend(10.0).is_ok(), "background spends down to half the burst of 20");
        }
        assert!(budget.try_spend(10.0).is_err(), "then waits");
        for _ in 0..10 {
            assert!(budget.try_spend(0.0).is_ok(), "clients spend the rest");
        }
        let wait = budget.try_spend(0.0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(250), "refills at 4 a second");
        tokio::time::advance(wait).await;
        assert!(budget.try_spend(0.0).is_ok());
    }
}
