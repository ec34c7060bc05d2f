//! The protected API every mock serves next to its OAuth endpoints, so a
//! client's authenticated requests can be tested end to end.
//!
//! | endpoint | answer (HTTP 200) |
//! |---|---|
//! | `GET /api/v1/me` | `{"subject","client_id","scopes":[..]}` |
//! | `POST /api/v1/echo`, a JSON body | `{"subject","echo":<the body>}` |
//!
//! Both require `Authorization: Bearer <access token>` with a token this
//! mock issued, not revoked ([`MockServer::revoke_access_tokens`]) and not
//! expired by the mock's clock (issued at + `access_token_lifetime`).
//! Refusals follow RFC 6750 §3: no `Authorization` header → 401 with
//! `WWW-Authenticate: Bearer realm="…"` (no error code, as §3.1 asks);
//! a header that is not `Bearer <token>` → 400 `error="invalid_request"`;
//! an unknown, revoked or expired token → 401 `WWW-Authenticate: Bearer
//! realm="…", error="invalid_token", error_description="…"`. Every refusal
//! has a JSON body `{"error","error_description"}`; a body that is not JSON
//! gets 400 `invalid_request`. API requests are recorded like any other
//! (in [`MockServer::requests`], not in [`MockServer::token_requests`]).
//!
//! [`MockServer::revoke_access_tokens`]: crate::MockServer::revoke_access_tokens
//! [`MockServer::requests`]: crate::MockServer::requests
//! [`MockServer::token_requests`]: crate::MockServer::token_requests

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};

use super::grants::Family;
use super::http::json_response;
use super::server::Shared;

/// Answers who the token belongs to.
pub(crate) const ME_PATH: &str = "/api/v1/me";
/// Echoes a JSON body back.
pub(crate) const ECHO_PATH: &str = "/api/v1/echo";

/// What a mock's API says about itself: the `realm` of its challenges and
/// the `subject` every token belongs to.
#[derive(Clone, Debug)]
pub(crate) struct ApiProfile {
    pub(crate) realm: Arc<str>,
    pub(crate) subject: Arc<str>,
}

/// The API routes, for a mock's router.
pub(crate) fn routes(profile: ApiProfile) -> Router<Arc<Shared>> {
    let echo_profile = profile.clone();
    Router::new()
        .route(
            ME_PATH,
            get(
                move |State(shared): State<Arc<Shared>>, headers: HeaderMap| async move {
                    me(&shared, &headers, &profile)
                },
            ),
        )
        .route(
            ECHO_PATH,
            post(
                move |State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes| async move {
                    echo(&shared, &headers, &body, &echo_profile)
                },
            ),
        )
}

fn me(shared: &Shared, headers: &HeaderMap, profile: &ApiProfile) -> Response {
    match authenticate(shared, headers) {
        Ok(scope) => json_response(
            StatusCode::OK,
            &json!({
                "subject": &*profile.subject,
                "client_id": shared.config.client_id,
                "scopes": scope.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
            }),
        ),
        Err(refusal) => refusal.into_response(&profile.realm),
    }
}

fn echo(shared: &Shared, headers: &HeaderMap, body: &[u8], profile: &ApiProfile) -> Response {
    if let Err(refusal) = authenticate(shared, headers) {
        return refusal.into_response(&profile.realm);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(body) => json_response(
            StatusCode::OK,
            &json!({"subject": &*profile.subject, "echo": body}),
        ),
        Err(e) => error_body(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("the body must be JSON: {e}"),
        ),
    }
}

/// Why the API refuses a request: its status, RFC 6750 error code (none
/// when the request has no credentials at all) and description.
struct Refusal(StatusCode, Option<&'static str>, &'static str);

impl Refusal {
    /// The refusal with its `WWW-Authenticate: Bearer` challenge (RFC 6750 §3).
    fn into_response(self, realm: &str) -> Response {
        let Refusal(status, error, description) = self;
        let mut value = format!("Bearer realm=\"{realm}\"");
        if let Some(error) = error {
            value.push_str(&format!(
                ", error=\"{error}\", error_description=\"{description}\""
            ));
        }
        let mut response = error_body(status, error.unwrap_or("unauthorized"), description);
        if let Ok(value) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The granted scope of the request's bearer token, or why it is refused.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<String, Refusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Refusal(
            StatusCode::UNAUTHORIZED,
            None,
            "this API requires an Authorization: Bearer <access token> header",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty() && !token.contains(' '));
    let Some(token) = token else {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            Some("invalid_request"),
            "the Authorization header must be Bearer <access token>",
        ));
    };
    let now = shared.now();
    let lifetime = shared.config.access_token_lifetime;
    let checked = shared
        .lock()
        .grants
        .access_tokens
        .check(token, now, lifetime);
    checked.map_err(|invalid| {
        Refusal(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            invalid.description(),
        )
    })
}

fn error_body(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// An access token a mock issued, in the family of its refresh token
/// (none for the partner's).
#[derive(Clone)]
struct AccessGrant {
    scope: String,
    issued_at: SystemTime,
    revoked: bool,
    family: Option<Family>,
}

/// Why the API refused an access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InvalidToken {
    Unknown,
    Revoked,
    Expired,
}

impl InvalidToken {
    fn description(self) -> &'static str {
        match self {
            InvalidToken::Unknown => "the access token is unknown",
            InvalidToken::Revoked => "the access token was revoked",
            InvalidToken::Expired => "the access token expired",
        }
    }
}

/// Every access token a mock issued (its `Debug` shows only counts).
#[derive(Default)]
pub(crate) struct AccessTokens {
    tokens: HashMap<String, AccessGrant>,
}

impl fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokens")
            .field("issued", &self.tokens.len())
            .finish()
    }
}

impl AccessTokens {
    /// Remembers an issued access token and the scope it grants.
    pub(crate) fn record(
        &mut self,
        token: &str,
        scope: &str,
        now: SystemTime,
        family: Option<Family>,
    ) {
        let grant = AccessGrant {
            scope: scope.to_owned(),
            issued_at: now,
            revoked: false,
            family,
        };
        self.tokens.insert(token.to_owned(), grant);
    }

    /// Revokes the access tokens of `family`; returns how many were still
    /// unrevoked.
    pub(crate) fn revoke_family(&mut self, family: Family) -> usize {
        self.tokens
            .values_mut()
            .filter(|grant| grant.family == Some(family) && !grant.revoked)
            .map(|grant| grant.revoked = true)
            .count()
    }

    /// Revokes one access token; returns whether it was known.
    pub(crate) fn revoke(&mut self, token: &str) -> bool {
        self.tokens
            .get_mut(token)
            .map(|grant| grant.revoked = true)
            .is_some()
    }

    /// Revokes every access token issued so far; returns how many were
    /// still unrevoked. Tokens issued later are valid.
    pub(crate) fn revoke_all(&mut self) -> usize {
        self.tokens
            .values_mut()
            .filter(|grant| !grant.revoked)
            .map(|grant| grant.revoked = true)
            .count()
    }

    /// The token's scope if it is known, unrevoked and unexpired at `now`.
    pub(crate) fn check(
        &self,
        token: &str,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<String, InvalidToken> {
        let grant = self.tokens.get(token).ok_or(InvalidToken::Unknown)?;
        if grant.revoked {
            return Err(InvalidToken::Revoked);
        }
        if now >= grant.issued_at + lifetime {
            return Err(InvalidToken::Expired);
        }
        Ok(grant.scope.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HyperSkuMock, MockConfig, MockServer};
    use oauth2_adapters_core::ManualClock;
    use std::time::UNIX_EPOCH;

    #[test]
    fn tokens_are_checked_for_revocation_and_expiry() {
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        let hour = Duration::from_secs(3600);
        let mut tokens = AccessTokens::default();
        tokens.record("a", "oms", at(0), None);
        assert_eq!(tokens.check("a", at(3599), hour).as_deref(), Ok("oms"));
        assert_eq!(
            tokens.check("a", at(3600), hour),
            Err(InvalidToken::Expired)
        );
        assert_eq!(tokens.check("b", at(0), hour), Err(InvalidToken::Unknown));
        assert_eq!(tokens.revoke_all(), 1);
        assert_eq!(tokens.revoke_all(), 0);
        assert_eq!(tokens.check("a", at(1), hour), Err(InvalidToken::Revoked));
        tokens.record("b", "", at(1), None);
        assert!(
            tokens.check("b", at(1), hour).is_ok(),
            "issued after the revocation"
        );
        assert_eq!(format!("{tokens:?}"), "AccessTokens { issued: 2 }");
    }

    /// Signs in at the mock without an adapter; returns the access token.
    async fn access_token(mock: &HyperSkuMock) -> String {
        let callback = mock.approve(&mock.build_authorize_url("s")).await.unwrap();
        let code = callback
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let body = json!({
            "clientId": mock.config().client_id,
            "clientSecret": mock.config().client_secret,
            "code": code,
            "redirectUri": mock.config().redirect_uri,
        });
        let response: Value = reqwest::Client::new()
            .post(mock.token_url())
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["accessToken"].as_str().unwrap().to_owned()
    }

    async fn call(
        request: reqwest::RequestBuilder,
        authorization: Option<&str>,
    ) -> (u16, Option<String>, Value) {
        let request = match authorization {
            Some(value) => request.header("authorization", value),
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, challenge, response.json().await.unwrap())
    }

    #[tokio::test]
    async fn the_api_accepts_live_tokens_only() {
        let clock = ManualClock::at_unix(1_800_000_000);
        let mock = HyperSkuMock::start(MockConfig::default().with_clock(Arc::new(clock.clone())))
            .await
            .unwrap();
        let token = access_token(&mock).await;
        let bearer = format!("Bearer {token}");
        let http = reqwest::Client::new();

        let (status, _, body) = call(http.get(mock.me_url()), Some(&bearer)).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"subject": "hs-user-1", "client_id": "test-client-id", "scopes": ["oms"]})
        );
        let echo = http.post(mock.echo_url()).json(&json!({"n": [1, 2]}));
        let (status, _, body) = call(echo, Some(&bearer)).await;
        assert_eq!((status, body["echo"].clone()), (200, json!({"n": [1, 2]})));
        let not_json = http.post(mock.echo_url()).body("{");
        assert_eq!(call(not_json, Some(&bearer)).await.0, 400);

        let (status, challenge, _) = call(http.get(mock.me_url()), None).await;
        assert_eq!(status, 401);
        assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="HyperSKU""#));
        let (status, challenge, _) = call(http.get(mock.me_url()), Some("Basic eDp5")).await;
        assert_eq!(status, 400);
        assert!(challenge.unwrap().contains(r#"error="invalid_request""#));
        let (status, challenge, _) = call(http.get(mock.me_url()), Some("Bearer nope")).await;
        assert_eq!(status, 401);
        assert!(challenge.unwrap().contains("is unknown"));

        clock.advance(Duration::from_secs(3600));
        let (status, challenge, _) = call(http.get(mock.me_url()), Some(&bearer)).await;
        assert_eq!(status, 401);
        assert_eq!(
            challenge.as_deref(),
            Some(
                r#"Bearer realm="HyperSKU", error="invalid_token", error_description="the access token expired""#
            )
        );
        assert!(!mock.is_access_token_valid(&token));
    }

    #[tokio::test]
    async fn revoked_tokens_are_refused_and_api_requests_are_recorded() {
        let mock = HyperSkuMock::start(MockConfig::default()).await.unwrap();
        let token = access_token(&mock).await;
        assert!(mock.is_access_token_valid(&token));
        assert_eq!(mock.revoke_access_tokens(), 1);
        assert!(!mock.is_access_token_valid(&token));
        let request = reqwest::Client::new().get(mock.me_url());
        let (status, challenge, body) = call(request, Some(&format!("Bearer {token}"))).await;
        assert_eq!(status, 401);
        assert!(challenge.unwrap().contains(r#"error="invalid_token""#));
        assert_eq!(body["error"], "invalid_token");

        assert_eq!(
            mock.token_requests().len(),
            1,
            "the API is no token endpoint"
        );
        let recorded = mock.requests().pop().unwrap();
        assert_eq!(
            (recorded.method.as_str(), recorded.path.as_str()),
            ("GET", ME_PATH)
        );
        assert_eq!(
            recorded.redacted(&[]).header("authorization"),
            Some("[redacted]")
        );
    }
}
