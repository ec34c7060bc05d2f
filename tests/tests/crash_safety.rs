//! Crash safety: worker processes (the `token_manager` example, SQLite
//! store) are killed with SIGKILL at random moments while they refresh
//! rotating Hike tokens, and restarted, many times.
//!
//! What can be guaranteed, and is asserted:
//! * the store survives: every account is still there, the file passes
//!   SQLite's integrity check;
//! * a refresh token is never lost by the client: every stored refresh token
//!   is either still live at the provider, or was spent by a refresh request
//!   whose answer died with the killed process.
//!
//! What cannot be: with strict rotation (Hike's, the testkit's), a kill after
//! the provider rotated the token and before the answer reached the disk
//! loses the new token; no client can recover it. The test counts those and
//! checks that each is explained by a kill, so a client-side loss (a token
//! written wrongly, or an old one written over a newer one) cannot hide.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters::hike::Hike;
use oauth2_adapters::manager::TokenManager;
use oauth2_adapters::store_sql::SqliteStore;
use oauth2_adapters::testkit::{HikeMock, MockConfig, MockProvider};
use oauth2_adapters::{ClientCredentials, ManualClock, Provider, TokenKey, TokenStore};
use oauth2_adapters_tests::code_flow::sign_in;
use oauth2_adapters_tests::external::token_manager_binary;
use oauth2_adapters_tests::{Fixture, REDIRECT_URI};

const ACCOUNTS: usize = 6;
const KILLS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_no_refresh_token_they_received() {
    let Some(binary) = token_manager_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    let mock = HikeMock::start(
        MockConfig::default()
            .with_redirect_uri(REDIRECT_URI)
            .with_access_token_lifetime(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let config = mock.config().clone();
    let hike = Hike::builder(ClientCredentials::new(
        config.client_id.clone(),
        config.client_secret.clone(),
    ))
    .base_url(mock.base_url().as_str())
    .build()
    .unwrap();
    let fx = Fixture {
        provider: hike,
        mock,
        clock: ManualClock::at_unix(0),
    };
    let seed = TokenManager::builder()
        .store(Arc::new(store.clone()))
        .build().unwrap();
    let mut keys = Vec::new();
    for i in 0..ACCOUNTS {
        let key = TokenKey::new(fx.provider.id(), &format!("crash-{i}"));
        seed.insert(key.clone(), sign_in(&fx).await.unwrap())
            .await
            .unwrap();
        keys.push(key);
    }
    drop(seed);

    let worker = |seconds: &str| {
        std::process::Command::new(&binary)
            .args([
                "--sqlite",
                path.to_str().unwrap(),
                "--hike-url",
                fx.mock.base_url().as_str(),
            ])
            .args([
                "--client-id",
                &config.client_id,
                "--client-secret",
                &config.client_secret,
            ])
            .args([
                "--accounts",
                "0",
                "--prefix",
                "crash-",
                "--seconds",
                seconds,
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the worker starts")
    };
    for _ in 0..KILLS {
        let mut child = worker("30");
        tokio::time::sleep(Duration::from_millis(fastrand::u64(300..1500))).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
    }
    // One clean run to settle. Accounts lost in flight make it report
    // errors, so its exit status is not the verdict: the checks below are.
    let mut settle = worker("2");
    tokio::task::block_in_place(|| settle.wait()).unwrap();

    let sent: HashSet<String> = fx
        .mock
        .token_requests()
        .iter()
        .filter_map(|r| {
            r.form_body()
                .into_iter()
                .find(|(k, _)| k == "refresh_token")
                .map(|(_, v)| v)
        })
        .collect();
    assert!(
        sent.len() > KILLS,
        "the workers refreshed while being killed ({} refreshes)",
        sent.len()
    );
    let (mut live, mut lost_in_flight) = (0, 0);
    for key in &keys {
        let stored = store
            .load(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key} vanished from the store"));
        let refresh = stored
            .record
            .refresh_token
            .expect("a refresh token is stored");
        if fx.mock.is_refresh_token_valid(&refresh) {
            live += 1;
        } else {
            assert!(
                sent.contains(&refresh),
                "{key}: the stored refresh token is dead but was never sent: the client lost it"
            );
            lost_in_flight += 1;
        }
    }
    let integrity: (String,) = sqlx_integrity(&store).await;
    assert_eq!(integrity.0, "ok");
    assert!(
        lost_in_flight <= KILLS * 4,
        "at most the refreshes in flight at each kill"
    );
    eprintln!("crash safety: {KILLS} kills, {} refreshes, {live} accounts live, {lost_in_flight} lost in flight at a kill", sent.len());
}

async fn sqlx_integrity(store: &SqliteStore) -> (String,) {
    oauth2_adapters::store_sql::sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .unwrap()
}
