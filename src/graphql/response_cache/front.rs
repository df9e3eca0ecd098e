//! The answers replayed lately, ahead of moka: a hit here costs one atomic load and a comparison
//! of the request's bytes. moka's own read is a lookup in its table, a note of the read in its
//! log and, now and then, the log applied to its policy under a lock: on a replay that was as
//! much time as the rest of the handler's own work (BENCHMARKS.md, issue #23).
//!
//! A fixed table, one slot per fingerprint's bucket, each an `Arc` of an answer moka holds, in a
//! cell that is read without a lock and without writing a shared line (`arc_swap`). An answer
//! takes its slot when moka answers a hit for it, so only answers asked for again take one, and
//! leaves it when moka lets it go (its eviction listener), when a replay finds it out of date,
//! or when another answer takes the slot. Whether an answer may be replayed does not rest on
//! this table: every answer read from it is checked exactly as one read from moka.
//!
//! What moka learns: one hit in [`SAMPLE_EVERY`] read here is also read from moka, so that its
//! policy still sees which answers are in demand and keeps them. That read also catches an
//! answer moka let go while a hit was putting it in its slot: it leaves the slot then. Until it
//! does, [`MAX_ANSWER_BYTES`] bounds what such a leftover holds beyond the cache's capacity.

use std::cell::Cell;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::{ResponseKey, StoredResponse};

/// Slots in the table: a hot set, not the whole cache. Enough that a dashboard's few hundred
/// answers seldom share a slot (200 answers: about 2 % of them), since two answers that do
/// take it from each other on every hit and are read from moka instead. 64 KiB of pointers.
pub const SLOTS: usize = 8 * 1024;
/// Larger answers are replayed from moka alone.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// One hit in this many, per thread, is also read from moka.
pub const SAMPLE_EVERY: u32 = 64;

pub struct Front {
    slots: Box<[ArcSwapOption<StoredResponse>]>,
}

impl Front {
    pub fn new(slots: usize) -> Self {
        Front { slots: (0..slots.max(1)).map(|_| ArcSwapOption::empty()).collect() }
    }

    /// The answer for `key` if its slot holds it.
    pub fn get(&self, fingerprint: u64, key: &ResponseKey) -> Option<Arc<StoredResponse>> {
        let slot = self.slot(fingerprint).load();
        slot.as_ref().filter(|stored| *stored.key == *key).map(Arc::clone)
    }

    /// Gives `stored` its slot, moka having just answered a hit for it.
    pub fn put(&self, stored: &Arc<StoredResponse>) {
        if stored.answer.body.len() > MAX_ANSWER_BYTES {
            return;
        }
        let slot = self.slot(stored.fingerprint);
        if !slot.load().as_ref().is_some_and(|held| Arc::ptr_eq(held, stored)) {
            slot.store(Some(Arc::clone(stored)));
        }
    }

    /// Empties `stored`'s slot if it holds that very answer (not another one since).
    pub fn remove(&self, stored: &Arc<StoredResponse>) {
        self.slot(stored.fingerprint).compare_and_swap(Arc::as_ptr(stored), None);
    }

    fn slot(&self, fingerprint: u64) -> &ArcSwapOption<StoredResponse> {
        &self.slots[(fingerprint >> 32) as usize % self.slots.len()]
    }
}

/// Whether this hit is one to read from moka too.
pub fn sampled() -> bool {
    thread_local! {
        static HITS: Cell<u32> = const { Cell::new(0) };
    }
    HITS.with(|hits| {
        let count = hits.get().wrapping_add(1);
        hits.set(count);
        count % SAMPLE_EVERY == 0
    })
}
