//! Runs every flow of every provider against the testkit's local mock
//! providers: no credentials, no network beyond 127.0.0.1.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! HyperSKU: code flow, then refresh. Hike: code flow, then refresh (the
//! refresh token rotates). Partner: client credentials, then re-acquire
//! (its tokens cannot be refreshed). A standard provider made from a spec
//! file with no code (`examples/providers/google.toml`, against the
//! testkit's spec-driven mock): code flow with PKCE and its extra
//! authorize parameters, refresh, then revocation. Each normalized token
//! is printed with secrets shown only as a short prefix. Exits with 0 only
//! if every flow succeeded.

use oauth2_adapters::hike::Hike;
use oauth2_adapters::hypersku::HyperSku;
use oauth2_adapters::partner::Partner;
use oauth2_adapters::testkit::{
    HikeMock, HyperSkuMock, MockConfig, MockServer, PartnerMock, SpecMock,
};
use oauth2_adapters::{
    AuthorizationCodeProvider, AuthorizeRequest, CallbackParams, ClientCredentials,
    ClientCredentialsProvider, ExposeSecret, Provider, ProviderSpec, RefreshTokenProvider,
    SpecProvider, Token,
};
use oauth2_adapters_examples::{token_table, BoxError};

const REDIRECT_URI: &str = "http://127.0.0.1:8976/callback";

fn credentials(config: &MockConfig) -> ClientCredentials {
    ClientCredentials::new(config.client_id.clone(), config.client_secret.clone())
}

async fn hypersku() -> Result<Vec<(String, Token)>, BoxError> {
    let mock = HyperSkuMock::start(MockConfig::default().with_redirect_uri(REDIRECT_URI)).await?;
    let provider = HyperSku::builder(credentials(mock.config()))
        .base_url(mock.base_url().as_str())
        .build()?;
    let (url, pending) = provider.authorize(AuthorizeRequest::new(REDIRECT_URI)?)?;
    let callback = mock.approve(&url).await?;
    let token = provider
        .handle_callback(CallbackParams::from_url(&callback)?, pending)
        .await?;
    let refreshed = provider.refresh(&token).await?;
    Ok(vec![
        ("HyperSKU: authorization code".into(), token),
        ("HyperSKU: refreshed".into(), refreshed),
    ])
}

async fn hike() -> Result<Vec<(String, Token)>, BoxError> {
    let mock = HikeMock::start(MockConfig::default().with_redirect_uri(REDIRECT_URI)).await?;
    let provider = Hike::builder(credentials(mock.config()))
        .base_url(mock.base_url().as_str())
        .build()?;
    let (url, pending) = provider.authorize(AuthorizeRequest::new(REDIRECT_URI)?)?;
    let callback = mock.approve(&url).await?;
    let token = provider
        .handle_callback(CallbackParams::from_url(&callback)?, pending)
        .await?;
    let refreshed = provider.refresh(&token).await?;
    let old = token
        .refresh_token
        .as_ref()
        .ok_or("Hike issued no refresh token")?;
    if mock.is_refresh_token_valid(old.expose_secret()) {
        return Err("Hike's old refresh token should have been rotated out".into());
    }
    Ok(vec![
        ("Hike: authorization code".into(), token),
        ("Hike: refreshed (refresh token rotated)".into(), refreshed),
    ])
}

async fn partner() -> Result<Vec<(String, Token)>, BoxError> {
    let mock = PartnerMock::start(MockConfig::default()).await?;
    let provider = Partner::builder(credentials(mock.config()))
        .base_url(mock.base_url().as_str())
        .build()?;
    let token = provider.client_credentials(&[]).await?;
    // The partner cannot refresh: renewing means requesting a new token.
    let reacquired = provider.client_credentials(&[]).await?;
    Ok(vec![
        ("Partner: client credentials".into(), token),
        ("Partner: re-acquired".into(), reacquired),
    ])
}

async fn from_spec() -> Result<Vec<(String, Token)>, BoxError> {
    let spec = ProviderSpec::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/providers/google.toml"
    ))?;
    let mock = SpecMock::start(
        spec.clone(),
        MockConfig::default().with_redirect_uri(REDIRECT_URI),
    )
    .await?;
    let provider = SpecProvider::builder(spec, mock.credentials())
        .base_url(mock.base_url().as_str())
        .build()?;
    let (url, pending) = provider.authorize(AuthorizeRequest::new(REDIRECT_URI)?)?;
    if !url
        .query_pairs()
        .any(|(k, v)| k == "access_type" && v == "offline")
    {
        return Err("the spec's extra authorize parameter was not sent".into());
    }
    let callback = mock.approve(&url).await?;
    let token = provider
        .handle_callback(CallbackParams::from_url(&callback)?, pending)
        .await?;
    let refreshed = provider.refresh(&token).await?;
    if !provider.revoke(&refreshed).await? {
        return Err("the spec names a revocation endpoint, but nothing was revoked".into());
    }
    Ok(vec![
        (
            "A spec file (google.toml): authorization code + PKCE".into(),
            token,
        ),
        (
            "A spec file (google.toml): refreshed, then revoked".into(),
            refreshed,
        ),
    ])
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let flows = [
        ("HyperSKU code flow + refresh", hypersku().await),
        ("Hike code flow + refresh", hike().await),
        ("Partner client credentials + re-acquire", partner().await),
        (
            "A provider from a spec file: code flow + refresh + revoke",
            from_spec().await,
        ),
    ];
    let mut failed = 0;
    for (name, outcome) in &flows {
        match outcome {
            Ok(tokens) => {
                for (title, token) in tokens {
                    println!("{}", token_table(title, token));
                }
            }
            Err(err) => {
                failed += 1;
                eprintln!("FAILED: {name}: {err}");
            }
        }
    }
    println!(
        "{} of {} flows succeeded",
        flows.len() - failed,
        flows.len()
    );
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
