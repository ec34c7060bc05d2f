//! The manager under faults, against an in-process rotating provider and a
//! store that fails on demand: no issued token dropped, none spent twice,
//! nothing wedged, failures paced, configuration checked, clean shutdown.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::clock::ManualClock;
use crate::error::DeferredReason;
use crate::provider::{Provider, ProviderSettings, RefreshTokenProvider, Renewal};
use crate::store::{LeaseOutcome, LeaseRequest, MemoryStore, StoredToken};
use crate::token::TokenRecord;
use crate::{HttpConfig, RetryPolicy};

const LIFETIME: Duration = Duration::from_secs(3600);
static ROTATING: ProviderId = ProviderId::from_static("rotating");

/// Rotates refresh tokens strictly (each usable once), counts reuse of a
/// spent one, and can be slowed, failed or made to panic.
#[derive(Debug)]
struct Rotating {
    context: ProviderSettings,
    delay: Mutex<Duration>,
    calls: AtomicUsize,
    live: Mutex<HashSet<String>>,
    spent: Mutex<HashSet<String>>,
    reuses: AtomicUsize,
    fail: AtomicBool,
    panic_next: AtomicBool,
}

impl Rotating {
    fn new(clock: &ManualClock) -> Arc<Self> {
        Arc::new(Self {
            context: ProviderSettings::with_http_config(
                &HttpConfig::default().with_timeout(Duration::from_secs(1)),
            )
            .unwrap()
            .with_clock(Arc::new(clock.clone()))
            .with_retry_policy(RetryPolicy::never()),
            delay: Mutex::new(Duration::ZERO),
            calls: AtomicUsize::new(0),
            live: Mutex::new(HashSet::new()),
            spent: Mutex::new(HashSet::new()),
            reuses: AtomicUsize::new(0),
            fail: AtomicBool::new(false),
            panic_next: AtomicBool::new(false),
        })
    }

    /// A signed-in token whose refresh token is live.
    fn sign_in(&self) -> Token {
        self.issue(0)
    }

    fn issue(&self, n: usize) -> Token {
        let now = self.context.clock.now();
        let mut token = Token::new(ROTATING.clone(), SecretString::from(format!("at-{n}")), now);
        let refresh = format!("rt-{n}-{}", fastrand::u64(..));
        self.live.lock().unwrap().insert(refresh.clone());
        token.refresh_token = Some(SecretString::from(refresh));
        token.expires_at = Some(now + LIFETIME);
        token
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn reuses(&self) -> usize {
        self.reuses.load(Ordering::SeqCst)
    }
}

impl Provider for Rotating {
    fn id(&self) -> &ProviderId {
        &ROTATING
    }
    fn renewal(self: std::sync::Arc<Self>) -> Renewal {
        Renewal::RefreshToken(self)
    }
    fn settings(&self) -> &ProviderSettings {
        &self.context
    }
}

#[async_trait]
impl RefreshTokenProvider for Rotating {
    async fn request_refresh(&self, refresh_token: &SecretString) -> Result<Token> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        if self.panic_next.swap(false, Ordering::SeqCst) {
            panic!("the provider adapter has a bug");
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::HttpStatus {
                provider: ROTATING.clone(),
                status: 503,
                retry_after: None,
                excerpt: String::new(),
            });
        }
        let presented = refresh_token.expose_secret().to_owned();
        if !self.live.lock().unwrap().remove(&presented) {
            if self.spent.lock().unwrap().contains(&presented) {
                self.reuses.fetch_add(1, Ordering::SeqCst);
            }
            return Err(Error::Provider {
                provider: ROTATING.clone(),
                code: crate::ErrorCode::InvalidGrant,
                provider_code: None,
                description: None,
                status: Some(400),
                retry_after: None,
            });
        }
        self.spent.lock().unwrap().insert(presented);
        Ok(self.issue(n))
    }
}

/// A `MemoryStore` whose writes (or every call) fail while switched on.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: MemoryStore,
    fail_writes: AtomicBool,
    fail_all: AtomicBool,
    unreadable: Mutex<HashSet<TokenKey>>,
}

impl FlakyStore {
    fn check(&self, write: bool) -> Result<()> {
        if self.fail_all.load(Ordering::SeqCst)
            || (write && self.fail_writes.load(Ordering::SeqCst))
        {
            return Err(Error::Store {
                message: "database is locked".into(),
                source: None,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl TokenStore for FlakyStore {
    async fn load(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        self.check(false)?;
        if self.unreadable.lock().unwrap().contains(key) {
            return Err(Error::Store {
                message: format!("no decryption key for {key}"),
                source: None,
            });
        }
        self.inner.load(key).await
    }
    async fn compare_and_swap(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
    ) -> Result<CasOutcome> {
        self.check(true)?;
        self.inner.compare_and_swap(key, expected, record).await
    }
    async fn delete(&self, key: &TokenKey) -> Result<()> {
        self.check(true)?;
        self.inner.delete(key).await
    }
    async fn keys(&self) -> Result<Vec<TokenKey>> {
        self.check(false)?;
        self.inner.keys().await
    }
    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        request: &LeaseRequest<'_>,
    ) -> Result<LeaseOutcome> {
        self.check(false)?;
        self.inner.try_acquire_lease(key, request).await
    }
    async fn release_lease(&self, key: &TokenKey, holder: &str) -> Result<()> {
        self.check(false)?;
        self.inner.release_lease(key, holder).await
    }
}

struct Setup {
    clock: ManualClock,
    provider: Arc<Rotating>,
    store: Arc<FlakyStore>,
    events: Arc<Mutex<Vec<String>>>,
}

impl Setup {
    fn new() -> Self {
        let clock = ManualClock::at_unix(1_800_000_000);
        Self {
            provider: Rotating::new(&clock),
            clock,
            store: Arc::new(FlakyStore::default()),
            events: Arc::default(),
        }
    }

    fn builder(&self) -> TokenManagerBuilder {
        let events = self.events.clone();
        TokenManager::builder()
            .store(self.store.clone())
            .clock(Arc::new(self.clock.clone()))
            .provider(self.provider.clone())
            .failure_backoff(Duration::from_secs(2), Duration::from_secs(60))
            .lease(Duration::from_secs(2), Duration::from_millis(10))
            .on_event(move |e| events.lock().unwrap().push(format!("{e:?}")))
    }

    fn manager(&self) -> TokenManager {
        self.builder().build().unwrap()
    }

    fn saw(&self, prefix: &str) -> usize {
        let events = self.events.lock().unwrap();
        events.iter().filter(|e| e.starts_with(prefix)).count()
    }

    async fn stored_access(&self, key: &TokenKey) -> String {
        self.store
            .inner
            .load(key)
            .await
            .unwrap()
            .unwrap()
            .record
            .access_token
    }

    /// Makes every token due (but still valid for a minute).
    fn make_due(&self) {
        self.clock.advance(LIFETIME - Duration::from_secs(60));
    }
}

fn key(account: &str) -> TokenKey {
    TokenKey::new(&ROTATING, account)
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn a_token_the_store_would_not_take_is_served_kept_and_written_later() {
    let s = Setup::new();
    let manager = s.manager();
    manager
        .insert(key("a"), s.provider.sign_in())
        .await
        .unwrap();
    s.clock.advance(LIFETIME + Duration::from_secs(1)); // expired: get waits
    s.store.fail_writes.store(true, Ordering::SeqCst);
    let fresh = manager.get(&key("a")).await.unwrap();
    assert_eq!(fresh.expose_secret(), "at-1", "the new token is served");
    assert_eq!(manager.pending_writes(), 1);
    assert_eq!(s.saw("StoreWriteFailed"), 1);
    assert_eq!(s.stored_access(&key("a")).await, "at-0");
    // Many more calls: served from memory, never refreshed with the spent token.
    for _ in 0..50 {
        assert_eq!(
            manager.get(&key("a")).await.unwrap().expose_secret(),
            "at-1"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.provider.calls(), 1);
    s.store.fail_writes.store(false, Ordering::SeqCst);
    eventually("the pending write lands", || manager.pending_writes() == 0).await;
    assert_eq!(s.stored_access(&key("a")).await, "at-1");
    assert_eq!(s.saw("StoreWriteRecovered"), 1);
    // The next refresh uses the rotated refresh token.
    s.clock.advance(LIFETIME + Duration::from_secs(1));
    assert_eq!(
        manager.get(&key("a")).await.unwrap().expose_secret(),
        "at-2"
    );
    assert_eq!(s.provider.reuses(), 0);
    assert_eq!(s.saw("ReauthorizationRequired"), 0);
}

/// `current_token` gives the whole token: nothing before a sign-in, the
/// stored one after, the one the store has not taken yet while its write is
/// pending (without reading the store), the stored one again once it lands.
#[tokio::test]
async fn current_token_is_the_pending_one_while_its_write_fails() {
    let s = Setup::new();
    let manager = s.manager();
    assert!(manager.current_token(&key("a")).await.unwrap().is_none());
    let mut signed_in = s.provider.sign_in();
    signed_in.scopes = vec!["orders.read".into()];
    signed_in.subject = Some("user-7".into());
    manager.insert(key("a"), signed_in).await.unwrap();
    let stored = manager.current_token(&key("a")).await.unwrap().unwrap();
    assert_eq!(stored.expose_access_token(), "at-0");
    assert_eq!(stored.scopes, ["orders.read"]);
    assert_eq!(stored.subject.as_deref(), Some("user-7"));

    s.clock.advance(LIFETIME + Duration::from_secs(1));
    s.store.fail_writes.store(true, Ordering::SeqCst);
    assert_eq!(
        manager.get(&key("a")).await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(manager.pending_writes(), 1);
    s.store.fail_all.store(true, Ordering::SeqCst); // not even a read
    let pending = manager.current_token(&key("a")).await.unwrap().unwrap();
    assert_eq!(pending.expose_access_token(), "at-1", "not the stored at-0");
    assert_ne!(
        pending.expose_refresh_token(),
        stored.expose_refresh_token(),
        "the rotated refresh token"
    );
    assert!(matches!(
        manager.current_token(&key("b")).await,
        Err(Error::Store { .. })
    ));

    s.store.fail_all.store(false, Ordering::SeqCst);
    s.store.fail_writes.store(false, Ordering::SeqCst);
    eventually("the pending write lands", || manager.pending_writes() == 0).await;
    let landed = manager.current_token(&key("a")).await.unwrap().unwrap();
    assert_eq!(landed.expose_access_token(), "at-1");
    assert_eq!(
        landed.expose_refresh_token(),
        pending.expose_refresh_token()
    );
}

/// A caller that waits for `pending_writes() == 0` has seen the
/// recoveries: each is reported while it is still counted (the fault
/// matrix once saw a zero count with one of two recoveries reported).
#[tokio::test]
async fn a_landed_write_is_reported_before_it_leaves_the_pending_count() {
    let s = Setup::new();
    let seen: Arc<std::sync::OnceLock<TokenManager>> = Arc::default();
    let counts: Arc<Mutex<Vec<usize>>> = Arc::default();
    let manager = s
        .builder()
        .on_event({
            let (seen, counts) = (seen.clone(), counts.clone());
            move |event| {
                if let TokenEvent::StoreWriteRecovered { .. } = event {
                    let count = seen.get().map_or(usize::MAX, |m| m.pending_writes());
                    counts.lock().unwrap().push(count);
                }
            }
        })
        .build()
        .unwrap();
    let _ = seen.set(manager.clone());
    for account in ["a", "b"] {
        manager
            .insert(key(account), s.provider.sign_in())
            .await
            .unwrap();
    }
    s.clock.advance(LIFETIME + Duration::from_secs(1));
    s.store.fail_writes.store(true, Ordering::SeqCst);
    for account in ["a", "b"] {
        manager.get(&key(account)).await.unwrap();
    }
    assert_eq!(manager.pending_writes(), 2);
    s.store.fail_writes.store(false, Ordering::SeqCst);
    eventually("the pending writes land", || manager.pending_writes() == 0).await;
    let mut counts = counts.lock().unwrap().clone();
    counts.sort_unstable();
    assert_eq!(
        counts,
        [1, 2],
        "each recovery is reported while it is counted"
    );
}

#[tokio::test]
async fn a_pending_token_that_falls_due_is_refreshed_from_memory_not_from_the_store() {
    let s = Setup::new();
    let manager = s.manager();
    manager
        .insert(key("a"), s.provider.sign_in())
        .await
        .unwrap();
    s.store.fail_writes.store(true, Ordering::SeqCst);
    for expected in ["at-1", "at-2", "at-3"] {
        s.clock.advance(LIFETIME + Duration::from_secs(1));
        assert_eq!(
            manager.get(&key("a")).await.unwrap().expose_secret(),
            expected
        );
        assert_eq!(manager.pending_writes(), 1);
    }
    assert_eq!(
        s.provider.reuses(),
        0,
        "the spent stored token was never sent"
    );
    s.store.fail_writes.store(false, Ordering::SeqCst);
    eventually("the pending write lands", || manager.pending_writes() == 0).await;
    assert_eq!(s.stored_access(&key("a")).await, "at-3");
}

#[tokio::test]
async fn a_panicking_hook_or_refresh_wedges_nothing() {
    let s = Setup::new();
    let panics = Arc::new(AtomicUsize::new(0));
    let manager = {
        let panics = panics.clone();
        s.builder()
            .on_event(move |_| {
                if panics.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("a hook with a bug");
                }
            })
            .build()
            .unwrap()
    };
    manager
        .insert(key("a"), s.provider.sign_in())
        .await
        .unwrap();
    s.clock.advance(LIFETIME + Duration::from_secs(1));
    assert_eq!(
        manager.get(&key("a")).await.unwrap().expose_secret(),
        "at-1"
    );
    assert!(panics.load(Ordering::SeqCst) >= 1);
    // A panic in the provider's code: an error, and the key stays usable.
    s.clock.advance(LIFETIME + Duration::from_secs(1));
    s.provider.panic_next.store(true, Ordering::SeqCst);
    let error = manager.get(&key("a")).await.unwrap_err();
    assert!(matches!(error, Error::Internal { .. }), "{error:?}");
    s.clock.advance(Duration::from_secs(120)); // past the backoff
    assert_eq!(
        manager.get(&key("a")).await.unwrap().expose_secret(),
        "at-3"
    );
}

#[tokio::test]
async fn configuration_that_could_overflow_or_lapse_is_refused() {
    let s = Setup::new();
    let refused = |builder: TokenManagerBuilder| {
        let error = builder.build().unwrap_err();
        assert!(matches!(error, Error::Configuration { .. }), "{error:?}");
        error.to_string()
    };
    refused(s.builder().lease(Duration::MAX, Duration::from_millis(50)));
    refused(s.builder().lease(Duration::from_secs(30), Duration::ZERO));
    refused(
        s.builder()
            .failure_backoff(Duration::ZERO, Duration::from_secs(1)),
    );
    refused(
        s.builder()
            .failure_backoff(Duration::from_secs(9), Duration::from_secs(1)),
    );
    refused(s.builder().in_doubt_grace(Duration::MAX));
    refused(s.builder().refresh_timing(RefreshTiming {
        max_skew_fraction: f64::NAN,
        ..Default::default()
    }));
    refused(s.builder().provider(s.provider.clone()));
    // The provider's requests last up to 1 s: a shorter lease could lapse mid-request.
    let text = refused(
        s.builder()
            .lease(Duration::from_millis(900), Duration::from_millis(10)),
    );
    assert!(text.contains("shorter than the longest request"), "{text}");
}

#[tokio::test]
async fn a_failing_key_answers_at_once_while_it_backs_off() {
    let s = Setup::new();
    let manager = s.manager();
    manager
        .insert(key("a"), s.provider.sign_in())
        .await
        .unwrap();
    s.clock.advance(LIFETIME + Duration::from_secs(1));
    s.provider.fail.store(true, Ordering::SeqCst);
    let first = manager.get(&key("a")).await.unwrap_err();
    assert_eq!(first.http_status(), Some(503));
    for _ in 0..50 {
        let error = manager.get(&key("a")).await.unwrap_err();
        assert!(error.is_retryable());
        assert!(
            matches!(&error, Error::RefreshDeferred { reason: DeferredReason::Backoff { last }, retry_after: Some(_) } if last.http_status() == Some(503)),
            "{error:?}"
        );
    }
    assert_eq!(s.provider.calls(), 1, "one request, not one per call");
    s.provider.fail.store(false, Ordering::SeqCst);
    s.clock.advance(Duration::from_secs(3));
    assert_eq!(
        manager.get(&key("a")).await.unwrap().expose_secret(),
        "at-2"
    );
}

#[tokio::test]
async fn keys_without_a_token_leave_nothing_behind() {
    let s = Setup::new();
    let manager = s.manager();
    for i in 0..2000 {
        let error = manager
            .get(&key(&format!("unknown-{i}")))
            .await
            .unwrap_err();
        assert!(error.requires_reauthorization());
    }
    assert_eq!(manager.len(), 0);
}

#[tokio::test]
async fn warm_skips_and_reports_what_it_cannot_read() {
    let s = Setup::new();
    let seed = s.manager();
    for account in ["a", "b", "c"] {
        seed.insert(key(account), s.provider.sign_in())
            .await
            .unwrap();
    }
    s.store.unreadable.lock().unwrap().insert(key("b"));
    let manager = s.manager();
    let report = manager.warm().await.unwrap();
    assert_eq!(report.loaded, 2);
    assert_eq!(report.unreadable.len(), 1);
    assert_eq!(report.unreadable[0].key, key("b"));
    assert!(manager.try_get(&key("a")).is_some() && manager.try_get(&key("c")).is_some());
    assert_eq!(s.saw("StoredTokenUnreadable"), 1);
}

#[tokio::test]
async fn two_managers_on_one_memory_store_refresh_once() {
    let s = Setup::new();
    *s.provider.delay.lock().unwrap() = Duration::from_millis(100);
    let (one, two) = (s.manager(), s.manager());
    one.insert(key("a"), s.provider.sign_in()).await.unwrap();
    two.warm().await.unwrap();
    s.clock.advance(LIFETIME + Duration::from_secs(1));
    let k = key("a");
    let (a, b) = tokio::join!(one.get(&k), two.get(&k));
    assert_eq!(a.unwrap().expose_secret(), "at-1");
    assert_eq!(b.unwrap().expose_secret(), "at-1");
    assert_eq!(s.provider.calls(), 1);
    assert_eq!(s.provider.reuses(), 0);
}

#[tokio::test]
async fn a_slow_provider_keeps_its_lease_and_the_other_instance_waits_for_its_token() {
    let s = Setup::new();
    // Slower than the 2 s lease, within the provider's 1 s "timeout" as the
    // builder sees it: only the heartbeat keeps the lease.
    *s.provider.delay.lock().unwrap() = Duration::from_millis(2800);
    let (one, two) = (s.manager(), s.manager());
    one.insert(key("a"), s.provider.sign_in()).await.unwrap();
    s.clock.advance(LIFETIME + Duration::from_secs(1));
    let first = tokio::spawn({
        let one = one.clone();
        async move { one.get(&key("a")).await }
    });
    tokio::time::sleep(Duration::from_millis(2300)).await; // past the lease ttl
    let second = two.get(&key("a")).await.unwrap();
    assert_eq!(second.expose_secret(), "at-1");
    assert_eq!(first.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(s.provider.calls(), 1);
    assert_eq!(s.provider.reuses(), 0);
}

#[tokio::test]
async fn a_lapsed_lease_keeps_the_refresh_token_in_doubt_until_its_write_lands() {
    let s = Setup::new();
    let manager = s.manager();
    manager
        .insert(key("a"), s.provider.sign_in())
        .await
        .unwrap();
    // Another instance took the lease, sent the refresh token, and went silent.
    let stalled = LeaseRequest {
        holder: "stalled-instance",
        ttl: Duration::from_millis(20),
        in_doubt_grace: Duration::from_secs(600),
    };
    assert!(s
        .store
        .try_acquire_lease(&key("a"), &stalled)
        .await
        .unwrap()
        .is_acquired());
    tokio::time::sleep(Duration::from_millis(40)).await;
    s.clock.advance(LIFETIME + Duration::from_secs(1));
    let error = manager.get(&key("a")).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::RefreshDeferred {
                reason: DeferredReason::InDoubt,
                retry_after: Some(_)
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        s.provider.calls(),
        0,
        "the refresh token in doubt was not sent"
    );
    // Its write lands: the next call gets its token.
    let theirs = s.provider.issue(7);
    s.store
        .compare_and_swap(&key("a"), Some(1), &theirs.to_record())
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(3));
    assert_eq!(
        manager.get(&key("a")).await.unwrap().expose_secret(),
        "at-7"
    );
    assert_eq!(s.provider.calls(), 0);
}

#[tokio::test]
async fn shutdown_lets_a_refresh_finish_and_reports_what_it_could_not_store() {
    let s = Setup::new();
    *s.provider.delay.lock().unwrap() = Duration::from_millis(300);
    let manager = s.manager();
    manager
        .insert(key("a"), s.provider.sign_in())
        .await
        .unwrap();
    manager
        .insert(key("b"), s.provider.sign_in())
        .await
        .unwrap();
    s.make_due();
    manager.try_get(&key("a")).unwrap(); // starts a background refresh
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = manager.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(s.stored_access(&key("a")).await, "at-1");
    // After shutdown: fresh tokens are served, nothing is refreshed.
    s.clock.advance(Duration::from_secs(120));
    super::tests::assert_shutting_down(&manager.get(&key("b")).await.unwrap_err());

    let s = Setup::new();
    let manager = s.manager();
    manager
        .insert(key("a"), s.provider.sign_in())
        .await
        .unwrap();
    s.clock.advance(LIFETIME + Duration::from_secs(1));
    s.store.fail_writes.store(true, Ordering::SeqCst);
    manager.get(&key("a")).await.unwrap();
    let report = manager.shutdown(Duration::from_millis(300)).await;
    assert_eq!(report.unpersisted.len(), 1);
    assert_eq!(
        report.unpersisted[0].token.access_token.expose_secret(),
        "at-1"
    );
    assert!(!format!("{report:?}").contains("at-1"));
    assert_eq!(manager.pending_writes(), 0);
}

#[tokio::test]
async fn shutdown_abandons_and_reports_a_refresh_past_its_deadline() {
    let s = Setup::new();
    *s.provider.delay.lock().unwrap() = Duration::from_secs(3);
    let manager = s.manager();
    manager
        .insert(key("a"), s.provider.sign_in())
        .await
        .unwrap();
    s.make_due();
    manager.try_get(&key("a")).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = manager.shutdown(Duration::from_millis(200)).await;
    assert_eq!(report.abandoned_refreshes, vec![key("a")]);
    assert!(report.took < Duration::from_secs(2));
}

#[test]
fn providers_with_different_clocks_are_a_configuration_error() {
    let s = Setup::new();
    let standard = |settings: ProviderSettings| {
        Arc::new(
            crate::StandardProvider::builder("other")
                .authorize_url("http://127.0.0.1:9/authorize")
                .token_url("http://127.0.0.1:9/token")
                .settings(settings)
                .build(crate::ClientCredentials::new("id", "secret"))
                .unwrap(),
        )
    };
    let system = || ProviderSettings::new().unwrap();
    let on_test_clock = || system().with_clock(Arc::new(s.clock.clone()));
    let without_manager_clock = || {
        TokenManager::builder()
            .store(s.store.clone())
            .provider(s.provider.clone())
    };
    // The test clock on one provider, the system clock on the other.
    let error = without_manager_clock()
        .provider(standard(system()))
        .build()
        .unwrap_err();
    assert!(matches!(error, Error::Configuration { .. }), "{error:?}");
    assert!(error.to_string().contains("different clocks"), "{error}");
    // One clock for both, or the manager's set explicitly: accepted.
    without_manager_clock()
        .provider(standard(on_test_clock()))
        .build()
        .unwrap();
    without_manager_clock()
        .provider(standard(system()))
        .clock(Arc::new(s.clock.clone()))
        .build()
        .unwrap();
}
