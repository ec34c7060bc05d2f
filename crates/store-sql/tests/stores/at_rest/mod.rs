//! What the stores leave on disk: file modes (SQLite), and no earlier
//! version of a row once re-encrypted and purged (both stores).

use std::time::{Duration, UNIX_EPOCH};

use oauth2_adapters_core::store::{CasOutcome, TokenKey, TokenStore};
use oauth2_adapters_core::{ProviderId, Token};
use secrecy::SecretString;

use crate::conformance::{key, unique};

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

/// True when `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Tokens written in clear text, three versions each, whose access and
/// refresh tokens all begin with the marker.
pub(crate) struct ClearTextHistory {
    pub(crate) marker: String,
    pub(crate) keys: Vec<TokenKey>,
}

impl ClearTextHistory {
    /// Writes it for `count` keys with `plain` (a store without keys).
    pub(crate) async fn write(plain: &dyn TokenStore, count: usize) -> Self {
        let marker = unique("CLEAR-TEXT-MARK");
        let mut keys = Vec::new();
        for i in 0..count {
            let key = key(&format!("at-rest-{i}"));
            let mut expected = None;
            for version in 1..=3 {
                // Longer each time, so that a version does not fit in the
                // space the previous one leaves (and overwrite it there).
                let padding = "p".repeat(10 * version);
                let mut token = Token::new(
                    ProviderId::from_static("conformance"),
                    SecretString::from(format!("{marker}-access-{i}-{version}")),
                    UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                );
                token.refresh_token = Some(SecretString::from(format!(
                    "{marker}-refresh-{i}-{version}-{padding}"
                )));
                let outcome = plain
                    .compare_and_swap(&key, expected, &token.to_record())
                    .await
                    .unwrap();
                let CasOutcome::Written { version } = outcome else {
                    panic!("unexpected conflict");
                };
                expected = Some(version);
            }
            keys.push(key);
        }
        Self { marker, keys }
    }

    /// Checks that `store` reads the last version of every token.
    pub(crate) async fn check_readable(&self, store: &dyn TokenStore) {
        for (i, key) in self.keys.iter().enumerate() {
            let stored = store.load(key).await.unwrap().unwrap();
            assert_eq!(
                (stored.version, stored.record.access_token),
                (3, format!("{}-access-{i}-3", self.marker))
            );
        }
    }
}
