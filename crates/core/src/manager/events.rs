//! What the manager tells the application: a token was refreshed, or an
//! account must be authorized again.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use crate::error::Error;
use crate::store::TokenKey;
use crate::token::DisplayTime;

/// Something that happened to a key's token. No variant carries a secret.
#[non_exhaustive]
#[derive(Clone)]
pub enum TokenEvent {
    /// A new token was obtained (refreshed or re-acquired) and stored.
    Refreshed {
        /// The key.
        key: TokenKey,
        /// The store version written.
        version: u64,
        /// The new expiry, if known.
        expires_at: Option<SystemTime>,
        /// How many callers were waiting for this refresh besides the first.
        coalesced_waiters: usize,
    },
    /// The account must be authorized again (refresh token expired or
    /// rejected, and no newer token in the store).
    ReauthorizationRequired {
        /// The key.
        key: TokenKey,
        /// Why.
        error: Error,
    },
    /// A refresh failed for another reason (the old token, if still valid,
    /// keeps being served; the background refresher retries with backoff).
    RefreshFailed {
        /// The key.
        key: TokenKey,
        /// What failed.
        error: Error,
    },
    /// **Alert on this.** The provider issued a new token but the store did
    /// not take it (a database error). The manager serves the new token,
    /// keeps it in memory, keeps the key's refresh lease and retries the
    /// write with backoff; it never refreshes with the spent refresh token
    /// again. If the process ends first, the token is lost (see
    /// [`TokenManager::shutdown`](crate::manager::TokenManager::shutdown),
    /// which reports it). [`TokenEvent::StoreWriteRecovered`] follows when
    /// the write lands.
    StoreWriteFailed {
        /// The key.
        key: TokenKey,
        /// Why the write failed.
        error: Error,
        /// How many keys have a write pending now (this one included).
        pending_writes: usize,
    },
    /// A write that had failed ([`TokenEvent::StoreWriteFailed`]) landed.
    StoreWriteRecovered {
        /// The key.
        key: TokenKey,
        /// The store version written.
        version: u64,
        /// How many attempts it took after the first failure.
        attempts: u32,
        /// How long the token waited in memory.
        pending_for: Duration,
    },
    /// [`TokenManager::warm`](crate::manager::TokenManager::warm) could not
    /// read a stored token (a corrupt row, a missing decryption key): it is
    /// skipped, not cached, and left in the store as it is.
    StoredTokenUnreadable {
        /// The key.
        key: TokenKey,
        /// Why it could not be read.
        error: Error,
    },
}

impl fmt::Debug for TokenEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refreshed {
                key,
                version,
                expires_at,
                coalesced_waiters,
            } => f
                .debug_struct("Refreshed")
                .field("key", key)
                .field("version", version)
                .field("expires_at", &expires_at.map(DisplayTime))
                .field("coalesced_waiters", coalesced_waiters)
                .finish(),
            Self::ReauthorizationRequired { key, error } => f
                .debug_struct("ReauthorizationRequired")
                .field("key", key)
                .field("error", &error.to_string())
                .finish(),
            Self::RefreshFailed { key, error } => f
                .debug_struct("RefreshFailed")
                .field("key", key)
                .field("error", &error.to_string())
                .finish(),
            Self::StoreWriteFailed {
                key,
                error,
                pending_writes,
            } => f
                .debug_struct("StoreWriteFailed")
                .field("key", key)
                .field("error", &error.to_string())
                .field("pending_writes", pending_writes)
                .finish(),
            Self::StoreWriteRecovered {
                key,
                version,
                attempts,
                pending_for,
            } => f
                .debug_struct("StoreWriteRecovered")
                .field("key", key)
                .field("version", version)
                .field("attempts", attempts)
                .field("pending_for", pending_for)
                .finish(),
            Self::StoredTokenUnreadable { key, error } => f
                .debug_struct("StoredTokenUnreadable")
                .field("key", key)
                .field("error", &error.to_string())
                .finish(),
        }
    }
}

/// A callback run for every event, synchronously on the task that caused it:
/// keep it short (send to a channel for slow work). A hook that panics is
/// isolated: the panic is caught and logged, the other hooks and
/// subscribers still get the event, and the refresh is not affected.
pub type EventHook = Arc<dyn Fn(&TokenEvent) + Send + Sync>;

/// Delivers events to hooks and subscribers.
#[derive(Clone)]
pub(crate) struct EventBus {
    hooks: Vec<EventHook>,
    channel: broadcast::Sender<TokenEvent>,
}

impl EventBus {
    pub(crate) fn new(hooks: Vec<EventHook>, capacity: usize) -> Self {
        let (channel, _) = broadcast::channel(capacity.max(1));
        Self { hooks, channel }
    }

    pub(crate) fn emit(&self, event: TokenEvent) {
        match &event {
            TokenEvent::Refreshed {
                key,
                version,
                coalesced_waiters,
                ..
            } => {
                tracing::debug!(token.key = %key, token.version = version, coalesced_waiters, "token refreshed")
            }
            TokenEvent::ReauthorizationRequired { key, error } => {
                tracing::warn!(token.key = %key, error = %error, "re-authorization required")
            }
            TokenEvent::RefreshFailed { key, error } => {
                tracing::warn!(token.key = %key, error = %error, "token refresh failed")
            }
            TokenEvent::StoreWriteFailed {
                key,
                error,
                pending_writes,
            } => {
                tracing::warn!(token.key = %key, error = %error, pending_writes, "the store did not take a refreshed token; keeping it in memory and retrying")
            }
            TokenEvent::StoreWriteRecovered {
                key,
                version,
                attempts,
                pending_for,
            } => {
                tracing::info!(token.key = %key, token.version = version, attempts, pending_for_ms = pending_for.as_millis() as u64, "a pending token write landed")
            }
            TokenEvent::StoredTokenUnreadable { key, error } => {
                tracing::warn!(token.key = %key, error = %error, "a stored token could not be read; skipped")
            }
        }
        for hook in &self.hooks {
            if catch_unwind(AssertUnwindSafe(|| hook(&event))).is_err() {
                crate::metrics::hook_panic();
                tracing::error!("an on_event hook panicked; the panic was contained");
            }
        }
        // No subscriber is not an error.
        let _ = self.channel.send(event);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<TokenEvent> {
        self.channel.subscribe()
    }
}
