//! No secret in any tracing output, at TRACE level, during every flow: a
//! capturing subscriber records everything the library, the `oauth2`
//! crate, `reqwest` and `hyper` emit while every adapter signs in,
//! refreshes, fails in every way the testkit can make it fail, and runs
//! under the token manager; every value and error is also logged with
//! `Debug` and `Display`. Then no client secret, code, state, PKCE
//! verifier, access or refresh token may appear anywhere in the capture.

use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters::manager::TokenManager;
use oauth2_adapters::testkit::{Fault, MockServer};
use oauth2_adapters::{
    AuthorizationCodeProvider, AuthorizeRequest, CallbackParams, ClientCredentialsProvider,
    ExposeSecret, MemoryStore, Provider, RetryPolicy, StandardProvider, Token, TokenKey,
    TokenStore,
};
use oauth2_adapters_tests::code_flow::CodeFlowProvider;
use oauth2_adapters_tests::trace_capture::TraceCapture;
use oauth2_adapters_tests::{
    context_with_retries, credentials, CodeFlowMock, Fixture, REDIRECT_URI,
};

/// Secrets seen during the run, by label.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, label: impl Into<String>, secret: &str) {
        if !secret.is_empty() {
            self.0.push((label.into(), secret.to_owned()));
        }
    }

    fn add_token(&mut self, label: &str, token: &Token) {
        self.add(
            format!("{label} access token"),
            token.access_token.expose_secret(),
        );
        if let Some(refresh) = &token.refresh_token {
            self.add(format!("{label} refresh token"), refresh.expose_secret());
        }
    }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(3)
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
}

/// Logs a result the way an application would, in every format.
fn log<T: std::fmt::Debug, E: std::fmt::Debug + std::fmt::Display>(
    what: &str,
    result: &Result<T, E>,
) {
    match result {
        Ok(value) => tracing::info!(what, value = ?value, "ok"),
        Err(error) => tracing::error!(what, error = %error, debug = ?error, "failed"),
    }
}

/// Sign-in, refresh, faults, a spent refresh token, a tampered state.
async fn code_flows<P: CodeFlowProvider + std::fmt::Debug, M: CodeFlowMock>(
    label: &str,
    fx: &Fixture<P, M>,
    secrets: &mut Secrets,
) {
    secrets.add(
        format!("{label} client secret"),
        &fx.mock.config().client_secret,
    );
    tracing::debug!(provider = ?fx.provider, "provider");

    let (url, pending) = fx
        .provider
        .authorize(AuthorizeRequest::new(REDIRECT_URI).unwrap())
        .unwrap();
    secrets.add(format!("{label} state"), pending.state().expose_secret());
    if let Some(verifier) = pending.pkce_verifier() {
        secrets.add(format!("{label} PKCE verifier"), verifier.expose_secret());
    }
    tracing::debug!(pending = ?pending, "pending authorization");
    let callback = fx.mock.approve_url(&url).await.unwrap();
    let params = CallbackParams::from_url(&callback).unwrap();
    if let Some((_, code)) = callback.query_pairs().find(|(k, _)| k == "code") {
        secrets.add(format!("{label} code"), &code);
    }
    tracing::debug!(params = ?params, "callback");
    let token = fx.provider.handle_callback(params, pending).await;
    log("sign-in", &token);
    let token = token.unwrap();
    secrets.add_token(label, &token);

    let refreshed = fx.provider.refresh(&token).await;
    log("refresh", &refreshed);
    let refreshed = refreshed.unwrap();
    secrets.add_token(label, &refreshed);
    // The spent refresh token: re-authorization required.
    log("spent refresh", &fx.provider.refresh(&token).await);

    for fault in [
        Fault::Status(503),
        Fault::RetryAfter {
            status: 429,
            seconds: 0,
        },
        Fault::MalformedBody,
        Fault::Redirect("https://attacker.example/steal".into()),
        Fault::ResetMidBody,
    ] {
        fx.mock.push_fault(fault);
        let result = fx.provider.refresh(&refreshed).await;
        log("refresh with a fault", &result);
        if let Ok(token) = &result {
            secrets.add_token(label, token);
        }
    }

    // A tampered state: rejected before any request.
    let (url, pending) = fx
        .provider
        .authorize(AuthorizeRequest::new(REDIRECT_URI).unwrap())
        .unwrap();
    secrets.add(
        format!("{label} second state"),
        pending.state().expose_secret(),
    );
    let callback = fx.mock.approve_url(&url).await.unwrap();
    let mut query: Vec<(String, String)> = callback.query_pairs().into_owned().collect();
    for (name, value) in &mut query {
        if name == "code" {
            secrets.add(format!("{label} second code"), value);
        }
        if name == "state" {
            value.push('x');
        }
    }
    let tampered = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    let result = fx
        .provider
        .handle_callback(CallbackParams::from_query(&tampered).unwrap(), pending)
        .await;
    log("tampered state", &result);
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_appears_in_any_tracing_output_during_every_flow() {
    let capture = TraceCapture::start();
    let mut secrets = Secrets::default();

    let hypersku = oauth2_adapters_tests::hypersku_with_retries(quick_retries()).await;
    code_flows("HyperSKU", &hypersku, &mut secrets).await;
    let hike = oauth2_adapters_tests::hike_with_retries(quick_retries()).await;
    code_flows("Hike", &hike, &mut secrets).await;

    // A standard provider with PKCE (S256) on, against the Hike mock.
    let pkce = StandardProvider::builder("hike")
        .authorize_url(hike.mock.authorize_url().as_str())
        .token_url(hike.mock.token_url().as_str())
        .client_auth(oauth2_adapters::ClientAuth::RequestBody)
        .default_scopes(["all"])
        .settings(context_with_retries(&hike.clock, quick_retries()))
        .build(credentials(&hike.mock))
        .unwrap();
    assert!(pkce.uses_pkce());
    let pkce = Fixture {
        provider: pkce,
        mock: hike.mock,
        clock: hike.clock,
    };
    code_flows("PKCE", &pkce, &mut secrets).await;

    // Client credentials, with faults that are retried.
    let partner = oauth2_adapters_tests::partner_with_retries(quick_retries()).await;
    secrets.add(
        "partner client secret",
        &partner.mock.config().client_secret,
    );
    partner.mock.push_fault(Fault::Status(503));
    partner.mock.push_fault(Fault::ResetMidBody);
    let token = partner.provider.client_credentials(&[]).await;
    log("client credentials", &token);
    secrets.add_token("partner", &token.unwrap());

    // The token manager: insert, get, a due refresh, a forced refresh, events.
    let store = Arc::new(MemoryStore::new());
    let manager = TokenManager::builder()
        .store(store.clone())
        .clock(Arc::new(hypersku.clock.clone()))
        .provider(Arc::new(hypersku.provider.clone()))
        .provider(Arc::new(partner.provider.clone()))
        .on_event(|event| tracing::info!(event = ?event, "token event"))
        .build()
        .unwrap();
    let signed_in = oauth2_adapters_tests::code_flow::sign_in(&hypersku)
        .await
        .unwrap();
    secrets.add_token("manager sign-in", &signed_in);
    let key = TokenKey::new(hypersku.provider.id(), "store-1");
    let access = manager.insert(key.clone(), signed_in).await.unwrap();
    tracing::debug!(access = ?access, manager = ?manager, "inserted");
    hypersku.clock.advance(Duration::from_secs(3590));
    let renewed = manager.get(&key).await.unwrap();
    secrets.add("manager refreshed access token", renewed.expose_secret());
    let forced = manager.force_refresh(&key, &renewed).await.unwrap();
    secrets.add("manager forced access token", forced.expose_secret());
    let partner_key = TokenKey::new(partner.provider.id(), "app");
    let reacquired = manager.get(&partner_key).await.unwrap();
    secrets.add("manager partner access token", reacquired.expose_secret());
    for token in [&renewed, &forced, &reacquired] {
        tracing::debug!(token = ?token, "access token");
    }
    // The refresh token the manager rotated last is only in the store.
    let stored = store.load(&key).await.unwrap().expect("stored");
    tracing::debug!(stored = ?stored, "stored");
    secrets.add_token("manager stored", &Token::from_record(stored.record));

    let spans = capture.spans("oauth2_adapters.token_request");
    assert!(
        spans.len() >= 20,
        "every flow traced: {} spans",
        spans.len()
    );
    assert!(!capture.spans("oauth2_adapters.refresh").is_empty());
    let secrets: Vec<(&str, &str)> = secrets
        .0
        .iter()
        .map(|(label, secret)| (label.as_str(), secret.as_str()))
        .collect();
    assert!(secrets.len() >= 30, "{} secrets collected", secrets.len());
    capture.assert_free_of(&secrets);
}

/// The capture is not blind: a secret logged by a dependency through `log`,
/// or put in a span field, is found.
#[tokio::test(flavor = "current_thread")]
async fn the_capture_finds_a_leaked_secret() {
    let capture = TraceCapture::start();
    log_crate_leak();
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        capture.assert_free_of(&[("planted", "pl4nted-s3cret")])
    }));
    assert!(found.is_err(), "a secret logged through `log` is found");

    let capture = TraceCapture::start();
    let span = tracing::info_span!("leaky", field = tracing::field::Empty);
    span.record("field", "pl4nted-s3cret");
    drop(span);
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        capture.assert_free_of(&[("planted", "pl4nted-s3cret")])
    }));
    assert!(found.is_err(), "a secret in a span field is found");
}

fn log_crate_leak() {
    tracing_log::log::trace!(target: "reqwest::connect", "header: Bearer pl4nted-s3cret");
}
