//! Encryption at rest on `PostgresStore`. The checks that rewrite the whole
//! table run in a schema of their own, dropped afterwards.

use std::future::Future;

use oauth2_adapters_core::Result;
use oauth2_adapters_store_sql::{EncryptionKeys, PostgresStore};
use sqlx::{Connection, PgConnection};

use super::{ring_a, Encrypted};
use crate::conformance::{unique, Fixture};
use crate::postgres::{database_url, with_search_path};

impl Encrypted for PostgresStore {
    fn encrypted(self, keys: EncryptionKeys) -> Self {
        self.with_encryption(keys)
    }
    fn requiring(self) -> Self {
        self.require_encryption()
    }
    async fn reencrypt(&self) -> Result<u64> {
        self.reencrypt_all().await
    }
    async fn record_text(&self, key: &str) -> String {
        sqlx::query_scalar("SELECT record FROM oauth2_adapters_tokens WHERE key = $1")
            .bind(key)
            .fetch_one(self.pool())
            .await
            .unwrap()
    }
    async fn set_record_text(&self, key: &str, text: &str) {
        sqlx::query("UPDATE oauth2_adapters_tokens SET record = $1 WHERE key = $2")
            .bind(text)
            .bind(key)
            .execute(self.pool())
            .await
            .unwrap();
    }
}

async fn plain() -> Option<PostgresStore> {
    let url = database_url().await?;
    Some(PostgresStore::connect(&url).await.unwrap())
}

mod checks {
    use super::*;

    encryption_suite!(plain());
}

mod encrypted_conformance {
    use super::*;

    async fn store() -> Option<Fixture> {
        plain()
            .await
            .map(|store| Fixture::new(store.with_encryption(ring_a())))
    }

    conformance_suite!(store(), leases);
}

/// Runs `check` on two stores (two pools) on a fresh schema, then drops it.
async fn in_fresh_schema<F, Fut>(check: F)
where
    F: FnOnce(PostgresStore, PostgresStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = database_url().await else {
        return;
    };
    let schema = unique("oauth2_adapters_enc").replace('-', "_");
    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let scoped = with_search_path(&url, &schema);
    let one = PostgresStore::connect(&scoped).await.unwrap();
    let two = PostgresStore::connect(&scoped).await.unwrap();
    let (pool_one, pool_two) = (one.pool().clone(), two.pool().clone());
    // In a task, so that the schema is dropped whatever happens.
    let result = tokio::spawn(check(one, two)).await;
    pool_one.close().await;
    pool_two.close().await;
    sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .unwrap();
    if let Err(err) = result {
        std::panic::resume_unwind(err.into_panic());
    }
}

#[tokio::test]
async fn rotation_rewrites_every_row_under_the_current_key() {
    in_fresh_schema(|store, _| super::rotation_rewrites_every_row_under_the_current_key(store))
        .await;
}

#[tokio::test]
async fn tricky_values_survive_gaining_keys() {
    in_fresh_schema(|store, _| super::tricky_values_survive_gaining_keys(store)).await;
}

#[tokio::test]
async fn rotation_stops_at_an_unreadable_row() {
    in_fresh_schema(|store, _| super::rotation_stops_at_an_unreadable_row(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_never_overwrites_a_concurrent_write() {
    in_fresh_schema(super::rotation_never_overwrites_a_concurrent_write).await;
}
