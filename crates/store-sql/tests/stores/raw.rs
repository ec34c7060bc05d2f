//! Checks that write rows behind a SQL store's back, shared by both stores.

use oauth2_adapters_core::store::TokenStore;
use oauth2_adapters_core::Error;

use crate::conformance::{key, record, unique};

/// Direct access to a store's database. Statements are built from values
/// the tests made, which need no quoting.
pub(crate) trait RawSql: TokenStore {
    /// Runs `sql` (one or more statements).
    async fn execute(&self, sql: &str);
    /// The first column of the first row, as text.
    async fn text(&self, sql: &str) -> Option<String>;
    /// Inserts a token row as is.
    async fn insert_token(&self, key: &str, provider: &str, record: &str) {
        self.execute(&format!(
            "INSERT INTO oauth2_adapters_tokens (key, provider, record, version, {}) \
             VALUES ('{key}', '{provider}', '{record}', 1, {})",
            Self::UPDATED_AT.0,
            Self::UPDATED_AT.1
        ))
        .await;
    }
    /// The `updated_at` column and a value for it.
    const UPDATED_AT: (&'static str, &'static str);
}

#[cfg(feature = "sqlite")]
impl RawSql for oauth2_adapters_store_sql::SqliteStore {
    async fn execute(&self, sql: &str) {
        sqlx::raw_sql(sql).execute(self.pool()).await.unwrap();
    }
    async fn text(&self, sql: &str) -> Option<String> {
        sqlx::query_scalar(sql)
            .fetch_optional(self.pool())
            .await
            .unwrap()
    }
    const UPDATED_AT: (&'static str, &'static str) = ("updated_at_ms", "0");
}

#[cfg(feature = "postgres")]
impl RawSql for oauth2_adapters_store_sql::PostgresStore {
    async fn execute(&self, sql: &str) {
        sqlx::raw_sql(sql).execute(self.pool()).await.unwrap();
    }
    async fn text(&self, sql: &str) -> Option<String> {
        sqlx::query_scalar(sql)
            .fetch_optional(self.pool())
            .await
            .unwrap()
    }
    const UPDATED_AT: (&'static str, &'static str) = ("updated_at", "now()");
}

/// A record that is not JSON, or not a token record, is a store error that
/// names the key and quotes nothing of the record.
pub(crate) async fn corrupt_record_is_reported_without_its_content(store: &impl RawSql) {
    let secret = unique("secret-value");
    let bodies = [
        format!("{{\"access_token\": \"{secret}\""),
        format!("{{\"provider\": \"p\", \"access_token\": \"a\", \"issued_at_ms\": \"{secret}\"}}"),
        secret.clone(),
    ];
    for body in bodies {
        let key = key("corrupt");
        store.insert_token(key.as_str(), "conformance", &body).await;
        let err = store.load(&key).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(matches!(err, Error::Store { .. }), "{text}");
        assert!(
            text.contains(&format!("stored record for {key} is not valid JSON")),
            "{text}"
        );
        assert!(
            !text.contains(&secret),
            "the error quotes the record: {text}"
        );
        // A conflict's fresh read fails the same way; delete still works.
        let err = store
            .compare_and_swap(&key, Some(9), &record("x"))
            .await
            .unwrap_err();
        assert!(!format!("{err:?}").contains(&secret));
        store.delete(&key).await.unwrap();
        assert!(store.load(&key).await.unwrap().is_none());
    }
}

/// `keys()` skips a row whose key does not parse instead of failing.
pub(crate) async fn unparsable_keys_are_skipped(store: &impl RawSql) {
    let bad = unique("not-a-key");
    let good = key("good");
    store.insert_token(&bad, "weird", "{}").await;
    store
        .compare_and_swap(&good, None, &record("a"))
        .await
        .unwrap();
    let keys = store.keys().await.unwrap();
    assert!(keys.contains(&good));
    assert!(keys.iter().all(|k| !k.as_str().contains(&bad)));
    store.delete(&good).await.unwrap();
    store
        .execute(&format!(
            "DELETE FROM oauth2_adapters_tokens WHERE key = '{bad}'"
        ))
        .await;
}

/// `load_page()` reports a corrupt row beside its key (the rest of the page
/// loads) and skips a row whose key does not parse, moving past it.
pub(crate) async fn load_page_reports_corrupt_rows_and_skips_bad_keys(store: &impl RawSql) {
    let secret = unique("secret-value");
    let (good, corrupt) = (key("page-good"), key("page-corrupt"));
    let bad = unique("not-a-key");
    store
        .compare_and_swap(&good, None, &record("a"))
        .await
        .unwrap();
    store
        .insert_token(corrupt.as_str(), "conformance", &secret)
        .await;
    store.insert_token(&bad, "weird", "{}").await;
    let (mut seen_good, mut seen_corrupt) = (0, 0);
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .load_page(after.as_deref(), 2)
            .await
            .unwrap()
            .expect("the SQL stores page");
        pages += 1;
        assert!(page.tokens.len() <= 2);
        for (key, stored) in &page.tokens {
            assert!(!key.as_str().contains(&bad), "the bad key is skipped");
            if *key == good {
                seen_good += 1;
                assert_eq!(stored.as_ref().unwrap().record.access_token, "a");
            } else if *key == corrupt {
                seen_corrupt += 1;
                let err = stored.as_ref().unwrap_err();
                assert!(!format!("{err} {err:?}").contains(&secret), "{err:?}");
            }
        }
        match page.next {
            Some(next) => {
                assert!(
                    after.as_deref() < Some(next.as_str()),
                    "the cursor moves on"
                );
                after = Some(next);
            }
            None => break,
        }
        assert!(pages < 100_000, "the pages never end");
    }
    assert_eq!((seen_good, seen_corrupt), (1, 1));
    store.delete(&good).await.unwrap();
    store.delete(&corrupt).await.unwrap();
    store
        .execute(&format!(
            "DELETE FROM oauth2_adapters_tokens WHERE key = '{bad}'"
        ))
        .await;
}

/// The migrations are recorded in the crate's own table, not sqlx's.
pub(crate) async fn migrations_have_their_own_table(store: &impl RawSql) {
    let applied = store
        .text("SELECT CAST(COUNT(*) AS TEXT) FROM oauth2_adapters_migrations WHERE version = 1")
        .await;
    assert_eq!(applied.as_deref(), Some("1"));
    let description = store
        .text("SELECT description FROM oauth2_adapters_migrations WHERE version = 1")
        .await;
    assert_eq!(description.as_deref(), Some("tokens"));
}

/// Generates the tests above for a store fixture (a future of `Option<S>`).
macro_rules! raw_sql_suite {
    ($store:expr) => {
        raw_sql_suite!(@tests $store;
            corrupt_record_is_reported_without_its_content,
            unparsable_keys_are_skipped,
            load_page_reports_corrupt_rows_and_skips_bad_keys,
            migrations_have_their_own_table
        );
    };
    (@tests $store:expr; $($check:ident),+) => {
        $(
            #[tokio::test]
            async fn $check() {
                if let Some(store) = $store.await {
                    crate::raw::$check(&store).await;
                }
            }
        )+
    };
}
