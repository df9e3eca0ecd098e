//! Places for long-lived connections (WebSockets, event streams): so many in the process, so
//! many per client address, and a smaller pool for sockets that have not introduced themselves
//! yet (no `connection_init`), so that one address, or a crowd of silent sockets, cannot take the
//! places other clients need.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::errors::error_response;
use crate::error::request_codes::CONNECTION_LIMIT;

#[derive(Clone)]
pub struct StreamSlots {
    total: Arc<Semaphore>,
    max_total: usize,
    /// Sockets that have not sent `connection_init` yet: an eighth of the places.
    introducing: Arc<Semaphore>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_address: usize,
}

/// One place, given back when dropped.
pub struct StreamSlot {
    _total: OwnedSemaphorePermit,
    introducing: Option<OwnedSemaphorePermit>,
    address: IpAddr,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl StreamSlot {
    /// The client introduced itself: its place no longer counts among those waiting to.
    pub fn introduced(&mut self) {
        self.introducing = None;
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut per_address = lock(&self.per_address);
        if let Some(open) = per_address.get_mut(&self.address) {
            *open -= 1;
            if *open == 0 {
                per_address.remove(&self.address);
            }
        }
    }
}

impl StreamSlots {
    pub fn new(max_total: usize, max_per_address: usize) -> Self {
        StreamSlots {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            introducing: Arc::new(Semaphore::new((max_total / 8).max(1))),
            per_address: Arc::default(),
            max_per_address,
        }
    }

    /// A place for a connection from `address`; `introduced`: its caller is known already (an
    /// event stream, or a WebSocket whose upgrade carried credentials is still counted as
    /// introducing until its `connection_init`). Or the refusal to answer: 503 when the process
    /// or the introducing pool is full, 429 when the address has its share.
    pub fn take(
        &self,
        address: IpAddr,
        introduced: bool,
    ) -> Result<StreamSlot, Box<axum::response::Response>> {
        let refuse = |status: StatusCode, message: String| {
            Box::new(error_response(status, &message, CONNECTION_LIMIT))
        };
        let introducing = if introduced {
            None
        } else {
            let permit = self.introducing.clone().try_acquire_owned().map_err(|_| {
                refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "{} WebSockets are waiting to send connection_init already; retry later",
                        (self.max_total / 8).max(1)
                    ),
                )
            })?;
            Some(permit)
        };
        let total = self.total.clone().try_acquire_owned().map_err(|_| {
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "this gateway serves {} WebSockets and event streams already \
                     (--max-streaming-connections); retry later or elsewhere",
                    self.max_total
                ),
            )
        })?;
        let mut per_address = lock(&self.per_address);
        let open = per_address.entry(address).or_default();
        if *open >= self.max_per_address {
            return Err(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "this address has {} WebSockets and event streams open already \
                     (--max-streams-per-address); close one first",
                    self.max_per_address
                ),
            ));
        }
        *open += 1;
        drop(per_address);
        Ok(StreamSlot { _total: total, introducing, address, per_address: self.per_address.clone() })
    }

    /// WebSockets and event streams open now.
    pub fn open(&self) -> usize {
        self.max_total - self.total.available_permits()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_share_and_silent_sockets_a_pool_of_their_own() {
        let slots = StreamSlots::new(16, 3);
        let (one, two): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let held: Vec<StreamSlot> = (0..3).map(|_| slots.take(one, true).ok().unwrap()).collect();
        assert_eq!(slots.take(one, true).err().unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
        // Two places wait for an introduction (16 / 8): a third silent socket is refused.
        let mut waiting = vec![slots.take(two, false).ok().unwrap(), slots.take(two, false).ok().unwrap()];
        assert_eq!(slots.take(two, false).err().unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
        waiting[0].introduced();
        let third = slots.take(two, false).ok().unwrap();
        assert_eq!(slots.open(), 6);
        drop((held, waiting, third));
        assert_eq!(slots.open(), 0);
        assert!(slots.take(one, true).is_ok(), "places come back");
    }
}
