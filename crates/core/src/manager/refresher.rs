//! The background refresher: keeps many keys fresh before anyone asks.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::slot::SlotRef;
use super::{Inner, TokenManager};

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
        let every = config.every.max(Duration::from_millis(1));
        runtime.spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let manager = TokenManager { inner };
                if manager.is_shut_down() {
                    return;
                }
                manager.refresh_due_keys(&permits, max).await;
                drop(manager);
                tokio::time::sleep(every).await;
            }
        });
        Ok(())
    }
}

impl TokenManager {
    async fn refresh_due_keys(&self, permits: &Arc<Semaphore>, max: u32) {
        let now = self.inner.clock.now_unix_ms();
        let mut due: Vec<_> = {
            let slots = self.inner.slots.pin();
            slots
                .iter()
                .filter_map(|(key, slot)| {
                    let cached = slot.current.load();
                    let Some(cached) = cached.as_ref() else {
                        if !slot.in_backoff(now) && !slot.has_flight() && !slot.has_pending() {
                            if let Ok(Some((_, removed))) = slots.remove_if(key, |_, s| {
                                SlotRef::ptr_eq(s, slot) && s.current.load().is_none()
                            }) {
                                removed.mark_removed();
                            }
                        }
                        return None;
                    };
                    let due = !cached.is_fresh(now) && !slot.in_backoff(now) && !slot.has_flight();
                    due.then(|| {
                        (
                            cached.expires_at_ms().unwrap_or(u64::MAX),
                            key.clone(),
                            SlotRef::clone(slot),
                        )
                    })
                })
                .collect()
        };
        due.sort_unstable_by_key(|(expires, ..)| *expires);
        for (_, key, slot) in due {
            if self.is_shut_down() {
                break;
            }
            let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
                return;
            };
            let flight = self.inner.join_flight(&key, &slot, None, false);
            tokio::spawn(async move {
                let _ = flight.await;
                drop(permit);
            });
        }
        // Wait until every refresh started this round has finished.
        let _all_done = permits.acquire_many(max).await;
    }
}
