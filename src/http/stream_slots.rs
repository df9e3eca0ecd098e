//! Places for long-lived connections (WebSockets, event streams): so many in the process, so
//! many per client address and per authenticated caller, and a smaller pool for sockets that
//! have not introduced themselves yet (no `connection_init`), so that one address, one key, or a
//! crowd of silent sockets cannot take the places other clients need.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::errors::error_response;
use crate::error::ErrorCode;
use crate::request::Identity;

#[derive(Clone)]
pub struct StreamSlots {
    total: Arc<Semaphore>,
    max_total: usize,
    /// Sockets that have not sent `connection_init` yet: an eighth of the places.
    introducing: Arc<Semaphore>,
    open: Arc<Mutex<Open>>,
    max_per_address: usize,
    max_per_caller: usize,
}

/// Places held, by client address and by authenticated caller.
#[derive(Default)]
struct Open {
    per_address: HashMap<IpAddr, usize>,
    per_caller: HashMap<String, usize>,
}

/// One place, given back when dropped.
pub struct StreamSlot {
    _total: OwnedSemaphorePermit,
    introducing: Option<OwnedSemaphorePermit>,
    address: IpAddr,
    caller: Option<String>,
    open: Arc<Mutex<Open>>,
    max_per_caller: usize,
}

impl StreamSlot {
    /// The client introduced itself as `identity`: its place no longer counts among those
    /// waiting to, and counts for the caller it is, when authenticated (anonymous callers are
    /// told apart by address only). `Err` with the refusal when that caller has its share.
    pub fn introduced(&mut self, identity: &Identity) -> Result<(), String> {
        self.introducing = None;
        if identity.is_anonymous() || self.caller.is_some() {
            return Ok(());
        }
        let mut open = lock(&self.open);
        let held = open.per_caller.entry(identity.subject.to_string()).or_default();
        if *held >= self.max_per_caller {
            return Err(format!(
                "{} has {} WebSockets and event streams open already (--max-streams-per-caller); close one first",
                identity.subject, self.max_per_caller
            ));
        }
        *held += 1;
        self.caller = Some(identity.subject.to_string());
        Ok(())
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        release(&mut open.per_address, &self.address);
        if let Some(caller) = &self.caller {
            release(&mut open.per_caller, caller);
        }
    }
}

/// One place of `key`'s given back; the entry forgotten at none.
fn release<K: std::hash::Hash + Eq>(held: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = held.get_mut(key) {
        *count -= 1;
        if *count == 0 {
            held.remove(key);
        }
    }
}

impl StreamSlots {
    pub fn new(max_total: usize, max_per_address: usize, max_per_caller: usize) -> Self {
        StreamSlots {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            introducing: Arc::new(Semaphore::new((max_total / 8).max(1))),
            open: Arc::default(),
            max_per_address,
            max_per_caller,
        }
    }

    /// A place for a connection from `address`; `introduced`: its caller is known already (an
    /// event stream; a WebSocket, even one whose upgrade carried credentials, is introducing
    /// until its `connection_init`), then told with [`StreamSlot::introduced`]. Or the refusal
    /// to answer: 503 when the process or the introducing pool is full, 429 when the address
    /// has its share.
    pub fn take(
        &self,
        address: IpAddr,
        introduced: bool,
    ) -> Result<StreamSlot, Box<axum::response::Response>> {
        let refuse = |status: StatusCode, message: String| {
            Box::new(error_response(status, &message, ErrorCode::ConnectionLimit))
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
        let mut open = lock(&self.open);
        let held = open.per_address.entry(address).or_default();
        if *held >= self.max_per_address {
            return Err(refuse(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "this address has {} WebSockets and event streams open already \
                     (--max-streams-per-address); close one first",
                    self.max_per_address
                ),
            ));
        }
        *held += 1;
        drop(open);
        Ok(StreamSlot {
            _total: total,
            introducing,
            address,
            caller: None,
            open: self.open.clone(),
            max_per_caller: self.max_per_caller,
        })
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
        let slots = StreamSlots::new(16, 3, 100);
        let (one, two): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let held: Vec<StreamSlot> = (0..3).map(|_| slots.take(one, true).ok().unwrap()).collect();
        assert_eq!(slots.take(one, true).err().unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
        // Two places wait for an introduction (16 / 8): a third silent socket is refused.
        let mut waiting = vec![slots.take(two, false).ok().unwrap(), slots.take(two, false).ok().unwrap()];
        assert_eq!(slots.take(two, false).err().unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
        waiting[0].introduced(&Identity::anonymous()).unwrap();
        let third = slots.take(two, false).ok().unwrap();
        assert_eq!(slots.open(), 6);
        drop((held, waiting, third));
        assert_eq!(slots.open(), 0);
        assert!(slots.take(one, true).is_ok(), "places come back");
    }

    #[test]
    fn an_authenticated_caller_gets_its_share_from_any_address() {
        let slots = StreamSlots::new(64, 10, 2);
        let key = Identity {
            subject: "key:0123456789ab".into(),
            role: crate::request::Role::Reader,
            accounts: Default::default(),
        };
        let mut held = Vec::new();
        for last in 1..=2 {
            let mut slot = slots.take(IpAddr::from([192, 0, 2, last]), true).ok().unwrap();
            slot.introduced(&key).unwrap();
            held.push(slot);
        }
        let mut third = slots.take(IpAddr::from([192, 0, 2, 3]), true).ok().unwrap();
        assert!(third.introduced(&key).unwrap_err().contains("--max-streams-per-caller"));
        drop(held);
        let mut again = slots.take(IpAddr::from([192, 0, 2, 4]), true).ok().unwrap();
        assert!(again.introduced(&key).is_ok(), "places come back");
    }
}
