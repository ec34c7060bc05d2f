//! The token manager: valid access tokens for many keys, fast; one refresh
//! per key at a time; rotated tokens persisted before anyone sees them, and
//! never lost to a store fault.
//!
//! * **Hot path.** [`TokenManager::get`] on a cached, fresh token finds
//!   the key's slot in a small per-thread cache (`local`; else in the
//!   lock-free `papaya` map), loads the token with `arc-swap` and reads
//!   the coarse clock: no mutex, no allocation, nothing shared written.
//! * **Refresh ahead.** A token is refreshed [`RefreshTiming::skew`] before
//!   expiry (capped at a fraction of its lifetime), earlier by a random
//!   jitter. While the old token is still valid, callers keep getting it and
//!   the refresh runs in the background.
//! * **Single flight.** One refresh per key at a time, on its own task: all
//!   concurrent callers await the same result, and cancelling any of them
//!   (the first included) cancels nothing. Different keys never share a
//!   flight. A panic in a refresh clears the flight and is reported as
//!   [`Error::Internal`].
//! * **One sender per refresh token.** The refresh takes the store's lease
//!   (exclusive across processes on a shared store), keeps extending it while
//!   the request or a pending write is in flight, and a lease that lapsed
//!   while its holder was refreshing blocks everybody else for the in-doubt
//!   grace (see [`LeaseRequest`](crate::store::LeaseRequest)).
//! * **Never lose a rotated token.** The new token is written with
//!   compare-and-swap before anyone sees it. If the write fails, the token is
//!   kept in memory and served, the write is retried with backoff, and the
//!   application is told ([`TokenEvent::StoreWriteFailed`]). A rejected
//!   refresh token is reported only after a final re-read shows no newer
//!   token from another instance.
//! * **Paced failures.** After a failed refresh a key backs off: `get`
//!   answers at once with [`Error::RefreshDeferred`] (carrying the last
//!   error and when to retry) instead of sending another request.
//! * **Bounded memory.** A key that has no token leaves no slot behind
//!   (keys of re-acquiring providers keep one while they back off after a
//!   failed first acquisition; the background refresher drops it after).

mod builder;
mod cached;
mod events;
mod flight;
mod guarded_store;
mod lifecycle;
mod local;
mod persist;
mod refresher;
mod renewal;
mod slot;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_faults;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::error::{DeferredReason, Error, Result};
use crate::store::{CasOutcome, TokenKey, TokenStore};
use crate::token::{ProviderId, Token};

pub use builder::TokenManagerBuilder;
pub use cached::{AccessToken, RefreshTiming};
pub use events::{EventHook, TokenEvent};
pub use lifecycle::{ShutdownReport, UnpersistedToken, UnreadableToken, WarmReport};

use events::EventBus;
use slot::SlotMap;

pub(crate) struct Inner {
    /// Never reused: names this manager in the per-thread caches (`local`).
    id: u64,
    slots: SlotMap,
    store: Arc<dyn TokenStore>,
    renewers: HashMap<ProviderId, crate::provider::Renewal>,
    clock: Arc<dyn Clock>,
    timing: RefreshTiming,
    lease_ttl: Duration,
    lease_poll: Duration,
    in_doubt_grace: Duration,
    backoff: (Duration, Duration),
    holder: String,
    events: EventBus,
    cache_hits: metrics::Counter,
    /// Flights and pending writers, for [`TokenManager::shutdown`].
    tasks: TaskTracker,
    closing: AtomicBool,
    pending_writes: AtomicUsize,
    /// Failed first acquisitions that kept a tokenless slot (re-acquiring
    /// providers) since the last sweep of such slots.
    tokenless_kept: AtomicUsize,
    /// The background refresher's permits, when it runs: a refresh ahead
    /// of expiry that a read starts takes one too, so that reads and the
    /// refresher together stay within its `max_concurrent`.
    background_permits: std::sync::OnceLock<Arc<tokio::sync::Semaphore>>,
}

/// The future of [`TokenManager::get`]: a valid access token for a key.
/// Cancelling it (dropping it) cancels no refresh.
#[must_use = "a future does nothing unless awaited"]
pub struct Get<'a> {
    manager: &'a TokenManager,
    key: &'a TokenKey,
    /// The refresh this call waits for, once it has looked.
    flight: Option<slot::FlightFuture>,
}

impl fmt::Debug for Get<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get")
            .field("key", self.key)
            .field("waiting", &self.flight.is_some())
            .finish()
    }
}

impl std::future::Future for Get<'_> {
    type Output = Result<AccessToken>;

    // Inlined into the caller's future: the cached path then returns the
    // token in place, without a call or a copy of the whole `Result`.
    #[inline(always)]
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        if this.flight.is_none() {
            if let Some(token) = this.manager.fresh_local(this.key, this.manager.now_ms()) {
                return std::task::Poll::Ready(Ok(token));
            }
        }
        this.poll_slow(cx)
    }
}

impl Get<'_> {
    /// Past the per-thread cache: the map, then the refresh to wait for.
    #[cold]
    #[inline(never)]
    fn poll_slow(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<AccessToken>> {
        let flight = match &mut self.flight {
            Some(flight) => flight,
            None => match self.manager.get_slow(self.key, self.manager.now_ms()) {
                Ok(answer) => return std::task::Poll::Ready(answer),
                Err(flight) => self.flight.insert(flight),
            },
        };
        std::future::Future::poll(std::pin::Pin::new(flight), cx)
    }
}

/// What [`TokenManager::disconnect`] did at the provider.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Revocation {
    /// The provider revoked the grant.
    Revoked,
    /// The provider has no revocation endpoint: the token was only removed.
    NotSupported,
    /// Nothing was stored for the key.
    NothingStored,
    /// The revocation request failed (the token was removed all the same).
    Failed(Error),
}

/// Hands out valid access tokens for many keys. Cheap to clone (shared state).
///
/// ```no_run
/// # async fn run(hike: std::sync::Arc<oauth2_adapters::StandardProvider>, token: oauth2_adapters::Token) -> oauth2_adapters::Result<()> {
/// use std::time::Duration;
/// use oauth2_adapters::manager::TokenManager;
/// use oauth2_adapters::{Provider, TokenKey};
///
/// let manager = TokenManager::builder()
///     .provider(hike.clone())
///     .build()?;
/// let key = TokenKey::new(hike.id(), "store-42");
/// manager.insert(key.clone(), token).await?; // after the sign-in
/// let access = manager.get(&key).await?;      // fresh, refreshed when due
/// let header = access.expose_authorization_header();
/// # let _ = header;
/// // Before the process exits: finish refreshes, land pending writes.
/// let report = manager.shutdown(Duration::from_secs(60)).await;
/// assert!(report.is_clean());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("keys", &self.inner.slots.len())
            .field("store", &self.inner.store)
            .field(
                "renewers",
                &self.inner.renewers.values().collect::<Vec<_>>(),
            )
            .field("timing", &self.inner.timing)
            .field("pending_writes", &self.pending_writes())
            .finish()
    }
}

impl TokenManager {
    /// Starts configuring a manager.
    pub fn builder() -> TokenManagerBuilder {
        TokenManagerBuilder::new()
    }

    /// A valid access token for `key`: the cached one while it is fresh;
    /// the cached one while a background refresh runs once it is due; and
    /// otherwise (expired, or not yet loaded) the result of the one refresh
    /// in flight for the key.
    ///
    /// When the key's last refresh failed and it is backing off, answers at
    /// once, without a request: [`Error::ReauthorizationRequired`] as it
    /// was, or [`Error::RefreshDeferred`] with the last error and its
    /// `retry_after`.
    ///
    /// The future does nothing until polled; a cached token is its answer
    /// on the first poll, without allocating.
    #[inline]
    pub fn get<'a>(&'a self, key: &'a TokenKey) -> Get<'a> {
        Get {
            manager: self,
            key,
            flight: None,
        }
    }

    /// [`TokenManager::get`] past the per-thread cache: one map lookup for
    /// both the cached token and the slot a refresh needs. The answer, or
    /// the refresh in flight to wait for.
    fn get_slow(
        &self,
        key: &TokenKey,
        now: u64,
    ) -> std::result::Result<Result<AccessToken>, slot::FlightFuture> {
        let slot = match self.lookup(key) {
            Some(slot) => {
                if let Some(token) = self.cached_in(key, &slot, now) {
                    return Ok(Ok(token));
                }
                slot
            }
            // After shutdown nothing starts a refresh: no slot to leave behind.
            None if self.inner.closing.load(Ordering::Acquire) => {
                return Ok(Err(Error::RefreshDeferred {
                    reason: DeferredReason::ShuttingDown,
                    retry_after: None,
                }))
            }
            None => self.inner.slot(key),
        };
        if let Some(error) = slot.deferred(now) {
            return Ok(Err(error));
        }
        Err(self.inner.join_flight(key, &slot, None, true))
    }

    /// The cached token for `key` if it is still valid, without waiting:
    /// the hot path of [`TokenManager::get`] (a lookup in this thread's
    /// cache of slots, else in the lock-free map, and an `arc-swap` load;
    /// no shared counter touched, no allocation). Starts a background
    /// refresh when one is due (inside a Tokio runtime).
    #[inline(always)]
    pub fn try_get(&self, key: &TokenKey) -> Option<AccessToken> {
        let now = self.now_ms();
        if let Some(token) = self.fresh_local(key, now) {
            return Some(token);
        }
        self.try_get_slow(key, now)
    }

    /// [`TokenManager::try_get`] past the per-thread cache.
    #[cold]
    #[inline(never)]
    fn try_get_slow(&self, key: &TokenKey, now: u64) -> Option<AccessToken> {
        let slot = self.lookup(key)?;
        self.cached_in(key, &slot, now)
    }

    /// The fresh token of `key` from this thread's cache of slots.
    #[inline]
    fn fresh_local(&self, key: &TokenKey, now: u64) -> Option<AccessToken> {
        let cached = local::load(self.inner.id, key)?;
        if !cached.as_ref()?.is_fresh(now) {
            return None;
        }
        self.hit(key);
        Some(AccessToken::guarded(cached))
    }

    /// The current token of `key`'s slot in the map: the header read past
    /// the per-thread cache.
    #[cold]
    #[inline(never)]
    fn load_slot(&self, key: &TokenKey) -> Option<arc_swap::Guard<Option<cached::CachedToken>>> {
        Some(self.lookup(key)?.current.load())
    }

    /// The slot of `key` in the map (remembered in this thread's cache).
    fn lookup(&self, key: &TokenKey) -> Option<slot::SlotRef> {
        let slot = self.inner.slots.pin().get(key)?.clone();
        local::remember(self.inner.id, key, &slot);
        Some(slot)
    }

    /// The valid token cached in `slot`; starts a background refresh when
    /// it is due.
    fn cached_in(&self, key: &TokenKey, slot: &slot::SlotRef, now: u64) -> Option<AccessToken> {
        let cached = slot.current.load();
        let (fresh, valid) = match cached.as_ref() {
            Some(token) => (token.is_fresh(now), token.is_valid(now)),
            None => return None,
        };
        if fresh {
            self.hit(key);
            return Some(AccessToken::guarded(cached));
        }
        if !valid {
            return None;
        }
        if !slot.in_backoff(now) && !slot.has_flight() {
            self.inner.refresh_ahead(key, slot);
        }
        Some(AccessToken::guarded(cached))
    }

    /// Counts a read served from the cache.
    #[inline]
    fn hit(&self, key: &TokenKey) {
        self.inner.cache_hits.increment(1);
        tracing::trace!(token.key = %key, "cache hit");
    }

    /// Runs `f` with the cached `Authorization` header value of `key` (e.g.
    /// `Bearer eyJ…`) if the token is fresh, without waiting and without
    /// touching any shared counter. Returns `None` when the token is not
    /// cached or is due for refresh (then use [`TokenManager::get`]).
    #[inline(always)]
    pub fn read_authorization_header<R>(
        &self,
        key: &TokenKey,
        f: impl FnOnce(&str) -> R,
    ) -> Option<R> {
        let now = self.now_ms();
        let cached = match local::load(self.inner.id, key) {
            Some(cached) if cached.as_ref().is_some_and(|c| c.is_fresh(now)) => cached,
            _ => self.load_slot(key)?,
        };
        let cached = cached.as_ref().filter(|c| c.is_fresh(now))?;
        self.hit(key);
        Some(f(cached.header()))
    }

    /// The whole current token of `key` (scopes, subject, expiries, the
    /// provider's extra fields): the one the store has not taken yet if a
    /// write is pending, else the stored one; `None` when nothing is stored.
    /// A store read, not the hot path: for the access token use
    /// [`TokenManager::get`].
    pub async fn current_token(&self, key: &TokenKey) -> Result<Option<Token>> {
        let pending = self
            .inner
            .slots
            .pin()
            .get(key)
            .and_then(|slot| slot.pending_token());
        if let Some(token) = pending {
            return Ok(Some(token));
        }
        let stored = self.inner.store.load(key).await?;
        Ok(stored.map(|stored| Token::from_record(stored.record)))
    }

    /// Stores a token obtained by a sign-in (replacing any stored one) and
    /// caches it. A write still pending for the key (see
    /// [`TokenEvent::StoreWriteFailed`]) is superseded.
    pub async fn insert(&self, key: TokenKey, token: Token) -> Result<AccessToken> {
        let record = token.to_record();
        let slot = self.inner.slot(&key);
        for _ in 0..8 {
            let current = self.inner.store.load(&key).await?;
            let expected = current.map(|stored| stored.version);
            if let CasOutcome::Written { version } = self
                .inner
                .store
                .compare_and_swap(&key, expected, &record)
                .await?
            {
                if self.inner.drop_pending(&slot) {
                    self.inner.release_lease(&key).await;
                }
                return Ok(self.inner.cache(&slot, &token, version));
            }
        }
        Err(Error::Store {
            message: format!("could not write the token for {key}: the store kept changing"),
            source: None,
        })
    }

    /// Renews the token even though it looks valid, because the API rejected
    /// `rejected` (a 401). If the key already holds a newer token, that one is
    /// returned without a request; if the key is backing off after a failed
    /// refresh, the deferral is returned (see [`TokenManager::get`]).
    pub async fn force_refresh(
        &self,
        key: &TokenKey,
        rejected: &AccessToken,
    ) -> Result<AccessToken> {
        let slot = self.inner.slot(key);
        if let Some(cached) = slot.current.load_full() {
            if cached.version() > rejected.version() {
                return Ok(AccessToken::owned(cached));
            }
        }
        if let Some(error) = slot.deferred(self.now_ms()) {
            return Err(error);
        }
        let result = self
            .inner
            .join_flight(key, &slot, Some(rejected.version()), true)
            .await?;
        if result.version() > rejected.version() {
            return Ok(result);
        }
        self.inner
            .join_flight(key, &slot, Some(rejected.version()), true)
            .await
    }

    /// Forgets `key`: removes it from the store and the cache (a write still
    /// pending for it is abandoned).
    pub async fn remove(&self, key: &TokenKey) -> Result<()> {
        self.inner.store.delete(key).await?;
        if let Some(slot) = self.inner.slots.pin().remove(key) {
            slot.mark_removed();
            self.inner.drop_pending(slot);
        }
        Ok(())
    }

    /// Disconnects an account: revokes its grant at the provider (RFC 7009,
    /// when the provider has a revocation endpoint: see
    /// [`Provider::revoke`](crate::Provider::revoke)), then removes the
    /// token from the store and the cache. The token is removed even when
    /// the revocation fails (the result says so): the account is
    /// disconnected here either way.
    pub async fn disconnect(&self, key: &TokenKey) -> Result<Revocation> {
        let revocation = match self.current_token(key).await? {
            None => Revocation::NothingStored,
            Some(token) => {
                let revoked = match self.inner.renewers.get(&key.provider()) {
                    Some(crate::Renewal::RefreshToken(provider)) => provider.revoke(&token).await,
                    Some(crate::Renewal::Reacquire(provider)) => provider.revoke(&token).await,
                    Some(crate::Renewal::Never) | None => Ok(false),
                };
                match revoked {
                    Ok(true) => Revocation::Revoked,
                    Ok(false) => Revocation::NotSupported,
                    Err(error) => {
                        tracing::warn!(token.key = %key, error = %error, "revoking the grant failed; removing the token all the same");
                        Revocation::Failed(error)
                    }
                }
            }
        };
        self.remove(key).await?;
        Ok(revocation)
    }

    /// Receives every [`TokenEvent`] from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<TokenEvent> {
        self.inner.events.subscribe()
    }

    /// How many keys the manager holds in memory.
    pub fn len(&self) -> usize {
        self.inner.slots.len()
    }

    /// True when the manager holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many refreshed tokens are held in memory because the store has
    /// not taken them yet (see [`TokenEvent::StoreWriteFailed`]). Zero in
    /// normal operation: alert when it is not. A write that lands is
    /// reported ([`TokenEvent::StoreWriteRecovered`], to hooks first)
    /// before it leaves this count.
    pub fn pending_writes(&self) -> usize {
        self.inner.pending_writes.load(Ordering::Relaxed)
    }

    #[inline]
    fn now_ms(&self) -> u64 {
        self.inner.clock.now_unix_ms()
    }
}
