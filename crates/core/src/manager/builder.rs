//! Configuring a [`TokenManager`], and refusing configuration that could
//! overflow, produce NaN, or let a lease lapse under a running refresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::events::{EventBus, EventHook, TokenEvent};
use super::guarded_store::GuardedStore;
use super::refresher::BackgroundRefresh;
use super::{Inner, RefreshTiming, TokenManager};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::provider::{Provider, Renewal};
use crate::store::{MemoryStore, TokenStore};
use crate::token::ProviderId;

/// The longest lease, backoff or grace the builder accepts.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Configures a [`TokenManager`]; [`TokenManagerBuilder::build`] checks
/// the whole configuration.
pub struct TokenManagerBuilder {
    store: Arc<dyn TokenStore>,
    renewals: Vec<(ProviderId, Renewal)>,
    clock: Option<Arc<dyn Clock>>,
    timing: RefreshTiming,
    lease_ttl: Duration,
    lease_poll: Duration,
    in_doubt_grace: Duration,
    backoff: (Duration, Duration),
    store_timeout: Duration,
    background: Option<BackgroundRefresh>,
    hooks: Vec<EventHook>,
    event_capacity: usize,
}

impl TokenManagerBuilder {
    pub(super) fn new() -> Self {
        Self {
            store: Arc::new(MemoryStore::new()),
            renewals: Vec::new(),
            clock: None,
            timing: RefreshTiming::default(),
            lease_ttl: Duration::from_secs(60),
            lease_poll: Duration::from_millis(50),
            in_doubt_grace: Duration::from_secs(600),
            backoff: (Duration::from_secs(1), Duration::from_secs(300)),
            store_timeout: Duration::from_secs(10),
            background: None,
            hooks: Vec::new(),
            event_capacity: 1024,
        }
    }

    /// Where tokens are kept (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = store;
        self
    }

    /// Registers a provider: the manager renews its keys' tokens the way
    /// the provider's [`Provider::renewal`] says (refresh token, a new
    /// client-credentials token, or not at all). One per provider id: a
    /// second one for the same id is a configuration error.
    pub fn provider<P: Provider + ?Sized>(mut self, provider: Arc<P>) -> Self {
        let id = provider.id().clone();
        self.renewals.push((id, provider.renewal()));
        self
    }

    /// The clock that decides when tokens are due. Default: the clock of
    /// the registered providers (their
    /// [`ProviderSettings`](crate::ProviderSettings)), so a test clock set
    /// once on the providers is the manager's too; the system clock without
    /// providers. Without it, providers whose clocks disagree are a
    /// configuration error at [`TokenManagerBuilder::build`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// When to refresh ahead of expiry (default: [`RefreshTiming::default`]).
    pub fn refresh_timing(mut self, timing: RefreshTiming) -> Self {
        self.timing = timing;
        self
    }

    /// How long a refresh lease lasts if its holder stops extending it
    /// (default 60 s), and how often a waiting instance re-reads the store
    /// (default 50 ms). A holder extends its lease every third of `ttl`
    /// while its request or write is in flight; `ttl` must still cover the
    /// longest request of every provider ([`Renewal::worst_case`]: 45 s
    /// with the default HTTP timeout and retry policy), so that a holder
    /// that cannot reach the store to extend it keeps it to the end.
    pub fn lease(mut self, ttl: Duration, poll: Duration) -> Self {
        self.lease_ttl = ttl;
        self.lease_poll = poll;
        self
    }

    /// How long nobody may send a refresh token whose refresh lease lapsed
    /// unreleased (default 10 minutes): its holder may have sent it and may
    /// still hold, unwritten, the token the provider rotated it into (an
    /// instance cut off from the store). Meanwhile callers get
    /// [`Error::RefreshDeferred`] with `InDoubt`; once the holder's write
    /// lands they get the new token. After the grace the refresh is tried
    /// again (a holder that died after the provider rotated lost the new
    /// token; the provider then rejects the old one and the account needs
    /// re-authorization).
    pub fn in_doubt_grace(mut self, grace: Duration) -> Self {
        self.in_doubt_grace = grace;
        self
    }

    /// Backoff after a failed refresh: first delay and cap (default 1 s, 5 min).
    pub fn failure_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = (first, max);
        self
    }

    /// The longest one store call may take (default 10 s). A call past it
    /// (a partition, a connection the server dropped) fails as
    /// [`Error::Store`], so no caller waits forever; a write that timed out
    /// is kept pending and retried like any failed write, and recognised
    /// as the manager's own if it landed after all. A store call that
    /// panics fails the same way.
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// Refreshes every cached key that is due in the background, before
    /// anyone asks: every `every` (1 s is a good default; sooner after a
    /// round that had work) it looks for due keys and refreshes them,
    /// soonest expiry first, with at most `max_concurrent` (say 16)
    /// refreshes in flight, so a wave of expiring tokens never hammers the
    /// provider. Refreshes ahead of expiry that reads start (`get`,
    /// `try_get` on a due token) count against the same cap; only a caller
    /// that waits for a refresh (an expired or missing token, or
    /// `force_refresh` after the API rejected one) goes past it.
    ///
    /// Instances sharing a store split the work: each walks the due keys
    /// in an order of its own (within each second of expiry), reads their
    /// stored rows in batches first ([`TokenStore::load_many`](crate::store::TokenStore::load_many)),
    /// and takes a token another instance has refreshed from its row,
    /// without a refresh. Keys whose refresh failed wait out their backoff;
    /// keys without a token are dropped once their backoff is over. Call
    /// [`TokenManager::warm`] after a restart to include every stored key.
    /// It starts with the manager (which must then be built inside a Tokio
    /// runtime) and stops at [`TokenManager::shutdown`] or when the last
    /// handle is dropped.
    pub fn refresh_in_background(mut self, every: Duration, max_concurrent: usize) -> Self {
        self.background = Some(BackgroundRefresh {
            every,
            max_concurrent,
        });
        self
    }

    /// Runs `hook` for every [`TokenEvent`] (a panicking hook is isolated).
    pub fn on_event(mut self, hook: impl Fn(&TokenEvent) + Send + Sync + 'static) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Builds the manager, or explains which setting is wrong
    /// ([`Error::Configuration`]): a lease shorter than a provider's longest
    /// request or longer than a week, a zero or over-long poll interval or
    /// backoff, a refresh timing that [`RefreshTiming::validate`] refuses,
    /// two providers with one id, or providers whose clocks disagree (see
    /// [`TokenManagerBuilder::clock`]).
    pub fn build(self) -> Result<TokenManager> {
        self.validate()?;
        let clock = self.clock.clone().unwrap_or_else(|| {
            self.renewals
                .iter()
                .find_map(|(_, renewal)| Some(renewal.settings()?.clock.clone()))
                .unwrap_or_else(|| Arc::new(SystemClock))
        });
        let renewers: HashMap<_, _> = self.renewals.into_iter().collect();
        let background = self.background;
        let manager = TokenManager {
            inner: Arc::new(Inner {
                id: super::local::next_manager_id(),
                slots: papaya::HashMap::builder()
                    .hasher(crate::store::KeyHashBuilder)
                    .resize_mode(papaya::ResizeMode::Blocking)
                    .build(),
                store: Arc::new(GuardedStore::new(self.store, self.store_timeout)),
                renewers,
                clock,
                timing: self.timing,
                lease_ttl: self.lease_ttl,
                lease_poll: self.lease_poll,
                in_doubt_grace: self.in_doubt_grace,
                backoff: self.backoff,
                holder: format!("manager-{:016x}", fastrand::u64(..)),
                events: EventBus::new(self.hooks, self.event_capacity),
                cache_hits: crate::metrics::cache_hits(),
                tasks: TaskTracker::new(),
                closing: AtomicBool::new(false),
                pending_writes: AtomicUsize::new(0),
                tokenless_kept: AtomicUsize::new(0),
                background_permits: std::sync::OnceLock::new(),
            }),
        };
        if let Some(background) = background {
            manager.inner.start_background_refresh(background)?;
        }
        Ok(manager)
    }

    fn validate(&self) -> Result<()> {
        let refuse = |reason: String| Err(Error::configuration(reason));
        self.timing.validate()?;
        let (ttl, poll) = (self.lease_ttl, self.lease_poll);
        if ttl > MAX_DURATION {
            return refuse(format!("the lease ttl must be at most a week, not {ttl:?}"));
        }
        if poll.is_zero() || poll > ttl {
            return refuse(format!(
                "the lease poll interval must be more than zero and at most the ttl ({ttl:?}), not {poll:?}"
            ));
        }
        if self.in_doubt_grace > MAX_DURATION {
            return refuse(format!(
                "the in-doubt grace must be at most a week, not {:?}",
                self.in_doubt_grace
            ));
        }
        if self.store_timeout.is_zero() || self.store_timeout > MAX_DURATION {
            return refuse(format!(
                "the store timeout must be above zero and at most a week, not {:?}",
                self.store_timeout
            ));
        }
        let (first, max) = self.backoff;
        if first.is_zero() || first > max || max > MAX_DURATION {
            return refuse(format!(
                "the failure backoff must start above zero and grow to at most a week \
                 (first {first:?}, max {max:?})"
            ));
        }
        if let Some(background) = &self.background {
            if background.every.is_zero()
                || background.every > MAX_DURATION
                || background.max_concurrent == 0
            {
                return refuse(format!(
                    "refresh_in_background needs a period above zero and at most a week, \
                     and at least one refresh at a time (every {:?}, max {})",
                    background.every, background.max_concurrent
                ));
            }
        }
        self.check_provider_clocks()?;
        let mut seen = std::collections::HashSet::new();
        for (id, renewal) in &self.renewals {
            if !seen.insert(id.clone()) {
                return refuse(format!("two providers are registered with the id {id}"));
            }
            let worst = renewal.worst_case();
            if ttl < worst {
                return refuse(format!(
                    "the lease ttl ({ttl:?}) is shorter than the longest request to {id} \
                     ({worst:?}: its HTTP timeout with retries); lengthen the lease or \
                     shorten the provider's timeout or retry budget"
                ));
            }
        }
        Ok(())
    }

    /// Providers whose clocks disagree (a test clock on one, the system
    /// clock on another) would make the manager's idea of "due" depend on
    /// which one it took: a configuration error, unless a clock is set
    /// with [`TokenManagerBuilder::clock`].
    fn check_provider_clocks(&self) -> Result<()> {
        if self.clock.is_some() {
            return Ok(());
        }
        let clocks = self
            .renewals
            .iter()
            .filter_map(|(id, renewal)| Some((id, renewal.settings()?.clock.now_unix_ms())));
        let mut first: Option<(&ProviderId, u64)> = None;
        for (id, now) in clocks {
            match first {
                None => first = Some((id, now)),
                Some((first_id, first_now)) if first_now.abs_diff(now) > CLOCKS_AGREE_WITHIN_MS => {
                    return Err(Error::configuration(format!(
                        "the providers {first_id} and {id} have different clocks \
                         ({first_now} ms and {now} ms since the epoch); give every provider \
                         the same clock (ProviderSettings::with_clock, or the testkit's \
                         MockServer::provider_settings) or set the manager's with \
                         TokenManagerBuilder::clock"
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// How far apart two providers' clocks may read and still count as one.
const CLOCKS_AGREE_WITHIN_MS: u64 = 1000;
