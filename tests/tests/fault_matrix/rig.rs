//! The matrix's fixtures: one provider (a real adapter against its testkit
//! mock, rotating refresh tokens revoked as a family on reuse), its clock,
//! the recorded events, the invariants every row checks, and the driver
//! that runs one row for every provider at once.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use oauth2_adapters::hike::Hike;
use oauth2_adapters::hypersku::HyperSku;
use oauth2_adapters::manager::{
    AccessToken, RefreshTiming, TokenEvent, TokenManager, TokenManagerBuilder,
};
use oauth2_adapters::partner::Partner;
use oauth2_adapters::testkit::{HikeMock, HyperSkuMock, MockConfig, MockServer, PartnerMock};
use oauth2_adapters::{
    ClientCredentialsProvider, Error, HttpConfig, ManualClock, Provider, ProviderId,
    ProviderSettings, RefreshTokenProvider, Renewal, RetryPolicy, SecretString, Token, TokenKey,
    TokenStore,
};
use oauth2_adapters_tests::code_flow::sign_in;
use oauth2_adapters_tests::{credentials, Fixture, REDIRECT_URI, START_UNIX};

/// The providers of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// Authorization code, form-encoded, rotating refresh tokens.
    Hike,
    /// Authorization code, camelCase JSON, rotating refresh tokens.
    HyperSku,
    /// Client credentials: re-acquired, no refresh token.
    Partner,
}

pub use ProviderKind::{Hike as HIKE, HyperSku as HYPERSKU, Partner as PARTNER};

/// Every provider.
pub const ALL: [ProviderKind; 3] = [HIKE, HYPERSKU, PARTNER];

/// One cell of the matrix: a fault under one provider. Every assertion
/// message starts with it.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub fault: &'static str,
    pub provider: ProviderKind,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} × {:?}]", self.fault, self.provider)
    }
}

impl Row {
    /// An account name no other row or run uses (rows share PostgreSQL).
    pub fn account_prefix(&self) -> String {
        oauth2_adapters_tests::external::unique_prefix(&format!(
            "fm-{}-{:?}",
            self.fault, self.provider
        ))
    }
}

/// How long a `get` may take when the token it needs is cached and valid
/// (microseconds in practice; a wait for the store or the provider would
/// exceed it).
pub const SERVED_BOUND: Duration = Duration::from_secs(2);
/// How long a `get` may take when it waits for a refresh: the provider's
/// request (2 s timeout, no retries), the store's slowest failure (a 2 s
/// pool acquire, SQLite's 5 s busy timeout) and a lease wait, with room to
/// spare. A hang exceeds it.
pub const REFRESH_BOUND: Duration = Duration::from_secs(20);
/// A whole row (all providers), so a hang fails the row by name.
pub const ROW_BOUND: Duration = Duration::from_secs(75);

/// The adapters' total request timeout.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(2);
/// The access tokens' lifetime (every mock's default).
pub const LIFETIME: Duration = Duration::from_secs(3600);
/// Refresh this long before expiry (no jitter: the schedule is exact).
pub const SKEW: Duration = Duration::from_secs(60);
/// The lease the managers use (it must cover the 2 s request).
pub const LEASE_TTL: Duration = Duration::from_secs(3);

/// Runs `case` for each provider concurrently, each on its own task, and
/// fails with every failing cell named.
pub async fn run_row<F, Fut>(fault: &'static str, providers: &[ProviderKind], case: F)
where
    F: Fn(Row) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if std::env::var("FM_TRACE").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_test_writer()
            .try_init();
    }
    let started = Instant::now();
    // FM_ONLY=Hike (etc.) narrows a run to one provider, for debugging.
    let only = std::env::var("FM_ONLY").ok();
    let tasks: Vec<_> = providers
        .iter()
        .filter(|p| {
            only.as_deref()
                .is_none_or(|o| format!("{p:?}").eq_ignore_ascii_case(o))
        })
        .map(|&provider| {
            let row = Row { fault, provider };
            (
                row,
                tokio::spawn(tokio::time::timeout(ROW_BOUND, case(row))),
            )
        })
        .collect();
    let mut failures = Vec::new();
    for (row, task) in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => failures.push(format!("{row} did not finish within {ROW_BOUND:?}")),
            Err(join) => failures.push(format!("{row} failed: {}", panic_message(join))),
        }
    }
    eprintln!("{fault}: {:?}", started.elapsed());
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

fn panic_message(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".into()),
        Err(join) => join.to_string(),
    }
}

/// What a rig is started with.
#[derive(Clone, Copy, Debug)]
pub struct RigOptions {
    /// The adapter's total request timeout.
    pub http_timeout: Duration,
    /// Prepended to every token the mock issues ([`MockConfig::token_prefix`]).
    pub token_prefix: &'static str,
}

impl Default for RigOptions {
    fn default() -> Self {
        Self {
            http_timeout: HTTP_TIMEOUT,
            token_prefix: "",
        }
    }
}

#[allow(clippy::large_enum_variant)] // one per cell, never moved around
enum Adapter {
    Hike(Fixture<Hike, HikeMock>),
    HyperSku(Fixture<HyperSku, HyperSkuMock>),
    Partner(Fixture<Partner, PartnerMock>),
}

/// One provider of one row: the adapter, its mock, their clock, and the
/// events of every manager built from it.
pub struct Rig {
    pub row: Row,
    pub clock: ManualClock,
    pub events: Events,
    adapter: Adapter,
}

fn mock_config(clock: &ManualClock, options: &RigOptions) -> MockConfig {
    MockConfig::default()
        .with_redirect_uri(REDIRECT_URI)
        .with_clock(Arc::new(clock.clone()))
        .with_revoke_on_reuse(true)
        .with_token_prefix(options.token_prefix)
}

/// The adapters' context: the rig's clock, `timeout`, no retries.
pub fn context(clock: &ManualClock, timeout: Duration) -> ProviderSettings {
    ProviderSettings::with_http_config(&HttpConfig::default().with_timeout(timeout))
        .expect("the HTTP client builds")
        .with_clock(Arc::new(clock.clone()))
        .with_retry_policy(RetryPolicy::never())
}

impl Rig {
    pub async fn start(row: Row) -> Rig {
        Self::start_with(row, RigOptions::default()).await
    }

    pub async fn start_with(row: Row, options: RigOptions) -> Rig {
        let clock = ManualClock::at_unix(START_UNIX);
        let config = mock_config(&clock, &options);
        let context = context(&clock, options.http_timeout);
        let adapter = match row.provider {
            HIKE => {
                let mock = HikeMock::start(config).await.expect("the mock starts");
                let provider = Hike::builder(credentials(&mock))
                    .base_url(mock.base_url().as_str())
                    .settings(context)
                    .build()
                    .expect("the adapter builds");
                Adapter::Hike(Fixture {
                    provider,
                    mock,
                    clock: clock.clone(),
                })
            }
            HYPERSKU => {
                let mock = HyperSkuMock::start(config).await.expect("the mock starts");
                let provider = HyperSku::builder(credentials(&mock))
                    .base_url(mock.base_url().as_str())
                    .settings(context)
                    .build()
                    .expect("the adapter builds");
                Adapter::HyperSku(Fixture {
                    provider,
                    mock,
                    clock: clock.clone(),
                })
            }
            PARTNER => {
                let mock = PartnerMock::start(config).await.expect("the mock starts");
                let provider = Partner::builder(credentials(&mock))
                    .base_url(mock.base_url().as_str())
                    .settings(context)
                    .build()
                    .expect("the adapter builds");
                Adapter::Partner(Fixture {
                    provider,
                    mock,
                    clock: clock.clone(),
                })
            }
        };
        Rig {
            row,
            clock,
            events: Events::default(),
            adapter,
        }
    }

    pub fn mock(&self) -> &dyn MockServer {
        match &self.adapter {
            Adapter::Hike(fx) => &fx.mock,
            Adapter::HyperSku(fx) => &fx.mock,
            Adapter::Partner(fx) => &fx.mock,
        }
    }

    pub fn provider_id(&self) -> ProviderId {
        match &self.adapter {
            Adapter::Hike(fx) => fx.provider.id().clone(),
            Adapter::HyperSku(fx) => fx.provider.id().clone(),
            Adapter::Partner(fx) => fx.provider.id().clone(),
        }
    }

    /// True for the providers that rotate refresh tokens.
    pub fn rotates(&self) -> bool {
        self.row.provider != PARTNER
    }

    /// The provider, as the manager registers it.
    pub fn provider(&self) -> Arc<dyn Provider> {
        match &self.adapter {
            Adapter::Hike(fx) => Arc::new(fx.provider.clone()),
            Adapter::HyperSku(fx) => Arc::new(fx.provider.clone()),
            Adapter::Partner(fx) => Arc::new(fx.provider.clone()),
        }
    }

    /// The provider, wrapped so that it declares `declared` as its request
    /// timeout while the adapter really waits up to its own (row 4).
    pub fn provider_declaring(&self, declared: Duration) -> Arc<dyn Provider> {
        let context = context(&self.clock, declared);
        match &self.adapter {
            Adapter::Hike(fx) => Arc::new(Declared {
                inner: fx.provider.clone(),
                context,
            }),
            Adapter::HyperSku(fx) => Arc::new(Declared {
                inner: fx.provider.clone(),
                context,
            }),
            Adapter::Partner(fx) => Arc::new(Declared {
                inner: fx.provider.clone(),
                context,
            }),
        }
    }

    /// A manager builder on `store`: this rig's clock, renewer and event
    /// log, an exact refresh schedule, the matrix's lease, a short backoff.
    pub fn builder(&self, store: Arc<dyn TokenStore>) -> TokenManagerBuilder {
        self.builder_with(store, self.provider())
    }

    pub fn builder_with(
        &self,
        store: Arc<dyn TokenStore>,
        provider: Arc<dyn Provider>,
    ) -> TokenManagerBuilder {
        TokenManager::builder()
            .store(store)
            .clock(Arc::new(self.clock.clone()))
            .provider(provider)
            .refresh_timing(RefreshTiming {
                skew: SKEW,
                max_skew_fraction: 0.5,
                jitter: Duration::ZERO,
            })
            .lease(LEASE_TTL, Duration::from_millis(20))
            .failure_backoff(Duration::from_secs(1), Duration::from_secs(5))
            .on_event(self.events.hook())
    }

    pub fn manager(&self, store: Arc<dyn TokenStore>) -> TokenManager {
        self.builder(store)
            .build()
            .expect("the manager's configuration is valid")
    }

    pub fn key(&self, account: &str) -> TokenKey {
        TokenKey::new(&self.provider_id(), account)
    }

    /// Gives `manager` a token for a new account: the code flow at the mock
    /// for Hike and HyperSKU, the first acquisition for the partner.
    pub async fn seed(&self, manager: &TokenManager, account: &str) -> TokenKey {
        let key = self.key(account);
        let token = match &self.adapter {
            Adapter::Hike(fx) => Some(sign_in(fx).await),
            Adapter::HyperSku(fx) => Some(sign_in(fx).await),
            Adapter::Partner(_) => None,
        };
        match token {
            Some(token) => {
                let token = token.unwrap_or_else(|e| panic!("{} sign-in failed: {e}", self.row));
                manager
                    .insert(key.clone(), token)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("{} storing the signed-in token failed: {e}", self.row)
                    });
            }
            None => {
                self.get(manager, &key, REFRESH_BOUND)
                    .await
                    .unwrap_or_else(|e| panic!("{} the first acquisition failed: {e}", self.row));
            }
        }
        key
    }

    pub async fn seed_many(&self, manager: &TokenManager, prefix: &str, n: usize) -> Vec<TokenKey> {
        let mut keys = Vec::new();
        for i in 0..n {
            keys.push(self.seed(manager, &format!("{prefix}{i}")).await);
        }
        keys
    }

    /// Every token expired (by a second).
    pub fn expire(&self) {
        self.clock.advance(LIFETIME + Duration::from_secs(1));
    }

    /// Every token signed in or refreshed at the current instant is due
    /// (past its refresh instant) and still valid for 50 s.
    pub fn make_due(&self) {
        self.clock.advance(LIFETIME - Duration::from_secs(50));
    }

    /// `manager.get(key)`, which must answer within `bound` and must not be
    /// a re-authorization (no key in the matrix has lost its grant).
    pub async fn get(
        &self,
        manager: &TokenManager,
        key: &TokenKey,
        bound: Duration,
    ) -> Result<AccessToken, Error> {
        let started = Instant::now();
        let result = tokio::time::timeout(bound, manager.get(key))
            .await
            .unwrap_or_else(|_| panic!("{} get({key}) did not answer within {bound:?}", self.row));
        if let Err(error) = &result {
            assert!(
                !error.requires_reauthorization(),
                "{} get({key}) after {:?}: a false re-authorization: {error:?}",
                self.row,
                started.elapsed()
            );
        }
        result
    }

    /// [`Rig::get`] that must succeed.
    pub async fn get_ok(
        &self,
        manager: &TokenManager,
        key: &TokenKey,
        bound: Duration,
    ) -> AccessToken {
        self.get(manager, key, bound)
            .await
            .unwrap_or_else(|e| panic!("{} get({key}) failed: {e:?}", self.row))
    }

    /// How many token requests (refreshes, acquisitions, exchanges) the mock received.
    pub fn token_requests(&self) -> usize {
        self.mock().token_requests().len()
    }

    /// How many access tokens the mock issued (a refresh or an acquisition
    /// the mock processed, whether or not its answer arrived).
    pub fn issued(&self) -> usize {
        self.mock().issued_access_tokens()
    }

    /// Waits until the mock has issued more than `before` access tokens:
    /// the provider has committed the refresh.
    pub async fn committed_after(&self, before: usize) {
        eventually(
            self.row,
            "the provider committed the refresh",
            Duration::from_secs(5),
            || self.issued() > before,
        )
        .await;
    }

    /// The invariants every row ends with, for `keys` on `store`:
    /// * no refresh token lost: the stored refresh token is the live one at
    ///   the mock, and the manager serves an access token the mock's API
    ///   accepts (for the partner, the latter only);
    /// * none sent twice: the mock counted no reuse of a spent refresh token;
    /// * no false re-authorization: no such event.
    pub async fn assert_invariants(
        &self,
        manager: &TokenManager,
        store: &dyn TokenStore,
        keys: &[TokenKey],
    ) {
        let row = self.row;
        let mut broken = Vec::new();
        let reuses = self.mock().refresh_token_reuses();
        if reuses != 0 {
            broken.push(format!(
                "a spent refresh token was sent again {reuses} time(s) (the family is revoked)"
            ));
        }
        let reauth = self
            .events
            .count(|e| matches!(e, TokenEvent::ReauthorizationRequired { .. }));
        if reauth != 0 {
            broken.push(format!(
                "ReauthorizationRequired was reported {reauth} time(s)"
            ));
        }
        for key in keys {
            let stored = match store.load(key).await {
                Ok(Some(stored)) => stored,
                Ok(None) => {
                    broken.push(format!("{key}: nothing is stored (an account was lost)"));
                    continue;
                }
                Err(e) => {
                    broken.push(format!("{key}: loading failed: {e}"));
                    continue;
                }
            };
            if self.rotates() {
                let live = stored
                    .record
                    .refresh_token
                    .as_deref()
                    .is_some_and(|refresh| self.mock().is_refresh_token_valid(refresh));
                if !live {
                    broken.push(format!(
                        "{key}: the stored refresh token (version {}) is not the live one: \
                         a rotated refresh token was lost",
                        stored.version
                    ));
                }
            }
            // (The partner's stored token may have expired: nothing is
            // lost with it, the next get acquires one; what is served counts.)
            if broken.is_empty() {
                let served = self.get_ok(manager, key, REFRESH_BOUND).await;
                if !self.mock().is_access_token_valid(served.expose_secret()) {
                    broken.push(format!(
                        "{key}: the served access token is refused by the API"
                    ));
                }
            }
        }
        assert!(
            broken.is_empty(),
            "{row} invariants broken:\n  {}\nevents: {:?}",
            broken.join("\n  "),
            self.events.names()
        );
    }

    pub fn assert_no_reuse_and_no_reauthorization(&self) {
        let row = self.row;
        assert_eq!(
            self.mock().refresh_token_reuses(),
            0,
            "{row} a spent refresh token was sent again (the family is revoked)"
        );
        let reauth = self
            .events
            .count(|e| matches!(e, TokenEvent::ReauthorizationRequired { .. }));
        assert_eq!(
            reauth,
            0,
            "{row} ReauthorizationRequired was reported: {:?}",
            self.events.names()
        );
    }
}

/// Polls `check` every 10 ms for up to `within`.
pub async fn eventually(row: Row, what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{row} timed out after {within:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every event of the managers built by a rig (hooks run synchronously).
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<TokenEvent>>>);

impl Events {
    pub fn hook(&self) -> impl Fn(&TokenEvent) + Send + Sync + 'static {
        let events = self.0.clone();
        move |event| events.lock().unwrap().push(event.clone())
    }

    pub fn count(&self, f: impl Fn(&TokenEvent) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| f(e)).count()
    }

    pub fn write_failures(&self) -> usize {
        self.count(|e| matches!(e, TokenEvent::StoreWriteFailed { .. }))
    }

    pub fn write_recoveries(&self) -> usize {
        self.count(|e| matches!(e, TokenEvent::StoreWriteRecovered { .. }))
    }

    pub fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                format!("{e:?}")
                    .split([' ', '{'])
                    .next()
                    .unwrap_or("?")
                    .to_owned()
            })
            .collect()
    }
}

/// A provider that declares another request timeout (its `context`) than
/// the adapter inside really uses: a provider slower than the lease the
/// builder validated, as when a deployment's real timeouts are longer than
/// the ones configured in the adapter's context.
struct Declared<P> {
    inner: P,
    context: ProviderSettings,
}

/// Which grant a wrapped adapter renews with.
trait DeclaredRenewal: Sized {
    fn renewal_of(declared: Arc<Declared<Self>>) -> Renewal;
}

impl DeclaredRenewal for Hike {
    fn renewal_of(declared: Arc<Declared<Self>>) -> Renewal {
        Renewal::RefreshToken(declared)
    }
}

impl DeclaredRenewal for HyperSku {
    fn renewal_of(declared: Arc<Declared<Self>>) -> Renewal {
        Renewal::RefreshToken(declared)
    }
}

impl DeclaredRenewal for Partner {
    fn renewal_of(declared: Arc<Declared<Self>>) -> Renewal {
        Renewal::Reacquire(declared)
    }
}

impl<P: Provider + DeclaredRenewal> Provider for Declared<P> {
    fn id(&self) -> &ProviderId {
        self.inner.id()
    }
    fn renewal(self: Arc<Self>) -> Renewal {
        P::renewal_of(self)
    }
    fn settings(&self) -> &ProviderSettings {
        &self.context
    }
}

#[async_trait]
impl<P: RefreshTokenProvider + DeclaredRenewal> RefreshTokenProvider for Declared<P> {
    async fn request_refresh(
        &self,
        refresh_token: &SecretString,
    ) -> oauth2_adapters::Result<Token> {
        self.inner.request_refresh(refresh_token).await
    }
}

#[async_trait]
impl<P: ClientCredentialsProvider + DeclaredRenewal> ClientCredentialsProvider for Declared<P> {
    async fn request_client_credentials(
        &self,
        scopes: &[String],
    ) -> oauth2_adapters::Result<Token> {
        self.inner.request_client_credentials(scopes).await
    }
}
