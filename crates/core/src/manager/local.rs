//! A per-thread cache of slots, in front of the shared map: the hot path
//! of a cached read.
//!
//! The shared map (`papaya`) is lock-free, but a lookup there enters its
//! reclamation scheme and probes a table every time. A thread that reads
//! the same keys again (the common case: one key per tenant or per
//! upstream API, read on every request) finds the key's slot here instead:
//! a small two-way set-associative array, indexed by the hash the
//! [`TokenKey`] carries, written only by its own thread. A hit writes
//! nothing shared, so threads reading one key do not contend.
//!
//! An entry is used only while its slot is still in the map: every removal
//! marks the slot ([`Slot::mark_removed`]) after taking it out, and a hit
//! checks the mark, so a removed slot is never served from here (a lookup
//! in the map replaces the entry). An entry holds its manager's id (never
//! reused), so managers never see each other's slots. Entries keep their
//! slot alive until replaced or until the thread exits.

use std::cell::RefCell;

use arc_swap::Guard;

use super::cached::CachedToken;
use super::slot::SlotRef;
use crate::store::TokenKey;

/// Sets of two entries.
const SETS: usize = 128;
/// Recent misses: a key is remembered on its second miss, so keys read
/// once in a while (a million tenants read at random) do not pay for
/// cloning into, and evicting from, a cache they would not hit.
const SEEN: usize = 1024;

struct Entry {
    manager: u64,
    key: TokenKey,
    slot: SlotRef,
}

struct Local {
    sets: [[Option<Entry>; 2]; SETS],
    seen: [u32; SEEN],
}

thread_local! {
    static LOCAL: RefCell<Option<Box<Local>>> = const { RefCell::new(None) };
}

fn set_of(key: &TokenKey) -> usize {
    // The map uses the hash's low bits; any bits do here.
    (key.hash_value() >> 32) as usize % SETS
}

fn matches(entry: &Option<Entry>, manager: u64, key: &TokenKey) -> bool {
    entry
        .as_ref()
        .is_some_and(|e| e.manager == manager && e.key == *key && !e.slot.is_removed())
}

/// The current token of `key`'s slot in `manager`, if this thread has the
/// slot cached (and it is still in the map). `None` also when the cache is
/// busy (a re-entrant call) or gone (thread exit): then look in the map.
pub(super) fn load(manager: u64, key: &TokenKey) -> Option<Guard<Option<CachedToken>>> {
    LOCAL
        .try_with(|local| {
            let local = local.try_borrow().ok()?;
            let set = &local.as_ref()?.sets[set_of(key)];
            let entry = set.iter().find(|e| matches(e, manager, key))?;
            entry.as_ref().map(|e| e.slot.current.load())
        })
        .ok()
        .flatten()
}

/// Remembers `slot` as `key`'s in `manager` (found in the map), evicting
/// the set's older entry, if `key` missed recently too.
pub(super) fn remember(manager: u64, key: &TokenKey, slot: &SlotRef) {
    let _evicted = LOCAL.try_with(|local| {
        let Ok(mut local) = local.try_borrow_mut() else {
            return None;
        };
        let local = local.get_or_insert_with(|| {
            Box::new(Local {
                sets: std::array::from_fn(|_| [None, None]),
                seen: [0; SEEN],
            })
        });
        let hash = key.hash_value();
        let seen = &mut local.seen[(hash >> 12) as usize % SEEN];
        // A tag that is never 0 (the empty mark).
        let tag = (hash as u32) | 1;
        let set = &mut local.sets[set_of(key)];
        if let Some(entry) = set
            .iter_mut()
            .flatten()
            .find(|e| e.manager == manager && e.key == *key)
        {
            return Some(std::mem::replace(&mut entry.slot, slot.clone()));
        }
        if *seen != tag {
            *seen = tag;
            return None;
        }
        set.swap(0, 1);
        let evicted = set[0].replace(Entry {
            manager,
            key: key.clone(),
            slot: slot.clone(),
        });
        evicted.map(|e| e.slot)
    });
    // Dropped here, outside the borrow: the last reference to a slot may
    // go with it.
}

/// A fresh, never reused manager id.
pub(super) fn next_manager_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
