//! A call budget per site (an account's region). AWS publishes no rate limits for DataSync and
//! throttles per account and region, so the gateway spends at most `rate` calls a second in
//! each site, whoever asks.
//! A burst of five seconds' worth may be spent at once after a quiet spell (a page of cold reads
//! should not crawl), and client reads come first: background work (the discovery sync, the
//! watcher) only spends while more than half of that burst is left, so it is what yields when
//! the budget runs short.
//!
//! When callers wait, they are served in turn, one call each, as the budget refills: a caller
//! with 95 calls queued and one with a single call get alternate calls, so a flood from one key
//! delays another key's read by one refill, not by the flood (measured: without turns, another
//! key's STRONG reads waited 10 s behind a reader pacing 95 cold subscriptions a second).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::request::CallerKey;

/// The burst, in seconds of the rate.
const BURST_SECONDS: f64 = 5.0;

pub struct CallBudget {
    shared: Arc<Shared>,
}

struct Shared {
    rate: f64,
    /// Calls that may be spent at once after a quiet spell.
    burst: f64,
    state: Mutex<State>,
}

struct State {
    tokens: f64,
    refilled: Instant,
    /// Each waiting caller's calls.
    waiting: HashMap<CallerKey, Waiting>,
    /// Callers with a call waiting, in the order they are served next.
    turns: VecDeque<CallerKey>,
    /// Whether a task is handing out the budget to waiting callers.
    dispatching: bool,
}

/// One caller's calls waiting for the budget, oldest first.
#[derive(Default)]
struct Waiting {
    background: bool,
    calls: VecDeque<oneshot::Sender<()>>,
}

impl CallBudget {
    pub fn new(calls_per_second: f64) -> Self {
        let rate = calls_per_second.max(0.1);
        let burst = (rate * BURST_SECONDS).max(1.0);
        let state = State {
            tokens: burst,
            refilled: Instant::now(),
            waiting: HashMap::new(),
            turns: VecDeque::new(),
            dispatching: false,
        };
        CallBudget { shared: Arc::new(Shared { rate, burst, state: Mutex::new(state) }) }
    }

    /// Waits until `caller` may make a call, and counts it. Spent at once while nobody waits
    /// and the budget allows; otherwise in turn with the other waiting callers.
    pub async fn spend(&self, caller: &CallerKey, background: bool) {
        let turn = {
            let mut state = self.shared.lock();
            self.shared.refill(&mut state);
            if state.turns.is_empty() && state.tokens - 1.0 >= self.shared.reserve(background) {
                state.tokens -= 1.0;
                return;
            }
            let (sender, turn) = oneshot::channel();
            let state = &mut *state;
            let waiting = state.waiting.entry(caller.clone()).or_default();
            if waiting.calls.is_empty() {
                state.turns.push_back(caller.clone());
            }
            waiting.calls.push_back(sender);
            waiting.background = background;
            if !state.dispatching {
                state.dispatching = true;
                tokio::spawn(dispatch(self.shared.clone()));
            }
            turn
        };
        // The dispatcher never drops a sender without sending while it runs.
        let _ = turn.await;
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn refill(&self, state: &mut State) {
        let now = Instant::now();
        state.tokens =
            (state.tokens + now.duration_since(state.refilled).as_secs_f64() * self.rate).min(self.burst);
        state.refilled = now;
    }

    /// What must be left after a call: half the burst for background work, nothing for clients.
    fn reserve(&self, background: bool) -> f64 {
        if background {
            self.burst / 2.0
        } else {
            0.0
        }
    }

    /// Hands out one call to the next caller in turn whose call may be spent now; `Err` with
    /// the wait until one may, or `Ok(false)` when nobody waits any more.
    fn serve_one(&self, state: &mut State) -> Result<bool, Duration> {
        self.refill(state);
        let mut earliest: Option<Duration> = None;
        for _ in 0..state.turns.len() {
            let Some(caller) = state.turns.pop_front() else { break };
            let Some(waiting) = state.waiting.get_mut(&caller) else { continue };
            let needed = 1.0 + self.reserve(waiting.background);
            if state.tokens < needed {
                let wait = Duration::from_secs_f64((needed - state.tokens) / self.rate);
                earliest = Some(earliest.map_or(wait, |earliest| earliest.min(wait)));
                state.turns.push_back(caller);
                continue;
            }
            // A waiter that gave up (its request timed out) costs nothing.
            while let Some(sender) = waiting.calls.pop_front() {
                if sender.send(()).is_ok() {
                    state.tokens -= 1.0;
                    break;
                }
            }
            if waiting.calls.is_empty() {
                state.waiting.remove(&caller);
            } else {
                state.turns.push_back(caller);
            }
            return Ok(true);
        }
        match earliest {
            Some(wait) => Err(wait),
            None => Ok(false),
        }
    }
}

/// Serves waiting callers in turn as the budget refills, until nobody waits.
async fn dispatch(shared: Arc<Shared>) {
    loop {
        let served = {
            let mut state = shared.lock();
            let served = shared.serve_one(&mut state);
            if served == Ok(false) {
                state.dispatching = false;
            }
            served
        };
        match served {
            Ok(true) => {}
            Ok(false) => return,
            Err(wait) => tokio::time::sleep(wait).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> CallerKey {
        name.into()
    }

    #[tokio::test(start_paused = true)]
    async fn clients_spend_the_whole_budget_background_work_only_the_upper_half() {
        let budget = CallBudget::new(4.0);
        let started = Instant::now();
        for _ in 0..10 {
            budget.spend(&key("sync"), true).await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO, "background spends down to half the burst of 20");
        for _ in 0..10 {
            budget.spend(&key("client"), false).await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO, "clients spend the rest");
        budget.spend(&key("client"), false).await;
        assert_eq!(started.elapsed(), Duration::from_millis(250), "then one call a refill, at 4 a second");
        let background = Instant::now();
        budget.spend(&key("sync"), true).await;
        assert!(background.elapsed() >= Duration::from_millis(2_500), "background waits for half the burst");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_callers_are_served_in_turn_not_in_arrival_order() {
        let budget = Arc::new(CallBudget::new(1.0));
        for _ in 0..5 {
            budget.spend(&key("flood"), false).await;
        }
        // The burst is spent; 95 calls of one caller queue, then one of another.
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut calls = Vec::new();
        for n in 0..95 {
            let (budget, order) = (budget.clone(), order.clone());
            calls.push(tokio::spawn(async move {
                budget.spend(&key("flood"), false).await;
                order.lock().unwrap().push(format!("flood-{n}"));
            }));
            tokio::task::yield_now().await;
        }
        let (lone_budget, lone_order) = (budget.clone(), order.clone());
        let started = Instant::now();
        let lone = tokio::spawn(async move {
            lone_budget.spend(&key("lone"), false).await;
            lone_order.lock().unwrap().push("lone".to_owned());
        });
        lone.await.unwrap();
        assert!(
            started.elapsed() <= Duration::from_secs(2),
            "served after one or two refills: {:?}",
            started.elapsed()
        );
        let position = order.lock().unwrap().iter().position(|name| name == "lone").unwrap();
        assert!(position <= 1, "second in line at most, not 96th: {:?}", order.lock().unwrap());
        for call in calls {
            call.abort();
        }
    }
}
