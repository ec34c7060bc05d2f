//! Key rotation: rewriting every row that is not under the current key (or
//! not in the current format).
//!
//! A rewrite replaces a row only if it still has the version and the text
//! that were read, and it keeps the version: the token is unchanged, only
//! its encryption is. So a refresh that raced the rewrite (and expects the
//! version it read) still lands, and the rewrite never overwrites it. (A
//! version bump would make that refresh conflict, and the manager would then
//! keep the stored token and drop the one just issued, whose refresh token
//! may be the only valid one.)

use oauth2_adapters_core::{Error, Result};

use crate::codec::Codec;

/// Rows read per query.
pub(crate) const PAGE: i64 = 100;

/// How many times one row is read again after a concurrent write changed it
/// under the rewrite.
const ATTEMPTS: usize = 10;

/// One row of the tokens table: key, record text, version.
pub(crate) type Row = (String, String, i64);

/// The statements rotation needs, in each store's SQL.
pub(crate) trait Rows {
    /// Up to [`PAGE`] rows in key order, after the key `after` (from the
    /// first when `None`).
    async fn page(&self, after: Option<&str>) -> Result<Vec<Row>>;

    /// The record text and version of `key`, if the row still exists.
    async fn row(&self, key: &str) -> Result<Option<(String, i64)>>;

    /// Sets the record of `key` to `new`, keeping its version, if the row
    /// still has `version` and `old`. True when it did.
    async fn replace(&self, key: &str, version: i64, old: &str, new: &str) -> Result<bool>;
}

/// Rewrites every row that is not under the codec's current key; returns
/// how many were rewritten. Stops at the first row that cannot be read
/// (leaving it as it was): what was rewritten before stays rewritten, and
/// running again resumes.
pub(crate) async fn reencrypt_all(codec: &Codec, rows: &impl Rows) -> Result<u64> {
    codec.keys_to_reencrypt()?;
    let mut rewritten = 0;
    let mut after: Option<String> = None;
    loop {
        let page = rows.page(after.as_deref()).await?;
        let Some((last, _, _)) = page.last() else {
            return Ok(rewritten);
        };
        after = Some(last.clone());
        for (key, text, version) in page {
            if reencrypt_row(codec, rows, &key, text, version).await? {
                rewritten += 1;
            }
        }
    }
}

/// Rewrites one row if needed, reading it again whenever a concurrent write
/// got there first. True when this call rewrote it.
async fn reencrypt_row(
    codec: &Codec,
    rows: &impl Rows,
    key: &str,
    mut text: String,
    mut version: i64,
) -> Result<bool> {
    for _ in 0..ATTEMPTS {
        let Some(new) = codec.reencrypt(key, &text)? else {
            return Ok(false);
        };
        if rows.replace(key, version, &text, &new).await? {
            return Ok(true);
        }
        match rows.row(key).await? {
            Some((now, now_version)) => (text, version) = (now, now_version),
            None => return Ok(false),
        }
    }
    Err(Error::Store {
        message: format!(
            "the token {key} kept changing while it was re-encrypted; run the re-encryption again"
        ),
        source: None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::EncryptionKeys;

    /// Rows in memory; a concurrent write can be scripted to land just
    /// before the next replace.
    #[derive(Default)]
    struct Memory {
        rows: Mutex<BTreeMap<String, (String, i64)>>,
        race: Mutex<Option<(String, String)>>,
    }

    impl Rows for Memory {
        async fn page(&self, after: Option<&str>) -> Result<Vec<Row>> {
            let rows = self.rows.lock().unwrap();
            Ok(rows
                .iter()
                .filter(|(key, _)| after.is_none_or(|after| key.as_str() > after))
                .take(usize::try_from(PAGE).unwrap())
                .map(|(key, (text, version))| (key.clone(), text.clone(), *version))
                .collect())
        }

        async fn row(&self, key: &str) -> Result<Option<(String, i64)>> {
            Ok(self.rows.lock().unwrap().get(key).cloned())
        }

        async fn replace(&self, key: &str, version: i64, old: &str, new: &str) -> Result<bool> {
            let mut rows = self.rows.lock().unwrap();
            if let Some((race_key, race_text)) = self.race.lock().unwrap().take() {
                let row = rows.get_mut(&race_key).unwrap();
                *row = (race_text, row.1 + 1);
            }
            match rows.get_mut(key) {
                Some(row) if row.1 == version && row.0 == old => {
                    row.0 = new.to_owned();
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
    }

    fn record(access: &str) -> String {
        format!(
            r#"{{"provider":"p","access_token":"{access}","refresh_token":null,"token_type":"Bearer",
                "expires_at_ms":null,"refresh_expires_at_ms":null,"scopes":[],"subject":null,
                "issued_at_ms":0}}"#
        )
    }

    fn access(codec: &Codec, memory: &Memory, key: &str) -> (String, i64) {
        let (text, version) = memory.rows.lock().unwrap()[key].clone();
        let token_key = oauth2_adapters_core::store::TokenKey::parse(key).unwrap();
        let stored = codec.decode(&token_key, &text, version).unwrap();
        (
            stored.record.access_token,
            i64::try_from(stored.version).unwrap(),
        )
    }

    #[tokio::test]
    async fn every_row_is_rewritten_once_across_pages() {
        let codec = Codec::default().with_keys(EncryptionKeys::new("b", &[2; 32]).unwrap());
        let memory = Memory::default();
        let count = PAGE as usize * 2 + 7;
        for i in 0..count {
            memory
                .rows
                .lock()
                .unwrap()
                .insert(format!("p|a{i:04}|"), (record(&format!("t{i}")), 3));
        }
        assert_eq!(reencrypt_all(&codec, &memory).await.unwrap(), count as u64);
        assert_eq!(reencrypt_all(&codec, &memory).await.unwrap(), 0);
        assert_eq!(access(&codec, &memory, "p|a0150|"), ("t150".into(), 3));
    }

    #[tokio::test]
    async fn a_concurrent_write_is_never_overwritten() {
        let old = Codec::default().with_keys(EncryptionKeys::new("a", &[1; 32]).unwrap());
        let codec = Codec::default().with_keys(
            EncryptionKeys::new("b", &[2; 32])
                .unwrap()
                .with_old_key("a", &[1; 32])
                .unwrap(),
        );
        let memory = Memory::default();
        let key = "p|a|";
        memory
            .rows
            .lock()
            .unwrap()
            .insert(key.into(), (old.encode(key, &decoded("first")).unwrap(), 1));
        // A refresh by an instance still on key `a` lands between the read
        // and the rewrite: the rewrite fails, reads again, and rewrites the
        // refreshed token.
        let refreshed = old.encode(key, &decoded("refreshed")).unwrap();
        *memory.race.lock().unwrap() = Some((key.into(), refreshed));
        assert_eq!(reencrypt_all(&codec, &memory).await.unwrap(), 1);
        assert_eq!(access(&codec, &memory, key), ("refreshed".into(), 2));
        assert!(memory.rows.lock().unwrap()[key].0.contains("enc:v1:b:"));

        // A refresh that lands already under `b`: nothing left to rewrite.
        let stale = old.encode(key, &decoded("stale")).unwrap();
        memory.rows.lock().unwrap().insert(key.into(), (stale, 2));
        let again = codec.encode(key, &decoded("again")).unwrap();
        *memory.race.lock().unwrap() = Some((key.into(), again));
        assert_eq!(reencrypt_all(&codec, &memory).await.unwrap(), 0);
        assert_eq!(access(&codec, &memory, key), ("again".into(), 3));
    }

    fn decoded(access: &str) -> oauth2_adapters_core::store::TokenRecord {
        serde_json::from_str(&record(access)).unwrap()
    }
}
