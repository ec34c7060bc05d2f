//! The errors of encryption at rest. None quotes a key or a secret.

use std::fmt;

/// A key that cannot be used to build [`EncryptionKeys`](super::EncryptionKeys).
///
/// Converts into the core [`Error::Configuration`](oauth2_adapters_core::Error::Configuration).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptionKeyError {
    /// The key id is empty, longer than 32 characters, or has a character
    /// other than `A-Z a-z 0-9 . _ -`. (It is not quoted, in case a key
    /// was passed in its place.)
    #[error("invalid encryption key id: it must be 1 to 32 characters among A-Z a-z 0-9 . _ -")]
    InvalidKeyId,
    /// The key is not 32 bytes long.
    #[error("encryption key `{key_id}` is {len} bytes long; a key is 32 bytes")]
    WrongLength {
        /// The key's id.
        key_id: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The key text is neither 64 hex digits nor base64.
    #[error("encryption key `{key_id}` is neither 64 hex digits nor base64")]
    InvalidEncoding {
        /// The key's id.
        key_id: String,
    },
    /// Two keys of the ring have the same id.
    #[error("two encryption keys have the id `{key_id}`")]
    DuplicateKeyId {
        /// The repeated id.
        key_id: String,
    },
    /// An entry of a key list (`key_id:key,...`) has no `key_id:` part.
    #[error("an entry of the encryption key list is not `key_id:key`")]
    MissingKeyId,
}

impl From<EncryptionKeyError> for oauth2_adapters_core::Error {
    fn from(err: EncryptionKeyError) -> Self {
        Self::configuration(err.to_string())
    }
}

/// Why a stored value could not be decrypted: the source of the
/// [`Error::Store`](oauth2_adapters_core::Error::Store) a store returns
/// then, which callers can downcast to. The row is left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptionError {
    pub(crate) token_key: String,
    pub(crate) field: &'static str,
    pub(crate) key_id: Option<String>,
    pub(crate) kind: DecryptionErrorKind,
}

/// What kind of [`DecryptionError`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecryptionErrorKind {
    /// The value is encrypted, and the store has no encryption keys.
    NoKeys,
    /// The value's key id is not in the store's key ring.
    UnknownKeyId,
    /// Authentication failed: the key with that id is not the one the value
    /// was encrypted with, or the value was altered, or moved from another
    /// row or field.
    Rejected,
    /// The value is marked as encrypted (listed in the row's `sealed` list,
    /// or, in a row of the previous format, beginning with `enc:`) but is
    /// not `enc:v1:<key id>:<base64>`, or is missing.
    Malformed,
    /// The value is not encrypted, and the store requires encryption.
    Plaintext,
}

impl DecryptionError {
    /// What went wrong.
    pub fn kind(&self) -> DecryptionErrorKind {
        self.kind
    }

    /// The token key of the row, as stored.
    pub fn token_key(&self) -> &str {
        &self.token_key
    }

    /// The field of the record: `access_token`, `refresh_token` or `extra`.
    pub fn field(&self) -> &str {
        self.field
    }

    /// The key id the value names, when it names one.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The message of the store error: the token key, the field, the key id
    /// and the reason.
    pub(crate) fn message(&self) -> String {
        let key_id = self
            .key_id
            .as_deref()
            .map(|id| format!(", key id `{id}`"))
            .unwrap_or_default();
        format!(
            "stored record for {} cannot be read: {self} (field `{}`{key_id})",
            self.token_key, self.field
        )
    }
}

impl fmt::Display for DecryptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            DecryptionErrorKind::NoKeys => "it is encrypted, and the store has no encryption keys",
            DecryptionErrorKind::UnknownKeyId => "its key id is not in the store's key ring",
            DecryptionErrorKind::Rejected => {
                "decryption failed: wrong key, or the value was altered or moved from another row or field"
            }
            DecryptionErrorKind::Malformed => {
                "the encrypted value is malformed, or of an unknown format"
            }
            DecryptionErrorKind::Plaintext => {
                "it is not encrypted, and the store requires encryption"
            }
        })
    }
}

impl std::error::Error for DecryptionError {}

impl From<DecryptionError> for oauth2_adapters_core::Error {
    fn from(err: DecryptionError) -> Self {
        Self::Store {
            message: err.message(),
            source: Some(std::sync::Arc::new(err)),
        }
    }
}
