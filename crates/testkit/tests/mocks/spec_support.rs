//! What the SpecMock tests share: specs from TOML, a SpecProvider pointed
//! at the mock, raw token requests.

use std::error::Error;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use oauth2_adapters::testkit::{MockConfig, MockServer, SpecMock};
use oauth2_adapters::{
    AuthorizationCodeProvider, AuthorizeRequest, CallbackParams, ClientCredentials, ManualClock,
    ProviderSpec, SpecProvider, Token,
};
use serde_json::Value;
use url::Url;

use crate::{client, form, query_param};

/// What the tests return errors as.
pub type AnyError = Box<dyn Error + Send + Sync>;

/// The instant the tests' clocks start at.
pub const START_UNIX: u64 = 1_800_000_000;

/// RFC 7636 Appendix B: a verifier and its S256 challenge.
pub const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The S256 challenge of [`RFC_VERIFIER`].
pub const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// A well-formed verifier that answers neither challenge.
pub const OTHER_VERIFIER: &str = "another-verifier-0123456789-abcdefghijklmnop";

/// A minimal code-flow spec (`acme`: post auth, PKCE on, form bodies)
/// with more TOML at the top, in `[authorize]` and in `[token]`.
pub fn spec(top: &str, authorize: &str, token: &str) -> ProviderSpec {
    let text = format!(
        "id = \"acme\"\n{top}\n[authorize]\nurl = \"https://auth.acme.example/oauth/authorize\"\n\
         {authorize}\n[token]\nurl = \"https://api.acme.example/oauth/token\"\n{token}\n"
    );
    ProviderSpec::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A mock of `spec` on a manual clock.
pub async fn start(spec: ProviderSpec) -> Result<(SpecMock, ManualClock), AnyError> {
    start_with(spec, MockConfig::default()).await
}

/// A mock of `spec` with `config`, on a manual clock.
pub async fn start_with(
    spec: ProviderSpec,
    config: MockConfig,
) -> Result<(SpecMock, ManualClock), AnyError> {
    let clock = ManualClock::at_unix(START_UNIX);
    let mock = SpecMock::start(spec, config.with_clock(Arc::new(clock.clone()))).await?;
    Ok((mock, clock))
}

/// A SpecProvider of the mock's spec, pointed at it, with its credentials.
pub fn provider(mock: &SpecMock) -> Result<SpecProvider, AnyError> {
    provider_with(mock, mock.credentials())
}

/// Like [`provider`], with other credentials.
pub fn provider_with(
    mock: &SpecMock,
    credentials: ClientCredentials,
) -> Result<SpecProvider, AnyError> {
    Ok(SpecProvider::builder(mock.spec().clone(), credentials)
        .base_url(mock.base_url().as_str())
        .settings(mock.provider_settings()?)
        .build()?)
}

/// Signs in through `provider`: authorize, approve at the mock, exchange.
pub async fn sign_in(mock: &SpecMock, provider: &SpecProvider) -> Result<Token, AnyError> {
    let request = AuthorizeRequest::new(&mock.config().redirect_uri)?;
    let (url, pending) = provider.authorize(request)?;
    let callback = mock.approve(&url).await?;
    Ok(provider
        .handle_callback(CallbackParams::from_url(&callback)?, pending)
        .await?)
}

/// Approves the mock's own authorize URL; returns the code.
pub async fn code(mock: &SpecMock, pkce: Option<(&str, &str)>) -> Result<String, AnyError> {
    let callback = mock.approve(&mock.build_authorize_url("s", pkce)?).await?;
    query_param(&callback, "code").ok_or_else(|| format!("no code in {callback}").into())
}

/// How a raw token request is sent.
pub enum Body<'a> {
    /// Form-encoded.
    Form(&'a [(&'a str, &'a str)]),
    /// A JSON object of strings.
    Json(&'a [(&'a str, &'a str)]),
}

/// POSTs `body` to `url`, with `Authorization: Basic` of `basic` (each
/// part form-encoded) if given; the status, the `WWW-Authenticate`
/// header and the JSON body (`Null` for an empty one).
pub async fn post(
    url: Url,
    body: Body<'_>,
    basic: Option<(&str, &str)>,
) -> Result<(u16, Option<String>, Value), AnyError> {
    let request = client().post(url).header("accept", "application/json");
    let request = match body {
        Body::Form(pairs) => request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs)),
        Body::Json(pairs) => {
            let object: serde_json::Map<String, Value> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
                .collect();
            request.json(&object)
        }
    };
    let request = match basic {
        Some((id, secret)) => {
            let encode = |s: &str| -> String {
                url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
            };
            let value = STANDARD.encode(format!("{}:{}", encode(id), encode(secret)));
            request.header("authorization", format!("Basic {value}"))
        }
        None => request,
    };
    let response = request.send().await?;
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await?;
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)?
    };
    Ok((status, challenge, json))
}

/// The `error` of an RFC 6749 error body, or `""`.
pub fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

/// `GET /api/v1/me` with `access_token`: the status.
pub async fn me_status(mock: &SpecMock, access_token: &str) -> Result<u16, AnyError> {
    let response = client()
        .get(mock.me_url())
        .bearer_auth(access_token)
        .send()
        .await?;
    Ok(response.status().as_u16())
}
