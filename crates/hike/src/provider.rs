//! The Hike adapter's capabilities: authorization code and refresh.

use async_trait::async_trait;
use oauth2_adapters_core::adapter::{AuthorizeUrlParams, VerifiedCode};
use oauth2_adapters_core::{
    AuthorizationCodeProvider, ClientCredentials, PendingAuthorization, Provider, ProviderId,
    ProviderSettings, RefreshTokenProvider, Renewal, Result, SecretString, StandardProvider, Token,
};
use url::Url;

use crate::config::HikeBuilder;
use crate::wire::settle_expiry;

/// The Hike adapter. Tokens are issued per store; a refresh rotates the
/// refresh token (the new one replaces the old, see
/// [`RefreshTokenProvider::refresh`]).
#[derive(Debug, Clone)]
pub struct Hike {
    standard: StandardProvider,
}

impl Hike {
    /// Starts configuring the adapter with the app's `App Id` and `App Secret`.
    pub fn builder(credentials: ClientCredentials) -> HikeBuilder {
        HikeBuilder::new(credentials)
    }

    pub(crate) fn from_standard(standard: StandardProvider) -> Self {
        Self { standard }
    }

    fn finish(&self, mut token: Token) -> Token {
        settle_expiry(&mut token, self.settings().clock.now());
        token
    }
}

impl Provider for Hike {
    fn id(&self) -> &ProviderId {
        self.standard.id()
    }

    fn renewal(self: std::sync::Arc<Self>) -> Renewal {
        Renewal::RefreshToken(self)
    }

    fn settings(&self) -> &ProviderSettings {
        self.standard.settings()
    }
}

#[async_trait]
impl AuthorizationCodeProvider for Hike {
    fn default_scopes(&self) -> Vec<String> {
        self.standard.default_scopes()
    }

    fn uses_pkce(&self) -> bool {
        self.standard.uses_pkce()
    }

    fn authorization_url(&self, params: &AuthorizeUrlParams<'_>) -> Result<Url> {
        self.standard.authorization_url(params)
    }

    async fn exchange_verified_code(
        &self,
        code: VerifiedCode,
        pending: &PendingAuthorization,
    ) -> Result<Token> {
        let token = self.standard.exchange_verified_code(code, pending).await?;
        Ok(self.finish(token))
    }
}

#[async_trait]
impl RefreshTokenProvider for Hike {
    async fn request_refresh(&self, refresh_token: &SecretString) -> Result<Token> {
        let token = self.standard.request_refresh(refresh_token).await?;
        Ok(self.finish(token))
    }
}
