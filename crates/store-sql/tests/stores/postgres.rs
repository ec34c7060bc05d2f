//! `PostgresStore` against a real server: `DATABASE_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`. Every test uses keys of its
//! own. An unreachable server skips the tests, or fails them when `CI=true`.

use std::time::Duration;

use oauth2_adapters_core::store::{CasOutcome, LeaseOutcome, LeaseRequest, TokenStore};
use oauth2_adapters_store_sql::PostgresStore;
use sqlx::{Connection, PgConnection};

use crate::conformance::{key, record, unique, Fixture};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The database URL, once the server has answered; `None` (skip) when it is
/// unreachable, unless `CI` is `true`, where that is a failure.
pub(crate) async fn database_url() -> Option<String> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let reason =
        match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&url)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Some(url);
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => "no answer within 10 s".to_owned(),
        };
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!(
            "PostgreSQL is unreachable ({reason}) and CI=true: start it, or point \
             DATABASE_URL at one (default {DEFAULT_URL})"
        );
    }
    eprintln!(
        "skipped: PostgreSQL is unreachable ({reason}); start it or set DATABASE_URL \
         (default {DEFAULT_URL}) to run this test"
    );
    None
}

async fn store() -> Option<PostgresStore> {
    let url = database_url().await?;
    Some(
        PostgresStore::connect(&url)
            .await
            .expect("the server answers, so connecting and migrating must succeed"),
    )
}

async fn fixture() -> Option<Fixture> {
    store().await.map(Fixture::new)
}

conformance_suite!(fixture(), leases);
raw_sql_suite!(store());

/// `url` with its connections' `search_path` set to `schema` only.
pub(crate) fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

async fn connect_at_once(url: &str, count: usize) -> Vec<PostgresStore> {
    let mut connecting = tokio::task::JoinSet::new();
    for _ in 0..count {
        let url = url.to_owned();
        connecting.spawn(async move { PostgresStore::connect(&url).await });
    }
    let mut stores = Vec::new();
    while let Some(store) = connecting.join_next().await {
        stores.push(store.unwrap().expect("every concurrent connect succeeds"));
    }
    stores
}

/// Four pools connecting at once to a database (a fresh schema) without the
/// tables all succeed, and the migration ran once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_connects_migrate_once() {
    let Some(url) = database_url().await else {
        return;
    };
    let schema = unique("oauth2_adapters_test").replace('-', "_");
    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();

    // In a task, so that the schema is dropped whatever happens.
    let checks = tokio::spawn(fresh_schema_checks(url.clone(), schema.clone())).await;
    sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
    if let Err(err) = checks {
        std::panic::resume_unwind(err.into_panic());
    }
}

async fn fresh_schema_checks(url: String, schema: String) {
    let mut admin = PgConnection::connect(&url).await.unwrap();
    let stores = connect_at_once(&with_search_path(&url, &schema), 4).await;
    let applied: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM {schema}.oauth2_adapters_migrations"
    ))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(applied, 2);
    let key = key("fresh-schema");
    stores[0]
        .compare_and_swap(&key, None, &record("a"))
        .await
        .unwrap();
    assert_eq!(stores[3].load(&key).await.unwrap().unwrap().version, 1);
    let in_schema: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM {schema}.oauth2_adapters_tokens"
    ))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(in_schema, 1);

    for store in &stores {
        store.pool().close().await;
    }
}

/// Connecting at once to the already migrated database succeeds too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_connects_to_a_migrated_database() {
    let Some(url) = database_url().await else {
        return;
    };
    connect_at_once(&url, 4).await;
}

/// Two stores (two pools) asking for one lease at the same moment: exactly
/// one gets it, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_contending_for_a_lease() {
    let (Some(a), Some(b)) = (store().await, store().await) else {
        return;
    };
    let ttl = Duration::from_secs(30);
    let request = |holder| LeaseRequest {
        holder,
        ttl,
        in_doubt_grace: ttl,
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
        let remaining = outcomes.iter().find_map(|o| match o {
            LeaseOutcome::HeldByOther { remaining, .. } => Some(*remaining),
            _ => None,
        });
        assert!(remaining.is_some_and(|r| r > Duration::ZERO && r <= ttl));
        a.release_lease(&key, "a").await.unwrap();
        b.release_lease(&key, "b").await.unwrap();
    }
}

/// The lease's expiry is the database's `now()` plus the ttl.
#[tokio::test]
async fn lease_expiry_uses_the_database_clock() {
    let Some(store) = store().await else {
        return;
    };
    let key = key("db-clock");
    let request = LeaseRequest {
        holder: "a",
        ttl: Duration::from_secs(60),
        in_doubt_grace: Duration::ZERO,
    };
    store.try_acquire_lease(&key, &request).await.unwrap();
    let seconds: f64 = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM expires_at - now())::FLOAT8 \
         FROM oauth2_adapters_leases WHERE key = $1",
    )
    .bind(key.as_str())
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!((50.0..=60.0).contains(&seconds), "{seconds}");
    store.release_lease(&key, "a").await.unwrap();
}

/// The holder writes and releases on one pool while the other polls for
/// the lease on another: the poller, once it has the lease, sees the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_taken_after_a_releasing_write_on_another_pool_sees_it() {
    let (Some(a), Some(b)) = (store().await, store().await) else {
        return;
    };
    crate::conformance::a_lease_taken_after_a_releasing_write_sees_the_write(&a, &b).await;
}

/// Writers on two pools incrementing one key: no write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_lose_nothing() {
    let (Some(a), Some(b)) = (store().await, store().await) else {
        return;
    };
    let key = key("pg-concurrent");
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..6 {
        let store = if task % 2 == 0 { a.clone() } else { b.clone() };
        let key = key.clone();
        tasks.spawn(async move {
            for _ in 0..25 {
                loop {
                    let expected = store.load(&key).await.unwrap().map(|c| c.version);
                    let next = expected.unwrap_or(0) + 1;
                    let outcome = store
                        .compare_and_swap(&key, expected, &record(&next.to_string()))
                        .await
                        .unwrap();
                    if let CasOutcome::Written { version } = outcome {
                        assert_eq!(version, next);
                        break;
                    }
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let stored = a.load(&key).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.record.access_token.as_str()),
        (150, "150")
    );
    a.delete(&key).await.unwrap();
}
