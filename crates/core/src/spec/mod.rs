//! Provider dialects as data: a [`ProviderSpec`] says how a provider bends
//! RFC 6749 (parameter names, JSON or form bodies, client authentication,
//! extra parameters and headers, where each response field is, envelopes,
//! business error codes, expiry units), and a [`SpecProvider`] made from it
//! speaks that dialect with no code. HyperSKU and Hike are specs plus what
//! is truly code; the catalog in the repository's `examples/providers/`
//! holds well-known ones.
//!
//! A spec is TOML or JSON (serde), or built in Rust; only what differs from
//! RFC 6749 needs to be written. [`ProviderSpec::from_toml`] and
//! [`ProviderSpec::from_json`] check it when it is loaded, naming the field
//! at fault.
//!
//! ```
//! use oauth2_adapters::ProviderSpec;
//!
//! let spec = ProviderSpec::from_toml(r#"
//!     id = "example"
//!     [authorize]
//!     url = "https://example.com/oauth/authorize"
//!     extra_params = { access_type = "offline", prompt = "consent" }
//!     [token]
//!     url = "https://example.com/oauth/token"
//!     client_auth = "client_secret_basic"
//! "#)?;
//! assert_eq!(spec.id, "example");
//! # Ok::<(), oauth2_adapters::SpecError>(())
//! ```

mod fields;
mod flat_response;
mod load;
mod provider;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use fields::{AuthorizeParamNames, TokenFieldNames};
pub use load::SpecError;
pub use provider::{SpecProvider, SpecProviderBuilder};

/// One provider's OAuth2 dialect. Every field but `id` and `token.url` has
/// a default: RFC 6749's choice. `docs/provider-specs.md` lists them all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderSpec {
    /// The provider id recorded in its tokens and keys (`[a-z0-9._-]+`).
    pub id: String,
    /// Its name as people know it (default: the id).
    #[serde(default)]
    pub name: Option<String>,
    /// The public documentation pages the facts come from.
    #[serde(default)]
    pub docs: Vec<String>,
    /// How its tokens are renewed (default: with refresh tokens when
    /// there is an authorize endpoint, else by re-acquiring with client
    /// credentials).
    #[serde(default)]
    pub renewal: Option<RenewalKind>,
    /// Whether a refresh answers with a new refresh token that replaces
    /// the old one (default `true`, the safe assumption: a refresh is then
    /// retried only when it never reached the server).
    #[serde(default = "yes")]
    pub rotates_refresh_tokens: bool,
    /// The authorization code flow's authorize endpoint (none: client
    /// credentials only).
    #[serde(default)]
    pub authorize: Option<AuthorizeSpec>,
    /// The token endpoint and its requests.
    pub token: TokenSpec,
    /// Where each field of a token response is.
    #[serde(default)]
    pub response: ResponseSpec,
    /// Token revocation (RFC 7009), when the provider has it.
    #[serde(default)]
    pub revocation: Option<RevocationSpec>,
}

pub use crate::provider::RenewalKind;

/// The authorize endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthorizeSpec {
    /// The authorize URL (its own query parameters are kept).
    pub url: String,
    /// The query parameter names (default: RFC 6749's).
    #[serde(default)]
    pub params: AuthorizeParamNames,
    /// Whether `response_type=code` is sent (default `true`).
    #[serde(default = "yes")]
    pub send_response_type: bool,
    /// What joins the scopes (default a space).
    #[serde(default = "space")]
    pub scope_separator: String,
    /// The scopes asked for when a request names none.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// Whether the provider refuses an authorization without a scope.
    #[serde(default)]
    pub scope_required: bool,
    /// Parameters sent on every authorization (e.g. Google's
    /// `access_type = "offline"`); a request adds its own with
    /// [`AuthorizeRequest::with_param`](crate::AuthorizeRequest::with_param).
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
    /// PKCE (RFC 7636): `off`, `on` (S256, the default) or `required`.
    #[serde(default)]
    pub pkce: Pkce,
    /// How long a pending authorization stays usable, in seconds (default
    /// 600, the usual life of a code).
    #[serde(default)]
    pub max_age_secs: Option<u64>,
}

/// Whether PKCE is used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pkce {
    /// Not sent.
    Off,
    /// Sent (S256), and may be turned off by the application.
    #[default]
    On,
    /// Sent (S256); the provider refuses authorizations without it.
    Required,
}

/// The body format of token requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded` (RFC 6749).
    #[default]
    Form,
    /// `application/json`.
    Json,
}

/// How the client authenticates at the token endpoint (RFC 7591 names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with the client id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// The client id and secret in the body.
    #[default]
    ClientSecretPost,
    /// The client id in the body, no secret (a public client, with PKCE).
    None,
}

/// The token endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TokenSpec {
    /// The token URL.
    pub url: String,
    /// A separate URL for refreshes (default: the token URL).
    #[serde(default)]
    pub refresh_url: Option<String>,
    /// `form` (default) or `json`.
    #[serde(default)]
    pub body: BodyFormat,
    /// `client_secret_post` (default), `client_secret_basic` or `none`.
    #[serde(default)]
    pub client_auth: ClientAuthMethod,
    /// The body field names (default: RFC 6749's).
    #[serde(default)]
    pub fields: TokenFieldNames,
    /// Headers sent on every token and revocation request (e.g.
    /// Notion's `Notion-Version`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers whose value is a secret given to the builder by name
    /// ([`SpecProviderBuilder::secret`]), e.g. HyperSKU's
    /// `Authorization = "api_key"`. A missing secret leaves the header out.
    #[serde(default)]
    pub secret_headers: BTreeMap<String, String>,
    /// Parameters added to every token request.
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
    /// Parameters added to code exchanges only.
    #[serde(default)]
    pub code_params: BTreeMap<String, String>,
    /// Parameters added to refreshes only.
    #[serde(default)]
    pub refresh_params: BTreeMap<String, String>,
    /// What joins scopes in a client-credentials request (default a space).
    #[serde(default = "space")]
    pub scope_separator: String,
}

/// Where each field of a token response is. Paths are dot-separated
/// (`data.accessToken`), relative to the token object: the body, or the
/// envelope's data when the body is an envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ResponseSpec {
    /// The access token (default `access_token`).
    pub access_token: String,
    /// The token type (default `token_type`); when present it must say Bearer.
    pub token_type: String,
    /// Whether a missing token type is refused (default `false`: Bearer).
    pub token_type_required: bool,
    /// Other token type values the provider sends for tokens that are
    /// used as Bearer tokens (Slack's `bot` and `user`); `Bearer`, in any
    /// case, is always accepted.
    pub bearer_token_types: Vec<String>,
    /// The refresh token (default `refresh_token`).
    pub refresh_token: String,
    /// The access token's lifetime (default `expires_in`).
    pub expires_in: String,
    /// The unit of the lifetimes (default `seconds`).
    pub expires_in_unit: TimeUnit,
    /// An absolute expiry instant (epoch, in `expires_at_unit`), if the
    /// provider sends one (Hike's `expires`).
    pub expires_at: Option<String>,
    /// The unit of the absolute expiry (default `seconds`).
    pub expires_at_unit: TimeUnit,
    /// Which expiry wins when both are sent (default `relative`).
    pub expiry_precedence: ExpiryPrecedence,
    /// The refresh token's lifetime, if the provider sends it.
    pub refresh_expires_in: Option<String>,
    /// The granted scopes (default `scope`; a string or a list).
    pub scope: String,
    /// What separates scopes in a string (default: spaces and commas).
    pub scope_separator: Option<String>,
    /// The account the token acts for (e.g. HyperSKU's `userId`).
    pub subject: Option<String>,
    /// An envelope around the token (`{"code": 200, "data": {…}}`).
    pub envelope: Option<EnvelopeSpec>,
    /// Business error codes (of the envelope, or an `error` value) mapped
    /// to OAuth error codes, e.g. `"60025" = "invalid_grant"`.
    pub error_codes: BTreeMap<String, String>,
    /// Whether a token must come with HTTP 200 exactly (RFC 6749 §5.1;
    /// default `false`: any 2xx).
    pub status_200_only: bool,
    /// Whether a token answer whose `Content-Type` is not
    /// `application/json` is refused (RFC 6749 §5.1; default `false`). A
    /// missing header is accepted.
    pub json_content_type_only: bool,
}

/// A response envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct EnvelopeSpec {
    /// The result code's path (default `code`).
    pub code: String,
    /// The codes that mean success (default `[0, 200]`).
    pub success: Vec<i64>,
    /// The path of the token object in a success (default `data`).
    pub data: String,
    /// Paths of a human-readable message, tried in order (default `msg`, `message`).
    pub message: Vec<String>,
}

/// A unit of time on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Seconds.
    #[default]
    Seconds,
    /// Milliseconds.
    Milliseconds,
    /// Minutes.
    Minutes,
}

/// Which expiry wins when a response has both a lifetime and an instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryPrecedence {
    /// The lifetime (it does not depend on the clocks agreeing); the
    /// instant only when the lifetime is missing or zero and the instant
    /// lies ahead.
    #[default]
    Relative,
    /// The instant, when it lies ahead; else the lifetime.
    Absolute,
    /// Whichever ends first.
    Earliest,
}

/// Token revocation (RFC 7009).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RevocationSpec {
    /// The revocation URL.
    pub url: String,
    /// `form` (default) or `json`.
    #[serde(default)]
    pub body: BodyFormat,
    /// The token's field name (default `token`).
    #[serde(default = "token_field")]
    pub token_field: String,
    /// Whether `token_type_hint` is sent (default `true`).
    #[serde(default = "yes")]
    pub send_token_type_hint: bool,
    /// Whether the refresh token is revoked (which, RFC 7009 §2.1, should
    /// end the whole grant) rather than the access token (default `true`).
    #[serde(default = "yes")]
    pub revoke_refresh_token: bool,
}

impl Default for ResponseSpec {
    fn default() -> Self {
        Self {
            access_token: "access_token".into(),
            token_type: "token_type".into(),
            token_type_required: false,
            bearer_token_types: Vec::new(),
            refresh_token: "refresh_token".into(),
            expires_in: "expires_in".into(),
            expires_in_unit: TimeUnit::Seconds,
            expires_at: None,
            expires_at_unit: TimeUnit::Seconds,
            expiry_precedence: ExpiryPrecedence::Relative,
            refresh_expires_in: None,
            scope: "scope".into(),
            scope_separator: None,
            subject: None,
            envelope: None,
            error_codes: BTreeMap::new(),
            status_200_only: false,
            json_content_type_only: false,
        }
    }
}

impl Default for EnvelopeSpec {
    fn default() -> Self {
        Self {
            code: "code".into(),
            success: vec![0, 200],
            data: "data".into(),
            message: vec!["msg".into(), "message".into()],
        }
    }
}

impl TimeUnit {
    /// The length of one unit.
    pub fn duration(self) -> std::time::Duration {
        match self {
            Self::Seconds => std::time::Duration::from_secs(1),
            Self::Milliseconds => std::time::Duration::from_millis(1),
            Self::Minutes => std::time::Duration::from_secs(60),
        }
    }
}

impl ProviderSpec {
    /// A spec of a strict RFC 6749 provider with these endpoints (the
    /// authorize URL `None`: client credentials only); change the rest
    /// with the public fields.
    pub fn new(id: impl Into<String>, authorize_url: Option<&str>, token_url: &str) -> Self {
        Self {
            id: id.into(),
            name: None,
            docs: Vec::new(),
            renewal: None,
            rotates_refresh_tokens: true,
            authorize: authorize_url.map(|url| AuthorizeSpec {
                url: url.to_owned(),
                params: AuthorizeParamNames::default(),
                send_response_type: true,
                scope_separator: " ".into(),
                default_scopes: Vec::new(),
                scope_required: false,
                extra_params: BTreeMap::new(),
                pkce: Pkce::On,
                max_age_secs: None,
            }),
            token: TokenSpec {
                url: token_url.to_owned(),
                refresh_url: None,
                body: BodyFormat::Form,
                client_auth: ClientAuthMethod::ClientSecretPost,
                fields: TokenFieldNames::default(),
                headers: BTreeMap::new(),
                secret_headers: BTreeMap::new(),
                extra_params: BTreeMap::new(),
                code_params: BTreeMap::new(),
                refresh_params: BTreeMap::new(),
                scope_separator: " ".into(),
            },
            response: ResponseSpec::default(),
            revocation: None,
        }
    }

    /// The provider's name (its id when the spec names none).
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// How its tokens are renewed (see [`ProviderSpec::renewal`]).
    pub fn renewal_kind(&self) -> RenewalKind {
        self.renewal.unwrap_or(if self.authorize.is_some() {
            RenewalKind::RefreshToken
        } else {
            RenewalKind::Reacquire
        })
    }
}

fn yes() -> bool {
    true
}

fn space() -> String {
    " ".into()
}

fn token_field() -> String {
    "token".into()
}
