//! The background refresher: keeps many keys fresh before anyone asks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::cached::unix_ms;
use super::TokenManager;

/// How the background refresher works.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct RefresherConfig {
    /// How often it looks for keys due for refresh (default 1 s).
    pub tick: Duration,
    /// At most this many refreshes in flight at once, across all keys
    /// (default 16): a wave of expiring tokens never hammers the provider.
    pub max_concurrent: usize,
}

impl Default for RefresherConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            max_concurrent: 16,
        }
    }
}

impl RefresherConfig {
    /// Sets [`RefresherConfig::tick`].
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Sets [`RefresherConfig::max_concurrent`].
    pub fn with_max_concurrent(mut self, max: usize) -> Self {
        self.max_concurrent = max.max(1);
        self
    }
}

/// The running background refresher; stops when dropped.
#[derive(Debug)]
pub struct BackgroundRefresher {
    task: JoinHandle<()>,
}

impl Drop for BackgroundRefresher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TokenManager {
    /// Starts refreshing every cached key that is due, soonest expiry first,
    /// with at most `config.max_concurrent` refreshes at once. Keys whose
    /// refresh failed are retried after an exponential backoff with jitter.
    /// Call [`TokenManager::warm`] first to include every stored key. It
    /// stops when dropped or when the manager shuts down
    /// ([`TokenManager::shutdown`]). It also drops the slots of keys that
    /// have no token once their backoff is over.
    pub fn spawn_background_refresher(&self, config: RefresherConfig) -> BackgroundRefresher {
        let manager = self.clone();
        let max = u32::try_from(config.max_concurrent.max(1)).unwrap_or(u32::MAX);
        let permits = Arc::new(Semaphore::new(max as usize));
        let tick = config.tick.max(Duration::from_millis(1));
        let task = tokio::spawn(async move {
            while !manager.is_shut_down() {
                manager.refresh_due_keys(&permits, max).await;
                tokio::time::sleep(tick).await;
            }
        });
        BackgroundRefresher { task }
    }

    async fn refresh_due_keys(&self, permits: &Arc<Semaphore>, max: u32) {
        let now = unix_ms(self.inner.clock.now());
        let mut due: Vec<_> = {
            let slots = self.inner.slots.pin();
            slots
                .iter()
                .filter_map(|(key, slot)| {
                    let cached = slot.current.load();
                    let Some(cached) = cached.as_ref() else {
                        if !slot.in_backoff(now) && slot.flight().is_none() && !slot.has_pending() {
                            let _ = slots.remove_if(key, |_, s| {
                                Arc::ptr_eq(s, slot) && s.current.load().is_none()
                            });
                        }
                        return None;
                    };
                    let due =
                        !cached.is_fresh(now) && !slot.in_backoff(now) && slot.flight().is_none();
                    due.then(|| {
                        (
                            cached.expires_at_ms().unwrap_or(u64::MAX),
                            key.clone(),
                            Arc::clone(slot),
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
