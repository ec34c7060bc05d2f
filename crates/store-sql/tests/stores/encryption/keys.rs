//! Building key rings: raw bytes, text forms, typed errors, and a `Debug`
//! that shows only key ids.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use oauth2_adapters_core::Error;
use oauth2_adapters_store_sql::{EncryptionKeyError, EncryptionKeys};

/// A key whose encodings use every base64 special character.
fn key_bytes() -> [u8; 32] {
    let mut bytes = [0xfb; 32];
    bytes[..4].copy_from_slice(&[0xff, 0xef, 0x3e, 0x10]);
    bytes
}

/// Every text form decodes to the same key: a row written with the key
/// from bytes reads with the key from text (as a current or an old key).
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn every_text_form_gives_the_same_key() {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use oauth2_adapters_core::store::TokenStore;
    use oauth2_adapters_store_sql::SqliteStore;

    let bytes = key_bytes();
    let forms = [
        hex::encode(bytes),
        hex::encode_upper(bytes),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        format!("  {}\n", STANDARD.encode(bytes)),
    ];
    assert!(forms[2].contains(['+', '/']) && forms[4].contains(['-', '_']));
    let plain = SqliteStore::in_memory().await.unwrap();
    let key = crate::conformance::key("text-forms");
    let record = crate::conformance::full_record();
    plain
        .clone()
        .with_encryption(EncryptionKeys::new("k", &bytes).unwrap())
        .compare_and_swap(&key, None, &record)
        .await
        .unwrap();
    for form in &forms {
        let current = EncryptionKeys::from_encoded("k", form).unwrap();
        let old = EncryptionKeys::new("other", &[1; 32])
            .unwrap()
            .with_old_encoded_key("k", form)
            .unwrap();
        assert_eq!(old.key_ids().collect::<Vec<_>>(), ["other", "k"]);
        for keys in [current, old] {
            let store = plain.clone().with_encryption(keys);
            let stored = store.load(&key).await.unwrap().unwrap();
            assert!(stored.record == record, "{form}");
        }
    }
}

#[test]
fn bad_keys_are_typed_errors_that_quote_no_key() {
    let short = STANDARD.encode([5; 16]);
    assert_eq!(
        EncryptionKeys::new("k", &[5; 31]).unwrap_err(),
        EncryptionKeyError::WrongLength {
            key_id: "k".into(),
            len: 31
        }
    );
    assert_eq!(
        EncryptionKeys::from_encoded("k", &short).unwrap_err(),
        EncryptionKeyError::WrongLength {
            key_id: "k".into(),
            len: 16
        }
    );
    assert_eq!(
        EncryptionKeys::from_encoded("k", " ").unwrap_err(),
        EncryptionKeyError::WrongLength {
            key_id: "k".into(),
            len: 0
        }
    );
    for garbage in ["not base64!", "%%%%", &format!("{}z!", "ab".repeat(31))] {
        assert_eq!(
            EncryptionKeys::from_encoded("k", garbage).unwrap_err(),
            EncryptionKeyError::InvalidEncoding { key_id: "k".into() },
            "{garbage:?}"
        );
    }
    let hex_key = hex::encode(key_bytes());
    for bad_id in ["", "a:b", "with space", "é", &"x".repeat(33), &hex_key] {
        let err = EncryptionKeys::new(bad_id, &key_bytes()).unwrap_err();
        assert_eq!(err, EncryptionKeyError::InvalidKeyId, "{bad_id:?}");
        if !bad_id.is_empty() {
            assert!(!err.to_string().contains(bad_id), "{err}");
        }
    }
    assert_eq!(
        EncryptionKeys::new("k", &[1; 32])
            .unwrap()
            .with_old_key("k", &[2; 32])
            .unwrap_err(),
        EncryptionKeyError::DuplicateKeyId { key_id: "k".into() }
    );
    // Into the core error: a configuration error.
    let err: Error = EncryptionKeyError::InvalidKeyId.into();
    assert!(matches!(err, Error::Configuration { .. }), "{err}");
}

#[test]
fn a_key_list_parses_current_key_first() {
    let bytes = key_bytes();
    let list = format!(
        "2025-06:{}, 2024.01_old : {}",
        STANDARD.encode(bytes),
        hex::encode([7; 32])
    );
    let keys: EncryptionKeys = list.parse().unwrap();
    assert_eq!(keys.current_key_id(), "2025-06");
    assert_eq!(
        keys.key_ids().collect::<Vec<_>>(),
        ["2025-06", "2024.01_old"]
    );

    let secret = STANDARD.encode(bytes);
    for bad in [
        String::new(),
        secret.clone(),
        format!("a:{secret},{secret}"),
    ] {
        let err = bad.parse::<EncryptionKeys>().unwrap_err();
        assert_eq!(err, EncryptionKeyError::MissingKeyId, "{bad}");
        assert!(!format!("{err} {err:?}").contains(&secret));
    }
    assert_eq!(
        format!("a:{secret},a:{secret}")
            .parse::<EncryptionKeys>()
            .unwrap_err(),
        EncryptionKeyError::DuplicateKeyId { key_id: "a".into() }
    );
}

#[test]
fn debug_shows_key_ids_only() {
    let bytes = key_bytes();
    let keys = EncryptionKeys::new("current", &bytes)
        .unwrap()
        .with_old_key("old", &[0x42; 32])
        .unwrap();
    let text = format!("{keys:?} {keys:#?}");
    assert!(
        text.starts_with(r#"EncryptionKeys { current: "current", old: ["old"] }"#),
        "{text}"
    );
    for leak in [
        hex::encode(bytes),
        STANDARD.encode(bytes),
        format!("{:?}", &bytes[..4]),
        "251".into(),
        "0xfb".into(),
        "66, 66".into(),
        hex::encode([0x42; 4]),
    ] {
        assert!(!text.contains(&leak), "{leak} in {text}");
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_store_debug_shows_no_key_either() {
    let store = oauth2_adapters_store_sql::SqliteStore::in_memory()
        .await
        .unwrap()
        .with_encryption(EncryptionKeys::new("k", &key_bytes()).unwrap());
    let text = format!("{store:?}");
    assert!(text.contains(r#"current: "k""#), "{text}");
    assert!(
        !text.contains("251") && !text.contains(&hex::encode(key_bytes())),
        "{text}"
    );
}
