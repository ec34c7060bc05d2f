//! The background refresher: keeps many keys fresh before anyone asks.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::slot::SlotRef;
use super::{Inner, TokenManager};
use crate::store::{KeyHashBuilder, StoredToken, TokenKey};

/// The pause after a round that started refreshes (else the configured
/// period).
const BUSY_PAUSE: Duration = Duration::from_millis(100);

/// The background refresher's settings
/// ([`TokenManagerBuilder::refresh_in_background`](super::TokenManagerBuilder::refresh_in_background)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackgroundRefresh {
    /// How often it looks for keys due for refresh.
    pub(crate) every: Duration,
    /// At most this many refreshes in flight at once, across all keys.
    pub(crate) max_concurrent: usize,
}

impl Inner {
    /// Starts the background refresher on the current Tokio runtime. It
    /// holds the manager weakly: it stops when the last handle is dropped,
    /// or at [`TokenManager::shutdown`].
    pub(crate) fn start_background_refresh(
        self: &Arc<Self>,
        config: BackgroundRefresh,
    ) -> crate::Result<()> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            crate::Error::configuration(
                "refresh_in_background needs a Tokio runtime: build the manager inside one",
            )
        })?;
        let weak: Weak<Inner> = Arc::downgrade(self);
        let max = u32::try_from(config.max_concurrent.max(1)).unwrap_or(u32::MAX);
        let permits = Arc::new(Semaphore::new(max as usize));
        let _ = self.background_permits.set(Arc::clone(&permits));
        let every = config.every.max(Duration::from_millis(1));
        let order = foldhash::fast::RandomState::default();
        runtime.spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let manager = TokenManager { inner };
                if manager.is_shut_down() {
                    return;
                }
                let started = manager.refresh_due_keys(&permits, max, &order).await;
                drop(manager);
                // After a round with work, look again soon: keys fall due
                // meanwhile, and the next round finds them.
                let pause = if started == 0 {
                    every
                } else {
                    every.min(BUSY_PAUSE)
                };
                tokio::time::sleep(pause).await;
            }
        });
        Ok(())
    }
}

impl Inner {
    /// Starts a refresh of `key` ahead of its expiry (its cached token is
    /// due but valid) for a read that does not wait, inside a Tokio runtime.
    /// With the background refresher running, only within its cap: when
    /// every permit is taken, the refresher gets to the key itself.
    pub(super) fn refresh_ahead(self: &Arc<Self>, key: &TokenKey, slot: &SlotRef) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let Some(permits) = self.background_permits.get() else {
            drop(self.join_flight(key, slot, None, false));
            return;
        };
        let Ok(permit) = Arc::clone(permits).try_acquire_owned() else {
            return;
        };
        self.refresh_holding(key, slot, permit);
    }

    /// Starts (or joins) `key`'s refresh ahead of expiry, holding `permit`
    /// of the background cap until it ends.
    fn refresh_holding(
        self: &Arc<Self>,
        key: &TokenKey,
        slot: &SlotRef,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let flight = self.join_flight(key, slot, None, false);
        tokio::spawn(async move {
            let _ = flight.await;
            drop(permit);
        });
    }
}

impl TokenManager {
    /// One round: every key due now, most urgent first (by the second its
    /// token expires; within a second in an order of this manager's own, so
    /// that instances sharing a store do not all start on the same keys),
    /// in batches whose stored rows are read first (one round trip where
    /// the store can): a key another instance has refreshed meanwhile is
    /// taken from its row, without a refresh. Returns how many refreshes
    /// it started.
    async fn refresh_due_keys(
        &self,
        permits: &Arc<Semaphore>,
        max: u32,
        order: &foldhash::fast::RandomState,
    ) -> usize {
        let now = self.inner.clock.now_unix_ms();
        let mut due: Vec<Due> = {
            let slots = self.inner.slots.pin();
            slots
                .iter()
                .filter_map(|(key, slot)| {
                    let cached = slot.current.load();
                    let Some(cached) = cached.as_ref() else {
                        if Inner::is_idle_tokenless(slot, now) {
                            self.inner.remove_slot_if_tokenless(key, slot);
                        }
                        return None;
                    };
                    let due = !cached.is_fresh(now) && !slot.in_backoff(now) && !slot.has_flight();
                    due.then(|| Due {
                        rank: (
                            cached.expires_at_ms().map_or(u64::MAX, |ms| ms / 1000),
                            order.hash_one(key.as_str()),
                        ),
                        version: cached.version(),
                        key: key.clone(),
                        slot: SlotRef::clone(slot),
                    })
                })
                .collect()
        };
        due.sort_unstable_by_key(|due| due.rank);
        let batch = (max as usize).clamp(16, 256);
        let mut started = 0;
        for chunk in due.chunks(batch) {
            if self.is_shut_down() {
                break;
            }
            let refreshed_elsewhere = self.inner.taken_from_store(chunk).await;
            for (i, due) in chunk.iter().enumerate() {
                if refreshed_elsewhere.get(i).copied().unwrap_or(false) {
                    continue;
                }
                if self.is_shut_down() {
                    break;
                }
                let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
                    return started;
                };
                self.inner.refresh_holding(&due.key, &due.slot, permit);
                started += 1;
            }
        }
        // Wait until every refresh started this round has finished.
        let _all_done = permits.acquire_many(max).await;
        started
    }
}

/// A key the refresher found due.
struct Due {
    /// Its order: the second its token expires, then this manager's hash.
    rank: (u64, u64),
    /// The cached token's version when it was found due.
    version: u64,
    key: TokenKey,
    slot: SlotRef,
}

impl Inner {
    /// Reads the stored rows of `batch` in one call and caches each that
    /// another instance has refreshed (newer than the cached token, and not
    /// due): true at its index. All false when the store cannot batch or
    /// the read failed (each refresh then checks its own key).
    async fn taken_from_store(&self, batch: &[Due]) -> Vec<bool> {
        let keys: Vec<TokenKey> = batch.iter().map(|due| due.key.clone()).collect();
        let rows = match self.store.load_many(&keys).await {
            Ok(Some(rows)) => rows,
            Ok(None) => return Vec::new(),
            Err(error) => {
                tracing::debug!(error = %error, "could not read a batch of due tokens; refreshing each");
                return Vec::new();
            }
        };
        let mut stored: HashMap<TokenKey, StoredToken, KeyHashBuilder> =
            HashMap::with_capacity_and_hasher(rows.len(), KeyHashBuilder);
        stored.extend(
            rows.into_iter()
                .filter_map(|(key, row)| Some((key, row.ok()?))),
        );
        batch
            .iter()
            .map(|due| {
                stored.get(&due.key).is_some_and(|row| {
                    row.version > due.version
                        && !self.needs_renewal(row, None)
                        && self.cache_record_if_unchanged(&due.slot, due.version, row)
                })
            })
            .collect()
    }
}
