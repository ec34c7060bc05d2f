//! Signs a Hike store in (authorization code), then refreshes its token (the refresh token rotates).
//!
//! Against the testkit's local mock, no credentials needed:
//!
//! ```text
//! cargo run --example hike -- --sandbox
//! ```
//!
//! Against the real provider:
//!
//! ```text
//! HIKE_CLIENT_ID=<App Id> HIKE_CLIENT_SECRET=<App Secret> cargo run --example hike
//! ```
//!
//! Optional: `HIKE_REDIRECT_PORT` (default 8976). A callback server listens on
//! `http://127.0.0.1:PORT/callback`, which must be the redirect URI registered
//! for the app. The example prints the authorize URL; open it in a browser and
//! approve. With `--sandbox` the same code runs, the testkit approving instead.

use oauth2_adapters::hike::Hike;
use oauth2_adapters::testkit::{HikeMock, MockConfig, MockServer};
use oauth2_adapters::{ClientCredentials, RefreshTokenProvider};
use oauth2_adapters_examples::{
    env_var, sandbox_requested, sign_in, token_table, Approver, BoxError, CallbackServer,
};

const DEFAULT_PORT: u16 = 8976;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let sandbox = sandbox_requested();
    let port = match std::env::var("HIKE_REDIRECT_PORT") {
        Ok(port) => port.parse()?,
        Err(_) if sandbox => 0,
        Err(_) => DEFAULT_PORT,
    };
    let mut callback = CallbackServer::start(port).await?;
    let (provider, approver, _mock) = if sandbox {
        let config = MockConfig::default().with_redirect_uri(callback.redirect_uri().as_str());
        let mock = HikeMock::start(config).await?;
        let credentials = ClientCredentials::new(
            mock.config().client_id.clone(),
            mock.config().client_secret.clone(),
        );
        let provider = Hike::builder(credentials)
            .base_url(mock.base_url().as_str())
            .build()?;
        let approving = mock.clone();
        let approver = Approver::Sandbox(Box::new(move |url| {
            let mock = approving.clone();
            Box::pin(async move { Ok(mock.approve(&url).await?) })
        }));
        (provider, approver, Some(mock))
    } else {
        let credentials =
            ClientCredentials::new(env_var("HIKE_CLIENT_ID")?, env_var("HIKE_CLIENT_SECRET")?);
        (Hike::builder(credentials).build()?, Approver::Person, None)
    };

    let token = sign_in(&provider, &mut callback, &approver).await?;
    println!("{}", token_table("signed in", &token));
    let refreshed = provider.refresh(&token).await?;
    println!("{}", token_table("refreshed", &refreshed));
    Ok(())
}
