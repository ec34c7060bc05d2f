//! The refresh lease rule of [`TokenStore::try_acquire_lease`], in
//! milliseconds. SQLite decides it here, inside its write transaction;
//! PostgreSQL decides it in its upsert, with the same rule, and reports the
//! result as a [`Decision`] too.
//!
//! A lease row records the token version it was taken for: `0` when no
//! token was stored, `NULL` for a lease taken before migration 2 (its
//! version is unknown, so it is taken over as soon as it lapses, as before).
//!
//! [`TokenStore::try_acquire_lease`]: oauth2_adapters_core::store::TokenStore::try_acquire_lease

use oauth2_adapters_core::store::{LeaseOutcome, StoredToken};

use crate::record;

/// The version a lease records when no token is stored (versions start at 1).
pub(crate) const NO_TOKEN: i64 = 0;

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaseRow {
    /// Who holds it.
    pub(crate) holder: String,
    /// When it lapses, in milliseconds since the Unix epoch.
    pub(crate) expires_at_ms: i64,
    /// The token version it was taken for (see the module's doc).
    pub(crate) version: Option<i64>,
}

/// What a lease request comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The lease is (now) the requester's.
    Take,
    /// Another holder's lease has not lapsed.
    HeldByOther {
        /// Milliseconds left on it.
        remaining_ms: i64,
    },
    /// Another holder's lease lapsed less than the grace ago, taken for the
    /// version still stored.
    InDoubt {
        /// Milliseconds until it may be taken.
        retry_after_ms: i64,
    },
}

/// The rule: `lease` is the stored lease (if any), `version` the stored
/// token version ([`NO_TOKEN`]: none), `now_ms` the current time and
/// `grace_ms` the request's in-doubt grace.
pub(crate) fn decide(
    lease: Option<&LeaseRow>,
    holder: &str,
    version: i64,
    now_ms: i64,
    grace_ms: i64,
) -> Decision {
    let Some(lease) = lease else {
        return Decision::Take;
    };
    if lease.holder == holder {
        return Decision::Take;
    }
    if lease.expires_at_ms > now_ms {
        return Decision::HeldByOther {
            remaining_ms: lease.expires_at_ms.saturating_sub(now_ms),
        };
    }
    let free_at = lease.expires_at_ms.saturating_add(grace_ms);
    if lease.version == Some(version) && free_at > now_ms {
        Decision::InDoubt {
            retry_after_ms: free_at.saturating_sub(now_ms),
        }
    } else {
        Decision::Take
    }
}

/// The outcome of `decision`, with the stored token read with it.
pub(crate) fn outcome(decision: Decision, current: Option<StoredToken>) -> LeaseOutcome {
    match decision {
        Decision::Take => LeaseOutcome::Acquired { current },
        Decision::HeldByOther { remaining_ms } => LeaseOutcome::HeldByOther {
            remaining: record::remaining(remaining_ms),
            current,
        },
        Decision::InDoubt { retry_after_ms } => LeaseOutcome::InDoubt {
            retry_after: record::remaining(retry_after_ms),
            current,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, expires_at_ms: i64, version: Option<i64>) -> LeaseRow {
        LeaseRow {
            holder: holder.into(),
            expires_at_ms,
            version,
        }
    }

    #[test]
    fn the_rule() {
        let now = 10_000;
        let grace = 1_000;
        let decide = |lease: Option<&LeaseRow>, version| decide(lease, "me", version, now, grace);
        assert_eq!(decide(None, 3), Decision::Take);
        // Mine, lapsed or not, for any version: extended.
        for at in [now - 5_000, now, now + 5_000] {
            assert_eq!(decide(Some(&lease("me", at, Some(1))), 3), Decision::Take);
        }
        // Another's, unexpired.
        assert_eq!(
            decide(Some(&lease("other", now + 1, Some(3))), 3),
            Decision::HeldByOther { remaining_ms: 1 }
        );
        // Another's, lapsed (expiry reached) within the grace, same version.
        for (at, left) in [(now, 1_000), (now - 999, 1)] {
            assert_eq!(
                decide(Some(&lease("other", at, Some(3))), 3),
                Decision::InDoubt {
                    retry_after_ms: left
                },
                "{at}"
            );
        }
        assert_eq!(
            decide(Some(&lease("other", now, Some(NO_TOKEN))), NO_TOKEN),
            Decision::InDoubt {
                retry_after_ms: 1_000
            }
        );
        // Lapsed a grace ago or more, or for another (or an unknown) version.
        assert_eq!(
            decide(Some(&lease("other", now - 1_000, Some(3))), 3),
            Decision::Take
        );
        for version in [Some(2), Some(NO_TOKEN), None] {
            assert_eq!(
                decide(Some(&lease("other", now, version)), 3),
                Decision::Take
            );
        }
        // Grace zero: taken over as soon as it lapses.
        assert_eq!(
            super::decide(Some(&lease("other", now, Some(3))), "me", 3, now, 0),
            Decision::Take
        );
        // No overflow at the extremes.
        assert_eq!(
            super::decide(
                Some(&lease("other", i64::MIN, Some(3))),
                "me",
                3,
                i64::MIN,
                i64::MAX
            ),
            Decision::InDoubt {
                retry_after_ms: i64::MAX
            }
        );
    }
}
