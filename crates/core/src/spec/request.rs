//! Building the requests a spec describes: the authorize URL and the token
//! and revocation requests.

use std::borrow::Cow;

use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use url::form_urlencoded;
use url::Url;

use super::{AuthorizeSpec, BodyFormat, ClientAuthMethod, SpecProvider, TokenSpec};
use crate::authorize::AuthorizeUrlParams;
use crate::error::{Error, Result};
use crate::http::HttpResponse;
use crate::json_response::JsonResponse;
use crate::token::Token;

/// One token request: its URL, its parameters in order, and the secret of
/// the grant it spends (scrubbed from every error). Names and values are
/// borrowed from the spec and the caller: nothing is copied until the body
/// is written.
pub(super) struct TokenCall<'a> {
    pub(super) url: &'a Url,
    pub(super) grant_type: &'static str,
    /// The grant's own parameters (the code, the refresh token, a scope).
    pub(super) params: Vec<(&'a str, Cow<'a, str>)>,
    /// Sent after the client authentication (the redirect URI, the PKCE
    /// verifier), in the `oauth2` crate's order.
    pub(super) after_auth: Vec<(&'a str, &'a str)>,
    pub(super) extra: &'a std::collections::BTreeMap<String, String>,
    pub(super) grant_secret: &'a str,
}

impl SpecProvider {
    /// The authorize URL, parameters in a fixed order: `response_type`,
    /// client id, scope, redirect URI, state, the PKCE challenge, then the
    /// spec's and the request's extra parameters.
    pub(super) fn build_authorize_url(
        &self,
        authorize: &AuthorizeSpec,
        url: &Url,
        params: &AuthorizeUrlParams<'_>,
    ) -> Result<Url> {
        if authorize.scope_required && params.scopes.is_empty() {
            return Err(Error::configuration(format!(
                "{} requires a scope",
                self.spec.display_name()
            )));
        }
        let names = &authorize.params;
        let mut url = url.clone();
        {
            let mut query = url.query_pairs_mut();
            if authorize.send_response_type {
                query.append_pair(&names.response_type, "code");
            }
            query.append_pair(&names.client_id, &self.credentials.client_id);
            if !params.scopes.is_empty() {
                query.append_pair(
                    &names.scope,
                    &params.scopes.join(&authorize.scope_separator),
                );
            }
            query.append_pair(&names.redirect_uri, params.redirect_uri);
            query.append_pair(&names.state, params.state);
            if let Some(challenge) = params.pkce_challenge {
                query.append_pair(&names.code_challenge, challenge.as_str());
                query.append_pair(&names.code_challenge_method, challenge.method().as_str());
            }
            for (name, value) in &authorize.extra_params {
                query.append_pair(name, value);
            }
            for (name, value) in params.extra_params {
                query.append_pair(name, value);
            }
        }
        Ok(url)
    }

    /// Sends one token request and reads the answer.
    pub(super) async fn token_request(&self, call: TokenCall<'_>) -> Result<Token> {
        let token = &self.spec.token;
        let fields = &token.fields;
        let mut params: Vec<(&str, &str)> = Vec::with_capacity(
            call.params.len() + call.after_auth.len() + token.extra_params.len() + 4,
        );
        if !fields.grant_type.is_empty() {
            params.push((&fields.grant_type, call.grant_type));
        }
        params.extend(
            call.params
                .iter()
                .map(|(name, value)| (*name, value.as_ref())),
        );
        let secret = self.credentials.client_secret.expose_secret();
        match token.client_auth {
            ClientAuthMethod::ClientSecretPost => {
                params.push((&fields.client_id, &self.credentials.client_id));
                params.push((&fields.client_secret, secret));
            }
            ClientAuthMethod::None => {
                params.push((&fields.client_id, &self.credentials.client_id));
            }
            ClientAuthMethod::ClientSecretBasic => {}
        }
        params.extend(call.after_auth.iter().copied());
        for (name, value) in token.extra_params.iter().chain(call.extra) {
            params.push((name, value));
        }
        let mut request = self
            .settings
            .http
            .reqwest()
            .post(call.url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        request = request.headers(fixed_headers(token)?);
        for (name, secret_name) in &token.secret_headers {
            if let Some(value) = self.secrets.get(secret_name) {
                let mut value =
                    http::HeaderValue::from_str(value.expose_secret()).map_err(|_| {
                        Error::configuration(format!(
                            "the secret `{secret_name}` cannot be sent in a header"
                        ))
                    })?;
                value.set_sensitive(true);
                request = request.header(name.as_str(), value);
            }
        }
        if token.client_auth == ClientAuthMethod::ClientSecretBasic {
            // RFC 6749 §2.3.1: both parts form-encoded before Basic.
            let id: String =
                form_urlencoded::byte_serialize(self.credentials.client_id.as_bytes()).collect();
            let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            request = request.basic_auth(id, Some(secret));
        }
        request = with_body(request, token.body, &params);
        let response = self.settings.http.send(&self.id, request).await?;
        self.read_response(&response, call.grant_secret)
    }

    /// Reads a token-endpoint answer exactly as a token request does;
    /// `grant_secret`, the client secret and the secret header values are
    /// scrubbed from every error. For adapters' fuzz targets.
    #[doc(hidden)]
    pub fn read_response(&self, response: &HttpResponse, grant_secret: &str) -> Result<Token> {
        let sent = [self.credentials.client_secret.expose_secret(), grant_secret];
        let with_headers: Vec<&str>;
        let known: &[&str] = if self.secrets.is_empty() {
            &sent
        } else {
            with_headers = sent
                .into_iter()
                .chain(self.secrets.values().map(|s| s.expose_secret()))
                .collect();
            &with_headers
        };
        let json = JsonResponse::new(&self.id, response, known);
        super::response::read_token(
            &self.id,
            &json,
            &self.spec.response,
            self.settings.clock.now(),
        )
    }
}

/// The spec's fixed token headers, to replace the defaults of a request
/// (GitHub's `Accept` is not sent twice).
pub(super) fn fixed_headers(token: &TokenSpec) -> Result<http::HeaderMap> {
    let mut fixed = http::HeaderMap::new();
    for (name, value) in &token.headers {
        let invalid = || Error::configuration(format!("the token header `{name}` is invalid"));
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value = http::HeaderValue::from_str(value).map_err(|_| invalid())?;
        fixed.append(name, value);
    }
    Ok(fixed)
}

/// Puts `params` in the body as the spec says.
pub(super) fn with_body<K: AsRef<str>, V: AsRef<str>>(
    request: reqwest::RequestBuilder,
    format: BodyFormat,
    params: &[(K, V)],
) -> reqwest::RequestBuilder {
    match format {
        BodyFormat::Form => {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body)
        }
        BodyFormat::Json => {
            let body: Map<String, Value> = params
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_ref().to_owned(),
                        Value::String(value.as_ref().to_owned()),
                    )
                })
                .collect();
            request.json(&body)
        }
    }
}
