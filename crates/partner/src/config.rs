//! The partner API's endpoint and options.

use oauth2_adapters_core::adapter::{endpoint_url, require_secure_endpoint};
use oauth2_adapters_core::{ClientCredentials, Error, ProviderSettings, Result};

use crate::provider::Partner;

/// The documented token path, joined to the configured base URL.
pub const DEFAULT_TOKEN_PATH: &str = "/api/oauth/token";

/// Configures a [`Partner`] adapter. The base URL is required: the docs do
/// not name the host.
#[derive(Debug, Clone)]
pub struct PartnerBuilder {
    credentials: ClientCredentials,
    base_url: Option<String>,
    token_path: String,
    settings: Option<ProviderSettings>,
}

impl PartnerBuilder {
    pub(crate) fn new(credentials: ClientCredentials) -> Self {
        Self {
            credentials,
            base_url: None,
            token_path: DEFAULT_TOKEN_PATH.to_owned(),
            settings: None,
        }
    }

    /// The API host (required), e.g. `https://bookings.example.com`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The token path (default [`DEFAULT_TOKEN_PATH`]).
    pub fn token_path(mut self, path: impl Into<String>) -> Self {
        self.token_path = path.into();
        self
    }

    /// Uses these HTTP settings, retry policy and clock instead of the defaults.
    pub fn settings(mut self, settings: ProviderSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Validates the configuration and builds the adapter.
    pub fn build(self) -> Result<Partner> {
        let base = self
            .base_url
            .ok_or_else(|| Error::configuration("the partner API needs a base URL"))?;
        let token_url = endpoint_url("the partner token URL", &base, &self.token_path)?;
        require_secure_endpoint("the partner token URL", &token_url)?;
        if self.credentials.client_id.is_empty() {
            return Err(Error::configuration("the partner client id is empty"));
        }
        let context = match self.settings {
            Some(context) => context,
            None => ProviderSettings::new()?,
        };
        Ok(Partner::new(self.credentials, token_url, context))
    }
}
