//! Writing a refreshed token, and keeping it when the store will not take
//! it: a token the provider has issued is never dropped.
//!
//! The first write happens in the flight. If it fails with an error (not a
//! version conflict), the token is cached and served, kept in the key's
//! slot as a [`PendingWrite`], and a writer task retries the write with
//! backoff while it keeps the key's lease; no flight refreshes from the
//! stored (spent) refresh token meanwhile: a flight under the lease takes
//! the pending token over and refreshes from it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use super::cached::AccessToken;
use super::flight::{next_id, FlightOutcome};
use super::slot::{PendingWrite, Slot, SlotRef};
use super::{Inner, TokenEvent};
use crate::error::{Error, ReauthorizationReason, Result};
use crate::store::{CasOutcome, LeaseRequest, StoredToken, TokenKey};
use crate::token::Token;

/// What a refresh started from: the stored token, or a token of ours the
/// store has not taken yet.
pub(super) struct Base {
    /// The token refreshed from.
    pub(super) token: Option<Token>,
    /// The stored version a write expects.
    pub(super) expected: Option<u64>,
    /// The access tokens the store may hold from this chain of refreshes
    /// (see [`PendingWrite::ours`]).
    ours: Vec<String>,
    /// The pending write it came from.
    pending: Option<PendingWrite>,
}

impl Base {
    pub(super) fn stored(stored: Option<StoredToken>) -> Self {
        let ours = stored
            .iter()
            .map(|s| s.record.access_token.clone())
            .collect();
        let expected = stored.as_ref().map(|s| s.version);
        Self {
            token: stored.map(|s| Token::from_record(s.record)),
            expected,
            ours,
            pending: None,
        }
    }

    pub(super) fn pending(mut pending: PendingWrite) -> Self {
        if let Some(writer) = pending.writer.take() {
            writer.abort();
        }
        Self {
            token: Some(pending.token.clone()),
            expected: pending.expected,
            ours: pending.ours.clone(),
            pending: Some(pending),
        }
    }

    pub(super) fn is_pending(&self) -> bool {
        self.pending.is_some()
    }
}

/// True when `stored` holds one of `ours` (see [`PendingWrite::ours`]).
fn is_ours(stored: &StoredToken, ours: &[String]) -> bool {
    ours.contains(&stored.record.access_token)
}

/// How many tokens of one chain are remembered (a chain grows by one per
/// refresh while the store is down: a long outage of short-lived tokens).
const CHAIN_MEMORY: usize = 64;

impl Inner {
    /// Writes `fresh` (compare-and-swap on the base's version, releasing the
    /// lease), then caches it. `received`: when the provider's answer
    /// arrived, for the persist-duration metric.
    pub(super) async fn persist(
        self: &Arc<Self>,
        key: &TokenKey,
        slot: &SlotRef,
        fresh: Token,
        base: Base,
        received: Instant,
    ) -> Result<(AccessToken, FlightOutcome)> {
        let record = fresh.to_record();
        let mut expected = base.expected;
        let taken_over = base.pending.as_ref().map(|p| (p.attempts, p.since));
        for _ in 0..4 {
            let outcome = self
                .store
                .compare_and_swap_releasing(key, expected, &record, &self.holder)
                .await;
            match outcome {
                Ok(CasOutcome::Written { version }) => {
                    crate::metrics::persist_duration(&key.provider(), received.elapsed());
                    let access = self.cache(slot, &fresh, version);
                    if let Some((attempts, since)) = taken_over {
                        // Reported before the count drops: a caller that
                        // sees no pending write has seen its recovery.
                        self.events.emit(TokenEvent::StoreWriteRecovered {
                            key: key.clone(),
                            version,
                            attempts: attempts + 1,
                            pending_for: since.elapsed(),
                        });
                        self.pending_write_done();
                    }
                    self.events.emit(TokenEvent::Refreshed {
                        key: key.clone(),
                        version,
                        expires_at: fresh.expires_at,
                        coalesced_waiters: slot.waiters(),
                    });
                    return Ok((access, FlightOutcome::Refreshed));
                }
                Ok(CasOutcome::Conflict {
                    current: Some(current),
                }) if is_ours(&current, &base.ours) => {
                    // Our own earlier write landed: the row is what we
                    // refreshed from, under a newer version.
                    expected = Some(current.version);
                }
                Ok(CasOutcome::Conflict {
                    current: Some(newer),
                }) => {
                    tracing::warn!(token.key = %key, "the stored token changed during the refresh (a new sign-in?); keeping the stored one");
                    if taken_over.is_some() {
                        self.pending_write_done();
                    }
                    self.release_lease(key).await;
                    return Ok((
                        self.cache_record(slot, &newer),
                        FlightOutcome::LoadedFromStore,
                    ));
                }
                Ok(CasOutcome::Conflict { current: None }) => {
                    tracing::warn!(token.key = %key, "the key was removed during the refresh; the new token is dropped with it");
                    if taken_over.is_some() {
                        self.pending_write_done();
                    }
                    self.release_lease(key).await;
                    return Err(Error::ReauthorizationRequired {
                        provider: key.provider(),
                        reason: ReauthorizationReason::NotAuthorized,
                    });
                }
                Err(error) => {
                    let access = self.keep_pending(key, slot, fresh, expected, base, error);
                    return Ok((access, FlightOutcome::RefreshedPendingWrite));
                }
            }
        }
        let error = Error::Store {
            message: format!("the stored token for {key} kept changing during the write"),
            source: None,
        };
        let access = self.keep_pending(key, slot, fresh, expected, base, error);
        Ok((access, FlightOutcome::RefreshedPendingWrite))
    }

    /// Caches `fresh`, records it as a pending write and starts its writer.
    fn keep_pending(
        self: &Arc<Self>,
        key: &TokenKey,
        slot: &SlotRef,
        fresh: Token,
        expected: Option<u64>,
        base: Base,
        error: Error,
    ) -> AccessToken {
        // The version the write will give it (every store adds one).
        let provisional = expected.unwrap_or(0) + 1;
        let access = self.cache(slot, &fresh, provisional);
        let fresh_access = fresh.access_token.expose_secret().to_owned();
        let since = base.pending.as_ref().map_or_else(Instant::now, |p| p.since);
        let pending = PendingWrite {
            id: next_id(),
            token: fresh,
            expected,
            ours: {
                let mut ours = base.ours;
                ours.push(fresh_access);
                if ours.len() > CHAIN_MEMORY {
                    ours.remove(0);
                }
                ours
            },
            since,
            attempts: 0,
            writer: None,
        };
        if base.pending.is_none() {
            let count = self.pending_writes.fetch_add(1, Ordering::Relaxed) + 1;
            crate::metrics::pending_writes(count);
        }
        self.start_writer(key, slot, pending);
        self.events.emit(TokenEvent::StoreWriteFailed {
            key: key.clone(),
            error,
            pending_writes: self.pending_writes.load(Ordering::Relaxed),
        });
        access
    }

    /// Puts a pending write taken over by a failed flight back, with a new writer.
    pub(super) fn restore_pending(self: &Arc<Self>, key: &TokenKey, slot: &SlotRef, base: Base) {
        if let Some(pending) = base.pending {
            self.start_writer(key, slot, pending);
        }
    }

    fn start_writer(self: &Arc<Self>, key: &TokenKey, slot: &SlotRef, mut pending: PendingWrite) {
        let id = pending.id;
        slot.with_cold(|cold| {
            let task = self.tasks.spawn(Arc::clone(self).write_pending(
                key.clone(),
                SlotRef::clone(slot),
                id,
            ));
            pending.writer = Some(task.abort_handle());
            cold.pending = Some(pending);
        });
    }

    /// Takes the key's pending write (stopping its writer), if any.
    pub(super) fn take_pending(&self, slot: &Slot) -> Option<PendingWrite> {
        slot.with_cold(|cold| cold.pending.take())
    }

    /// Abandons the key's pending write (a new sign-in or a removal
    /// superseded it). True if there was one (its lease is still held).
    pub(super) fn drop_pending(&self, slot: &Slot) -> bool {
        let Some(mut pending) = self.take_pending(slot) else {
            return false;
        };
        if let Some(writer) = pending.writer.take() {
            writer.abort();
        }
        self.pending_write_done();
        true
    }

    pub(super) fn pending_write_done(&self) {
        let count = self.pending_writes.fetch_sub(1, Ordering::Relaxed) - 1;
        crate::metrics::pending_writes(count);
    }

    /// The writer: retries the pending write `id` with backoff (100 ms
    /// doubling to 5 s, jittered) and keeps the lease meanwhile, until it
    /// lands, is superseded, or is taken over by a flight.
    async fn write_pending(self: Arc<Self>, key: TokenKey, slot: SlotRef, id: u64) {
        let request = LeaseRequest {
            holder: &self.holder,
            ttl: self.lease_ttl,
            in_doubt_grace: self.in_doubt_grace,
        };
        let write = std::pin::pin!(self.retry_pending(&key, &slot, id));
        let heartbeat = std::pin::pin!(self.extend_lease_forever(&key, &request));
        let _ = futures_util::future::select(write, heartbeat).await;
    }

    async fn retry_pending(&self, key: &TokenKey, slot: &Slot, id: u64) {
        let mut delay = Duration::from_millis(100);
        loop {
            tokio::time::sleep(delay.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            let current = slot.with_cold(|cold| {
                let pending = cold.pending.as_mut().filter(|p| p.id == id)?;
                pending.attempts += 1;
                Some((
                    pending.token.to_record(),
                    pending.expected,
                    pending.ours.clone(),
                ))
            });
            let Some((record, expected, ours)) = current else {
                return;
            };
            let outcome = self
                .store
                .compare_and_swap_releasing(key, expected, &record, &self.holder)
                .await;
            let landed = match outcome {
                Ok(CasOutcome::Written { version }) => Some(version),
                Ok(CasOutcome::Conflict {
                    current: Some(current),
                }) if current.record.access_token == record.access_token => {
                    self.release_lease(key).await;
                    Some(current.version)
                }
                Ok(CasOutcome::Conflict {
                    current: Some(current),
                }) if is_ours(&current, &ours) => {
                    slot.with_cold(|cold| {
                        if let Some(p) = cold.pending.as_mut().filter(|p| p.id == id) {
                            p.expected = Some(current.version);
                        }
                    });
                    delay = Duration::from_millis(100);
                    continue;
                }
                Ok(CasOutcome::Conflict { current }) => {
                    self.pending_superseded(key, slot, id, current.as_deref())
                        .await;
                    return;
                }
                Err(error) => {
                    tracing::debug!(token.key = %key, error = %error, "a pending token write failed again");
                    continue;
                }
            };
            if let Some(version) = landed {
                self.pending_landed(key, slot, id, version);
                return;
            }
        }
    }

    fn pending_landed(&self, key: &TokenKey, slot: &Slot, id: u64, version: u64) {
        let Some(pending) = slot.with_cold(|cold| cold.pending.take_if(|p| p.id == id)) else {
            return;
        };
        self.cache(slot, &pending.token, version);
        // Reported before the count drops (see `persist`).
        self.events.emit(TokenEvent::StoreWriteRecovered {
            key: key.clone(),
            version,
            attempts: pending.attempts,
            pending_for: pending.since.elapsed(),
        });
        self.pending_write_done();
        self.events.emit(TokenEvent::Refreshed {
            key: key.clone(),
            version,
            expires_at: pending.token.expires_at,
            coalesced_waiters: 0,
        });
    }

    async fn pending_superseded(
        &self,
        key: &TokenKey,
        slot: &Slot,
        id: u64,
        current: Option<&StoredToken>,
    ) {
        if slot
            .with_cold(|cold| cold.pending.take_if(|p| p.id == id))
            .is_none()
        {
            return;
        }
        self.pending_write_done();
        self.release_lease(key).await;
        match current {
            Some(newer) => {
                tracing::warn!(token.key = %key, "a pending token write was superseded by a newer stored token (a new sign-in?); keeping the stored one");
                self.cache_record(slot, newer);
            }
            None => {
                tracing::warn!(token.key = %key, "a pending token write was abandoned: the key was removed");
                slot.current.store(None);
            }
        }
    }
}
