//! Encryption at rest on `SqliteStore`: the conformance suite with
//! encryption on, the encryption checks, and rotation.

use oauth2_adapters_core::store::TokenStore;
use oauth2_adapters_core::Result;
use oauth2_adapters_store_sql::{EncryptionKeys, SqliteStore};

use super::{ring_a, Encrypted};
use crate::conformance::Fixture;

impl Encrypted for SqliteStore {
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
        sqlx::query_scalar("SELECT record FROM oauth2_adapters_tokens WHERE key = ?")
            .bind(key)
            .fetch_one(self.pool())
            .await
            .unwrap()
    }
    async fn set_record_text(&self, key: &str, text: &str) {
        sqlx::query("UPDATE oauth2_adapters_tokens SET record = ? WHERE key = ?")
            .bind(text)
            .bind(key)
            .execute(self.pool())
            .await
            .unwrap();
    }
}

async fn plain() -> Option<SqliteStore> {
    Some(SqliteStore::in_memory().await.unwrap())
}

mod checks {
    use super::*;

    encryption_suite!(plain());
}

mod encrypted_conformance {
    use super::*;

    async fn store() -> Option<Fixture> {
        let store = SqliteStore::in_memory().await.unwrap();
        Some(Fixture::new(store.with_encryption(ring_a())))
    }

    conformance_suite!(store(), leases);

    async fn raw() -> Option<SqliteStore> {
        Some(
            SqliteStore::in_memory()
                .await
                .unwrap()
                .with_encryption(ring_a()),
        )
    }

    raw_sql_suite!(raw());
}

mod required_conformance {
    use super::*;

    async fn store() -> Option<Fixture> {
        let store = SqliteStore::in_memory().await.unwrap();
        Some(Fixture::new(
            store.with_encryption(ring_a()).require_encryption(),
        ))
    }

    conformance_suite!(store());
}

#[tokio::test]
async fn rotation_rewrites_every_row_under_the_current_key() {
    super::rotation_rewrites_every_row_under_the_current_key(plain().await.unwrap()).await;
}

#[tokio::test]
async fn tricky_values_survive_gaining_keys() {
    super::tricky_values_survive_gaining_keys(plain().await.unwrap()).await;
}

#[tokio::test]
async fn rotation_stops_at_an_unreadable_row() {
    super::rotation_stops_at_an_unreadable_row(plain().await.unwrap()).await;
}

/// Two stores on one file, as two processes would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_never_overwrites_a_concurrent_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let writer = SqliteStore::open(&path).await.unwrap();
    let rotator = SqliteStore::open(&path).await.unwrap();
    super::rotation_never_overwrites_a_concurrent_write(writer, rotator).await;
}

/// A row encrypted with key `a`, read after reopening the file with the
/// key ring from its text form.
#[tokio::test]
async fn a_reopened_file_reads_with_the_same_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let key = crate::conformance::key("reopened");
    let full = crate::conformance::full_record();
    {
        let store = SqliteStore::open(&path)
            .await
            .unwrap()
            .with_encryption(ring_a());
        store.compare_and_swap(&key, None, &full).await.unwrap();
        store.pool().close().await;
    }
    let keys: EncryptionKeys = format!("a:{}", "a1".repeat(32)).parse().unwrap();
    let store = SqliteStore::open(&path)
        .await
        .unwrap()
        .with_encryption(keys);
    assert!(store.load(&key).await.unwrap().unwrap().record == full);
}
