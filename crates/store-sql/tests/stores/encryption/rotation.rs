//! Key rotation checks: `reencrypt_all` rewrites every row of the table,
//! so each runs on a table of its own (see each store's module).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use oauth2_adapters_core::store::TokenRecord;
use oauth2_adapters_core::store::{CasOutcome, TokenKey};
use oauth2_adapters_core::Error;
use oauth2_adapters_store_sql::{DecryptionErrorKind, EncryptionKeys};

use super::{decryption_error, fields, ring_a, ring_b, ring_b_and_a, secret_record, Encrypted};
use crate::conformance::{key, record};

/// Key rotation on a table of its own: rows under `a` (and one in clear
/// text) are read with {b, old a}, rewritten under `b` by `reencrypt_all`
/// (keeping their versions), then read with {b} alone.
pub(crate) async fn rotation_rewrites_every_row_under_the_current_key(plain: impl Encrypted) {
    let under_a = plain.clone().encrypted(ring_a());
    let mut rows: Vec<(TokenKey, TokenRecord, u64)> = Vec::new();
    for i in 0..3 {
        let key = key(&format!("rotation-{i}"));
        let (record, _) = secret_record();
        under_a.compare_and_swap(&key, None, &record).await.unwrap();
        under_a
            .compare_and_swap(&key, Some(1), &record)
            .await
            .unwrap();
        rows.push((key, record, 2));
    }
    let clear = key("rotation-clear");
    let (record, _) = secret_record();
    plain.compare_and_swap(&clear, None, &record).await.unwrap();
    rows.push((clear, record, 1));

    let rotating = plain.clone().encrypted(ring_b_and_a());
    for (key, record, version) in &rows {
        let stored = rotating.load(key).await.unwrap().unwrap();
        assert!(stored.record == *record && stored.version == *version);
    }
    // From another task: the future is `Send`.
    let spawned = rotating.clone();
    let rewritten = tokio::spawn(async move { spawned.reencrypt().await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rewritten, 4);
    assert_eq!(rotating.reencrypt().await.unwrap(), 0, "nothing left to do");

    let only_b = plain.clone().encrypted(ring_b()).requiring();
    for (key, record, version) in &rows {
        let text = only_b.record_text(key.as_str()).await;
        let fields = fields(&text);
        for field in ["access_token", "refresh_token", "extra"] {
            let value = fields[field].as_str().unwrap_or_default();
            assert!(value.starts_with("enc:v1:b:"), "{field}: {value}");
        }
        let stored = only_b.load(key).await.unwrap().unwrap();
        assert!(stored.record == *record);
        assert_eq!(
            stored.version, *version,
            "re-encryption changed the version"
        );
    }
    let err = under_a.load(&rows[0].0).await.unwrap_err();
    assert_eq!(
        decryption_error(&err, &[]).kind(),
        DecryptionErrorKind::UnknownKeyId
    );
}

/// A row no key of the ring decrypts stops `reencrypt_all` with an error
/// naming it, and is left as it was.
pub(crate) async fn rotation_stops_at_an_unreadable_row(plain: impl Encrypted) {
    let key = key("rotation-unreadable");
    let (record, secrets) = secret_record();
    let other = plain
        .clone()
        .encrypted(EncryptionKeys::new("z", &[7; 32]).unwrap());
    other.compare_and_swap(&key, None, &record).await.unwrap();
    let before = other.record_text(key.as_str()).await;
    let err = plain
        .clone()
        .encrypted(ring_b_and_a())
        .reencrypt()
        .await
        .unwrap_err();
    let err = decryption_error(&err, &secrets);
    assert_eq!(
        (err.kind(), err.key_id(), err.token_key()),
        (DecryptionErrorKind::UnknownKeyId, Some("z"), key.as_str())
    );
    assert_eq!(other.record_text(key.as_str()).await, before);
}

/// Writers under key `a` increment a counter while `reencrypt_all` runs again
/// and again with {b, old a}: no write is lost, and versions count writes.
pub(crate) async fn rotation_never_overwrites_a_concurrent_write(
    writer: impl Encrypted,
    rotator: impl Encrypted,
) {
    const TASKS: u64 = 4;
    const INCREMENTS: u64 = 25;
    // The writers are an instance still writing under `a` that can read
    // `b` (as during a deploy), so that there is always something to rewrite.
    let writer = writer.encrypted(ring_a().with_old_key("b", &[0xb2; 32]).unwrap());
    let rotator = rotator.encrypted(ring_b_and_a());
    let key = key("rotation-race");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let (store, key) = (writer.clone(), key.clone());
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
                    if let CasOutcome::Written { version } = outcome {
                        assert_eq!(version, next);
                        break;
                    }
                }
            }
        });
    }
    let done = Arc::new(AtomicBool::new(false));
    let rotating = {
        let (rotator, done) = (rotator.clone(), done.clone());
        tokio::spawn(async move {
            let mut rewritten = 0;
            while !done.load(Ordering::Relaxed) {
                match rotator.reencrypt().await {
                    Ok(n) => rewritten += n,
                    // Rewritten under its feet ten times in a row: allowed.
                    Err(Error::Store { message, .. }) if message.contains("kept changing") => {}
                    Err(err) => panic!("{err}"),
                }
            }
            rewritten
        })
    };
    while let Some(task) = tasks.join_next().await {
        task.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let rewritten = rotating.await.unwrap();
    rotator.reencrypt().await.unwrap();
    let writes = TASKS * INCREMENTS;
    let stored = rotator.load(&key).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.record.access_token.as_str()),
        (writes, writes.to_string().as_str())
    );
    let text = rotator.record_text(key.as_str()).await;
    assert!(fields(&text)["access_token"]
        .as_str()
        .unwrap()
        .starts_with("enc:v1:b:"));
    eprintln!("{writes} writes, {rewritten} rows re-encrypted meanwhile");
}
