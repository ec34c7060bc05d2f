//! The HyperSKU adapter's capabilities: authorization code and refresh.

use async_trait::async_trait;
use oauth2_adapters_core::adapter::{AuthorizeUrlParams, HttpResponse, JsonResponse, VerifiedCode};
use oauth2_adapters_core::{
    AuthorizationCodeProvider, Error, ExposeSecret, PendingAuthorization, Provider, ProviderId,
    ProviderSettings, RefreshTokenProvider, Renewal, Result, SecretString, Token,
};
use serde_json::{Map, Value};
use url::Url;

use crate::config::{Endpoints, HyperSkuBuilder};
use crate::wire::{read_token, ReadRules};
use crate::PROVIDER_ID;

/// The HyperSKU adapter.
#[derive(Debug, Clone)]
pub struct HyperSku {
    config: HyperSkuBuilder,
    endpoints: Endpoints,
    context: ProviderSettings,
}

impl HyperSku {
    /// Starts configuring the adapter with the app's `clientId` and `clientSecret`.
    pub fn builder(credentials: oauth2_adapters_core::ClientCredentials) -> HyperSkuBuilder {
        HyperSkuBuilder::new(credentials)
    }

    pub(crate) fn new(
        config: HyperSkuBuilder,
        endpoints: Endpoints,
        context: ProviderSettings,
    ) -> Self {
        Self {
            config,
            endpoints,
            context,
        }
    }

    /// A token-request body with the client credentials and grant type.
    fn body(&self, grant_type: &str) -> Map<String, Value> {
        let names = &self.config.field_names;
        let credentials = &self.config.credentials;
        let mut body = Map::new();
        body.insert(
            names.client_id.clone(),
            credentials.client_id.clone().into(),
        );
        body.insert(
            names.client_secret.clone(),
            credentials.client_secret.expose_secret().into(),
        );
        if let Some(field) = &names.grant_type {
            body.insert(field.clone(), grant_type.into());
        }
        body
    }

    async fn post(&self, url: &Url, body: Map<String, Value>, grant_secret: &str) -> Result<Token> {
        let mut request = self
            .context
            .http
            .reqwest()
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body);
        let api_key = self.config.api_key.as_ref().map(|k| k.expose_secret());
        if let Some(key) = api_key {
            request = request.header(reqwest::header::AUTHORIZATION, key);
        }
        let response = self.context.http.send(&PROVIDER_ID, request).await?;
        self.read(&response, grant_secret)
    }

    /// Reads a token-endpoint response: the token, or the error it stands
    /// for. `grant_secret` (the code or refresh token sent) is scrubbed from
    /// every error, as are the client secret and the API key.
    pub(crate) fn read(&self, response: &HttpResponse, grant_secret: &str) -> Result<Token> {
        let api_key = self.config.api_key.as_ref().map(|k| k.expose_secret());
        let client_secret = self.config.credentials.client_secret.expose_secret();
        let known = [client_secret, grant_secret, api_key.unwrap_or_default()];
        let json = JsonResponse::new(&PROVIDER_ID, response, &known);
        let rules = ReadRules {
            unit: self.config.expiry_unit,
            success_codes: &self.config.success_codes,
            invalid_grant_codes: &self.config.invalid_grant_codes,
        };
        read_token(&json, rules, self.context.clock.now())
    }
}

impl Provider for HyperSku {
    fn id(&self) -> &ProviderId {
        &PROVIDER_ID
    }

    fn renewal(self: std::sync::Arc<Self>) -> Renewal {
        Renewal::RefreshToken(self)
    }

    fn settings(&self) -> &ProviderSettings {
        &self.context
    }
}

#[async_trait]
impl AuthorizationCodeProvider for HyperSku {
    fn default_scopes(&self) -> Vec<String> {
        self.config.scopes.clone()
    }

    /// The documented URL: `clientId`, `scope`, `redirectUri` and `state`,
    /// all four present, camelCase, no `response_type`.
    fn authorization_url(&self, params: &AuthorizeUrlParams<'_>) -> Result<Url> {
        if params.scopes.is_empty() {
            return Err(Error::configuration(
                "HyperSKU requires a scope (e.g. `oms`)",
            ));
        }
        let mut url = self.endpoints.authorize.clone();
        url.query_pairs_mut()
            .append_pair("clientId", &self.config.credentials.client_id)
            .append_pair("scope", &params.scopes.join(" "))
            .append_pair("redirectUri", params.redirect_uri.as_str())
            .append_pair("state", params.state);
        Ok(url)
    }

    async fn exchange_verified_code(
        &self,
        code: VerifiedCode,
        pending: &PendingAuthorization,
    ) -> Result<Token> {
        let names = &self.config.field_names;
        let code = code.secret().expose_secret();
        let mut body = self.body("authorization_code");
        body.insert(names.code.clone(), code.into());
        body.insert(
            names.redirect_uri.clone(),
            pending.redirect_uri().as_str().into(),
        );
        self.post(&self.endpoints.access_token, body, code).await
    }
}

#[async_trait]
impl RefreshTokenProvider for HyperSku {
    async fn request_refresh(&self, refresh_token: &SecretString) -> Result<Token> {
        let refresh_token = refresh_token.expose_secret();
        let mut body = self.body("refresh_token");
        body.insert(
            self.config.field_names.refresh_token.clone(),
            refresh_token.into(),
        );
        self.post(&self.endpoints.refresh_token, body, refresh_token)
            .await
    }
}
