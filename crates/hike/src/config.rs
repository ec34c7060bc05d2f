//! Hike's endpoints and options.

use oauth2_adapters_core::adapter::endpoint_url;
use oauth2_adapters_core::{
    ClientCredentials, Pkce, ProviderSettings, ProviderSpec, Result, SpecProvider,
};

use crate::provider::Hike;

/// Hike's API host.
pub const DEFAULT_BASE_URL: &str = "https://api.hikeup.com";
/// The only scope Hike offers today.
pub const DEFAULT_SCOPE: &str = "all";
const AUTHORIZE_PATH: &str = "/oauth/authorize";
const TOKEN_PATH: &str = "/oauth/token";

/// Configures a [`Hike`] adapter.
#[derive(Debug, Clone)]
pub struct HikeBuilder {
    credentials: ClientCredentials,
    base_url: String,
    scopes: Vec<String>,
    pkce: bool,
    settings: Option<ProviderSettings>,
}

impl HikeBuilder {
    pub(crate) fn new(credentials: ClientCredentials) -> Self {
        Self {
            credentials,
            base_url: DEFAULT_BASE_URL.to_owned(),
            scopes: vec![DEFAULT_SCOPE.to_owned()],
            pkce: false,
            settings: None,
        }
    }

    /// The host serving `/oauth/authorize` and `/oauth/token`
    /// (default [`DEFAULT_BASE_URL`]; the testkit's mock in tests).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The scopes asked for by default (default `["all"]`).
    pub fn default_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sends PKCE (S256). Off by default: Hike's documentation does not
    /// mention PKCE, and a server that rejects unknown parameters would
    /// fail the exchange.
    pub fn pkce(mut self, on: bool) -> Self {
        self.pkce = on;
        self
    }

    /// Uses these HTTP settings, retry policy and clock instead of the defaults.
    pub fn settings(mut self, settings: ProviderSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// The [`ProviderSpec`] this configuration amounts to: Hike's
    /// documented dialect ([`default_spec`](crate::default_spec), the same
    /// as `examples/providers/hike.toml`) with this builder's settings.
    pub fn to_spec(&self) -> Result<ProviderSpec> {
        let mut spec = crate::default_spec()?;
        if let Some(authorize) = spec.authorize.as_mut() {
            authorize.url =
                endpoint_url("Hike's authorize URL", &self.base_url, AUTHORIZE_PATH)?.to_string();
            authorize.default_scopes = self.scopes.clone();
            authorize.pkce = if self.pkce { Pkce::On } else { Pkce::Off };
        }
        spec.token.url = endpoint_url("Hike's token URL", &self.base_url, TOKEN_PATH)?.to_string();
        Ok(spec)
    }

    /// Validates the configuration and builds the adapter.
    pub fn build(self) -> Result<Hike> {
        let mut builder = SpecProvider::builder(self.to_spec()?, self.credentials.clone());
        if let Some(settings) = self.settings {
            builder = builder.settings(settings);
        }
        Ok(Hike::new(builder.build()?))
    }
}
