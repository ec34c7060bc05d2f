//! The stores of the matrix and the faults injected into them: a wrapper
//! that fails (or panics in) writes on demand, a SQLite file another
//! connection locks, and PostgreSQL behind the testkit's `FaultProxy`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use oauth2_adapters::store::LeaseRequest;
use oauth2_adapters::store::{CasOutcome, LeaseOutcome, StoredToken, TokenRecord};
use oauth2_adapters::store_sql::sqlx;
use oauth2_adapters::store_sql::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use oauth2_adapters::store_sql::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use oauth2_adapters::store_sql::{PostgresStore, SqliteStore};
use oauth2_adapters::testkit::FaultProxy;
use oauth2_adapters::{Error, Result, TokenKey, TokenStore};
use oauth2_adapters_tests::external::{database_url, postgres_store};

/// A store that delegates to `inner` and, on demand, fails its writes
/// (compare-and-swap: an error, not a version conflict) or panics in the
/// next one. Reads and leases keep working.
#[derive(Debug)]
pub struct FailingStore {
    inner: Arc<dyn TokenStore>,
    fail_writes: AtomicBool,
    panic_next_write: AtomicBool,
    failed: AtomicUsize,
    script: Mutex<Option<Script>>,
}

/// What one write does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Delegated to the real store.
    Pass,
    /// An error; nothing written.
    Fail,
    /// Written by the real store, then an error: the answer was lost (a
    /// connection cut after the commit).
    CommitThenFail,
}

/// Write outcomes by the token written: `first[n]` for the first write of
/// the n-th distinct access token, `repeats` for every later write of
/// those tokens (a pending write's retries); any other write passes.
#[derive(Debug)]
struct Script {
    first: Vec<WriteOutcome>,
    repeats: WriteOutcome,
    seen: Vec<String>,
}

impl FailingStore {
    pub fn new(inner: Arc<dyn TokenStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            fail_writes: AtomicBool::new(false),
            panic_next_write: AtomicBool::new(false),
            failed: AtomicUsize::new(0),
            script: Mutex::new(None),
        })
    }

    /// Scripts the coming writes (see [`Script`]); ends `fail_writes`.
    pub fn script(&self, first: Vec<WriteOutcome>, repeats: WriteOutcome) {
        self.fail_writes(false);
        *self.script.lock().unwrap() = Some(Script {
            first,
            repeats,
            seen: Vec::new(),
        });
    }

    fn scripted(&self, record: &TokenRecord) -> WriteOutcome {
        let mut script = self.script.lock().unwrap();
        let Some(script) = script.as_mut() else {
            return WriteOutcome::Pass;
        };
        if let Some(n) = script.seen.iter().position(|t| *t == record.access_token) {
            return if n < script.first.len() {
                script.repeats
            } else {
                WriteOutcome::Pass
            };
        }
        script.seen.push(record.access_token.clone());
        script
            .first
            .get(script.seen.len() - 1)
            .copied()
            .unwrap_or(WriteOutcome::Pass)
    }

    pub fn fail_writes(&self, on: bool) {
        self.fail_writes.store(on, Ordering::SeqCst);
    }

    pub fn panic_next_write(&self) {
        self.panic_next_write.store(true, Ordering::SeqCst);
    }

    /// How many writes failed on purpose.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }

    fn check_write(&self, record: &TokenRecord) -> Result<WriteOutcome> {
        if self.panic_next_write.swap(false, Ordering::SeqCst) {
            panic!("a store with a bug panicked in compare_and_swap");
        }
        let outcome = if self.fail_writes.load(Ordering::SeqCst) {
            WriteOutcome::Fail
        } else {
            self.scripted(record)
        };
        if outcome == WriteOutcome::Fail {
            return Err(self.injected());
        }
        Ok(outcome)
    }

    fn injected(&self) -> Error {
        self.failed.fetch_add(1, Ordering::SeqCst);
        Error::Store {
            message: "injected write failure".into(),
            source: None,
        }
    }

    /// Passes `written` on, or loses it (`CommitThenFail`).
    fn answer(&self, outcome: WriteOutcome, written: Result<CasOutcome>) -> Result<CasOutcome> {
        match outcome {
            WriteOutcome::CommitThenFail => {
                written?;
                Err(self.injected())
            }
            _ => written,
        }
    }
}

#[async_trait]
impl TokenStore for FailingStore {
    async fn load(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        self.inner.load(key).await
    }
    async fn compare_and_swap(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
    ) -> Result<CasOutcome> {
        let outcome = self.check_write(record)?;
        let written = self.inner.compare_and_swap(key, expected, record).await;
        self.answer(outcome, written)
    }
    async fn delete(&self, key: &TokenKey) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn keys(&self) -> Result<Vec<TokenKey>> {
        self.inner.keys().await
    }
    async fn load_many(
        &self,
        keys: &[TokenKey],
    ) -> Result<Option<Vec<(TokenKey, Result<StoredToken>)>>> {
        self.inner.load_many(keys).await
    }
    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        request: &LeaseRequest<'_>,
    ) -> Result<LeaseOutcome> {
        self.inner.try_acquire_lease(key, request).await
    }
    async fn release_lease(&self, key: &TokenKey, holder: &str) -> Result<()> {
        self.inner.release_lease(key, holder).await
    }
    async fn compare_and_swap_releasing(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
        holder: &str,
    ) -> Result<CasOutcome> {
        let outcome = self.check_write(record)?;
        let written = self
            .inner
            .compare_and_swap_releasing(key, expected, record, holder)
            .await;
        self.answer(outcome, written)
    }
}

/// A SQLite file in a private temporary directory (removed on drop).
pub struct SqliteFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl SqliteFile {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("tokens.sqlite");
        Self { _dir: dir, path }
    }

    /// `SqliteStore::open`: its own pool, the store's defaults (5 s busy timeout).
    pub async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path)
            .await
            .expect("the SQLite store opens")
    }

    /// A store on its own pool with the store's settings but a short busy
    /// timeout, so a locked database fails a write quickly.
    pub async fn open_with_busy_timeout(&self, busy: Duration) -> SqliteStore {
        self.open().await; // creates the file (mode 0600) and switches it to WAL
        let pool = SqlitePoolOptions::new()
            .connect_with(options(&self.path).busy_timeout(busy))
            .await
            .expect("the SQLite pool opens");
        SqliteStore::from_pool(pool)
            .await
            .expect("the SQLite store opens")
    }

    /// Another connection takes the database's write lock (`BEGIN
    /// EXCLUSIVE`) and holds it until [`SqliteLock::release`].
    pub async fn lock(&self) -> SqliteLock {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options(&self.path).busy_timeout(Duration::from_secs(10)))
            .await
            .expect("the locking connection opens");
        let tx = pool
            .begin_with("BEGIN EXCLUSIVE")
            .await
            .expect("the write lock is taken");
        SqliteLock { tx, pool }
    }
}

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .expect("a SQLite URL")
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .pragma("secure_delete", "ON")
}

/// A connection holding the SQLite write lock.
pub struct SqliteLock {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    pool: sqlx::SqlitePool,
}

impl SqliteLock {
    pub async fn release(self) {
        self.tx.commit().await.expect("the write lock is released");
        self.pool.close().await;
    }
}

/// PostgreSQL behind a fault proxy (this row's own), and a direct store
/// for checking what is stored whatever the proxy does.
pub struct ProxiedPostgres {
    pub proxy: FaultProxy,
    pub direct: PostgresStore,
    proxied_url: String,
}

impl ProxiedPostgres {
    /// `None` (the row is skipped) when PostgreSQL is unreachable outside
    /// CI; under `CI=true`, a panic.
    pub async fn start() -> Option<Self> {
        let direct = postgres_store().await?;
        let url = database_url();
        let parsed = url::Url::parse(&url).expect("DATABASE_URL is a URL");
        let host = parsed
            .host_str()
            .expect("DATABASE_URL has a host")
            .to_owned();
        let port = parsed.port().unwrap_or(5432);
        let upstream = tokio::net::lookup_host((host.as_str(), port))
            .await
            .expect("the database host resolves")
            .next()
            .expect("an address");
        let proxy = FaultProxy::start(upstream).await.expect("the proxy starts");
        let proxied_url = proxy.url_for(&url).expect("the URL points at the proxy");
        Some(Self {
            proxy,
            direct,
            proxied_url,
        })
    }

    /// A store with its own small pool through the proxy: a connection
    /// that cannot be had within 2 s is an error (not a 30 s wait).
    pub async fn store(&self) -> PostgresStore {
        pool_store(&self.proxied_url).await
    }
}

/// A store with its own small pool straight to the database.
pub async fn direct_postgres() -> Option<PostgresStore> {
    postgres_store().await?;
    Some(pool_store(&database_url()).await)
}

async fn pool_store(url: &str) -> PostgresStore {
    let options = PgConnectOptions::from_str(url).expect("a PostgreSQL URL");
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(options)
        .await
        .expect("PostgreSQL answers");
    PostgresStore::from_pool(pool)
        .await
        .expect("the PostgreSQL store migrates")
}

/// Removes the row's keys from the shared database.
pub async fn cleanup(store: &dyn TokenStore, keys: &[TokenKey]) {
    for key in keys {
        let _ = store.delete(key).await;
    }
}
