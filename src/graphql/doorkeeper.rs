//! Which requests came more than once lately: the gate in front of a cache that stores an
//! entry only from its second request on. A stream of one-off requests (a client that writes
//! each query anew, an alias changed each time) would otherwise pay for an insertion each, and
//! push the entries that do repeat out of the cache.
//!
//! One slot per fingerprint's bucket, overwritten freely: a collision costs one more miss, or
//! stores an entry at its first request. Slots are read and written without a lock or a
//! compare-and-swap; two requests racing on a slot at most blur one count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The low bit of a slot: its fingerprint was counted twice.
const REPEATED: u64 = 1;

#[derive(Clone)]
pub struct Doorkeeper {
    slots: Arc<[AtomicU64]>,
}

impl Doorkeeper {
    pub fn new(slots: usize) -> Self {
        Doorkeeper { slots: (0..slots.max(1)).map(|_| AtomicU64::new(0)).collect() }
    }

    /// Counts a request for `fingerprint`; whether one came before it (lately).
    pub fn count(&self, fingerprint: u64) -> bool {
        let (slot, tag) = self.slot(fingerprint);
        let before = slot.load(Ordering::Relaxed);
        let seen = before & !REPEATED == tag;
        if before != tag | REPEATED {
            slot.store(if seen { tag | REPEATED } else { tag }, Ordering::Relaxed);
        }
        seen
    }

    /// Whether `fingerprint` was counted at least twice (lately), without counting it.
    pub fn repeated(&self, fingerprint: u64) -> bool {
        let (slot, tag) = self.slot(fingerprint);
        slot.load(Ordering::Relaxed) == tag | REPEATED
    }

    /// The slot for `fingerprint`, and what it holds for it: the fingerprint with its low bit
    /// cleared for the count, and never 0 (an empty slot).
    fn slot(&self, fingerprint: u64) -> (&AtomicU64, u64) {
        let tag = (fingerprint | 2) & !REPEATED;
        let index = (fingerprint >> 32) as usize % self.slots.len();
        (&self.slots[index], tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_first_and_second_requests_apart_and_a_colliding_one_starts_over() {
        let doorkeeper = Doorkeeper::new(4);
        let (a, b) = (0x0000_0001_0000_0010, 0x0000_0005_0000_0020); // the same slot of 4
        assert!(!doorkeeper.repeated(a));
        assert!(!doorkeeper.count(a), "first");
        assert!(!doorkeeper.repeated(a));
        assert!(doorkeeper.count(a), "second");
        assert!(doorkeeper.repeated(a));
        assert!(doorkeeper.count(a) && doorkeeper.repeated(a), "third: still repeated");
        assert!(!doorkeeper.count(b), "another fingerprint in the slot");
        assert!(!doorkeeper.repeated(a), "overwritten");
        assert!(!doorkeeper.count(a));
    }
}
