//! `SqliteStore`: the conformance suite in memory and on a file, then
//! durability, reopening and concurrent writers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters_core::store::{CasOutcome, LeaseRequest, TokenStore};
use oauth2_adapters_store_sql::SqliteStore;
use tempfile::TempDir;

use crate::conformance::{full_record, key, record, Fixture};
use crate::raw::RawSql;

fn temp_dir() -> TempDir {
    tempfile::tempdir().unwrap()
}

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("tokens.db")
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path).await.unwrap()
}

mod in_memory {
    use super::*;

    async fn store() -> Option<Fixture> {
        Some(Fixture::new(SqliteStore::in_memory().await.unwrap()))
    }

    conformance_suite!(store(), leases);

    async fn raw() -> Option<SqliteStore> {
        Some(SqliteStore::in_memory().await.unwrap())
    }

    raw_sql_suite!(raw());
}

mod on_a_file {
    use super::*;

    async fn store() -> Option<Fixture> {
        let dir = temp_dir();
        let store = open(&db_path(&dir)).await;
        Some(Fixture {
            store: Box::new(store),
            _guard: Some(Box::new(dir)),
        })
    }

    conformance_suite!(store(), leases);
}

#[tokio::test]
async fn open_sets_the_durability_settings() {
    let dir = temp_dir();
    let store = open(&db_path(&dir)).await;
    let mut conn = store.pool().acquire().await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!((mode.as_str(), synchronous, busy), ("wal", 2, 5000));
}

#[tokio::test]
async fn the_store_survives_a_reopen() {
    let dir = temp_dir();
    let key = key("reopen");
    let full = full_record();
    {
        let store = open(&db_path(&dir)).await;
        store.compare_and_swap(&key, None, &full).await.unwrap();
        store.compare_and_swap(&key, Some(1), &full).await.unwrap();
        store.pool().close().await;
    }
    let store = open(&db_path(&dir)).await;
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert!(stored.record == full);
    assert_eq!(store.keys().await.unwrap(), vec![key.clone()]);
    // Reopening ran the migrations again: nothing to do, nothing lost.
    let migrations = store
        .text("SELECT CAST(COUNT(*) AS TEXT) FROM oauth2_adapters_migrations")
        .await;
    assert_eq!(migrations.as_deref(), Some("2"));
}

#[tokio::test]
async fn sqlx_migrations_table_is_left_alone() {
    let store = SqliteStore::in_memory().await.unwrap();
    let sqlx_table = store
        .text("SELECT name FROM sqlite_master WHERE name = '_sqlx_migrations'")
        .await;
    assert_eq!(sqlx_table, None);
}

/// Opening a new file from several pools at once (as processes starting
/// together would): every open succeeds, and the migration runs once. The
/// switch to WAL, which SQLite does not wait for, is the racy part.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opening_one_new_file_at_once_all_succeed() {
    for _ in 0..20 {
        let dir = temp_dir();
        let path = db_path(&dir);
        let mut opening = tokio::task::JoinSet::new();
        for i in 0..8 {
            let path = path.clone();
            // Staggered, so that some open while others migrate.
            let delay = Duration::from_micros(500 * i);
            opening.spawn(async move {
                tokio::time::sleep(delay).await;
                SqliteStore::open(path).await
            });
        }
        let mut stores = Vec::new();
        while let Some(store) = opening.join_next().await {
            stores.push(store.unwrap().expect("every concurrent open succeeds"));
        }
        let migrations = stores[0]
            .text("SELECT CAST(COUNT(*) AS TEXT) FROM oauth2_adapters_migrations")
            .await;
        assert_eq!(migrations.as_deref(), Some("2"));
        let mode = stores[7].text("PRAGMA journal_mode").await;
        assert_eq!(mode.as_deref(), Some("wal"));
    }
}

/// 8 tasks × 50 increments (load, then CAS on the version read, retried on
/// conflict) through two stores opened separately on one file: no write is
/// lost and the file is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_do_not_corrupt_the_file() {
    const TASKS: usize = 8;
    const INCREMENTS: usize = 50;
    let dir = temp_dir();
    let path = db_path(&dir);
    let stores = [open(&path).await, open(&path).await];
    let key = key("concurrent");
    let writes = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = stores[task % 2].clone();
        let (key, writes, conflicts) = (key.clone(), writes.clone(), conflicts.clone());
        tasks.spawn(async move {
            for _ in 0..INCREMENTS {
                loop {
                    let current = store.load(&key).await.unwrap();
                    let expected = current.map(|c| c.version);
                    let next = expected.unwrap_or(0) + 1;
                    let outcome = store
                        .compare_and_swap(&key, expected, &record(&next.to_string()))
                        .await
                        .unwrap();
                    match outcome {
                        CasOutcome::Written { version } => {
                            assert_eq!(version, next);
                            writes.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        CasOutcome::Conflict { .. } => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let writes = writes.load(Ordering::Relaxed);
    assert_eq!(writes, (TASKS * INCREMENTS) as u64);
    for store in &stores {
        let stored = store.load(&key).await.unwrap().unwrap();
        assert_eq!(stored.version, writes);
        assert_eq!(stored.record.access_token, writes.to_string());
    }
    let integrity = stores[0].text("PRAGMA integrity_check").await;
    assert_eq!(integrity.as_deref(), Some("ok"));
    eprintln!(
        "{writes} writes, {} conflicts retried",
        conflicts.load(Ordering::Relaxed)
    );
}

/// Two stores opened on one file (as two processes would) asking for one
/// lease at the same moment: exactly one gets it, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_contending_for_a_lease() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let (a, b) = (open(&path).await, open(&path).await);
    let request = |holder| LeaseRequest {
        holder,
        ttl: Duration::from_secs(30),
        in_doubt_grace: Duration::from_secs(30),
    };
    for _ in 0..25 {
        let key = key("contended-lease");
        let (for_a, for_b) = (request("a"), request("b"));
        let (got_a, got_b) = tokio::join!(
            a.try_acquire_lease(&key, &for_a),
            b.try_acquire_lease(&key, &for_b),
        );
        let outcomes = [got_a.unwrap(), got_b.unwrap()];
        let acquired = outcomes.iter().filter(|o| o.is_acquired()).count();
        assert_eq!(acquired, 1, "{outcomes:?}");
    }
}

/// The holder writes and releases on one store while the other polls for
/// the lease on another (as two processes would): the poller, once it has
/// the lease, sees the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_taken_after_a_releasing_write_on_another_store_sees_it() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let (a, b) = (open(&path).await, open(&path).await);
    crate::conformance::a_lease_taken_after_a_releasing_write_sees_the_write(&a, &b).await;
}
