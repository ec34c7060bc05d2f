//! Rows 11 and 12: token values that look like a store's ciphertext, and
//! a provider that paces its clients with `Retry-After: <HTTP-date>`.

use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters::store_sql::EncryptionKeys;
use oauth2_adapters::testkit::Fault;
use oauth2_adapters::{DeferredReason, Error, MemoryStore, TokenStore};

use super::rig::{Rig, RigOptions, Row, REFRESH_BOUND, SERVED_BOUND};
use super::stores::{cleanup, direct_postgres, SqliteFile};

/// The mock issues every access and refresh token as `enc:…`, the prefix
/// the SQL stores give their ciphertext. Through every store (memory;
/// SQLite and PostgreSQL, each without and with encryption keys) the
/// token is stored, read back by a second manager (a restart) byte for
/// byte, and refreshed with the stored `enc:…` refresh token.
pub async fn enc_looking_token_values(row: Row) {
    let options = RigOptions {
        token_prefix: "enc:",
        ..RigOptions::default()
    };
    let rig = Rig::start_with(row, options).await;
    let ring = || EncryptionKeys::new("2026-01", &[7; 32]).unwrap();
    let (plain_file, sealed_file) = (SqliteFile::new(), SqliteFile::new());
    let mut stores: Vec<(&str, Arc<dyn TokenStore>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        ("sqlite", Arc::new(plain_file.open().await)),
        (
            "sqlite+keys",
            Arc::new(sealed_file.open().await.with_encryption(ring())),
        ),
    ];
    if let (Some(plain), Some(sealed)) = (direct_postgres().await, direct_postgres().await) {
        stores.push(("postgres", Arc::new(plain)));
        stores.push(("postgres+keys", Arc::new(sealed.with_encryption(ring()))));
    }
    let prefix = row.account_prefix();
    for (name, store) in stores {
        let first = rig.manager(store.clone());
        let key = rig.seed(&first, &format!("{prefix}-{name}")).await;
        let served = rig.get_ok(&first, &key, REFRESH_BOUND).await;
        assert!(
            served.expose_secret().starts_with("enc:"),
            "{row} {name}: the mock issues enc:… tokens"
        );
        let stored = store.load(&key).await.unwrap().expect("stored");
        assert_eq!(
            stored.record.access_token,
            served.expose_secret(),
            "{row} {name}: read back as written"
        );
        if rig.rotates() {
            let refresh = stored.record.refresh_token.as_deref().unwrap_or_default();
            assert!(refresh.starts_with("enc:"), "{row} {name}");
        }

        let restarted = rig.manager(store.clone());
        let reread = rig.get_ok(&restarted, &key, SERVED_BOUND).await;
        assert_eq!(
            reread.expose_secret(),
            served.expose_secret(),
            "{row} {name}: a restart reads the same token"
        );
        rig.expire();
        let requests = rig.token_requests();
        let renewed = rig.get_ok(&restarted, &key, REFRESH_BOUND).await;
        assert_eq!(rig.token_requests(), requests + 1, "{row} {name}");
        assert_ne!(renewed.expose_secret(), served.expose_secret(), "{row}");
        assert!(renewed.expose_secret().starts_with("enc:"), "{row} {name}");
        rig.assert_invariants(&restarted, store.as_ref(), std::slice::from_ref(&key))
            .await;
        cleanup(store.as_ref(), &[key]).await;
    }
}

/// The provider answers a refresh `503` with `Retry-After` as an HTTP-date
/// two minutes ahead (RFC 9110 §10.2.3). The first `get` fails with that
/// delay in `retry_after()`; every `get` for the next two minutes answers
/// at once (`RefreshDeferred`) and sends nothing, well past the manager's
/// own first backoff (1 s); after the date one request renews.
pub async fn retry_after_http_date(row: Row) {
    const AHEAD: Duration = Duration::from_secs(120);
    let rig = Rig::start(row).await;
    let store = Arc::new(MemoryStore::new());
    let manager = rig.manager(store.clone());
    let key = rig.seed(&manager, "a").await;
    rig.mock().push_fault(Fault::RetryAfterDate {
        status: 503,
        after: AHEAD,
    });
    rig.expire();
    let requests = rig.token_requests();
    let error = rig
        .get(&manager, &key, REFRESH_BOUND)
        .await
        .expect_err("the provider asks to wait");
    let asked = error.retry_after().expect("the date is read as a delay");
    assert!(
        asked > AHEAD - Duration::from_secs(5) && asked <= AHEAD + Duration::from_secs(1),
        "{row} retry_after {asked:?} for a date {AHEAD:?} ahead: {error:?}"
    );
    assert!(error.is_retryable(), "{row} {error:?}");
    assert_eq!(rig.token_requests(), requests + 1, "{row}");

    for step in 0..4 {
        for _ in 0..20 {
            let error = rig
                .get(&manager, &key, SERVED_BOUND)
                .await
                .expect_err("backing off until the date");
            match &error {
                Error::RefreshDeferred {
                    reason: DeferredReason::Backoff { last },
                    retry_after: Some(_),
                } if last.http_status() == Some(503) => {}
                other => panic!("{row} step {step}: {other:?}"),
            }
        }
        assert_eq!(
            rig.token_requests(),
            requests + 1,
            "{row} step {step}: nothing sent before the date"
        );
        rig.clock.advance(Duration::from_secs(25)); // 100 s in all
    }
    rig.clock.advance(AHEAD);
    rig.get_ok(&manager, &key, REFRESH_BOUND).await;
    assert_eq!(
        rig.token_requests(),
        requests + 2,
        "{row} one request after the date"
    );
    rig.assert_invariants(&manager, store.as_ref(), &[key])
        .await;
}
