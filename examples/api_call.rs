//! Calls a provider's API through `reqwest-middleware` with the token
//! manager's access token, and shows what happens when the API rejects it:
//! one forced refresh, one retry. Runs against the testkit's HyperSKU mock
//! and its protected API (no credentials, nothing beyond 127.0.0.1).
//!
//! ```text
//! cargo run --example api_call
//! ```
//!
//! Steps: sign in through a local callback server (the mock approves, no
//! browser), keep the token in a `TokenManager`, build a
//! `ClientWithMiddleware` with `BearerAuth`, call `GET /api/v1/me`; then
//! revoke the access token at the mock (as a provider does when a user
//! disconnects the app) while the manager still holds it, and call
//! `POST /api/v1/echo`: the API answers 401, the middleware refreshes the
//! token once and replays the request once. Tokens are never printed: the
//! requests the mock saw show them as `<token vN>`.

use std::sync::Arc;

use oauth2_adapters::hypersku::HyperSku;
use oauth2_adapters::manager::{TokenEvent, TokenManager};
use oauth2_adapters::middleware::BearerAuth;
use oauth2_adapters::testkit::{HyperSkuMock, MockConfig, MockServer};
use oauth2_adapters::{ClientCredentials, Provider, TokenKey};
use oauth2_adapters_examples::{sign_in, Approver, BoxError, CallbackServer};
use reqwest_middleware::ClientBuilder;
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut callback = CallbackServer::start(0).await?;
    let config = MockConfig::default().with_redirect_uri(callback.redirect_uri().as_str());
    let mock = HyperSkuMock::start(config).await?;
    let credentials = ClientCredentials::new(
        mock.config().client_id.clone(),
        mock.config().client_secret.clone(),
    );
    let provider = Arc::new(
        HyperSku::builder(credentials)
            .base_url(mock.base_url().as_str())
            .build()?,
    );
    let approving = mock.clone();
    let approver = Approver::Sandbox(Box::new(move |url| {
        let mock = approving.clone();
        Box::pin(async move { Ok(mock.approve(&url).await?) })
    }));
    let token = sign_in(provider.as_ref(), &mut callback, &approver).await?;
    println!("1. signed in at the HyperSKU mock on {}", mock.base_url());

    let manager = TokenManager::builder()
        .provider(provider.clone())
        .on_event(|event| {
            if let TokenEvent::Refreshed { key, version, .. } = event {
                println!("   token manager: refreshed {key}, now version {version}");
            }
        })
        .build()?;
    let key = TokenKey::new(provider.id(), "hs-user-1");
    let first = manager.insert(key.clone(), token).await?;
    let api = ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(manager.clone(), key.clone()))
        .build();

    let me: Value = api
        .get(mock.me_url())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!("2. GET /api/v1/me -> 200 {me}");

    let revoked = mock.revoke_access_tokens();
    println!(
        "3. the mock revoked {revoked} access token(s); the manager still holds version {}",
        first.version()
    );
    mock.clear_requests();
    let response = api
        .post(mock.echo_url())
        .json(&json!({"order": 42}))
        .send()
        .await?;
    let status = response.status();
    let echo: Value = response.json().await?;
    println!("4. POST /api/v1/echo -> {status} {echo}");

    let second = manager.get(&key).await?;
    let names = [
        (first.expose_secret(), "<token v1>"),
        (second.expose_secret(), "<token v2>"),
    ];
    let seen = mock.requests();
    println!("   what the mock received:");
    for request in &seen {
        let request = request.redacted(&names);
        let authorization = request.header("authorization").unwrap_or("-");
        println!(
            "     {} {}  authorization: {authorization}",
            request.method, request.path
        );
    }
    if !status.is_success() || seen.len() != 3 || second.version() == first.version() {
        return Err("expected a 401, one refresh and one successful retry".into());
    }
    println!("5. one 401, one refresh, one retry: done");
    // Before exiting: let any refresh still running finish and be stored.
    manager.shutdown(std::time::Duration::from_secs(60)).await;
    Ok(())
}
