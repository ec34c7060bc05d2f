//! The token manager: valid access tokens for many keys, fast; one refresh
//! per key at a time; rotated tokens persisted before anyone sees them.
//!
//! * **Hot path.** [`TokenManager::get`] on a cached, fresh token does a
//!   lock-free map lookup (`papaya`), a lock-free load (`arc-swap`) and one
//!   reference-count increment: no mutex, no allocation.
//! * **Refresh ahead.** A token is refreshed [`RefreshTiming::skew`] before
//!   expiry (capped at a fraction of its lifetime), earlier by a random
//!   jitter. While the old token is still valid, callers keep getting it and
//!   the refresh runs in the background.
//! * **Single flight.** One refresh per key at a time, on its own task: all
//!   concurrent callers await the same result, and cancelling any of them
//!   (the first included) cancels nothing. Different keys never share a flight.
//! * **Never lose a rotated token.** The refresh re-reads the store, takes
//!   the store's refresh lease (exclusive across processes on a shared
//!   store), refreshes, writes the new token with compare-and-swap, and only
//!   then caches it. A rejected refresh token is reported only after a final
//!   re-read shows no newer token from another instance.

mod cached;
mod events;
mod flight;
mod refresher;
mod renewer;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::future::{BoxFuture, Shared};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::store::{CasOutcome, MemoryStore, TokenKey, TokenStore};
use crate::token::{ProviderId, Token};

pub use cached::{AccessToken, RefreshTiming};
pub use events::{EventHook, TokenEvent};
pub use refresher::{BackgroundRefresher, RefresherConfig};
pub use renewer::Renewer;

use cached::{unix_ms, CachedToken};
use events::EventBus;

type FlightFuture = Shared<BoxFuture<'static, Result<AccessToken>>>;
type SlotMap = papaya::HashMap<TokenKey, Arc<Slot>, foldhash::fast::RandomState>;

/// The per-key state: the cached token (read lock-free) and the refresh in
/// flight (a mutex taken only to start or join a refresh, never held across
/// an `.await`).
#[derive(Default)]
pub(crate) struct Slot {
    current: ArcSwapOption<CachedToken>,
    flight: Mutex<Option<FlightFuture>>,
    waiters: AtomicUsize,
    failures: AtomicU32,
    retry_at_ms: AtomicU64,
}

impl Slot {
    fn flight(&self) -> std::sync::MutexGuard<'_, Option<FlightFuture>> {
        self.flight
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn in_backoff(&self, now_ms: u64) -> bool {
        now_ms < self.retry_at_ms.load(Ordering::Relaxed)
    }
}

pub(crate) struct Inner {
    slots: SlotMap,
    store: Arc<dyn TokenStore>,
    renewers: HashMap<ProviderId, Renewer>,
    clock: Arc<dyn Clock>,
    timing: RefreshTiming,
    lease_ttl: Duration,
    lease_poll: Duration,
    backoff: (Duration, Duration),
    holder: String,
    events: EventBus,
    cache_hits: metrics::Counter,
}

/// Hands out valid access tokens for many keys. Cheap to clone (shared state).
///
/// ```no_run
/// # async fn run(hike: std::sync::Arc<oauth2_adapters_core::StandardProvider>, token: oauth2_adapters_core::Token) -> oauth2_adapters_core::Result<()> {
/// use oauth2_adapters_core::manager::{Renewer, TokenManager};
/// use oauth2_adapters_core::{Provider, TokenKey};
///
/// let manager = TokenManager::builder()
///     .renewer(Renewer::refresh_token(hike.clone()))
///     .build();
/// let key = TokenKey::new(hike.id(), "store-42");
/// manager.insert(key.clone(), token).await?; // after the sign-in
/// let access = manager.get(&key).await?;      // fresh, refreshed when due
/// let header = access.expose_authorization_header();
/// # let _ = header; Ok(()) }
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
            .finish()
    }
}

/// Configures a [`TokenManager`].
pub struct TokenManagerBuilder {
    store: Arc<dyn TokenStore>,
    renewers: HashMap<ProviderId, Renewer>,
    clock: Arc<dyn Clock>,
    timing: RefreshTiming,
    lease_ttl: Duration,
    lease_poll: Duration,
    backoff: (Duration, Duration),
    hooks: Vec<EventHook>,
    event_capacity: usize,
}

impl TokenManagerBuilder {
    /// Where tokens are kept (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = store;
        self
    }

    /// How a provider's tokens are renewed; one per provider.
    pub fn renewer(mut self, renewer: Renewer) -> Self {
        self.renewers.insert(renewer.provider_id().clone(), renewer);
        self
    }

    /// The clock (default: the system clock). Use the providers' clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// When to refresh ahead of expiry (default: [`RefreshTiming::default`]).
    pub fn refresh_timing(mut self, timing: RefreshTiming) -> Self {
        self.timing = timing;
        self
    }

    /// How long a refresh lease lasts if its holder dies (default 30 s),
    /// and how often a waiting instance re-reads the store (default 50 ms).
    pub fn lease(mut self, ttl: Duration, poll: Duration) -> Self {
        self.lease_ttl = ttl;
        self.lease_poll = poll;
        self
    }

    /// Backoff after a failed refresh: first delay and cap (default 1 s, 5 min).
    pub fn failure_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = (first, max);
        self
    }

    /// Runs `hook` for every [`TokenEvent`].
    pub fn on_event(mut self, hook: impl Fn(&TokenEvent) + Send + Sync + 'static) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Builds the manager.
    pub fn build(self) -> TokenManager {
        TokenManager {
            inner: Arc::new(Inner {
                slots: papaya::HashMap::builder()
                    .hasher(foldhash::fast::RandomState::default())
                    .resize_mode(papaya::ResizeMode::Blocking)
                    .build(),
                store: self.store,
                renewers: self.renewers,
                clock: self.clock,
                timing: self.timing,
                lease_ttl: self.lease_ttl,
                lease_poll: self.lease_poll,
                backoff: self.backoff,
                holder: format!("manager-{:016x}", fastrand::u64(..)),
                events: EventBus::new(self.hooks, self.event_capacity),
                cache_hits: crate::metrics::cache_hits(),
            }),
        }
    }
}

impl TokenManager {
    /// Starts configuring a manager.
    pub fn builder() -> TokenManagerBuilder {
        TokenManagerBuilder {
            store: Arc::new(MemoryStore::new()),
            renewers: HashMap::new(),
            clock: Arc::new(SystemClock),
            timing: RefreshTiming::default(),
            lease_ttl: Duration::from_secs(30),
            lease_poll: Duration::from_millis(50),
            backoff: (Duration::from_secs(1), Duration::from_secs(300)),
            hooks: Vec::new(),
            event_capacity: 1024,
        }
    }

    /// A valid access token for `key`: the cached one while it is fresh;
    /// the cached one while a background refresh runs once it is due; and
    /// otherwise (expired, or not yet loaded) the result of the one refresh
    /// in flight for the key.
    pub async fn get(&self, key: &TokenKey) -> Result<AccessToken> {
        if let Some(token) = self.try_get(key) {
            return Ok(token);
        }
        let slot = self.inner.slot(key);
        self.inner.join_flight(key, &slot, None, true).await
    }

    /// The cached token for `key` if it is still valid, without waiting:
    /// the hot path of [`TokenManager::get`] (a lock-free lookup and load,
    /// one reference-count increment, no allocation). Starts a background
    /// refresh when one is due (inside a Tokio runtime).
    pub fn try_get(&self, key: &TokenKey) -> Option<AccessToken> {
        let now = self.now_ms();
        let slots = self.inner.slots.pin();
        let slot = slots.get(key)?;
        let cached = slot.current.load_full()?;
        if cached.is_fresh(now) {
            self.inner.cache_hits.increment(1);
            tracing::trace!(token.key = %key, "cache hit");
            return Some(AccessToken(cached));
        }
        if !cached.is_valid(now) {
            return None;
        }
        if !slot.in_backoff(now) && tokio::runtime::Handle::try_current().is_ok() {
            drop(self.inner.join_flight(key, slot, None, false));
        }
        Some(AccessToken(cached))
    }

    /// Runs `f` with the cached `Authorization` header value of `key` (e.g.
    /// `Bearer eyJ…`) if the token is fresh, without waiting and without
    /// touching any shared counter: the fastest read when many threads use
    /// one key. Returns `None` when the token is not cached or is due for
    /// refresh (then use [`TokenManager::get`]).
    pub fn with_authorization_header<R>(
        &self,
        key: &TokenKey,
        f: impl FnOnce(&str) -> R,
    ) -> Option<R> {
        let now = self.now_ms();
        let slots = self.inner.slots.pin();
        let slot = slots.get(key)?;
        let cached = slot.current.load();
        let cached = cached.as_ref().filter(|c| c.is_fresh(now))?;
        self.inner.cache_hits.increment(1);
        tracing::trace!(token.key = %key, "cache hit");
        Some(f(cached.header()))
    }

    /// Stores a token obtained by a sign-in (replacing any stored one) and
    /// caches it.
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
    /// returned without a request.
    pub async fn force_refresh(
        &self,
        key: &TokenKey,
        rejected: &AccessToken,
    ) -> Result<AccessToken> {
        let slot = self.inner.slot(key);
        if let Some(cached) = slot.current.load_full() {
            if cached.version > rejected.version() {
                return Ok(AccessToken(cached));
            }
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

    /// Forgets `key`: removes it from the store and the cache.
    pub async fn remove(&self, key: &TokenKey) -> Result<()> {
        self.inner.store.delete(key).await?;
        self.inner.slots.pin().remove(key);
        Ok(())
    }

    /// Loads every stored key into the cache (for the background refresher
    /// after a restart). Returns how many keys were loaded.
    pub async fn warm(&self) -> Result<usize> {
        let keys = self.inner.store.keys().await?;
        for key in &keys {
            if let Some(stored) = self.inner.store.load(key).await? {
                let slot = self.inner.slot(key);
                self.inner.cache_record(&slot, &stored);
            }
        }
        Ok(keys.len())
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

    fn now_ms(&self) -> u64 {
        unix_ms(self.inner.clock.now())
    }
}
