//! Encryption at rest, checked on both SQL stores: what the column holds,
//! wrong keys, altered or moved values, clear-text rows, key rotation.
//!
//! `encryption_suite!(store)` turns the checks that may share a table into
//! tests (`store`: a future of `Option<S>`, a store without keys); the
//! rotation checks (`rotation.rs`) rewrite every row of the table, so they
//! run on a table of their own (see each store's module).

use std::future::Future;
use std::time::{Duration, UNIX_EPOCH};

use oauth2_adapters_core::store::CasOutcome;
use oauth2_adapters_core::store::TokenRecord;
use oauth2_adapters_core::{Error, Result};
use oauth2_adapters_core::{ProviderId, Token};
use oauth2_adapters_store_sql::{DecryptionError, DecryptionErrorKind, EncryptionKeys};
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::conformance::{key, record, unique};
use crate::raw::RawSql;

/// A SQL store, with what these checks need beyond `TokenStore`. The
/// futures are `Send`, so that checks can run in spawned tasks (which also
/// checks that `reencrypt_all`'s future is `Send`).
pub(crate) trait Encrypted: RawSql + Clone + Sized + 'static {
    /// The store with `keys`.
    fn encrypted(self, keys: EncryptionKeys) -> Self;
    /// The store refusing clear-text rows.
    fn requiring(self) -> Self;
    /// `reencrypt_all`.
    fn reencrypt(&self) -> impl Future<Output = Result<u64>> + Send;
    /// The `record` column of `key`, as stored.
    fn record_text(&self, key: &str) -> impl Future<Output = String> + Send;
    /// Overwrites the `record` column of `key`.
    fn set_record_text(&self, key: &str, text: &str) -> impl Future<Output = ()> + Send;
}

/// The current key `a`.
pub(crate) fn ring_a() -> EncryptionKeys {
    EncryptionKeys::new("a", &[0xa1; 32]).unwrap()
}

/// The current key `b`, with `a` as an old key.
pub(crate) fn ring_b_and_a() -> EncryptionKeys {
    ring_b().with_old_key("a", &[0xa1; 32]).unwrap()
}

/// The key `b` alone.
pub(crate) fn ring_b() -> EncryptionKeys {
    EncryptionKeys::new("b", &[0xb2; 32]).unwrap()
}

/// A record whose three secrets are unique strings, and those strings.
pub(crate) fn secret_record() -> (TokenRecord, [String; 3]) {
    let secrets = [
        unique("access-secret"),
        unique("refresh-secret"),
        unique("extra-secret"),
    ];
    let mut token = Token::new(
        ProviderId::from_static("conformance"),
        SecretString::from(secrets[0].clone()),
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    token.refresh_token = Some(SecretString::from(secrets[1].clone()));
    token.expires_at = Some(UNIX_EPOCH + Duration::from_secs(1_700_003_600));
    token.scopes = vec!["read".into()];
    token.subject = Some("store-42".into());
    token
        .extra
        .insert("note".into(), Value::String(secrets[2].clone()));
    (token.to_record(), secrets)
}

pub(crate) fn fields(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).expect("the column holds a JSON object")
}

/// The decryption error behind a store error, checking that neither the
/// error nor its source quotes any of `secrets`.
pub(crate) fn decryption_error(err: &Error, secrets: &[String]) -> DecryptionError {
    let text = format!("{err} {err:?}");
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "the error quotes a secret: {text}"
        );
    }
    let Error::Store {
        source: Some(source),
        ..
    } = err
    else {
        panic!("expected a store error with a source: {text}");
    };
    source
        .downcast_ref::<DecryptionError>()
        .unwrap_or_else(|| panic!("expected a DecryptionError: {text}"))
        .clone()
}

fn version(outcome: CasOutcome) -> u64 {
    match outcome {
        CasOutcome::Written { version } => version,
        CasOutcome::Conflict { .. } => panic!("unexpected conflict"),
    }
}

/// Generates the checks that may share a table with other tests.
macro_rules! encryption_suite {
    ($store:expr) => {
        encryption_suite!(@tests $store;
            secrets_are_encrypted_in_the_column,
            a_wrong_key_is_an_error_and_loses_nothing,
            an_altered_value_is_rejected,
            a_value_moved_to_another_row_or_field_is_rejected,
            clear_text_rows_are_read_then_encrypted_by_the_next_write,
            misconfigurations_are_typed_errors,
            tricky_values_round_trip
        );
    };
    (@tests $store:expr; $($check:ident),+) => {
        $(
            #[tokio::test]
            async fn $check() {
                if let Some(store) = $store.await {
                    crate::encryption::$check(store).await;
                }
            }
        )+
    };
}

pub(crate) async fn secrets_are_encrypted_in_the_column(plain: impl Encrypted) {
    let store = plain.clone().encrypted(ring_a());
    let key = key("encrypted-column");
    let (record, secrets) = secret_record();
    store.compare_and_swap(&key, None, &record).await.unwrap();

    let text = store.record_text(key.as_str()).await;
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "clear text in the column: {text}"
        );
    }
    let fields = fields(&text);
    for field in ["access_token", "refresh_token", "extra"] {
        let value = fields[field].as_str().unwrap_or_default();
        assert!(value.starts_with("enc:v1:a:"), "{field}: {value}");
    }
    // The rest stays readable.
    assert_eq!(fields["subject"], "store-42");
    assert_eq!(fields["expires_at_ms"], 1_700_003_600_000_u64);
    assert_eq!(fields["scopes"], serde_json::json!(["read"]));

    let stored = store.load(&key).await.unwrap().unwrap();
    assert!(stored.record == record, "the record changed in the store");
    assert_eq!(stored.version, 1);

    // A store without keys does not take the ciphertext for a token.
    let err = plain.load(&key).await.unwrap_err();
    let err = decryption_error(&err, &secrets);
    assert_eq!(err.kind(), DecryptionErrorKind::NoKeys);
    assert_eq!(err.key_id(), Some("a"));
    store.delete(&key).await.unwrap();
}

pub(crate) async fn a_wrong_key_is_an_error_and_loses_nothing(plain: impl Encrypted) {
    let store = plain.clone().encrypted(ring_a());
    let key = key("wrong-key");
    let (full, secrets) = secret_record();
    store.compare_and_swap(&key, None, &full).await.unwrap();
    let before = store.record_text(key.as_str()).await;

    let unknown = plain.clone().encrypted(ring_b());
    let same_id = plain
        .clone()
        .encrypted(EncryptionKeys::new("a", &[9; 32]).unwrap());
    for (wrong, kind) in [
        (unknown, DecryptionErrorKind::UnknownKeyId),
        (same_id, DecryptionErrorKind::Rejected),
    ] {
        let err = wrong.load(&key).await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains(key.as_str()), "{message}");
        assert!(message.contains("key id `a`"), "{message}");
        let err = decryption_error(&err, &secrets);
        assert_eq!(
            (err.kind(), err.key_id(), err.token_key()),
            (kind, Some("a"), key.as_str())
        );
        // A conflict's fresh read fails the same way, writing nothing.
        let err = wrong
            .compare_and_swap(&key, Some(7), &record("x"))
            .await
            .unwrap_err();
        decryption_error(&err, &secrets);
        assert!(wrong.keys().await.unwrap().contains(&key));
    }
    assert_eq!(
        store.record_text(key.as_str()).await,
        before,
        "the row changed"
    );
    let reopened = plain.encrypted(ring_a());
    assert!(reopened.load(&key).await.unwrap().unwrap().record == full);
    reopened.delete(&key).await.unwrap();
}

/// Replaces one base64 character in the middle of `value`'s payload.
fn alter(value: &str) -> String {
    let mut bytes = value.as_bytes().to_vec();
    let at = bytes.len() - 10;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

pub(crate) async fn an_altered_value_is_rejected(plain: impl Encrypted) {
    let store = plain.encrypted(ring_a());
    let key = key("altered");
    let (record, secrets) = secret_record();
    store.compare_and_swap(&key, None, &record).await.unwrap();
    let original = store.record_text(key.as_str()).await;
    for field in ["access_token", "refresh_token", "extra"] {
        let mut altered = fields(&original);
        let value = altered[field].as_str().unwrap().to_owned();
        altered.insert(field.into(), Value::String(alter(&value)));
        store
            .set_record_text(key.as_str(), &Value::Object(altered).to_string())
            .await;
        let err = store.load(&key).await.unwrap_err();
        let err = decryption_error(&err, &secrets);
        assert_eq!(
            (err.kind(), err.field()),
            (DecryptionErrorKind::Rejected, field)
        );
    }
    store.set_record_text(key.as_str(), &original).await;
    assert!(store.load(&key).await.unwrap().unwrap().record == record);
    store.delete(&key).await.unwrap();
}

pub(crate) async fn a_value_moved_to_another_row_or_field_is_rejected(plain: impl Encrypted) {
    let store = plain.encrypted(ring_a());
    let (one, two) = (key("moved-from"), key("moved-to"));
    let (record_one, secrets) = secret_record();
    let (record_two, _) = secret_record();
    store
        .compare_and_swap(&one, None, &record_one)
        .await
        .unwrap();
    store
        .compare_and_swap(&two, None, &record_two)
        .await
        .unwrap();
    let text_one = fields(&store.record_text(one.as_str()).await);
    let text_two = store.record_text(two.as_str()).await;

    // Row one's access token, copied into row two.
    let mut moved = fields(&text_two);
    moved.insert("access_token".into(), text_one["access_token"].clone());
    store
        .set_record_text(two.as_str(), &Value::Object(moved).to_string())
        .await;
    let err = store.load(&two).await.unwrap_err();
    let err = decryption_error(&err, &secrets);
    assert_eq!(
        (err.kind(), err.field(), err.token_key()),
        (DecryptionErrorKind::Rejected, "access_token", two.as_str())
    );

    // Row one's access token, copied into its own refresh token.
    let mut swapped = text_one.clone();
    swapped.insert("refresh_token".into(), text_one["access_token"].clone());
    store
        .set_record_text(one.as_str(), &Value::Object(swapped).to_string())
        .await;
    let err = store.load(&one).await.unwrap_err();
    let err = decryption_error(&err, &secrets);
    assert_eq!(
        (err.kind(), err.field()),
        (DecryptionErrorKind::Rejected, "refresh_token")
    );
    store.delete(&one).await.unwrap();
    store.delete(&two).await.unwrap();
}

pub(crate) async fn clear_text_rows_are_read_then_encrypted_by_the_next_write(
    plain: impl Encrypted,
) {
    let key = key("clear-text");
    let (record, secrets) = secret_record();
    plain.compare_and_swap(&key, None, &record).await.unwrap();
    assert!(plain.record_text(key.as_str()).await.contains(&secrets[0]));

    let store = plain.clone().encrypted(ring_a());
    let strict = store.clone().requiring();
    let err = strict.load(&key).await.unwrap_err();
    let err = decryption_error(&err, &secrets);
    assert_eq!(
        (err.kind(), err.key_id()),
        (DecryptionErrorKind::Plaintext, None)
    );

    let stored = store.load(&key).await.unwrap().unwrap();
    assert!(stored.record == record);
    assert_eq!(
        version(
            store
                .compare_and_swap(&key, Some(1), &record)
                .await
                .unwrap()
        ),
        2
    );
    let text = store.record_text(key.as_str()).await;
    assert!(secrets.iter().all(|s| !text.contains(s.as_str())), "{text}");
    assert!(strict.load(&key).await.unwrap().unwrap().record == record);
    store.delete(&key).await.unwrap();
}

pub(crate) async fn misconfigurations_are_typed_errors(plain: impl Encrypted) {
    let key = key("misconfigured");
    let err = plain
        .clone()
        .requiring()
        .compare_and_swap(&key, None, &record("a"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Configuration { .. }), "{err}");
    let err = plain.reencrypt().await.unwrap_err();
    assert!(matches!(err, Error::Configuration { .. }), "{err}");
    assert!(plain.load(&key).await.unwrap().is_none());
}

mod encoding;
mod keys;
#[cfg(feature = "postgres")]
mod postgres;
mod rotation;
#[cfg(feature = "sqlite")]
mod sqlite;

pub(crate) use encoding::*;
pub(crate) use rotation::*;
