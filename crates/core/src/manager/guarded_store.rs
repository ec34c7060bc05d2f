//! The store as the manager calls it: every call bounded in time, and a
//! panic in the store's code turned into an error. A call whose answer never
//! comes (a partition, a server that dropped the connection) would otherwise
//! keep a key's flight, and every caller of that key, waiting forever; a
//! panic in a write would drop the token the provider just issued.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt;

use crate::error::{Error, Result};
use crate::store::{
    CasOutcome, LeaseOutcome, LeaseRequest, StoredToken, TokenKey, TokenPage, TokenStore,
};
use crate::token::TokenRecord;

/// Wraps the configured store for the manager.
#[derive(Debug)]
pub(crate) struct GuardedStore {
    inner: Arc<dyn TokenStore>,
    timeout: Duration,
}

impl GuardedStore {
    pub(crate) fn new(inner: Arc<dyn TokenStore>, timeout: Duration) -> Self {
        Self { inner, timeout }
    }

    /// Runs one store call: an error if it panics or takes longer than the
    /// timeout (a write that timed out may still land: the manager keeps
    /// its token pending and recognises the row as its own).
    async fn call<T>(&self, what: &str, call: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, AssertUnwindSafe(call).catch_unwind()).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => {
                tracing::error!(what, "the token store panicked");
                Err(Error::Store {
                    message: format!("the token store panicked {what}"),
                    source: None,
                })
            }
            Err(_) => Err(Error::Store {
                message: format!(
                    "the token store did not answer {what} within {} ms",
                    self.timeout.as_millis()
                ),
                source: None,
            }),
        }
    }
}

#[async_trait]
impl TokenStore for GuardedStore {
    async fn load(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        self.call("loading a token", self.inner.load(key)).await
    }

    async fn compare_and_swap(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
    ) -> Result<CasOutcome> {
        self.call(
            "writing a token",
            self.inner.compare_and_swap(key, expected, record),
        )
        .await
    }

    async fn delete(&self, key: &TokenKey) -> Result<()> {
        self.call("deleting a token", self.inner.delete(key)).await
    }

    async fn keys(&self) -> Result<Vec<TokenKey>> {
        self.call("listing the tokens", self.inner.keys()).await
    }

    async fn load_page(&self, after: Option<&str>, limit: usize) -> Result<Option<TokenPage>> {
        self.call(
            "reading a page of tokens",
            self.inner.load_page(after, limit),
        )
        .await
    }

    async fn load_many(
        &self,
        keys: &[TokenKey],
    ) -> Result<Option<Vec<(TokenKey, Result<StoredToken>)>>> {
        self.call("loading a batch of tokens", self.inner.load_many(keys))
            .await
    }

    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        request: &LeaseRequest<'_>,
    ) -> Result<LeaseOutcome> {
        self.call(
            "taking a refresh lease",
            self.inner.try_acquire_lease(key, request),
        )
        .await
    }

    async fn release_lease(&self, key: &TokenKey, holder: &str) -> Result<()> {
        self.call(
            "releasing a refresh lease",
            self.inner.release_lease(key, holder),
        )
        .await
    }

    async fn compare_and_swap_releasing(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
        holder: &str,
    ) -> Result<CasOutcome> {
        self.call(
            "writing a token",
            self.inner
                .compare_and_swap_releasing(key, expected, record, holder),
        )
        .await
    }
}
