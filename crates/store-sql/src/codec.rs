//! A record as the text of the `record` column: JSON, whose secret fields
//! are encrypted when the store has keys.
//!
//! Only the secret fields are encrypted, each on its own (see
//! [`SECRET_FIELDS`]); the rest of the record (provider, token type,
//! expiry, scopes, subject, issue time) stays readable JSON, which queries
//! and operators can use. An encrypted field holds the JSON of its value,
//! encrypted, as a string `enc:v1:<key id>:<base64>`; a `null` (no refresh
//! token) stays `null`.
//!
//! Every row written by this version says which fields are encrypted: a
//! top-level [`SEALED`] list (empty without keys), so that reading never
//! guesses, and a clear-text token that happens to look like an encrypted
//! value (`enc:...`) reads back as itself. Rows of the previous format have
//! no list; in those, a string beginning with `enc:` is taken for an
//! encrypted value, as that version did.

use std::sync::Arc;

use oauth2_adapters_core::store::TokenRecord;
use oauth2_adapters_core::store::{StoredToken, TokenKey};
use oauth2_adapters_core::{Error, Result};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::encryption::{self, DecryptionError, DecryptionErrorKind, EncryptionKeys};
use crate::record::{self, InvalidRecord};

/// The fields of a [`TokenRecord`] that are encrypted: the tokens, and the
/// provider's extra response fields, which may hold anything.
const SECRET_FIELDS: [&str; 3] = ["access_token", "refresh_token", "extra"];

/// The top-level member listing the encrypted fields of a row (a JSON array
/// of names among [`SECRET_FIELDS`]). Not a field of [`TokenRecord`].
pub(crate) const SEALED: &str = "sealed";

/// How a store turns records into column text and back.
#[derive(Debug, Clone, Default)]
pub(crate) struct Codec {
    keys: Option<Arc<EncryptionKeys>>,
    require: bool,
}

impl Codec {
    /// Encrypts every write with `keys`' current key from now on.
    pub(crate) fn with_keys(self, keys: EncryptionKeys) -> Self {
        Self {
            keys: Some(Arc::new(keys)),
            ..self
        }
    }

    /// Refuses plaintext rows (and, without keys, every write).
    pub(crate) fn requiring_encryption(self) -> Self {
        Self {
            require: true,
            ..self
        }
    }

    /// The column text of `record`.
    /// `key` is the token key as stored, which the encryption binds each
    /// value to.
    pub(crate) fn encode(&self, key: &str, record: &TokenRecord) -> Result<String> {
        if self.keys.is_none() && self.require {
            return Err(Error::configuration(
                "the token store requires encryption but has no encryption keys \
                 (see `with_encryption`)",
            ));
        }
        // Serializing a record cannot fail in practice (string keys, no
        // floats that JSON cannot carry). Serde's errors are dropped all the
        // same: they could describe a value.
        let Ok(Value::Object(mut fields)) = serde_json::to_value(record) else {
            return Err(not_serializable(key));
        };
        let mut sealed = Vec::new();
        if let Some(keys) = &self.keys {
            for field in SECRET_FIELDS {
                let Some(value) = fields.get_mut(field).filter(|value| !value.is_null()) else {
                    continue;
                };
                let plaintext =
                    Zeroizing::new(serde_json::to_vec(value).map_err(|_| not_serializable(key))?);
                let ciphertext = keys
                    .seal(field, key, &plaintext)
                    .ok_or_else(|| Error::Store {
                        message: format!("the record for {key} is too large to encrypt"),
                        source: None,
                    })?;
                *value = Value::String(ciphertext);
                sealed.push(Value::String(field.to_owned()));
            }
        }
        fields.insert(SEALED.to_owned(), Value::Array(sealed));
        serde_json::to_string(&fields).map_err(|_| not_serializable(key))
    }

    /// The stored token from its column text and version.
    pub(crate) fn decode(&self, key: &TokenKey, text: &str, version: i64) -> Result<StoredToken> {
        Ok(StoredToken {
            record: self.read(key.as_str(), text, !self.require)?,
            version: record::version_from_db(key, version)?,
        })
    }

    /// The column text rewritten under the current key, or `None` when every
    /// secret field already is under it. Plaintext rows, and rows of the
    /// previous format, are rewritten too.
    pub(crate) fn reencrypt(&self, key: &str, text: &str) -> Result<Option<String>> {
        let keys = self.keys_to_reencrypt()?;
        let mut fields = parse(key, text)?;
        let current = match sealed_fields(key, &mut fields)? {
            None => false,
            Some(sealed) => SECRET_FIELDS.iter().all(|field| {
                match (fields.get(*field), sealed.contains(field)) {
                    (None | Some(Value::Null), false) => true,
                    (Some(Value::String(value)), true) => keys.is_current(value),
                    _ => false,
                }
            }),
        };
        if current {
            return Ok(None);
        }
        let record = self.read(key, text, true)?;
        self.encode(key, &record).map(Some)
    }

    /// The key ring, or the error re-encrypting without one is.
    pub(crate) fn keys_to_reencrypt(&self) -> Result<&EncryptionKeys> {
        self.keys.as_deref().ok_or_else(|| {
            Error::configuration("re-encrypting needs encryption keys (see `with_encryption`)")
        })
    }

    /// The record from its column text, decrypting its encrypted fields.
    fn read(&self, key: &str, text: &str, allow_plaintext: bool) -> Result<TokenRecord> {
        let mut fields = parse(key, text)?;
        let sealed = sealed_fields(key, &mut fields)?;
        for field in SECRET_FIELDS {
            let refuse = |key_id: Option<&str>, kind| DecryptionError {
                token_key: key.to_owned(),
                field,
                key_id: key_id.map(str::to_owned),
                kind,
            };
            let value = fields.get_mut(field).filter(|value| !value.is_null());
            let is_sealed = match (&sealed, &value) {
                (Some(sealed), _) => sealed.contains(&field),
                // The previous format: what looks encrypted is.
                (None, Some(Value::String(value))) => encryption::is_sealed(value),
                (None, _) => false,
            };
            // Listed as encrypted, but missing or not a string: malformed.
            let malformed = || refuse(None, DecryptionErrorKind::Malformed);
            match value {
                Some(slot) if is_sealed => {
                    let Value::String(ciphertext) = &*slot else {
                        return Err(malformed().into());
                    };
                    let Some(keys) = &self.keys else {
                        let key_id = encryption::key_id_of(ciphertext);
                        return Err(refuse(key_id, DecryptionErrorKind::NoKeys).into());
                    };
                    let plaintext = keys.open(field, key, ciphertext)?;
                    *slot = serde_json::from_slice(&plaintext)
                        .map_err(|err| invalid_json(key, &err))?;
                }
                None if is_sealed => return Err(malformed().into()),
                None => {}
                Some(_) if allow_plaintext => {}
                Some(_) => return Err(refuse(None, DecryptionErrorKind::Plaintext).into()),
            }
        }
        serde_json::from_value(Value::Object(fields)).map_err(|err| invalid_json(key, &err))
    }
}

/// Removes the [`SEALED`] list from `fields` and returns it: `None` for a
/// row of the previous format (no list). A list that is not an array of
/// distinct secret field names makes the record invalid.
fn sealed_fields(key: &str, fields: &mut Map<String, Value>) -> Result<Option<Vec<&'static str>>> {
    let Some(list) = fields.remove(SEALED) else {
        return Ok(None);
    };
    let invalid = || Error::Store {
        message: format!("stored record for {key} is not valid JSON"),
        source: Some(Arc::new(InvalidRecord::without_position(
            "an invalid list of encrypted fields",
        ))),
    };
    let Value::Array(names) = list else {
        return Err(invalid());
    };
    let mut sealed = Vec::with_capacity(names.len());
    for name in names {
        let field = SECRET_FIELDS
            .into_iter()
            .find(|field| name.as_str() == Some(field))
            .filter(|field| !sealed.contains(field))
            .ok_or_else(invalid)?;
        sealed.push(field);
    }
    Ok(Some(sealed))
}

/// The JSON object of a record's column text.
fn parse(key: &str, text: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(text).map_err(|err| invalid_json(key, &err))
}

fn not_serializable(key: &str) -> Error {
    Error::Store {
        message: format!("the record for {key} could not be serialized as JSON"),
        source: None,
    }
}

/// A record that is not JSON, or not a token record, reported with where
/// and what kind of error only (serde's message may quote a secret).
fn invalid_json(key: &str, err: &serde_json::Error) -> Error {
    Error::Store {
        message: format!("stored record for {key} is not valid JSON"),
        source: Some(Arc::new(InvalidRecord::from(err))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::parse("p|a|").unwrap()
    }

    #[test]
    fn a_corrupt_record_is_reported_without_its_content() {
        for json in [
            r#"{"access_token": "secret-value-1""#,
            r#"{"provider": "p", "access_token": 42, "secret-value-2": 1}"#,
            r#"{"provider": "p", "access_token": "secret-value-3", "issued_at_ms": "secret-value-4"}"#,
            r#""secret-value-5""#,
        ] {
            for codec in [Codec::default(), Codec::default().with_keys(keys())] {
                let err = codec.decode(&key(), json, 1).unwrap_err();
                let text = format!("{err} {err:?}");
                assert!(
                    text.contains("stored record for p|a| is not valid JSON"),
                    "{text}"
                );
                assert!(!text.contains("secret-value"), "{text}");
            }
        }
    }

    fn keys() -> EncryptionKeys {
        EncryptionKeys::new("k", &[3; 32]).unwrap()
    }

    fn record(access: &str) -> TokenRecord {
        let mut record = serde_json::from_str::<TokenRecord>(
            r#"{"provider":"p","access_token":"t","refresh_token":null,"token_type":"Bearer",
                "expires_at_ms":null,"refresh_expires_at_ms":null,"scopes":[],"subject":null,
                "issued_at_ms":0}"#,
        )
        .unwrap();
        record.access_token = access.to_owned();
        record
    }

    #[test]
    fn writes_without_keys_fail_when_encryption_is_required() {
        let record = record("t");
        let err = Codec::default()
            .requiring_encryption()
            .encode("p|a|", &record)
            .unwrap_err();
        assert!(matches!(err, Error::Configuration { .. }), "{err}");
        let text = Codec::default()
            .with_keys(keys())
            .encode("p|a|", &record)
            .unwrap();
        let fields: Map<String, Value> = serde_json::from_str(&text).unwrap();
        assert!(fields["access_token"]
            .as_str()
            .unwrap()
            .starts_with("enc:v1:k:"));
        assert!(fields["extra"].as_str().unwrap().starts_with("enc:v1:k:"));
        assert_eq!(fields["refresh_token"], Value::Null);
        assert_eq!(fields["token_type"], "Bearer");
        assert_eq!(fields[SEALED], serde_json::json!(["access_token", "extra"]));
    }

    #[test]
    fn the_sealed_list_is_no_field_of_a_record() {
        let fields: Map<String, Value> = serde_json::to_value(record("t"))
            .ok()
            .and_then(|value| value.as_object().cloned())
            .unwrap();
        assert!(fields.contains_key("access_token"));
        assert!(!fields.contains_key(SEALED));
    }

    /// A clear-text token that looks encrypted reads back as itself, from a
    /// store with or without keys, and is encrypted when re-encrypted.
    #[test]
    fn clear_text_that_looks_encrypted_reads_back_as_itself() {
        let sealed_looking = Codec::default()
            .with_keys(keys())
            .encode("p|a|", &record("x"))
            .unwrap();
        let sealed_looking: Map<String, Value> = serde_json::from_str(&sealed_looking).unwrap();
        let sealed_looking = sealed_looking["access_token"].as_str().unwrap().to_owned();
        let plain = Codec::default();
        let keyed = Codec::default().with_keys(keys());
        for access in ["enc:", "enc:v1:", "enc:v1:k:AAAA", &sealed_looking, ""] {
            for writer in [&plain, &keyed] {
                let text = writer.encode("p|a|", &record(access)).unwrap();
                for reader in [&plain, &keyed] {
                    if writer.keys.is_some() && reader.keys.is_none() {
                        continue;
                    }
                    let stored = reader.decode(&key(), &text, 1).unwrap();
                    assert_eq!(stored.record.access_token, access);
                }
            }
            let text = plain.encode("p|a|", &record(access)).unwrap();
            let rewritten = keyed.reencrypt("p|a|", &text).unwrap().unwrap();
            assert!(keyed.reencrypt("p|a|", &rewritten).unwrap().is_none());
            let strict = keyed.clone().requiring_encryption();
            assert_eq!(
                strict
                    .decode(&key(), &rewritten, 1)
                    .unwrap()
                    .record
                    .access_token,
                access
            );
            let err = strict.decode(&key(), &text, 1).unwrap_err();
            assert!(err.to_string().contains("requires encryption"), "{err}");
        }
    }

    /// Rows of the previous format (no list): what looks encrypted is taken
    /// for it, the rest for clear text; re-encryption rewrites them in the
    /// current format even when they are under the current key.
    #[test]
    fn rows_of_the_previous_format_keep_the_previous_rule() {
        let keyed = Codec::default().with_keys(keys());
        let mut fields: Map<String, Value> =
            serde_json::from_str(&keyed.encode("p|a|", &record("secret")).unwrap()).unwrap();
        fields.remove(SEALED);
        let previous = Value::Object(fields).to_string();
        assert_eq!(
            keyed
                .decode(&key(), &previous, 1)
                .unwrap()
                .record
                .access_token,
            "secret"
        );
        let err = Codec::default().decode(&key(), &previous, 1).unwrap_err();
        assert!(err.to_string().contains("no encryption keys"), "{err}");
        let rewritten = keyed.reencrypt("p|a|", &previous).unwrap().unwrap();
        assert!(rewritten.contains(r#""sealed":["access_token","extra"]"#));

        let clear = serde_json::to_string(&record("enc-less")).unwrap();
        assert_eq!(
            Codec::default()
                .decode(&key(), &clear, 1)
                .unwrap()
                .record
                .access_token,
            "enc-less"
        );
        let clear = serde_json::to_string(&record("enc:v1:k:AAAA")).unwrap();
        assert!(Codec::default().decode(&key(), &clear, 1).is_err());
    }

    #[test]
    fn an_invalid_sealed_list_is_an_invalid_record() {
        let text = Codec::default()
            .encode("p|a|", &record("secret-value"))
            .unwrap();
        for list in [
            r#""access_token""#,
            r#"["bogus"]"#,
            r#"["access_token","access_token"]"#,
            "[1]",
            "null",
        ] {
            let text = text.replace(r#""sealed":[]"#, &format!(r#""sealed":{list}"#));
            assert!(text.contains(list), "{text}");
            let err = Codec::default().decode(&key(), &text, 1).unwrap_err();
            let message = format!("{err} {err:?}");
            assert!(message.contains("is not valid JSON"), "{message}");
            assert!(message.contains("list of encrypted fields"), "{message}");
            assert!(!message.contains("secret-value"), "{message}");
        }
        // Listed as encrypted, but null or not a string.
        for (field, value) in [("refresh_token", "null"), ("access_token", "7")] {
            let text = text
                .replace(r#""sealed":[]"#, &format!(r#""sealed":["{field}"]"#))
                .replace(
                    r#""refresh_token":null"#,
                    &format!(r#""refresh_token":{value}"#),
                )
                .replace(
                    r#""access_token":"secret-value""#,
                    &format!(r#""access_token":{value}"#),
                );
            for codec in [Codec::default(), Codec::default().with_keys(keys())] {
                let err = codec.decode(&key(), &text, 1).unwrap_err();
                assert!(err.to_string().contains("malformed"), "{err}");
            }
        }
    }
}
