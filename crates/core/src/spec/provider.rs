//! [`SpecProvider`]: a provider made from a [`ProviderSpec`], with no code.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::request::{fixed_headers, with_body, TokenCall};
use super::{Pkce, ProviderSpec, RenewalKind};
use crate::authorize::{
    AuthorizeUrlParams, PendingAuthorization, VerifiedCode, DEFAULT_PENDING_MAX_AGE,
};
use crate::error::{Error, Result};
use crate::http::{parse_url, require_secure_endpoint};
use crate::json_response::JsonResponse;
use crate::provider::{
    AuthorizationCodeProvider, ClientCredentials, ClientCredentialsProvider, Provider,
    ProviderSettings, RefreshTokenProvider, Renewal,
};
use crate::token::{ProviderId, Token};

/// A provider that speaks the dialect its [`ProviderSpec`] describes: the
/// authorization code grant (when the spec has an `[authorize]` endpoint),
/// refreshes, client credentials and revocation, with the core's retries,
/// redaction and expiry rules.
///
/// ```
/// # fn run() -> oauth2_adapters::Result<()> {
/// use oauth2_adapters::{ClientCredentials, ProviderSpec, SpecProvider};
///
/// let spec = ProviderSpec::from_toml(r#"
///     id = "acme"
///     [authorize]
///     url = "https://acme.example/oauth/authorize"
///     [token]
///     url = "https://acme.example/oauth/token"
/// "#)?;
/// let acme = SpecProvider::builder(spec, ClientCredentials::new("id", "secret")).build()?;
/// # let _ = acme; Ok(()) }
/// ```
#[derive(Clone)]
pub struct SpecProvider {
    pub(super) id: ProviderId,
    pub(super) spec: Arc<ProviderSpec>,
    pub(super) credentials: ClientCredentials,
    pub(super) settings: ProviderSettings,
    pub(super) secrets: BTreeMap<String, SecretString>,
    endpoints: Endpoints,
    pkce: bool,
}

#[derive(Debug, Clone)]
struct Endpoints {
    authorize: Option<Url>,
    token: Url,
    refresh: Url,
    revocation: Option<Url>,
}

impl fmt::Debug for SpecProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpecProvider")
            .field("id", &self.id)
            .field("client_id", &self.credentials.client_id)
            .field("endpoints", &self.endpoints)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Configures a [`SpecProvider`].
#[derive(Debug, Clone)]
pub struct SpecProviderBuilder {
    spec: ProviderSpec,
    credentials: ClientCredentials,
    base_url: Option<String>,
    settings: Option<ProviderSettings>,
    secrets: BTreeMap<String, SecretString>,
    pkce: Option<bool>,
}

impl SpecProvider {
    /// Starts configuring a provider from `spec` with the app's credentials.
    pub fn builder(spec: ProviderSpec, credentials: ClientCredentials) -> SpecProviderBuilder {
        SpecProviderBuilder {
            spec,
            credentials,
            base_url: None,
            settings: None,
            secrets: BTreeMap::new(),
            pkce: None,
        }
    }

    /// The spec it speaks.
    pub fn spec(&self) -> &ProviderSpec {
        &self.spec
    }

    /// The client credentials it authenticates with.
    pub fn client_id(&self) -> &str {
        &self.credentials.client_id
    }

    /// The token endpoint, after any [`SpecProviderBuilder::base_url`].
    pub fn token_url(&self) -> &Url {
        &self.endpoints.token
    }

    /// The refresh endpoint (the token endpoint unless the spec names one).
    pub fn refresh_url(&self) -> &Url {
        &self.endpoints.refresh
    }

    /// The revocation endpoint, when the spec has one.
    pub fn revocation_url(&self) -> Option<&Url> {
        self.endpoints.revocation.as_ref()
    }

    async fn revoke_token(&self, token: &Token) -> Result<bool> {
        let (Some(url), Some(revocation)) = (&self.endpoints.revocation, &self.spec.revocation)
        else {
            return Ok(false);
        };
        let (value, hint) = match (&token.refresh_token, revocation.revoke_refresh_token) {
            (Some(refresh), true) => (refresh.expose_secret(), "refresh_token"),
            _ => (token.access_token.expose_secret(), "access_token"),
        };
        let fields = &self.spec.token.fields;
        let mut params = vec![(revocation.token_field.clone(), value.to_owned())];
        if revocation.send_token_type_hint {
            params.push(("token_type_hint".into(), hint.into()));
        }
        let secret = self.credentials.client_secret.expose_secret();
        let mut request = self
            .settings
            .http
            .reqwest()
            .post(url.clone())
            .headers(fixed_headers(&self.spec.token)?);
        match self.spec.token.client_auth {
            super::ClientAuthMethod::ClientSecretBasic => {
                // RFC 6749 §2.3.1, as at the token endpoint: both parts
                // form-encoded before Basic.
                let id: String =
                    url::form_urlencoded::byte_serialize(self.credentials.client_id.as_bytes())
                        .collect();
                let encoded: String =
                    url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
                request = request.basic_auth(id, Some(encoded));
            }
            super::ClientAuthMethod::ClientSecretPost => {
                params.push((fields.client_id.clone(), self.credentials.client_id.clone()));
                params.push((fields.client_secret.clone(), secret.to_owned()));
            }
            super::ClientAuthMethod::None => {
                params.push((fields.client_id.clone(), self.credentials.client_id.clone()));
            }
        }
        let request = with_body(request, revocation.body, &params);
        let response = self.settings.http.send(&self.id, request).await?;
        // RFC 7009 §2.2: 200 (also for a token already invalid); an error
        // object otherwise.
        if response.is_success() {
            return Ok(true);
        }
        let known = [secret, value];
        let json = JsonResponse::new(&self.id, &response, &known);
        Err(match json.json() {
            Ok(body) => json
                .oauth_error(&body)
                .unwrap_or_else(|| json.status_error()),
            Err(error) => error,
        })
    }
}

impl SpecProviderBuilder {
    /// Points every endpoint of the spec at another origin (scheme, host
    /// and port), keeping the paths: for a staging host, or the testkit's
    /// mock in tests.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Uses these HTTP settings, retry policy and clock instead of the defaults.
    pub fn settings(mut self, settings: ProviderSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// A secret the spec's `token.secret_headers` send by name (e.g.
    /// HyperSKU's `api_key`). Never shown in `Debug` or errors.
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets
            .insert(name.into(), SecretString::from(value.into()));
        self
    }

    /// Turns PKCE on or off, where the spec allows it (a spec saying
    /// `required` refuses `false`).
    pub fn pkce(mut self, on: bool) -> Self {
        self.pkce = Some(on);
        self
    }

    /// Checks the spec and the configuration, and builds the provider.
    /// Token, refresh and revocation endpoints must be `https` (or `http`
    /// on a loopback address).
    pub fn build(self) -> Result<SpecProvider> {
        self.spec.validate()?;
        let spec = self.spec;
        if self.credentials.client_id.is_empty() {
            return Err(Error::configuration(format!(
                "{}: the client id is empty",
                spec.display_name()
            )));
        }
        let pkce = match (spec.authorize.as_ref().map(|a| a.pkce), self.pkce) {
            (Some(Pkce::Required), Some(false)) => {
                return Err(Error::configuration(format!(
                    "{} requires PKCE: it cannot be turned off",
                    spec.display_name()
                )))
            }
            (Some(Pkce::Off), requested) => requested.unwrap_or(false),
            (Some(_), requested) => requested.unwrap_or(true),
            (None, _) => false,
        };
        let name = spec.display_name().to_owned();
        let at = |what: &str, url: &str| -> Result<Url> {
            let url = parse_url(&format!("{name}'s {what}"), url)?;
            match &self.base_url {
                Some(base) => rebase(&format!("{name}'s {what}"), url, base),
                None => Ok(url),
            }
        };
        let token = at("token URL", &spec.token.url)?;
        let refresh = match &spec.token.refresh_url {
            Some(url) => at("refresh URL", url)?,
            None => token.clone(),
        };
        let endpoints = Endpoints {
            authorize: spec
                .authorize
                .as_ref()
                .map(|a| at("authorize URL", &a.url))
                .transpose()?,
            revocation: spec
                .revocation
                .as_ref()
                .map(|r| at("revocation URL", &r.url))
                .transpose()?,
            token,
            refresh,
        };
        require_secure_endpoint(&format!("{name}'s token URL"), &endpoints.token)?;
        require_secure_endpoint(&format!("{name}'s refresh URL"), &endpoints.refresh)?;
        if let Some(url) = &endpoints.revocation {
            require_secure_endpoint(&format!("{name}'s revocation URL"), url)?;
        }
        let settings = match self.settings {
            Some(settings) => settings,
            None => ProviderSettings::new()?,
        };
        Ok(SpecProvider {
            id: ProviderId::new(spec.id.clone()),
            spec: Arc::new(spec),
            credentials: self.credentials,
            settings,
            secrets: self.secrets,
            endpoints,
            pkce,
        })
    }
}

/// `url` with the scheme, host and port of `base`.
fn rebase(what: &str, mut url: Url, base: &str) -> Result<Url> {
    let base = parse_url(what, base)?;
    let fail = || Error::configuration(format!("{what}: cannot move it to {base}"));
    url.set_scheme(base.scheme()).map_err(|()| fail())?;
    url.set_host(base.host_str()).map_err(|_| fail())?;
    url.set_port(base.port()).map_err(|()| fail())?;
    Ok(url)
}

impl Provider for SpecProvider {
    fn id(&self) -> &ProviderId {
        &self.id
    }

    fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    fn renewal(self: Arc<Self>) -> Renewal {
        match self.spec.renewal_kind() {
            RenewalKind::RefreshToken => Renewal::RefreshToken(self),
            RenewalKind::Reacquire => Renewal::Reacquire(self),
            RenewalKind::Never => Renewal::Never,
        }
    }

    fn revoke<'a>(&'a self, token: &'a Token) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.revoke_token(token))
    }
}

#[async_trait]
impl AuthorizationCodeProvider for SpecProvider {
    fn default_scopes(&self) -> Vec<String> {
        self.spec
            .authorize
            .as_ref()
            .map(|a| a.default_scopes.clone())
            .unwrap_or_default()
    }

    fn uses_pkce(&self) -> bool {
        self.pkce
    }

    fn pending_max_age(&self) -> Duration {
        self.spec
            .authorize
            .as_ref()
            .and_then(|a| a.max_age_secs)
            .map_or(DEFAULT_PENDING_MAX_AGE, Duration::from_secs)
    }

    fn authorization_url(&self, params: &AuthorizeUrlParams<'_>) -> Result<Url> {
        match (&self.spec.authorize, &self.endpoints.authorize) {
            (Some(authorize), Some(url)) => self.build_authorize_url(authorize, url, params),
            _ => Err(Error::configuration(format!(
                "{} has no authorize endpoint (client credentials only)",
                self.spec.display_name()
            ))),
        }
    }

    async fn exchange_verified_code(
        &self,
        code: VerifiedCode,
        pending: &PendingAuthorization,
    ) -> Result<Token> {
        let fields = &self.spec.token.fields;
        let code = code.secret().expose_secret();
        let mut after_auth = vec![(fields.redirect_uri.as_str(), pending.redirect_uri())];
        if let Some(verifier) = pending.pkce_verifier() {
            after_auth.push((fields.code_verifier.as_str(), verifier.expose_secret()));
        }
        self.token_request(TokenCall {
            url: &self.endpoints.token,
            grant_type: "authorization_code",
            params: vec![(fields.code.as_str(), Cow::Borrowed(code))],
            after_auth,
            extra: &self.spec.token.code_params,
            grant_secret: code,
        })
        .await
    }
}

#[async_trait]
impl RefreshTokenProvider for SpecProvider {
    async fn request_refresh(&self, refresh_token: &SecretString) -> Result<Token> {
        let refresh_token = refresh_token.expose_secret();
        self.token_request(TokenCall {
            url: &self.endpoints.refresh,
            grant_type: "refresh_token",
            params: vec![(
                self.spec.token.fields.refresh_token.as_str(),
                Cow::Borrowed(refresh_token),
            )],
            after_auth: Vec::new(),
            extra: &self.spec.token.refresh_params,
            grant_secret: refresh_token,
        })
        .await
    }

    fn rotates_refresh_tokens(&self) -> bool {
        self.spec.rotates_refresh_tokens
    }
}

#[async_trait]
impl ClientCredentialsProvider for SpecProvider {
    async fn request_client_credentials(&self, scopes: &[String]) -> Result<Token> {
        let mut params = Vec::new();
        if !scopes.is_empty() {
            params.push((
                self.spec.token.fields.scope.as_str(),
                Cow::Owned(scopes.join(&self.spec.token.scope_separator)),
            ));
        }
        self.token_request(TokenCall {
            url: &self.endpoints.token,
            grant_type: "client_credentials",
            params,
            after_auth: Vec::new(),
            extra: &BTreeMap::new(),
            grant_secret: "",
        })
        .await
    }
}
