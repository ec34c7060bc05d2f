//! A record as the text of the `record` column: JSON, whose secret fields
//! are encrypted when the store has keys.
//!
//! Only the secret fields are encrypted, each on its own (see
//! [`SECRET_FIELDS`]); the rest of the record (provider, token type,
//! expiry, scopes, subject, issue time) stays readable JSON, which queries
//! and operators can use. An encrypted field holds the JSON of its value,
//! encrypted, as a string `enc:v1:<key id>:<base64>`; a `null` (no refresh
//! token) stays `null`.

use std::sync::Arc;

use oauth2_adapters_core::store::{StoredToken, TokenKey};
use oauth2_adapters_core::token::TokenRecord;
use oauth2_adapters_core::{Error, Result};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::encryption::{self, DecryptionError, DecryptionErrorKind, EncryptionKeys};
use crate::record::{self, InvalidRecord};

/// The fields of a [`TokenRecord`] that are encrypted: the tokens, and the
/// provider's extra response fields, which may hold anything.
const SECRET_FIELDS: [&str; 3] = ["access_token", "refresh_token", "extra"];

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
        let Some(keys) = &self.keys else {
            if self.require {
                return Err(Error::configuration(
                    "the token store requires encryption but has no encryption keys \
                     (see `with_encryption`)",
                ));
            }
            return serde_json::to_string(record).map_err(|_| not_serializable(key));
        };
        // Serializing a record cannot fail in practice (string keys, no
        // floats that JSON cannot carry). Serde's errors are dropped all the
        // same: they could describe a value.
        let Ok(Value::Object(mut fields)) = serde_json::to_value(record) else {
            return Err(not_serializable(key));
        };
        for field in SECRET_FIELDS {
            let Some(value) = fields.get_mut(field).filter(|value| !value.is_null()) else {
                continue;
            };
            let plaintext =
                Zeroizing::new(serde_json::to_vec(value).map_err(|_| not_serializable(key))?);
            let sealed = keys
                .seal(field, key, &plaintext)
                .ok_or_else(|| Error::Store {
                    message: format!("the record for {key} is too large to encrypt"),
                    source: None,
                })?;
            *value = Value::String(sealed);
        }
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
    /// secret field already is under it. Plaintext rows are rewritten too.
    pub(crate) fn reencrypt(&self, key: &str, text: &str) -> Result<Option<String>> {
        let keys = self.keys_to_reencrypt()?;
        let fields = parse(key, text)?;
        let current = SECRET_FIELDS.iter().all(|field| match fields.get(*field) {
            None | Some(Value::Null) => true,
            Some(Value::String(value)) => keys.is_current(value),
            Some(_) => false,
        });
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
        for field in SECRET_FIELDS {
            let Some(value) = fields.get_mut(field).filter(|value| !value.is_null()) else {
                continue;
            };
            let refuse = |key_id: Option<&str>, kind| DecryptionError {
                token_key: key.to_owned(),
                field,
                key_id: key_id.map(str::to_owned),
                kind,
            };
            match value {
                Value::String(sealed) if encryption::is_sealed(sealed) => {
                    let Some(keys) = &self.keys else {
                        let key_id = encryption::key_id_of(sealed);
                        return Err(refuse(key_id, DecryptionErrorKind::NoKeys).into());
                    };
                    let plaintext = keys.open(field, key, sealed)?;
                    *value = serde_json::from_slice(&plaintext)
                        .map_err(|err| invalid_json(key, &err))?;
                }
                _ if allow_plaintext => {}
                _ => return Err(refuse(None, DecryptionErrorKind::Plaintext).into()),
            }
        }
        serde_json::from_value(Value::Object(fields)).map_err(|err| invalid_json(key, &err))
    }
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

    #[test]
    fn writes_without_keys_fail_when_encryption_is_required() {
        let record = serde_json::from_str::<TokenRecord>(
            r#"{"provider":"p","access_token":"t","refresh_token":null,"token_type":"Bearer",
                "expires_at_ms":null,"refresh_expires_at_ms":null,"scopes":[],"subject":null,
                "issued_at_ms":0}"#,
        )
        .unwrap();
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
    }
}
