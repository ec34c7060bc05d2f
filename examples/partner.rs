//! Requests a partner bookings API token (client credentials), then
//! re-acquires one the way the token manager does when it expires: the
//! partner's tokens cannot be refreshed.
//!
//! Against the testkit's local mock, no credentials needed:
//!
//! ```text
//! cargo run --example partner -- --sandbox
//! ```
//!
//! Against the real API:
//!
//! ```text
//! PARTNER_BASE_URL=https://<host> PARTNER_CLIENT_ID=<id> PARTNER_CLIENT_SECRET=<secret> cargo run --example partner
//! ```

use oauth2_adapters::partner::Partner;
use oauth2_adapters::testkit::{MockConfig, MockServer, PartnerMock};
use oauth2_adapters::{ClientCredentials, ClientCredentialsProvider};
use oauth2_adapters_examples::{env_var, sandbox_requested, token_table, BoxError};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let (provider, _mock) = if sandbox_requested() {
        let mock = PartnerMock::start(MockConfig::default()).await?;
        let credentials = ClientCredentials::new(
            mock.config().client_id.clone(),
            mock.config().client_secret.clone(),
        );
        let provider = Partner::builder(credentials)
            .base_url(mock.base_url().as_str())
            .build()?;
        (provider, Some(mock))
    } else {
        let credentials = ClientCredentials::new(
            env_var("PARTNER_CLIENT_ID")?,
            env_var("PARTNER_CLIENT_SECRET")?,
        );
        let provider = Partner::builder(credentials)
            .base_url(env_var("PARTNER_BASE_URL")?)
            .build()?;
        (provider, None)
    };
    let token = provider.client_credentials(&[]).await?;
    println!("{}", token_table("client credentials", &token));
    let reacquired = provider.client_credentials(&[]).await?;
    println!("{}", token_table("re-acquired", &reacquired));
    Ok(())
}
