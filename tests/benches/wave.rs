//! The scale bench: a wave of expiring tokens across several instances
//! sharing PostgreSQL, the store round trips of one refresh, and `warm()`
//! at a million tokens.
//!
//! ```text
//! cargo bench -p oauth2-adapters-tests --bench wave
//! BENCH_QUICK=1 cargo bench -p oauth2-adapters-tests --bench wave   # a smaller run
//! ```
//!
//! Needs PostgreSQL at `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); everything runs in a schema
//! of its own (`wave_<random>`), dropped at the end. It measures, in order:
//!
//! 1. **Round trips per refresh.** One refresh through a counting
//!    [`TokenStore`] decorator, on PostgreSQL and on a SQLite file: which
//!    store calls (each one statement) it makes.
//! 2. **`warm()` at scale.** 1,000,000 stored tokens (quick: 100,000),
//!    generated server-side, warmed by a fresh process: time, store calls,
//!    and peak memory (`VmHWM` from `/proc/self/status`, before and after).
//! 3. **One instance's sustained rate.** 20,000 tokens (quick: 5,000) all
//!    due at once, one worker process, against the mock with its 50 ms
//!    response delay, then without it: refreshes per second.
//! 4. **The wave.** 100,000 tokens (quick: 10,000) whose refresh falls due
//!    within one minute, stored with one bulk insert per 10,000 rows; 4
//!    [`TokenManager`] instances, each in its own process (this binary,
//!    re-executed with `WAVE_ROLE=wave`), each with the background
//!    refresher and a cap on concurrent refreshes, and a reader thread
//!    calling `try_get` on random keys throughout; one Hike mock (the
//!    testkit's [`HikeMock`], every refresh answered 50 ms after its
//!    rotation: `MockConfig::refresh_delay_after_commit`) in this process,
//!    seeded with [`HikeMock::issue_grants`]. Each worker prints one line a
//!    second (refreshes done, peak requests in flight, read latency
//!    percentiles); this process checks that every token was refreshed
//!    before it expired, with exactly one request per refresh token, and
//!    that no instance had more requests in flight than its cap; prints a
//!    table and writes `wave.csv` and `wave.svg` (to `docs/`; quick runs
//!    write to `target/wave-quick/`).
//!
//! Settings (environment): `WAVE_CAP` (refreshes in flight per instance,
//! default 32), `WAVE_INSTANCES` (4), `WAVE_TOKENS` (the wave's size),
//! `WAVE_WARM_TOKENS`, `WAVE_READER` (`outside`, the default: the reader
//! thread is outside the worker's Tokio runtime, so only the background
//! refresher, under its cap, refreshes; `inside`: it is in the runtime, so a
//! `try_get` on a due key starts a refresh of its own, outside the cap, as
//! in an application; `off`), `WAVE_READS_PER_MS` (the reader's `try_get`
//! calls per millisecond, default 100), `WAVE_JITTER_S` (the managers'
//! refresh jitter, default 0: every instance sees a key due at the same
//! instant), `WAVE_LEAD_S` (seconds between
//! the rows' insertion and the wave's start, default derived from the
//! measured warm rate), `WAVE_OUT` (where the CSV and SVG go), `WAVE_SKIP`
//! (comma-separated: `trips`, `warm`, `solo`, `wave`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use oauth2_adapters::hike::Hike;
use oauth2_adapters::manager::{RefreshTiming, TokenEvent, TokenManager};
use oauth2_adapters::store::{
    CasOutcome, LeaseOutcome, LeaseRequest, StoredToken, TokenPage, TokenRecord,
};
use oauth2_adapters::store_sql::sqlx::{self, PgPool};
use oauth2_adapters::store_sql::{PostgresStore, SqliteStore};
use oauth2_adapters::testkit::{HikeMock, MockConfig, MockServer};
use oauth2_adapters::{
    ClientCredentials, HttpConfig, Provider, ProviderId, ProviderSettings, RefreshTokenProvider,
    Renewal, Result, SecretString, Token, TokenKey, TokenStore,
};
use oauth2_adapters_tests::external::database_url;

/// How long before expiry a token falls due (no jitter: every instance
/// sees the same due time, the worst case for lease contention).
const SKEW: Duration = Duration::from_secs(60);
/// The mock's delay on every refresh response.
const MOCK_DELAY: Duration = Duration::from_millis(50);
/// Rows per bulk insert.
const CHUNK: usize = 10_000;
/// Try_get calls per reader batch (then it sleeps 1 ms).
const READ_BATCH: usize = 100;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn account(i: usize) -> String {
    format!("acct-{i:07}")
}

fn uptime() -> String {
    Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("(uptime failed: {e})"))
}

/// `VmHWM` and `VmRSS` of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

// ---------------------------------------------------------------------------
// A counting store decorator and a counting provider.

/// The store calls a [`Counting`] store counts, in this order.
const CALLS: [&str; 9] = [
    "load",
    "compare_and_swap",
    "delete",
    "keys",
    "try_acquire_lease",
    "release_lease",
    "compare_and_swap_releasing",
    "load_page",
    "load_many",
];

/// Forwards every call to the store it wraps (the one-step write
/// included) and counts them: each is one statement on the SQL stores.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn TokenStore>,
    calls: [AtomicU64; CALLS.len()],
}

impl Counting {
    fn new(inner: Arc<dyn TokenStore>) -> Self {
        Self {
            inner,
            calls: Default::default(),
        }
    }

    fn count(&self, call: usize) {
        self.calls[call].fetch_add(1, Ordering::Relaxed);
    }

    fn take(&self) -> Vec<(&'static str, u64)> {
        CALLS
            .iter()
            .zip(&self.calls)
            .map(|(name, count)| (*name, count.swap(0, Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

fn describe(calls: &[(&str, u64)]) -> String {
    let total: u64 = calls.iter().map(|(_, n)| n).sum();
    let parts: Vec<String> = calls
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    format!("{total} ({})", parts.join(", "))
}

#[async_trait]
impl TokenStore for Counting {
    async fn load(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        self.count(0);
        self.inner.load(key).await
    }
    async fn compare_and_swap(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
    ) -> Result<CasOutcome> {
        self.count(1);
        self.inner.compare_and_swap(key, expected, record).await
    }
    async fn delete(&self, key: &TokenKey) -> Result<()> {
        self.count(2);
        self.inner.delete(key).await
    }
    async fn keys(&self) -> Result<Vec<TokenKey>> {
        self.count(3);
        self.inner.keys().await
    }
    async fn load_page(&self, after: Option<&str>, limit: usize) -> Result<Option<TokenPage>> {
        self.count(7);
        self.inner.load_page(after, limit).await
    }
    async fn load_many(
        &self,
        keys: &[TokenKey],
    ) -> Result<Option<Vec<(TokenKey, Result<StoredToken>)>>> {
        self.count(8);
        self.inner.load_many(keys).await
    }
    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        request: &LeaseRequest<'_>,
    ) -> Result<LeaseOutcome> {
        self.count(4);
        self.inner.try_acquire_lease(key, request).await
    }
    async fn release_lease(&self, key: &TokenKey, holder: &str) -> Result<()> {
        self.count(5);
        self.inner.release_lease(key, holder).await
    }
    async fn compare_and_swap_releasing(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
        holder: &str,
    ) -> Result<CasOutcome> {
        self.count(6);
        self.inner
            .compare_and_swap_releasing(key, expected, record, holder)
            .await
    }
}

/// What a [`Counted`] provider counts.
#[derive(Debug, Default)]
struct RequestStats {
    in_flight: AtomicUsize,
    /// The most in flight since the last tick.
    peak_tick: AtomicUsize,
    /// The most in flight ever.
    peak: AtomicUsize,
    sent: AtomicU64,
}

/// Hike, counting the refresh requests in flight.
struct Counted {
    hike: Hike,
    stats: Arc<RequestStats>,
}

impl Provider for Counted {
    fn id(&self) -> &ProviderId {
        self.hike.id()
    }
    fn settings(&self) -> &ProviderSettings {
        self.hike.settings()
    }
    fn renewal(self: Arc<Self>) -> Renewal {
        Renewal::RefreshToken(self)
    }
}

#[async_trait]
impl RefreshTokenProvider for Counted {
    async fn request_refresh(&self, refresh_token: &SecretString) -> Result<Token> {
        let stats = &self.stats;
        let now = stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        stats.peak_tick.fetch_max(now, Ordering::Relaxed);
        stats.peak.fetch_max(now, Ordering::Relaxed);
        stats.sent.fetch_add(1, Ordering::Relaxed);
        let result = self.hike.request_refresh(refresh_token).await;
        stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        result
    }
}

fn hike(mock_url: &str) -> Hike {
    let config = MockConfig::default();
    let settings = ProviderSettings::with_http_config(&HttpConfig::default().without_proxy())
        .expect("the HTTP client builds");
    Hike::builder(ClientCredentials::new(
        config.client_id,
        config.client_secret,
    ))
    .base_url(mock_url)
    .settings(settings)
    .build()
    .expect("Hike builds")
}

/// The manager's refresh timing: [`SKEW`] ahead of expiry, and
/// `WAVE_JITTER_S` seconds of jitter (default none).
fn timing() -> RefreshTiming {
    RefreshTiming {
        skew: SKEW,
        max_skew_fraction: 0.5,
        jitter: Duration::from_secs(env_usize("WAVE_JITTER_S", 0) as u64),
    }
}

/// Try_get calls per reader batch (then it sleeps 1 ms): `WAVE_READS_PER_MS`.
fn read_batch() -> usize {
    env_usize("WAVE_READS_PER_MS", READ_BATCH)
}

// ---------------------------------------------------------------------------
// PostgreSQL: the bench's own schema, bulk inserts.

/// The bench's schema; dropped when this is dropped (even on a panic).
struct Schema {
    base_url: String,
    name: String,
}

impl Schema {
    async fn create(base_url: &str) -> Self {
        let name = format!("wave_{:08x}", fastrand::u32(..));
        let pool = PgPool::connect(base_url)
            .await
            .expect("PostgreSQL is reachable (DATABASE_URL)");
        sqlx::raw_sql(&format!("CREATE SCHEMA {name}"))
            .execute(&pool)
            .await
            .expect("CREATE SCHEMA");
        pool.close().await;
        Self {
            base_url: base_url.to_owned(),
            name,
        }
    }

    /// The database URL with the connections' `search_path` set to the schema.
    fn url(&self) -> String {
        let separator = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.base_url, self.name
        )
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.base_url.clone(), self.name.clone());
        // Its own thread and runtime: this may run inside the bench's runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let pool = PgPool::connect(&url).await.map_err(|e| e.to_string())?;
                sqlx::raw_sql(&format!("DROP SCHEMA {name} CASCADE"))
                    .execute(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                pool.close().await;
                Ok::<_, String>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => println!("schema {} dropped", self.name),
            Ok(Err(e)) => eprintln!("could not drop schema {}: {e}", self.name),
            Err(_) => eprintln!("could not drop schema {}: the thread panicked", self.name),
        }
    }
}

async fn truncate(pool: &PgPool) {
    sqlx::raw_sql("TRUNCATE oauth2_adapters_tokens, oauth2_adapters_leases")
        .execute(pool)
        .await
        .expect("TRUNCATE");
}

/// The record's column text, built by the database (the JSON of a
/// `TokenRecord` with the store's `sealed` list, empty: no encryption).
const RECORD_SQL: &str = "jsonb_build_object(
        'provider', $1::TEXT, 'access_token', t.access, 'refresh_token', t.refresh,
        'token_type', 'Bearer', 'expires_at_ms', t.expires, 'refresh_expires_at_ms', NULL,
        'scopes', jsonb_build_array('all'), 'subject', NULL, 'issued_at_ms', t.issued,
        'extra', '{}'::jsonb, 'sealed', '[]'::jsonb)::TEXT";

/// One stored token of the wave: its refresh token and expiry.
struct Seeded {
    key: TokenKey,
    access: String,
    refresh: String,
    expires_ms: u64,
}

/// Inserts `rows` (version 1), one statement per [`CHUNK`] rows.
async fn bulk_insert(pool: &PgPool, provider: &ProviderId, rows: &[Seeded], issued_ms: u64) {
    let sql = format!(
        "INSERT INTO oauth2_adapters_tokens (key, provider, record, version, updated_at)
         SELECT t.key, $1, {RECORD_SQL}, 1, now()
         FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::INT8[], $6::INT8[])
              AS t(key, access, refresh, expires, issued)"
    );
    for chunk in rows.chunks(CHUNK) {
        let keys: Vec<&str> = chunk.iter().map(|r| r.key.as_str()).collect();
        let access: Vec<&str> = chunk.iter().map(|r| r.access.as_str()).collect();
        let refresh: Vec<&str> = chunk.iter().map(|r| r.refresh.as_str()).collect();
        let expires: Vec<i64> = chunk.iter().map(|r| r.expires_ms as i64).collect();
        let issued = vec![issued_ms as i64; chunk.len()];
        sqlx::query(&sql)
            .bind(provider.as_str())
            .bind(keys)
            .bind(access)
            .bind(refresh)
            .bind(expires)
            .bind(issued)
            .execute(pool)
            .await
            .expect("the bulk insert");
    }
}

/// `count` tokens generated by the database itself (for `warm()`), expiring
/// in an hour.
async fn generate_rows(pool: &PgPool, provider: &ProviderId, count: usize) {
    let now = unix_ms_now() as i64;
    let sql = format!(
        "INSERT INTO oauth2_adapters_tokens (key, provider, record, version, updated_at)
         SELECT t.key, $1, {RECORD_SQL}, 1, now()
         FROM (SELECT $1 || '|' || 'acct-' || lpad(i::TEXT, 7, '0') || '|' AS key,
                      'hike_at_' || i || '_' || md5(i::TEXT) AS access,
                      'hike_rt_' || i || '_' || md5('r' || i::TEXT) AS refresh,
                      $2::INT8 + 3600000 AS expires, $2::INT8 AS issued
               FROM generate_series($3::INT8, $4::INT8) AS i) AS t"
    );
    for start in (0..count).step_by(100_000) {
        let end = (start + 100_000).min(count) - 1;
        sqlx::query(&sql)
            .bind(provider.as_str())
            .bind(now)
            .bind(start as i64)
            .bind(end as i64)
            .execute(pool)
            .await
            .expect("generating rows");
    }
    sqlx::raw_sql("ANALYZE oauth2_adapters_tokens")
        .execute(pool)
        .await
        .expect("ANALYZE");
}

// ---------------------------------------------------------------------------
// Worker processes.

/// A worker process and the lines it prints.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Worker {
    fn spawn(id: usize, envs: &[(&str, String)], lines: &mpsc::Sender<(usize, String)>) -> Self {
        let exe = std::env::current_exe().expect("the bench binary's path");
        let mut command = Command::new(exe);
        command
            .env("WAVE_ID", id.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in envs {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the worker starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send((id, line)).is_err() {
                    break;
                }
            }
            let _ = lines.send((id, "EXIT".into()));
        });
        let stdin = child.stdin.take();
        Self { child, stdin }
    }

    /// Tells the worker to stop (its stdin closes).
    fn stop(&mut self) {
        self.stdin.take();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => break,
            }
        }
        eprintln!("worker {} did not stop; killing it", self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn worker_main(role: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    match role {
        "wave" => runtime.block_on(wave_worker()),
        "warm" => runtime.block_on(warm_worker()),
        other => panic!("unknown WAVE_ROLE {other}"),
    }
}

fn env_str(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by the parent"))
}

/// Waits until the parent closes this process's stdin.
async fn stdin_closed() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await;
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `WAVE_ROLE=warm`: warms a manager from every stored token, reports
/// time, store calls and memory.
async fn warm_worker() {
    let store = PostgresStore::connect(&env_str("WAVE_DB"))
        .await
        .expect("PostgreSQL");
    let counting = Arc::new(Counting::new(Arc::new(store)));
    let manager = TokenManager::builder()
        .store(counting.clone())
        .build()
        .expect("the manager builds");
    let (hwm_before, _) = memory_kib();
    let started = Instant::now();
    let report = manager.warm().await.expect("warm");
    let took = started.elapsed();
    let (hwm_after, rss_after) = memory_kib();
    say(format!(
        "WARM {} {} {hwm_before} {hwm_after} {rss_after} {} {}",
        report.loaded,
        took.as_millis(),
        manager.len(),
        describe(&counting.take()).replace(' ', "_"),
    ));
}

/// The reader's latency samples (ns) since the last tick, and its misses.
#[derive(Default)]
struct Reads {
    samples: Mutex<Vec<u64>>,
    misses: AtomicU64,
}

/// The reader's loop for one second against a `HashMap` of the same keys
/// (to 47-byte header strings): what a random, cache-cold lookup costs on
/// this machine, to read the manager's figures against. Returns p50, p99 (ns).
fn baseline_reads(keys: &[TokenKey]) -> (u64, u64) {
    let map: HashMap<TokenKey, String> = keys
        .iter()
        .map(|k| (k.clone(), format!("Bearer {:040}", fastrand::u64(..))))
        .collect();
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..read_batch() {
            let key = &keys[fastrand::usize(..keys.len())];
            let t = Instant::now();
            let hit = map.get(key).map(String::len);
            samples.push(t.elapsed().as_nanos() as u64);
            std::hint::black_box(hit);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    samples.sort_unstable();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

/// `WAVE_ROLE=wave`: one instance of the wave.
async fn wave_worker() {
    let n: usize = env_str("WAVE_N").parse().expect("WAVE_N");
    let cap: usize = env_str("WAVE_CAP").parse().expect("WAVE_CAP");
    let reader_mode = env_str("WAVE_READER");
    let store = PostgresStore::connect(&env_str("WAVE_DB"))
        .await
        .expect("PostgreSQL");
    let store = Arc::new(Counting::new(Arc::new(store)));
    let stats = Arc::new(RequestStats::default());
    let provider = Arc::new(Counted {
        hike: hike(&env_str("WAVE_MOCK")),
        stats: stats.clone(),
    });
    let refreshed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let errors: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let manager = TokenManager::builder()
        .store(store.clone())
        .provider(provider.clone())
        .refresh_timing(timing())
        .refresh_in_background(Duration::from_secs(1), cap)
        .on_event({
            let (refreshed, failed, errors) = (refreshed.clone(), failed.clone(), errors.clone());
            move |event| {
                let (kind, error) = match event {
                    TokenEvent::Refreshed { .. } => {
                        refreshed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    TokenEvent::RefreshFailed { error, .. } => ("refresh failed", error),
                    TokenEvent::ReauthorizationRequired { error, .. } => {
                        ("reauthorization required", error)
                    }
                    TokenEvent::StoreWriteFailed { error, .. } => ("store write failed", error),
                    _ => return,
                };
                failed.fetch_add(1, Ordering::Relaxed);
                // Grouped by message, numbers and keys left out (no error
                // carries a secret).
                let message: String = format!("{kind}: {error}")
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '#' } else { c })
                    .take(160)
                    .collect();
                *errors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(message)
                    .or_default() += 1;
            }
        })
        .build()
        .expect("the manager builds");
    let started = Instant::now();
    let report = manager.warm().await.expect("warm");
    say(format!(
        "READY {} {}",
        started.elapsed().as_millis(),
        report.loaded
    ));
    let _ = store.take(); // count the wave's statements only

    let keys: Arc<Vec<TokenKey>> = Arc::new(
        (0..n)
            .map(|i| TokenKey::new(provider.id(), &account(i)))
            .collect(),
    );
    let (base_p50, base_p99) = baseline_reads(&keys);
    say(format!("BASE {base_p50} {base_p99}"));
    let reads = Arc::new(Reads::default());
    let stop = Arc::new(AtomicBool::new(false));
    let reader = (reader_mode != "off").then(|| {
        let (manager, keys, reads, stop) =
            (manager.clone(), keys.clone(), reads.clone(), stop.clone());
        let handle = tokio::runtime::Handle::current();
        let inside = reader_mode == "inside";
        std::thread::spawn(move || {
            // Inside the runtime, a try_get on a due key starts its refresh,
            // as in an application; outside, it cannot.
            let _entered = inside.then(|| handle.enter());
            let per_batch = read_batch();
            let mut batch = Vec::with_capacity(per_batch);
            while !stop.load(Ordering::Relaxed) {
                let mut misses = 0;
                for _ in 0..per_batch {
                    let key = &keys[fastrand::usize(..keys.len())];
                    let t = Instant::now();
                    let hit = manager.try_get(key).is_some();
                    batch.push(t.elapsed().as_nanos() as u64);
                    misses += u64::from(!hit);
                }
                reads.misses.fetch_add(misses, Ordering::Relaxed);
                reads
                    .samples
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .append(&mut batch);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    });

    let ticker = tokio::spawn({
        let (stats, reads, refreshed, failed) = (
            stats.clone(),
            reads.clone(),
            refreshed.clone(),
            failed.clone(),
        );
        async move {
            let mut last_refreshed = 0;
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let mut samples =
                    std::mem::take(&mut *reads.samples.lock().unwrap_or_else(|p| p.into_inner()));
                samples.sort_unstable();
                let done = refreshed.load(Ordering::Relaxed);
                let in_flight = stats.in_flight.load(Ordering::Relaxed);
                let peak = stats.peak_tick.swap(in_flight, Ordering::Relaxed);
                say(format!(
                    "TICK {} {} {peak} {in_flight} {} {} {} {} {} {}",
                    unix_ms_now(),
                    done - last_refreshed,
                    percentile(&samples, 0.5),
                    percentile(&samples, 0.99),
                    samples.last().copied().unwrap_or(0),
                    samples.len(),
                    reads.misses.swap(0, Ordering::Relaxed),
                    failed.load(Ordering::Relaxed),
                ));
                last_refreshed = done;
            }
        }
    });

    stdin_closed().await;
    stop.store(true, Ordering::Relaxed);
    if let Some(reader) = reader {
        let _ = reader.join();
    }
    let shutdown = manager.shutdown(Duration::from_secs(60)).await;
    ticker.abort();
    let mut errors: Vec<(String, u64)> = errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
        .collect();
    errors.sort_by_key(|e| std::cmp::Reverse(e.1));
    for (message, count) in errors.iter().take(5) {
        say(format!("ERR {count} {message}"));
    }
    say(format!(
        "DONE {} {} {} {} {}",
        refreshed.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        stats.sent.load(Ordering::Relaxed),
        stats.peak.load(Ordering::Relaxed),
        shutdown.is_clean(),
    ));
    say(format!(
        "CALLS {}",
        store
            .take()
            .iter()
            .map(|(name, n)| format!("{name}={n}"))
            .collect::<Vec<_>>()
            .join(",")
    ));
}

// ---------------------------------------------------------------------------
// The parent.

struct Settings {
    quick: bool,
    wave_tokens: usize,
    warm_tokens: usize,
    solo_tokens: usize,
    instances: usize,
    cap: usize,
    reader: String,
    skip: Vec<String>,
    out_dir: PathBuf,
}

impl Settings {
    fn from_env() -> Self {
        let quick = std::env::var_os("BENCH_QUICK").is_some();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        Self {
            quick,
            wave_tokens: env_usize("WAVE_TOKENS", if quick { 10_000 } else { 100_000 }),
            warm_tokens: env_usize("WAVE_WARM_TOKENS", if quick { 100_000 } else { 1_000_000 }),
            solo_tokens: env_usize("WAVE_SOLO_TOKENS", if quick { 5_000 } else { 20_000 }),
            instances: env_usize("WAVE_INSTANCES", 4),
            cap: env_usize("WAVE_CAP", 32),
            reader: std::env::var("WAVE_READER").unwrap_or_else(|_| "outside".into()),
            skip: std::env::var("WAVE_SKIP")
                .unwrap_or_default()
                .split(',')
                .map(str::to_owned)
                .collect(),
            out_dir: match std::env::var_os("WAVE_OUT") {
                Some(dir) => PathBuf::from(dir),
                None if quick => root.join("target/wave-quick"),
                None => root.join("docs"),
            },
        }
    }

    fn runs(&self, part: &str) -> bool {
        !self.skip.iter().any(|s| s == part)
    }
}

fn main() {
    if let Ok(role) = std::env::var("WAVE_ROLE") {
        worker_main(&role);
        return;
    }
    // `cargo bench` passes `--bench`; nothing else is understood.
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(parent(settings));
}

async fn parent(settings: Settings) {
    println!("wave bench{}", if settings.quick { " (quick)" } else { "" });
    println!("uptime at start: {}", uptime());
    let schema = Schema::create(&database_url()).await;
    let url = schema.url();
    let store = PostgresStore::connect(&url)
        .await
        .expect("the store connects and migrates");
    let pool = store.pool().clone();
    let provider_id = hike("http://127.0.0.1:9/").id().clone();

    if settings.runs("trips") {
        round_trips(store.clone()).await;
    }
    // Seconds per stored token warmed by one process (for the wave's lead).
    let mut warm_s_per_token = 0.0005;
    if settings.runs("warm") {
        warm_s_per_token = warm_at_scale(&pool, &provider_id, &url, settings.warm_tokens).await;
    }
    if settings.runs("solo") {
        for delay in [MOCK_DELAY, Duration::ZERO] {
            truncate(&pool).await;
            let wave = WaveSpec {
                tokens: settings.solo_tokens,
                instances: 1,
                spread: Duration::ZERO,
                delay,
                cap: settings.cap,
                reader: "off".into(),
                lead: lead(settings.solo_tokens, 1, warm_s_per_token),
            };
            let outcome = run_wave(&pool, &provider_id, &url, &wave).await;
            outcome.print_checks(&wave);
            println!(
                "one instance, {} tokens due at once, cap {}, mock delay {} ms: {:.0} refreshes/s \
                 (first to last rotation {:.1} s)",
                wave.tokens,
                wave.cap,
                delay.as_millis(),
                outcome.rate(),
                outcome.span_s(),
            );
        }
    }
    if settings.runs("wave") {
        truncate(&pool).await;
        let wave = WaveSpec {
            tokens: settings.wave_tokens,
            instances: settings.instances,
            spread: Duration::from_secs(60),
            delay: MOCK_DELAY,
            cap: settings.cap,
            reader: settings.reader.clone(),
            lead: lead(settings.wave_tokens, settings.instances, warm_s_per_token),
        };
        let outcome = run_wave(&pool, &provider_id, &url, &wave).await;
        outcome.print_summary(&wave);
        outcome.print_checks(&wave);
        std::fs::create_dir_all(&settings.out_dir).expect("the output directory");
        let csv = settings.out_dir.join("wave.csv");
        std::fs::write(&csv, outcome.csv()).expect("writing the CSV");
        let svg = settings.out_dir.join("wave.svg");
        std::fs::write(&svg, outcome.svg(&wave)).expect("writing the SVG");
        println!("wrote {} and {}", csv.display(), svg.display());
    }
    println!("uptime at end: {}", uptime());
    pool.close().await;
    drop(schema);
}

/// Seconds from the rows' insertion to the wave: the workers' warm-up,
/// with room to spare.
fn lead(tokens: usize, instances: usize, warm_s_per_token: f64) -> Duration {
    if let Some(lead) = std::env::var("WAVE_LEAD_S")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Duration::from_secs(lead);
    }
    // Processes warm side by side on two cores.
    let parallel = (instances as f64 / 2.0).max(1.0);
    let warm = tokens as f64 * warm_s_per_token * parallel;
    Duration::from_secs_f64(10.0 + 2.0 * warm)
}

// ---------------------------------------------------------------------------
// 1. Round trips per refresh.

async fn round_trips(postgres: PostgresStore) {
    println!("\n== store calls (statements) per refresh ==");
    let dir = tempfile::tempdir().expect("a temp dir");
    let sqlite = SqliteStore::open(dir.path().join("wave.sqlite"))
        .await
        .expect("SQLite opens");
    let mock = HikeMock::start(MockConfig::default())
        .await
        .expect("the mock starts");
    let stores: [(&str, Arc<dyn TokenStore>); 2] = [
        ("postgres", Arc::new(postgres)),
        ("sqlite", Arc::new(sqlite)),
    ];
    for (name, store) in stores {
        let counting = Arc::new(Counting::new(store));
        let hike = Arc::new(hike(mock.base_url().as_str()));
        let manager = TokenManager::builder()
            .store(counting.clone())
            .provider(hike.clone())
            .refresh_timing(timing())
            .build()
            .expect("the manager builds");
        let (access, refresh) = mock.issue_grants(1).remove(0);
        let mut token = Token::new(
            hike.id().clone(),
            SecretString::from(access),
            SystemTime::now(),
        );
        token.refresh_token = Some(SecretString::from(refresh));
        token.expires_at = Some(SystemTime::now() + Duration::from_secs(3600));
        token.scopes = vec!["all".into()];
        let key = TokenKey::new(hike.id(), "round-trips");
        let current = manager.insert(key.clone(), token).await.expect("insert");
        let insert = counting.take();
        manager
            .force_refresh(&key, &current)
            .await
            .expect("the refresh");
        let refresh = counting.take();
        println!(
            "{name:<9} insert: {}; one refresh: {}",
            describe(&insert),
            describe(&refresh)
        );
        manager.remove(&key).await.expect("cleanup");
    }
    mock.shutdown().await;
}

// ---------------------------------------------------------------------------
// 2. warm() at scale.

async fn warm_at_scale(pool: &PgPool, provider: &ProviderId, url: &str, count: usize) -> f64 {
    println!("\n== warm() of {count} stored tokens (PostgreSQL) ==");
    truncate(pool).await;
    let started = Instant::now();
    generate_rows(pool, provider, count).await;
    println!(
        "generated {count} rows server-side in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (lines_tx, lines) = mpsc::channel();
    let worker = Worker::spawn(
        0,
        &[("WAVE_ROLE", "warm".into()), ("WAVE_DB", url.to_owned())],
        &lines_tx,
    );
    drop(lines_tx);
    let mut seconds_per_token = 0.0005;
    for (_, line) in lines.iter() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.first() != Some(&"WARM") {
            continue;
        }
        let num = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let (loaded, ms, hwm_before, hwm_after, rss_after, cached) =
            (num(1), num(2), num(3), num(4), num(5), num(6));
        let calls = fields.get(7).unwrap_or(&"").replace('_', " ");
        println!(
            "warm(): loaded {loaded} ({cached} cached) in {:.2} s ({:.0} tokens/s); store calls: {calls}",
            ms as f64 / 1000.0,
            loaded as f64 / (ms.max(1) as f64 / 1000.0),
        );
        println!(
            "memory: peak RSS {:.0} MiB before warm, {:.0} MiB after (+{:.0} MiB, {:.0} bytes per token); \
             RSS after {:.0} MiB",
            hwm_before as f64 / 1024.0,
            hwm_after as f64 / 1024.0,
            hwm_after.saturating_sub(hwm_before) as f64 / 1024.0,
            hwm_after.saturating_sub(hwm_before) as f64 * 1024.0 / loaded.max(1) as f64,
            rss_after as f64 / 1024.0,
        );
        seconds_per_token = ms as f64 / 1000.0 / loaded.max(1) as f64;
    }
    drop(worker);
    truncate(pool).await;
    seconds_per_token
}

// ---------------------------------------------------------------------------
// 3. and 4. Waves.

struct WaveSpec {
    tokens: usize,
    instances: usize,
    /// Tokens fall due evenly over this long from the wave's start.
    spread: Duration,
    delay: Duration,
    cap: usize,
    reader: String,
    lead: Duration,
}

/// One worker's line for one second.
#[derive(Clone, Debug)]
struct Tick {
    instance: usize,
    /// Seconds since the wave's start (T0).
    second: f64,
    refreshes: u64,
    peak_in_flight: u64,
    in_flight: u64,
    read_p50_ns: u64,
    read_p99_ns: u64,
    read_max_ns: u64,
    reads: u64,
    misses: u64,
    failed: u64,
}

#[derive(Default)]
struct WaveOutcome {
    ticks: Vec<Tick>,
    /// Per instance: refreshed, failed, requests sent, peak in flight,
    /// whether its shutdown was clean.
    done: HashMap<usize, (u64, u64, u64, u64, bool)>,
    warm_ms: HashMap<usize, u64>,
    /// Store calls during the wave, summed over the instances.
    calls: std::collections::BTreeMap<String, u64>,
    /// Per instance: p50 and p99 (ns) of the same reads on a `HashMap`.
    baseline: HashMap<usize, (u64, u64)>,
    ready_after_t0_ms: i64,
    /// Rotation commit times, ms since T0, sorted.
    rotations_ms: Vec<i64>,
    requests_per_token: Vec<u32>,
    unknown_requests: usize,
    reuses: usize,
    /// Per token: commit time minus expiry (ms; negative = before expiry).
    late: usize,
    min_margin_ms: i64,
    rows_version_2: i64,
    rows_other: i64,
    rows_written_late: i64,
}

impl WaveOutcome {
    fn span_s(&self) -> f64 {
        match (self.rotations_ms.first(), self.rotations_ms.last()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1000.0,
            _ => 0.0,
        }
    }

    fn rate(&self) -> f64 {
        self.rotations_ms.len() as f64 / self.span_s().max(0.001)
    }

    fn duplicates(&self) -> u64 {
        self.requests_per_token
            .iter()
            .map(|&c| u64::from(c.saturating_sub(1)))
            .sum()
    }

    fn missing(&self) -> usize {
        self.requests_per_token.iter().filter(|&&c| c == 0).count()
    }

    fn peak_in_flight(&self) -> u64 {
        self.ticks
            .iter()
            .map(|t| t.peak_in_flight)
            .max()
            .unwrap_or(0)
    }

    fn print_checks(&self, wave: &WaveSpec) {
        let ok = |good: bool| if good { "ok" } else { "FAILED" };
        let refreshed_in_time = self.rotations_ms.len() - self.late;
        println!(
            "check: every token refreshed before it expired: {} ({} of {}; {} late, {} never; \
             smallest margin {:.1} s)",
            ok(self.late == 0 && self.missing() == 0),
            refreshed_in_time,
            wave.tokens,
            self.late,
            self.missing(),
            self.min_margin_ms as f64 / 1000.0,
        );
        let twice = self.requests_per_token.iter().filter(|&&c| c > 1).count();
        println!(
            "check: exactly one request per refresh token: {} ({} tokens with none, {} with more than \
             one ({} duplicate requests, {} reuses refused), {} requests for unknown tokens; store \
             rows at version 2: {}, other: {}, written after expiry: {})",
            ok(self.duplicates() == 0 && self.missing() == 0 && self.unknown_requests == 0),
            self.missing(),
            twice,
            self.duplicates(),
            self.reuses,
            self.unknown_requests,
            self.rows_version_2,
            self.rows_other,
            self.rows_written_late,
        );
        println!(
            "check: requests in flight per instance within the cap ({}): {} (peak {})",
            wave.cap,
            ok(self.peak_in_flight() <= wave.cap as u64),
            self.peak_in_flight(),
        );
    }

    fn print_summary(&self, wave: &WaveSpec) {
        println!(
            "\nwave: {} tokens due over {} s, {} instances, cap {} each, mock delay {} ms, \
             refresh jitter {} s, reader {} ({} try_get per ms)",
            wave.tokens,
            wave.spread.as_secs(),
            wave.instances,
            wave.cap,
            wave.delay.as_millis(),
            timing().jitter.as_secs(),
            wave.reader,
            read_batch(),
        );
        println!(
            "workers ready {:.1} s before the wave (warm: {})",
            -self.ready_after_t0_ms as f64 / 1000.0,
            (0..wave.instances)
                .map(|i| format!(
                    "{:.1} s",
                    *self.warm_ms.get(&i).unwrap_or(&0) as f64 / 1000.0
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "rotations: first at {:+.1} s, last at {:+.1} s after T0; {:.0} refreshes/s over the wave",
            *self.rotations_ms.first().unwrap_or(&0) as f64 / 1000.0,
            *self.rotations_ms.last().unwrap_or(&0) as f64 / 1000.0,
            self.rate(),
        );
        println!(
            "| instance | refreshes | failed | requests | peak in flight | busiest second | read p50 | read p99 (median second) | read p99 (worst second) | HashMap p50 / p99 | reads | misses |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for instance in 0..wave.instances {
            let ticks: Vec<&Tick> = self
                .ticks
                .iter()
                .filter(|t| t.instance == instance && t.second >= -1.0)
                .collect();
            let mut p99: Vec<u64> = ticks
                .iter()
                .filter(|t| t.reads > 0)
                .map(|t| t.read_p99_ns)
                .collect();
            p99.sort_unstable();
            let mut p50: Vec<u64> = ticks
                .iter()
                .filter(|t| t.reads > 0)
                .map(|t| t.read_p50_ns)
                .collect();
            p50.sort_unstable();
            let (base_p50, base_p99) = self.baseline.get(&instance).copied().unwrap_or_default();
            let (refreshed, failed, sent, peak, clean) =
                self.done.get(&instance).copied().unwrap_or_default();
            println!(
                "| {instance} | {refreshed} | {failed} | {sent} | {peak} | {} /s | {:.2} µs | {:.2} µs | {:.2} µs | {:.2} / {:.2} µs | {} | {} |{}",
                ticks.iter().map(|t| t.refreshes).max().unwrap_or(0),
                percentile(&p50, 0.5) as f64 / 1000.0,
                percentile(&p99, 0.5) as f64 / 1000.0,
                p99.last().copied().unwrap_or(0) as f64 / 1000.0,
                base_p50 as f64 / 1000.0,
                base_p99 as f64 / 1000.0,
                ticks.iter().map(|t| t.reads).sum::<u64>(),
                ticks.iter().map(|t| t.misses).sum::<u64>(),
                if clean { "" } else { " shutdown not clean" },
            );
        }
        let mut per_second: HashMap<i64, u64> = HashMap::new();
        for t in &self.ticks {
            *per_second.entry(t.second.floor() as i64).or_default() += t.refreshes;
        }
        println!(
            "cluster: busiest second {} refreshes",
            per_second.values().max().copied().unwrap_or(0)
        );
        let statements: u64 = self.calls.values().sum();
        let refreshed = self.rotations_ms.len().max(1) as f64;
        println!(
            "store calls during the wave (all instances): {statements} = {:.1} per refreshed token ({})",
            statements as f64 / refreshed,
            self.calls
                .iter()
                .map(|(name, n)| format!("{name} {:.2}", *n as f64 / refreshed))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    fn csv(&self) -> String {
        let mut out = String::from(
            "second,instance,refreshes,peak_in_flight,in_flight,read_p50_ns,read_p99_ns,read_max_ns,reads,misses,failed\n",
        );
        for t in &self.ticks {
            let _ = writeln!(
                out,
                "{:.1},{},{},{},{},{},{},{},{},{},{}",
                t.second,
                t.instance,
                t.refreshes,
                t.peak_in_flight,
                t.in_flight,
                t.read_p50_ns,
                t.read_p99_ns,
                t.read_max_ns,
                t.reads,
                t.misses,
                t.failed
            );
        }
        out
    }

    fn svg(&self, wave: &WaveSpec) -> String {
        svg::plot(&self.ticks, wave)
    }
}

async fn run_wave(pool: &PgPool, provider: &ProviderId, url: &str, wave: &WaveSpec) -> WaveOutcome {
    let mock = HikeMock::start(MockConfig::default().with_refresh_delay_after_commit(wave.delay))
        .await
        .expect("the mock starts");
    let grants = mock.issue_grants(wave.tokens);
    let now = unix_ms_now();
    let t0 = now + wave.lead.as_millis() as u64;
    let spread_ms = wave.spread.as_millis() as u64;
    let seeded: Vec<Seeded> = grants
        .into_iter()
        .enumerate()
        .map(|(i, (access, refresh))| Seeded {
            key: TokenKey::new(provider, &account(i)),
            access,
            refresh,
            expires_ms: t0 + SKEW.as_millis() as u64 + spread_ms * i as u64 / wave.tokens as u64,
        })
        .collect();
    let started = Instant::now();
    // Issued an hour ago: the skew is never capped by the lifetime.
    bulk_insert(pool, provider, &seeded, now - 3_600_000).await;
    println!(
        "\ninserted {} tokens in {:.2} s ({} rows per statement); wave starts in {:.1} s",
        wave.tokens,
        started.elapsed().as_secs_f64(),
        CHUNK,
        (t0 as f64 - unix_ms_now() as f64) / 1000.0
    );

    let (lines_tx, lines) = mpsc::channel();
    let envs = [
        ("WAVE_ROLE", "wave".to_owned()),
        ("WAVE_DB", url.to_owned()),
        ("WAVE_MOCK", mock.base_url().to_string()),
        ("WAVE_N", wave.tokens.to_string()),
        ("WAVE_CAP", wave.cap.to_string()),
        ("WAVE_READER", wave.reader.clone()),
    ];
    let mut workers: Vec<Worker> = (0..wave.instances)
        .map(|id| Worker::spawn(id, &envs, &lines_tx))
        .collect();
    drop(lines_tx);

    let mut outcome = WaveOutcome::default();
    let last_expiry = t0 + SKEW.as_millis() as u64 + spread_ms;
    let deadline = last_expiry + 30_000;
    let mut all_refreshed_at: Option<u64> = None;
    let mut exited = 0;
    let mut stopping = false;
    loop {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok((id, line)) => {
                let fields: Vec<&str> = line.split(' ').collect();
                let num = |i: usize| {
                    fields
                        .get(i)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                match fields[0] {
                    "READY" => {
                        outcome.warm_ms.insert(id, num(1));
                        if outcome.warm_ms.len() == wave.instances {
                            outcome.ready_after_t0_ms = unix_ms_now() as i64 - t0 as i64;
                            println!(
                                "all {} workers warmed; the wave starts in {:.1} s",
                                wave.instances,
                                -outcome.ready_after_t0_ms as f64 / 1000.0
                            );
                        }
                    }
                    "BASE" => {
                        outcome.baseline.insert(id, (num(1), num(2)));
                    }
                    "TICK" => outcome.ticks.push(Tick {
                        instance: id,
                        second: (num(1) as f64 - t0 as f64) / 1000.0,
                        refreshes: num(2),
                        peak_in_flight: num(3),
                        in_flight: num(4),
                        read_p50_ns: num(5),
                        read_p99_ns: num(6),
                        read_max_ns: num(7),
                        reads: num(8),
                        misses: num(9),
                        failed: num(10),
                    }),
                    "DONE" => {
                        outcome.done.insert(
                            id,
                            (
                                num(1),
                                num(2),
                                num(3),
                                num(4),
                                fields.get(5) == Some(&"true"),
                            ),
                        );
                    }
                    "CALLS" => {
                        for call in fields.get(1).unwrap_or(&"").split(',') {
                            if let Some((name, n)) = call.split_once('=') {
                                *outcome.calls.entry(name.to_owned()).or_default() +=
                                    n.parse::<u64>().unwrap_or(0);
                            }
                        }
                    }
                    "ERR" => println!("instance {id}: {} × {}", num(1), fields[2..].join(" ")),
                    "EXIT" => {
                        exited += 1;
                        if exited == wave.instances {
                            break;
                        }
                        if !stopping {
                            eprintln!("worker {id} exited early");
                        }
                    }
                    _ => println!("worker {id}: {line}"),
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if stopping {
            continue;
        }
        let now = unix_ms_now();
        if all_refreshed_at.is_none() && mock.rotations().len() >= wave.tokens {
            all_refreshed_at = Some(now);
        }
        // A few seconds after the last rotation (late duplicates would
        // show), or at the deadline: stop the workers.
        let settled = all_refreshed_at.is_some_and(|at| now >= at + 3_000);
        if settled || now >= deadline {
            stopping = true;
            workers.iter_mut().for_each(Worker::stop);
        }
    }
    drop(workers);

    // What the mock saw.
    let index: HashMap<&str, usize> = seeded
        .iter()
        .enumerate()
        .map(|(i, s)| (s.refresh.as_str(), i))
        .collect();
    outcome.requests_per_token = vec![0; wave.tokens];
    for request in mock.token_requests() {
        let form = request.form_body();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if field("grant_type") != Some("refresh_token") {
            continue;
        }
        match field("refresh_token").and_then(|t| index.get(t)) {
            Some(&i) => outcome.requests_per_token[i] += 1,
            None => outcome.unknown_requests += 1,
        }
    }
    outcome.reuses = mock.refresh_token_reuses();
    outcome.min_margin_ms = i64::MAX;
    for rotation in mock.rotations() {
        let at = rotation
            .committed_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        outcome.rotations_ms.push(at - t0 as i64);
        if let Some(&i) = index.get(rotation.old_refresh_token.as_str()) {
            let margin = seeded[i].expires_ms as i64 - at;
            outcome.min_margin_ms = outcome.min_margin_ms.min(margin);
            if margin <= 0 {
                outcome.late += 1;
            }
        }
    }
    outcome.rotations_ms.sort_unstable();
    // What the store holds: one write per token, before its expiry.
    let expiry: HashMap<&str, u64> = seeded
        .iter()
        .map(|s| (s.key.as_str(), s.expires_ms))
        .collect();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT key, version, (EXTRACT(EPOCH FROM updated_at) * 1000)::INT8
         FROM oauth2_adapters_tokens",
    )
    .fetch_all(pool)
    .await
    .expect("reading the rows");
    for (key, version, updated_ms) in rows {
        if version == 2 {
            outcome.rows_version_2 += 1;
        } else {
            outcome.rows_other += 1;
        }
        if expiry
            .get(key.as_str())
            .is_some_and(|&e| updated_ms as u64 >= e)
        {
            outcome.rows_written_late += 1;
        }
    }
    mock.shutdown().await;
    truncate(pool).await;
    outcome
}

// ---------------------------------------------------------------------------
// The plot: a minimal hand-written SVG.

mod svg {
    use std::fmt::Write as _;

    use super::{Tick, WaveSpec};

    const COLORS: [&str; 8] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    ];
    const WIDTH: f64 = 900.0;
    const PANEL: f64 = 200.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 60.0;
    const GAP: f64 = 50.0;

    /// A round step for about five ticks up to `max`.
    fn step(max: f64) -> f64 {
        let raw = (max / 5.0).max(1e-9);
        let magnitude = 10f64.powf(raw.log10().floor());
        let unit = raw / magnitude;
        let nice = if unit <= 1.0 {
            1.0
        } else if unit <= 2.0 {
            2.0
        } else if unit <= 5.0 {
            5.0
        } else {
            10.0
        };
        nice * magnitude
    }

    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    /// A panel: its title, the value plotted, a horizontal line (the cap).
    type Panel<'a> = (&'a str, &'a dyn Fn(&Tick) -> f64, Option<f64>);

    pub(super) fn plot(ticks: &[Tick], wave: &WaveSpec) -> String {
        // From a little before the first refresh (jitter makes some due
        // before the wave's start), or 5 s before the start.
        let first = ticks
            .iter()
            .filter(|t| t.refreshes > 0)
            .map(|t| t.second)
            .fold(0.0f64, f64::min);
        let x_min = (first - 5.0).min(-5.0).floor();
        let ticks: Vec<&Tick> = ticks.iter().filter(|t| t.second >= x_min).collect();
        let x_max = ticks
            .iter()
            .map(|t| t.second)
            .fold(60.0f64, f64::max)
            .ceil();
        let plot_w = WIDTH - LEFT - RIGHT;
        let x = |s: f64| LEFT + (s - x_min) / (x_max - x_min) * plot_w;
        let panels: [Panel; 3] = [
            ("refreshes per second", &|t| t.refreshes as f64, None),
            (
                "refresh requests in flight (peak per second)",
                &|t| t.peak_in_flight as f64,
                Some(wave.cap as f64),
            ),
            (
                "cached read (try_get) p99, µs",
                &|t| t.read_p99_ns as f64 / 1000.0,
                None,
            ),
        ];
        let height = TOP + 3.0 * (PANEL + GAP) + 10.0;
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            out,
            r##"<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{} tokens due within {} s, {} instances on one PostgreSQL, cap {} refreshes each, mock answers in {} ms</text>
<text x="{LEFT}" y="38">refresh jitter {} s; reader {} the runtime ({} try_get per ms, random keys)</text>"##,
            wave.tokens,
            wave.spread.as_secs(),
            wave.instances,
            wave.cap,
            wave.delay.as_millis(),
            super::timing().jitter.as_secs(),
            if wave.reader == "inside" {
                "inside"
            } else {
                "outside"
            },
            super::read_batch(),
        );
        for (p, (title, value, cap)) in panels.iter().enumerate() {
            let top = TOP + p as f64 * (PANEL + GAP);
            let bottom = top + PANEL;
            // The first panel also shows the sum over instances per second.
            let mut total: std::collections::BTreeMap<i64, f64> = Default::default();
            if p == 0 && wave.instances > 1 {
                for t in &ticks {
                    *total.entry(t.second.floor() as i64).or_default() += value(t);
                }
            }
            let series_max = ticks
                .iter()
                .map(|t| value(t))
                .chain(cap.iter().copied())
                .chain(total.values().copied())
                .fold(0.0f64, f64::max);
            let y_step = step(series_max.max(1.0));
            let y_max = (series_max / y_step).ceil().max(1.0) * y_step;
            let y = |v: f64| bottom - v / y_max * PANEL;
            // The due window.
            let _ = writeln!(
                out,
                r##"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{PANEL}" fill="#f0f0f0"/>"##,
                x(0.0),
                (x(wave.spread.as_secs_f64().max(0.5)) - x(0.0)).max(1.0)
            );
            let _ = writeln!(
                out,
                r##"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text>"##,
                top - 8.0,
                escape(title)
            );
            // Axes and grid.
            let mut v = 0.0;
            while v <= y_max + 1e-9 {
                let _ = writeln!(
                    out,
                    r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#dddddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                    WIDTH - RIGHT,
                    y(v),
                    y(v),
                    LEFT - 6.0,
                    y(v) + 4.0,
                    if y_step < 1.0 {
                        format!("{v:.1}")
                    } else {
                        format!("{v:.0}")
                    }
                );
                v += y_step;
            }
            let x_step = step(x_max - x_min);
            let mut s = (x_min / x_step).ceil() * x_step;
            while s <= x_max + 1e-9 {
                let label = if s.abs() < 1e-9 { 0.0 } else { s };
                let _ = writeln!(
                    out,
                    r##"<line x1="{0:.1}" x2="{0:.1}" y1="{bottom:.1}" y2="{1:.1}" stroke="#999999"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{3}</text>"##,
                    x(s),
                    bottom + 4.0,
                    bottom + 16.0,
                    label
                );
                s += x_step;
            }
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" x2="{LEFT}" y1="{top:.1}" y2="{bottom:.1}" stroke="#333333"/><line x1="{LEFT}" x2="{:.1}" y1="{bottom:.1}" y2="{bottom:.1}" stroke="#333333"/>"##,
                WIDTH - RIGHT
            );
            if let Some(cap) = cap {
                let _ = writeln!(
                    out,
                    r##"<line x1="{LEFT}" x2="{right:.1}" y1="{at:.1}" y2="{at:.1}" stroke="#000000" stroke-dasharray="6 4"/><text x="{label_x:.1}" y="{label_y:.1}" text-anchor="end">cap {cap}</text>"##,
                    right = WIDTH - RIGHT,
                    at = y(*cap),
                    label_x = WIDTH - RIGHT - 4.0,
                    label_y = y(*cap) - 4.0
                );
            }
            if !total.is_empty() {
                let points: Vec<String> = total
                    .iter()
                    .map(|(s, v)| format!("{:.1},{:.1}", x(*s as f64 + 0.5), y(*v)))
                    .collect();
                let _ = writeln!(
                    out,
                    r##"<polyline fill="none" stroke="#000000" stroke-width="1.5" stroke-dasharray="4 2" points="{}"/>"##,
                    points.join(" ")
                );
            }
            for instance in 0..wave.instances {
                let points: Vec<String> = ticks
                    .iter()
                    .filter(|t| t.instance == instance)
                    .map(|t| format!("{:.1},{:.1}", x(t.second), y(value(t))))
                    .collect();
                let _ = writeln!(
                    out,
                    r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
                    COLORS[instance % COLORS.len()],
                    points.join(" ")
                );
            }
        }
        // Legend and the x axis' name.
        let legend_y = height - 12.0;
        let _ = writeln!(
            out,
            r##"<text x="{LEFT}" y="{legend_y:.1}">seconds since the first token fell due (grey: tokens falling due; dashed: all instances)</text>"##
        );
        for instance in 0..wave.instances {
            let lx = WIDTH - RIGHT - (wave.instances - instance) as f64 * 95.0;
            let _ = writeln!(
                out,
                r#"<line x1="{lx:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{legend_y:.1}">instance {instance}</text>"#,
                lx + 18.0,
                legend_y - 4.0,
                legend_y - 4.0,
                COLORS[instance % COLORS.len()],
                lx + 22.0
            );
        }
        out.push_str("</svg>\n");
        out
    }
}
