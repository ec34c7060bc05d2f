//! A mock Hike: standard RFC 6749 authorization code flow, form-encoded
//! token requests with the client credentials in the body, and an
//! absolute `expires` next to `expires_in`.
//!
//! | endpoint | path |
//! |---|---|
//! | authorize (browser) | `GET /oauth/authorize?response_type=code&client_id=..&redirect_uri=..&scope=all[&state=..]` |
//! | token (exchange and refresh) | `POST /oauth/token`, `application/x-www-form-urlencoded` |
//!
//! Exchange: `client_id`, `client_secret`, `grant_type=authorization_code`,
//! `code`, `redirect_uri`. Refresh: `client_id`, `client_secret`,
//! `grant_type=refresh_token`, `refresh_token` (rotated: the old one is
//! spent). PKCE (RFC 7636): an authorization with a `code_challenge`
//! (`S256`, or `plain` when no `code_challenge_method` is sent) issues a
//! code that is exchanged only with the `code_verifier` answering it (a
//! missing or wrong one: `invalid_grant`, the code stays usable); a
//! malformed challenge or an unknown method gets the error page. Other
//! extra parameters are ignored.
//!
//! Success (HTTP 200): `{"access_token","token_type":"Bearer","expires":<now + lifetime, epoch seconds>,"expires_in":<lifetime>,"refresh_token"}`.
//!
//! Errors (RFC 6749 §5.2, `{"error","error_description"}`):
//! `invalid_request` 400 (missing or repeated parameter), `invalid_client`
//! 401 (wrong, missing or HTTP-Basic credentials), `unsupported_grant_type`
//! 400, `invalid_grant` 400 (unknown, spent or expired code or refresh
//! token, redirect URI mismatch); a non-form `Content-Type` gets 415
//! `invalid_request`.
//!
//! A protected API, for testing authenticated requests
//! ([`MockServer::me_url`](crate::MockServer::me_url),
//! [`MockServer::echo_url`](crate::MockServer::echo_url)):
//!
//! | endpoint | answer (HTTP 200) |
//! |---|---|
//! | `GET /api/v1/me` | `{"subject":"hike-store-1","client_id":..,"scopes":["all"]}` ([`STORE_ID`]) |
//! | `POST /api/v1/echo`, a JSON body | `{"subject":"hike-store-1","echo":<the body>}` |
//!
//! Both need `Authorization: Bearer <access_token>` with a token this mock
//! issued, not revoked
//! ([`MockServer::revoke_access_tokens`](crate::MockServer::revoke_access_tokens))
//! and not expired by the mock's clock. Otherwise (RFC 6750 §3): no header
//! → 401 `WWW-Authenticate: Bearer realm="Hike"`; not `Bearer <token>` →
//! 400 `error="invalid_request"`; an unknown, revoked or expired token →
//! 401 `WWW-Authenticate: Bearer realm="Hike", error="invalid_token",
//! error_description=".."`; each with a JSON body `{"error","error_description"}`.
//! A body that is not JSON gets 400. API requests are in
//! [`MockServer::requests`](crate::MockServer::requests), not in
//! [`MockServer::token_requests`](crate::MockServer::token_requests).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};
use url::Url;

use crate::common::api::{self, ApiProfile};
use crate::common::consent::{self, AuthorizeRequest};
use crate::common::faults::{self, rfc6749_fault_body};
use crate::common::grants::{GrantError, IssuedTokens, PkceChallenge};
use crate::common::http::{content_type, has_content_type, json_response, unix_secs, Params};
use crate::common::server::{MockCore, Shared};
use crate::common::{impl_mock_provider, MockConfig, MockError};

/// The authorize path.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// The token path (exchange and refresh).
pub const TOKEN_PATH: &str = "/oauth/token";
/// The only scope Hike offers today.
pub const SCOPE: &str = "all";
/// The store every token belongs to (the protected API's `subject`).
pub const STORE_ID: &str = "hike-store-1";

const PROVIDER: &str = "Hike";
const TOKEN_PREFIX: &str = "hike";
const FORM: &str = "application/x-www-form-urlencoded";

/// A running mock Hike server. Cheap to clone; the server stops when the
/// last clone is dropped or on [`HikeMock::shutdown`].
#[derive(Clone, Debug)]
pub struct HikeMock {
    core: Arc<MockCore>,
}

impl_mock_provider!(HikeMock);

impl HikeMock {
    /// Starts the mock on `127.0.0.1` (a free port) on the current tokio runtime.
    pub async fn start(config: MockConfig) -> Result<Self, MockError> {
        let core = MockCore::start(config, &[TOKEN_PATH], routes).await?;
        Ok(Self { core })
    }

    /// `{base}/oauth/authorize`, without a query.
    pub fn authorize_url(&self) -> Url {
        self.core.url(AUTHORIZE_PATH)
    }

    /// `{base}/oauth/token`.
    pub fn token_url(&self) -> Url {
        self.core.url(TOKEN_PATH)
    }

    /// A valid authorize URL for the configured client, redirect URI and
    /// scope `all`, with this `state` if any (for tests without an adapter).
    pub fn build_authorize_url(&self, state: Option<&str>) -> Url {
        let config = self.core.config();
        let mut url = self.authorize_url();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &config.client_id)
                .append_pair("redirect_uri", &config.redirect_uri)
                .append_pair("scope", SCOPE);
            if let Some(state) = state {
                query.append_pair("state", state);
            }
        }
        url
    }

    /// Approves `authorize_url` as a user clicking "Allow" would, and
    /// returns the callback URL `{redirect_uri}?code=..[&state=..]`.
    ///
    /// Fails with [`MockError::NoRedirect`] when the request is invalid
    /// (the mock answers its 400 page) and [`MockError::WrongEndpoint`] when
    /// the URL does not point at this mock's authorize endpoint.
    pub async fn approve(&self, authorize_url: &Url) -> Result<Url, MockError> {
        consent::submit_decision(&self.core, AUTHORIZE_PATH, authorize_url, "allow").await
    }

    /// Denies `authorize_url`, returning `{redirect_uri}?error=access_denied[&state=..]`.
    pub async fn deny(&self, authorize_url: &Url) -> Result<Url, MockError> {
        consent::submit_decision(&self.core, AUTHORIZE_PATH, authorize_url, "deny").await
    }

    /// Issues `count` grants at once, each as a sign-in's code exchange
    /// would (scope `all`, a new grant family, a refresh token valid for
    /// [`MockConfig::refresh_token_lifetime`]), without a request: for load
    /// tests that need many live refresh tokens (the wave bench seeds
    /// 100,000). Returns `(access_token, refresh_token)` pairs; nothing is
    /// recorded in [`MockServer::requests`](crate::MockServer::requests).
    pub fn issue_grants(&self, count: usize) -> Vec<(String, String)> {
        let shared = &self.core.shared;
        let now = shared.now();
        let lifetime = shared.config.refresh_token_lifetime;
        shared
            .lock()
            .grants
            .start_families(
                count,
                &shared.config.issued_prefix(TOKEN_PREFIX),
                SCOPE,
                now,
                lifetime,
            )
            .into_iter()
            .map(|tokens| (tokens.access_token, tokens.refresh_token))
            .collect()
    }

    /// Stops the server (for every clone) and waits for open connections.
    pub async fn shutdown(self) {
        self.core.shutdown().await;
    }
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(AUTHORIZE_PATH, get(authorize))
        .route(TOKEN_PATH, post(token))
        .merge(api::routes(ApiProfile {
            realm: PROVIDER.into(),
            subject: STORE_ID.into(),
        }))
        .with_state(shared)
}

async fn authorize(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or(""));
    if let Some(name) = params.repeated() {
        return consent::error_page(PROVIDER, &format!("parameter {name} is repeated"));
    }
    let mut missing = ["response_type", "client_id", "redirect_uri", "scope"]
        .into_iter()
        .filter(|name| params.get(name).is_none());
    if let Some(name) = missing.next() {
        return consent::error_page(PROVIDER, &format!("missing required parameter {name}"));
    }
    let (response_type, client_id, redirect_uri, scope, state) = (
        params.get("response_type").unwrap_or_default(),
        params.get("client_id").unwrap_or_default(),
        params.get("redirect_uri").unwrap_or_default(),
        params.get("scope").unwrap_or_default(),
        params.get("state"),
    );
    let config = &shared.config;
    if response_type != "code" {
        return consent::error_page(
            PROVIDER,
            &format!("unsupported response_type {response_type:?} (expected \"code\")"),
        );
    }
    if client_id != config.client_id {
        return consent::error_page(PROVIDER, &format!("unknown client_id {client_id:?}"));
    }
    if redirect_uri != config.redirect_uri {
        return consent::error_page(
            PROVIDER,
            &format!("redirect_uri {redirect_uri:?} does not match the app's Return URI"),
        );
    }
    if let Some(unknown) = scope.split(' ').find(|s| !s.is_empty() && *s != SCOPE) {
        return consent::error_page(PROVIDER, &format!("unknown scope {unknown:?}"));
    }
    let pkce = match PkceChallenge::parse(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
        "code_challenge",
        "code_challenge_method",
    ) {
        Ok(pkce) => pkce,
        Err(message) => return consent::error_page(PROVIDER, &message),
    };
    let request = AuthorizeRequest {
        provider: PROVIDER,
        path: AUTHORIZE_PATH,
        client_id,
        redirect_uri,
        scope,
        state,
        pkce: pkce.as_ref(),
    };
    consent::decide(&shared, &params, request)
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = faults::apply(shared.pop_fault(), rfc6749_fault_body).await {
        return response;
    }
    if !has_content_type(&headers, FORM) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            &format!(
                "Content-Type must be {FORM}, not {}",
                content_type(&headers)
            ),
        );
    }
    let params = Params::parse(&String::from_utf8_lossy(&body));
    if let Some(name) = params.repeated() {
        return invalid_request(&format!("parameter {name} is repeated"));
    }
    let Some(grant_type) = params.get("grant_type") else {
        return invalid_request("missing required parameter grant_type");
    };
    if let Some(response) = reject_client(&shared, &headers, &params) {
        return response;
    }
    let now = shared.now();
    let lifetime = shared.config.refresh_token_lifetime;
    let prefix = shared.config.issued_prefix(TOKEN_PREFIX);
    let issued: Result<IssuedTokens, GrantError> = match grant_type {
        "authorization_code" => {
            let (Some(code), Some(redirect_uri)) = (params.get("code"), params.get("redirect_uri"))
            else {
                return invalid_request("code and redirect_uri are required");
            };
            // A code issued with a PKCE challenge needs the verifier
            // that answers it; one issued without needs none.
            let verifier = Some(params.get("code_verifier"));
            let mut state = shared.lock();
            state
                .grants
                .redeem_code_with(code, &shared.config.client_id, redirect_uri, verifier, now)
                .map(|grant| {
                    let (tokens, _scope) = state.grants.start_family(grant, &prefix, now, lifetime);
                    tokens
                })
        }
        "refresh_token" => {
            let Some(refresh_token) = params.get("refresh_token") else {
                return invalid_request("missing required parameter refresh_token");
            };
            let on_reuse = shared.config.on_reuse();
            shared
                .lock()
                .grants
                .rotate_refresh_token(refresh_token, on_reuse, &prefix, now, lifetime)
                .map(|(tokens, _scope)| tokens)
        }
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type {other:?} is not supported"),
            )
        }
    };
    match issued {
        Ok(tokens) => {
            let response = success(&shared, &tokens);
            if grant_type == "refresh_token" {
                shared.config.hold_refresh_response().await;
            }
            response
        }
        Err(err) => error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!("the {} is invalid: {err}", grant_name(grant_type)),
        ),
    }
}

fn grant_name(grant_type: &str) -> &'static str {
    if grant_type == "refresh_token" {
        "refresh token"
    } else {
        "authorization code"
    }
}

/// Checks `client_id` / `client_secret` in the body (HTTP Basic is
/// refused); `Some` is the 401 to answer.
fn reject_client(shared: &Shared, headers: &HeaderMap, params: &Params) -> Option<Response> {
    let config = &shared.config;
    match (params.get("client_id"), params.get("client_secret")) {
        (Some(id), Some(secret)) if id == config.client_id && secret == config.client_secret => {
            None
        }
        (Some(_), Some(_)) => Some(error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )),
        _ => {
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client_id and client_secret must be sent in the request body",
            );
            if headers.contains_key(header::AUTHORIZATION) {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"hike\""),
                );
            }
            Some(response)
        }
    }
}

fn success(shared: &Shared, tokens: &IssuedTokens) -> Response {
    let style = shared.style();
    let lifetime = shared.config.access_token_lifetime.as_secs();
    let expires = unix_secs(shared.now()).saturating_add(lifetime);
    let mut body = json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires": style.number(expires),
        "expires_in": style.number(lifetime),
        "refresh_token": tokens.refresh_token,
    });
    if style.omit_expires_in {
        if let Value::Object(map) = &mut body {
            map.remove("expires_in");
        }
    }
    json_response(StatusCode::OK, &body)
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
