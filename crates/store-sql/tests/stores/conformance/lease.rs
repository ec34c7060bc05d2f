//! The refresh lease checks, for every store that keeps leases (all of
//! them, `MemoryStore` included).

use std::time::Duration;

use oauth2_adapters_core::store::{
    CasOutcome, LeaseOutcome, LeaseRequest, StoredToken, TokenKey, TokenStore,
};

use super::{key, record};

const LONG: Duration = Duration::from_secs(30);
/// A lease that lapses during a test.
const SHORT: Duration = Duration::from_millis(100);
/// Long enough for a `SHORT` lease to have lapsed.
const LAPSE: Duration = Duration::from_millis(250);

/// Asks for `key`'s lease for `holder`.
pub(crate) async fn acquire(
    store: &dyn TokenStore,
    key: &TokenKey,
    holder: &str,
    ttl: Duration,
    in_doubt_grace: Duration,
) -> LeaseOutcome {
    let request = LeaseRequest {
        holder,
        ttl,
        in_doubt_grace,
    };
    store.try_acquire_lease(key, &request).await.unwrap()
}

/// The outcome's stored token as `(version, access token)`.
fn seen(outcome: &LeaseOutcome) -> Option<(u64, String)> {
    outcome
        .current()
        .map(|c| (c.version, c.record.access_token.clone()))
}

fn acquired(outcome: LeaseOutcome) -> Option<StoredToken> {
    match outcome {
        LeaseOutcome::Acquired { current } => current,
        other => panic!("expected the lease to be acquired, got {other:?}"),
    }
}

pub(crate) fn held(outcome: LeaseOutcome) -> Duration {
    match outcome {
        LeaseOutcome::HeldByOther { remaining, .. } => remaining,
        other => panic!("expected the lease to be held by the other holder, got {other:?}"),
    }
}

fn in_doubt(outcome: LeaseOutcome) -> Duration {
    match outcome {
        LeaseOutcome::InDoubt { retry_after, .. } => retry_after,
        other => panic!("expected the lease to be in doubt, got {other:?}"),
    }
}

/// Writes `access` over version `expected`.
async fn write(store: &dyn TokenStore, key: &TokenKey, expected: Option<u64>, access: &str) {
    let outcome = store
        .compare_and_swap(key, expected, &record(access))
        .await
        .unwrap();
    assert!(matches!(outcome, CasOutcome::Written { .. }), "{outcome:?}");
}

pub async fn lease_is_exclusive_extendable_and_releasable(store: &dyn TokenStore) {
    let key = key("lease");
    let acquire = |holder: &'static str, ttl| acquire(store, &key, holder, ttl, Duration::ZERO);
    acquired(acquire("a", LONG).await);
    let remaining = held(acquire("b", LONG).await);
    assert!(
        remaining > Duration::ZERO && remaining <= LONG,
        "{remaining:?}"
    );

    // Re-acquiring extends: now more than the first ttl is left.
    acquired(acquire("a", 4 * LONG).await);
    let remaining = held(acquire("b", LONG).await);
    assert!(remaining > LONG && remaining <= 4 * LONG, "{remaining:?}");

    // Only the holder releases.
    store.release_lease(&key, "b").await.unwrap();
    held(acquire("b", LONG).await);
    store.release_lease(&key, "a").await.unwrap();
    acquired(acquire("b", LONG).await);
    held(acquire("a", LONG).await);
    store.release_lease(&key, "b").await.unwrap();
    store.release_lease(&key, "b").await.unwrap();
    acquired(acquire("a", LONG).await);
    store.release_lease(&key, "a").await.unwrap();
}

pub async fn lease_is_taken_over_after_expiry(store: &dyn TokenStore) {
    let key = key("lease-expiry");
    let ttl = Duration::from_millis(200);
    acquired(acquire(store, &key, "a", ttl, Duration::ZERO).await);
    let remaining = held(acquire(store, &key, "b", LONG, Duration::ZERO).await);
    assert!(remaining <= ttl, "{remaining:?}");
    tokio::time::sleep(ttl * 2).await;
    acquired(acquire(store, &key, "b", LONG, Duration::ZERO).await);
    held(acquire(store, &key, "a", ttl, Duration::ZERO).await);
    // The old holder's release does not free the new holder's lease.
    store.release_lease(&key, "a").await.unwrap();
    held(acquire(store, &key, "a", ttl, Duration::ZERO).await);
    store.release_lease(&key, "b").await.unwrap();
}

pub async fn lease_is_per_key(store: &dyn TokenStore) {
    let (one, two) = (key("lease-one"), key("lease-two"));
    acquired(acquire(store, &one, "a", LONG, Duration::ZERO).await);
    acquired(acquire(store, &two, "b", LONG, Duration::ZERO).await);
    held(acquire(store, &one, "b", LONG, Duration::ZERO).await);
    held(acquire(store, &two, "a", LONG, Duration::ZERO).await);
    store.release_lease(&one, "a").await.unwrap();
    store.release_lease(&two, "b").await.unwrap();
}

pub async fn delete_removes_the_lease(store: &dyn TokenStore) {
    let key = key("delete-lease");
    write(store, &key, None, "a").await;
    acquired(acquire(store, &key, "a", LONG, LONG).await);
    store.delete(&key).await.unwrap();
    assert_eq!(
        acquired(acquire(store, &key, "b", LONG, LONG).await).map(|c| c.version),
        None
    );
    store.release_lease(&key, "b").await.unwrap();
}

/// Every outcome carries the stored token, read with the lease.
pub async fn lease_returns_the_current_row(store: &dyn TokenStore) {
    let key = key("lease-current");
    let outcome = acquire(store, &key, "a", LONG, LONG).await;
    assert!(
        outcome.is_acquired() && seen(&outcome).is_none(),
        "{outcome:?}"
    );
    write(store, &key, None, "first").await;
    let outcome = acquire(store, &key, "a", LONG, LONG).await;
    assert!(outcome.is_acquired(), "{outcome:?}");
    assert_eq!(seen(&outcome), Some((1, "first".into())));
    write(store, &key, Some(1), "second").await;
    let outcome = acquire(store, &key, "b", LONG, LONG).await;
    assert_eq!(seen(&outcome), Some((2, "second".into())));
    held(outcome);
    let full = super::full_record();
    write(store, &key, Some(2), "third").await;
    store.compare_and_swap(&key, Some(3), &full).await.unwrap();
    let current = acquired(acquire(store, &key, "a", LONG, LONG).await).unwrap();
    assert!(current.record == full && current.version == 4);
    store.delete(&key).await.unwrap();
}

/// A lease that lapses while the version it was taken for is still stored
/// is in doubt for others until the grace has passed since its expiry; the
/// row is left as it is (asking again does not push the end of the grace).
pub async fn a_lapsed_lease_is_in_doubt_while_its_version_is_stored(store: &dyn TokenStore) {
    for stored in [true, false] {
        let key = key("in-doubt");
        if stored {
            write(store, &key, None, "v1").await;
        }
        acquired(acquire(store, &key, "a", SHORT, LONG).await);
        tokio::time::sleep(LAPSE).await;
        let outcome = acquire(store, &key, "b", LONG, LONG).await;
        assert_eq!(seen(&outcome), stored.then(|| (1, "v1".into())));
        let first = in_doubt(outcome);
        // The grace runs from the lease's expiry, at most LAPSE - SHORT ago
        // (plus however slow the test machine is).
        assert!(
            first <= LONG - (LAPSE - SHORT) && first > LONG - Duration::from_secs(10),
            "{first:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = in_doubt(acquire(store, &key, "b", LONG, LONG).await);
        assert!(second < first, "{second:?} then {first:?}");
        // Each request brings its own grace: a shorter one ends sooner.
        let short = in_doubt(acquire(store, &key, "c", LONG, Duration::from_secs(5)).await);
        assert!(
            short <= Duration::from_secs(5) - (LAPSE - SHORT),
            "{short:?}"
        );
        store.delete(&key).await.unwrap();
    }
}

/// Once someone wrote since the lease was taken (the version it was taken
/// for is no longer stored), the lapsed lease is taken over at once.
pub async fn a_lapsed_lease_is_taken_over_after_a_write(store: &dyn TokenStore) {
    for stored in [true, false] {
        let key = key("in-doubt-written");
        let before = if stored {
            write(store, &key, None, "v1").await;
            Some(1)
        } else {
            None
        };
        acquired(acquire(store, &key, "a", SHORT, LONG).await);
        tokio::time::sleep(LAPSE).await;
        in_doubt(acquire(store, &key, "b", LONG, LONG).await);
        // A write by anyone (the lapsed holder, late, or another writer).
        write(store, &key, before, "next").await;
        let current = acquired(acquire(store, &key, "b", LONG, LONG).await).unwrap();
        assert_eq!(
            (current.version, current.record.access_token.as_str()),
            (before.unwrap_or(0) + 1, "next")
        );
        held(acquire(store, &key, "a", SHORT, LONG).await);
        store.delete(&key).await.unwrap();
    }
}

/// After the grace, the lapsed lease is taken over even if nobody wrote.
pub async fn a_lapsed_lease_is_taken_over_after_the_grace(store: &dyn TokenStore) {
    let key = key("in-doubt-grace");
    write(store, &key, None, "v1").await;
    let grace = Duration::from_secs(1);
    acquired(acquire(store, &key, "a", SHORT, grace).await);
    tokio::time::sleep(LAPSE).await;
    let retry_after = in_doubt(acquire(store, &key, "b", LONG, grace).await);
    assert!(retry_after <= grace - (LAPSE - SHORT), "{retry_after:?}");
    tokio::time::sleep(retry_after + Duration::from_millis(50)).await;
    let current = acquired(acquire(store, &key, "b", LONG, grace).await).unwrap();
    assert_eq!(current.version, 1);
    held(acquire(store, &key, "a", SHORT, grace).await);

    // A grace of zero: taken over as soon as it lapses.
    let key = self::key("in-doubt-zero");
    write(store, &key, None, "v1").await;
    acquired(acquire(store, &key, "a", SHORT, LONG).await);
    tokio::time::sleep(LAPSE).await;
    in_doubt(acquire(store, &key, "b", LONG, LONG).await);
    acquired(acquire(store, &key, "c", LONG, Duration::ZERO).await);
    held(acquire(store, &key, "b", LONG, Duration::ZERO).await);
    store.delete(&key).await.unwrap();
}

/// The holder of a lapsed lease may take it again (it knows what it sent).
pub async fn the_lapsed_holder_takes_its_lease_again(store: &dyn TokenStore) {
    let key = key("in-doubt-retake");
    write(store, &key, None, "v1").await;
    acquired(acquire(store, &key, "a", SHORT, LONG).await);
    tokio::time::sleep(LAPSE).await;
    in_doubt(acquire(store, &key, "b", LONG, LONG).await);
    let current = acquired(acquire(store, &key, "a", LONG, LONG).await).unwrap();
    assert_eq!(current.version, 1);
    let remaining = held(acquire(store, &key, "b", LONG, LONG).await);
    assert!(remaining > LONG - Duration::from_secs(10), "{remaining:?}");
    store.delete(&key).await.unwrap();
}

/// Extending a lease records the version stored then: after a write and an
/// extension, the lease is in doubt for the new version.
pub async fn extending_a_lease_records_the_current_version(store: &dyn TokenStore) {
    let key = key("lease-version");
    write(store, &key, None, "v1").await;
    acquired(acquire(store, &key, "a", SHORT, LONG).await);
    write(store, &key, Some(1), "v2").await;
    let current = acquired(acquire(store, &key, "a", SHORT, LONG).await).unwrap();
    assert_eq!(current.version, 2);
    tokio::time::sleep(LAPSE).await;
    in_doubt(acquire(store, &key, "b", LONG, LONG).await);
    store.delete(&key).await.unwrap();
}

/// Durations too long for any clock are shortened, never an overflow.
pub async fn huge_durations_are_capped(store: &dyn TokenStore) {
    let key = key("lease-huge");
    let year = Duration::from_secs(365 * 86_400);
    acquired(acquire(store, &key, "a", Duration::MAX, Duration::MAX).await);
    assert!(held(acquire(store, &key, "b", Duration::MAX, Duration::MAX).await) > year / 2);
    store.release_lease(&key, "a").await.unwrap();
    write(store, &key, None, "v1").await;
    acquired(acquire(store, &key, "a", SHORT, Duration::MAX).await);
    tokio::time::sleep(LAPSE).await;
    assert!(in_doubt(acquire(store, &key, "b", Duration::MAX, Duration::MAX).await) > year / 2);
    store.delete(&key).await.unwrap();
}

/// A write that releases the lease frees it for the next holder at once.
pub async fn cas_releasing_writes_and_frees_the_lease(store: &dyn TokenStore) {
    for stored in [true, false] {
        let key = key("cas-releasing");
        let expected = if stored {
            write(store, &key, None, "v1").await;
            Some(1)
        } else {
            None
        };
        acquired(acquire(store, &key, "a", LONG, LONG).await);
        let outcome = store
            .compare_and_swap_releasing(&key, expected, &record("next"), "a")
            .await
            .unwrap();
        let version = expected.unwrap_or(0) + 1;
        assert!(
            matches!(outcome, CasOutcome::Written { version: v } if v == version),
            "{outcome:?}"
        );
        let current = acquired(acquire(store, &key, "b", LONG, LONG).await).unwrap();
        assert_eq!(
            (current.version, current.record.access_token.as_str()),
            (version, "next")
        );
        store.delete(&key).await.unwrap();
    }
}

/// On a conflict the lease is kept; a write naming another holder releases
/// nothing.
pub async fn cas_releasing_keeps_the_lease_on_a_conflict(store: &dyn TokenStore) {
    let key = key("cas-releasing-conflict");
    write(store, &key, None, "v1").await;
    acquired(acquire(store, &key, "a", LONG, LONG).await);
    for expected in [None, Some(7), Some(u64::MAX)] {
        let outcome = store
            .compare_and_swap_releasing(&key, expected, &record("stale"), "a")
            .await
            .unwrap();
        let CasOutcome::Conflict { current } = outcome else {
            panic!("expected a conflict, got {outcome:?}");
        };
        assert_eq!(current.map(|c| c.version), Some(1));
        held(acquire(store, &key, "b", LONG, LONG).await);
    }
    let outcome = store
        .compare_and_swap_releasing(&key, Some(1), &record("v2"), "b")
        .await
        .unwrap();
    assert!(
        matches!(outcome, CasOutcome::Written { version: 2 }),
        "{outcome:?}"
    );
    let outcome = acquire(store, &key, "b", LONG, LONG).await;
    assert_eq!(seen(&outcome), Some((2, "v2".into())));
    held(outcome);
    store.delete(&key).await.unwrap();
}

/// `b` polls for the lease while its holder, on `a`, writes and releases
/// it in one step: when `b` gets the lease, it sees that write, never the
/// version before it (whose refresh token the holder has just spent).
pub async fn a_lease_taken_after_a_releasing_write_sees_the_write(
    a: &dyn TokenStore,
    b: &dyn TokenStore,
) {
    for round in 0..20_u64 {
        let key = key("release-race");
        write(a, &key, None, "v1").await;
        acquired(acquire(a, &key, "a", LONG, LONG).await);
        let poll = async {
            loop {
                match acquire(b, &key, "b", LONG, LONG).await {
                    LeaseOutcome::Acquired { current } => return current,
                    LeaseOutcome::HeldByOther { .. } => tokio::task::yield_now().await,
                    other => panic!("expected the lease or its holder, got {other:?}"),
                }
            }
        };
        let release = async {
            tokio::time::sleep(Duration::from_millis(round % 4)).await;
            a.compare_and_swap_releasing(&key, Some(1), &record("v2"), "a")
                .await
                .unwrap()
        };
        let (current, written) = tokio::join!(poll, release);
        assert!(
            matches!(written, CasOutcome::Written { version: 2 }),
            "{written:?}"
        );
        let current = current.expect("the token is stored");
        assert_eq!(
            (current.version, current.record.access_token.as_str()),
            (2, "v2"),
            "round {round}"
        );
        a.delete(&key).await.unwrap();
    }
}

/// [`a_lease_taken_after_a_releasing_write_sees_the_write`] on one store.
pub async fn a_lease_taken_after_a_releasing_write_sees_it(store: &dyn TokenStore) {
    a_lease_taken_after_a_releasing_write_sees_the_write(store, store).await;
}
