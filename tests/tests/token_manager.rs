//! The token manager against the testkit's providers: 1,000 concurrent
//! callers on an expired token cause exactly one request, for each provider;
//! cancelling the first caller fails nobody; rotated tokens are stored.

use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters::manager::TokenManager;
use oauth2_adapters::testkit::{Fault, MockServer};
use oauth2_adapters::{ExposeSecret, MemoryStore, Provider, TokenKey, TokenStore};
use oauth2_adapters_tests::code_flow::{sign_in, CodeFlowProvider};
use oauth2_adapters_tests::{CodeFlowMock, Fixture};

const CALLERS: usize = 1000;

async fn concurrent_gets(manager: &TokenManager, key: &TokenKey) -> Vec<String> {
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (manager, key) = (manager.clone(), key.clone());
            tokio::spawn(async move { manager.get(&key).await })
        })
        .collect();
    let mut secrets = Vec::with_capacity(CALLERS);
    for task in tasks {
        let token = task.await.expect("no panic").expect("a token");
        secrets.push(token.expose_secret().to_owned());
    }
    secrets
}

/// Signs in, hands the token to a manager, expires it, and sends 1,000
/// concurrent callers: exactly one refresh reaches the mock, everyone gets
/// its result, and the rotated refresh token is what the store holds.
async fn one_refresh_for_many_callers<P, M>(fx: Fixture<P, M>)
where
    P: CodeFlowProvider + 'static,
    M: CodeFlowMock,
{
    let token = sign_in(&fx).await.expect("signed in");
    let Fixture {
        provider,
        mock,
        clock,
    } = fx;
    let provider = Arc::new(provider);
    let store = Arc::new(MemoryStore::new());
    let manager = TokenManager::builder()
        .store(store.clone())
        .clock(Arc::new(clock.clone()))
        .provider(provider.clone())
        .build()
        .unwrap();
    let first_refresh = token.refresh_token.clone().expect("a refresh token");
    let key = TokenKey::new(provider.id(), "account-1");
    manager.insert(key.clone(), token).await.unwrap();

    clock.advance(Duration::from_secs(3601));
    mock.clear_requests();
    let secrets = concurrent_gets(&manager, &key).await;
    assert_eq!(
        mock.token_requests().len(),
        1,
        "exactly one request to the provider"
    );
    assert!(
        secrets.iter().all(|s| s == &secrets[0]),
        "everyone got the same token"
    );

    let stored = store.load(&key).await.unwrap().expect("stored");
    let rotated = stored
        .record
        .refresh_token
        .expect("a refresh token is stored");
    assert_ne!(rotated, first_refresh.expose_secret());
    assert!(
        mock.is_refresh_token_valid(&rotated),
        "the stored refresh token is the live one"
    );
    assert!(!mock.is_refresh_token_valid(first_refresh.expose_secret()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hypersku_one_refresh_for_1000_callers() {
    one_refresh_for_many_callers(oauth2_adapters_tests::hypersku().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hike_one_refresh_for_1000_callers() {
    one_refresh_for_many_callers(oauth2_adapters_tests::hike().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_one_request_for_1000_callers_cold_and_expired() {
    let fx = oauth2_adapters_tests::partner().await;
    let provider = Arc::new(fx.provider);
    let manager = TokenManager::builder()
        .clock(Arc::new(fx.clock.clone()))
        .provider(provider.clone())
        .build()
        .unwrap();
    let key = TokenKey::new(provider.id(), "partner-client");

    let cold = concurrent_gets(&manager, &key).await;
    assert_eq!(
        fx.mock.token_requests().len(),
        1,
        "one acquisition for the cold key"
    );
    fx.clock.advance(Duration::from_secs(3601));
    let renewed = concurrent_gets(&manager, &key).await;
    assert_eq!(
        fx.mock.token_requests().len(),
        2,
        "one re-acquisition for the expired key"
    );
    assert_ne!(cold[0], renewed[0]);
    assert!(renewed.iter().all(|s| s == &renewed[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_first_caller_mid_refresh_fails_nobody() {
    let fx = oauth2_adapters_tests::hike().await;
    let token = sign_in(&fx).await.unwrap();
    let Fixture {
        provider,
        mock,
        clock,
    } = fx;
    let provider = Arc::new(provider);
    let manager = TokenManager::builder()
        .clock(Arc::new(clock.clone()))
        .provider(provider.clone())
        .build()
        .unwrap();
    let key = TokenKey::new(provider.id(), "store-1");
    manager.insert(key.clone(), token).await.unwrap();
    clock.advance(Duration::from_secs(3601));
    mock.clear_requests();
    mock.push_fault(Fault::Delay(Duration::from_millis(400)));

    let first = {
        let (manager, key) = (manager.clone(), key.clone());
        tokio::spawn(async move { manager.get(&key).await })
    };
    // Let the first caller start the refresh, then cancel it.
    while mock.token_requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let others: Vec<_> = (0..50)
        .map(|_| {
            let (manager, key) = (manager.clone(), key.clone());
            tokio::spawn(async move { manager.get(&key).await })
        })
        .collect();
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    for other in others {
        other
            .await
            .unwrap()
            .expect("the refresh finished for the others");
    }
    assert_eq!(mock.token_requests().len(), 1);
}
