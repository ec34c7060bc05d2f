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

pub use crate::token::TokenRecord;
pub(crate) use key::KeyHashBuilder;
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

/// What [`TokenStore::try_acquire_lease`] is asked for.
#[derive(Clone, Copy, Debug)]
pub struct LeaseRequest<'a> {
    /// Who asks (one id per manager instance).
    pub holder: &'a str,
    /// How long the lease lasts unless extended (by asking again) or released.
    pub ttl: Duration,
    /// How long after a lease *lapsed* (its holder neither released nor
    /// extended it) while the stored version is still the one it was taken
    /// for, nobody else may take it. That holder may have sent the key's
    /// refresh token and still hold its successor, unwritten (cut off from
    /// the store, or stalled): sending the old refresh token again would
    /// spend it twice. Zero for grants that spend nothing (client
    /// credentials).
    pub in_doubt_grace: Duration,
}

/// The result of [`TokenStore::try_acquire_lease`]. Each outcome carries
/// the stored token as read in the same atomic step, so a caller needs no
/// second round trip to see what it leased.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum LeaseOutcome {
    /// This holder now holds the lease until it releases it or `ttl` passes.
    Acquired {
        /// What is stored now.
        current: Option<StoredToken>,
    },
    /// Another holder holds it for at most this much longer.
    HeldByOther {
        /// Time left on the other holder's lease.
        remaining: Duration,
        /// What is stored now.
        current: Option<StoredToken>,
    },
    /// The last holder's lease lapsed less than `in_doubt_grace` ago while
    /// the stored version is still the one it leased: it may have spent the
    /// refresh token. Nobody may take the lease for `retry_after` yet.
    InDoubt {
        /// When the lease may be taken.
        retry_after: Duration,
        /// What is stored now.
        current: Option<StoredToken>,
    },
}

impl LeaseOutcome {
    /// The stored token read with the lease.
    pub fn current(&self) -> Option<&StoredToken> {
        match self {
            Self::Acquired { current }
            | Self::HeldByOther { current, .. }
            | Self::InDoubt { current, .. } => current.as_ref(),
        }
    }

    /// True for [`LeaseOutcome::Acquired`].
    pub fn is_acquired(&self) -> bool {
        matches!(self, Self::Acquired { .. })
    }
}

/// One page of stored tokens, read by [`TokenStore::load_page`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct TokenPage {
    /// The page's tokens in the store's key order. A row that cannot be
    /// read (a corrupt record, a missing decryption key) is an error beside
    /// its key; it does not fail the page.
    pub tokens: Vec<(TokenKey, Result<StoredToken>)>,
    /// Where the next page starts (the `after` of the next call): the last
    /// key read, as stored. `None`: this was the last page.
    pub next: Option<String>,
}

impl TokenPage {
    /// A page of `tokens`, followed by the page after `next` (`None`: the last).
    pub fn new(tokens: Vec<(TokenKey, Result<StoredToken>)>, next: Option<String>) -> Self {
        Self { tokens, next }
    }
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

    /// Up to `limit` stored tokens (at least one) in the store's order of
    /// keys, from the first key after `after` (a [`TokenPage::next`]; from
    /// the first key when `None`), in one round trip where the store can:
    /// what [`TokenManager::warm`](crate::manager::TokenManager::warm) reads,
    /// instead of one `load` per key. Rows whose key does not parse are
    /// skipped (the cursor still moves past them).
    ///
    /// The default returns `Ok(None)`: the store cannot page, and `warm`
    /// lists [`TokenStore::keys`] and loads each.
    async fn load_page(&self, after: Option<&str>, limit: usize) -> Result<Option<TokenPage>> {
        let _ = (after, limit);
        Ok(None)
    }

    /// The stored tokens of `keys`, in one round trip where the store can:
    /// what the background refresher reads before it refreshes a batch of
    /// due keys, to skip those another instance has refreshed already. A
    /// key with nothing stored is left out; a row that cannot be read is an
    /// error beside its key (it does not fail the batch). Any order.
    ///
    /// The default returns `Ok(None)`: the store cannot batch, and each
    /// refresh checks its own key.
    async fn load_many(
        &self,
        keys: &[TokenKey],
    ) -> Result<Option<Vec<(TokenKey, Result<StoredToken>)>>> {
        let _ = keys;
        Ok(None)
    }

    /// Takes (or, for its holder, extends) the refresh lease of `key`, and
    /// reads the stored token, in one atomic step with respect to other
    /// lease calls on `key`. Stores shared by several processes must keep
    /// leases themselves; the rule, for the stored version `V` (or none):
    ///
    /// * no lease, a lease of `request.holder`, or a lapsed lease (past its
    ///   expiry) that was taken for another version than `V`, or that lapsed
    ///   at least `request.in_doubt_grace` ago: the lease becomes
    ///   `request.holder`'s, expiring after `request.ttl`, taken for `V`
    ///   → [`LeaseOutcome::Acquired`];
    /// * an unexpired lease of another holder → [`LeaseOutcome::HeldByOther`];
    /// * otherwise (it lapsed less than `in_doubt_grace` ago, taken for `V`)
    ///   → [`LeaseOutcome::InDoubt`], and the lease is left as it is.
    ///
    /// The default, for stores used by one manager in one process, always
    /// grants it: the manager's in-process single flight is enough there.
    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        request: &LeaseRequest<'_>,
    ) -> Result<LeaseOutcome> {
        let _ = request;
        Ok(LeaseOutcome::Acquired {
            current: self.load(key).await?,
        })
    }

    /// Releases `holder`'s lease on `key`, if it still holds it.
    async fn release_lease(&self, key: &TokenKey, holder: &str) -> Result<()> {
        let _ = (key, holder);
        Ok(())
    }

    /// [`TokenStore::compare_and_swap`], and when it writes, releases
    /// `holder`'s lease on `key` in the same step (one round trip where the
    /// store can). On a conflict or an error the lease is kept. The default
    /// runs the two one after the other; a failed release is logged, not
    /// returned (the lease then lapses by itself).
    async fn compare_and_swap_releasing(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
        holder: &str,
    ) -> Result<CasOutcome> {
        let outcome = self.compare_and_swap(key, expected, record).await?;
        if matches!(outcome, CasOutcome::Written { .. }) {
            if let Err(error) = self.release_lease(key, holder).await {
                tracing::warn!(token.key = %key, error = %error, "could not release the refresh lease; it will lapse");
            }
        }
        Ok(outcome)
    }
}
