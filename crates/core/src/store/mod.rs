//! Where tokens live between requests: the [`TokenStore`] contract, and the
//! in-memory store.
//!
//! A store keeps one [`TokenRecord`] per [`TokenKey`] with a version that
//! every write increments. Writes are compare-and-swap on that version, so a
//! writer that read an old state cannot overwrite a newer one (a token
//! another instance rotated a moment ago). Stores shared by several
//! processes also offer a refresh lease, so exactly one of them refreshes a
//! key at a time.

mod key;
mod memory;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::token::TokenRecord;

pub use key::TokenKey;
pub use memory::MemoryStore;

/// A stored token and its version.
#[derive(Clone, Debug)]
pub struct StoredToken {
    /// The token, secrets included (its `Debug` redacts).
    pub record: TokenRecord,
    /// Incremented by every write; the first write gives 1.
    pub version: u64,
}

/// The result of [`TokenStore::compare_and_swap`].
#[derive(Clone, Debug)]
pub enum CasOutcome {
    /// The record was written; this is its new version.
    Written {
        /// The new version.
        version: u64,
    },
    /// The stored version was not the expected one; nothing was written.
    Conflict {
        /// What is stored now (`None`: nothing).
        current: Option<Box<StoredToken>>,
    },
}

/// The result of [`TokenStore::try_acquire_lease`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// This holder now holds the lease until it releases it or `ttl` passes.
    Acquired,
    /// Another holder holds it for at most this much longer.
    HeldByOther {
        /// Time left on the other holder's lease.
        remaining: Duration,
    },
}

/// Where the token manager keeps tokens. Implementations: [`MemoryStore`]
/// here, SQLite and PostgreSQL in `oauth2-adapters-store-sql`.
///
/// No method may put a token value in an error or a log line.
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug + 'static {
    /// The stored token for `key`, if any.
    async fn load(&self, key: &TokenKey) -> Result<Option<StoredToken>>;

    /// Writes `record` for `key` if the stored version is `expected`
    /// (`None`: only if nothing is stored). Atomic.
    async fn compare_and_swap(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
    ) -> Result<CasOutcome>;

    /// Removes the token for `key` (and its lease). Removing nothing is not an error.
    async fn delete(&self, key: &TokenKey) -> Result<()>;

    /// Every stored key (for warming a manager or its background refresher).
    async fn keys(&self) -> Result<Vec<TokenKey>>;

    /// Takes the refresh lease of `key` for `holder`, for at most `ttl`.
    /// Re-acquiring a lease one already holds extends it. The default, for
    /// stores used by one process, always grants it: the manager's in-process
    /// single flight is enough there.
    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome> {
        let _ = (key, holder, ttl);
        Ok(LeaseOutcome::Acquired)
    }

    /// Releases `holder`'s lease on `key`, if it still holds it.
    async fn release_lease(&self, key: &TokenKey, holder: &str) -> Result<()> {
        let _ = (key, holder);
        Ok(())
    }
}
