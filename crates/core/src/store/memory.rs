//! The in-memory store: the default, for one process.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{CasOutcome, StoredToken, TokenKey, TokenStore};
use crate::error::Result;
use crate::token::TokenRecord;

/// Tokens in a `HashMap` behind a mutex (held only for the map operation,
/// never across an `.await`). Nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tokens: Mutex<HashMap<TokenKey, StoredToken>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_tokens<T>(&self, f: impl FnOnce(&mut HashMap<TokenKey, StoredToken>) -> T) -> T {
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        f(&mut tokens)
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
        self.with_tokens(|tokens| tokens.remove(key));
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<TokenKey>> {
        Ok(self.with_tokens(|tokens| tokens.keys().cloned().collect()))
    }
}

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
