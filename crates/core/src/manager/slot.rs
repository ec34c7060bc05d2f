//! The per-key state: the cached token, the refresh in flight, the backoff
//! after a failure, and a write the store has not taken yet.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use futures_util::future::{BoxFuture, Shared};
use tokio::task::AbortHandle;

use super::cached::{AccessToken, CachedToken};
use crate::error::{DeferredReason, Error, Result};
use crate::store::TokenKey;
use crate::token::Token;

pub(crate) type FlightFuture = Shared<BoxFuture<'static, Result<AccessToken>>>;
pub(crate) type SlotMap = papaya::HashMap<TokenKey, Arc<Slot>, foldhash::fast::RandomState>;

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

/// The per-key state: the cached token (read lock-free) and the refresh in
/// flight (a mutex taken only to start or join a refresh, never held across
/// an `.await`).
#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) current: ArcSwapOption<CachedToken>,
    pub(crate) flight: Mutex<Option<Flight>>,
    pub(crate) waiters: AtomicUsize,
    pub(crate) failures: AtomicU32,
    pub(crate) retry_at_ms: AtomicU64,
    pub(crate) last_error: Mutex<Option<Error>>,
    pub(crate) pending: Mutex<Option<PendingWrite>>,
}

impl Slot {
    pub(crate) fn flight(&self) -> MutexGuard<'_, Option<Flight>> {
        lock(&self.flight)
    }

    pub(crate) fn pending(&self) -> MutexGuard<'_, Option<PendingWrite>> {
        lock(&self.pending)
    }

    /// Clears the flight `id`, if it is still the one recorded.
    pub(crate) fn clear_flight(&self, id: u64) {
        let mut flight = self.flight();
        if flight.as_ref().is_some_and(|f| f.id == id) {
            *flight = None;
        }
    }

    pub(crate) fn in_backoff(&self, now_ms: u64) -> bool {
        now_ms < self.retry_at_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn has_pending(&self) -> bool {
        self.pending().is_some()
    }

    /// While the key backs off after a failed refresh: the error to answer
    /// with instead of trying again. A re-authorization is returned as it
    /// was; anything else as [`Error::RefreshDeferred`] with the time left.
    pub(crate) fn deferred(&self, now_ms: u64) -> Option<Error> {
        let retry_at = self.retry_at_ms.load(Ordering::Relaxed);
        if now_ms >= retry_at {
            return None;
        }
        let last = lock(&self.last_error).clone()?;
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
        self.failures.store(0, Ordering::Relaxed);
        self.retry_at_ms.store(0, Ordering::Relaxed);
        *lock(&self.last_error) = None;
    }
}
