//! Encryption at rest: the key ring a store encrypts token secrets with.
//!
//! The cipher is XChaCha20-Poly1305 from RustCrypto's `chacha20poly1305`
//! crate (audited, constant-time in software). Its 192-bit nonces are long
//! enough to be drawn at random for every write, from the operating system's
//! generator, with no risk of reuse however many writes a key sees and with
//! nothing to coordinate between the processes sharing a database. AES-GCM's
//! 96-bit random nonces would cap a key at about 2³² writes, and it is
//! constant-time only with hardware AES.

mod envelope;
mod errors;

use std::fmt;
use std::str::FromStr;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use zeroize::Zeroizing;

pub(crate) use envelope::{is_sealed, key_id_of};
pub use errors::{DecryptionError, DecryptionErrorKind, EncryptionKeyError};

/// The longest key id, in characters.
const MAX_KEY_ID_LEN: usize = 32;

/// The keys a store encrypts token secrets with: one current key, which
/// encrypts every write, and older keys, kept only to read what they
/// encrypted until [`reencrypt_all`](crate#encryption-at-rest) has rewritten
/// it under the current key.
///
/// Each key is 32 random bytes with a key id: 1 to 32 characters among
/// `A-Z a-z 0-9 . _ -` (e.g. `2025-06`). The id is written next to every
/// value the key encrypts, so that a reader knows which key to use; it is not
/// a secret, and appears in errors. Key bytes are never shown (`Debug` lists
/// the ids) and are wiped from memory when the key ring is dropped.
///
/// ```
/// use oauth2_adapters::store_sql::EncryptionKeys;
///
/// # fn main() -> Result<(), oauth2_adapters::store_sql::EncryptionKeyError> {
/// // From raw bytes (e.g. read from a secret manager)...
/// let keys = EncryptionKeys::new("2025-06", &[7; 32])?.with_old_key("2024-01", &[9; 32])?;
/// assert_eq!(keys.current_key_id(), "2025-06");
/// // ...or from base64 or hex text, e.g. an environment variable holding
/// // `2025-06:<key>,2024-01:<key>` (the first key is the current one).
/// let keys: EncryptionKeys = "2025-06:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".parse()?;
/// assert_eq!(format!("{keys:?}"), r#"EncryptionKeys { current: "2025-06", old: [] }"#);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct EncryptionKeys {
    current: Key,
    old: Vec<Key>,
}

/// One key of the ring. The cipher holds the only copy of the key bytes,
/// and wipes them when dropped.
#[derive(Clone)]
struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl EncryptionKeys {
    /// The length of an encryption key, in bytes.
    pub const KEY_LEN: usize = 32;

    /// A key ring whose current key is `key` (32 bytes), named `key_id`.
    pub fn new(key_id: impl Into<String>, key: &[u8]) -> Result<Self, EncryptionKeyError> {
        Ok(Self {
            current: Key::new(key_id.into(), key)?,
            old: Vec::new(),
        })
    }

    /// A key ring whose current key is given as text: 64 hex digits or
    /// base64 (standard or URL-safe alphabet, padded or not) of 32 bytes.
    /// Surrounding whitespace is ignored.
    pub fn from_encoded(key_id: impl Into<String>, key: &str) -> Result<Self, EncryptionKeyError> {
        let key_id = key_id.into();
        let bytes = decode_key(&key_id, key)?;
        Self::new(key_id, &bytes)
    }

    /// Adds an older key, used only to decrypt what it encrypted.
    pub fn with_old_key(
        mut self,
        key_id: impl Into<String>,
        key: &[u8],
    ) -> Result<Self, EncryptionKeyError> {
        let key = Key::new(key_id.into(), key)?;
        if self.key_ids().any(|id| id == key.id) {
            return Err(EncryptionKeyError::DuplicateKeyId { key_id: key.id });
        }
        self.old.push(key);
        Ok(self)
    }

    /// Adds an older key given as text (see [`EncryptionKeys::from_encoded`]).
    pub fn with_old_encoded_key(
        self,
        key_id: impl Into<String>,
        key: &str,
    ) -> Result<Self, EncryptionKeyError> {
        let key_id = key_id.into();
        let bytes = decode_key(&key_id, key)?;
        self.with_old_key(key_id, &bytes)
    }

    /// The id of the key every write is encrypted with.
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// Every key id, the current one first.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&self.current)
            .chain(&self.old)
            .map(|key| key.id.as_str())
    }

    /// The key named `key_id`, if the ring has it.
    fn key(&self, key_id: &str) -> Option<&Key> {
        std::iter::once(&self.current)
            .chain(&self.old)
            .find(|key| key.id == key_id)
    }
}

/// Parses a key ring from `key_id:key` entries separated by commas, the
/// current key first, each key as in [`EncryptionKeys::from_encoded`]:
/// `2025-06:<base64>,2024-01:<base64>`. Errors never quote the text.
impl FromStr for EncryptionKeys {
    type Err = EncryptionKeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut entries = text.split(',').map(|entry| {
            entry
                .split_once(':')
                .map(|(id, key)| (id.trim(), key))
                .ok_or(EncryptionKeyError::MissingKeyId)
        });
        let (id, key) = entries.next().ok_or(EncryptionKeyError::MissingKeyId)??;
        let mut keys = Self::from_encoded(id, key)?;
        for entry in entries {
            let (id, key) = entry?;
            keys = keys.with_old_encoded_key(id, key)?;
        }
        Ok(keys)
    }
}

impl fmt::Debug for EncryptionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let old: Vec<&str> = self.old.iter().map(|key| key.id.as_str()).collect();
        f.debug_struct("EncryptionKeys")
            .field("current", &self.current.id)
            .field("old", &old)
            .finish()
    }
}

impl Key {
    fn new(id: String, bytes: &[u8]) -> Result<Self, EncryptionKeyError> {
        let valid_id = (1..=MAX_KEY_ID_LEN).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid_id {
            // The id is not quoted: it might be a key passed in its place.
            return Err(EncryptionKeyError::InvalidKeyId);
        }
        if bytes.len() != EncryptionKeys::KEY_LEN {
            return Err(EncryptionKeyError::WrongLength {
                key_id: id,
                len: bytes.len(),
            });
        }
        let cipher = XChaCha20Poly1305::new_from_slice(bytes).map_err(|_| {
            EncryptionKeyError::WrongLength {
                key_id: id.clone(),
                len: bytes.len(),
            }
        })?;
        Ok(Self { id, cipher })
    }
}

/// The key bytes from 64 hex digits or from base64 (either alphabet,
/// padding optional). The decoders' errors are dropped: they can quote a
/// character of the key.
fn decode_key(key_id: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, EncryptionKeyError> {
    let text = text.trim();
    let decoded = if text.len() == 2 * EncryptionKeys::KEY_LEN
        && text.bytes().all(|b| b.is_ascii_hexdigit())
    {
        hex::decode(text).ok()
    } else {
        let alphabet = if text.contains(['-', '_']) {
            &alphabet::URL_SAFE
        } else {
            &alphabet::STANDARD
        };
        let config =
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        GeneralPurpose::new(alphabet, config).decode(text).ok()
    };
    decoded
        .map(Zeroizing::new)
        .ok_or_else(|| EncryptionKeyError::InvalidEncoding {
            key_id: key_id.to_owned(),
        })
}
