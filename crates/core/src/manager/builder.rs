//! Configuring a [`TokenManager`], and refusing configuration that could
//! overflow, produce NaN, or let a lease lapse under a running refresh.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::events::{EventBus, EventHook, TokenEvent};
use super::guarded_store::GuardedStore;
use super::{Inner, RefreshTiming, Renewer, TokenManager};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::store::{MemoryStore, TokenStore};

/// The longest lease, backoff or grace the builder accepts.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Configures a [`TokenManager`]; [`TokenManagerBuilder::build`] checks
/// the whole configuration.
pub struct TokenManagerBuilder {
    store: Arc<dyn TokenStore>,
    renewers: Vec<Renewer>,
    clock: Arc<dyn Clock>,
    timing: RefreshTiming,
    lease_ttl: Duration,
    lease_poll: Duration,
    in_doubt_grace: Duration,
    backoff: (Duration, Duration),
    store_timeout: Duration,
    hooks: Vec<EventHook>,
    event_capacity: usize,
}

impl TokenManagerBuilder {
    pub(super) fn new() -> Self {
        Self {
            store: Arc::new(MemoryStore::new()),
            renewers: Vec::new(),
            clock: Arc::new(SystemClock),
            timing: RefreshTiming::default(),
            lease_ttl: Duration::from_secs(60),
            lease_poll: Duration::from_millis(50),
            in_doubt_grace: Duration::from_secs(600),
            backoff: (Duration::from_secs(1), Duration::from_secs(300)),
            store_timeout: Duration::from_secs(10),
            hooks: Vec::new(),
            event_capacity: 1024,
        }
    }

    /// Where tokens are kept (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = store;
        self
    }

    /// How a provider's tokens are renewed; one per provider (a second one
    /// for the same provider is a configuration error).
    pub fn renewer(mut self, renewer: Renewer) -> Self {
        self.renewers.push(renewer);
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

    /// How long a refresh lease lasts if its holder stops extending it
    /// (default 60 s), and how often a waiting instance re-reads the store
    /// (default 50 ms). A holder extends its lease every third of `ttl`
    /// while its request or write is in flight; `ttl` must still cover the
    /// longest request of every provider ([`Renewer::worst_case`]: 45 s
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

    /// Runs `hook` for every [`TokenEvent`] (a panicking hook is isolated).
    pub fn on_event(mut self, hook: impl Fn(&TokenEvent) + Send + Sync + 'static) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Builds the manager, or explains which setting is wrong
    /// ([`Error::Configuration`]): a lease shorter than a provider's longest
    /// request or longer than a week, a zero or over-long poll interval or
    /// backoff, a refresh timing that [`RefreshTiming::validate`] refuses,
    /// or two renewers for one provider.
    pub fn build(self) -> Result<TokenManager> {
        self.validate()?;
        let renewers: HashMap<_, _> = self
            .renewers
            .into_iter()
            .map(|renewer| (renewer.provider_id().clone(), renewer))
            .collect();
        Ok(TokenManager {
            inner: Arc::new(Inner {
                slots: papaya::HashMap::builder()
                    .hasher(foldhash::fast::RandomState::default())
                    .resize_mode(papaya::ResizeMode::Blocking)
                    .build(),
                store: Arc::new(GuardedStore::new(self.store, self.store_timeout)),
                renewers,
                clock: self.clock,
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
            }),
        })
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
        let mut seen = std::collections::HashSet::new();
        for renewer in &self.renewers {
            let id = renewer.provider_id();
            if !seen.insert(id.clone()) {
                return refuse(format!("two renewers are registered for the provider {id}"));
            }
            let worst = renewer.worst_case();
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
}
