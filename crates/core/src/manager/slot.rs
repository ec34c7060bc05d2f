//! The per-key state: the cached token, the refresh in flight, the backoff
//! after a failure, and a write the store has not taken yet.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapAny;
use futures_util::future::{BoxFuture, Shared};
use tokio::task::AbortHandle;

use super::cached::{AccessToken, CachedToken};
use crate::error::{DeferredReason, Error, Result};
use crate::store::{KeyHashBuilder, TokenKey};
use crate::token::Token;

pub(crate) type FlightFuture = Shared<BoxFuture<'static, Result<AccessToken>>>;
/// A shared slot (no weak count: one word less per key than `std`'s `Arc`).
pub(crate) type SlotRef = triomphe::Arc<Slot>;
/// Keys hash by the hash they carry ([`KeyHashBuilder`]).
pub(crate) type SlotMap = papaya::HashMap<TokenKey, SlotRef, KeyHashBuilder>;

/// The refresh running for a key.
pub(crate) struct Flight {
    pub(crate) id: u64,
    pub(crate) future: FlightFuture,
    pub(crate) abort: AbortHandle,
}

/// A refreshed token the store has not taken yet. The manager holds the
/// key's lease for it and retries the write.
pub(crate) struct PendingWrite {
    pub(crate) id: u64,
    /// The token the provider issued.
    pub(crate) token: Token,
    /// The stored version the write expects.
    pub(crate) expected: Option<u64>,
    /// The access tokens of this chain of refreshes that the store may
    /// hold: the stored token it started from and every token whose write
    /// was attempted (a write whose answer was lost may have landed). A
    /// stored row holding one of them is ours, not a new sign-in.
    pub(crate) ours: Vec<String>,
    pub(crate) since: Instant,
    pub(crate) attempts: u32,
    pub(crate) writer: Option<AbortHandle>,
}

/// Locks `mutex`, ignoring poisoning (nothing here is left half-updated).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// The per-key state. The hot path reads `current` (lock-free) and, for a
/// token that is due, `retry_at_ms`; everything else (a refresh in flight,
/// the last failure, a pending write) is rare and lives boxed in `cold`,
/// which is empty (no allocation) for a key at rest: a million cached
/// tokens cost a million small slots.
#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) current: ArcSwapAny<Option<CachedToken>>,
    pub(crate) retry_at_ms: AtomicU64,
    cold: Mutex<Option<Box<Cold>>>,
    /// Set once the slot has left the map: the per-thread read caches
    /// (`local`) never serve it again.
    removed: AtomicBool,
}

/// A key's rare state (see [`Slot`]). Taken only to start, join or end a
/// refresh, or to record a failure or a pending write; never held across
/// an `.await`.
#[derive(Default)]
pub(crate) struct Cold {
    pub(crate) flight: Option<Flight>,
    pub(crate) waiters: usize,
    pub(crate) failures: u32,
    pub(crate) last_error: Option<Error>,
    pub(crate) pending: Option<PendingWrite>,
}

impl Cold {
    fn is_empty(&self) -> bool {
        self.flight.is_none()
            && self.failures == 0
            && self.last_error.is_none()
            && self.pending.is_none()
    }
}

impl Slot {
    /// Marks the slot as out of the map (after it was removed).
    pub(crate) fn mark_removed(&self) {
        self.removed.store(true, Ordering::Release);
    }

    /// True once the slot has left the map.
    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// Runs `f` on the key's rare state (made on demand, dropped again
    /// when it is back to nothing).
    pub(crate) fn with_cold<R>(&self, f: impl FnOnce(&mut Cold) -> R) -> R {
        let mut cold = lock(&self.cold);
        let state = cold.get_or_insert_with(Box::default);
        let result = f(state);
        if state.is_empty() {
            *cold = None;
        }
        result
    }

    /// Reads the rare state without making it.
    fn peek<R>(&self, f: impl FnOnce(&Cold) -> R, otherwise: R) -> R {
        lock(&self.cold).as_deref().map_or(otherwise, f)
    }

    pub(crate) fn has_flight(&self) -> bool {
        self.peek(|c| c.flight.is_some(), false)
    }

    pub(crate) fn has_pending(&self) -> bool {
        self.peek(|c| c.pending.is_some(), false)
    }

    /// How many callers joined the running refresh besides the first.
    pub(crate) fn waiters(&self) -> usize {
        self.peek(|c| c.waiters, 0)
    }

    /// A clone of the pending write's token, if any.
    pub(crate) fn pending_token(&self) -> Option<Token> {
        self.peek(|c| c.pending.as_ref().map(|p| p.token.clone()), None)
    }

    /// Clears the flight `id`, if it is still the one recorded.
    pub(crate) fn clear_flight(&self, id: u64) {
        self.with_cold(|cold| {
            if cold.flight.as_ref().is_some_and(|f| f.id == id) {
                cold.flight = None;
            }
        });
    }

    pub(crate) fn in_backoff(&self, now_ms: u64) -> bool {
        now_ms < self.retry_at_ms.load(Ordering::Relaxed)
    }

    /// While the key backs off after a failed refresh: the error to answer
    /// with instead of trying again. A re-authorization is returned as it
    /// was; anything else as [`Error::RefreshDeferred`] with the time left.
    pub(crate) fn deferred(&self, now_ms: u64) -> Option<Error> {
        if !self.in_backoff(now_ms) {
            return None;
        }
        let last = self.peek(|c| c.last_error.clone(), None)?;
        self.deferred_with(last, now_ms)
    }

    /// [`Slot::deferred`] with the last error already read (under the lock).
    pub(crate) fn deferred_with(&self, last: Error, now_ms: u64) -> Option<Error> {
        let retry_at = self.retry_at_ms.load(Ordering::Relaxed);
        if now_ms >= retry_at {
            return None;
        }
        if last.requires_reauthorization() {
            return Some(last);
        }
        let retry_after = Some(Duration::from_millis(retry_at - now_ms));
        let reason = match last {
            Error::RefreshDeferred { reason, .. } => reason,
            other => DeferredReason::Backoff {
                last: Box::new(other),
            },
        };
        Some(Error::RefreshDeferred {
            reason,
            retry_after,
        })
    }

    /// Forgets the backoff (after a success).
    pub(crate) fn clear_backoff(&self) {
        if self.retry_at_ms.swap(0, Ordering::Relaxed) != 0 || self.peek(|c| c.failures > 0, false)
        {
            self.with_cold(|cold| {
                cold.failures = 0;
                cold.last_error = None;
            });
        }
    }
}
