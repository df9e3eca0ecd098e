//! Identical subscriptions share one execution. Ten thousand subscribers of one dashboard are
//! mostly the same operation with the same variables: each run by async-graphql on its own would
//! hold its own execution (~60 KB each, measured) and resolve every change once per subscriber.
//! Here the first subscriber of an operation starts it, later ones join, each change is resolved
//! once and handed to all, and the execution stops when its last subscriber leaves.
//!
//! A subscriber joining late gets the latest result first where the root field reports a state
//! (`taskExecutionUpdated`: the execution as it is now, as if it had subscribed alone); an event
//! feed (`executionEvents`) starts at the next event, as a new subscription would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use async_graphql::{Response, Variables};
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::broadcast;

use crate::error::ErrorCode;
use crate::request::AccountScope;

/// Results of a state queued for a subscriber that is slow to take them; one that falls further
/// behind skips to the oldest still queued, which is as good as the one it missed.
const STATE_BACKLOG: usize = 64;
/// Results of an event feed queued likewise: as many as the fleet feed itself keeps, since a
/// skipped event is lost. One watcher cycle announces every finish it saw at once, and a burst
/// of 100 finishes overran 64 before the subscriber's connection task had run (measured by
/// `replicas::a_client_told_finished_reads_finished_from_the_index_at_once`).
const EVENT_BACKLOG: usize = crate::service::live::hub::FEED_BACKLOG;

/// What makes two subscriptions the same operation: the same text and variables, asked by
/// callers who may see the same accounts (a shared execution runs as its first subscriber, so
/// callers of another scope must not join it).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FanoutKey {
    query: String,
    operation_name: Option<String>,
    variables: String,
    accounts: AccountScope,
}

impl FanoutKey {
    pub fn new(
        query: &str,
        operation_name: Option<&str>,
        variables: &Variables,
        accounts: &AccountScope,
    ) -> Self {
        FanoutKey {
            query: query.to_owned(),
            operation_name: operation_name.map(str::to_owned),
            // Variables are a sorted map: equal variables serialise equally.
            variables: serde_json::to_string(variables).unwrap_or_default(),
            accounts: accounts.clone(),
        }
    }
}

#[derive(Clone, Default)]
pub struct Fanout {
    running: Arc<Mutex<HashMap<FanoutKey, Weak<Shared>>>>,
}

/// One shared execution.
struct Shared {
    /// One lock, so that a joiner neither misses nor repeats a result.
    latest: Mutex<Latest>,
    /// Ends the execution when the last subscriber leaves.
    task: tokio::task::AbortHandle,
    replay_latest: bool,
}

/// The latest result (for late joiners of a state), and the channel to the subscribers (none
/// once the execution completed).
struct Latest {
    result: Option<Arc<Response>>,
    sender: Option<broadcast::Sender<Arc<Response>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fanout {
    /// The results of the operation `key` names: joined if it runs already, else started from
    /// `start`. `replay_latest`: whether a late joiner gets the latest result first.
    pub fn subscribe(
        &self,
        key: FanoutKey,
        replay_latest: bool,
        start: impl FnOnce() -> BoxStream<'static, Response>,
    ) -> BoxStream<'static, Response> {
        let mut running = self.running();
        if let Some(shared) = running.get(&key).and_then(Weak::upgrade) {
            let latest = lock(&shared.latest);
            if let Some(sender) = &latest.sender {
                let receiver = sender.subscribe();
                let first = latest.result.clone().filter(|_| shared.replay_latest);
                drop(latest);
                return results(shared, first, receiver);
            }
        }
        running.retain(|_, shared| shared.strong_count() > 0);
        let (sender, receiver) =
            broadcast::channel(if replay_latest { STATE_BACKLOG } else { EVENT_BACKLOG });
        let results_of = start();
        let shared = Arc::new_cyclic(|weak: &Weak<Shared>| {
            let weak = weak.clone();
            let task = tokio::spawn(async move {
                let mut results_of = results_of;
                while let Some(response) = results_of.next().await {
                    let Some(shared) = weak.upgrade() else { return };
                    let response = Arc::new(response);
                    let mut latest = lock(&shared.latest);
                    latest.result = Some(response.clone());
                    if let Some(sender) = &latest.sender {
                        let _ = sender.send(response);
                    }
                }
                // The execution completed: its subscribers complete too, and nobody joins it.
                if let Some(shared) = weak.upgrade() {
                    lock(&shared.latest).sender = None;
                }
            });
            let latest = Mutex::new(Latest { result: None, sender: Some(sender) });
            Shared { latest, task: task.abort_handle(), replay_latest }
        });
        running.insert(key, Arc::downgrade(&shared));
        results(shared, None, receiver)
    }

    fn running(&self) -> MutexGuard<'_, HashMap<FanoutKey, Weak<Shared>>> {
        lock(&self.running)
    }
}

/// One subscriber's results: `first`, then what the shared execution sends, until it completes.
/// Holding `shared` keeps the execution running.
fn results(
    shared: Arc<Shared>,
    first: Option<Arc<Response>>,
    receiver: broadcast::Receiver<Arc<Response>>,
) -> BoxStream<'static, Response> {
    let replayed = futures::stream::iter(first).map(|response| owned(&response));
    let live = futures::stream::unfold(Some((shared, receiver)), |state| async move {
        let (shared, mut receiver) = state?;
        loop {
            match receiver.recv().await {
                Ok(response) => return Some((owned(&response), Some((shared, receiver)))),
                // A state: the oldest result still queued is as good as the ones skipped.
                Err(broadcast::error::RecvError::Lagged(_)) if shared.replay_latest => continue,
                // Events: skipped ones are lost, so the subscriber is told, and the stream ends.
                Err(broadcast::error::RecvError::Lagged(missed)) => return Some((lagged(missed), None)),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    replayed.chain(live).boxed()
}

/// The last result of an event feed whose subscriber fell behind and missed `missed` events.
fn lagged(missed: u64) -> Response {
    let message = format!(
        "this subscriber fell behind and missed {missed} events; subscribe again, and read \
         executions(filter: {{ updatedAfter: … }}) for what changed meanwhile"
    );
    Response::from_errors(vec![ErrorCode::SubscriptionLagged.error(&message)])
}

/// A copy of a shared result for one subscriber (async-graphql's `Response` is not `Clone`).
fn owned(response: &Response) -> Response {
    let mut copy = Response::new(response.data.clone());
    copy.errors = response.errors.clone();
    copy.extensions = response.extensions.clone();
    copy
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shared execution fed by hand; how many times it was started.
    fn start(
        counter: &Arc<std::sync::atomic::AtomicUsize>,
    ) -> (tokio::sync::mpsc::UnboundedSender<i32>, impl FnOnce() -> BoxStream<'static, Response>) {
        let (feed, results) = tokio::sync::mpsc::unbounded_channel::<i32>();
        let counter = counter.clone();
        let start = move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio_stream(results).map(|n| Response::new(async_graphql::Value::from(n))).boxed()
        };
        (feed, start)
    }

    fn tokio_stream(
        mut receiver: tokio::sync::mpsc::UnboundedReceiver<i32>,
    ) -> impl futures::Stream<Item = i32> {
        futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
    }

    async fn next(stream: &mut BoxStream<'static, Response>) -> Option<async_graphql::Value> {
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await.unwrap().map(|r| r.data)
    }

    #[tokio::test]
    async fn joiners_share_one_execution_states_replay_the_latest_and_it_ends_with_the_last() {
        let fanout = Fanout::default();
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let key = FanoutKey::new("subscription { s }", None, &Variables::default(), &AccountScope::All);
        let (feed, first_start) = start(&started);
        let mut first = fanout.subscribe(key.clone(), true, first_start);
        feed.send(1).unwrap();
        assert_eq!(next(&mut first).await, Some(1.into()));

        let (_, unused) = start(&started);
        let mut joiner = fanout.subscribe(key.clone(), true, unused);
        assert_eq!(next(&mut joiner).await, Some(1.into()), "a state: the latest first");
        feed.send(2).unwrap();
        assert_eq!((next(&mut first).await, next(&mut joiner).await), (Some(2.into()), Some(2.into())));
        assert_eq!(started.load(std::sync::atomic::Ordering::Relaxed), 1, "one execution for both");

        drop(feed);
        assert_eq!((next(&mut first).await, next(&mut joiner).await), (None, None), "it completed for both");
        drop((first, joiner));

        let events = FanoutKey::new("subscription { e }", None, &Variables::default(), &AccountScope::All);
        let (feed, start_events) = start(&started);
        let mut early = fanout.subscribe(events.clone(), false, start_events);
        feed.send(7).unwrap();
        assert_eq!(next(&mut early).await, Some(7.into()));
        let (_, unused) = start(&started);
        let mut late = fanout.subscribe(events, false, unused);
        feed.send(8).unwrap();
        assert_eq!(next(&mut late).await, Some(8.into()), "events: only what comes after joining");
        drop((early, late));
        assert!(feed.send(9).is_ok() || feed.is_closed());
        tokio::task::yield_now().await;
        assert!(feed.is_closed(), "the last subscriber gone, the execution stops");
    }

    #[tokio::test]
    async fn an_event_subscriber_that_falls_too_far_behind_is_told_and_its_stream_ends() {
        let fanout = Fanout::default();
        let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let key = FanoutKey::new("subscription { e }", None, &Variables::default(), &AccountScope::All);
        let (feed, start_events) = start(&started);
        let mut slow = fanout.subscribe(key, false, start_events);
        feed.send(0).unwrap();
        assert_eq!(next(&mut slow).await, Some(0.into()));
        // More than the backlog arrives while the subscriber takes nothing.
        for n in 1..=(EVENT_BACKLOG as i32 + 10) {
            feed.send(n).unwrap();
        }
        // The shared execution's task forwards them all before the subscriber looks again.
        for _ in 0..1_000 {
            tokio::task::yield_now().await;
        }
        drop(feed);
        let mut last = None;
        while let Some(response) =
            tokio::time::timeout(std::time::Duration::from_secs(5), slow.next()).await.unwrap()
        {
            last = Some(response);
        }
        let last = last.expect("results, then the end");
        let code = last.errors.first().and_then(|error| error.extensions.as_ref()?.get("code").cloned());
        assert_eq!(
            code,
            Some(async_graphql::Value::from(ErrorCode::SubscriptionLagged.as_str())),
            "{last:?}"
        );
    }
}
