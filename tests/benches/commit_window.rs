//! The unavoidable window, measured: from a refreshed token's arrival (the
//! provider has already rotated the refresh token) to its durable commit in
//! the store. A crash inside it loses the new token, so it must be short.
//!
//! ```text
//! cargo bench -p oauth2-adapters-tests --bench commit_window
//! ```
//!
//! For each store (a SQLite file; PostgreSQL at `DATABASE_URL`, skipped when
//! unreachable) it runs `REFRESHES` forced refreshes of one Hike key against
//! the testkit's mock, one after another, and reads the manager's
//! `oauth2_adapters_manager_persist_duration_seconds` histogram. Each store
//! runs twice, side by side: with its own one-step write that also releases
//! the refresh lease (what the manager uses), and through a wrapper that
//! writes, then releases in a second round trip (the trait's default), which
//! is what the commit cost before. Prints p50 / p99 / max in milliseconds.

use std::sync::Arc;

use async_trait::async_trait;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use oauth2_adapters::manager::TokenManager;
use oauth2_adapters::metrics::MANAGER_PERSIST_DURATION_SECONDS;
use oauth2_adapters::store::TokenRecord;
use oauth2_adapters::store::{CasOutcome, LeaseOutcome, LeaseRequest, StoredToken};
use oauth2_adapters::store_sql::{PostgresStore, SqliteStore};
use oauth2_adapters::{Provider, Result, TokenKey, TokenStore};
use oauth2_adapters_tests::code_flow::sign_in;
use oauth2_adapters_tests::external::{database_url, unique_prefix};

const REFRESHES: usize = 400;

/// Forwards everything except the one-step write, so the manager falls back
/// to the trait's default: compare-and-swap, then a separate release.
#[derive(Debug)]
struct TwoStep(Arc<dyn TokenStore>);

#[async_trait]
impl TokenStore for TwoStep {
    async fn load(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        self.0.load(key).await
    }
    async fn compare_and_swap(
        &self,
        key: &TokenKey,
        expected: Option<u64>,
        record: &TokenRecord,
    ) -> Result<CasOutcome> {
        self.0.compare_and_swap(key, expected, record).await
    }
    async fn delete(&self, key: &TokenKey) -> Result<()> {
        self.0.delete(key).await
    }
    async fn keys(&self) -> Result<Vec<TokenKey>> {
        self.0.keys().await
    }
    async fn try_acquire_lease(
        &self,
        key: &TokenKey,
        request: &LeaseRequest<'_>,
    ) -> Result<LeaseOutcome> {
        self.0.try_acquire_lease(key, request).await
    }
    async fn release_lease(&self, key: &TokenKey, holder: &str) -> Result<()> {
        self.0.release_lease(key, holder).await
    }
}

/// Runs the refreshes through `store`; returns the persist durations (ms).
async fn measure(store: Arc<dyn TokenStore>, account: &str, snapshotter: &Snapshotter) -> Vec<f64> {
    let _ = snapshotter.snapshot(); // drop what earlier rows recorded
    let fx = oauth2_adapters_tests::hike().await;
    let manager = TokenManager::builder()
        .store(store)
        .provider(Arc::new(fx.provider.clone()))
        .build()
        .expect("the manager builds");
    let key = TokenKey::new(fx.provider.id(), account);
    let token = sign_in(&fx).await.expect("sign-in");
    let mut current = manager.insert(key.clone(), token).await.expect("insert");
    for _ in 0..REFRESHES {
        current = manager
            .force_refresh(&key, &current)
            .await
            .expect("the refresh succeeds");
    }
    let mut values: Vec<f64> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == MANAGER_PERSIST_DURATION_SECONDS)
        .flat_map(|(.., value)| match value {
            DebugValue::Histogram(values) => values
                .into_iter()
                .map(|v| v.into_inner() * 1000.0)
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    manager.remove(&key).await.expect("cleanup");
    values.sort_by(f64::total_cmp);
    values
}

fn report(store: &str, variant: &str, values: &[f64]) {
    if values.is_empty() {
        println!("{store:<10} {variant:<28} no samples (is a recorder installed?)");
        return;
    }
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    println!(
        "{store:<10} {variant:<28} n={:<4} p50={:>7.3} ms  p99={:>7.3} ms  max={:>7.3} ms",
        values.len(),
        at(0.5),
        at(0.99),
        values[values.len() - 1]
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("a temp dir");
        let sqlite: Arc<dyn TokenStore> = Arc::new(
            SqliteStore::open(dir.path().join("window.sqlite"))
                .await
                .expect("SQLite opens"),
        );
        let prefix = unique_prefix("commit-window");
        let postgres: Option<Arc<dyn TokenStore>> =
            match PostgresStore::connect(&database_url()).await {
                Ok(store) => Some(Arc::new(store)),
                Err(error) => {
                    println!("PostgreSQL skipped: {error}");
                    None
                }
            };
        println!(
            "commit window: {REFRESHES} refreshes per row, response received -> durable commit"
        );
        for (name, store) in [("sqlite", Some(sqlite)), ("postgres", postgres)] {
            let Some(store) = store else { continue };
            for round in 0..2 {
                let one = measure(
                    store.clone(),
                    &format!("{prefix}-one-{round}"),
                    &snapshotter,
                )
                .await;
                report(name, "one step (write + release)", &one);
                let two = measure(
                    Arc::new(TwoStep(store.clone())),
                    &format!("{prefix}-two-{round}"),
                    &snapshotter,
                )
                .await;
                report(name, "two steps (write, release)", &two);
            }
        }
    });
}
