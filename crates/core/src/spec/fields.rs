//! The parameter and field names of a dialect (RFC 6749's by default).

use serde::{Deserialize, Serialize};

/// The authorize URL's query parameter names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AuthorizeParamNames {
    /// Default `client_id` (HyperSKU: `clientId`).
    pub client_id: String,
    /// Default `redirect_uri` (HyperSKU: `redirectUri`).
    pub redirect_uri: String,
    /// Default `scope`.
    pub scope: String,
    /// Default `state`.
    pub state: String,
    /// Default `response_type`.
    pub response_type: String,
    /// Default `code_challenge`.
    pub code_challenge: String,
    /// Default `code_challenge_method`.
    pub code_challenge_method: String,
}

impl Default for AuthorizeParamNames {
    fn default() -> Self {
        Self {
            client_id: "client_id".into(),
            redirect_uri: "redirect_uri".into(),
            scope: "scope".into(),
            state: "state".into(),
            response_type: "response_type".into(),
            code_challenge: "code_challenge".into(),
            code_challenge_method: "code_challenge_method".into(),
        }
    }
}

/// The token requests' body field names. An empty `grant_type` leaves the
/// grant type out of the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TokenFieldNames {
    /// Default `grant_type` (HyperSKU: `grantType`).
    pub grant_type: String,
    /// Default `client_id`.
    pub client_id: String,
    /// Default `client_secret`.
    pub client_secret: String,
    /// Default `code`.
    pub code: String,
    /// Default `redirect_uri`.
    pub redirect_uri: String,
    /// Default `refresh_token`.
    pub refresh_token: String,
    /// Default `code_verifier`.
    pub code_verifier: String,
    /// Default `scope` (client credentials).
    pub scope: String,
}

impl Default for TokenFieldNames {
    fn default() -> Self {
        Self {
            grant_type: "grant_type".into(),
            client_id: "client_id".into(),
            client_secret: "client_secret".into(),
            code: "code".into(),
            redirect_uri: "redirect_uri".into(),
            refresh_token: "refresh_token".into(),
            code_verifier: "code_verifier".into(),
            scope: "scope".into(),
        }
    }
}

impl TokenFieldNames {
    /// HyperSKU's camelCase names (`clientId`, `grantType`, …).
    pub fn camel_case() -> Self {
        Self {
            grant_type: "grantType".into(),
            client_id: "clientId".into(),
            client_secret: "clientSecret".into(),
            code: "code".into(),
            redirect_uri: "redirectUri".into(),
            refresh_token: "refreshToken".into(),
            code_verifier: "codeVerifier".into(),
            scope: "scope".into(),
        }
    }
}
