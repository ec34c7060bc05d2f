//! The refresh lease checks, for the stores that keep leases (not
//! `MemoryStore`, which grants every lease, being for one process).

// Without a SQL store, only `MemoryStore` runs the suite: these are unused.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

use std::time::Duration;

use oauth2_adapters_core::store::{LeaseOutcome, TokenStore};

use super::{key, record};

const LONG: Duration = Duration::from_secs(30);

fn held(outcome: LeaseOutcome) -> Duration {
    match outcome {
        LeaseOutcome::HeldByOther { remaining } => remaining,
        LeaseOutcome::Acquired => panic!("expected the lease to be held by the other holder"),
    }
}

pub async fn lease_is_exclusive_extendable_and_releasable(store: &dyn TokenStore) {
    let key = key("lease");
    let acquire = |holder: &'static str, ttl| store.try_acquire_lease(&key, holder, ttl);
    assert_eq!(acquire("a", LONG).await.unwrap(), LeaseOutcome::Acquired);
    let remaining = held(acquire("b", LONG).await.unwrap());
    assert!(
        remaining > Duration::ZERO && remaining <= LONG,
        "{remaining:?}"
    );

    // Re-acquiring extends: now more than the first ttl is left.
    assert_eq!(
        acquire("a", 4 * LONG).await.unwrap(),
        LeaseOutcome::Acquired
    );
    let remaining = held(acquire("b", LONG).await.unwrap());
    assert!(remaining > LONG && remaining <= 4 * LONG, "{remaining:?}");

    // Only the holder releases.
    store.release_lease(&key, "b").await.unwrap();
    held(acquire("b", LONG).await.unwrap());
    store.release_lease(&key, "a").await.unwrap();
    assert_eq!(acquire("b", LONG).await.unwrap(), LeaseOutcome::Acquired);
    held(acquire("a", LONG).await.unwrap());
    store.release_lease(&key, "b").await.unwrap();
    store.release_lease(&key, "b").await.unwrap();
    assert_eq!(acquire("a", LONG).await.unwrap(), LeaseOutcome::Acquired);
    store.release_lease(&key, "a").await.unwrap();
}

pub async fn lease_is_taken_over_after_expiry(store: &dyn TokenStore) {
    let key = key("lease-expiry");
    let ttl = Duration::from_millis(200);
    assert_eq!(
        store.try_acquire_lease(&key, "a", ttl).await.unwrap(),
        LeaseOutcome::Acquired
    );
    let remaining = held(store.try_acquire_lease(&key, "b", LONG).await.unwrap());
    assert!(remaining <= ttl, "{remaining:?}");
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(
        store.try_acquire_lease(&key, "b", LONG).await.unwrap(),
        LeaseOutcome::Acquired
    );
    held(store.try_acquire_lease(&key, "a", ttl).await.unwrap());
    // The old holder's release does not free the new holder's lease.
    store.release_lease(&key, "a").await.unwrap();
    held(store.try_acquire_lease(&key, "a", ttl).await.unwrap());
    store.release_lease(&key, "b").await.unwrap();
}

pub async fn lease_is_per_key(store: &dyn TokenStore) {
    let (one, two) = (key("lease-one"), key("lease-two"));
    assert_eq!(
        store.try_acquire_lease(&one, "a", LONG).await.unwrap(),
        LeaseOutcome::Acquired
    );
    assert_eq!(
        store.try_acquire_lease(&two, "b", LONG).await.unwrap(),
        LeaseOutcome::Acquired
    );
    held(store.try_acquire_lease(&one, "b", LONG).await.unwrap());
    held(store.try_acquire_lease(&two, "a", LONG).await.unwrap());
    store.release_lease(&one, "a").await.unwrap();
    store.release_lease(&two, "b").await.unwrap();
}

pub async fn delete_removes_the_lease(store: &dyn TokenStore) {
    let key = key("delete-lease");
    store
        .compare_and_swap(&key, None, &record("a"))
        .await
        .unwrap();
    assert_eq!(
        store.try_acquire_lease(&key, "a", LONG).await.unwrap(),
        LeaseOutcome::Acquired
    );
    store.delete(&key).await.unwrap();
    assert_eq!(
        store.try_acquire_lease(&key, "b", LONG).await.unwrap(),
        LeaseOutcome::Acquired
    );
    store.release_lease(&key, "b").await.unwrap();
}
