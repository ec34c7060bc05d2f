//! The manager against a scripted in-process provider: single flight,
//! cancellation, refresh ahead, persistence order, events, the background
//! refresher's concurrency bound and backoff.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use super::*;
use crate::clock::ManualClock;
use crate::provider::{ClientCredentialsProvider, Provider, ProviderSettings, Renewal};
use crate::store::MemoryStore;

const LIFETIME: Duration = Duration::from_secs(3600);

/// Issues numbered tokens after `delay`; counts calls and peak concurrency.
#[derive(Debug)]
struct Scripted {
    context: ProviderSettings,
    delay: Duration,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    fail_next: AtomicUsize,
}

impl Scripted {
    fn new(clock: &ManualClock, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            context: ProviderSettings::new()
                .unwrap()
                .with_clock(Arc::new(clock.clone()))
                .with_retry_policy(crate::RetryPolicy::never()),
            delay,
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            fail_next: AtomicUsize::new(0),
        })
    }
}

static SCRIPTED: ProviderId = ProviderId::from_static("scripted");

impl Provider for Scripted {
    fn id(&self) -> &ProviderId {
        &SCRIPTED
    }
    fn renewal(self: std::sync::Arc<Self>) -> Renewal {
        Renewal::Reacquire(self)
    }
    fn settings(&self) -> &ProviderSettings {
        &self.context
    }
}

#[async_trait]
impl ClientCredentialsProvider for Scripted {
    async fn request_client_credentials(&self, _scopes: &[String]) -> Result<Token> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let now_in = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now_in, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.fail_next.load(Ordering::SeqCst) > 0 {
            self.fail_next.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::HttpStatus {
                provider: SCRIPTED.clone(),
                status: 503,
                retry_after: None,
                excerpt: String::new(),
            });
        }
        let now = self.context.clock.now();
        let mut token = Token::new(
            SCRIPTED.clone(),
            SecretString::from(format!("token-{n}")),
            now,
        );
        token.expires_at = Some(now + LIFETIME);
        Ok(token)
    }
}

fn manager(clock: &ManualClock, provider: &Arc<Scripted>) -> TokenManager {
    TokenManager::builder()
        .clock(Arc::new(clock.clone()))
        .provider(provider.clone())
        .failure_backoff(Duration::from_millis(200), Duration::from_secs(5))
        .build()
        .unwrap()
}

fn key(account: &str) -> TokenKey {
    TokenKey::new(&SCRIPTED, account)
}

#[tokio::test]
async fn concurrent_callers_share_one_request_and_the_cache_serves_the_rest() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::from_millis(50));
    let manager = manager(&clock, &provider);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.get(&key("a")).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().expose_secret(), "token-1");
    }
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    // Cached now: no further request, and the sync path sees it too.
    assert_eq!(
        manager.get(&key("a")).await.unwrap().expose_secret(),
        "token-1"
    );
    assert_eq!(
        manager.try_get(&key("a")).unwrap().expose_secret(),
        "token-1"
    );
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn different_keys_are_never_merged() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::from_millis(20));
    let manager = manager(&clock, &provider);
    let scoped = TokenKey::with_scopes(&SCRIPTED, "a", ["read"]);
    let (key_a, key_b) = (key("a"), key("b"));
    let (a, b, c) = tokio::join!(
        manager.get(&key_a),
        manager.get(&key_b),
        manager.get(&scoped)
    );
    let secrets = [a.unwrap(), b.unwrap(), c.unwrap()].map(|t| t.expose_secret().to_owned());
    assert_eq!(provider.calls.load(Ordering::SeqCst), 3);
    assert!(secrets[0] != secrets[1] && secrets[1] != secrets[2] && secrets[0] != secrets[2]);
}

#[tokio::test]
async fn cancelling_the_first_caller_fails_nobody() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::from_millis(200));
    let manager = manager(&clock, &provider);
    let first = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.get(&key("a")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let others: Vec<_> = (0..10)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.get(&key("a")).await })
        })
        .collect();
    first.abort();
    for other in others {
        assert_eq!(other.await.unwrap().unwrap().expose_secret(), "token-1");
    }
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_due_token_is_served_while_the_refresh_runs_and_persisted_before_it_is_seen() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::from_millis(300));
    let store = Arc::new(MemoryStore::new());
    let manager = TokenManager::builder()
        .store(store.clone())
        .clock(Arc::new(clock.clone()))
        .provider(provider.clone())
        .build()
        .unwrap();
    let first = manager.get(&key("a")).await.unwrap();
    // Within the skew (and jitter) but still valid.
    clock.advance(LIFETIME - Duration::from_secs(10));
    let served = tokio::time::timeout(Duration::from_millis(150), manager.get(&key("a")))
        .await
        .expect("a valid token is served without waiting for the refresh")
        .unwrap();
    assert_eq!(served.expose_secret(), first.expose_secret());
    // Wait for the background refresh.
    let mut events = manager.subscribe();
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(event, TokenEvent::Refreshed { version: 2, .. }),
        "{event:?}"
    );
    let stored = store.load(&key("a")).await.unwrap().unwrap();
    assert_eq!(stored.record.access_token, "token-2");
    assert_eq!(
        manager.get(&key("a")).await.unwrap().expose_secret(),
        "token-2"
    );
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_300_second_token_is_reused() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::ZERO);
    let manager = manager(&clock, &provider);
    let mut token = Token::new(SCRIPTED.clone(), SecretString::from("short"), clock.now());
    token.expires_at = Some(clock.now() + Duration::from_secs(300));
    manager.insert(key("a"), token).await.unwrap();
    clock.advance(Duration::from_secs(120));
    assert_eq!(
        manager.get(&key("a")).await.unwrap().expose_secret(),
        "short"
    );
    assert_eq!(provider.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn failures_are_reported_backed_off_and_recovered_from() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::ZERO);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let manager = {
        let seen = seen.clone();
        TokenManager::builder()
            .clock(Arc::new(clock.clone()))
            .provider(provider.clone())
            .failure_backoff(Duration::from_secs(2), Duration::from_secs(60))
            .on_event(move |event| seen.lock().unwrap().push(format!("{event:?}")))
            .build()
            .unwrap()
    };
    manager.get(&key("a")).await.unwrap();
    clock.advance(LIFETIME - Duration::from_secs(5));
    provider.fail_next.store(1, Ordering::SeqCst);
    manager.get(&key("a")).await.unwrap(); // served; starts the failing refresh
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    // In backoff: no new request while the old token is valid.
    manager.get(&key("a")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|e| e.starts_with("RefreshFailed")));
    // After the backoff, the next get refreshes.
    clock.advance(Duration::from_secs(4));
    manager.get(&key("a")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        manager.get(&key("a")).await.unwrap().expose_secret(),
        "token-3"
    );
}

#[tokio::test]
async fn an_unauthorized_key_requires_authorization_and_an_unknown_provider_is_a_configuration_error(
) {
    let clock = ManualClock::at_unix(1_800_000_000);
    let manager = TokenManager::builder()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let err = manager.get(&key("a")).await.unwrap_err();
    assert!(matches!(err, Error::Configuration { .. }), "{err:?}");
}

#[tokio::test]
async fn force_refresh_renews_once_even_for_many_callers() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::from_millis(50));
    let manager = manager(&clock, &provider);
    let rejected = manager.get(&key("a")).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (manager, rejected) = (manager.clone(), rejected.clone());
            tokio::spawn(async move { manager.force_refresh(&key("a"), &rejected).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().expose_secret(), "token-2");
    }
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_background_refresher_bounds_concurrency_and_lets_nothing_lapse() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::from_millis(5));
    let manager = TokenManager::builder()
        .provider(provider.clone())
        .failure_backoff(Duration::from_millis(200), Duration::from_secs(5))
        .refresh_in_background(Duration::from_millis(20), 4)
        .build()
        .unwrap();
    let keys: Vec<_> = (0..300).map(|i| key(&format!("tenant-{i}"))).collect();
    for key in &keys {
        let mut token = Token::new(SCRIPTED.clone(), SecretString::from("old"), clock.now());
        token.expires_at = Some(clock.now() + LIFETIME);
        manager.insert(key.clone(), token).await.unwrap();
    }
    // The whole wave is due at once, 30 s before it expires.
    clock.advance(LIFETIME - Duration::from_secs(30));
    // Peek at the cache without `get`, which would start refreshes of its own.
    let renewed = |key: &TokenKey| {
        let slot = manager.inner.slot(key);
        let cached = slot.current.load_full();
        cached.is_some_and(|c| AccessToken::owned(c).expose_secret() != "old")
    };
    let all_renewed = || keys.iter().all(renewed);
    for _ in 0..500 {
        if all_renewed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(all_renewed(), "every token was renewed before it expired");
    assert_eq!(
        provider.calls.load(Ordering::SeqCst),
        keys.len(),
        "one request per key"
    );
    let peak = provider.peak.load(Ordering::SeqCst);
    assert!(
        (1..=4).contains(&peak),
        "at most 4 refreshes at once, saw {peak}"
    );
}

/// Reads that find a token due start refreshes ahead of its expiry; with
/// the background refresher running, those count against its cap too.
#[tokio::test]
async fn refreshes_that_reads_start_stay_within_the_background_cap() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::from_millis(100));
    let manager = TokenManager::builder()
        .clock(Arc::new(clock.clone()))
        .provider(provider.clone())
        .refresh_in_background(Duration::from_secs(3600), 2)
        .build()
        .unwrap();
    let keys: Vec<_> = (0..20).map(|i| key(&format!("tenant-{i}"))).collect();
    for key in &keys {
        let mut token = Token::new(SCRIPTED.clone(), SecretString::from("old"), clock.now());
        token.expires_at = Some(clock.now() + LIFETIME);
        manager.insert(key.clone(), token).await.unwrap();
    }
    clock.advance(LIFETIME - Duration::from_secs(30)); // due, still valid
    for _ in 0..30 {
        for key in &keys {
            assert!(manager.try_get(key).is_some(), "a valid token is served");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let peak = provider.peak.load(Ordering::SeqCst);
    assert!(peak >= 1, "reads started refreshes");
    assert!(peak <= 2, "at most 2 refreshes at once, saw {peak}");
}

/// Counts the lease calls and batch reads made through a shared store.
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryStore,
    leases: AtomicUsize,
    batches: AtomicUsize,
}

#[async_trait]
impl TokenStore for CountingStore {
    async fn load(&self, key: &TokenKey) -> Result<Option<crate::store::StoredToken>> {
        self.inner.load(key).await
    }
    async fn compare_and_swap(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &crate::token::TokenRecord,
    ) -> Result<crate::store::CasOutcome> {
        self.inner.compare_and_swap(key, expected, record).await
    }
    async fn delete(&self, key: &TokenKey) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn keys(&self) -> Result<Vec<TokenKey>> {
        self.inner.keys().await
    }
    async fn load_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Option<crate::store::TokenPage>> {
        self.inner.load_page(after, limit).await
    }
    async fn load_many(
        &self,
        keys: &[TokenKey],
    ) -> Result<Option<Vec<(TokenKey, Result<crate::store::StoredToken>)>>> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.inner.load_many(keys).await
    }
    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        request: &crate::store::LeaseRequest<'_>,
    ) -> Result<crate::store::LeaseOutcome> {
        self.leases.fetch_add(1, Ordering::SeqCst);
        self.inner.try_acquire_lease(key, request).await
    }
    async fn release_lease(&self, key: &TokenKey, holder: &str) -> Result<()> {
        self.inner.release_lease(key, holder).await
    }
}

/// Two instances sharing a store, both refreshing in the background: each
/// key is refreshed once in all, and the instance that comes second to a
/// key takes the other's token from its batch read, without a lease of
/// its own (the instances walk the due keys in orders of their own).
#[tokio::test]
async fn two_background_refreshers_split_the_due_keys_between_them() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::from_millis(5));
    let store = Arc::new(CountingStore::default());
    let instance = || {
        TokenManager::builder()
            .store(store.clone())
            .clock(Arc::new(clock.clone()))
            .provider(provider.clone())
            .failure_backoff(Duration::from_millis(200), Duration::from_secs(5))
            .refresh_in_background(Duration::from_millis(20), 4)
            .build()
            .unwrap()
    };
    let (a, b) = (instance(), instance());
    let keys: Vec<_> = (0..400).map(|i| key(&format!("tenant-{i}"))).collect();
    for key in &keys {
        let mut token = Token::new(SCRIPTED.clone(), SecretString::from("old"), clock.now());
        token.expires_at = Some(clock.now() + LIFETIME);
        a.insert(key.clone(), token).await.unwrap();
    }
    b.warm().await.unwrap();
    clock.advance(LIFETIME - Duration::from_secs(30));
    let renewed = |manager: &TokenManager, key: &TokenKey| {
        let cached = manager.inner.slot(key).current.load_full();
        cached.is_some_and(|c| AccessToken::owned(c).expose_secret() != "old")
    };
    let all_renewed = || keys.iter().all(|k| renewed(&a, k) && renewed(&b, k));
    for _ in 0..500 {
        if all_renewed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Time passes (an instance that lost a key's lease looks again
        // after a while), short of the tokens' expiry.
        clock.advance(Duration::from_millis(40));
    }
    let stale = |m: &TokenManager| keys.iter().filter(|k| !renewed(m, k)).count();
    assert!(
        all_renewed(),
        "both instances hold every renewed token; not renewed: {} in a, {} in b",
        stale(&a),
        stale(&b)
    );
    assert_eq!(
        provider.calls.load(Ordering::SeqCst),
        keys.len(),
        "one request per key across both instances"
    );
    let leases = store.leases.load(Ordering::SeqCst);
    assert!(
        leases < keys.len() * 5 / 4,
        "{leases} leases taken for {} keys: the second instance to a key should \
         take its token from a batch read, not lease it again",
        keys.len()
    );
    assert!(store.batches.load(Ordering::SeqCst) > 0);
}

#[tokio::test]
async fn a_removed_key_is_never_served_from_a_threads_cache() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::from_millis(100));
    let manager = manager(&clock, &provider);
    let held = key("a");
    assert_eq!(manager.get(&held).await.unwrap().expose_secret(), "token-1");
    // Read often enough for this thread's cache to remember the slot, with
    // the held key and with keys built per call.
    for _ in 0..4 {
        assert!(manager.try_get(&held).is_some());
        assert!(manager.try_get(&key("a")).is_some());
        assert!(manager
            .read_authorization_header(&key("a"), |_| ())
            .is_some());
    }
    manager.remove(&held).await.unwrap();
    assert!(manager.try_get(&held).is_none());
    assert!(manager.try_get(&key("a")).is_none());
    assert!(manager.read_authorization_header(&held, |_| ()).is_none());
    assert_eq!(manager.get(&held).await.unwrap().expose_secret(), "token-2");
    assert_eq!(manager.try_get(&held).unwrap().expose_secret(), "token-2");

    // A refresh in flight when the key is removed ends however it ends
    // (the store no longer has the key); nothing it leaves in the removed
    // slot is served.
    for _ in 0..4 {
        assert!(manager.try_get(&held).is_some());
    }
    clock.advance(LIFETIME + Duration::from_secs(1));
    let waiting = {
        let (manager, held) = (manager.clone(), held.clone());
        tokio::spawn(async move { manager.get(&held).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    manager.remove(&held).await.unwrap();
    let _ = waiting.await.unwrap();
    assert!(
        manager.try_get(&held).is_none(),
        "the removed slot is not served"
    );
    assert!(manager.read_authorization_header(&held, |_| ()).is_none());
    assert!(manager.is_empty());
}

#[tokio::test]
async fn managers_never_see_each_others_cached_slots() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::from_millis(1));
    let (one, two) = (manager(&clock, &provider), manager(&clock, &provider));
    let held = key("shared");
    assert_eq!(one.get(&held).await.unwrap().expose_secret(), "token-1");
    for _ in 0..4 {
        assert_eq!(one.try_get(&held).unwrap().expose_secret(), "token-1");
        assert!(two.try_get(&held).is_none());
    }
    assert_eq!(two.get(&held).await.unwrap().expose_secret(), "token-2");
    for _ in 0..4 {
        assert_eq!(one.try_get(&held).unwrap().expose_secret(), "token-1");
        assert_eq!(two.try_get(&held).unwrap().expose_secret(), "token-2");
    }
    drop(two);
    let three = manager(&clock, &provider);
    assert!(three.try_get(&held).is_none());
}

#[tokio::test]
async fn a_token_cached_in_a_removed_slot_is_not_served() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::from_millis(1));
    let manager = manager(&clock, &provider);
    let held = key("a");
    manager.get(&held).await.unwrap();
    for _ in 0..4 {
        assert!(manager.try_get(&held).is_some());
    }
    let slot = manager.inner.slot(&held);
    manager.remove(&held).await.unwrap();
    // As a refresh that outlived the removal would.
    let mut late = Token::new(SCRIPTED.clone(), SecretString::from("late"), clock.now());
    late.expires_at = Some(clock.now() + LIFETIME);
    manager.inner.cache(&slot, &late, 99);
    assert!(manager.try_get(&held).is_none());
    assert!(manager.read_authorization_header(&held, |_| ()).is_none());
}

/// `get`'s future can be spawned (it is `Send`) and holds only borrows
/// until it has to wait.
#[test]
fn the_get_future_is_send_and_small() {
    fn assert_send<T: Send>(_: &T) {}
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::ZERO);
    let manager = manager(&clock, &provider);
    let key = key("a");
    let future = manager.get(&key);
    assert_send(&future);
    let words = std::mem::size_of_val(&future) / std::mem::size_of::<usize>();
    assert!(words <= 6, "{words} words");
}

#[tokio::test]
async fn failed_acquisitions_of_untrusted_keys_are_swept_without_a_refresher() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::ZERO);
    // No background refresher: the manager itself must bound the slots.
    let manager = manager(&clock, &provider);
    const KEYS: usize = 5000;
    provider.fail_next.store(KEYS, Ordering::SeqCst);
    let mut peak = 0;
    for i in 0..KEYS {
        let error = manager
            .get(&key(&format!("untrusted-{i}")))
            .await
            .unwrap_err();
        assert!(error.is_retryable(), "{error:?}");
        peak = peak.max(manager.len());
        // Each key backs off for at most 200 ms; let 10 ms pass per key.
        clock.advance(Duration::from_millis(10));
    }
    assert_eq!(provider.calls.load(Ordering::SeqCst), KEYS);
    // Swept every 1,024 kept slots, of which only the ~20 still backing
    // off survive: never near one slot per key.
    assert!(peak <= 1024 + 64, "peak {peak} slots for {KEYS} keys");
    assert!(manager.len() <= 1024 + 64, "{}", manager.len());
}

#[tokio::test]
async fn a_get_after_shutdown_leaves_no_slot() {
    let clock = ManualClock::at_unix(1_800_000_000);
    let provider = Scripted::new(&clock, Duration::ZERO);
    let manager = manager(&clock, &provider);
    let report = manager.shutdown(Duration::from_secs(1)).await;
    assert!(report.unpersisted.is_empty());
    for i in 0..100 {
        assert_shutting_down(&manager.get(&key(&format!("k{i}"))).await.unwrap_err());
    }
    assert_eq!(manager.len(), 0);
    assert_eq!(provider.calls.load(Ordering::SeqCst), 0);
}

/// Asserts that `error` is the manager refusing to refresh because it is
/// shutting down.
pub(super) fn assert_shutting_down(error: &Error) {
    assert!(
        matches!(
            error,
            Error::RefreshDeferred {
                reason: DeferredReason::ShuttingDown,
                ..
            }
        ),
        "{error:?}"
    );
}
