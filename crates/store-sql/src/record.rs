//! What both stores share: version numbers, keys read back from a table,
//! lease durations, and error mapping. (The record's column text is
//! [`crate::codec`]'s.)

use std::fmt;
use std::time::Duration;

use oauth2_adapters_core::store::{CasOutcome, StoredToken, TokenKey, TokenPage};
use oauth2_adapters_core::{Error, Result};

/// The longest lease duration (ttl or in-doubt grace) a store uses (ten
/// years): a longer one is shortened to this, which keeps the expiry
/// arithmetic (in Rust and in SQL) far from any overflow.
const MAX_LEASE_MS: i64 = 10 * 366 * 24 * 60 * 60 * 1000;

/// Maps a database error to a store error saying what failed.
pub(crate) fn db_error(what: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |err| Error::store(what, err)
}

/// A version read from the database (`BIGINT`, always positive).
pub(crate) fn version_from_db(key: &TokenKey, version: i64) -> Result<u64> {
    u64::try_from(version).map_err(|_| Error::Store {
        message: format!("stored version for {key} is negative ({version})"),
        source: None,
    })
}

/// The expected version as a database integer. `Err(())` when it cannot be
/// stored at all (above `i64::MAX`), so it cannot match: a conflict.
pub(crate) fn expected_to_db(expected: u64) -> Result<i64, ()> {
    i64::try_from(expected).map_err(|_| ())
}

/// The outcome of a CAS statement that returned the new version.
pub(crate) fn written(key: &TokenKey, version: i64) -> Result<CasOutcome> {
    Ok(CasOutcome::Written {
        version: version_from_db(key, version)?,
    })
}

/// Keys from `(key, provider)` rows; rows whose key does not parse are
/// skipped with a warning naming only their provider.
pub(crate) fn parse_keys(rows: Vec<(String, String)>) -> Vec<TokenKey> {
    rows.into_iter()
        .filter_map(|(text, provider)| {
            let key = TokenKey::parse(&text);
            if key.is_none() {
                tracing::warn!(
                    provider = %provider,
                    "skipping a stored token whose key does not parse"
                );
            }
            key
        })
        .collect()
}

/// A [`TokenPage`] from `(key, provider, record, version)` rows read in key
/// order with `LIMIT limit`: each row decoded on its own (an unreadable one
/// is an error beside its key), rows whose key does not parse skipped with
/// a warning naming only their provider; the next page starts after the
/// last row read, unless there were fewer than `limit`.
pub(crate) fn page(
    codec: &crate::codec::Codec,
    rows: Vec<(String, String, String, i64)>,
    limit: usize,
) -> TokenPage {
    let next = if rows.len() >= limit {
        rows.last().map(|(key, ..)| key.clone())
    } else {
        None
    };
    TokenPage::new(decode_rows(codec, rows), next)
}

/// `(key, provider, record, version)` rows as tokens beside their keys;
/// rows whose key does not parse are skipped (and logged).
pub(crate) fn decode_rows(
    codec: &crate::codec::Codec,
    rows: Vec<(String, String, String, i64)>,
) -> Vec<(TokenKey, Result<StoredToken>)> {
    rows.into_iter()
        .filter_map(|(text, provider, record, version)| {
            let Some(key) = TokenKey::parse(&text) else {
                tracing::warn!(
                    provider = %provider,
                    "skipping a stored token whose key does not parse"
                );
                return None;
            };
            let stored = codec.decode(&key, &record, version);
            Some((key, stored))
        })
        .collect()
}

/// A page size as a database integer (at least one).
pub(crate) fn page_limit(limit: usize) -> (usize, i64) {
    let limit = limit.clamp(1, i64::MAX as usize);
    (limit, limit as i64)
}

/// A lease duration (a ttl or an in-doubt grace) in whole milliseconds,
/// rounded up, at most ten years.
pub(crate) fn lease_ms(duration: Duration) -> i64 {
    let ms = duration.as_nanos().div_ceil(1_000_000);
    i64::try_from(ms).map_or(MAX_LEASE_MS, |ms| ms.min(MAX_LEASE_MS))
}

/// Milliseconds left on a lease, as a duration (never negative).
pub(crate) fn remaining(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Why a stored record could not be read: where, and what kind of error,
/// without serde's message (which may quote the offending value, a secret).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InvalidRecord {
    line: usize,
    column: usize,
    category: &'static str,
}

impl From<&serde_json::Error> for InvalidRecord {
    fn from(err: &serde_json::Error) -> Self {
        let category = match err.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "not a token record",
            serde_json::error::Category::Eof => "unexpected end of input",
        };
        Self {
            line: err.line(),
            column: err.column(),
            category,
        }
    }
}

impl InvalidRecord {
    /// An error found after parsing, which has no position.
    pub(crate) fn without_position(category: &'static str) -> Self {
        Self {
            line: 0,
            column: 0,
            category,
        }
    }
}

impl fmt::Display for InvalidRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: an error found after parsing (a field of the wrong type
        // once encrypted fields were decrypted), which has no position.
        if self.line == 0 {
            return f.write_str(self.category);
        }
        write!(
            f,
            "{} at line {}, column {}",
            self.category, self.line, self.column
        )
    }
}

impl std::error::Error for InvalidRecord {}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::parse("p|a|").unwrap()
    }

    #[test]
    fn lease_durations_are_rounded_up_and_capped() {
        assert_eq!(lease_ms(Duration::ZERO), 0);
        assert_eq!(lease_ms(Duration::from_micros(1)), 1);
        assert_eq!(lease_ms(Duration::from_millis(200)), 200);
        assert_eq!(
            lease_ms(Duration::from_secs(20 * 366 * 86_400)),
            MAX_LEASE_MS
        );
        assert_eq!(lease_ms(Duration::MAX), MAX_LEASE_MS);
        assert_eq!(remaining(-5), Duration::ZERO);
        assert_eq!(remaining(1500), Duration::from_millis(1500));
    }

    #[test]
    fn versions_out_of_range() {
        assert!(version_from_db(&key(), -1).is_err());
        assert_eq!(version_from_db(&key(), 7).unwrap(), 7);
        assert!(expected_to_db(u64::MAX).is_err());
    }

    #[test]
    fn unparsable_keys_are_skipped() {
        let keys = parse_keys(vec![
            ("p|a|x y".into(), "p".into()),
            ("garbage".into(), "q".into()),
        ]);
        assert_eq!(keys, vec![TokenKey::parse("p|a|x y").unwrap()]);
    }
}
