//! Against peers: this library side by side with what an application would
//! otherwise use, in one run (results in `docs/benchmarks.md`).
//!
//! ```text
//! cargo bench -p oauth2-adapters-tests --bench peers
//! BENCH_QUICK=1 cargo bench -p oauth2-adapters-tests --bench peers   # smoke run
//! ```
//!
//! 1. **Cached read.** `TokenManager::try_get`, `get` (the cached path: its
//!    future is polled once), `read_authorization_header`, against a
//!    `std::sync::Mutex<Option<Arc<Token>>>` read, a Mutex, an expiry check
//!    and a clone of the token (what golang.org/x/oauth2's
//!    `ReuseTokenSource` does, plus the copy), and yup-oauth2's
//!    `Authenticator::token` on a cached token. Batches of reads, the
//!    variants interleaved round by round; median ns per read, ratios to the
//!    Mutex read, allocations per read (counted on the reading thread).
//! 2. **1,000 callers at once on an expired token.** This library's
//!    `TokenManager::get` (a `StandardProvider` renewing with client
//!    credentials) and yup-oauth2's service-account flow, both against the
//!    same counting mock token endpoint on 127.0.0.1 that answers after a
//!    fixed delay: requests the mock received, and the time until every
//!    caller has its token.
//! 3. **Token requests vs raw.** A Hike code exchange and a partner client
//!    credentials request through the adapters (the facade's
//!    `oauth2_adapters::hike` / `partner`) against the testkit's
//!    `HikeMock` / `PartnerMock`, against a raw `reqwest` POST of the same
//!    request to the same mock and a `serde_json` parse of its answer into a
//!    struct, and the `oauth2` crate's code exchange (on the same `reqwest`
//!    version). One request of each variant after another, so load changes
//!    hit all alike; per-request latency percentiles, the ratio of medians
//!    to raw, and allocations per request on the client thread (the mocks
//!    run on their own runtime thread, and their allocations are not
//!    counted).
//!
//! `PEERS=1,3` runs only those sections; `PEERS=4` only the canned-answer
//! reads of section 3 (for a profiler).
//!
//! No timed assertion: the bench prints, `docs/benchmarks.md` records.
//! All traffic stays on 127.0.0.1 and every loop is bounded.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use oauth2::TokenResponse as _;
use oauth2_adapters::hike::Hike;
use oauth2_adapters::partner::Partner;
use oauth2_adapters::testkit::{HikeMock, MockConfig, MockServer, PartnerMock};
use oauth2_adapters::{
    AuthorizationCodeProvider, AuthorizeRequest, CallbackParams, ClientAuth, ClientCredentials,
    ClientCredentialsProvider, ExposeSecret, ManualClock, PendingAuthorization, Provider,
    ProviderId, ProviderSettings, RenewalKind, RetryPolicy, SecretString, StandardProvider, Token,
    TokenKey, TokenManager,
};
use serde::Deserialize;
use url::Url;

// ---------------------------------------------------------------------------
// Counting allocator: every allocation, and those of the current thread.

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    // `try_with`: nothing to count once the thread's locals are gone.
    let _ = THREAD_ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid pointer to a timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "the thread CPU clock is readable");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Allocations made so far by the calling thread.
fn thread_allocations() -> u64 {
    THREAD_ALLOCATIONS.with(Cell::get)
}

fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

// ---------------------------------------------------------------------------
// Small helpers.

/// Polls a future that must be ready on its first poll (a cached path).
fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("the cached path must not wait"),
    }
}

/// The `q` quantile of sorted values (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile(&sorted, 0.5)
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

const CLIENT_ID: &str = "bench-client";
const CLIENT_SECRET: &str = "bench-client-secret-0123456789";
const SCOPES: [&str; 1] = ["https://www.googleapis.com/auth/cloud-platform"];

// ---------------------------------------------------------------------------
// A counting token endpoint (for yup-oauth2, which speaks Google's
// service-account grant, and for this library's StandardProvider): answers
// every POST /token with a fresh bearer token after `delay_ms`.

#[derive(Clone, Default)]
struct CountingState {
    requests: Arc<AtomicUsize>,
    expires_in: Arc<AtomicU64>,
    delay_ms: Arc<AtomicU64>,
}

struct CountingMock {
    token_url: String,
    state: CountingState,
}

impl CountingMock {
    async fn start() -> Self {
        let state = CountingState::default();
        state.expires_in.store(3600, Ordering::SeqCst);
        let app = Router::new()
            .route("/token", post(counting_token))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port on 127.0.0.1");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the mock serves");
        });
        Self {
            token_url: format!("http://{addr}/token"),
            state,
        }
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

async fn counting_token(State(state): State<CountingState>) -> Json<serde_json::Value> {
    let n = state.requests.fetch_add(1, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    Json(serde_json::json!({
        "access_token": format!("peer-{n:0>35}"),
        "token_type": "Bearer",
        "expires_in": state.expires_in.load(Ordering::SeqCst),
    }))
}

type YupAuth =
    yup_oauth2::authenticator::Authenticator<hyper_util::client::legacy::connect::HttpConnector>;

/// yup-oauth2's service-account authenticator on a plain-HTTP hyper client
/// (its default client is HTTPS-or-HTTP with the native roots; the mock is
/// plain HTTP on 127.0.0.1), with a fresh RSA key, pointed at `token_uri`.
async fn yup_authenticator(token_uri: &str) -> YupAuth {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("an RSA key");
    let json = serde_json::json!({
        "type": "service_account",
        "private_key": key.serialize_pem(),
        "client_email": "bench@example.invalid",
        "token_uri": token_uri,
    });
    let key = yup_oauth2::parse_service_account_key(json.to_string()).expect("the key parses");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, String>(hyper_util::client::legacy::connect::HttpConnector::new());
    yup_oauth2::ServiceAccountAuthenticator::with_client(
        key,
        yup_oauth2::CustomHyperClientBuilder::from(client),
    )
    .build()
    .await
    .expect("the authenticator builds")
}

/// This library's generic RFC 6749 provider renewing by client
/// credentials against `token_url`, on `clock`.
fn standard_provider(token_url: &str, clock: &ManualClock) -> Arc<StandardProvider> {
    let settings = ProviderSettings::new()
        .expect("settings")
        .with_clock(Arc::new(clock.clone()))
        .with_retry_policy(RetryPolicy::never());
    Arc::new(
        StandardProvider::builder("peer")
            .token_url(token_url)
            .client_auth(ClientAuth::RequestBody)
            .renewal_kind(RenewalKind::Reacquire)
            .settings(settings)
            .build(ClientCredentials::new(CLIENT_ID, CLIENT_SECRET))
            .expect("the provider builds"),
    )
}

// ---------------------------------------------------------------------------
// 1. Cached read.

static PEER: ProviderId = ProviderId::from_static("peer");

fn sample_token() -> Token {
    let now = SystemTime::now();
    let mut token = Token::new(PEER.clone(), SecretString::from(format!("{:0>40}", 7)), now);
    token.refresh_token = Some(SecretString::from(format!("r{:0>39}", 7)));
    token.expires_at = Some(now + Duration::from_secs(3600));
    token.scopes = vec!["all".to_owned()];
    token
}

struct Readers {
    manager: TokenManager,
    key: TokenKey,
    arc_mutex: Mutex<Option<Arc<Token>>>,
    token_mutex: Mutex<Option<Token>>,
    yup: YupAuth,
}

const READ_VARIANTS: [&str; 6] = [
    "TokenManager::try_get",
    "TokenManager::get (cached, polled once)",
    "TokenManager::read_authorization_header",
    "Mutex<Option<Arc<Token>>> read (baseline)",
    "Mutex + expiry check + Token clone (Go ReuseTokenSource)",
    "yup-oauth2 Authenticator::token (cached)",
];
const MUTEX_BASELINE: usize = 3;

impl Readers {
    /// Runs `n` reads of `variant`: (ns per read, allocations per read).
    fn batch(&self, variant: usize, n: usize) -> (f64, f64) {
        match variant {
            0 => time_reads(n, || {
                self.manager
                    .try_get(black_box(&self.key))
                    .map_or(0, |t| t.expose_secret().len())
            }),
            1 => time_reads(n, || {
                poll_once(self.manager.get(black_box(&self.key)))
                    .map_or(0, |t| t.expose_secret().len())
            }),
            2 => time_reads(n, || {
                self.manager
                    .read_authorization_header(black_box(&self.key), |h| h.len())
                    .unwrap_or(0)
            }),
            3 => time_reads(n, || {
                let token = black_box(&self.arc_mutex).lock().unwrap().clone();
                token.map_or(0, |t| t.access_token.expose_secret().len())
            }),
            4 => time_reads(n, || {
                // Go's Token.Valid(): an access token, and an expiry more
                // than expiryDelta (10 s) ahead of now; then a copy.
                let guard = black_box(&self.token_mutex).lock().unwrap();
                let token = guard
                    .as_ref()
                    .filter(|t| {
                        !t.access_token.expose_secret().is_empty()
                            && t.expires_at.is_some_and(|at| {
                                at.checked_sub(Duration::from_secs(10))
                                    .is_some_and(|at| at > SystemTime::now())
                            })
                    })
                    .cloned();
                drop(guard);
                token.map_or(0, |t| t.access_token.expose_secret().len())
            }),
            5 => time_reads(n, || {
                poll_once(self.yup.token(black_box(&SCOPES)))
                    .ok()
                    .and_then(|t| t.token().map(str::len))
                    .unwrap_or(0)
            }),
            _ => unreachable!(),
        }
    }
}

fn time_reads(n: usize, mut read: impl FnMut() -> usize) -> (f64, f64) {
    let allocations = thread_allocations();
    let started = Instant::now();
    for _ in 0..n {
        black_box(read());
    }
    let elapsed = started.elapsed();
    let allocations = thread_allocations() - allocations;
    (
        elapsed.as_nanos() as f64 / n as f64,
        allocations as f64 / n as f64,
    )
}

fn cached_reads(mock_rt: &tokio::runtime::Runtime) {
    let client_rt = runtime(1);
    let mock = mock_rt.block_on(CountingMock::start());
    let manager = TokenManager::builder().build().expect("the manager builds");
    let key = TokenKey::new(&PEER, "main");
    client_rt
        .block_on(manager.insert(key.clone(), sample_token()))
        .expect("insert");
    let yup = client_rt.block_on(async {
        let yup = yup_authenticator(&mock.token_url).await;
        yup.token(&SCOPES).await.expect("yup's first token");
        yup
    });
    let readers = Readers {
        manager,
        key,
        arc_mutex: Mutex::new(Some(Arc::new(sample_token()))),
        token_mutex: Mutex::new(Some(sample_token())),
        yup,
    };
    let (rounds, reads) = if quick() { (5, 20_000) } else { (21, 200_000) };
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); READ_VARIANTS.len()];
    let mut allocations = vec![0.0; READ_VARIANTS.len()];
    for variant in 0..READ_VARIANTS.len() {
        readers.batch(variant, reads / 10); // warm-up
    }
    for round in 0..rounds {
        for i in 0..READ_VARIANTS.len() {
            let variant = (i + round) % READ_VARIANTS.len();
            let (per_read, allocs) = readers.batch(variant, reads);
            ns[variant].push(per_read);
            allocations[variant] = allocs;
        }
    }
    let before = mock.requests();
    assert_eq!(before, 1, "yup-oauth2 read from its cache");
    println!(
        "\n== 1. cached read: {rounds} rounds of {reads} reads per variant, interleaved; median of the rounds"
    );
    let baseline = median(&ns[MUTEX_BASELINE]);
    println!(
        "{:<58} {:>9} {:>9} {:>10} {:>12}",
        "read", "median", "min", "vs Mutex", "allocs/read"
    );
    for (variant, name) in READ_VARIANTS.iter().enumerate() {
        let m = median(&ns[variant]);
        let min = ns[variant].iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{name:<58} {m:>6.1} ns {min:>6.1} ns {:>9.2}x {:>12.2}",
            m / baseline,
            allocations[variant]
        );
    }
    drop(readers);
}

// ---------------------------------------------------------------------------
// 2. 1,000 callers at once on an expired token.

const CALLERS: usize = 1000;

/// Starts `CALLERS` tasks at once; returns the time until the last is
/// answered.
async fn all_at_once<F, Fut>(call: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..CALLERS).map(|_| tokio::spawn(call())).collect();
    for task in tasks {
        task.await.expect("no panic");
    }
    started.elapsed()
}

fn stampede(mock_rt: &tokio::runtime::Runtime) {
    let client_rt = runtime(2);
    let mock = mock_rt.block_on(CountingMock::start());
    let rounds = if quick() { 2 } else { 5 };
    println!(
        "\n== 2. {CALLERS} callers at once on an expired token; the mock token endpoint answers after the delay; {rounds} rounds"
    );
    println!(
        "{:<36} {:>6} {:>20} {:>26}",
        "client", "delay", "requests (min..max)", "all answered (min..max)"
    );
    for delay_ms in [0u64, 20] {
        mock.state.delay_ms.store(delay_ms, Ordering::SeqCst);

        // This library: one manager, one key; its clock jumps past expiry.
        let clock = ManualClock::at_unix(unix_now());
        let provider = standard_provider(&mock.token_url, &clock);
        let manager = TokenManager::builder()
            .clock(Arc::new(clock.clone()))
            .provider(provider.clone())
            .build()
            .expect("the manager builds");
        let key = TokenKey::new(provider.id(), "main");
        client_rt
            .block_on(manager.get(&key))
            .expect("the first token");
        let mut ours = Vec::new();
        for _ in 0..rounds {
            clock.advance(Duration::from_secs(7200));
            let before = mock.requests();
            let elapsed = client_rt.block_on(all_at_once(|| {
                let (manager, key) = (manager.clone(), key.clone());
                async move {
                    manager.get(&key).await.expect("a token");
                }
            }));
            ours.push((mock.requests() - before, elapsed));
        }
        report_stampede("oauth2-adapters TokenManager::get", delay_ms, &ours);

        // yup-oauth2: a token that yup counts as expired (it renews one
        // minute ahead: 1 s of lifetime is expired at once), then callers.
        let yup = client_rt.block_on(yup_authenticator(&mock.token_url));
        let mut theirs = Vec::new();
        for _ in 0..rounds {
            mock.state.expires_in.store(1, Ordering::SeqCst);
            client_rt
                .block_on(yup.force_refreshed_token(&SCOPES))
                .expect("a short token");
            mock.state.expires_in.store(3600, Ordering::SeqCst);
            let before = mock.requests();
            let elapsed = client_rt.block_on(all_at_once(|| {
                let yup = yup.clone();
                async move {
                    yup.token(&SCOPES).await.expect("a token");
                }
            }));
            theirs.push((mock.requests() - before, elapsed));
        }
        report_stampede("yup-oauth2 Authenticator::token", delay_ms, &theirs);
    }
}

fn report_stampede(client: &str, delay_ms: u64, runs: &[(usize, Duration)]) {
    let ms: Vec<f64> = runs.iter().map(|(_, d)| d.as_secs_f64() * 1e3).collect();
    let requests: Vec<f64> = runs.iter().map(|(n, _)| *n as f64).collect();
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "{client:<36} {delay_ms:>3} ms {:>8} ({:>4}..{:<4}) {:>9.2} ms ({:.2}..{:.2})",
        median(&requests),
        min(&requests),
        max(&requests),
        median(&ms),
        min(&ms),
        max(&ms),
    );
}

// ---------------------------------------------------------------------------
// 3. Token requests vs raw.

/// Hike's answer, as a hand-written client would read it.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // read, then dropped: the parse is what is measured
struct RawHikeToken {
    access_token: String,
    token_type: String,
    expires_in: u64,
    #[serde(default)]
    expires: Option<u64>,
    refresh_token: String,
}

/// The partner's answer, likewise.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct RawPartnerToken {
    access_token: String,
    token_type: String,
    expires_in: f64,
}

/// The grant a code-exchange variant spends: ours needs the pending
/// authorization its `authorize` made; the others only the code.
/// The PKCE verifier of the hand-written exchanges (43 characters, as
/// the adapter's).
const RAW_PKCE_VERIFIER: &str = "bench-raw-pkce-verifier-0123456789abcdefghi";

enum Minted {
    Ours(CallbackParams, PendingAuthorization),
    Code(String),
}

struct Requests {
    hike: Hike,
    partner: Partner,
    hike_mock: HikeMock,
    partner_mock: PartnerMock,
    /// The raw baseline's client (its own pool, like each library's).
    raw: reqwest::Client,
    /// The `oauth2` crate's client: its `reqwest` integration, rewritten
    /// for the workspace's single `reqwest` version.
    oauth2: oauth2::basic::BasicClient<
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >,
    oauth2_http: reqwest::Client,
    /// Approves authorize URLs at the mock (not timed).
    approver: reqwest::Client,
}

const REQUEST_VARIANTS: [&str; 7] = [
    "Hike code exchange: oauth2-adapters (handle_callback)",
    "Hike code exchange: raw reqwest + serde_json",
    "Hike code exchange: oauth2 crate 5 (exchange_code)",
    "Hike code exchange: raw, on the adapter's reqwest::Client",
    "partner client credentials: oauth2-adapters",
    "partner client credentials: raw reqwest + serde_json",
    "partner client credentials: raw, on the adapter's Client",
];
/// Which raw variant each variant is compared with.
const RAW_OF: [usize; 7] = [1, 1, 1, 1, 5, 5, 5];

impl Requests {
    /// Approves an authorize URL as the consent page's "Allow" would and
    /// returns the callback URL (the testkit's `approve`, on one client).
    async fn approve(&self, authorize: &Url) -> Url {
        let mut url = authorize.clone();
        url.query_pairs_mut().append_pair("decision", "allow");
        let response = self
            .approver
            .get(url)
            .send()
            .await
            .expect("the mock answers");
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .expect("a redirect to the callback")
            .to_str()
            .expect("ASCII");
        Url::parse(location).expect("a callback URL")
    }

    /// One real answer of each mock (Hike's code exchange, the partner's
    /// client credentials), for [`parse_only`].
    async fn canned_bodies(&self) -> (Vec<u8>, Vec<u8>) {
        let Some(Minted::Code(code)) = self.mint(1).await else {
            unreachable!("a code")
        };
        let config = self.hike_mock.config();
        let hike = self
            .raw
            .post(self.hike_mock.token_url())
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &config.redirect_uri),
                ("client_id", &config.client_id),
                ("client_secret", &config.client_secret),
                ("code_verifier", RAW_PKCE_VERIFIER),
            ])
            .send()
            .await
            .expect("the mock answers");
        let hike = hike.bytes().await.expect("a body").to_vec();
        let config = self.partner_mock.config();
        let partner = self
            .raw
            .post(self.partner_mock.token_url())
            .json(&serde_json::json!({
                "grant_type": "client_credentials",
                "client_id": config.client_id,
                "client_secret": config.client_secret,
            }))
            .send()
            .await
            .expect("the mock answers");
        let partner = partner.bytes().await.expect("a body").to_vec();
        (hike, partner)
    }

    /// A grant for one request of `variant` (none for client credentials).
    async fn mint(&self, variant: usize) -> Option<Minted> {
        match variant {
            0 => {
                let (url, pending) = self
                    .hike
                    .authorize(
                        AuthorizeRequest::new(&self.hike_mock.config().redirect_uri)
                            .expect("a redirect URI"),
                    )
                    .expect("an authorize URL");
                let callback = self.approve(&url).await;
                let params = CallbackParams::from_url(&callback).expect("callback parameters");
                Some(Minted::Ours(params, pending))
            }
            1..=3 => {
                // The same request as the adapter's: with a PKCE (S256)
                // challenge, so the exchange sends the verifier and the
                // mock checks it.
                let mut url = self.hike_mock.build_authorize_url(Some("raw-state"));
                let challenge = oauth2::PkceCodeChallenge::from_code_verifier_sha256(
                    &oauth2::PkceCodeVerifier::new(RAW_PKCE_VERIFIER.to_owned()),
                );
                url.query_pairs_mut()
                    .append_pair("code_challenge", challenge.as_str())
                    .append_pair("code_challenge_method", challenge.method().as_str());
                let callback = self.approve(&url).await;
                let code = callback
                    .query_pairs()
                    .find(|(name, _)| name == "code")
                    .expect("a code")
                    .1
                    .into_owned();
                Some(Minted::Code(code))
            }
            _ => None,
        }
    }

    /// Sends one request of `variant`; returns the access token's length.
    async fn request(&self, variant: usize, grant: Option<Minted>) -> usize {
        let config = self.hike_mock.config();
        match (variant, grant) {
            (0, Some(Minted::Ours(params, pending))) => {
                let token = self
                    .hike
                    .handle_callback(params, pending)
                    .await
                    .expect("the exchange succeeds");
                token.access_token.expose_secret().len()
            }
            (1 | 3, Some(Minted::Code(code))) => {
                let client = if variant == 1 {
                    &self.raw
                } else {
                    self.hike.settings().http.reqwest()
                };
                let response = client
                    .post(self.hike_mock.token_url())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", &config.redirect_uri),
                        ("client_id", &config.client_id),
                        ("client_secret", &config.client_secret),
                        ("code_verifier", RAW_PKCE_VERIFIER),
                    ])
                    .send()
                    .await
                    .expect("the mock answers");
                assert!(response.status().is_success(), "{}", response.status());
                let body = response.bytes().await.expect("a body");
                let token: RawHikeToken = serde_json::from_slice(&body).expect("a token");
                token.access_token.len()
            }
            (2, Some(Minted::Code(code))) => {
                let http = |request: oauth2::HttpRequest| self.oauth2_call(request);
                let token = self
                    .oauth2
                    .exchange_code(oauth2::AuthorizationCode::new(code))
                    .set_pkce_verifier(oauth2::PkceCodeVerifier::new(RAW_PKCE_VERIFIER.to_owned()))
                    .request_async(&http)
                    .await
                    .expect("the exchange succeeds");
                token.access_token().secret().len()
            }
            (4, None) => {
                let token = self.partner.client_credentials(&[]).await.expect("a token");
                token.access_token.expose_secret().len()
            }
            (5 | 6, None) => {
                let config = self.partner_mock.config();
                let client = if variant == 5 {
                    &self.raw
                } else {
                    self.partner.settings().http.reqwest()
                };
                let response = client
                    .post(self.partner_mock.token_url())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .json(&serde_json::json!({
                        "grant_type": "client_credentials",
                        "client_id": config.client_id,
                        "client_secret": config.client_secret,
                    }))
                    .send()
                    .await
                    .expect("the mock answers");
                assert!(response.status().is_success(), "{}", response.status());
                let body = response.bytes().await.expect("a body");
                let token: RawPartnerToken = serde_json::from_slice(&body).expect("a token");
                token.access_token.len()
            }
            _ => unreachable!("a grant for every code exchange"),
        }
    }

    /// The `oauth2` crate's `reqwest` glue (its `reqwest` feature pins an
    /// older `reqwest`; this is the same code on the workspace's).
    async fn oauth2_call(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, reqwest::Error> {
        let response = self
            .oauth2_http
            .execute(reqwest::Request::try_from(request)?)
            .await?;
        let mut builder = http::Response::builder()
            .status(response.status())
            .version(response.version());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let body = response.bytes().await?.to_vec();
        Ok(builder.body(body).expect("a response"))
    }
}

fn token_requests(mock_rt: &tokio::runtime::Runtime, requests_too: bool) {
    // The mocks on their own runtime thread; the clients on this thread.
    let (hike_mock, partner_mock) = mock_rt.block_on(async {
        let config = MockConfig::default();
        (
            HikeMock::start(config.clone()).await.expect("HikeMock"),
            PartnerMock::start(config).await.expect("PartnerMock"),
        )
    });
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let credentials = |mock: &dyn MockServer| {
        ClientCredentials::new(
            mock.config().client_id.clone(),
            mock.config().client_secret.clone(),
        )
    };
    let config = hike_mock.config().clone();
    let oauth2 = oauth2::basic::BasicClient::new(oauth2::ClientId::new(config.client_id.clone()))
        .set_client_secret(oauth2::ClientSecret::new(config.client_secret.clone()))
        .set_auth_type(oauth2::AuthType::RequestBody)
        .set_redirect_uri(oauth2::RedirectUrl::new(config.redirect_uri.clone()).expect("a URL"))
        .set_token_uri(oauth2::TokenUrl::from_url(hike_mock.token_url()));
    let no_redirects = || {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client")
    };
    let requests = Requests {
        hike: Hike::builder(credentials(&hike_mock))
            .base_url(hike_mock.base_url().as_str())
            .build()
            .expect("the Hike adapter"),
        partner: Partner::builder(credentials(&partner_mock))
            .base_url(partner_mock.base_url().as_str())
            .build()
            .expect("the partner adapter"),
        hike_mock,
        partner_mock,
        raw: no_redirects(),
        oauth2,
        oauth2_http: no_redirects(),
        approver: no_redirects(),
    };
    if !requests_too {
        parse_only(&client_rt.block_on(requests.canned_bodies()));
        return;
    }
    let (chunks, per_chunk) = if quick() { (2, 50) } else { (30, 100) };
    // `PEERS_CHUNKS=N`: more requests (e.g. for a profile).
    let chunks = std::env::var("PEERS_CHUNKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(chunks);
    let n = REQUEST_VARIANTS.len();
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut allocations: Vec<u64> = vec![0; n];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); n];
    // `PEERS_VARIANTS=0,3`: only those requests (e.g. to profile one).
    let only = std::env::var("PEERS_VARIANTS").unwrap_or_default();
    let selected = |variant: usize| {
        only.is_empty() || only.split(',').any(|v| v.trim() == variant.to_string())
    };
    client_rt.block_on(async {
        // Warm-up: connections open, pools and caches filled.
        for variant in (0..n).filter(|v| selected(*v)) {
            for _ in 0..20 {
                let grant = requests.mint(variant).await;
                black_box(requests.request(variant, grant).await);
            }
        }
        for chunk in 0..chunks {
            let mut grants: Vec<std::vec::IntoIter<Option<Minted>>> = Vec::with_capacity(n);
            for variant in 0..n {
                let mut minted = Vec::with_capacity(per_chunk);
                for _ in (0..per_chunk).filter(|_| selected(variant)) {
                    minted.push(requests.mint(variant).await);
                }
                grants.push(minted.into_iter());
            }
            for i in 0..per_chunk {
                for k in 0..n {
                    let variant = (k + i + chunk) % n;
                    if !selected(variant) {
                        continue;
                    }
                    let grant = grants[variant].next().expect("one grant per request");
                    let before = thread_allocations();
                    let cpu_before = thread_cpu();
                    let started = Instant::now();
                    black_box(requests.request(variant, grant).await);
                    let elapsed = started.elapsed();
                    cpu[variant].push((thread_cpu() - cpu_before).as_secs_f64() * 1e6);
                    allocations[variant] += thread_allocations() - before;
                    latencies[variant].push(elapsed.as_secs_f64() * 1e6);
                }
            }
            requests.hike_mock.clear_requests();
            requests.partner_mock.clear_requests();
        }
    });
    let canned = client_rt.block_on(requests.canned_bodies());
    report_requests(chunks * per_chunk, &latencies, &cpu, &allocations);
    parse_only(&canned);
    drop(requests);
}

fn report_requests(count: usize, latencies: &[Vec<f64>], cpu: &[Vec<f64>], allocations: &[u64]) {
    println!(
        "\n== 3. token requests vs raw: {} requests per variant, one of each in turn, against the testkit mocks",
        count
    );
    println!(
        "{:<56} {:>9} {:>9} {:>9} {:>9} {:>8} {:>12} {:>8}",
        "request", "p50", "p90", "p99", "mean", "vs raw", "client CPU", "allocs"
    );
    let medians: Vec<f64> = latencies
        .iter()
        .map(|l| if l.is_empty() { f64::NAN } else { median(l) })
        .collect();
    for (variant, name) in REQUEST_VARIANTS.iter().enumerate() {
        if latencies[variant].is_empty() || latencies[RAW_OF[variant]].is_empty() {
            continue;
        }
        let mut sorted = latencies[variant].clone();
        sorted.sort_by(f64::total_cmp);
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        println!(
            "{name:<56} {:>6.1} us {:>6.1} us {:>6.1} us {:>6.1} us {:>7.3}x {:>6.1} us {:>8.1}",
            quantile(&sorted, 0.5),
            quantile(&sorted, 0.9),
            quantile(&sorted, 0.99),
            mean,
            medians[variant] / medians[RAW_OF[variant]],
            median(&cpu[variant]),
            allocations[variant] as f64 / sorted.len() as f64,
        );
    }
}

/// What part of a request is this library's own work: reading one canned
/// answer (the mock's real bytes) through the adapter's code path
/// (`fuzzing::read_token_response`: the same reader, error mapping and
/// normalization as a request), against `serde_json::from_slice` into a
/// struct.
fn parse_only(canned: &(Vec<u8>, Vec<u8>)) {
    use oauth2_adapters::hike::fuzzing::{self as hike_fuzzing, FuzzGrant};
    use oauth2_adapters::partner::fuzzing as partner_fuzzing;
    let (hike_body, partner_body) = canned;
    let json = Some("application/json");
    let variants: [(&str, &dyn Fn() -> usize); 4] = [
        ("Hike answer: the adapter's reader", &|| {
            hike_fuzzing::read_token_response(FuzzGrant::AuthorizationCode, 200, json, hike_body)
                .map_or(0, |t| t.access_token.expose_secret().len())
        }),
        ("Hike answer: serde_json::from_slice into a struct", &|| {
            serde_json::from_slice::<RawHikeToken>(hike_body).map_or(0, |t| t.access_token.len())
        }),
        ("partner answer: the adapter's reader", &|| {
            partner_fuzzing::read_token_response(200, json, partner_body)
                .map_or(0, |t| t.access_token.expose_secret().len())
        }),
        (
            "partner answer: serde_json::from_slice into a struct",
            &|| {
                serde_json::from_slice::<RawPartnerToken>(partner_body)
                    .map_or(0, |t| t.access_token.len())
            },
        ),
    ];
    assert!(
        variants.iter().all(|(_, read)| read() > 0),
        "every reader reads"
    );
    let (rounds, reads) = if quick() { (5, 2_000) } else { (15, 20_000) };
    let rounds = std::env::var("PEERS_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(rounds);
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut allocations = vec![0.0; variants.len()];
    for round in 0..rounds {
        for i in 0..variants.len() {
            let variant = (i + round) % variants.len();
            let (per_read, allocs) = time_reads(reads, variants[variant].1);
            ns[variant].push(per_read);
            allocations[variant] = allocs;
        }
    }
    println!(
        "\n== 3b. reading one canned answer ({} and {} bytes): {rounds} rounds of {reads}, median",
        hike_body.len(),
        partner_body.len()
    );
    for (variant, (name, _)) in variants.iter().enumerate() {
        let raw = median(&ns[variant | 1]);
        let m = median(&ns[variant]);
        println!(
            "{name:<56} {:>8.2} us {:>7.2}x {:>8.1} allocs",
            m / 1e3,
            m / raw,
            allocations[variant]
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    // `PEERS=3` (or `1,2`) runs only those sections, e.g. under a profiler.
    let only = std::env::var("PEERS").unwrap_or_default();
    let run = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    let mock_rt = runtime(1);
    let started = Instant::now();
    if run("1") {
        cached_reads(&mock_rt);
    }
    if run("2") {
        stampede(&mock_rt);
    }
    if run("3") {
        token_requests(&mock_rt, true);
    } else if run("4") {
        // Only the canned-answer reads (`PEERS=4`, e.g. under a profiler).
        token_requests(&mock_rt, false);
    }
    println!(
        "\n(total {:.1} s; {} allocations in all)",
        started.elapsed().as_secs_f64(),
        ALLOCATIONS.load(Ordering::Relaxed)
    );
}
