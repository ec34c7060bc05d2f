//! The stored encoding is unambiguous: any token value (one that looks
//! encrypted included) reads back as itself, from stores with and without
//! keys, and from a store that gains keys later.

use std::time::{Duration, UNIX_EPOCH};

use oauth2_adapters_core::store::TokenKey;
use oauth2_adapters_core::store::TokenRecord;
use oauth2_adapters_core::{ProviderId, Token};
use secrecy::SecretString;
use serde_json::Value;

use super::{fields, ring_a, ring_b_and_a, Encrypted};
use crate::conformance::key;

/// The values that once were (or could be) taken for something else.
/// `decoy` is a real encrypted value (of an access token, under key `a`).
fn tricky_values(decoy: &str) -> Vec<String> {
    let mut values: Vec<String> = [
        "",
        "enc:",
        "enc:v1:",
        "enc:v1:a:",
        "enc:v1:a:AAAA",
        "enc:v1:zz:AAAA",
        "enc:v2:a:AAAA",
        " enc:v1:a:AAAA",
        "ENC:v1:a:AAAA",
        "sealed",
        "[\"access_token\"]",
        "{\"json\": true}",
        "quote \" backslash \\ nul \u{0} end",
        "日本語 🔑 \u{1F600}",
    ]
    .map(str::to_owned)
    .into();
    values.push(decoy.to_owned());
    values.push(format!("enc:{}", "x".repeat(5_000)));
    values
}

/// A record holding `value` as its access token, its refresh token and in
/// its extra fields (also under the name of the list of encrypted fields).
fn record_with(value: &str) -> TokenRecord {
    let mut token = Token::new(
        ProviderId::from_static("conformance"),
        SecretString::from(value.to_owned()),
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    token.refresh_token = Some(SecretString::from(value.to_owned()));
    token.token_type = value.to_owned();
    for name in ["note", "sealed", "enc:"] {
        token.extra.insert(name.into(), Value::String(value.into()));
    }
    token.to_record()
}

/// A real encrypted value: the access token of a record written to `key`
/// under key `a`. The row is deleted.
async fn decoy(plain: &impl Encrypted, key: &TokenKey) -> String {
    let store = plain.clone().encrypted(ring_a());
    store
        .compare_and_swap(key, None, &record_with("decoy"))
        .await
        .unwrap();
    let text = store.record_text(key.as_str()).await;
    store.delete(key).await.unwrap();
    fields(&text)["access_token"].as_str().unwrap().to_owned()
}

/// Writes `record` to a new key with `writer`, and checks `reader` reads it.
async fn round_trip(writer: &impl Encrypted, reader: &impl Encrypted, record: &TokenRecord) {
    let key = key("tricky");
    writer.compare_and_swap(&key, None, record).await.unwrap();
    let stored = reader.load(&key).await.unwrap().unwrap();
    assert!(
        stored.record == *record,
        "{:?} changed in the store",
        record.access_token
    );
    writer.delete(&key).await.unwrap();
}

/// Every tricky value × a store without keys, with keys, with a rotated
/// ring, requiring encryption: written by one, read by another that can.
pub(crate) async fn tricky_values_round_trip(plain: impl Encrypted) {
    let under_a = plain.clone().encrypted(ring_a());
    let rotated = plain.clone().encrypted(ring_b_and_a());
    let strict = rotated.clone().requiring();
    for value in tricky_values(&decoy(&plain, &key("decoy")).await) {
        let record = record_with(&value);
        round_trip(&plain, &plain, &record).await;
        round_trip(&plain, &under_a, &record).await;
        round_trip(&plain, &rotated, &record).await;
        round_trip(&under_a, &under_a, &record).await;
        round_trip(&under_a, &rotated, &record).await;
        round_trip(&under_a, &strict, &record).await;
        round_trip(&strict, &strict, &record).await;
        round_trip(&strict, &rotated, &record).await;
    }
}

/// On a table of its own (it re-encrypts every row): every tricky value
/// written in clear text (each also where it is a real encrypted value of
/// the very field and row it is in), plus rows of the previous format,
/// read by the store once it has keys, then re-encrypted, then read by a
/// store that requires encryption.
pub(crate) async fn tricky_values_survive_gaining_keys(plain: impl Encrypted) {
    let decoy_key = key("decoy");
    let decoy = decoy(&plain, &decoy_key).await;
    // The decoy in clear text, in the very row and field it decrypts in
    // (to "decoy"): a reader that guessed would return that.
    let mut rows = vec![(decoy_key, record_with(&decoy))];
    for value in tricky_values(&decoy) {
        rows.push((key("gaining"), record_with(&value)));
    }
    for (key, record) in &rows {
        plain.compare_and_swap(key, None, record).await.unwrap();
    }

    // Rows of the previous format (no list of encrypted fields): one in
    // clear text, one encrypted.
    let under_a = plain.clone().encrypted(ring_a());
    for (store, value) in [(&plain, "previous-clear"), (&under_a, "previous-sealed")] {
        let key = key("previous");
        let record = record_with(value);
        store.compare_and_swap(&key, None, &record).await.unwrap();
        let mut previous = fields(&store.record_text(key.as_str()).await);
        assert!(previous.remove("sealed").is_some());
        store
            .set_record_text(key.as_str(), &Value::Object(previous).to_string())
            .await;
        rows.push((key, record));
    }

    for (key, record) in &rows {
        assert!(under_a.load(key).await.unwrap().unwrap().record == *record);
    }
    assert_eq!(under_a.reencrypt().await.unwrap(), rows.len() as u64);
    assert_eq!(under_a.reencrypt().await.unwrap(), 0);
    let strict = under_a.clone().requiring();
    for (key, record) in &rows {
        let stored = strict.load(key).await.unwrap().unwrap();
        assert!(stored.record == *record, "{:?}", record.access_token);
        let column = fields(&strict.record_text(key.as_str()).await);
        assert_eq!(
            column["sealed"],
            serde_json::json!(["access_token", "refresh_token", "extra"])
        );
    }
}
