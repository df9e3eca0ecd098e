//! Who a request comes from, and how many DataSync calls it may still cause.
//!
//! The identity is the key under which DataSync calls take turns (see
//! [`crate::datasync::fair`]) and rate limits are counted: the authenticated subject
//! (`key:<id>`, …), or the client's IP address for anonymous callers. The allowance
//! is shared by every operation and field of one HTTP request, so aliases and batches cannot
//! multiply what one request costs AWS.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::GatewayError;
use crate::model::AccountId;
use crate::request::{AccountScope, Identity, Role};

/// Who is asking, as a key: calls with the same key share a turn, and a rate limit.
pub type CallerKey = Arc<str>;

#[derive(Clone, Debug)]
pub struct Caller {
    key: CallerKey,
    role: Role,
    accounts: AccountScope,
    allowance: Arc<CallAllowance>,
    /// The gateway's own background work, which yields to clients under the call budget.
    background: bool,
    /// Unauthenticated (authentication is off): an operator by default, but nobody in particular.
    anonymous: bool,
}

/// How many DataSync calls one request may still cause (`--max-upstream-calls`), charged by
/// the DataSync client for every call it makes on the request's behalf.
#[derive(Debug)]
struct CallAllowance {
    limit: usize,
    spent: AtomicUsize,
}

impl Caller {
    /// `identity`, calling from `address`: known by its identity (an anonymous one by its
    /// address), allowed `upstream_calls` DataSync calls for this request.
    pub fn identified(identity: &Identity, address: IpAddr, upstream_calls: usize) -> Self {
        let anonymous = identity.is_anonymous();
        let key = if anonymous { address_key(address) } else { identity.subject.as_ref().into() };
        Caller {
            accounts: identity.accounts.clone(),
            anonymous,
            ..Self::with_key(key, identity.role, upstream_calls, false)
        }
    }

    /// The gateway's own background work (the discovery sync): bounded by its schedule, not by a budget.
    pub fn internal(task: &str) -> Self {
        Self::with_key(format!("internal:{task}").into(), Role::Operator, usize::MAX, true)
    }

    fn with_key(key: CallerKey, role: Role, limit: usize, background: bool) -> Self {
        let allowance = Arc::new(CallAllowance { limit, spent: AtomicUsize::new(0) });
        Caller { key, role, accounts: AccountScope::All, allowance, background, anonymous: false }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The accounts this caller may see.
    pub fn accounts(&self) -> &AccountScope {
        &self.accounts
    }

    /// `NOT_FOUND` for a resource of an account this caller may not see, worded as DataSync's
    /// own answer for one that does not exist, so that nothing says which it is.
    pub fn may_see(&self, account: AccountId, what: &dyn std::fmt::Display) -> Result<(), GatewayError> {
        if self.accounts.allows(account) {
            Ok(())
        } else {
            Err(GatewayError::NotFound(format!("DataSync has no {what}")))
        }
    }

    /// Whether nobody authenticated (authentication is off).
    pub fn is_anonymous(&self) -> bool {
        self.anonymous
    }

    pub fn is_background(&self) -> bool {
        self.background
    }

    pub fn key(&self) -> &CallerKey {
        &self.key
    }

    /// Takes one DataSync call from the request's allowance.
    pub fn spend_upstream_call(&self) -> Result<(), GatewayError> {
        let allowance = &self.allowance;
        let spent = allowance.spent.fetch_add(1, Ordering::Relaxed);
        if spent >= allowance.limit {
            allowance.spent.fetch_sub(1, Ordering::Relaxed);
            return Err(GatewayError::UpstreamCallLimit(allowance.limit));
        }
        Ok(())
    }
}

/// An anonymous caller's key, `ip:<address>`: the one this thread made last, when the address is
/// the same. A client keeps its address from request to request, and every request of an
/// anonymous caller needs its key; a replayed answer then costs no allocation for it, and the
/// key's reference count is written by this thread alone.
fn address_key(address: IpAddr) -> CallerKey {
    thread_local! {
        static LAST: RefCell<Option<(IpAddr, CallerKey)>> = const { RefCell::new(None) };
    }
    LAST.with_borrow_mut(|last| match last {
        Some((seen, key)) if *seen == address => key.clone(),
        _ => last.insert((address, written_key(address))).1.clone(),
    })
}

/// `ip:<address>`. IPv4 is written digit by digit: `format!` goes through `Ipv4Addr`'s
/// padding-aware `Display`, a visible share of a replayed answer's cost.
fn written_key(address: IpAddr) -> CallerKey {
    let IpAddr::V4(v4) = address else { return format!("ip:{address}").into() };
    let mut key = String::with_capacity("ip:255.255.255.255".len());
    key.push_str("ip:");
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            key.push('.');
        }
        if octet >= 100 {
            key.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            key.push(char::from(b'0' + octet / 10 % 10));
        }
        key.push(char::from(b'0' + octet % 10));
    }
    key.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anonymous_caller_is_keyed_by_its_address_as_written() {
        for address in
            ["0.0.0.0", "255.255.255.255", "10.0.100.9", "127.0.0.1", "192.168.20.1", "::1", "2001:db8::7"]
        {
            let address: IpAddr = address.parse().unwrap();
            assert_eq!(&*written_key(address), format!("ip:{address}"));
            assert_eq!(&*address_key(address), format!("ip:{address}"), "made, then remembered");
            assert_eq!(&*address_key(address), format!("ip:{address}"));
        }
    }
}
