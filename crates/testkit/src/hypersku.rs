//! A mock HyperSKU: camelCase authorize query, camelCase JSON token
//! endpoints, and HyperSKU's `{"code", "msg", "data"}` error envelope.
//!
//! | endpoint | path |
//! |---|---|
//! | authorize (browser) | `GET /application/auth?clientId=..&scope=oms&redirectUri=..&state=..` (all four required, no `response_type`) |
//! | code exchange | `POST /api/auth/admin/token/access_token`, JSON `{"clientId","clientSecret","code","redirectUri","grantType":"authorization_code"}` (`grantType` optional) |
//! | refresh | `POST /api/auth/admin/token/refresh_token`, JSON `{"clientId","clientSecret","refreshToken","grantType":"refresh_token"}` (`grantType` optional) |
//!
//! Success (HTTP 200): `{"accessToken","expiresIn","refreshToken","refreshTokenExpireIn","scope":"oms","userId":"hs-user-1"}`
//! (seconds), wrapped as `{"code": 200, "msg": "success", "data": {...}}`
//! when [`ResponseStyle::envelope`](crate::ResponseStyle::envelope) is set.
//!
//! Errors, always enveloped:
//! - unknown, spent or expired code or refresh token, or a redirect URI
//!   that differs from the authorize request: HTTP **200** with
//!   `{"code": 60025, "msg": "...", "data": null}`;
//! - wrong client id or secret: HTTP 401 `{"code": 401, "msg": "client authentication failed", "data": null}`;
//! - malformed body or missing field: HTTP 400 `{"code": 400, ...}`;
//! - a `Content-Type` other than `application/json`: HTTP 415 `{"code": 415, ...}`.
//!
//! A protected API, for testing authenticated requests
//! ([`MockServer::me_url`](crate::MockServer::me_url),
//! [`MockServer::echo_url`](crate::MockServer::echo_url)):
//!
//! | endpoint | answer (HTTP 200) |
//! |---|---|
//! | `GET /api/v1/me` | `{"subject":"hs-user-1","client_id":..,"scopes":["oms"]}` |
//! | `POST /api/v1/echo`, a JSON body | `{"subject":"hs-user-1","echo":<the body>}` |
//!
//! Both need `Authorization: Bearer <accessToken>` with a token this mock
//! issued, not revoked
//! ([`MockServer::revoke_access_tokens`](crate::MockServer::revoke_access_tokens))
//! and not expired by the mock's clock. Otherwise (RFC 6750 §3): no header
//! → 401 `WWW-Authenticate: Bearer realm="HyperSKU"`; not `Bearer <token>`
//! → 400 `error="invalid_request"`; an unknown, revoked or expired token →
//! 401 `WWW-Authenticate: Bearer realm="HyperSKU", error="invalid_token",
//! error_description=".."`; each with a JSON body `{"error","error_description"}`.
//! A body that is not JSON gets 400. API requests are in
//! [`MockServer::requests`](crate::MockServer::requests), not in
//! [`MockServer::token_requests`](crate::MockServer::token_requests).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};
use url::Url;

use crate::common::api::{self, ApiProfile};
use crate::common::consent::{self, AuthorizeRequest};
use crate::common::faults;
use crate::common::grants::IssuedTokens;
use crate::common::http::{content_type, has_content_type, json_response, Params};
use crate::common::server::{MockCore, Shared};
use crate::common::{impl_mock_provider, MockConfig, MockError};

/// The authorize path (on `app.hypersku.com` in production).
pub const AUTHORIZE_PATH: &str = "/application/auth";
/// The code-exchange path (on `api.hypersku.com` in production).
pub const TOKEN_PATH: &str = "/api/auth/admin/token/access_token";
/// The refresh path (assumed; the documentation names the operation only).
pub const REFRESH_PATH: &str = "/api/auth/admin/token/refresh_token";
/// The only scope HyperSKU offers.
pub const SCOPE: &str = "oms";
/// The `userId` of every issued token.
pub const USER_ID: &str = "hs-user-1";
/// HyperSKU's business error code for a refused grant.
pub const INVALID_GRANT_CODE: u64 = 60025;

const PROVIDER: &str = "HyperSKU";
const TOKEN_PREFIX: &str = "hs";

/// A running mock HyperSKU server. Cheap to clone; the server stops when
/// the last clone is dropped or on [`HyperSkuMock::shutdown`].
#[derive(Clone, Debug)]
pub struct HyperSkuMock {
    core: Arc<MockCore>,
}

impl_mock_provider!(HyperSkuMock);

impl HyperSkuMock {
    /// Starts the mock on `127.0.0.1` (a free port) on the current tokio runtime.
    pub async fn start(config: MockConfig) -> Result<Self, MockError> {
        let core = MockCore::start(config, &[TOKEN_PATH, REFRESH_PATH], routes).await?;
        Ok(Self { core })
    }

    /// `{base}/application/auth`, without a query.
    pub fn authorize_url(&self) -> Url {
        self.core.url(AUTHORIZE_PATH)
    }

    /// `{base}/api/auth/admin/token/access_token`.
    pub fn token_url(&self) -> Url {
        self.core.url(TOKEN_PATH)
    }

    /// `{base}/api/auth/admin/token/refresh_token`.
    pub fn refresh_url(&self) -> Url {
        self.core.url(REFRESH_PATH)
    }

    /// A valid authorize URL for the configured client, redirect URI and
    /// scope `oms`, with this `state` (for tests that do not use an adapter).
    pub fn build_authorize_url(&self, state: &str) -> Url {
        let config = self.core.config();
        let mut url = self.authorize_url();
        url.query_pairs_mut()
            .append_pair("clientId", &config.client_id)
            .append_pair("scope", SCOPE)
            .append_pair("redirectUri", &config.redirect_uri)
            .append_pair("state", state);
        url
    }

    /// Approves `authorize_url` as a user clicking "Allow" would, and
    /// returns the callback URL `{redirect_uri}?code=..&state=..`.
    ///
    /// Fails with [`MockError::NoRedirect`] when the request is invalid
    /// (the mock answers its 400 page) and [`MockError::WrongEndpoint`] when
    /// the URL does not point at this mock's authorize endpoint.
    pub async fn approve(&self, authorize_url: &Url) -> Result<Url, MockError> {
        consent::submit_decision(&self.core, AUTHORIZE_PATH, authorize_url, "allow").await
    }

    /// Denies `authorize_url`, returning `{redirect_uri}?error=access_denied&state=..`.
    pub async fn deny(&self, authorize_url: &Url) -> Result<Url, MockError> {
        consent::submit_decision(&self.core, AUTHORIZE_PATH, authorize_url, "deny").await
    }

    /// Stops the server (for every clone) and waits for open connections.
    pub async fn shutdown(self) {
        self.core.shutdown().await;
    }
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(AUTHORIZE_PATH, get(authorize))
        .route(TOKEN_PATH, post(access_token))
        .route(REFRESH_PATH, post(refresh_token))
        .merge(api::routes(ApiProfile {
            realm: PROVIDER.into(),
            subject: USER_ID.into(),
        }))
        .with_state(shared)
}

async fn authorize(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or(""));
    if let Some(name) = params.repeated() {
        return consent::error_page(PROVIDER, &format!("parameter {name} is repeated"));
    }
    for (wrong, hint) in [
        ("client_id", "use clientId"),
        ("redirect_uri", "use redirectUri"),
        ("response_type", "HyperSKU takes no response_type"),
    ] {
        if params.contains(wrong) {
            return consent::error_page(PROVIDER, &format!("unknown parameter {wrong}: {hint}"));
        }
    }
    let mut missing = ["clientId", "scope", "redirectUri", "state"]
        .into_iter()
        .filter(|name| params.get(name).is_none());
    if let Some(name) = missing.next() {
        return consent::error_page(PROVIDER, &format!("missing required parameter {name}"));
    }
    let (client_id, scope, redirect_uri, state) = (
        params.get("clientId").unwrap_or_default(),
        params.get("scope").unwrap_or_default(),
        params.get("redirectUri").unwrap_or_default(),
        params.get("state"),
    );
    let config = &shared.config;
    if client_id != config.client_id {
        return consent::error_page(PROVIDER, &format!("unknown clientId {client_id:?}"));
    }
    if redirect_uri != config.redirect_uri {
        return consent::error_page(
            PROVIDER,
            &format!("redirectUri {redirect_uri:?} does not match the registered callback URL"),
        );
    }
    if let Some(unknown) = scope.split(' ').find(|s| !s.is_empty() && *s != SCOPE) {
        return consent::error_page(PROVIDER, &format!("unknown scope {unknown:?}"));
    }
    let request = AuthorizeRequest {
        provider: PROVIDER,
        path: AUTHORIZE_PATH,
        client_id,
        redirect_uri,
        scope,
        state,
        pkce: None,
    };
    consent::decide(&shared, &params, request)
}

async fn access_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = faults::apply(shared.pop_fault(), fault_body).await {
        return response;
    }
    exchange(&shared, &headers, &body).unwrap_or_else(IntoResponse::into_response)
}

fn exchange(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Response, HsError> {
    let request = TokenRequest::parse(shared, headers, body, "authorization_code")?;
    let code = request.field("code")?;
    let redirect_uri = request.field("redirectUri")?;
    let now = shared.now();
    let lifetime = shared.config.refresh_token_lifetime;
    let (tokens, scope) = shared
        .lock()
        .grants
        .exchange_code(
            code,
            &shared.config.client_id,
            redirect_uri,
            &shared.config.issued_prefix(TOKEN_PREFIX),
            now,
            lifetime,
        )
        .map_err(|err| HsError::invalid_grant(format!("invalid authorization code: {err}")))?;
    Ok(success(shared, &tokens, &scope))
}

async fn refresh_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = faults::apply(shared.pop_fault(), fault_body).await {
        return response;
    }
    match refresh(&shared, &headers, &body) {
        Ok(response) => {
            shared.config.hold_refresh_response().await;
            response
        }
        Err(err) => err.into_response(),
    }
}

fn refresh(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Response, HsError> {
    let request = TokenRequest::parse(shared, headers, body, "refresh_token")?;
    let refresh_token = request.field("refreshToken")?;
    let now = shared.now();
    let lifetime = shared.config.refresh_token_lifetime;
    let on_reuse = shared.config.on_reuse();
    let (tokens, scope) = shared
        .lock()
        .grants
        .rotate_refresh_token(
            refresh_token,
            on_reuse,
            &shared.config.issued_prefix(TOKEN_PREFIX),
            now,
            lifetime,
        )
        .map_err(|err| HsError::invalid_grant(format!("invalid refresh token: {err}")))?;
    Ok(success(shared, &tokens, &scope))
}

/// A HyperSKU error, answered as `{"code", "msg", "data": null}` with an
/// HTTP status.
#[derive(Debug)]
struct HsError {
    status: StatusCode,
    code: u64,
    msg: String,
}

impl HsError {
    fn new(status: StatusCode, code: u64, msg: impl Into<String>) -> Self {
        Self {
            status,
            code,
            msg: msg.into(),
        }
    }

    /// A refused code or refresh token: HTTP 200 with code 60025.
    fn invalid_grant(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::OK, INVALID_GRANT_CODE, msg)
    }

    fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 400, msg)
    }
}

impl IntoResponse for HsError {
    fn into_response(self) -> Response {
        json_response(
            self.status,
            &json!({"code": self.code, "msg": self.msg, "data": null}),
        )
    }
}

/// A token request whose content type, JSON shape, `grantType` and client
/// credentials were checked.
struct TokenRequest {
    body: Map<String, Value>,
}

impl TokenRequest {
    fn parse(
        shared: &Shared,
        headers: &HeaderMap,
        body: &[u8],
        grant_type: &str,
    ) -> Result<Self, HsError> {
        if !has_content_type(headers, "application/json") {
            return Err(HsError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                415,
                format!("Content type '{}' not supported", content_type(headers)),
            ));
        }
        let body = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(body)) => body,
            Ok(_) => return Err(HsError::bad_request("request body must be a JSON object")),
            Err(e) => return Err(HsError::bad_request(format!("malformed JSON body: {e}"))),
        };
        let request = Self { body };
        match request.body.get("grantType") {
            None | Some(Value::Null) => {}
            Some(Value::String(g)) if g == grant_type => {}
            Some(other) => {
                return Err(HsError::bad_request(format!(
                    "unsupported grantType {other} (expected \"{grant_type}\")"
                )))
            }
        }
        let client_id = request.field("clientId")?;
        let client_secret = request.field("clientSecret")?;
        if client_id != shared.config.client_id || client_secret != shared.config.client_secret {
            return Err(HsError::new(
                StatusCode::UNAUTHORIZED,
                401,
                "client authentication failed",
            ));
        }
        Ok(request)
    }

    /// A required, non-empty string field.
    fn field(&self, name: &str) -> Result<&str, HsError> {
        match self.body.get(name) {
            Some(Value::String(value)) if !value.is_empty() => Ok(value),
            Some(Value::String(_)) | None | Some(Value::Null) => Err(HsError::bad_request(
                format!("missing required field {name}"),
            )),
            Some(_) => Err(HsError::bad_request(format!(
                "field {name} must be a string"
            ))),
        }
    }
}

fn success(shared: &Shared, tokens: &IssuedTokens, scope: &str) -> Response {
    let style = shared.style();
    let config = &shared.config;
    let data = json!({
        "accessToken": tokens.access_token,
        "expiresIn": style.number(config.access_token_lifetime.as_secs()),
        "refreshToken": tokens.refresh_token,
        "refreshTokenExpireIn": style.number(config.refresh_token_lifetime.as_secs()),
        "scope": scope,
        "userId": USER_ID,
    });
    let body = if style.envelope {
        json!({"code": 200, "msg": "success", "data": data})
    } else {
        data
    };
    json_response(StatusCode::OK, &body)
}

fn fault_body(status: u16) -> Value {
    json!({"code": status, "msg": format!("mock fault: HTTP {status}"), "data": null})
}
