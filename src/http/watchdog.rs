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

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
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
    let woken = Arc::new(Woken { flag: AtomicBool::new(true), task: AtomicWaker::new() });
    let watchdog_waker = Waker::from(woken.clone());
    poll_fn(|cx| {
        woken.task.register(cx.waker());
        if woken.flag.swap(false, Ordering::AcqRel) {
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
        connection.as_mut().poll(cx).map(|result| {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        })
    })
    .await
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

/// The watchdog's waker: notes that the watchdog has something to look at, and wakes the
/// connection's task.
struct Woken {
    flag: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Ordering::Release);
        self.task.wake();
    }
}
