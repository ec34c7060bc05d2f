//! `BearerAuth` against the testkit's HyperSKU and its protected API: the
//! header, the one forced refresh and one retry on a 401, the cases that
//! are not retried, the manager's errors, and 50 concurrent 401s.

mod fixture;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fixture::{client, requests_to, sign_in, Fixture};
use oauth2_adapters_core::manager::TokenManager;
use oauth2_adapters_core::{
    Error, ExposeSecret, Provider, ReauthorizationReason, RefreshTokenProvider, TokenKey,
};
use oauth2_adapters_middleware::{token_error, BearerAuth};
use oauth2_adapters_testkit::{HikeMock, MockConfig, MockServer};
use serde_json::{json, Value};

const ME: &str = "/api/v1/me";
const ECHO: &str = "/api/v1/echo";

#[tokio::test]
async fn sets_a_sensitive_bearer_header() {
    let fx = Fixture::start().await;
    let response = fx.client.get(fx.mock.me_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["subject"], "hs-user-1");

    let access = fx.token.access_token.expose_secret();
    let sent = fx.requests_to(ME);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {access}").as_str())
    );
    let seen = fx.seen.lock().unwrap().clone();
    assert!(seen[0].sensitive, "the header value is marked sensitive");
    assert!(
        !seen[0].request_debug.contains(access),
        "the request's Debug hides the token"
    );
    assert_eq!(fx.refreshes(), 0);
    assert!(!format!("{:?}", BearerAuth::new(fx.manager.clone(), fx.key.clone())).contains(access));
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_and_the_request_retried_once() {
    let fx = Fixture::start().await;
    let old = fx.token.access_token.expose_secret().to_owned();
    fx.mock.revoke_access_tokens();

    let response = fx.client.get(fx.mock.me_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(fx.refreshes(), 1, "exactly one forced refresh");
    let sent = fx.requests_to(ME);
    assert_eq!(sent.len(), 2, "the request and one retry");
    let new = fx.current_token().await;
    assert_ne!(new, old);
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {old}").as_str())
    );
    assert_eq!(
        sent[1].header("authorization"),
        Some(format!("Bearer {new}").as_str())
    );
    assert!(fx.seen.lock().unwrap().iter().all(|s| s.sensitive));
}

#[tokio::test]
async fn the_retry_replays_the_body() {
    let fx = Fixture::start().await;
    fx.mock.revoke_access_tokens();
    let body = json!({"order": 42, "lines": ["a", "b"]});

    let response = fx
        .client
        .post(fx.mock.echo_url())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["echo"], body);
    let sent = fx.requests_to(ECHO);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].json_body(), Some(body.clone()));
    assert_eq!(sent[1].json_body(), Some(body));
    assert_eq!(fx.refreshes(), 1);
}

#[tokio::test]
async fn a_401_that_persists_is_returned_after_one_retry() {
    let fx = Fixture::start().await;
    // An API that accepts none of HyperSKU's tokens: the Hike mock's.
    let stranger = HikeMock::start(MockConfig::default()).await.unwrap();

    let response = fx.client.get(stranger.me_url()).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert_eq!(
        requests_to(&stranger, ME).len(),
        2,
        "one request, one retry, no more"
    );
    assert_eq!(fx.refreshes(), 1, "one forced refresh");
}

#[tokio::test]
async fn an_api_that_keeps_refusing_costs_one_forced_refresh_per_interval() {
    let fx = Fixture::start().await;
    let stranger = HikeMock::start(MockConfig::default()).await.unwrap();
    let auth = BearerAuth::new(fx.manager.clone(), fx.key.clone())
        .with_forced_refresh_interval(Duration::from_millis(400));
    let client = client(auth, &fx.seen);
    for _ in 0..20 {
        let response = client.get(stranger.me_url()).send().await.unwrap();
        assert_eq!(response.status(), 401);
    }
    assert_eq!(fx.refreshes(), 1, "20 refusals, one forced refresh");
    assert_eq!(
        requests_to(&stranger, ME).len(),
        21,
        "one retry after the refresh, then each 401 returned as is"
    );
    // After the interval, a 401 may force one more refresh.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let response = client.get(stranger.me_url()).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(fx.refreshes(), 2);
}

#[tokio::test]
async fn a_body_that_cannot_be_replayed_is_not_retried() {
    let fx = Fixture::start().await;
    fx.mock.revoke_access_tokens();
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(r#"{"streamed":true}"#)]);
    let body = reqwest::Body::wrap_stream(chunks);

    let response = fx
        .client
        .post(fx.mock.echo_url())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "the 401 is returned as is");
    assert_eq!(fx.requests_to(ECHO).len(), 1, "no retry");
    assert_eq!(
        fx.refreshes(),
        1,
        "the rejected token was refreshed all the same"
    );

    // So the caller's own retry goes through at once.
    let response = fx
        .client
        .post(fx.mock.echo_url())
        .json(&json!(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(fx.requests_to(ECHO).len(), 2);
    assert_eq!(fx.refreshes(), 1);
}

#[tokio::test]
async fn a_key_without_a_token_fails_with_the_managers_error() {
    let fx = Fixture::start().await;
    let nobody = TokenKey::new(fx.provider.id(), "never-signed-in");

    let error = fx
        .client
        .get(fx.mock.me_url())
        .with_extension(nobody)
        .send()
        .await
        .expect_err("no token for the key");
    let cause = token_error(&error).expect("the manager's error");
    assert!(matches!(
        cause,
        Error::ReauthorizationRequired {
            reason: ReauthorizationReason::NotAuthorized,
            ..
        }
    ));
    assert!(
        matches!(error, reqwest_middleware::Error::Middleware(ref e) if e.downcast_ref::<Error>().is_some())
    );
    assert!(fx.requests_to(ME).is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_rejected_refresh_during_the_retry_asks_for_reauthorization() {
    let fx = Fixture::start().await;
    // Another client rotates the refresh token behind the manager's back.
    fx.provider.refresh(&fx.token).await.unwrap();
    fx.mock.revoke_access_tokens();

    let error = fx
        .client
        .get(fx.mock.me_url())
        .send()
        .await
        .expect_err("the refresh token is spent");
    let cause = token_error(&error).expect("the manager's error");
    assert!(cause.requires_reauthorization(), "{cause:?}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains(fx.token.access_token.expose_secret()));
    assert_eq!(fx.requests_to(ME).len(), 1, "no retry without a new token");
}

#[tokio::test]
async fn a_request_key_extension_selects_the_account() {
    let fx = Fixture::start().await;
    let other = TokenKey::new(fx.provider.id(), "second-account");
    let second = sign_in(&fx.provider, &fx.mock).await;
    fx.manager
        .insert(other.clone(), second.clone())
        .await
        .unwrap();

    let response = fx
        .client
        .get(fx.mock.me_url())
        .with_extension(other)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = fx.requests_to(ME);
    let expected = format!("Bearer {}", second.access_token.expose_secret());
    assert_eq!(sent[0].header("authorization"), Some(expected.as_str()));
}

/// 50 requests on one revoked token: every one gets a 401, and all their
/// forced refreshes share one flight in the manager, so one refresh reaches
/// the provider; each request is retried once with the new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_401s_cause_one_refresh() {
    const REQUESTS: usize = 50;
    let fx = Fixture::start().await;
    fx.mock.revoke_access_tokens();

    let tasks: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let request = fx.client.get(fx.mock.me_url());
            tokio::spawn(async move { request.send().await.map(|r| r.status()) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 200);
    }
    assert_eq!(fx.refreshes(), 1, "one refresh for all 50 rejections");
    let sent = fx.requests_to(ME).len();
    assert!(
        (REQUESTS + 1..=2 * REQUESTS).contains(&sent),
        "each request retried at most once: {sent}"
    );
}

#[tokio::test]
async fn a_manager_without_the_key_or_renewer_never_sends() {
    let fx = Fixture::start().await;
    let empty = TokenManager::builder().build().expect("the manager builds");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let api = client(BearerAuth::new(empty, fx.key.clone()), &seen);

    let error = api
        .get(fx.mock.me_url())
        .send()
        .await
        .expect_err("no renewer");
    assert!(token_error(&error).is_some(), "{error}");
    assert!(seen.lock().unwrap().is_empty());
}
