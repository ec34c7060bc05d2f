//! Rows 4 and 7: several managers on one store. A provider slower than
//! the lease (the holder must keep extending it), and two managers in one
//! process sharing a `MemoryStore`, a SQLite file or a PostgreSQL database.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters::manager::TokenManager;
use oauth2_adapters::testkit::Fault;
use oauth2_adapters::{Error, MemoryStore, TokenStore};

use super::rig::{eventually, Rig, RigOptions, Row, REFRESH_BOUND};
use super::stores::{cleanup, direct_postgres, FailingStore, SqliteFile};

/// Row 4's lease, and the request timeout its providers declare.
const SHORT_LEASE: Duration = Duration::from_secs(2);
/// How long the provider holds its answer after committing: longer than
/// the lease, within the adapter's real (10 s) timeout.
const SLOW: Duration = Duration::from_millis(3200);

/// Two managers (their own PostgreSQL pools) on one key; the provider
/// answers after 3.2 s, past the 2 s lease. The holder extends its lease
/// while the request runs, so the second manager, asking after the first
/// lease would have lapsed, waits for the holder's token instead of
/// sending the refresh token again (or giving up on a lease in doubt).
pub async fn provider_slower_than_lease(row: Row) {
    let (Some(store_one), Some(store_two)) = (direct_postgres().await, direct_postgres().await)
    else {
        return;
    };
    let rig = Rig::start_with(
        row,
        RigOptions {
            http_timeout: Duration::from_secs(10),
            ..RigOptions::default()
        },
    )
    .await;
    let (store_one, store_two): (Arc<dyn TokenStore>, Arc<dyn TokenStore>) =
        (Arc::new(store_one), Arc::new(store_two));
    // The adapter as configured may take 10 s: a 2 s lease is refused...
    let refused = rig
        .builder(store_one.clone())
        .lease(SHORT_LEASE, Duration::from_millis(20))
        .build();
    assert!(
        matches!(refused, Err(Error::Configuration { .. })),
        "{row} {refused:?}"
    );
    // ...but accepted for a provider declaring a 2 s timeout (which this
    // one does not keep: it really waits up to 10 s).
    let manager = |store: &Arc<dyn TokenStore>| {
        rig.builder_with(store.clone(), rig.provider_declaring(SHORT_LEASE))
            .lease(SHORT_LEASE, Duration::from_millis(20))
            .build()
            .expect("a 2 s lease for a 2 s provider")
    };
    let (one, two) = (manager(&store_one), manager(&store_two));
    let key = rig.seed(&one, &row.account_prefix()).await;

    rig.mock().push_fault(Fault::StallAfterProcessing(SLOW));
    rig.expire();
    let requests = rig.token_requests();
    let first = tokio::spawn({
        let (one, key) = (one.clone(), key.clone());
        async move { tokio::time::timeout(REFRESH_BOUND, one.get(&key)).await }
    });
    tokio::time::sleep(SHORT_LEASE + Duration::from_millis(300)).await; // the first lease's ttl is over
    let second = rig.get_ok(&two, &key, REFRESH_BOUND).await;
    let first = first
        .await
        .unwrap()
        .expect("bounded")
        .expect("the holder gets its token");
    assert_eq!(
        first.expose_secret(),
        second.expose_secret(),
        "{row} both get the one new token"
    );
    assert_eq!(rig.token_requests(), requests + 1, "{row} one request");
    rig.assert_invariants(&one, store_one.as_ref(), std::slice::from_ref(&key))
        .await;
    rig.assert_invariants(&two, store_two.as_ref(), std::slice::from_ref(&key))
        .await;
    cleanup(store_one.as_ref(), &[key]).await;
}

/// Which store two managers share in row 7.
#[derive(Clone, Copy, Debug)]
enum Shared {
    Memory,
    SqliteFile,
    Postgres,
}

pub async fn two_managers_memory(row: Row) {
    two_managers(row, Shared::Memory).await;
}

pub async fn two_managers_sqlite_file(row: Row) {
    two_managers(row, Shared::SqliteFile).await;
}

pub async fn two_managers_postgres(row: Row) {
    two_managers(row, Shared::Postgres).await;
}

/// Two managers in one process, each with its own handle on the shared
/// store (one `MemoryStore`; two `SqliteStore::open` pools on one file; two
/// PostgreSQL pools); 3 keys expire; 10 callers per key on each manager
/// while the provider takes 300 ms per refresh: each key is refreshed once.
async fn two_managers(row: Row, shared: Shared) {
    let file = SqliteFile::new();
    let (one, two): (Arc<dyn TokenStore>, Arc<dyn TokenStore>) = match shared {
        Shared::Memory => {
            let store = Arc::new(MemoryStore::new());
            (store.clone(), store)
        }
        Shared::SqliteFile => (Arc::new(file.open().await), Arc::new(file.open().await)),
        Shared::Postgres => {
            let (Some(a), Some(b)) = (direct_postgres().await, direct_postgres().await) else {
                return;
            };
            (Arc::new(a), Arc::new(b))
        }
    };
    let rig = Rig::start(row).await;
    let managers = [rig.manager(one.clone()), rig.manager(two)];
    let keys = rig.seed_many(&managers[0], &row.account_prefix(), 3).await;
    for _ in &keys {
        rig.mock()
            .push_fault(Fault::Delay(Duration::from_millis(300)));
    }
    rig.expire();
    let (requests, rotations) = (rig.token_requests(), rig.mock().rotations().len());
    let mut callers = Vec::new();
    for manager in &managers {
        for key in &keys {
            for _ in 0..10 {
                let (manager, key): (TokenManager, _) = (manager.clone(), key.clone());
                callers.push((
                    key.clone(),
                    tokio::spawn(async move {
                        tokio::time::timeout(REFRESH_BOUND, manager.get(&key)).await
                    }),
                ));
            }
        }
    }
    let mut tokens = HashSet::new();
    for (key, caller) in callers {
        let token = caller
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("{row} a caller of {key} waited past {REFRESH_BOUND:?}"))
            .unwrap_or_else(|e| panic!("{row} a caller of {key} failed ({shared:?}): {e:?}"));
        tokens.insert((key, token.expose_secret().to_owned()));
    }
    assert_eq!(
        tokens.len(),
        keys.len(),
        "{row} ({shared:?}) every caller of a key got its one new token"
    );
    assert_eq!(
        rig.token_requests(),
        requests + keys.len(),
        "{row} ({shared:?}) one request per key"
    );
    if rig.rotates() {
        assert_eq!(
            rig.mock().rotations().len(),
            rotations + keys.len(),
            "{row} one rotation per key"
        );
    }
    for manager in &managers {
        rig.assert_invariants(manager, one.as_ref(), &keys).await;
    }
    if matches!(shared, Shared::Postgres) {
        cleanup(one.as_ref(), &keys).await;
    }
}

/// Two managers on one store; the first one's writes fail (its own
/// handle on the store), so the token it rotated stays a pending write
/// for longer than the lease and its in-doubt grace (both short here).
/// Its writer keeps the lease meanwhile, so the second manager, whose key
/// expired, sends nothing (it is told another instance is refreshing) and
/// gets the first one's token once that write lands.
pub async fn pending_write_keeps_the_lease(row: Row) {
    let rig = Rig::start(row).await;
    let shared: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let failing = FailingStore::new(shared.clone());
    let build = |store: Arc<dyn TokenStore>| {
        rig.builder(store)
            .lease(SHORT_LEASE, Duration::from_millis(20))
            .in_doubt_grace(Duration::from_secs(1))
            .build()
            .expect("valid")
    };
    let (one, two) = (build(failing.clone()), build(shared.clone()));
    let key = rig.seed(&one, "a").await;
    failing.fail_writes(true);
    rig.expire();
    let requests = rig.token_requests();
    let pending = rig.get_ok(&one, &key, REFRESH_BOUND).await;
    assert_eq!(one.pending_writes(), 1, "{row}");
    // Past the lease and the grace: only a kept lease stops the other one.
    tokio::time::sleep(SHORT_LEASE + Duration::from_millis(1500)).await;
    let error = rig
        .get(&two, &key, REFRESH_BOUND)
        .await
        .expect_err("the other holds the key");
    assert!(
        matches!(error, Error::RefreshDeferred { .. }),
        "{row} {error:?}"
    );
    assert_eq!(
        rig.token_requests(),
        requests + 1,
        "{row} the second manager sent nothing"
    );
    failing.fail_writes(false);
    eventually(
        row,
        "the pending write lands",
        Duration::from_secs(10),
        || one.pending_writes() == 0,
    )
    .await;
    rig.clock.advance(Duration::from_secs(6)); // past the second one's backoff
    let theirs = rig.get_ok(&two, &key, REFRESH_BOUND).await;
    assert_eq!(
        theirs.expose_secret(),
        pending.expose_secret(),
        "{row} the first one's token"
    );
    assert_eq!(rig.token_requests(), requests + 1, "{row}");
    rig.assert_invariants(&two, shared.as_ref(), std::slice::from_ref(&key))
        .await;
}
