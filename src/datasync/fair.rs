//! A semaphore that hands free slots to its callers in turn: each waiting caller gets the next
//! slot before any caller gets a second one. A crowd of 600 calls from one client therefore
//! makes another client's single call wait for one slot to free up, not for the crowd.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::request::CallerKey;

#[derive(Clone)]
pub struct FairSemaphore {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    free: usize,
    waiting: HashMap<CallerKey, VecDeque<oneshot::Sender<Permit>>>,
    /// Callers with someone waiting, in the order they get the next slots.
    turns: VecDeque<CallerKey>,
}

/// One slot, returned when dropped.
pub struct Permit {
    inner: Arc<Inner>,
}

impl FairSemaphore {
    pub fn new(slots: usize) -> Self {
        FairSemaphore {
            inner: Arc::new(Inner { state: Mutex::new(State { free: slots, ..State::default() }) }),
        }
    }

    /// A slot for `caller`, as soon as it is its turn. Dropping the future gives up the place.
    pub async fn acquire(&self, caller: &CallerKey) -> Permit {
        let receiver = {
            let mut state = self.inner.lock();
            if state.free > 0 && state.turns.is_empty() {
                state.free -= 1;
                return Permit { inner: self.inner.clone() };
            }
            let (sender, receiver) = oneshot::channel();
            let queue = state.waiting.entry(caller.clone()).or_default();
            queue.push_back(sender);
            if queue.len() == 1 {
                state.turns.push_back(caller.clone());
            }
            receiver
        };
        // The sender is only dropped by `release` after handing over a permit, or never.
        receiver.await.expect("a waiting caller is sent a permit before its sender is dropped")
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        while let Some(caller) = state.turns.pop_front() {
            let queue = state.waiting.get_mut(&caller).expect("a caller in turn has a queue");
            let sender = queue.pop_front().expect("a caller in turn has a waiter");
            if queue.is_empty() {
                state.waiting.remove(&caller);
            } else {
                state.turns.push_back(caller);
            }
            match sender.send(Permit { inner: self.inner.clone() }) {
                Ok(()) => return,
                // The waiter gave up; this slot is still ours to hand on. Forgetting the
                // returned permit keeps its drop from re-entering this lock.
                Err(unsent) => std::mem::forget(unsent),
            }
        }
        state.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lone_caller_is_served_before_a_crowds_second_call() {
        let semaphore = FairSemaphore::new(1);
        let crowd: CallerKey = "crowd".into();
        let bystander: CallerKey = "bystander".into();
        let held = semaphore.acquire(&crowd).await;

        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (semaphore, order, crowd) = (semaphore.clone(), order.clone(), crowd.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = semaphore.acquire(&crowd).await;
                order.lock().unwrap().push(format!("crowd{i}"));
            }));
            tokio::task::yield_now().await;
        }
        let (semaphore2, order2) = (semaphore.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore2.acquire(&bystander).await;
            order2.lock().unwrap().push("bystander".into());
        }));
        tokio::task::yield_now().await;
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        let order = order.lock().unwrap();
        assert_eq!(order[1], "bystander", "{order:?}");
        assert_eq!(order.len(), 6);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_does_not_lose_the_slot() {
        let semaphore = FairSemaphore::new(1);
        let key: CallerKey = "a".into();
        let held = semaphore.acquire(&key).await;
        let abandoned =
            tokio::time::timeout(std::time::Duration::from_millis(10), semaphore.acquire(&key)).await;
        assert!(abandoned.is_err());
        drop(held);
        let again = tokio::time::timeout(std::time::Duration::from_secs(1), semaphore.acquire(&key)).await;
        assert!(again.is_ok(), "the slot came back");
    }
}
