//! What ends a connection besides its client: nothing moving for `--connection-idle-timeout`, a
//! client that takes nothing written to it for `--write-timeout`, a server shutting down (the
//! connection then drains). And the ticks that let hyper look at a request head's deadline
//! (see [`head_deadline`](super::head_deadline)).
//!
//! A connection's task is woken at least twice a request (bytes to read, room to write), while
//! its watchdog's timers and the shutdown signal fire a few times a minute. Polled as branches of
//! one `select!`, every wake-up polled three timers and locked the shutdown signal's list of
//! waiters, which every connection shares: about 4 % of the gateway's time on a replayed answer.
//! Here the watchdog has a waker of its own, and is polled only when that waker was woken.
//!
//! The connection has one too, for the wakes that come while it is being polled. hyper's body
//! channel wakes the connection's own task when the handler takes the body (the sender's waker,
//! though the sender is gone): once a request. A task woken during its own poll goes to the back
//! of its worker's queue, and tokio then wakes a parked worker to come and steal it: a futex
//! call, a context switch, and often the connection moved to the other core: about 0.4 µs of
//! the 9 µs of CPU time a replayed answer took (BENCHMARKS.md). Such a wake is noted instead,
//! and the connection polled again at once.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::connection::Activity;
use super::head_deadline::HeadDeadlines;
use super::server::ConnectionLimits;

/// Why the watchdog ends a connection.
enum Verdict {
    Idle,
    Stalled,
}

/// Drives `connection` until it ends, or until its watchdog ends it; `drain` starts its graceful
/// shutdown once `stopping` turns true.
pub async fn drive<C, E>(
    connection: C,
    drain: impl Fn(Pin<&mut C>),
    activity: Activity,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut connection = pin!(connection);
    let stop = AtomicBool::new(false);
    let mut watchdog = pin!(watch(&activity, limits, &mut stopping, &stop));
    let mut draining = false;
    let wakes = Arc::new(Wakes {
        task: AtomicWaker::new(),
        watchdog: AtomicBool::new(true),
        connection: AtomicU8::new(IDLE),
    });
    let watchdog_waker = Waker::from(Arc::new(WatchdogWake(wakes.clone())));
    let connection_waker = Waker::from(Arc::new(ConnectionWake(wakes.clone())));
    poll_fn(|cx| {
        wakes.task.register(cx.waker());
        if wakes.watchdog.swap(false, Ordering::AcqRel) {
            if let Poll::Ready(verdict) = watchdog.as_mut().poll(&mut Context::from_waker(&watchdog_waker)) {
                match verdict {
                    Verdict::Idle => tracing::debug!(%peer, "closing an idle connection"),
                    Verdict::Stalled => tracing::debug!(
                        %peer,
                        "closing a connection whose client takes nothing of what is written"
                    ),
                }
                return Poll::Ready(());
            }
            // Answer what is in flight, then close.
            if stop.load(Ordering::Relaxed) && !draining {
                draining = true;
                drain(connection.as_mut());
            }
        }
        poll_connection(connection.as_mut(), &wakes, &connection_waker, cx).map(|result| {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        })
    })
    .await
}

/// How many times in a row a connection woken during its poll is polled again before its task
/// lets the worker's other tasks run (hyper yields after 16 turns of its own loop).
const POLLS_IN_A_ROW: usize = 4;

/// The connection's wake state: not being polled, being polled, woken while being polled.
const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN: u8 = 2;

/// Polls `connection` with its own waker, again at once when that was woken during the poll.
fn poll_connection<C: Future>(
    mut connection: Pin<&mut C>,
    wakes: &Wakes,
    waker: &Waker,
    cx: &Context<'_>,
) -> Poll<C::Output> {
    for _ in 0..POLLS_IN_A_ROW {
        wakes.connection.store(POLLING, Ordering::SeqCst);
        if let Poll::Ready(output) = connection.as_mut().poll(&mut Context::from_waker(waker)) {
            wakes.connection.store(IDLE, Ordering::SeqCst);
            return Poll::Ready(output);
        }
        // Not woken meanwhile: a wake from now on wakes the task.
        if wakes.connection.compare_exchange(POLLING, IDLE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return Poll::Pending;
        }
    }
    wakes.connection.store(IDLE, Ordering::SeqCst);
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// The watchdog's verdict, once it has one. Meanwhile: `stop` set once the server shuts down
/// (a draining connection still closes when idle or stalled), and a tick now and then, for
/// hyper to look at a request head's deadline when the connection's task is polled.
async fn watch(
    activity: &Activity,
    limits: ConnectionLimits,
    stopping: &mut watch::Receiver<bool>,
    stop: &AtomicBool,
) -> Verdict {
    let mut idle = pin!(activity.idle_for(limits.idle_timeout));
    let mut stalled = pin!(activity.write_stalled_for(limits.write_timeout));
    let mut head_checks = tokio::time::interval(HeadDeadlines::check_every(limits.header_read_timeout));
    head_checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut idle => return Verdict::Idle,
            () = &mut stalled => return Verdict::Stalled,
            _ = stopping.wait_for(|stopping| *stopping), if !stop.load(Ordering::Relaxed) => {
                stop.store(true, Ordering::Relaxed);
            }
            _ = head_checks.tick() => {}
        }
    }
}

/// What woke the connection's task, and the task.
struct Wakes {
    task: AtomicWaker,
    /// The watchdog has something to look at.
    watchdog: AtomicBool,
    /// [`IDLE`], [`POLLING`] or [`WOKEN`].
    connection: AtomicU8,
}

/// The watchdog's waker: notes that the watchdog has something to look at, and wakes the task.
struct WatchdogWake(Arc<Wakes>);

impl Wake for WatchdogWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.watchdog.store(true, Ordering::Release);
        self.0.task.wake();
    }
}

/// The connection's waker: while the connection is being polled, notes the wake (it is polled
/// again before its task returns); otherwise wakes the task.
struct ConnectionWake(Arc<Wakes>);

impl Wake for ConnectionWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let wakes = &self.0;
        match wakes.connection.compare_exchange(POLLING, WOKEN, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) | Err(WOKEN) => {}
            Err(_) => wakes.task.wake(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts the wakes of the connection's task.
    struct CountingWake(AtomicUsize);

    impl Wake for CountingWake {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn wakes() -> (Arc<Wakes>, Waker) {
        let wakes = Arc::new(Wakes {
            task: AtomicWaker::new(),
            watchdog: AtomicBool::new(false),
            connection: AtomicU8::new(IDLE),
        });
        let waker = Waker::from(Arc::new(ConnectionWake(wakes.clone())));
        (wakes, waker)
    }

    /// The connection's task, which counts its wakes.
    fn task() -> (Arc<CountingWake>, Waker) {
        let task = Arc::new(CountingWake(AtomicUsize::new(0)));
        let waker = Waker::from(task.clone());
        (task, waker)
    }

    #[test]
    fn a_connection_woken_during_its_poll_is_polled_again_at_once_not_through_the_scheduler() {
        let (wakes, waker) = wakes();
        let (task, task_waker) = task();
        let cx = Context::from_waker(&task_waker);
        wakes.task.register(&task_waker);

        // As hyper's body channel does: a wake during the poll, ready the next time.
        let mut polls = 0;
        let mut wakes_itself_once = pin!(poll_fn(|cx: &mut Context<'_>| {
            polls += 1;
            if polls == 1 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(())
        }));
        let polled = poll_connection(wakes_itself_once.as_mut(), &wakes, &waker, &cx);
        assert!(polled.is_ready());
        assert_eq!(task.0.load(Ordering::SeqCst), 0, "the task was not woken to poll it again");

        // A wake after the poll (bytes arrived) wakes the task.
        let mut waits = pin!(futures::future::pending::<()>());
        assert!(poll_connection(waits.as_mut(), &wakes, &waker, &cx).is_pending());
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
        waker.wake_by_ref();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "woken while not being polled");
    }

    #[test]
    fn a_connection_woken_by_every_poll_lets_the_worker_run_other_tasks() {
        let (wakes, waker) = wakes();
        let (task, task_waker) = task();
        let cx = Context::from_waker(&task_waker);
        let mut polls = 0;
        let mut always_woken = pin!(poll_fn(|cx: &mut Context<'_>| {
            polls += 1;
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        }));
        assert!(poll_connection(always_woken.as_mut(), &wakes, &waker, &cx).is_pending());
        assert_eq!(polls, POLLS_IN_A_ROW);
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "woken once, to be polled after the others");
        assert_eq!(wakes.connection.load(Ordering::SeqCst), IDLE);
    }
}
