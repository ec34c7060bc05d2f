//! One refresh of one key: single flight in the process, a lease across
//! processes (extended while the request runs), persist before publish.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::RefCnt;
use futures_util::future::Either;
use futures_util::FutureExt;
use tracing::Instrument;

use super::cached::AccessToken;
use super::persist::Base;
use super::slot::{Flight, FlightFuture, Slot, SlotRef};
use super::{Inner, TokenEvent};
use crate::error::{DeferredReason, Error, ReauthorizationReason, Result};
use crate::provider::Renewal;
use crate::store::{LeaseOutcome, LeaseRequest, StoredToken, TokenKey};
use crate::token::Token;

/// How a flight that succeeded got its token.
#[derive(Debug, Clone, Copy)]
pub(super) enum FlightOutcome {
    /// From the provider, and stored.
    Refreshed,
    /// From the provider; the store did not take it yet (a pending write).
    RefreshedPendingWrite,
    /// From the store: another instance had already refreshed.
    LoadedFromStore,
}

impl FlightOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Refreshed => "refreshed",
            Self::RefreshedPendingWrite => "refreshed_pending_write",
            Self::LoadedFromStore => "loaded_from_store",
        }
    }
}

/// What waiting for the lease produced.
enum Leased {
    /// We hold the lease; this is the latest stored state.
    Acquired(Option<StoredToken>),
    /// Another instance stored a fresh token meanwhile: no refresh needed.
    Fresh(StoredToken),
}

/// Clears the key's flight when the flight's task ends, however it ends
/// (a result, a panic, an abort at shutdown): nothing wedges a key.
struct FlightGuard {
    slot: SlotRef,
    id: u64,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.slot.clear_flight(self.id);
    }
}

/// After losing a key's lease to another instance, how soon a refresh
/// ahead of expiry looks again (at most; sooner if the lease ends sooner).
const LOST_RACE_RETRY: Duration = Duration::from_secs(1);

/// Tokenless slots kept after failed acquisitions before they are swept
/// (see `Inner::count_kept_tokenless_slot`).
const SWEEP_AFTER_KEPT: usize = 1024;

pub(super) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Inner {
    pub(super) fn slot(&self, key: &TokenKey) -> SlotRef {
        let slots = self.slots.pin();
        if let Some(slot) = slots.get(key) {
            return slot.clone();
        }
        slots
            .get_or_insert_with(key.clone(), || SlotRef::new(Slot::default()))
            .clone()
    }

    /// Joins the key's refresh in flight, or starts one on its own task.
    /// `force_version`: renew even a fresh token if its version is at most this.
    pub(super) fn join_flight(
        self: &Arc<Self>,
        key: &TokenKey,
        slot: &SlotRef,
        force_version: Option<u64>,
        waiting: bool,
    ) -> FlightFuture {
        let now = self.clock.now_unix_ms();
        slot.with_cold(|cold| {
            if let Some(running) = cold.flight.as_ref() {
                if waiting {
                    cold.waiters += 1;
                    crate::metrics::coalesced_waiter(&key.provider());
                    tracing::trace!(token.key = %key, waiters = cold.waiters, "joined the refresh in flight");
                }
                return running.future.clone();
            }
            let refused = if self.closing.load(Ordering::Acquire) {
                Some(Error::RefreshDeferred {
                    reason: DeferredReason::ShuttingDown,
                    retry_after: None,
                })
            } else {
                // A flight that failed since the caller checked has set a backoff.
                cold.last_error
                    .clone()
                    .and_then(|last| slot.deferred_with(last, now))
            };
            if let Some(error) = refused {
                return futures_util::future::ready(Err(error)).boxed().shared();
            }
            cold.waiters = 0;
            let (future, flight) = self.spawn_flight(key, slot, force_version, waiting);
            cold.flight = Some(flight);
            future
        })
    }

    /// Starts the refresh task of `key`; returns what callers await and
    /// the flight to record.
    /// `patient`: a caller waits for it (else it is a refresh ahead of
    /// expiry, which does not wait for another instance's lease: the cached
    /// token stays valid, and that instance's token is read next time).
    fn spawn_flight(
        self: &Arc<Self>,
        key: &TokenKey,
        slot: &SlotRef,
        force_version: Option<u64>,
        patient: bool,
    ) -> (FlightFuture, Flight) {
        let id = next_id();
        let task = {
            let inner = Arc::clone(self);
            let key = key.clone();
            let slot = SlotRef::clone(slot);
            let span = tracing::info_span!(
                parent: None,
                "oauth2_adapters.refresh",
                token.key = %key,
                provider = %key.provider(),
                forced = force_version.is_some(),
                outcome = tracing::field::Empty,
                coalesced_waiters = tracing::field::Empty,
                duration_ms = tracing::field::Empty,
            );
            self.tasks.spawn(
                async move {
                    let guard = FlightGuard {
                        slot: SlotRef::clone(&slot),
                        id,
                    };
                    let started = Instant::now();
                    let result = AssertUnwindSafe(inner.run_flight(&key, &slot, force_version, patient))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            tracing::error!(token.key = %key, "the refresh panicked; the key is usable again");
                            Err(Error::Internal {
                                what: format!("the refresh of {key}"),
                            })
                        });
                    inner.finish_flight(&key, &slot, &result, started);
                    drop(guard);
                    result.map(|(access, _)| access)
                }
                .instrument(span),
            )
        };
        let abort = task.abort_handle();
        let shared = async move {
            task.await.unwrap_or_else(|join| {
                Err(if join.is_cancelled() {
                    Error::RefreshDeferred {
                        reason: DeferredReason::ShuttingDown,
                        retry_after: None,
                    }
                } else {
                    Error::Internal {
                        what: "a refresh task".into(),
                    }
                })
            })
        }
        .boxed()
        .shared();
        let flight = Flight {
            id,
            future: shared.clone(),
            abort,
        };
        (shared, flight)
    }

    /// Records a flight's result: span fields, metrics, events, backoff;
    /// drops the slot of a key that turned out to have no token.
    fn finish_flight(
        &self,
        key: &TokenKey,
        slot: &SlotRef,
        result: &Result<(AccessToken, FlightOutcome)>,
        started: Instant,
    ) {
        let outcome = match result {
            Ok((_, outcome)) => outcome.as_str(),
            Err(error) if error.requires_reauthorization() => "reauthorization_required",
            Err(Error::RefreshDeferred { .. }) => "deferred",
            Err(_) => "failed",
        };
        let span = tracing::Span::current();
        span.record("outcome", outcome);
        span.record("coalesced_waiters", slot.waiters());
        span.record("duration_ms", started.elapsed().as_millis() as u64);
        crate::metrics::manager_refresh(&key.provider(), outcome);
        let Err(error) = result else {
            return;
        };
        if let Error::RefreshDeferred {
            reason: DeferredReason::OtherInstanceRefreshing,
            retry_after: Some(after),
        } = error
        {
            // Not a failure: another instance holds the lease. Look again
            // when it may have stored its token: when its lease is free, or
            // after about one refresh's time if that is sooner.
            let after = (*after).min(LOST_RACE_RETRY);
            let at = self
                .clock
                .now_unix_ms()
                .saturating_add(after.as_millis() as u64);
            slot.retry_at_ms.fetch_max(at, Ordering::Relaxed);
            return;
        }
        if !error.requires_reauthorization() {
            self.events.emit(TokenEvent::RefreshFailed {
                key: key.clone(),
                error: error.clone(),
            });
        }
        self.record_failure(slot, error);
        let spends = self
            .renewers
            .get(&key.provider())
            .is_none_or(Renewal::spends_refresh_token);
        if slot.current.load().is_none() && !slot.has_pending() {
            if spends {
                // A key with no token (e.g. taken from untrusted input)
                // leaves nothing behind.
                self.remove_slot_if_tokenless(key, slot);
            } else {
                // A re-acquiring key keeps its slot while it backs off (so
                // its callers are paced); swept once the backoff is over.
                self.count_kept_tokenless_slot();
            }
        }
    }

    /// Removes `key`'s slot if it is still `slot` and holds no token.
    pub(super) fn remove_slot_if_tokenless(&self, key: &TokenKey, slot: &SlotRef) {
        if let Ok(Some((_, removed))) = self.slots.pin().remove_if(key, |_, s| {
            SlotRef::ptr_eq(s, slot) && s.current.load().is_none()
        }) {
            removed.mark_removed();
        }
    }

    /// Whether `slot` holds nothing worth keeping at `now`: no token, no
    /// backoff to enforce, no refresh in flight, no pending write.
    pub(super) fn is_idle_tokenless(slot: &SlotRef, now_ms: u64) -> bool {
        slot.current.load().is_none()
            && !slot.in_backoff(now_ms)
            && !slot.has_flight()
            && !slot.has_pending()
    }

    /// Counts a tokenless slot kept after a failed acquisition and, once
    /// there are [`SWEEP_AFTER_KEPT`] of them or a quarter of the map
    /// (whichever is more, so a sweep costs O(1) per failure), drops every
    /// idle tokenless slot. Without it, re-acquiring keys taken from
    /// untrusted input would grow the map until the background refresher
    /// ran, or forever without one.
    fn count_kept_tokenless_slot(&self) {
        let kept = self.tokenless_kept.fetch_add(1, Ordering::Relaxed) + 1;
        let slots = self.slots.pin();
        if kept < SWEEP_AFTER_KEPT.max(slots.len() / 4) {
            return;
        }
        self.tokenless_kept.store(0, Ordering::Relaxed);
        let now = self.clock.now_unix_ms();
        for (key, slot) in slots.iter() {
            if Self::is_idle_tokenless(slot, now) {
                self.remove_slot_if_tokenless(key, slot);
            }
        }
    }

    async fn run_flight(
        self: &Arc<Self>,
        key: &TokenKey,
        slot: &SlotRef,
        force_version: Option<u64>,
        patient: bool,
    ) -> Result<(AccessToken, FlightOutcome)> {
        let renewer = self.renewers.get(&key.provider()).cloned().ok_or_else(|| {
            Error::configuration(format!(
                "no provider is registered for {key} (TokenManagerBuilder::provider)"
            ))
        })?;
        // A key with a cached token goes straight to the lease, which
        // returns the stored row (a refresh is then two store calls: the
        // lease, and the write that releases it). An unknown key is read
        // first, so that a key nobody stored takes no lease.
        if !slot.has_pending() && slot.current.load().is_none() {
            let stored = self.store.load(key).await?;
            if let Some(stored) = stored
                .as_ref()
                .filter(|s| !self.needs_renewal(s, force_version))
            {
                return Ok(self.use_stored(slot, stored));
            }
            if stored.is_none() && renewer.spends_refresh_token() {
                return Err(not_authorized(key));
            }
        }
        let request = LeaseRequest {
            holder: &self.holder,
            ttl: self.lease_ttl,
            in_doubt_grace: if renewer.spends_refresh_token() {
                self.in_doubt_grace
            } else {
                Duration::ZERO
            },
        };
        let stored = match self
            .acquire_lease(key, slot, &request, force_version, patient)
            .await?
        {
            Leased::Fresh(stored) => return Ok(self.use_stored(slot, &stored)),
            Leased::Acquired(stored) => stored,
        };
        // Under the lease, a write pending in this process is newer than
        // the store: refresh from it (its writer stops; ours takes over).
        let base = match self.take_pending(slot) {
            Some(pending) => Base::pending(pending),
            None => Base::stored(stored),
        };
        if base.token.is_none() && renewer.spends_refresh_token() {
            self.release_lease(key).await;
            return Err(not_authorized(key));
        }
        let renewed = self
            .renew_holding_lease(key, &renewer, base.token.as_ref(), &request)
            .await;
        match renewed {
            Ok(fresh) => self.persist(key, slot, fresh, base, Instant::now()).await,
            Err(error) => {
                let result = self.refresh_failed(key, slot, error, &base).await;
                self.restore_pending(key, slot, base);
                result
            }
        }
    }

    /// After a failed renewal: a rejected refresh token is reported only
    /// when no newer token reached the store meanwhile.
    async fn refresh_failed(
        &self,
        key: &TokenKey,
        slot: &Slot,
        error: Error,
        base: &Base,
    ) -> Result<(AccessToken, FlightOutcome)> {
        if !base.is_pending() {
            self.release_lease(key).await;
        }
        if !error.requires_reauthorization() {
            return Err(error);
        }
        // Another instance may have rotated the token a moment ago.
        if let Some(latest) = self.store.load(key).await? {
            if Some(latest.version) != base.expected && !self.needs_renewal(&latest, None) {
                return Ok(self.use_stored(slot, &latest));
            }
        }
        self.events.emit(TokenEvent::ReauthorizationRequired {
            key: key.clone(),
            error: error.clone(),
        });
        Err(error)
    }

    /// Takes the key's refresh lease, or waits (bounded by the lease ttl)
    /// until its holder has stored a fresh token or the lease is free.
    async fn acquire_lease(
        &self,
        key: &TokenKey,
        slot: &Slot,
        request: &LeaseRequest<'_>,
        force_version: Option<u64>,
        patient: bool,
    ) -> Result<Leased> {
        let started = Instant::now();
        let fresh = |stored: Option<&StoredToken>| {
            stored
                .filter(|s| !slot.has_pending() && !self.needs_renewal(s, force_version))
                .cloned()
        };
        loop {
            let (remaining, current) = match self.store.try_acquire_lease(key, request).await? {
                LeaseOutcome::Acquired { current } => {
                    if let Some(stored) = fresh(current.as_ref()) {
                        self.release_lease(key).await;
                        return Ok(Leased::Fresh(stored));
                    }
                    return Ok(Leased::Acquired(current));
                }
                LeaseOutcome::InDoubt {
                    retry_after,
                    current,
                } => {
                    if let Some(stored) = fresh(current.as_ref()) {
                        return Ok(Leased::Fresh(stored));
                    }
                    tracing::warn!(token.key = %key, retry_after_ms = retry_after.as_millis() as u64, "another instance's refresh is in doubt; not sending the refresh token");
                    return Err(Error::RefreshDeferred {
                        reason: DeferredReason::InDoubt,
                        retry_after: Some(retry_after),
                    });
                }
                LeaseOutcome::HeldByOther { remaining, current } => (remaining, current),
            };
            if let Some(stored) = fresh(current.as_ref()) {
                return Ok(Leased::Fresh(stored));
            }
            if !patient {
                return Err(Error::RefreshDeferred {
                    reason: DeferredReason::OtherInstanceRefreshing,
                    retry_after: Some(remaining),
                });
            }
            // Poll with plain reads until the other lease could be free.
            let free_at = Instant::now() + remaining;
            loop {
                if started.elapsed() >= self.lease_ttl {
                    return Err(Error::RefreshDeferred {
                        reason: DeferredReason::OtherInstanceRefreshing,
                        retry_after: Some(free_at.saturating_duration_since(Instant::now())),
                    });
                }
                let wait = free_at
                    .saturating_duration_since(Instant::now())
                    .min(self.lease_poll)
                    .max(Duration::from_millis(1));
                tokio::time::sleep(wait).await;
                if let Some(stored) = fresh(self.store.load(key).await?.as_ref()) {
                    return Ok(Leased::Fresh(stored));
                }
                if Instant::now() >= free_at {
                    break;
                }
            }
        }
    }

    /// Renews, extending the lease every third of its ttl while the request
    /// runs, so that no other instance takes it over mid-request.
    async fn renew_holding_lease(
        &self,
        key: &TokenKey,
        renewer: &Renewal,
        current: Option<&Token>,
        request: &LeaseRequest<'_>,
    ) -> Result<Token> {
        let renew = std::pin::pin!(renewer.renew(key, current));
        let heartbeat = std::pin::pin!(self.extend_lease_forever(key, request));
        match futures_util::future::select(renew, heartbeat).await {
            Either::Left((result, _)) => result,
            Either::Right(((), renew)) => renew.await,
        }
    }

    /// Re-acquires the lease every third of its ttl, until dropped.
    pub(super) async fn extend_lease_forever(&self, key: &TokenKey, request: &LeaseRequest<'_>) {
        let period = (request.ttl / 3).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(period).await;
            match self.store.try_acquire_lease(key, request).await {
                Ok(LeaseOutcome::Acquired { .. }) => {}
                Ok(_) => {
                    tracing::error!(token.key = %key, "the refresh lease was taken over while this instance held it");
                }
                Err(error) => {
                    tracing::warn!(token.key = %key, error = %error, "could not extend the refresh lease");
                }
            }
        }
    }

    pub(super) async fn release_lease(&self, key: &TokenKey) {
        if let Err(error) = self.store.release_lease(key, &self.holder).await {
            tracing::warn!(token.key = %key, error = %error, "could not release the refresh lease; it will lapse");
        }
    }

    /// True when the stored token must be renewed now: forced, or within the
    /// earliest point its jittered refresh could fall.
    pub(super) fn needs_renewal(&self, stored: &StoredToken, force_version: Option<u64>) -> bool {
        if force_version.is_some_and(|v| stored.version <= v) {
            return true;
        }
        let (Some(expires), issued) = (stored.record.expires_at_ms, stored.record.issued_at_ms)
        else {
            return false;
        };
        let to_time = |ms| std::time::UNIX_EPOCH + Duration::from_millis(ms);
        let earliest = self
            .timing
            .refresh_at(to_time(issued), to_time(expires), 1.0);
        self.clock.now() >= earliest
    }

    fn use_stored(&self, slot: &Slot, stored: &StoredToken) -> (AccessToken, FlightOutcome) {
        (
            self.cache_record(slot, stored),
            FlightOutcome::LoadedFromStore,
        )
    }

    pub(super) fn cache(&self, slot: &Slot, token: &Token, version: u64) -> AccessToken {
        let cached = super::cached::CachedToken::new(token, version, &self.timing);
        slot.current.store(Some(cached.clone()));
        slot.clear_backoff();
        AccessToken::owned(cached)
    }

    /// Caches `stored` if the slot still holds the token of `version` and
    /// no refresh or pending write of this process is under way on it.
    /// True if cached.
    pub(super) fn cache_record_if_unchanged(
        &self,
        slot: &Slot,
        version: u64,
        stored: &StoredToken,
    ) -> bool {
        let seen = slot.current.load();
        if seen.as_ref().map(super::cached::CachedToken::version) != Some(version)
            || slot.has_flight()
            || slot.has_pending()
        {
            return false;
        }
        let fresh = super::cached::CachedToken::new(
            &Token::from_record(stored.record.clone()),
            stored.version,
            &self.timing,
        );
        let previous = slot.current.compare_and_swap(&seen, Some(fresh));
        if !std::ptr::eq(RefCnt::as_ptr(&*previous), RefCnt::as_ptr(&*seen)) {
            return false;
        }
        slot.clear_backoff();
        crate::metrics::manager_refresh(
            &stored.record.provider,
            FlightOutcome::LoadedFromStore.as_str(),
        );
        true
    }

    pub(super) fn cache_record(&self, slot: &Slot, stored: &StoredToken) -> AccessToken {
        self.cache(
            slot,
            &Token::from_record(stored.record.clone()),
            stored.version,
        )
    }

    /// Backs off exponentially (with jitter) after a failed refresh, so a
    /// failing key does not trigger a request on every `get`. A provider's
    /// `Retry-After` lengthens the wait; a refresh in doubt shortens it to
    /// when the lease may be free (the store is re-read then).
    fn record_failure(&self, slot: &Slot, error: &Error) {
        if matches!(
            error,
            Error::RefreshDeferred {
                reason: DeferredReason::ShuttingDown,
                ..
            }
        ) {
            return;
        }
        let failures = slot.with_cold(|cold| {
            cold.failures = cold.failures.saturating_add(1);
            cold.last_error = Some(error.clone());
            cold.failures
        });
        let (first, max) = self.backoff;
        let exponent = failures.saturating_sub(1).min(20);
        let backoff = first.saturating_mul(1 << exponent).min(max);
        let backoff = backoff.mul_f64(0.5 + fastrand::f64() / 2.0);
        let delay = match (error, error.retry_after()) {
            // Another instance's refresh: look again when its lease may be
            // free (its token is then in the store), not later.
            (Error::RefreshDeferred { .. }, Some(after)) => backoff.min(after),
            (_, Some(after)) => backoff.max(after.min(Duration::from_secs(24 * 3600))),
            (_, None) => backoff,
        };
        let retry_at = self
            .clock
            .now_unix_ms()
            .saturating_add(delay.as_millis() as u64);
        slot.retry_at_ms.store(retry_at, Ordering::Relaxed);
        tracing::debug!(failures, retry_in_ms = delay.as_millis() as u64, error = %error, "refresh failed; backing off");
    }
}

fn not_authorized(key: &TokenKey) -> Error {
    Error::ReauthorizationRequired {
        provider: key.provider(),
        reason: ReauthorizationReason::NotAuthorized,
    }
}
