//! Rows 5, 6 and 8: a shutdown while a background refresh waits for the
//! provider, code of the application that panics (an `on_event` hook, a
//! store), and a key whose refresh keeps failing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth2_adapters::manager::TokenEvent;
use oauth2_adapters::testkit::Fault;
use oauth2_adapters::{DeferredReason, Error, MemoryStore, TokenStore};

use super::rig::{eventually, Rig, Row, REFRESH_BOUND, SERVED_BOUND};
use super::stores::{FailingStore, SqliteFile};

/// Two keys fall due; the background refresher refreshes both, one held
/// by the provider 800 ms after it committed. `shutdown(10 s)` waits for
/// it: a clean report, both rotated tokens in the store, and afterwards no
/// refresh starts (expired keys are deferred, nothing is sent). A restart
/// on the same file carries on. Then a refresh held 1.5 s before the
/// provider processes it and a 200 ms deadline: it is reported abandoned.
pub async fn shutdown_during_background_refresh(row: Row) {
    let rig = Rig::start(row).await;
    let file = SqliteFile::new();
    let store = Arc::new(file.open().await);
    let manager = rig
        .builder(store.clone())
        .refresh_in_background(Duration::from_millis(50), 16)
        .build()
        .unwrap();
    let keys = rig.seed_many(&manager, "k", 2).await;

    rig.mock()
        .push_fault(Fault::StallAfterProcessing(Duration::from_millis(800)));
    let issued = rig.issued();
    rig.make_due();
    eventually(
        row,
        "both refreshes committed at the provider",
        // A wait, not a speed bound: generous for a loaded CI machine.
        Duration::from_secs(20),
        || rig.issued() >= issued + 2,
    )
    .await;
    let report = manager.shutdown(Duration::from_secs(10)).await;
    assert!(report.is_clean(), "{row} {report:?}");
    assert!(report.took < Duration::from_secs(5), "{row} {report:?}");
    for key in &keys {
        let stored = store.load(key).await.unwrap().expect("stored");
        assert!(
            stored.version >= 2,
            "{row} {key}: the rotated token is in the store"
        );
    }
    rig.assert_invariants(&manager, store.as_ref(), &keys).await;
    let requests = rig.token_requests();
    rig.expire();
    let error = rig
        .get(&manager, &keys[0], SERVED_BOUND)
        .await
        .expect_err("shut down");
    assert!(
        matches!(
            error,
            Error::RefreshDeferred {
                reason: DeferredReason::ShuttingDown,
                ..
            }
        ),
        "{row} {error:?}"
    );
    assert_eq!(
        rig.token_requests(),
        requests,
        "{row} nothing sent after shutdown"
    );

    // A restart on the same file.
    let restarted = rig.manager(Arc::new(file.open().await));
    assert_eq!(restarted.warm().await.unwrap().loaded, 2, "{row}");
    rig.assert_invariants(&restarted, store.as_ref(), &keys)
        .await;

    // A deadline shorter than the refresh: abandoned, and reported.
    rig.mock()
        .push_fault(Fault::Delay(Duration::from_millis(1500)));
    rig.make_due();
    let requests = rig.token_requests();
    assert!(
        restarted.try_get(&keys[0]).is_some(),
        "{row} served while due"
    );
    eventually(
        row,
        "the refresh reached the provider",
        Duration::from_secs(5),
        || rig.token_requests() > requests,
    )
    .await;
    let report = restarted.shutdown(Duration::from_millis(200)).await;
    assert_eq!(
        report.abandoned_refreshes,
        vec![keys[0].clone()],
        "{row} {report:?}"
    );
    assert!(report.unpersisted.is_empty(), "{row} {report:?}");
    assert!(report.took < Duration::from_secs(1), "{row} {report:?}");
    // The abandoned request was cut before the provider processed it: the
    // stored refresh token is still the live one, and the next start carries on.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let third = rig.manager(Arc::new(file.open().await));
    third.warm().await.unwrap();
    rig.assert_invariants(&third, store.as_ref(), &keys).await;
}

/// An `on_event` hook that panics on every event: every refresh, a store
/// write failure and its recovery still happen, the other hooks and the
/// subscribers still get every event, and later gets work.
pub async fn panicking_hook(row: Row) {
    let rig = Rig::start(row).await;
    let memory: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let store = FailingStore::new(memory.clone());
    let panics = Arc::new(AtomicUsize::new(0));
    let manager = {
        let panics = panics.clone();
        rig.builder(store.clone())
            .on_event(move |_| {
                panics.fetch_add(1, Ordering::SeqCst);
                panic!("an on_event hook with a bug");
            })
            .build()
            .unwrap()
    };
    let mut subscriber = manager.subscribe();
    let key = rig.seed(&manager, "a").await;
    rig.expire();
    rig.get_ok(&manager, &key, REFRESH_BOUND).await;
    store.fail_writes(true);
    rig.expire();
    rig.get_ok(&manager, &key, REFRESH_BOUND).await;
    assert_eq!(manager.pending_writes(), 1, "{row}");
    store.fail_writes(false);
    eventually(
        row,
        "the pending write lands",
        Duration::from_secs(10),
        || manager.pending_writes() == 0,
    )
    .await;
    for _ in 0..20 {
        rig.get_ok(&manager, &key, SERVED_BOUND).await;
    }
    let seen = rig.events.names();
    assert!(
        panics.load(Ordering::SeqCst) >= 3,
        "{row} the hook ran (and panicked) for every event"
    );
    assert_eq!(
        panics.load(Ordering::SeqCst),
        seen.len(),
        "{row} the panicking hook saw what the others saw"
    );
    for expected in ["Refreshed", "StoreWriteFailed", "StoreWriteRecovered"] {
        assert!(
            seen.iter().any(|e| e == expected),
            "{row} {expected} reached the other hook: {seen:?}"
        );
    }
    let mut received = 0;
    while subscriber.try_recv().is_ok() {
        received += 1;
    }
    assert_eq!(received, seen.len(), "{row} the subscriber got every event");
    rig.expire();
    rig.get_ok(&manager, &key, REFRESH_BOUND).await;
    rig.assert_invariants(&manager, memory.as_ref(), &[key])
        .await;
}

/// The store's compare-and-swap panics (a store with a bug) after the
/// provider rotated: the caller gets `Error::Internal` (or the new token,
/// kept as a pending write), and the key stays usable: later gets work,
/// and the rotated token is not lost with the panic (at a rotating
/// provider, the next refresh would otherwise send the spent one).
pub async fn panicking_store(row: Row) {
    let rig = Rig::start(row).await;
    let memory: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let store = FailingStore::new(memory.clone());
    let manager = rig.manager(store.clone());
    let key = rig.seed(&manager, "a").await;
    store.panic_next_write();
    rig.expire();
    match rig.get(&manager, &key, REFRESH_BOUND).await {
        Ok(_) | Err(Error::Internal { .. }) => {}
        Err(other) => panic!("{row} {other:?}"),
    }
    rig.clock.advance(Duration::from_secs(6)); // past any backoff
    rig.get_ok(&manager, &key, REFRESH_BOUND).await;
    rig.expire();
    rig.get_ok(&manager, &key, REFRESH_BOUND).await;
    eventually(row, "no write pending", Duration::from_secs(10), || {
        manager.pending_writes() == 0
    })
    .await;
    rig.assert_invariants(&manager, memory.as_ref(), &[key])
        .await;
}

/// An expired key whose refresh keeps failing (503, 8 rounds): 200
/// concurrent and 50 sequential gets cause one request per backoff
/// period; each answers at once with the failure or `RefreshDeferred
/// { Backoff }` and when to retry; once the provider recovers, one
/// request renews it.
pub async fn failing_refresh_is_paced(row: Row) {
    const ROUNDS: usize = 8;
    const CONCURRENT: usize = 200;
    let rig = Rig::start(row).await;
    let store = Arc::new(MemoryStore::new());
    let manager = rig.manager(store.clone());
    let key = rig.seed(&manager, "a").await;
    for _ in 0..ROUNDS {
        rig.mock().push_fault(Fault::Status(503));
    }
    rig.expire();
    for round in 1..=ROUNDS {
        let requests = rig.token_requests();
        let concurrent: Vec<_> = (0..CONCURRENT)
            .map(|_| {
                let (manager, key) = (manager.clone(), key.clone());
                tokio::spawn(async move {
                    let started = Instant::now();
                    let result = tokio::time::timeout(REFRESH_BOUND, manager.get(&key)).await;
                    (result, started.elapsed())
                })
            })
            .collect();
        for caller in concurrent {
            let (result, took) = caller.await.unwrap();
            let error = result.expect("bounded").expect_err("the provider fails");
            assert!(
                !error.requires_reauthorization() && error.is_retryable(),
                "{row} {error:?}"
            );
            assert!(took < REFRESH_BOUND, "{row}");
        }
        let mut retry_after = Duration::ZERO;
        for _ in 0..50 {
            let error = rig
                .get(&manager, &key, SERVED_BOUND)
                .await
                .expect_err("backing off");
            match &error {
                Error::RefreshDeferred {
                    reason: DeferredReason::Backoff { last },
                    retry_after: Some(after),
                } if last.http_status() == Some(503) => retry_after = *after,
                other => panic!("{row} round {round}: {other:?}"),
            }
        }
        assert_eq!(
            rig.token_requests() - requests,
            1,
            "{row} round {round}: {CONCURRENT} concurrent and 50 sequential gets, one request"
        );
        rig.clock.advance(retry_after + Duration::from_millis(1));
    }
    let requests = rig.token_requests();
    rig.get_ok(&manager, &key, REFRESH_BOUND).await;
    assert_eq!(
        rig.token_requests(),
        requests + 1,
        "{row} renewed with one request"
    );
    let failures = rig
        .events
        .count(|e| matches!(e, TokenEvent::RefreshFailed { .. }));
    assert_eq!(failures, ROUNDS, "{row} one RefreshFailed per request");
    rig.assert_invariants(&manager, store.as_ref(), &[key])
        .await;
}
