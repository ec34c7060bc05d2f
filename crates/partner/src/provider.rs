//! The partner adapter's one capability: client credentials.

use async_trait::async_trait;
use oauth2_adapters_core::adapter::JsonResponse;
use oauth2_adapters_core::{
    ClientCredentials, ClientCredentialsProvider, Error, ExposeSecret, Provider, ProviderId,
    ProviderSettings, Renewal, Result, Token,
};
use url::Url;

use crate::config::PartnerBuilder;
use crate::wire::read_token;
use crate::PROVIDER_ID;

/// The documented JSON body, written without building a map first (the
/// fields in this order: the one a JSON object's sorted keys give).
#[derive(serde::Serialize)]
struct TokenRequestBody<'a> {
    client_id: &'a str,
    client_secret: &'a str,
    grant_type: &'static str,
}

/// The partner bookings API adapter. Its tokens cannot be refreshed: the
/// renewal is [`Renewal::Reacquire`].
#[derive(Debug, Clone)]
pub struct Partner {
    credentials: ClientCredentials,
    token_url: Url,
    context: ProviderSettings,
}

impl Partner {
    /// Starts configuring the adapter with the partner's client id and secret.
    pub fn builder(credentials: ClientCredentials) -> PartnerBuilder {
        PartnerBuilder::new(credentials)
    }

    pub(crate) fn new(
        credentials: ClientCredentials,
        token_url: Url,
        context: ProviderSettings,
    ) -> Self {
        Self {
            credentials,
            token_url,
            context,
        }
    }

    /// The token endpoint.
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }
}

impl Provider for Partner {
    fn id(&self) -> &ProviderId {
        &PROVIDER_ID
    }

    fn renewal(self: std::sync::Arc<Self>) -> Renewal {
        Renewal::Reacquire(self)
    }

    fn settings(&self) -> &ProviderSettings {
        &self.context
    }
}

#[async_trait]
impl ClientCredentialsProvider for Partner {
    /// `POST {base}/api/oauth/token` with the documented JSON body and
    /// `Accept`/`Content-Type: application/json`. The API has no scope
    /// parameter (scopes are fixed per client), so asking for scopes is a
    /// configuration error rather than being silently ignored.
    async fn request_client_credentials(&self, scopes: &[String]) -> Result<Token> {
        if !scopes.is_empty() {
            return Err(Error::configuration(
                "the partner API takes no scope parameter: its scopes are fixed per client",
            ));
        }
        let secret = self.credentials.client_secret.expose_secret();
        let body = TokenRequestBody {
            client_id: &self.credentials.client_id,
            client_secret: secret,
            grant_type: "client_credentials",
        };
        let request = self
            .context
            .http
            .reqwest()
            .post(self.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body);
        let response = self.context.http.send(&PROVIDER_ID, request).await?;
        let known = [secret];
        let json = JsonResponse::new(&PROVIDER_ID, &response, &known);
        read_token(&json, self.context.clock.now())
    }
}
