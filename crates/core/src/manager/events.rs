//! What the manager tells the application: a token was refreshed, or an
//! account must be authorized again.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

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
        }
    }
}

/// A callback run for every event, synchronously on the task that caused it:
/// keep it short (send to a channel for slow work).
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
        }
        for hook in &self.hooks {
            hook(&event);
        }
        // No subscriber is not an error.
        let _ = self.channel.send(event);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<TokenEvent> {
        self.channel.subscribe()
    }
}
