//! `TokenManager::warm`: every stored token cached, a page at a time when
//! the store pages, key by key when it cannot.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use oauth2_adapters_core::store::{
    CasOutcome, MemoryStore, StoredToken, TokenKey, TokenPage, TokenRecord, TokenStore,
};
use oauth2_adapters_core::{ProviderId, Result, Token, TokenManager};
use secrecy::SecretString;

/// A store that counts its calls, and pages only if `pages`.
#[derive(Debug)]
struct Counting {
    inner: MemoryStore,
    pages: bool,
    page_calls: AtomicUsize,
    loads: AtomicUsize,
}

impl Counting {
    fn new(pages: bool) -> Self {
        Self {
            inner: MemoryStore::new(),
            pages,
            page_calls: AtomicUsize::new(0),
            loads: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl TokenStore for Counting {
    async fn load(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        self.inner.load(key).await
    }
    async fn compare_and_swap(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
    ) -> Result<CasOutcome> {
        self.inner.compare_and_swap(key, expected, record).await
    }
    async fn delete(&self, key: &TokenKey) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn keys(&self) -> Result<Vec<TokenKey>> {
        self.inner.keys().await
    }
    async fn load_page(&self, after: Option<&str>, limit: usize) -> Result<Option<TokenPage>> {
        if !self.pages {
            return Ok(None);
        }
        self.page_calls.fetch_add(1, Ordering::Relaxed);
        self.inner.load_page(after, limit).await
    }
}

fn provider() -> ProviderId {
    ProviderId::from_static("warm")
}

async fn fill(store: &dyn TokenStore, count: usize) -> Vec<TokenKey> {
    let mut token = Token::new(provider(), SecretString::from("access"), SystemTime::now());
    token.expires_at = Some(SystemTime::now() + Duration::from_secs(3600));
    let record = token.to_record();
    let mut keys = Vec::with_capacity(count);
    for i in 0..count {
        let key = TokenKey::new(&provider(), &format!("account-{i}"));
        store.compare_and_swap(&key, None, &record).await.unwrap();
        keys.push(key);
    }
    keys
}

#[tokio::test]
async fn warm_reads_pages_of_a_store_that_pages() {
    let store = Arc::new(Counting::new(true));
    // More than two pages of 10,000.
    let keys = fill(&*store, 25_001).await;
    let manager = TokenManager::builder()
        .store(store.clone())
        .build()
        .unwrap();
    let report = manager.warm().await.unwrap();
    assert_eq!(report.loaded, keys.len());
    assert!(report.unreadable.is_empty());
    assert_eq!(manager.len(), keys.len());
    assert_eq!(store.page_calls.load(Ordering::Relaxed), 3);
    assert_eq!(store.loads.load(Ordering::Relaxed), 0, "no load per key");
    for key in [&keys[0], &keys[12_345], &keys[25_000]] {
        assert!(manager.try_get(key).is_some(), "{key} is cached");
    }
}

#[tokio::test]
async fn warm_loads_key_by_key_from_a_store_that_cannot_page() {
    let store = Arc::new(Counting::new(false));
    let keys = fill(&*store, 30).await;
    let manager = TokenManager::builder()
        .store(store.clone())
        .build()
        .unwrap();
    let report = manager.warm().await.unwrap();
    assert_eq!(report.loaded, keys.len());
    assert_eq!(store.loads.load(Ordering::Relaxed), keys.len());
    assert!(keys.iter().all(|key| manager.try_get(key).is_some()));
}

#[tokio::test]
async fn memory_pages_are_in_key_order_and_cover_every_token() {
    let store = MemoryStore::new();
    let mut keys = fill(&store, 10).await;
    keys.sort();
    let mut read = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.load_page(after.as_deref(), 4).await.unwrap().unwrap();
        assert!(page.tokens.len() <= 4);
        read.extend(page.tokens.into_iter().map(|(key, stored)| {
            assert_eq!(stored.unwrap().version, 1);
            key
        }));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(read, keys, "every key once, in order");
    let empty = MemoryStore::new()
        .load_page(None, 4)
        .await
        .unwrap()
        .unwrap();
    assert!(empty.tokens.is_empty() && empty.next.is_none());
}
