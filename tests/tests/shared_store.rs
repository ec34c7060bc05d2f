//! Many managers, one PostgreSQL store: each key is refreshed once in total,
//! and no refresh token is ever sent twice (which Hike would answer with
//! `invalid_grant`, revoking nothing here but failing the refresh).
//! First several managers with their own pools in this process, then
//! several OS processes running the `token_manager` example.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters::hike::Hike;
use oauth2_adapters::manager::TokenManager;
use oauth2_adapters::testkit::{HikeMock, MockConfig, MockServer, RecordedRequest};
use oauth2_adapters::{ClientCredentials, Provider, TokenKey, TokenStore};
use oauth2_adapters_tests::code_flow::sign_in;
use oauth2_adapters_tests::external::{postgres_store, token_manager_binary, unique_prefix};
use oauth2_adapters_tests::{CodeFlowMock, Fixture, REDIRECT_URI};

/// The refresh tokens sent in refresh requests, with how often each was sent.
fn refresh_tokens_sent(requests: &[RecordedRequest]) -> HashMap<String, usize> {
    let mut sent = HashMap::new();
    for request in requests {
        let form: HashMap<_, _> = request.form_body().into_iter().collect();
        if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
            *sent
                .entry(form.get("refresh_token").cloned().unwrap_or_default())
                .or_insert(0) += 1;
        }
    }
    sent
}

async fn sign_in_accounts<M: CodeFlowMock>(
    fx: &Fixture<Hike, M>,
    manager: &TokenManager,
    prefix: &str,
    count: usize,
) -> Vec<TokenKey> {
    let mut keys = Vec::new();
    for i in 0..count {
        let key = TokenKey::new(fx.provider.id(), &format!("{prefix}{i}"));
        manager
            .insert(key.clone(), sign_in(fx).await.expect("signed in"))
            .await
            .unwrap();
        keys.push(key);
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_with_their_own_pools_refresh_each_key_once() {
    let Some(seed_store) = postgres_store().await else {
        return;
    };
    let fx = oauth2_adapters_tests::hike().await;
    let prefix = unique_prefix("pools");
    let seed = TokenManager::builder()
        .store(Arc::new(seed_store.clone()))
        .clock(Arc::new(fx.clock.clone()))
        .build()
        .unwrap();
    let keys = sign_in_accounts(&fx, &seed, &prefix, 5).await;

    let provider = Arc::new(fx.provider.clone());
    let mut managers = Vec::new();
    for _ in 0..4 {
        let store = postgres_store().await.expect("connected above");
        managers.push(
            TokenManager::builder()
                .store(Arc::new(store))
                .clock(Arc::new(fx.clock.clone()))
                .provider(provider.clone())
                .lease(Duration::from_secs(10), Duration::from_millis(10))
                .build()
                .unwrap(),
        );
    }
    fx.clock.advance(Duration::from_secs(3601));
    fx.mock.clear_requests();
    let mut tasks = Vec::new();
    for manager in &managers {
        for key in &keys {
            for _ in 0..25 {
                let (manager, key) = (manager.clone(), key.clone());
                tasks.push(tokio::spawn(async move { manager.get(&key).await }));
            }
        }
    }
    for task in tasks {
        task.await.unwrap().expect("every caller gets a token");
    }
    let sent = refresh_tokens_sent(&fx.mock.token_requests());
    assert_eq!(
        sent.len(),
        keys.len(),
        "one refresh per key in total: {sent:?}"
    );
    assert!(
        sent.values().all(|&n| n == 1),
        "no refresh token sent twice"
    );
    for key in &keys {
        let stored = seed_store.load(key).await.unwrap().expect("stored");
        assert!(fx
            .mock
            .is_refresh_token_valid(stored.record.refresh_token.as_deref().unwrap()));
        seed_store.delete(key).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_processes_share_one_store_without_reusing_a_refresh_token() {
    let Some(binary) = token_manager_binary() else {
        return;
    };
    let Some(store) = postgres_store().await else {
        return;
    };
    // Real time here: the processes have their own clocks. Tokens live 2 s,
    // so each is refreshed about every second while the workers run.
    let mock = HikeMock::start(
        MockConfig::default()
            .with_redirect_uri(REDIRECT_URI)
            .with_access_token_lifetime(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let hike = Hike::builder(ClientCredentials::new(
        mock.config().client_id.clone(),
        mock.config().client_secret.clone(),
    ))
    .base_url(mock.base_url().as_str())
    .build()
    .unwrap();
    let fx = Fixture {
        provider: hike,
        mock,
        clock: oauth2_adapters::ManualClock::at_unix(0),
    };
    let prefix = unique_prefix("procs");
    let seed = TokenManager::builder()
        .store(Arc::new(store.clone()))
        .build()
        .unwrap();
    let keys = sign_in_accounts(&fx, &seed, &prefix, 4).await;
    fx.mock.clear_requests();

    let url = oauth2_adapters_tests::external::database_url();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(&binary)
                .args([
                    "--postgres",
                    &url,
                    "--hike-url",
                    fx.mock.base_url().as_str(),
                ])
                .args([
                    "--client-id",
                    &fx.mock.config().client_id,
                    "--client-secret",
                    &fx.mock.config().client_secret,
                ])
                .args([
                    "--accounts",
                    "0",
                    "--prefix",
                    &prefix,
                    "--seconds",
                    "5",
                    "--quiet",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the worker starts")
        })
        .collect();
    for worker in workers {
        let output = tokio::task::spawn_blocking(move || worker.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "worker failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains(&format!("accounts={}", keys.len())),
            "{stdout}"
        );
    }

    let sent = refresh_tokens_sent(&fx.mock.token_requests());
    assert!(
        sent.len() >= keys.len() * 2,
        "the tokens were refreshed while the workers ran: {}",
        sent.len()
    );
    let reused: Vec<_> = sent.values().filter(|&&n| n > 1).collect();
    assert!(
        reused.is_empty(),
        "{} refresh tokens were sent more than once",
        reused.len()
    );
    for key in &keys {
        let stored = store.load(key).await.unwrap().expect("stored");
        let refresh = stored.record.refresh_token.clone().unwrap();
        assert!(
            fx.mock.is_refresh_token_valid(&refresh),
            "{key}: the stored refresh token is the live one"
        );
        store.delete(key).await.unwrap();
    }
}
