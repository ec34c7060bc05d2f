//! A mock partner bookings API: client credentials over JSON, a JWT access
//! token with fractional timestamps, and no refresh.
//!
//! | endpoint | path |
//! |---|---|
//! | token | `POST /api/oauth/token`, `Content-Type: application/json`, `{"grant_type":"client_credentials","client_id","client_secret"}` |
//!
//! Success (HTTP 200): `{"token_type":"Bearer","expires_in":<lifetime>,"access_token":"<JWT>"}`.
//! The JWT is `base64url(header).base64url(claims).base64url(random bytes)`
//! (header `{"typ":"JWT","alg":"RS256"}`; the signature is fake, clients
//! decode and never verify) with the claims of [`PartnerClaims`].
//!
//! Errors: any `grant_type` but `client_credentials` (e.g. `refresh_token`):
//! 400 `{"error":"unsupported_grant_type"}`; wrong or missing credentials:
//! 401 `{"error":"invalid_client"}`; a malformed body or missing
//! `grant_type`: 400 `{"error":"invalid_request"}`; a `Content-Type` other
//! than `application/json`: 415 `{"error":"invalid_request"}`. Every error
//! body also has an `error_description`.
//!
//! The protected API of the other mocks is here too: `GET /api/v1/me`
//! answers `{"subject":"<USER_ID>","client_id","scopes":[<SCOPES>]}` and
//! `POST /api/v1/echo` echoes a JSON body, for a valid `Authorization:
//! Bearer <JWT>` (see [`hypersku`](crate::hypersku) for the refusals, with
//! `realm="Partner"`).

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use url::Url;

use crate::common::api::{self, ApiProfile};
use crate::common::faults::{self, rfc6749_fault_body};
use crate::common::http::{
    content_type, has_content_type, hex, json_response, random_bytes, random_string, unix_secs_f64,
};
use crate::common::server::{MockCore, Shared};
use crate::common::{impl_mock_provider, MockConfig, MockError};

/// The token path.
pub const TOKEN_PATH: &str = "/api/oauth/token";
/// The `user_id` claim of every token.
pub const USER_ID: &str = "842902db-54e5-4614-b348-002e8ce5da12";
/// The `partner_id` claim of every token.
pub const PARTNER_ID: &str = "f31120ee-b5cb-41c4-9529-288d02e91cd6";
/// The `scopes` claim of every token.
pub const SCOPES: [&str; 2] = ["bookings:create", "bookings:delete"];
/// The JWT header (before base64url encoding).
pub const JWT_HEADER: &str = r#"{"typ":"JWT","alg":"RS256"}"#;

const PROVIDER: &str = "Partner";

/// The claims of the partner's JWT, in the provider's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartnerClaims {
    /// The client id.
    pub aud: String,
    /// A unique token id (80 hex digits, counter-derived).
    pub jti: String,
    /// Issue time, fractional epoch seconds.
    pub iat: f64,
    /// Not-before time (= `iat`), fractional epoch seconds.
    pub nbf: f64,
    /// Expiry time (= `iat` + lifetime), fractional epoch seconds.
    pub exp: f64,
    /// Always empty.
    pub sub: String,
    /// Always [`SCOPES`].
    pub scopes: Vec<String>,
    /// Always [`USER_ID`].
    pub user_id: String,
    /// Always [`PARTNER_ID`].
    pub partner_id: String,
    /// Always `true`.
    pub is_test: bool,
}

impl PartnerClaims {
    /// Decodes the claims of a JWT issued by the mock (no verification).
    pub fn decode(jwt: &str) -> Option<PartnerClaims> {
        let payload = jwt.split('.').nth(1)?;
        let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// A running mock partner server. Cheap to clone; the server stops when
/// the last clone is dropped or on [`PartnerMock::shutdown`].
///
/// The partner has no authorize endpoint and no refresh tokens:
/// [`MockServer::is_refresh_token_valid`](crate::MockServer::is_refresh_token_valid)
/// is always false.
#[derive(Clone, Debug)]
pub struct PartnerMock {
    core: Arc<MockCore>,
}

impl_mock_provider!(PartnerMock);

impl PartnerMock {
    /// Starts the mock on `127.0.0.1` (a free port) on the current tokio runtime.
    pub async fn start(config: MockConfig) -> Result<Self, MockError> {
        let core = MockCore::start(config, &[TOKEN_PATH], routes).await?;
        Ok(Self { core })
    }

    /// `{base}/api/oauth/token`.
    pub fn token_url(&self) -> Url {
        self.core.url(TOKEN_PATH)
    }

    /// Stops the server (for every clone) and waits for open connections.
    pub async fn shutdown(self) {
        self.core.shutdown().await;
    }
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(TOKEN_PATH, post(token))
        .merge(api::routes(ApiProfile {
            realm: PROVIDER.into(),
            subject: USER_ID.into(),
        }))
        .with_state(shared)
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = faults::apply(shared.pop_fault(), rfc6749_fault_body).await {
        return response;
    }
    if !has_content_type(&headers, "application/json") {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            &format!(
                "Content-Type must be application/json, not {}",
                content_type(&headers)
            ),
        );
    }
    let body: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(body)) => body,
        Ok(_) => return invalid_request("the body must be a JSON object"),
        Err(e) => return invalid_request(&format!("malformed JSON body: {e}")),
    };
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    match field("grant_type") {
        None => return invalid_request("missing required field grant_type"),
        Some("client_credentials") => {}
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type {other:?} is not supported (tokens cannot be refreshed)"),
            )
        }
    }
    let config = &shared.config;
    if field("client_id") != Some(config.client_id.as_str())
        || field("client_secret") != Some(config.client_secret.as_str())
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }

    let now = shared.now();
    let jwt = {
        let mut state = shared.lock();
        let jwt = mint_jwt(config, state.grants.count_access_token(), now);
        state
            .grants
            .access_tokens
            .record(&jwt, &SCOPES.join(" "), now, None);
        jwt
    };
    let style = shared.style();
    let mut response = json!({
        "token_type": "Bearer",
        "expires_in": style.number(config.access_token_lifetime.as_secs()),
        "access_token": jwt,
    });
    if style.omit_expires_in {
        if let Value::Object(map) = &mut response {
            map.remove("expires_in");
        }
    }
    json_response(StatusCode::OK, &response)
}

/// Builds the fake RS256 JWT for token number `serial`.
fn mint_jwt(config: &MockConfig, serial: usize, now: SystemTime) -> String {
    let iat = epoch_f64(now);
    let claims = PartnerClaims {
        aud: config.client_id.clone(),
        jti: format!("{serial:016x}{}", hex(&random_bytes(32))),
        iat,
        nbf: iat,
        exp: epoch_f64(now + config.access_token_lifetime),
        sub: String::new(),
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        user_id: USER_ID.to_owned(),
        partner_id: PARTNER_ID.to_owned(),
        is_test: true,
    };
    let payload = serde_json::to_vec(&claims).unwrap_or_default();
    format!(
        "{}{}.{}.{}",
        config.token_prefix,
        URL_SAFE_NO_PAD.encode(JWT_HEADER),
        URL_SAFE_NO_PAD.encode(payload),
        random_string(256),
    )
}

/// Epoch seconds with microseconds, parsed from their decimal form so the
/// JSON shows exactly six digits' worth (e.g. `1710220031.583112`).
fn epoch_f64(t: SystemTime) -> f64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => format!("{}.{:06}", d.as_secs(), d.subsec_micros())
            .parse()
            .unwrap_or_else(|_| unix_secs_f64(t)),
        Err(_) => 0.0,
    }
}

fn error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn invalid_request(description: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request", description)
}
