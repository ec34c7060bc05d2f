//! HyperSKU's endpoints, and every assumption about what its docs leave unsaid.

use oauth2_adapters_core::adapter::{endpoint_url, parse_url};
use oauth2_adapters_core::{
    ClientCredentials, Error, ExposeSecret, ProviderSettings, ProviderSpec, Result, SecretString,
    SpecProvider, TimeUnit,
};

use crate::provider::HyperSku;

/// The documented authorize page (on the app host, not the API host).
pub const DEFAULT_AUTHORIZE_URL: &str = "https://app.hypersku.com/application/auth";
/// The documented API host.
pub const DEFAULT_API_BASE_URL: &str = "https://api.hypersku.com";
/// The documented code-exchange path.
pub const DEFAULT_ACCESS_TOKEN_PATH: &str = "/api/auth/admin/token/access_token";
/// The refresh path: an assumption (the docs name a `refreshToken` call but not its path).
pub const DEFAULT_REFRESH_TOKEN_PATH: &str = "/api/auth/admin/token/refresh_token";
/// The documented scope.
pub const DEFAULT_SCOPE: &str = "oms";
/// Envelope `code` values that mean success (an assumption).
pub const DEFAULT_SUCCESS_CODES: &[i64] = &[0, 200];
/// Business codes that mean "this code or refresh token is invalid" (an
/// assumption: `60025` is the one non-HTTP code the docs list for the token call).
pub const DEFAULT_INVALID_GRANT_CODES: &[i64] = &[60025];

/// The JSON field names of the exchange and refresh bodies, which HyperSKU's
/// docs do not show. The defaults follow the platform's camelCase.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyFieldNames {
    /// Default `clientId`.
    pub client_id: String,
    /// Default `clientSecret`.
    pub client_secret: String,
    /// Default `code`.
    pub code: String,
    /// Default `redirectUri`.
    pub redirect_uri: String,
    /// Default `refreshToken`.
    pub refresh_token: String,
    /// Default `Some("grantType")`; `None` sends no grant type.
    pub grant_type: Option<String>,
}

impl Default for BodyFieldNames {
    fn default() -> Self {
        Self {
            client_id: "clientId".into(),
            client_secret: "clientSecret".into(),
            code: "code".into(),
            redirect_uri: "redirectUri".into(),
            refresh_token: "refreshToken".into(),
            grant_type: Some("grantType".into()),
        }
    }
}

impl BodyFieldNames {
    /// snake_case names (`client_id`, `grant_type`, …), for a server that expects them.
    pub fn snake_case() -> Self {
        Self {
            client_id: "client_id".into(),
            client_secret: "client_secret".into(),
            code: "code".into(),
            redirect_uri: "redirect_uri".into(),
            refresh_token: "refresh_token".into(),
            grant_type: Some("grant_type".into()),
        }
    }
}

/// The unit of `expiresIn` and `refreshTokenExpireIn` (undocumented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpiryUnit {
    /// Seconds (the default, as in RFC 6749).
    #[default]
    Seconds,
    /// Milliseconds.
    Milliseconds,
}

/// Configures a [`HyperSku`] adapter.
#[derive(Debug, Clone)]
pub struct HyperSkuBuilder {
    credentials: ClientCredentials,
    authorize_url: String,
    api_base_url: String,
    access_token_path: String,
    refresh_token_path: String,
    scopes: Vec<String>,
    field_names: BodyFieldNames,
    expiry_unit: ExpiryUnit,
    api_key: Option<SecretString>,
    success_codes: Vec<i64>,
    invalid_grant_codes: Vec<i64>,
    settings: Option<ProviderSettings>,
}

impl HyperSkuBuilder {
    pub(crate) fn new(credentials: ClientCredentials) -> Self {
        Self {
            credentials,
            authorize_url: DEFAULT_AUTHORIZE_URL.into(),
            api_base_url: DEFAULT_API_BASE_URL.into(),
            access_token_path: DEFAULT_ACCESS_TOKEN_PATH.into(),
            refresh_token_path: DEFAULT_REFRESH_TOKEN_PATH.into(),
            scopes: vec![DEFAULT_SCOPE.into()],
            field_names: BodyFieldNames::default(),
            expiry_unit: ExpiryUnit::default(),
            api_key: None,
            success_codes: DEFAULT_SUCCESS_CODES.to_vec(),
            invalid_grant_codes: DEFAULT_INVALID_GRANT_CODES.to_vec(),
            settings: None,
        }
    }

    /// The authorize page (default [`DEFAULT_AUTHORIZE_URL`]).
    pub fn authorize_url(mut self, url: impl Into<String>) -> Self {
        self.authorize_url = url.into();
        self
    }

    /// The API host the token paths are joined to (default [`DEFAULT_API_BASE_URL`]).
    pub fn api_base_url(mut self, url: impl Into<String>) -> Self {
        self.api_base_url = url.into();
        self
    }

    /// Points both the authorize page and the API at one host (the testkit's mock).
    pub fn base_url(self, url: impl Into<String>) -> Self {
        let url = url.into();
        let authorize = format!("{}/application/auth", url.trim_end_matches('/'));
        self.authorize_url(authorize).api_base_url(url)
    }

    /// The code-exchange path (default [`DEFAULT_ACCESS_TOKEN_PATH`]).
    pub fn access_token_path(mut self, path: impl Into<String>) -> Self {
        self.access_token_path = path.into();
        self
    }

    /// The refresh path (default [`DEFAULT_REFRESH_TOKEN_PATH`]).
    pub fn refresh_token_path(mut self, path: impl Into<String>) -> Self {
        self.refresh_token_path = path.into();
        self
    }

    /// The scopes asked for by default (default `["oms"]`; sent space-separated).
    pub fn default_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The JSON field names of the token bodies (default: camelCase).
    pub fn body_field_names(mut self, names: BodyFieldNames) -> Self {
        self.field_names = names;
        self
    }

    /// The unit of `expiresIn` / `refreshTokenExpireIn` (default seconds).
    pub fn expiry_unit(mut self, unit: ExpiryUnit) -> Self {
        self.expiry_unit = unit;
        self
    }

    /// Sends `Authorization: <API key>` on token calls (the docs' other option).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// Envelope `code` values that mean success (default [`DEFAULT_SUCCESS_CODES`]).
    pub fn success_codes(mut self, codes: impl Into<Vec<i64>>) -> Self {
        self.success_codes = codes.into();
        self
    }

    /// Business codes meaning the code or refresh token is invalid
    /// (default [`DEFAULT_INVALID_GRANT_CODES`]); a refresh rejected with
    /// one of them requires re-authorization.
    pub fn invalid_grant_codes(mut self, codes: impl Into<Vec<i64>>) -> Self {
        self.invalid_grant_codes = codes.into();
        self
    }

    /// Uses these HTTP settings, retry policy and clock instead of the defaults.
    pub fn settings(mut self, settings: ProviderSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// The [`ProviderSpec`] this configuration amounts to: HyperSKU's
    /// documented dialect ([`default_spec`](crate::default_spec), the same
    /// as `examples/providers/hypersku.toml`) with this builder's settings.
    pub fn to_spec(&self) -> Result<ProviderSpec> {
        let names = &self.field_names;
        let mut spec = crate::default_spec()?;
        if let Some(authorize) = spec.authorize.as_mut() {
            authorize.url = self.authorize_url.clone();
            authorize.default_scopes = self.scopes.clone();
        }
        let token = &mut spec.token;
        token.url = endpoint_url(
            "HyperSKU's token URL",
            &self.api_base_url,
            &self.access_token_path,
        )?
        .to_string();
        token.refresh_url = Some(
            endpoint_url(
                "HyperSKU's refresh URL",
                &self.api_base_url,
                &self.refresh_token_path,
            )?
            .to_string(),
        );
        token.fields.client_id = names.client_id.clone();
        token.fields.client_secret = names.client_secret.clone();
        token.fields.code = names.code.clone();
        token.fields.redirect_uri = names.redirect_uri.clone();
        token.fields.refresh_token = names.refresh_token.clone();
        token.fields.grant_type = names.grant_type.clone().unwrap_or_default();
        let response = &mut spec.response;
        response.expires_in_unit = match self.expiry_unit {
            ExpiryUnit::Seconds => TimeUnit::Seconds,
            ExpiryUnit::Milliseconds => TimeUnit::Milliseconds,
        };
        if let Some(envelope) = response.envelope.as_mut() {
            envelope.success = self.success_codes.clone();
        }
        response
            .error_codes
            .retain(|_, oauth| oauth != "invalid_grant");
        for code in &self.invalid_grant_codes {
            response
                .error_codes
                .insert(code.to_string(), "invalid_grant".into());
        }
        Ok(spec)
    }

    /// Validates the configuration and builds the adapter.
    pub fn build(self) -> Result<HyperSku> {
        if self.credentials.client_id.is_empty() {
            return Err(Error::configuration("HyperSKU's client id is empty"));
        }
        if self.scopes.is_empty() {
            return Err(Error::configuration(
                "HyperSKU requires a scope (e.g. `oms`)",
            ));
        }
        parse_url("HyperSKU's authorize URL", &self.authorize_url)?;
        let mut builder = SpecProvider::builder(self.to_spec()?, self.credentials.clone());
        if let Some(key) = &self.api_key {
            builder = builder.secret(API_KEY_SECRET, key.expose_secret());
        }
        if let Some(settings) = &self.settings {
            builder = builder.settings(settings.clone());
        }
        Ok(HyperSku::new(builder.build()?))
    }
}

/// The name of the API key in the spec's `secret_headers`.
const API_KEY_SECRET: &str = "api_key";
