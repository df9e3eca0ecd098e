//! The deadline hyper keeps for each request's head (`--header-read-timeout`), checked when the
//! connection is polled instead of armed in tokio's timer wheel.
//!
//! hyper asks its timer for a fresh sleep before every request head, and drops it once the head
//! is read. With tokio's timer that is, per request, an allocation, an entry locked into the
//! timer wheel and locked out again, and the time driver's extra work when a worker parks: on a
//! replayed answer, as much as the gateway's own work for the request. A [`Deadline`] is a
//! timestamp that is ready once it has passed; it registers no waker, so something else must
//! poll the connection while a head is awaited. Its watchdog does
//! ([`watchdog`](super::watchdog)): it ticks every [`CHECKS_PER_TIMEOUT`]th of the timeout, and
//! every tick polls hyper, which looks at the deadline. A head that never completes is cut off
//! within 1.25 timeouts.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};

/// How often, per timeout, a connection's task polls hyper while it waits.
const CHECKS_PER_TIMEOUT: u32 = 4;

/// hyper's timer for request heads: deadlines looked at when the connection is polled.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeadDeadlines;

impl HeadDeadlines {
    /// How often a connection's task must poll hyper for `timeout` to hold.
    pub fn check_every(timeout: Duration) -> Duration {
        (timeout / CHECKS_PER_TIMEOUT).max(Duration::from_millis(1))
    }
}

impl Timer for HeadDeadlines {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(Deadline(deadline))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Deadline>() {
            Some(deadline) => deadline.get_mut().0 = new_deadline,
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// Ready once its instant has passed. Pending registers no waker (see the module's comment).
#[derive(Debug)]
pub struct Deadline(Instant);

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Sleep for Deadline {}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[test]
    fn a_deadline_is_ready_once_passed_and_moves_when_reset() {
        let timer = HeadDeadlines;
        let mut passed = timer.sleep(Duration::ZERO);
        assert_eq!(passed.as_mut().now_or_never(), Some(()));

        let mut later = timer.sleep(Duration::from_secs(3600));
        assert_eq!(later.as_mut().now_or_never(), None);
        timer.reset(&mut later, Instant::now());
        assert_eq!(later.as_mut().now_or_never(), Some(()));
        assert_eq!(HeadDeadlines::check_every(Duration::from_secs(10)), Duration::from_millis(2500));
    }
}
