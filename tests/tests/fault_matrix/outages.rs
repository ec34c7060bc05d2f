//! Rows 2 and 3: PostgreSQL unreachable for 10 s while tokens fall due
//! (refused, or a partition), and PostgreSQL restarting (every connection
//! reset) between, during and all through refreshes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth2_adapters::testkit::{Fault, ProxyMode};
use oauth2_adapters::TokenStore;

use super::rig::{eventually, Rig, Row, REFRESH_BOUND, SERVED_BOUND};
use super::stores::{cleanup, ProxiedPostgres};

const OUTAGE: Duration = Duration::from_secs(10);
const HOLD: Duration = Duration::from_millis(800);

#[derive(Clone, Copy, Debug)]
enum Outage {
    /// The server is down: every connection reset, new ones refused.
    Refused,
    /// A partition: bytes vanish, connections hang (until the pool's 2 s
    /// acquire timeout).
    Blackholed,
}

pub async fn refused(row: Row) {
    unreachable_for_10s(row, Outage::Refused).await;
}

pub async fn blackholed(row: Row) {
    unreachable_for_10s(row, Outage::Blackholed).await;
}

/// Three keys fall due; the refreshes of two reach the provider, which
/// commits them, and then PostgreSQL is gone for 10 s. Meanwhile every
/// key is served at once (two with their new tokens, pending writes; the
/// third with its old one, still valid, its refreshes failing at the
/// store without a request); afterwards the pending writes land and the
/// third key is refreshed.
async fn unreachable_for_10s(row: Row, outage: Outage) {
    let Some(pg) = ProxiedPostgres::start().await else {
        return;
    };
    let rig = Rig::start(row).await;
    let store = Arc::new(pg.store().await);
    let manager = rig.manager(store.clone());
    let keys = rig.seed_many(&manager, &row.account_prefix(), 3).await;
    let served = |i: usize| {
        manager
            .try_get(&keys[i])
            .map(|t| t.expose_secret().to_owned())
    };
    let old: Vec<_> = (0..3).map(|i| served(i).expect("cached")).collect();

    rig.make_due();
    let (issued, requests) = (rig.issued(), rig.token_requests());
    for key in &keys[..2] {
        rig.mock().push_fault(Fault::StallAfterProcessing(HOLD));
        assert!(
            manager.try_get(key).is_some(),
            "{row} served while its refresh starts"
        );
    }
    eventually(
        row,
        "both refreshes committed",
        Duration::from_secs(5),
        || rig.issued() >= issued + 2,
    )
    .await;
    match outage {
        Outage::Refused => {
            pg.proxy.reset_all();
            pg.proxy.cut_for(OUTAGE, ProxyMode::Refuse);
        }
        Outage::Blackholed => pg.proxy.cut_for(OUTAGE, ProxyMode::Blackhole),
    }
    let cut_at = Instant::now();
    eventually(row, "two pending writes", Duration::from_secs(6), || {
        manager.pending_writes() == 2
    })
    .await;
    assert!(
        rig.events.write_failures() >= 2,
        "{row} StoreWriteFailed: {:?}",
        rig.events.names()
    );

    // During the outage: served at once, the new tokens and the old valid one.
    let mut advanced = false;
    while cut_at.elapsed() < OUTAGE - Duration::from_millis(500) {
        for (i, key) in keys.iter().enumerate() {
            let token = rig.get_ok(&manager, key, SERVED_BOUND).await;
            let token = token.expose_secret();
            if i < 2 {
                assert_ne!(token, old[i], "{row} key {i}: its pending token is served");
            } else {
                assert_eq!(
                    token, old[i],
                    "{row} key 2: its old token, still valid, is served"
                );
            }
        }
        if !advanced && cut_at.elapsed() > OUTAGE / 2 {
            rig.clock.advance(Duration::from_secs(30)); // 20 s left on key 2's token
            advanced = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        rig.token_requests(),
        requests + 2,
        "{row} no request without the store"
    );
    assert_eq!(
        manager.pending_writes(),
        2,
        "{row} both tokens still pending"
    );

    // Afterwards: the writes land, and key 2 is refreshed.
    eventually(row, "the outage ends", OUTAGE, || {
        pg.proxy.mode() == ProxyMode::Pass
    })
    .await;
    eventually(
        row,
        "the pending writes land",
        Duration::from_secs(10),
        || manager.pending_writes() == 0,
    )
    .await;
    assert!(
        rig.events.write_recoveries() >= 2,
        "{row} StoreWriteRecovered: {:?}",
        rig.events.names()
    );
    for (i, key) in keys.iter().enumerate().take(2) {
        let stored = pg.direct.load(key).await.unwrap().expect("stored");
        assert_eq!(
            Some(stored.record.access_token),
            served(i),
            "{row} key {i}: the served token is stored"
        );
    }
    rig.clock.advance(Duration::from_secs(25)); // key 2 expired, past its backoff
    let renewed = rig.get_ok(&manager, &keys[2], REFRESH_BOUND).await;
    assert_ne!(
        renewed.expose_secret(),
        old[2],
        "{row} key 2 refreshed after the outage"
    );
    rig.assert_invariants(&manager, &pg.direct, &keys).await;
    cleanup(&pg.direct, &keys).await;
}

/// A partition that starts while one of our statements waits in the
/// server (another session holds the key's row lock), and lasts 10 s: the
/// server's answer is lost in it. The caller waiting for that refresh must
/// still be answered within the bound (with an error, then the token once
/// the database is back). Today it waits forever: no store call is bounded
/// in time, and the connection is never given up.
pub async fn partitioned_mid_statement(row: Row) {
    let Some(pg) = ProxiedPostgres::start().await else {
        return;
    };
    let rig = Rig::start(row).await;
    let store = Arc::new(pg.store().await);
    let manager = rig.manager(store.clone());
    let key = rig.seed(&manager, &row.account_prefix()).await;
    let locker = tokio::spawn({
        let pool = pg.direct.pool().clone();
        let sql = format!(
            "BEGIN; SELECT 1 FROM oauth2_adapters_tokens WHERE key = '{}' FOR UPDATE; \
             SELECT pg_sleep(1.5); ROLLBACK;",
            key.as_str().replace('\'', "''")
        );
        async move {
            oauth2_adapters::store_sql::sqlx::raw_sql(&sql)
                .execute(&pool)
                .await
                .map(|_| ())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await; // the row is locked
    rig.expire();
    let waiting = tokio::spawn({
        let (manager, key) = (manager.clone(), key.clone());
        async move { tokio::time::timeout(PARTITION_BOUND, manager.get(&key)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await; // our lease statement waits for the lock
    pg.proxy.cut_for(OUTAGE, ProxyMode::Blackhole);
    locker.await.unwrap().expect("the locking session ends");
    let answer = waiting.await.unwrap();
    assert!(
        answer.is_ok(),
        "{row} a get waiting for a refresh whose store statement was cut by a 10 s partition \
         did not answer within {PARTITION_BOUND:?}"
    );
    if let Ok(Err(error)) = &answer {
        assert!(!error.requires_reauthorization(), "{row} {error:?}");
    }
    eventually(row, "the partition ends", OUTAGE, || {
        pg.proxy.mode() == ProxyMode::Pass
    })
    .await;
    rig.clock.advance(Duration::from_secs(6)); // past any backoff
    rig.get_ok(&manager, &key, REFRESH_BOUND).await;
    rig.assert_invariants(&manager, &pg.direct, std::slice::from_ref(&key))
        .await;
    cleanup(&pg.direct, &[key]).await;
}

/// The bound for the partitioned caller: the 10 s partition plus room.
const PARTITION_BOUND: Duration = Duration::from_secs(15);

/// PostgreSQL restarts (the proxy resets every open connection):
/// between refreshes (the pool's connections are dead when the next
/// refresh needs them), during one (after the provider committed, before
/// our write), and at random instants all through a series of refreshes,
/// so that some statements are cut mid-flight (a write that committed
/// while its answer was lost included).
pub async fn restarted(row: Row) {
    let Some(pg) = ProxiedPostgres::start().await else {
        return;
    };
    let rig = Rig::start(row).await;
    let store = Arc::new(pg.store().await);
    let manager = rig.manager(store.clone());
    let keys = rig.seed_many(&manager, &row.account_prefix(), 2).await;

    // Between refreshes.
    for _ in 0..2 {
        pg.proxy.reset_all();
        rig.expire();
        let requests = rig.token_requests();
        for key in &keys {
            rig.get_ok(&manager, key, REFRESH_BOUND).await;
        }
        assert_eq!(
            rig.token_requests(),
            requests + keys.len(),
            "{row} one refresh per key"
        );
    }
    assert_eq!(manager.pending_writes(), 0, "{row}");

    // During one: after the provider's commit, before our write.
    rig.mock().push_fault(Fault::StallAfterProcessing(HOLD));
    rig.expire();
    let issued = rig.issued();
    let waiting = tokio::spawn({
        let (manager, key) = (manager.clone(), keys[0].clone());
        async move { tokio::time::timeout(REFRESH_BOUND, manager.get(&key)).await }
    });
    rig.committed_after(issued).await;
    pg.proxy.reset_all();
    let fresh = waiting
        .await
        .unwrap()
        .expect("bounded")
        .expect("the rotated token is served");
    eventually(row, "no write pending", Duration::from_secs(10), || {
        manager.pending_writes() == 0
    })
    .await;
    let stored = pg.direct.load(&keys[0]).await.unwrap().expect("stored");
    assert_eq!(
        stored.record.access_token,
        fresh.expose_secret(),
        "{row} stored"
    );
    rig.get_ok(&manager, &keys[1], REFRESH_BOUND).await;

    // All through: restarts at random instants while the keys are refreshed.
    let seed = fastrand::u64(..);
    let chaos = AtomicBool::new(true);
    let restarts = async {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut n = 0;
        while chaos.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(rng.u64(10..120))).await;
            pg.proxy.reset_all();
            n += 1;
        }
        n
    };
    let refreshes = async {
        let (mut refreshed, mut failed) = (0, 0);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            rig.expire();
            for key in &keys {
                // A refresh cut under it is retried after its backoff.
                for attempt in 0.. {
                    assert!(attempt < 200, "{row} (seed {seed}) {key}: never refreshed");
                    match rig.get(&manager, key, REFRESH_BOUND).await {
                        Ok(_) => break,
                        Err(error) => {
                            if std::env::var("FM_DEBUG").is_ok() {
                                eprintln!("{row} {error}");
                            }
                            failed += 1;
                            rig.clock.advance(Duration::from_secs(6));
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
                refreshed += 1;
            }
        }
        chaos.store(false, Ordering::SeqCst);
        (refreshed, failed)
    };
    let (restarts, (refreshed, failed)) = tokio::join!(restarts, refreshes);
    eprintln!(
        "{row} seed {seed}: {restarts} restarts, {refreshed} refreshes, {failed} failed gets"
    );
    eventually(row, "no write pending", Duration::from_secs(10), || {
        manager.pending_writes() == 0
    })
    .await;
    rig.assert_invariants(&manager, &pg.direct, &keys).await;
    cleanup(&pg.direct, &keys).await;
}
