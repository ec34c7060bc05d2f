//! Starting and stopping: loading the stored tokens, and a shutdown that
//! lets refreshes finish and writes land before the process exits.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{TokenEvent, TokenManager};
use crate::error::Error;
use crate::store::TokenKey;
use crate::token::Token;

/// How many stored tokens [`TokenManager::warm`] reads per store call.
pub(crate) const WARM_PAGE: usize = 10_000;

/// What [`TokenManager::warm`] loaded.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct WarmReport {
    /// How many stored tokens were cached.
    pub loaded: usize,
    /// The stored tokens that could not be read (skipped, left in the store
    /// as they are; each also reported as
    /// [`TokenEvent::StoredTokenUnreadable`]).
    pub unreadable: Vec<UnreadableToken>,
}

/// A stored token [`TokenManager::warm`] could not read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UnreadableToken {
    /// Its key.
    pub key: TokenKey,
    /// Why (a corrupt row, a missing decryption key, the store failing).
    pub error: Error,
}

/// What [`TokenManager::shutdown`] could not finish by its deadline.
#[derive(Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Tokens the provider issued that the store never took (its writes
    /// kept failing). They are handed over here so the application can keep
    /// them some other way; once the process exits they are lost, and with
    /// them the account's grant at providers that rotate refresh tokens.
    pub unpersisted: Vec<UnpersistedToken>,
    /// Refreshes still waiting for the provider at the deadline, abandoned.
    /// If the provider had already rotated the refresh token, that token is
    /// lost.
    pub abandoned_refreshes: Vec<TokenKey>,
    /// How long the shutdown took.
    pub took: Duration,
}

impl ShutdownReport {
    /// True when every refresh finished and every token was stored.
    pub fn is_clean(&self) -> bool {
        self.unpersisted.is_empty() && self.abandoned_refreshes.is_empty()
    }
}

impl fmt::Debug for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownReport")
            .field(
                "unpersisted",
                &self.unpersisted.iter().map(|u| &u.key).collect::<Vec<_>>(),
            )
            .field("abandoned_refreshes", &self.abandoned_refreshes)
            .field("took", &self.took)
            .finish()
    }
}

/// A token the store never took, with its key (see [`ShutdownReport`]).
/// Its `Debug` redacts the secrets.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UnpersistedToken {
    /// The key it belongs to.
    pub key: TokenKey,
    /// The token, secrets included: store it with
    /// [`TokenManager::insert`] (on the next start, say) to recover.
    pub token: Token,
}

impl TokenManager {
    /// Loads every stored key into the cache (for the background refresher
    /// after a restart), a page of 10,000 tokens per store call
    /// ([`TokenStore::load_page`](crate::TokenStore::load_page); a store
    /// that cannot page lists its keys and loads each). A row that cannot be
    /// read is skipped and reported (in the result and as a
    /// [`TokenEvent::StoredTokenUnreadable`]); the others load. Fails only
    /// when the store cannot list (or page through) its tokens; what was
    /// loaded until then stays cached.
    pub async fn warm(&self) -> crate::Result<WarmReport> {
        let mut report = WarmReport::default();
        let mut after: Option<String> = None;
        loop {
            let Some(page) = self
                .inner
                .store
                .load_page(after.as_deref(), WARM_PAGE)
                .await?
            else {
                return self.warm_key_by_key(report).await;
            };
            for (key, stored) in page.tokens {
                self.warmed(&mut report, key, stored.map(Some));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(report),
            }
        }
    }

    /// [`TokenManager::warm`] on a store that cannot page.
    async fn warm_key_by_key(&self, mut report: WarmReport) -> crate::Result<WarmReport> {
        for key in self.inner.store.keys().await? {
            let stored = self.inner.store.load(&key).await;
            self.warmed(&mut report, key, stored);
        }
        Ok(report)
    }

    /// Caches one stored token read by `warm`, or reports it unreadable.
    fn warmed(
        &self,
        report: &mut WarmReport,
        key: TokenKey,
        stored: crate::Result<Option<crate::store::StoredToken>>,
    ) {
        match stored {
            Ok(Some(stored)) => {
                let slot = self.inner.slot(&key);
                if !slot.has_pending() {
                    self.inner.cache_record(&slot, &stored);
                }
                report.loaded += 1;
            }
            Ok(None) => {}
            Err(error) => {
                self.inner.events.emit(TokenEvent::StoredTokenUnreadable {
                    key: key.clone(),
                    error: error.clone(),
                });
                report.unreadable.push(UnreadableToken { key, error });
            }
        }
    }

    /// Stops the manager cleanly: starts no new refresh (callers of
    /// expired keys get [`Error::RefreshDeferred`] with `ShuttingDown`;
    /// fresh cached tokens are still served), stops the background
    /// refresher, waits up to `deadline` for the refreshes in flight and
    /// the pending writes, then abandons what is left and reports it.
    /// Call it on Ctrl-C / SIGTERM, before the runtime ends: a refresh
    /// still running when the process exits loses its rotated token.
    ///
    /// Give it a deadline longer than the providers' longest request
    /// ([`Renewal::worst_case`](crate::Renewal::worst_case)) so a refresh just sent can finish.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let started = Instant::now();
        self.inner.closing.store(true, Ordering::Release);
        self.inner.tasks.close();
        if tokio::time::timeout(deadline, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                deadline_ms = deadline.as_millis() as u64,
                "shutdown deadline reached with refreshes or writes unfinished"
            );
        }
        let mut report = ShutdownReport::default();
        {
            let slots = self.inner.slots.pin();
            for (key, slot) in slots.iter() {
                if let Some(flight) = slot.with_cold(|cold| cold.flight.take()) {
                    flight.abort.abort();
                    report.abandoned_refreshes.push(key.clone());
                }
                if let Some(mut pending) = self.inner.take_pending(slot) {
                    if let Some(writer) = pending.writer.take() {
                        writer.abort();
                    }
                    self.inner.pending_write_done();
                    report.unpersisted.push(UnpersistedToken {
                        key: key.clone(),
                        token: pending.token,
                    });
                }
            }
        }
        for unpersisted in &report.unpersisted {
            tracing::error!(token.key = %unpersisted.key, "shutdown: a refreshed token was never stored");
        }
        report.took = started.elapsed();
        report
    }

    /// True once [`TokenManager::shutdown`] has been called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.closing.load(Ordering::Acquire)
    }
}
