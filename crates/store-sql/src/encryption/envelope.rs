//! The stored form of an encrypted value:
//! `enc:v1:<key id>:<base64(nonce || ciphertext || tag)>`, with a random
//! 24-byte nonce and, as associated data, the key id, the field and the
//! token key, so that a value copied to another row or field does not
//! decrypt.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::{DecryptionError, DecryptionErrorKind, EncryptionKeys};

/// What every encrypted value starts with. Only in rows of the previous
/// format (without a `sealed` list, see `codec`) is a value taken for
/// encrypted because it does.
const SEALED: &str = "enc:";

/// The prefix of the current format, before the key id.
const V1: &str = "enc:v1:";

/// The nonce length of XChaCha20-Poly1305.
const NONCE_LEN: usize = 24;

/// The tag length of Poly1305.
const TAG_LEN: usize = 16;

/// True when `value` looks like an encrypted value (the rule for rows of
/// the previous format).
pub(crate) fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED)
}

/// The key id an encrypted value names, if it is in the current format.
pub(crate) fn key_id_of(value: &str) -> Option<&str> {
    parse(value).map(|(key_id, _)| key_id)
}

/// The key id and the base64 payload of `enc:v1:<key id>:<payload>`.
fn parse(value: &str) -> Option<(&str, &str)> {
    value
        .strip_prefix(V1)?
        .split_once(':')
        .filter(|(key_id, _)| !key_id.is_empty())
}

/// The associated data: the format, key id, field and token key, separated
/// by NUL bytes (which neither a key id nor a field name contains; the token
/// key, last, may contain anything).
fn associated_data(key_id: &str, field: &str, token_key: &str) -> Vec<u8> {
    [V1, key_id, field, token_key].join("\0").into_bytes()
}

impl EncryptionKeys {
    /// Encrypts `plaintext`, the `field` of the record of `token_key`, with
    /// the current key. `None` only for a plaintext too long for the cipher
    /// (256 GiB).
    pub(crate) fn seal(&self, field: &str, token_key: &str, plaintext: &[u8]) -> Option<String> {
        let key = &self.current;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(&key.id, field, token_key);
        let ciphertext = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .ok()?;
        let mut payload = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(&ciphertext);
        Some(format!("{V1}{}:{}", key.id, STANDARD.encode(payload)))
    }

    /// Decrypts `value`, the `field` of the record of `token_key`.
    pub(crate) fn open(
        &self,
        field: &'static str,
        token_key: &str,
        value: &str,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptionError> {
        let error = |key_id: Option<&str>, kind| DecryptionError {
            token_key: token_key.to_owned(),
            field,
            key_id: key_id.map(str::to_owned),
            kind,
        };
        let (key_id, payload) =
            parse(value).ok_or_else(|| error(None, DecryptionErrorKind::Malformed))?;
        let key = self
            .key(key_id)
            .ok_or_else(|| error(Some(key_id), DecryptionErrorKind::UnknownKeyId))?;
        let payload = STANDARD
            .decode(payload)
            .ok()
            .filter(|payload| payload.len() >= NONCE_LEN + TAG_LEN)
            .ok_or_else(|| error(Some(key_id), DecryptionErrorKind::Malformed))?;
        let (nonce, ciphertext) = payload.split_at(NONCE_LEN);
        let aad = associated_data(key_id, field, token_key);
        key.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| error(Some(key_id), DecryptionErrorKind::Rejected))
    }

    /// True when `value` is encrypted with the current key.
    pub(crate) fn is_current(&self, value: &str) -> bool {
        key_id_of(value) == Some(self.current_key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> EncryptionKeys {
        EncryptionKeys::new("k1", &[1; 32]).unwrap()
    }

    #[test]
    fn seal_then_open() {
        let keys = keys();
        let sealed = keys.seal("access_token", "p|a|", b"\"secret\"").unwrap();
        assert!(sealed.starts_with("enc:v1:k1:"), "{sealed}");
        assert!(keys.is_current(&sealed));
        let opened = keys.open("access_token", "p|a|", &sealed).unwrap();
        assert_eq!(&opened[..], b"\"secret\"");
        // A fresh nonce every time.
        assert_ne!(
            sealed,
            keys.seal("access_token", "p|a|", b"\"secret\"").unwrap()
        );
    }

    #[test]
    fn opening_fails_elsewhere_or_altered() {
        let keys = keys();
        let sealed = keys.seal("access_token", "p|a|", b"x").unwrap();
        let kind = |field, token_key: &str, value: &str| {
            keys.open(field, token_key, value).unwrap_err().kind()
        };
        assert_eq!(
            kind("refresh_token", "p|a|", &sealed),
            DecryptionErrorKind::Rejected
        );
        assert_eq!(
            kind("access_token", "p|b|", &sealed),
            DecryptionErrorKind::Rejected
        );
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(
            kind("access_token", "p|a|", &altered),
            DecryptionErrorKind::Rejected
        );
        let renamed = sealed.replace("enc:v1:k1:", "enc:v1:k2:");
        assert_eq!(
            kind("access_token", "p|a|", &renamed),
            DecryptionErrorKind::UnknownKeyId
        );
        for malformed in [
            "enc:v2:k1:AAAA",
            "enc:v1:k1",
            "enc:v1::AAAA",
            "enc:v1:k1:!!",
            "enc:v1:k1:AAAA",
        ] {
            assert_eq!(
                kind("access_token", "p|a|", malformed),
                DecryptionErrorKind::Malformed,
                "{malformed}"
            );
        }
    }

    #[test]
    fn old_keys_decrypt_and_are_not_current() {
        let old = keys();
        let sealed = old.seal("extra", "p|a|", b"{}").unwrap();
        let ring = EncryptionKeys::new("k2", &[2; 32])
            .unwrap()
            .with_old_key("k1", &[1; 32])
            .unwrap();
        assert!(!ring.is_current(&sealed));
        assert_eq!(&ring.open("extra", "p|a|", &sealed).unwrap()[..], b"{}");
        assert!(ring.is_current(&ring.seal("extra", "p|a|", b"{}").unwrap()));
    }
}
