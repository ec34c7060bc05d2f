//! The Hike adapter: its spec ([`HikeBuilder::to_spec`]) spoken by the
//! core's [`SpecProvider`], behind a typed builder.

use std::sync::Arc;

use async_trait::async_trait;
use oauth2_adapters_core::adapter::{AuthorizeUrlParams, HttpResponse, VerifiedCode};
use oauth2_adapters_core::{
    AuthorizationCodeProvider, ClientCredentials, PendingAuthorization, Provider, ProviderId,
    ProviderSettings, RefreshTokenProvider, Renewal, Result, SecretString, SpecProvider, Token,
};
use url::Url;

use crate::config::HikeBuilder;

/// The Hike adapter. Tokens are issued per store; a refresh rotates the
/// refresh token (the new one replaces the old, see
/// [`RefreshTokenProvider::refresh`]).
#[derive(Debug, Clone)]
pub struct Hike {
    spec: SpecProvider,
}

impl Hike {
    /// Starts configuring the adapter with the app's `App Id` and `App Secret`.
    pub fn builder(credentials: ClientCredentials) -> HikeBuilder {
        HikeBuilder::new(credentials)
    }

    pub(crate) fn new(spec: SpecProvider) -> Self {
        Self { spec }
    }

    /// The spec-driven provider it is.
    pub fn as_spec_provider(&self) -> &SpecProvider {
        &self.spec
    }

    /// Reads a token-endpoint response exactly as a real request does: for
    /// the fuzz targets.
    pub(crate) fn read(&self, response: &HttpResponse, grant_secret: &str) -> Result<Token> {
        self.spec.read_response(response, grant_secret)
    }
}

impl Provider for Hike {
    fn id(&self) -> &ProviderId {
        self.spec.id()
    }

    fn settings(&self) -> &ProviderSettings {
        self.spec.settings()
    }

    fn renewal(self: Arc<Self>) -> Renewal {
        Renewal::RefreshToken(self)
    }

    fn revoke<'a>(
        &'a self,
        token: &'a Token,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool>> + Send + 'a>> {
        self.spec.revoke(token)
    }
}

#[async_trait]
impl AuthorizationCodeProvider for Hike {
    fn default_scopes(&self) -> Vec<String> {
        self.spec.default_scopes()
    }

    fn uses_pkce(&self) -> bool {
        self.spec.uses_pkce()
    }

    fn authorization_url(&self, params: &AuthorizeUrlParams<'_>) -> Result<Url> {
        self.spec.authorization_url(params)
    }

    async fn exchange_verified_code(
        &self,
        code: VerifiedCode,
        pending: &PendingAuthorization,
    ) -> Result<Token> {
        self.spec.exchange_verified_code(code, pending).await
    }
}

#[async_trait]
impl RefreshTokenProvider for Hike {
    async fn request_refresh(&self, refresh_token: &SecretString) -> Result<Token> {
        self.spec.request_refresh(refresh_token).await
    }
}
