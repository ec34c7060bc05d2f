//! One refresh of one key: single flight in the process, a lease across
//! processes, persist before publish.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tracing::Instrument;

use super::cached::{unix_ms, AccessToken, CachedToken};
use super::{FlightFuture, Inner, Renewer, Slot, TokenEvent};
use crate::error::{Error, ReauthorizationReason, Result};
use crate::store::{CasOutcome, LeaseOutcome, LeaseRequest, StoredToken, TokenKey};
use crate::token::Token;

/// How a flight that succeeded got its token.
#[derive(Debug, Clone, Copy)]
enum FlightOutcome {
    /// From the provider.
    Refreshed,
    /// From the store: another instance had already refreshed.
    LoadedFromStore,
}

impl FlightOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Refreshed => "refreshed",
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

impl Inner {
    pub(super) fn slot(&self, key: &TokenKey) -> Arc<Slot> {
        let slots = self.slots.pin();
        if let Some(slot) = slots.get(key) {
            return slot.clone();
        }
        slots
            .get_or_insert_with(key.clone(), Default::default)
            .clone()
    }

    /// Joins the key's refresh in flight, or starts one on its own task.
    /// `force_version`: renew even a fresh token if its version is at most this.
    pub(super) fn join_flight(
        self: &Arc<Self>,
        key: &TokenKey,
        slot: &Arc<Slot>,
        force_version: Option<u64>,
        waiting: bool,
    ) -> FlightFuture {
        let mut flight = slot.flight();
        if let Some(running) = flight.as_ref() {
            if waiting {
                let waiters = slot.waiters.fetch_add(1, Ordering::Relaxed) + 1;
                crate::metrics::coalesced_waiter(&key.provider());
                tracing::trace!(token.key = %key, waiters, "joined the refresh in flight");
            }
            return running.clone();
        }
        slot.waiters.store(0, Ordering::Relaxed);
        let task = {
            let inner = Arc::clone(self);
            let key = key.clone();
            let slot = Arc::clone(slot);
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
            tokio::spawn(
                async move {
                    let started = Instant::now();
                    let result = inner.run_flight(&key, &slot, force_version).await;
                    let outcome = match &result {
                        Ok((_, outcome)) => outcome.as_str(),
                        Err(error) if error.requires_reauthorization() => {
                            "reauthorization_required"
                        }
                        Err(_) => "failed",
                    };
                    let span = tracing::Span::current();
                    span.record("outcome", outcome);
                    span.record("coalesced_waiters", slot.waiters.load(Ordering::Relaxed));
                    span.record("duration_ms", started.elapsed().as_millis() as u64);
                    crate::metrics::manager_refresh(&key.provider(), outcome);
                    if let Err(error) = &result {
                        inner.record_failure(&slot, error);
                    }
                    *slot.flight() = None;
                    result.map(|(access, _)| access)
                }
                .instrument(span),
            )
        };
        let shared = async move {
            task.await.unwrap_or_else(|_| {
                Err(Error::Store {
                    message: "the refresh task ended unexpectedly".into(),
                    source: None,
                })
            })
        }
        .boxed()
        .shared();
        *flight = Some(shared.clone());
        shared
    }

    async fn run_flight(
        &self,
        key: &TokenKey,
        slot: &Slot,
        force_version: Option<u64>,
    ) -> Result<(AccessToken, FlightOutcome)> {
        let from_store = |stored: &StoredToken| {
            (
                self.cache_record(slot, stored),
                FlightOutcome::LoadedFromStore,
            )
        };
        let stored = self.store.load(key).await?;
        if let Some(stored) = stored
            .as_ref()
            .filter(|s| !self.needs_renewal(s, force_version))
        {
            return Ok(from_store(stored));
        }
        let renewer = self.renewers.get(&key.provider()).cloned().ok_or_else(|| {
            Error::configuration(format!(
                "no renewer is registered for the provider of {key}"
            ))
        })?;
        if stored.is_none() && matches!(renewer, Renewer::RefreshToken(_)) {
            return Err(Error::ReauthorizationRequired {
                provider: key.provider(),
                reason: ReauthorizationReason::NotAuthorized,
            });
        }
        let stored = match self.acquire_lease(key, force_version).await? {
            Leased::Fresh(stored) => return Ok(from_store(&stored)),
            Leased::Acquired(stored) => stored,
        };
        let result = self
            .renew_and_store(key, slot, &renewer, stored)
            .await
            .map(|access| (access, FlightOutcome::Refreshed));
        if let Err(error) = self.store.release_lease(key, &self.holder).await {
            tracing::warn!(token.key = %key, error = %error, "could not release the refresh lease; it will expire");
        }
        result
    }

    /// Takes the key's refresh lease, or waits until its holder has stored a
    /// fresh token or the lease lapses.
    async fn acquire_lease(&self, key: &TokenKey, force_version: Option<u64>) -> Result<Leased> {
        let started = Instant::now();
        let max_wait = self.lease_ttl * 2;
        loop {
            let request = LeaseRequest {
                holder: &self.holder,
                ttl: self.lease_ttl,
                in_doubt_grace: Duration::ZERO,
            };
            match self.store.try_acquire_lease(key, &request).await? {
                LeaseOutcome::Acquired { current: latest } => {
                    // Read under the lease: another instance may have just finished.
                    if let Some(stored) = latest
                        .clone()
                        .filter(|s| !self.needs_renewal(s, force_version))
                    {
                        let _ = self.store.release_lease(key, &self.holder).await;
                        return Ok(Leased::Fresh(stored));
                    }
                    return Ok(Leased::Acquired(latest));
                }
                LeaseOutcome::InDoubt { retry_after, .. } => {
                    return Err(Error::Store {
                        message: format!(
                            "another instance's refresh of {key} is in doubt; retry in {} ms",
                            retry_after.as_millis()
                        ),
                        source: None,
                    });
                }
                LeaseOutcome::HeldByOther { remaining, .. } => {
                    if started.elapsed() > max_wait {
                        return Err(Error::Store {
                            message: format!(
                                "gave up waiting for another instance's refresh of {key}"
                            ),
                            source: None,
                        });
                    }
                    tokio::time::sleep(
                        remaining.min(self.lease_poll).max(Duration::from_millis(1)),
                    )
                    .await;
                    if let Some(stored) = self.store.load(key).await? {
                        if !self.needs_renewal(&stored, force_version) {
                            return Ok(Leased::Fresh(stored));
                        }
                    }
                }
            }
        }
    }

    async fn renew_and_store(
        &self,
        key: &TokenKey,
        slot: &Slot,
        renewer: &Renewer,
        stored: Option<StoredToken>,
    ) -> Result<AccessToken> {
        let current = stored
            .as_ref()
            .map(|s| Token::from_record(s.record.clone()));
        let expected = stored.as_ref().map(|s| s.version);
        let fresh = match renewer.renew(key, current.as_ref()).await {
            Ok(fresh) => fresh,
            Err(error) if error.requires_reauthorization() => {
                // Another instance may have rotated the token a moment ago.
                if let Some(latest) = self.store.load(key).await? {
                    if Some(latest.version) != expected && !self.needs_renewal(&latest, None) {
                        return Ok(self.cache_record(slot, &latest));
                    }
                }
                self.events.emit(TokenEvent::ReauthorizationRequired {
                    key: key.clone(),
                    error: error.clone(),
                });
                return Err(error);
            }
            Err(error) => {
                self.events.emit(TokenEvent::RefreshFailed {
                    key: key.clone(),
                    error: error.clone(),
                });
                return Err(error);
            }
        };
        // Persist first: nobody sees the new token before the store has it.
        match self
            .store
            .compare_and_swap(key, expected, &fresh.to_record())
            .await?
        {
            CasOutcome::Written { version } => {
                let access = self.cache(slot, &fresh, version);
                self.events.emit(TokenEvent::Refreshed {
                    key: key.clone(),
                    version,
                    expires_at: fresh.expires_at,
                    coalesced_waiters: slot.waiters.load(Ordering::Relaxed),
                });
                Ok(access)
            }
            CasOutcome::Conflict {
                current: Some(newer),
            } => {
                tracing::warn!(token.key = %key, "the stored token changed during the refresh (a new sign-in?); keeping the stored one");
                Ok(self.cache_record(slot, &newer))
            }
            CasOutcome::Conflict { current: None } => Err(Error::ReauthorizationRequired {
                provider: key.provider(),
                reason: ReauthorizationReason::NotAuthorized,
            }),
        }
    }

    /// True when the stored token must be renewed now: forced, or within the
    /// earliest point its jittered refresh could fall.
    fn needs_renewal(&self, stored: &StoredToken, force_version: Option<u64>) -> bool {
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

    pub(super) fn cache(&self, slot: &Slot, token: &Token, version: u64) -> AccessToken {
        let cached = Arc::new(CachedToken::new(token, version, &self.timing));
        slot.current.store(Some(Arc::clone(&cached)));
        slot.failures.store(0, Ordering::Relaxed);
        slot.retry_at_ms.store(0, Ordering::Relaxed);
        AccessToken(cached)
    }

    pub(super) fn cache_record(&self, slot: &Slot, stored: &StoredToken) -> AccessToken {
        self.cache(
            slot,
            &Token::from_record(stored.record.clone()),
            stored.version,
        )
    }

    /// Backs off exponentially (with jitter) after a failed refresh, so a
    /// failing key does not trigger a request on every `get`.
    fn record_failure(&self, slot: &Slot, error: &Error) {
        let failures = slot
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let (first, max) = self.backoff;
        let exponent = failures.saturating_sub(1).min(20);
        let delay = first.saturating_mul(1 << exponent).min(max);
        let delay = delay.mul_f64(0.5 + fastrand::f64() / 2.0);
        let retry_at = unix_ms(self.clock.now()).saturating_add(delay.as_millis() as u64);
        slot.retry_at_ms.store(retry_at, Ordering::Relaxed);
        tracing::debug!(failures, retry_in_ms = delay.as_millis() as u64, error = %error, "refresh failed; backing off");
    }
}
