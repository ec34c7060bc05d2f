//! `PostgresStore`: `purge_superseded_rows` removes the earlier versions of
//! rows from the table's pages, read with `pageinspect`, in a database of
//! its own (dropped afterwards): no other test's transaction can keep those
//! versions alive there.

use std::str::FromStr;

use oauth2_adapters_store_sql::PostgresStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};

use super::{contains, ClearTextHistory};
use crate::conformance::unique;
use crate::encryption::ring_a;
use crate::postgres::database_url;

/// Every page of the tokens table, as the server has it.
async fn table_pages(pool: &PgPool) -> Vec<Vec<u8>> {
    sqlx::query_scalar(
        "SELECT get_raw_page('oauth2_adapters_tokens', 'main', block::BIGINT)
         FROM generate_series(0, pg_relation_size('oauth2_adapters_tokens')
                                 / current_setting('block_size')::BIGINT - 1) AS block",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn purging_removes_superseded_rows_from_the_table() {
    let Some(url) = database_url().await else {
        return;
    };
    let database = unique("oauth2_adapters_purge").replace('-', "_");
    let mut admin = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {database}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .database(&database);
    let pool = PgPoolOptions::new().connect_with(options).await.unwrap();
    // In a task, so that the database is dropped whatever happens.
    let checks = tokio::spawn(purge_checks(pool.clone())).await;
    pool.close().await;
    sqlx::raw_sql(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    if let Err(err) = checks {
        std::panic::resume_unwind(err.into_panic());
    }
}

async fn purge_checks(pool: PgPool) {
    sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pageinspect")
        .execute(&pool)
        .await
        .unwrap();
    let plain = PostgresStore::from_pool(pool.clone()).await.unwrap();
    let history = ClearTextHistory::write(&plain, 3).await;
    let marker = history.marker.as_bytes();
    let store = plain.with_encryption(ring_a());
    assert_eq!(store.reencrypt_all().await.unwrap(), 3);
    history.check_readable(&store).await;
    let pages = table_pages(&pool).await;
    assert!(
        pages.iter().any(|page| contains(page, marker)),
        "re-encrypting alone leaves the clear-text versions in the pages"
    );

    store.purge_superseded_rows().await.unwrap();
    let pages = table_pages(&pool).await;
    assert!(!pages.is_empty());
    assert!(
        pages.iter().all(|page| !contains(page, marker)),
        "clear text left in the table's pages"
    );
    history
        .check_readable(&store.clone().require_encryption())
        .await;
}
