//! Transport and protocol safeguards: https-only endpoints (loopback
//! excepted), PKCE S256 on by default for standard providers, token
//! endpoint redirects never followed.

use oauth2_adapters::hike::Hike;
use oauth2_adapters::hypersku::HyperSku;
use oauth2_adapters::partner::Partner;
use oauth2_adapters::testkit::{Fault, HikeMock, MockConfig, MockServer};
use oauth2_adapters::{
    AuthorizationCodeProvider, AuthorizeRequest, CallbackParams, ClientCredentials, Error,
    ExposeSecret, StandardProvider,
};
use oauth2_adapters_tests::code_flow::sign_in;
use oauth2_adapters_tests::{context, credentials, REDIRECT_URI};

fn creds() -> ClientCredentials {
    ClientCredentials::new("client", "secret")
}

/// Builds each adapter for `base`, reporting whether it was accepted.
fn accepted(base: &str) -> [(&'static str, Result<(), Error>); 4] {
    let standard = StandardProvider::builder("standard")
        .authorize_url(format!("{base}/authorize"))
        .token_url(format!("{base}/token"))
        .build(creds())
        .map(drop);
    [
        (
            "HyperSKU",
            HyperSku::builder(creds()).base_url(base).build().map(drop),
        ),
        (
            "Hike",
            Hike::builder(creds()).base_url(base).build().map(drop),
        ),
        (
            "partner",
            Partner::builder(creds()).base_url(base).build().map(drop),
        ),
        ("standard", standard),
    ]
}

#[test]
fn token_endpoints_must_use_https_except_on_loopback() {
    for base in [
        "https://api.example.com",
        "http://127.0.0.1:8080",
        "http://[::1]:8080",
        "http://localhost:8080",
    ] {
        for (adapter, result) in accepted(base) {
            assert!(result.is_ok(), "{adapter} refused {base}: {result:?}");
        }
    }
    for base in [
        "http://api.example.com",
        "http://10.0.0.1",
        "http://127.0.0.1.example.com",
        "ftp://api.example.com",
    ] {
        for (adapter, result) in accepted(base) {
            assert!(
                matches!(result, Err(Error::Configuration { .. })),
                "{adapter} accepted {base}: {result:?}"
            );
        }
    }
}

#[tokio::test]
async fn standard_providers_use_pkce_s256_by_default() {
    let clock = oauth2_adapters::ManualClock::at_unix(oauth2_adapters_tests::START_UNIX);
    let mock = HikeMock::start(
        MockConfig::default()
            .with_redirect_uri(REDIRECT_URI)
            .with_clock(std::sync::Arc::new(clock.clone())),
    )
    .await
    .unwrap();
    let provider = StandardProvider::builder("hike")
        .authorize_url(mock.authorize_url().as_str())
        .token_url(mock.token_url().as_str())
        .client_auth(oauth2_adapters::ClientAuth::RequestBody)
        .default_scopes(["all"])
        .settings(context(&clock))
        .build(credentials(&mock))
        .unwrap();
    assert!(provider.uses_pkce(), "on by default");

    let (url, pending) = provider
        .authorize(AuthorizeRequest::new(REDIRECT_URI).unwrap())
        .unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    let verifier = pending
        .pkce_verifier()
        .expect("a verifier")
        .expose_secret()
        .to_owned();
    let expected = oauth2::PkceCodeChallenge::from_code_verifier_sha256(
        &oauth2::PkceCodeVerifier::new(verifier.clone()),
    );
    assert_eq!(query["code_challenge"], expected.as_str());

    let callback = mock.approve(&url).await.unwrap();
    provider
        .handle_callback(CallbackParams::from_url(&callback).unwrap(), pending)
        .await
        .expect("signed in");
    let exchange = mock.token_requests().pop().unwrap();
    let sent = exchange
        .form_body()
        .into_iter()
        .find(|(name, _)| name == "code_verifier")
        .map(|(_, value)| value);
    assert_eq!(sent, Some(verifier));
}

#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_never_followed() {
    let fx = oauth2_adapters_tests::hike().await;
    let elsewhere = HikeMock::start(MockConfig::default()).await.unwrap();
    fx.mock
        .push_fault(Fault::Redirect(elsewhere.token_url().to_string()));
    let err = sign_in(&fx).await.unwrap_err();
    assert_eq!(err.http_status(), Some(302), "{err:?}");
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}
