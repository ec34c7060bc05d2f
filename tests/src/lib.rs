//! The behaviour suite's fixtures: each adapter wired to its testkit mock,
//! both on one [`ManualClock`], so expiries are exact and time can jump.
//!
//! The suite itself is in `tests/`: `behaviour.rs` runs the same checks
//! against every adapter; `wire_snapshots.rs` pins each request and token.

pub mod bad_input;
pub mod code_flow;
pub mod external;
pub mod trace_capture;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oauth2_adapters::hike::Hike;
use oauth2_adapters::hypersku::HyperSku;
use oauth2_adapters::partner::Partner;
use oauth2_adapters::testkit::{
    HikeMock, HyperSkuMock, MockConfig, MockError, MockServer, PartnerMock,
};
use oauth2_adapters::{
    ClientCredentials, HttpConfig, ManualClock, ProviderSettings, ProviderSpec, RetryPolicy,
    SpecProvider,
};
use url::Url;

/// The instant every fixture's clock starts at (2027-01-15T08:00:00Z).
pub const START_UNIX: u64 = 1_800_000_000;

/// The redirect URI registered with every mock.
pub const REDIRECT_URI: &str = "http://127.0.0.1:8976/callback";

/// The total request timeout of fixtures' HTTP clients (short, so the
/// timeout test is quick).
pub const HTTP_TIMEOUT: Duration = Duration::from_millis(1500);

/// An adapter, its mock and their shared clock.
pub struct Fixture<P, M> {
    /// The adapter under test, pointed at the mock.
    pub provider: P,
    /// The mock provider.
    pub mock: M,
    /// The clock shared by both.
    pub clock: ManualClock,
}

fn clock_and_config() -> (ManualClock, MockConfig) {
    let clock = ManualClock::at_unix(START_UNIX);
    let config = MockConfig::default()
        .with_redirect_uri(REDIRECT_URI)
        .with_clock(Arc::new(clock.clone()));
    (clock, config)
}

/// A context using `clock` and the fixtures' short timeout, without retries
/// (so each call makes exactly one attempt; `tests/faults.rs` tests retries).
pub fn context(clock: &ManualClock) -> ProviderSettings {
    context_with_retries(clock, RetryPolicy::never())
}

/// A context using `clock`, the fixtures' short timeout and `retry`.
pub fn context_with_retries(clock: &ManualClock, retry: RetryPolicy) -> ProviderSettings {
    ProviderSettings::with_http_config(&HttpConfig::default().with_timeout(HTTP_TIMEOUT))
        .expect("the HTTP client builds")
        .with_clock(Arc::new(clock.clone()))
        .with_retry_policy(retry)
}

/// The mock's registered credentials.
pub fn credentials(mock: &dyn MockServer) -> ClientCredentials {
    ClientCredentials::new(
        mock.config().client_id.clone(),
        mock.config().client_secret.clone(),
    )
}

/// HyperSKU against its mock.
pub async fn hypersku() -> Fixture<HyperSku, HyperSkuMock> {
    hypersku_with_retries(RetryPolicy::never()).await
}

/// Like [`hypersku`], with retries per `retry`.
pub async fn hypersku_with_retries(retry: RetryPolicy) -> Fixture<HyperSku, HyperSkuMock> {
    let (clock, config) = clock_and_config();
    let mock = HyperSkuMock::start(config).await.expect("the mock starts");
    let provider = HyperSku::builder(credentials(&mock))
        .base_url(mock.base_url().as_str())
        .settings(context_with_retries(&clock, retry))
        .build()
        .expect("the adapter builds");
    Fixture {
        provider,
        mock,
        clock,
    }
}

/// The spec file of a provider in `examples/providers/`.
pub fn provider_spec(name: &str) -> ProviderSpec {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/providers")
        .join(format!("{name}.toml"));
    ProviderSpec::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A provider made from `examples/providers/<name>.toml` with no code,
/// against `mock` (the adapter's twin in the behaviour suite).
pub fn spec_provider(
    name: &str,
    mock: &dyn MockServer,
    clock: &ManualClock,
    retry: RetryPolicy,
) -> SpecProvider {
    SpecProvider::builder(provider_spec(name), credentials(mock))
        .base_url(mock.base_url().as_str())
        .settings(context_with_retries(clock, retry))
        .build()
        .expect("the spec provider builds")
}

/// HyperSKU as data (`examples/providers/hypersku.toml`) against its mock.
pub async fn hypersku_spec() -> Fixture<SpecProvider, HyperSkuMock> {
    let (clock, config) = clock_and_config();
    let mock = HyperSkuMock::start(config).await.expect("the mock starts");
    let provider = spec_provider("hypersku", &mock, &clock, RetryPolicy::never());
    Fixture {
        provider,
        mock,
        clock,
    }
}

/// Hike as data (`examples/providers/hike.toml`) against its mock.
pub async fn hike_spec() -> Fixture<SpecProvider, HikeMock> {
    let (clock, config) = clock_and_config();
    let mock = HikeMock::start(config).await.expect("the mock starts");
    let provider = spec_provider("hike", &mock, &clock, RetryPolicy::never());
    Fixture {
        provider,
        mock,
        clock,
    }
}

/// Hike against its mock.
pub async fn hike() -> Fixture<Hike, HikeMock> {
    hike_with_retries(RetryPolicy::never()).await
}

/// Like [`hike`], with retries per `retry`.
pub async fn hike_with_retries(retry: RetryPolicy) -> Fixture<Hike, HikeMock> {
    let (clock, config) = clock_and_config();
    let mock = HikeMock::start(config).await.expect("the mock starts");
    let provider = Hike::builder(credentials(&mock))
        .base_url(mock.base_url().as_str())
        .settings(context_with_retries(&clock, retry))
        .build()
        .expect("the adapter builds");
    Fixture {
        provider,
        mock,
        clock,
    }
}

/// The partner API against its mock.
pub async fn partner() -> Fixture<Partner, PartnerMock> {
    partner_with_retries(RetryPolicy::never()).await
}

/// Like [`partner`], with retries per `retry`.
pub async fn partner_with_retries(retry: RetryPolicy) -> Fixture<Partner, PartnerMock> {
    let (clock, config) = clock_and_config();
    let mock = PartnerMock::start(config).await.expect("the mock starts");
    let provider = Partner::builder(credentials(&mock))
        .base_url(mock.base_url().as_str())
        .settings(context_with_retries(&clock, retry))
        .build()
        .expect("the adapter builds");
    Fixture {
        provider,
        mock,
        clock,
    }
}

/// A mock with an authorize page: approval and denial without a browser.
#[async_trait]
pub trait CodeFlowMock: MockServer {
    /// Approves the authorization; returns the callback URL.
    async fn approve_url(&self, authorize_url: &Url) -> Result<Url, MockError>;
    /// Denies the authorization; returns the callback URL.
    async fn deny_url(&self, authorize_url: &Url) -> Result<Url, MockError>;
}

#[async_trait]
impl CodeFlowMock for HyperSkuMock {
    async fn approve_url(&self, authorize_url: &Url) -> Result<Url, MockError> {
        self.approve(authorize_url).await
    }
    async fn deny_url(&self, authorize_url: &Url) -> Result<Url, MockError> {
        self.deny(authorize_url).await
    }
}

#[async_trait]
impl CodeFlowMock for HikeMock {
    async fn approve_url(&self, authorize_url: &Url) -> Result<Url, MockError> {
        self.approve(authorize_url).await
    }
    async fn deny_url(&self, authorize_url: &Url) -> Result<Url, MockError> {
        self.deny(authorize_url).await
    }
}
