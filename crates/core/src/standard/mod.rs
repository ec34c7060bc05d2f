//! A standard (RFC 6749) provider described by data, built on the `oauth2` crate.

#[doc(hidden)]
pub mod fuzzing;
mod outcome;
mod response;

pub use response::LenientTokenResponse;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
};
use oauth2::{AuthType, EndpointNotSet, EndpointSet, StandardRevocableToken};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use self::outcome::{RecordingClient, Transport};
use crate::authorize::{AuthorizeUrlParams, PendingAuthorization, VerifiedCode};
use crate::error::{Error, Result};
use crate::http::{parse_url, require_secure_endpoint};
use crate::provider::{
    AuthorizationCodeProvider, ClientCredentials, ClientCredentialsProvider, Provider,
    ProviderSettings, RefreshTokenProvider, Renewal, RenewalKind,
};
use crate::token::{ProviderId, Token};

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// HTTP Basic authentication (the RFC's recommendation).
    #[default]
    BasicAuth,
    /// `client_id` and `client_secret` in the form body.
    RequestBody,
}

type StandardResponse = LenientTokenResponse;
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    StandardResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Builds a [`StandardProvider`] from endpoint data.
///
/// ```
/// use oauth2_adapters::{ClientAuth, ClientCredentials, StandardProvider};
///
/// let provider = StandardProvider::builder("example")
///     .authorize_url("https://example.com/oauth/authorize")
///     .token_url("https://example.com/oauth/token")
///     .default_scopes(["read"])
///     .client_auth(ClientAuth::RequestBody)
///     .pkce(true)
///     .build(ClientCredentials::new("my-client-id", "my-client-secret"))?;
/// # Ok::<(), oauth2_adapters::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct StandardProviderBuilder {
    id: ProviderId,
    authorize_url: Option<String>,
    token_url: Option<String>,
    default_scopes: Vec<String>,
    client_auth: ClientAuth,
    pkce: bool,
    renewal_kind: RenewalKind,
    settings: Option<ProviderSettings>,
}

impl StandardProviderBuilder {
    /// Sets the authorize endpoint (required for the code flow).
    pub fn authorize_url(mut self, url: impl Into<String>) -> Self {
        self.authorize_url = Some(url.into());
        self
    }

    /// Sets the token endpoint (required; `https`, or `http` on loopback).
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// Sets the scopes asked for when a request names none.
    pub fn default_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.default_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets how the client authenticates (default: HTTP Basic).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// Turns PKCE (S256) on or off (default: on).
    pub fn pkce(mut self, on: bool) -> Self {
        self.pkce = on;
        self
    }

    /// Sets how the provider's tokens are renewed (default:
    /// [`RenewalKind::RefreshToken`]; [`RenewalKind::Reacquire`] for a
    /// client-credentials provider).
    pub fn renewal_kind(mut self, kind: RenewalKind) -> Self {
        self.renewal_kind = kind;
        self
    }

    /// Uses these HTTP settings, retry policy and clock instead of the defaults.
    pub fn settings(mut self, settings: ProviderSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Validates the endpoints and builds the provider.
    pub fn build(self, credentials: ClientCredentials) -> Result<StandardProvider> {
        let token_url = parse_url(
            "the token URL",
            self.token_url
                .as_deref()
                .ok_or_else(|| Error::configuration("a standard provider needs a token URL"))?,
        )?;
        require_secure_endpoint("the token URL", &token_url)?;
        let authorize_url = self
            .authorize_url
            .as_deref()
            .map(|url| parse_url("the authorize URL", url))
            .transpose()?;
        if credentials.client_id.is_empty() {
            return Err(Error::configuration("the client id is empty"));
        }
        let context = match self.settings {
            Some(context) => context,
            None => ProviderSettings::new()?,
        };
        Ok(StandardProvider {
            id: self.id,
            authorize_url,
            token_url,
            default_scopes: self.default_scopes,
            client_auth: self.client_auth,
            pkce: self.pkce,
            renewal_kind: self.renewal_kind,
            credentials,
            context,
        })
    }
}

/// Any RFC 6749-compliant provider: a few lines of endpoint data.
///
/// Tokens keep every non-standard response field in [`Token::extra`], so an
/// adapter for a nearly-standard provider (Hike) wraps this type and reads
/// its extra fields.
#[derive(Clone)]
pub struct StandardProvider {
    id: ProviderId,
    authorize_url: Option<Url>,
    token_url: Url,
    default_scopes: Vec<String>,
    client_auth: ClientAuth,
    pkce: bool,
    renewal_kind: RenewalKind,
    credentials: ClientCredentials,
    context: ProviderSettings,
}

impl fmt::Debug for StandardProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardProvider")
            .field("id", &self.id)
            .field(
                "authorize_url",
                &self.authorize_url.as_ref().map(Url::as_str),
            )
            .field("token_url", &self.token_url.as_str())
            .field("default_scopes", &self.default_scopes)
            .field("client_auth", &self.client_auth)
            .field("pkce", &self.pkce)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl StandardProvider {
    /// Starts describing a provider with this id.
    pub fn builder(id: impl Into<Cow<'static, str>>) -> StandardProviderBuilder {
        let id = match id.into() {
            Cow::Borrowed(id) => ProviderId::from_static(id),
            Cow::Owned(id) => ProviderId::new(id),
        };
        StandardProviderBuilder {
            id,
            authorize_url: None,
            token_url: None,
            default_scopes: Vec::new(),
            client_auth: ClientAuth::default(),
            pkce: true,
            renewal_kind: RenewalKind::RefreshToken,
            settings: None,
        }
    }

    /// The token endpoint.
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    fn client(&self) -> OAuthClient {
        let auth_url = self
            .authorize_url
            .clone()
            .unwrap_or_else(|| self.token_url.clone());
        oauth2::Client::new(oauth2::ClientId::new(self.credentials.client_id.clone()))
            .set_client_secret(oauth2::ClientSecret::new(
                self.credentials.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(oauth2::AuthUrl::from_url(auth_url))
            .set_token_uri(oauth2::TokenUrl::from_url(self.token_url.clone()))
            .set_auth_type(match self.client_auth {
                ClientAuth::BasicAuth => AuthType::BasicAuth,
                ClientAuth::RequestBody => AuthType::RequestBody,
            })
    }
}

impl Provider for StandardProvider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    fn settings(&self) -> &ProviderSettings {
        &self.context
    }

    fn renewal(self: Arc<Self>) -> Renewal {
        match self.renewal_kind {
            RenewalKind::RefreshToken => Renewal::RefreshToken(self),
            RenewalKind::Reacquire => Renewal::Reacquire(self),
            RenewalKind::Never => Renewal::Never,
        }
    }
}

#[async_trait]
impl AuthorizationCodeProvider for StandardProvider {
    fn default_scopes(&self) -> Vec<String> {
        self.default_scopes.clone()
    }

    fn uses_pkce(&self) -> bool {
        self.pkce
    }

    fn authorization_url(&self, params: &AuthorizeUrlParams<'_>) -> Result<Url> {
        if self.authorize_url.is_none() {
            return Err(Error::configuration(format!(
                "{} has no authorize URL",
                self.id
            )));
        }
        let client = self.client();
        let state = params.state.to_owned();
        let redirect = oauth2::RedirectUrl::new(params.redirect_uri.to_owned())
            .map_err(|e| Error::configuration(format!("redirect URI is not a valid URL: {e}")))?;
        let mut request = client
            .authorize_url(move || oauth2::CsrfToken::new(state))
            .set_redirect_uri(Cow::Owned(redirect))
            .add_scopes(params.scopes.iter().cloned().map(oauth2::Scope::new));
        if let Some(challenge) = params.pkce_challenge {
            request = request.set_pkce_challenge(challenge.clone());
        }
        for (name, value) in params.extra_params {
            request = request.add_extra_param(name.clone(), value.clone());
        }
        Ok(request.url().0)
    }

    async fn exchange_verified_code(
        &self,
        code: VerifiedCode,
        pending: &PendingAuthorization,
    ) -> Result<Token> {
        self.exchange_code_via(&self.recorder(), &code, pending)
            .await
    }
}

#[async_trait]
impl RefreshTokenProvider for StandardProvider {
    async fn request_refresh(&self, refresh_token: &SecretString) -> Result<Token> {
        self.refresh_via(&self.recorder(), refresh_token).await
    }
}

#[async_trait]
impl ClientCredentialsProvider for StandardProvider {
    async fn request_client_credentials(&self, scopes: &[String]) -> Result<Token> {
        self.client_credentials_via(&self.recorder(), scopes).await
    }
}

/// The three grants, on any transport (the token endpoint, or a canned
/// answer for the fuzz targets): the one code path both use.
impl StandardProvider {
    fn recorder(&self) -> RecordingClient<'_> {
        RecordingClient::new(Transport::Http(&self.context.http))
    }

    async fn exchange_code_via(
        &self,
        recorder: &RecordingClient<'_>,
        code: &VerifiedCode,
        pending: &PendingAuthorization,
    ) -> Result<Token> {
        let secret = self.credentials.client_secret.expose_secret();
        let code_text = code.secret().expose_secret();
        let verifier = pending.pkce_verifier().map(|v| v.expose_secret());
        let redirect = oauth2::RedirectUrl::new(pending.redirect_uri().to_owned())
            .map_err(|e| Error::configuration(format!("redirect URI is not a valid URL: {e}")))?;
        let client = self.client();
        let mut request = client
            .exchange_code(oauth2::AuthorizationCode::new(code_text.to_owned()))
            .set_redirect_uri(Cow::Owned(redirect));
        if let Some(verifier) = verifier {
            request = request.set_pkce_verifier(oauth2::PkceCodeVerifier::new(verifier.to_owned()));
        }
        let outcome = request.request_async(recorder).await;
        let known = [secret, code_text, verifier.unwrap_or_default()];
        self.finish(outcome, recorder, &known)
    }

    async fn refresh_via(
        &self,
        recorder: &RecordingClient<'_>,
        refresh_token: &SecretString,
    ) -> Result<Token> {
        let secret = self.credentials.client_secret.expose_secret();
        let refresh = oauth2::RefreshToken::new(refresh_token.expose_secret().to_owned());
        let client = self.client();
        let outcome = client
            .exchange_refresh_token(&refresh)
            .request_async(recorder)
            .await;
        self.finish(outcome, recorder, &[secret, refresh_token.expose_secret()])
    }

    async fn client_credentials_via(
        &self,
        recorder: &RecordingClient<'_>,
        scopes: &[String],
    ) -> Result<Token> {
        let secret = self.credentials.client_secret.expose_secret();
        let scopes: Vec<_> = scopes.iter().cloned().map(oauth2::Scope::new).collect();
        let client = self.client();
        let outcome = client
            .exchange_client_credentials()
            .add_scopes(scopes)
            .request_async(recorder)
            .await;
        self.finish(outcome, recorder, &[secret])
    }
}
