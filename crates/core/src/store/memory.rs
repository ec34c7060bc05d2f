//! The in-memory store: the default, for one process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{CasOutcome, LeaseOutcome, LeaseRequest, StoredToken, TokenKey, TokenStore};
use crate::error::Result;
use crate::token::TokenRecord;

/// Tokens in a `HashMap` behind a mutex (held only for the map operation,
/// never across an `.await`). Nothing survives the process.
///
/// It keeps refresh leases like the shared stores do, so several managers
/// in one process may share one `MemoryStore` and still refresh each key
/// once.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tokens: HashMap<TokenKey, StoredToken>,
    leases: HashMap<TokenKey, Lease>,
}

/// A refresh lease: who holds it, until when, for which stored version.
#[derive(Debug)]
struct Lease {
    holder: String,
    expires_at: Instant,
    version: Option<u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        f(&mut state)
    }

    fn with_tokens<T>(&self, f: impl FnOnce(&mut HashMap<TokenKey, StoredToken>) -> T) -> T {
        self.with_state(|state| f(&mut state.tokens))
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        Ok(self.with_tokens(|tokens| tokens.get(key).cloned()))
    }

    async fn compare_and_swap(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
    ) -> Result<CasOutcome> {
        Ok(self.with_tokens(|tokens| {
            let current = tokens.get(key);
            if current.map(|stored| stored.version) != expected {
                return CasOutcome::Conflict {
                    current: current.cloned().map(Box::new),
                };
            }
            let version = expected.unwrap_or(0) + 1;
            tokens.insert(
                key.clone(),
                StoredToken {
                    record: record.clone(),
                    version,
                },
            );
            CasOutcome::Written { version }
        }))
    }

    async fn delete(&self, key: &TokenKey) -> Result<()> {
        self.with_state(|state| {
            state.tokens.remove(key);
            state.leases.remove(key);
        });
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<TokenKey>> {
        Ok(self.with_tokens(|tokens| tokens.keys().cloned().collect()))
    }

    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        request: &LeaseRequest<'_>,
    ) -> Result<LeaseOutcome> {
        let now = Instant::now();
        Ok(self.with_state(|state| {
            let current = state.tokens.get(key).cloned();
            let version = current.as_ref().map(|stored| stored.version);
            if let Some(lease) = state.leases.get(key) {
                if lease.holder != request.holder {
                    if lease.expires_at > now {
                        return LeaseOutcome::HeldByOther {
                            remaining: lease.expires_at - now,
                            current,
                        };
                    }
                    let free_at = lease.expires_at + request.in_doubt_grace.min(MAX_GRACE);
                    if lease.version == version && free_at > now {
                        return LeaseOutcome::InDoubt {
                            retry_after: free_at - now,
                            current,
                        };
                    }
                }
            }
            state.leases.insert(
                key.clone(),
                Lease {
                    holder: request.holder.to_owned(),
                    expires_at: now + request.ttl.min(MAX_GRACE),
                    version,
                },
            );
            LeaseOutcome::Acquired { current }
        }))
    }

    async fn release_lease(&self, key: &TokenKey, holder: &str) -> Result<()> {
        self.with_state(|state| {
            if state.leases.get(key).is_some_and(|l| l.holder == holder) {
                state.leases.remove(key);
            }
        });
        Ok(())
    }
}

/// A bound on lease durations that keeps `Instant` arithmetic from
/// overflowing (the manager's own bounds are far below it).
const MAX_GRACE: Duration = Duration::from_secs(365 * 24 * 3600);

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use secrecy::SecretString;

    use super::*;
    use crate::token::{ProviderId, Token};

    fn record(access: &str) -> TokenRecord {
        Token::new(
            ProviderId::from_static("p"),
            SecretString::from(access.to_owned()),
            UNIX_EPOCH,
        )
        .to_record()
    }

    #[tokio::test]
    async fn compare_and_swap_follows_versions() {
        let store = MemoryStore::new();
        let key = TokenKey::new(&ProviderId::from_static("p"), "a");
        assert!(store.load(&key).await.unwrap().is_none());
        assert!(matches!(
            store
                .compare_and_swap(&key, None, &record("1"))
                .await
                .unwrap(),
            CasOutcome::Written { version: 1 }
        ));
        assert!(matches!(
            store
                .compare_and_swap(&key, None, &record("x"))
                .await
                .unwrap(),
            CasOutcome::Conflict { current: Some(ref c) } if c.version == 1
        ));
        assert!(matches!(
            store
                .compare_and_swap(&key, Some(1), &record("2"))
                .await
                .unwrap(),
            CasOutcome::Written { version: 2 }
        ));
        assert!(matches!(
            store
                .compare_and_swap(&key, Some(1), &record("y"))
                .await
                .unwrap(),
            CasOutcome::Conflict { .. }
        ));
        assert_eq!(
            store.load(&key).await.unwrap().unwrap().record.access_token,
            "2"
        );
        assert_eq!(store.keys().await.unwrap(), vec![key.clone()]);
        store.delete(&key).await.unwrap();
        assert!(store.load(&key).await.unwrap().is_none());
    }
}
