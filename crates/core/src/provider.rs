//! Provider capabilities as traits a provider opts into.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use url::Url;

use crate::authorize::{
    verify_callback, AuthorizeRequest, AuthorizeUrlParams, CallbackParams, PendingAuthorization,
    VerifiedCode, DEFAULT_PENDING_MAX_AGE,
};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, ErrorCode, ReauthorizationReason, Result};
use crate::http::{HttpClient, HttpConfig};
use crate::retry::{with_retries, Grant, RetryPolicy, RetrySafety, TokenRequest};
use crate::token::{ProviderId, Token};

/// What every adapter shares: the HTTP client, the clock and the retry policy.
#[derive(Clone, Debug)]
pub struct ProviderSettings {
    /// The token-endpoint HTTP client.
    pub http: HttpClient,
    /// The clock used for every expiry computation.
    pub clock: Arc<dyn Clock>,
    /// How failed token requests are retried (where a retry is safe).
    pub retry: RetryPolicy,
}

impl ProviderSettings {
    /// The default HTTP settings and the system clock.
    pub fn new() -> Result<Self> {
        Self::with_http_config(&HttpConfig::default())
    }

    /// The given HTTP settings and the system clock.
    pub fn with_http_config(config: &HttpConfig) -> Result<Self> {
        Ok(Self {
            http: HttpClient::new(config)?,
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
        })
    }

    /// Replaces the clock (tests, the testkit).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the retry policy ([`RetryPolicy::never`] turns retries off).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// An application's credentials at a provider.
#[derive(Clone)]
pub struct ClientCredentials {
    /// The client id (public).
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
}

impl ClientCredentials {
    /// Credentials from an id and a secret.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: SecretString::from(client_secret.into()),
        }
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

/// How a provider's expiring access tokens are renewed: what a
/// [`Renewal`] is, without the capability that does it. A
/// [`ProviderSpec`](crate::ProviderSpec) says it as `renewal = "..."`
/// (`refresh_token`, `reacquire`, `never`); a
/// [`StandardProvider`](crate::StandardProvider) is built with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenewalKind {
    /// With the refresh token grant ([`RefreshTokenProvider`]).
    RefreshToken,
    /// By requesting a new token with client credentials ([`ClientCredentialsProvider`]).
    Reacquire,
    /// Not at all: an expired token needs a new sign-in.
    Never,
}

/// A provider as the [`TokenManager`](crate::TokenManager) renews its
/// tokens: the capability its [`RenewalKind`] names. Made by
/// [`Provider::renewal`]; the manager's builder calls it when a provider is
/// registered.
#[derive(Clone)]
pub enum Renewal {
    /// With the refresh token grant (HyperSKU, Hike).
    RefreshToken(Arc<dyn RefreshTokenProvider>),
    /// By requesting a new token with client credentials (the partner).
    /// Keys of such a provider need no prior sign-in: the first `get`
    /// acquires.
    Reacquire(Arc<dyn ClientCredentialsProvider>),
    /// Not at all: an expired token needs a new sign-in.
    Never,
}

impl Renewal {
    /// Which kind of renewal this is.
    pub fn kind(&self) -> RenewalKind {
        match self {
            Self::RefreshToken(_) => RenewalKind::RefreshToken,
            Self::Reacquire(_) => RenewalKind::Reacquire,
            Self::Never => RenewalKind::Never,
        }
    }
}

impl fmt::Debug for Renewal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RefreshToken(p) => write!(f, "Renewal::RefreshToken({})", p.id()),
            Self::Reacquire(p) => write!(f, "Renewal::Reacquire({})", p.id()),
            Self::Never => f.write_str("Renewal::Never"),
        }
    }
}

/// What every provider has: an id, its settings, and how its tokens are
/// renewed.
pub trait Provider: Send + Sync + 'static {
    /// The provider's id, recorded in every token it issues.
    fn id(&self) -> &ProviderId;
    /// Its HTTP settings, retry policy and clock.
    fn settings(&self) -> &ProviderSettings;
    /// How its tokens are renewed: the capability its refresh policy names,
    /// e.g. `Renewal::RefreshToken(self)` for a provider that implements
    /// [`RefreshTokenProvider`].
    fn renewal(self: Arc<Self>) -> Renewal;

    /// Revokes the grant behind `token` at the provider (RFC 7009): its
    /// refresh token when it has one (which ends the whole grant), else its
    /// access token. `Ok(false)` when the provider has no revocation
    /// endpoint (the default).
    fn revoke<'a>(&'a self, token: &'a Token) -> futures_util::future::BoxFuture<'a, Result<bool>> {
        let _ = token;
        Box::pin(async { Ok(false) })
    }
}

/// The authorization code grant (RFC 6749 §4.1).
///
/// An adapter supplies the provider-specific parts (the authorize URL, the
/// exchange request); the core generates state and PKCE, verifies the
/// callback, and only then lets the adapter exchange the code.
#[async_trait]
pub trait AuthorizationCodeProvider: Provider {
    /// The scopes asked for when the request names none.
    fn default_scopes(&self) -> Vec<String>;

    /// Whether PKCE (S256) is sent.
    fn uses_pkce(&self) -> bool {
        false
    }

    /// How long a pending authorization stays usable (default 10 minutes).
    fn pending_max_age(&self) -> Duration {
        DEFAULT_PENDING_MAX_AGE
    }

    /// Builds the provider's authorize URL from core-made parameters.
    fn authorization_url(&self, params: &AuthorizeUrlParams<'_>) -> Result<Url>;

    /// Exchanges a verified code for a token (RFC 6749 §4.1.3): one request.
    /// [`AuthorizationCodeProvider::handle_callback`] retries it only when
    /// it never reached the server: a code is single-use.
    async fn exchange_verified_code(
        &self,
        code: VerifiedCode,
        pending: &PendingAuthorization,
    ) -> Result<Token>;

    /// Builds the redirect: the URL to send the user to, and the pending
    /// authorization to keep until the callback.
    fn authorize(&self, request: AuthorizeRequest) -> Result<(Url, PendingAuthorization)> {
        let scopes = request.scopes.unwrap_or_else(|| self.default_scopes());
        let request_params = request.extra_params;
        let (challenge, verifier) = if self.uses_pkce() {
            let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
            (
                Some(challenge),
                Some(SecretString::from(verifier.into_secret())),
            )
        } else {
            (None, None)
        };
        let pending = PendingAuthorization::new(
            self.id().clone(),
            request.redirect_uri,
            scopes,
            verifier,
            self.settings().clock.now(),
        );
        let url = self.authorization_url(&AuthorizeUrlParams {
            state: secrecy::ExposeSecret::expose_secret(pending.state()),
            redirect_uri: pending.redirect_uri(),
            extra_params: &request_params,
            scopes: pending.scopes(),
            pkce_challenge: challenge.as_ref(),
        })?;
        Ok((url, pending))
    }

    /// Handles the callback: verifies it against `pending` (which it
    /// consumes, so a state is usable once), then exchanges the code.
    /// Nothing is sent to the provider unless every check passes. A token
    /// response without scopes gets the scopes requested (RFC 6749 §5.1).
    async fn handle_callback(
        &self,
        params: CallbackParams,
        pending: PendingAuthorization,
    ) -> Result<Token> {
        if pending.provider() != self.id() {
            return Err(Error::configuration(format!(
                "the pending authorization is for {}, not {}",
                pending.provider(),
                self.id()
            )));
        }
        let now = self.settings().clock.now();
        let code = verify_callback(params, &pending, now, self.pending_max_age())?;
        let request = TokenRequest {
            provider: self.id(),
            grant: Grant::AuthorizationCode,
            safety: RetrySafety::SingleUse,
        };
        let mut token = with_retries(&self.settings().retry, request, || {
            self.exchange_verified_code(code.clone(), &pending)
        })
        .await?;
        if token.scopes.is_empty() {
            // RFC 6749 §5.1: an omitted scope is the scope requested.
            token.scopes = pending.scopes().to_vec();
        }
        Ok(token)
    }
}

/// The refresh token grant (RFC 6749 §6).
#[async_trait]
pub trait RefreshTokenProvider: Provider {
    /// Sends one refresh request. Prefer [`RefreshTokenProvider::refresh`],
    /// which adds the checks, the retries and the merge every caller needs.
    async fn request_refresh(&self, refresh_token: &SecretString) -> Result<Token>;

    /// Whether the provider may rotate refresh tokens (answer a refresh with
    /// a new refresh token that replaces the old). Then a refresh is retried
    /// only when it never reached the server: a retry could spend the old
    /// token twice. Defaults to `true`, the safe assumption.
    fn rotates_refresh_tokens(&self) -> bool {
        true
    }

    /// Refreshes `current`:
    /// * failed attempts are retried per the context's [`RetryPolicy`]: any
    ///   retryable error when the provider does not rotate refresh tokens,
    ///   only a request that never reached the server when it does;
    /// * no refresh token, or one whose known expiry has passed →
    ///   [`Error::ReauthorizationRequired`] without a request;
    /// * the provider answers `invalid_grant` → [`Error::ReauthorizationRequired`];
    /// * a rotated refresh token replaces the old one; when none is returned
    ///   the old one (and its expiry) is kept; missing scopes and subject are
    ///   carried over (RFC 6749 §5.1: omitted scope means unchanged).
    async fn refresh(&self, current: &Token) -> Result<Token> {
        let reauthorize = |reason| Error::ReauthorizationRequired {
            provider: self.id().clone(),
            reason,
        };
        let Some(refresh_token) = &current.refresh_token else {
            return Err(reauthorize(ReauthorizationReason::NoRefreshToken));
        };
        if current.is_refresh_token_expired(self.settings().clock.as_ref()) {
            return Err(reauthorize(ReauthorizationReason::RefreshTokenExpired));
        }
        let request = TokenRequest {
            provider: self.id(),
            grant: Grant::RefreshToken,
            safety: if self.rotates_refresh_tokens() {
                RetrySafety::SingleUse
            } else {
                RetrySafety::Repeatable
            },
        };
        let result = with_retries(&self.settings().retry, request, || {
            self.request_refresh(refresh_token)
        })
        .await;
        match result {
            Ok(fresh) => Ok(carry_over(current, fresh)),
            Err(Error::Provider {
                code: ErrorCode::InvalidGrant,
                description,
                ..
            }) => Err(reauthorize(ReauthorizationReason::RefreshTokenRejected {
                description,
            })),
            Err(other) => Err(other),
        }
    }
}

/// The client credentials grant (RFC 6749 §4.4).
#[async_trait]
pub trait ClientCredentialsProvider: Provider {
    /// Sends one token request. Prefer
    /// [`ClientCredentialsProvider::client_credentials`], which retries.
    async fn request_client_credentials(&self, scopes: &[String]) -> Result<Token>;

    /// Requests a token for the application itself. `scopes` may be empty
    /// (the provider's default). Nothing single-use is spent, so any
    /// retryable failure is retried per the context's [`RetryPolicy`].
    async fn client_credentials(&self, scopes: &[String]) -> Result<Token> {
        let request = TokenRequest {
            provider: self.id(),
            grant: Grant::ClientCredentials,
            safety: RetrySafety::Repeatable,
        };
        with_retries(&self.settings().retry, request, || {
            self.request_client_credentials(scopes)
        })
        .await
    }
}

fn carry_over(current: &Token, mut fresh: Token) -> Token {
    if fresh.refresh_token.is_none() {
        fresh.refresh_token = current.refresh_token.clone();
        fresh.refresh_expires_at = current.refresh_expires_at;
    }
    if fresh.scopes.is_empty() {
        fresh.scopes = current.scopes.clone();
    }
    if fresh.subject.is_none() {
        fresh.subject = current.subject.clone();
    }
    fresh
}
