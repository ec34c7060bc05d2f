//! The in-memory store: the default, for one process.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{CasOutcome, LeaseOutcome, LeaseRequest, StoredToken, TokenKey, TokenPage, TokenStore};
use crate::error::Result;
use crate::token::{ProviderId, TokenRecord};

/// Tokens in a `HashMap` behind a mutex (held only for the map operation,
/// never across an `.await`). Nothing survives the process.
///
/// Each record is kept packed (its fields in one byte buffer, zeroed when
/// dropped) and unpacked on a load: loads happen when a token is refreshed
/// or first read, not on the manager's cached reads.
///
/// It keeps refresh leases like the shared stores do, so several managers
/// in one process may share one `MemoryStore` and still refresh each key
/// once.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tokens: HashMap<TokenKey, Packed>,
    leases: HashMap<TokenKey, Lease>,
}

/// A stored token, packed: the record's strings and numbers in one
/// buffer; its extra fields (rare, and not worth re-encoding) beside it.
struct Packed {
    version: u64,
    bytes: Box<[u8]>,
    extra: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

impl fmt::Debug for Packed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Packed")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Drop for Packed {
    fn drop(&mut self) {
        secrecy::zeroize::Zeroize::zeroize(&mut *self.bytes);
    }
}

impl Packed {
    fn new(record: &TokenRecord, version: u64) -> Self {
        let mut out = Vec::with_capacity(
            64 + record.provider.as_str().len()
                + record.access_token.len()
                + record.refresh_token.as_ref().map_or(0, String::len)
                + record.token_type.len()
                + record.scopes.iter().map(|s| s.len() + 4).sum::<usize>()
                + record.subject.as_ref().map_or(0, String::len),
        );
        put_str(&mut out, record.provider.as_str());
        put_str(&mut out, &record.access_token);
        put_opt_str(&mut out, record.refresh_token.as_deref());
        put_str(&mut out, &record.token_type);
        put_opt_u64(&mut out, record.expires_at_ms);
        put_opt_u64(&mut out, record.refresh_expires_at_ms);
        out.extend_from_slice(&(record.scopes.len() as u32).to_le_bytes());
        for scope in &record.scopes {
            put_str(&mut out, scope);
        }
        put_opt_str(&mut out, record.subject.as_deref());
        out.extend_from_slice(&record.issued_at_ms.to_le_bytes());
        // Copied out, not shrunk in place: `into_boxed_slice` would
        // reallocate and free the larger buffer (tokens included) unzeroed.
        let bytes: Box<[u8]> = Box::from(out.as_slice());
        secrecy::zeroize::Zeroize::zeroize(&mut out);
        Self {
            version,
            bytes,
            extra: (!record.extra.is_empty()).then(|| Box::new(record.extra.clone())),
        }
    }

    fn unpack(&self) -> StoredToken {
        let mut r = Reader(&self.bytes);
        let provider = ProviderId::new(r.string());
        let access_token = r.string();
        let refresh_token = r.opt_string();
        let token_type = r.string();
        let expires_at_ms = r.opt_u64();
        let refresh_expires_at_ms = r.opt_u64();
        let scopes = (0..r.u32()).map(|_| r.string()).collect();
        let subject = r.opt_string();
        let issued_at_ms = r.u64();
        StoredToken {
            record: TokenRecord {
                provider,
                access_token,
                refresh_token,
                token_type,
                expires_at_ms,
                refresh_expires_at_ms,
                scopes,
                subject,
                issued_at_ms,
                extra: self.extra.as_deref().cloned().unwrap_or_default(),
            },
            version: self.version,
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

fn put_opt_u64(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        None => out.push(0),
        Some(n) => {
            out.push(1);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Reads what [`Packed::new`] wrote (in this process, so never malformed;
/// a short read gives empty values rather than a panic).
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn u32(&mut self) -> u32 {
        self.take(4).try_into().map_or(0, u32::from_le_bytes)
    }
    fn u64(&mut self) -> u64 {
        self.take(8).try_into().map_or(0, u64::from_le_bytes)
    }
    fn string(&mut self) -> String {
        let n = self.u32() as usize;
        String::from_utf8_lossy(self.take(n)).into_owned()
    }
    fn opt_string(&mut self) -> Option<String> {
        (self.u8() == 1).then(|| self.string())
    }
    fn opt_u64(&mut self) -> Option<u64> {
        (self.u8() == 1).then(|| self.u64())
    }
}

/// A refresh lease: who holds it, until when, for which stored version.
#[derive(Debug)]
struct Lease {
    holder: String,
    expires_at: Instant,
    version: Option<u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        f(&mut state)
    }

    fn with_tokens<T>(&self, f: impl FnOnce(&mut HashMap<TokenKey, Packed>) -> T) -> T {
        self.with_state(|state| f(&mut state.tokens))
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        Ok(self.with_tokens(|tokens| tokens.get(key).map(Packed::unpack)))
    }

    async fn compare_and_swap(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
    ) -> Result<CasOutcome> {
        Ok(self.with_tokens(|tokens| {
            let current = tokens.get(key);
            if current.map(|stored| stored.version) != expected {
                return CasOutcome::Conflict {
                    current: current.map(|packed| Box::new(packed.unpack())),
                };
            }
            let version = expected.unwrap_or(0) + 1;
            tokens.insert(key.clone(), Packed::new(record, version));
            CasOutcome::Written { version }
        }))
    }

    async fn delete(&self, key: &TokenKey) -> Result<()> {
        self.with_state(|state| {
            state.tokens.remove(key);
            state.leases.remove(key);
        });
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<TokenKey>> {
        Ok(self.with_tokens(|tokens| tokens.keys().cloned().collect()))
    }

    /// One pass over the map per page (the keys after `after`, the `limit`
    /// smallest of them sorted): a warm of `n` tokens makes `n / 10,000`
    /// passes.
    async fn load_page(&self, after: Option<&str>, limit: usize) -> Result<Option<TokenPage>> {
        let limit = limit.max(1);
        let mut page: Vec<(TokenKey, StoredToken)> = self.with_tokens(|tokens| {
            let mut candidates: Vec<(&TokenKey, &Packed)> = tokens
                .iter()
                .filter(|(key, _)| after.is_none_or(|after| key.as_str() > after))
                .collect();
            if candidates.len() > limit {
                candidates.select_nth_unstable_by(limit - 1, |a, b| a.0.as_str().cmp(b.0.as_str()));
                candidates.truncate(limit);
            }
            candidates
                .into_iter()
                .map(|(key, packed)| (key.clone(), packed.unpack()))
                .collect()
        });
        page.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let next = (page.len() == limit)
            .then(|| page.last().map(|(key, _)| key.as_str().to_owned()))
            .flatten();
        Ok(Some(TokenPage::new(
            page.into_iter()
                .map(|(key, stored)| (key, Ok(stored)))
                .collect(),
            next,
        )))
    }

    async fn load_many(
        &self,
        keys: &[TokenKey],
    ) -> Result<Option<Vec<(TokenKey, Result<StoredToken>)>>> {
        Ok(Some(self.with_tokens(|tokens| {
            keys.iter()
                .filter_map(|key| Some((key.clone(), Ok(tokens.get(key)?.unpack()))))
                .collect()
        })))
    }

    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        request: &LeaseRequest<'_>,
    ) -> Result<LeaseOutcome> {
        let now = Instant::now();
        Ok(self.with_state(|state| {
            let current = state.tokens.get(key).map(Packed::unpack);
            let version = current.as_ref().map(|stored| stored.version);
            if let Some(lease) = state.leases.get(key) {
                if lease.holder != request.holder {
                    if lease.expires_at > now {
                        return LeaseOutcome::HeldByOther {
                            remaining: lease.expires_at - now,
                            current,
                        };
                    }
                    let free_at = lease.expires_at + request.in_doubt_grace.min(MAX_GRACE);
                    if lease.version == version && free_at > now {
                        return LeaseOutcome::InDoubt {
                            retry_after: free_at - now,
                            current,
                        };
                    }
                }
            }
            state.leases.insert(
                key.clone(),
                Lease {
                    holder: request.holder.to_owned(),
                    expires_at: now + request.ttl.min(MAX_GRACE),
                    version,
                },
            );
            LeaseOutcome::Acquired { current }
        }))
    }

    async fn release_lease(&self, key: &TokenKey, holder: &str) -> Result<()> {
        self.with_state(|state| {
            if state.leases.get(key).is_some_and(|l| l.holder == holder) {
                state.leases.remove(key);
            }
        });
        Ok(())
    }
}

/// A bound on lease durations that keeps `Instant` arithmetic from
/// overflowing (the manager's own bounds are far below it).
const MAX_GRACE: Duration = Duration::from_secs(365 * 24 * 3600);

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use secrecy::SecretString;

    use super::*;
    use crate::token::Token;

    fn record(access: &str) -> TokenRecord {
        Token::new(
            ProviderId::from_static("p"),
            SecretString::from(access.to_owned()),
            UNIX_EPOCH,
        )
        .to_record()
    }

    #[tokio::test]
    async fn compare_and_swap_follows_versions() {
        let store = MemoryStore::new();
        let key = TokenKey::new(&ProviderId::from_static("p"), "a");
        assert!(store.load(&key).await.unwrap().is_none());
        assert!(matches!(
            store
                .compare_and_swap(&key, None, &record("1"))
                .await
                .unwrap(),
            CasOutcome::Written { version: 1 }
        ));
        assert!(matches!(
            store
                .compare_and_swap(&key, None, &record("x"))
                .await
                .unwrap(),
            CasOutcome::Conflict { current: Some(ref c) } if c.version == 1
        ));
        assert!(matches!(
            store
                .compare_and_swap(&key, Some(1), &record("2"))
                .await
                .unwrap(),
            CasOutcome::Written { version: 2 }
        ));
        assert!(matches!(
            store
                .compare_and_swap(&key, Some(1), &record("y"))
                .await
                .unwrap(),
            CasOutcome::Conflict { .. }
        ));
        assert_eq!(
            store.load(&key).await.unwrap().unwrap().record.access_token,
            "2"
        );
        assert_eq!(store.keys().await.unwrap(), vec![key.clone()]);
        store.delete(&key).await.unwrap();
        assert!(store.load(&key).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_record_comes_back_as_it_went_in_and_debug_redacts() {
        let store = MemoryStore::new();
        let key = TokenKey::new(&ProviderId::from_static("p"), "a");
        let mut full = record("secret-access");
        full.refresh_token = Some("secret-refresh".into());
        full.token_type = "DPoP".into();
        full.expires_at_ms = Some(1_800_000_000_123);
        full.refresh_expires_at_ms = Some(u64::MAX);
        full.scopes = vec!["read".into(), "wrïte".into(), String::new()];
        full.subject = Some("user-1".into());
        full.issued_at_ms = 42;
        full.extra
            .insert("team".into(), serde_json::json!({"id": 7, "f": 0.1}));
        let bare = record("");
        for record in [full, bare] {
            store.delete(&key).await.unwrap();
            store.compare_and_swap(&key, None, &record).await.unwrap();
            let loaded = store.load(&key).await.unwrap().unwrap();
            assert!(loaded.record == record);
            assert_eq!(loaded.version, 1);
        }
        let debug = format!("{store:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }
}
