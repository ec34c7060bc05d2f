//! The token, refresh and revocation endpoints, in the spec's dialect.

use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::{header, HeaderMap, StatusCode};
use oauth2_adapters_core::{BodyFormat, ClientAuthMethod, RenewalKind};
use serde_json::Value;

use super::wire::{self, Issued};
use super::{SpecShared, TOKEN_PREFIX};
use crate::common::faults::{self, rfc6749_fault_body};
use crate::common::grants::GrantError;
use crate::common::http::{content_type, has_content_type, Params};

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// Which token endpoint a request reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// The token URL.
    Token,
    /// The spec's separate refresh URL.
    Refresh,
}

/// A refusal: status, OAuth error code, description.
struct Refusal(StatusCode, &'static str, String);

impl Refusal {
    fn bad_request(code: &'static str, description: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, code, description.into())
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_request", description)
    }

    fn invalid_client(description: impl Into<String>) -> Self {
        Self(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            description.into(),
        )
    }

    fn answer(self, s: &SpecShared) -> Response {
        let Refusal(status, code, description) = self;
        wire::error(&s.spec, status, code, &description)
    }
}

/// Answers a token request (code exchange, refresh, client credentials).
pub(super) async fn token(
    s: &SpecShared,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Some(response) = faults::apply(s.shared.pop_fault(), rfc6749_fault_body).await {
        return response;
    }
    match grant(s, endpoint, headers, body) {
        Ok((response, refreshed)) => {
            if refreshed {
                s.config().hold_refresh_response().await;
            }
            response
        }
        Err(refusal) => refusal.answer(s),
    }
}

/// Answers an RFC 7009 revocation request: 200 with an empty body once the
/// client is authenticated, whether the token was known or not.
pub(super) fn revoke(s: &SpecShared, headers: &HeaderMap, body: &[u8]) -> Response {
    let Some(revocation) = &s.spec.revocation else {
        return Refusal::invalid_request("no revocation endpoint").answer(s);
    };
    let checked = parse_body(revocation.body, headers, body).and_then(|params| {
        authenticate(s, headers, &params)?;
        check_fixed_headers(s, headers)?;
        Ok(params)
    });
    let params = match checked {
        Ok(params) => params,
        Err(refusal) => return refusal.answer(s),
    };
    let Some(token) = params.get(&revocation.token_field) else {
        return Refusal::invalid_request(format!("missing {}", revocation.token_field)).answer(s);
    };
    let known = s.shared.lock().grants.revoke_token(token);
    tracing::debug!(known, "mock: token revoked");
    StatusCode::OK.into_response()
}

/// Checks the request and processes its grant: the answer, and whether it
/// was a successful refresh.
fn grant(
    s: &SpecShared,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Response, bool), Refusal> {
    let spec = &s.spec;
    let params = parse_body(spec.token.body, headers, body)?;
    authenticate(s, headers, &params)?;
    check_headers(s, headers)?;
    let fields = &spec.token.fields;
    let grant_type = if fields.grant_type.is_empty() {
        infer_grant_type(s, endpoint, &params)
    } else {
        params
            .get(&fields.grant_type)
            .ok_or_else(|| Refusal::invalid_request(format!("missing {}", fields.grant_type)))?
    };
    let grant_type = match (grant_type, endpoint, s.paths.refresh.is_some()) {
        ("refresh_token", Endpoint::Token, true) => {
            return Err(Refusal::bad_request(
                "unsupported_grant_type",
                "refreshes go to the refresh URL",
            ))
        }
        ("refresh_token", _, _) => Grant::Refresh,
        (_, Endpoint::Refresh, _) => {
            return Err(Refusal::bad_request(
                "unsupported_grant_type",
                "the refresh URL takes refreshes only",
            ))
        }
        ("authorization_code", _, _) if spec.authorize.is_some() => Grant::Code,
        ("client_credentials", _, _) if spec.renewal_kind() == RenewalKind::Reacquire => {
            Grant::ClientCredentials
        }
        (other, _, _) => {
            return Err(Refusal::bad_request(
                "unsupported_grant_type",
                format!("grant type {other:?} is not supported"),
            ))
        }
    };
    let grant_params = match grant_type {
        Grant::Code => &spec.token.code_params,
        Grant::Refresh => &spec.token.refresh_params,
        Grant::ClientCredentials => &std::collections::BTreeMap::new(),
    };
    for (name, value) in spec.token.extra_params.iter().chain(grant_params) {
        if params.get(name) != Some(value.as_str()) {
            return Err(Refusal::invalid_request(format!(
                "this provider needs the parameter {name}={value}"
            )));
        }
    }
    match grant_type {
        Grant::Code => exchange(s, &params).map(|r| (r, false)),
        Grant::Refresh => refresh(s, &params).map(|r| (r, true)),
        Grant::ClientCredentials => Ok((client_credentials(s, &params), false)),
    }
}

#[derive(Debug, Clone, Copy)]
enum Grant {
    Code,
    Refresh,
    ClientCredentials,
}

/// The grant type of a spec that sends none: by endpoint, then by field.
fn infer_grant_type(s: &SpecShared, endpoint: Endpoint, params: &Params) -> &'static str {
    let fields = &s.spec.token.fields;
    if endpoint == Endpoint::Refresh || params.get(&fields.refresh_token).is_some() {
        "refresh_token"
    } else if params.get(&fields.code).is_some() {
        "authorization_code"
    } else {
        "client_credentials"
    }
}

/// The body's parameters, in the spec's format: a form, or a JSON object
/// of strings (a `null` counts as absent).
fn parse_body(format: BodyFormat, headers: &HeaderMap, body: &[u8]) -> Result<Params, Refusal> {
    let expected = match format {
        BodyFormat::Form => FORM,
        BodyFormat::Json => JSON,
    };
    if !has_content_type(headers, expected) {
        return Err(Refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            format!(
                "Content-Type must be {expected}, not {}",
                content_type(headers)
            ),
        ));
    }
    let params = match format {
        BodyFormat::Form => Params::parse(&String::from_utf8_lossy(body)),
        BodyFormat::Json => {
            let object = match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(object)) => object,
                Ok(_) => return Err(Refusal::invalid_request("the body must be a JSON object")),
                Err(e) => return Err(Refusal::invalid_request(format!("malformed JSON: {e}"))),
            };
            let mut pairs = Vec::with_capacity(object.len());
            for (name, value) in object {
                match value {
                    Value::String(value) => pairs.push((name, value)),
                    Value::Null => {}
                    _ => {
                        return Err(Refusal::invalid_request(format!(
                            "field {name} must be a string"
                        )))
                    }
                }
            }
            Params::from_pairs(pairs)
        }
    };
    if let Some(name) = params.repeated() {
        return Err(Refusal::invalid_request(format!(
            "parameter {name} is repeated"
        )));
    }
    Ok(params)
}

/// The client id and secret of an `Authorization: Basic` header, each
/// form-decoded (RFC 6749 §2.3.1); `Some(None)` for a malformed one.
fn basic_credentials(headers: &HeaderMap) -> Option<Option<(String, String)>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decode = |part: &str| -> String {
        url::form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    Some(decoded.and_then(|text| {
        let (id, secret) = text.split_once(':')?;
        Some((decode(id), decode(secret)))
    }))
}

/// Client authentication exactly as the spec says (see the module docs).
fn authenticate(s: &SpecShared, headers: &HeaderMap, params: &Params) -> Result<(), Refusal> {
    let config = s.config();
    let fields = &s.spec.token.fields;
    let basic = basic_credentials(headers);
    let in_body = |name: &str| params.contains(name);
    match s.spec.token.client_auth {
        ClientAuthMethod::ClientSecretBasic => {
            if in_body(&fields.client_id) || in_body(&fields.client_secret) {
                return Err(Refusal::invalid_request(
                    "client_secret_basic: the client credentials go in the Authorization \
                     header only, not in the body",
                ));
            }
            match basic {
                Some(Some((id, secret)))
                    if id == config.client_id && secret == config.client_secret =>
                {
                    Ok(())
                }
                Some(_) => Err(Refusal::invalid_client("client authentication failed")),
                None => Err(Refusal::invalid_client(
                    "client_secret_basic: an Authorization: Basic header is required",
                )),
            }
        }
        ClientAuthMethod::ClientSecretPost => {
            if basic.is_some() {
                return Err(Refusal::invalid_request(
                    "client_secret_post: the client credentials go in the body only, \
                     not in an Authorization: Basic header",
                ));
            }
            match (
                params.get(&fields.client_id),
                params.get(&fields.client_secret),
            ) {
                (Some(id), Some(secret))
                    if id == config.client_id && secret == config.client_secret =>
                {
                    Ok(())
                }
                (Some(_), Some(_)) => Err(Refusal::invalid_client("client authentication failed")),
                _ => Err(Refusal::invalid_client(format!(
                    "client_secret_post: {} and {} are required in the body",
                    fields.client_id, fields.client_secret
                ))),
            }
        }
        ClientAuthMethod::None => {
            if basic.is_some() || in_body(&fields.client_secret) {
                return Err(Refusal::invalid_request(
                    "a public client (client_auth = none) sends no client secret",
                ));
            }
            match params.get(&fields.client_id) {
                Some(id) if id == config.client_id => Ok(()),
                Some(_) => Err(Refusal::invalid_client("unknown client")),
                None => Err(Refusal::invalid_client(format!(
                    "{} is required in the body",
                    fields.client_id
                ))),
            }
        }
    }
}

/// The spec's fixed headers, and its secret headers whose secret was set.
fn check_headers(s: &SpecShared, headers: &HeaderMap) -> Result<(), Refusal> {
    check_fixed_headers(s, headers)?;
    let secrets = s.lock().secrets.clone();
    for (name, secret) in &s.spec.token.secret_headers {
        let Some(expected) = secrets.get(secret) else {
            continue;
        };
        if headers
            .get(name.as_str())
            .is_none_or(|v| v != expected.as_str())
        {
            return Err(Refusal::invalid_client(format!(
                "the {name} header does not carry the secret {secret}"
            )));
        }
    }
    Ok(())
}

/// The spec's fixed headers (token and revocation requests).
fn check_fixed_headers(s: &SpecShared, headers: &HeaderMap) -> Result<(), Refusal> {
    for (name, value) in &s.spec.token.headers {
        let sent = headers
            .get_all(name.as_str())
            .iter()
            .any(|v| v == value.as_str());
        if !sent {
            return Err(Refusal::invalid_request(format!(
                "this provider needs the header {name}: {value}"
            )));
        }
    }
    Ok(())
}

fn required<'p>(params: &'p Params, name: &str) -> Result<&'p str, Refusal> {
    params
        .get(name)
        .ok_or_else(|| Refusal::invalid_request(format!("missing {name}")))
}

fn invalid_grant(what: &str, error: GrantError) -> Refusal {
    Refusal::bad_request("invalid_grant", format!("the {what} is invalid: {error}"))
}

/// Whether the spec's answers carry refresh tokens.
fn issues_refresh_tokens(s: &SpecShared) -> bool {
    s.spec.renewal_kind() == RenewalKind::RefreshToken
}

fn exchange(s: &SpecShared, params: &Params) -> Result<Response, Refusal> {
    let fields = &s.spec.token.fields;
    let code = required(params, &fields.code)?;
    let redirect_uri = required(params, &fields.redirect_uri)?;
    let verifier = s.checks_pkce().then(|| params.get(&fields.code_verifier));
    let now = s.shared.now();
    let config = s.config();
    let prefix = config.issued_prefix(TOKEN_PREFIX);
    let mut state = s.shared.lock();
    let grant = state
        .grants
        .redeem_code_with(code, &config.client_id, redirect_uri, verifier, now)
        .map_err(|e| invalid_grant("authorization code", e))?;
    let (tokens, scope) =
        state
            .grants
            .start_family(grant, &prefix, now, config.refresh_token_lifetime);
    drop(state);
    let issued = Issued {
        access_token: &tokens.access_token,
        refresh_token: issues_refresh_tokens(s).then_some(tokens.refresh_token.as_str()),
        scope: &scope,
    };
    Ok(wire::token_answer(s, &issued))
}

fn refresh(s: &SpecShared, params: &Params) -> Result<Response, Refusal> {
    let refresh_token = required(params, &s.spec.token.fields.refresh_token)?;
    let now = s.shared.now();
    let config = s.config();
    let prefix = config.issued_prefix(TOKEN_PREFIX);
    if s.spec.rotates_refresh_tokens {
        let rotated = s.shared.lock().grants.rotate_refresh_token(
            refresh_token,
            config.on_reuse(),
            &prefix,
            now,
            config.refresh_token_lifetime,
        );
        let (tokens, scope) = rotated.map_err(|e| invalid_grant("refresh token", e))?;
        let issued = Issued {
            access_token: &tokens.access_token,
            refresh_token: Some(&tokens.refresh_token),
            scope: &scope,
        };
        Ok(wire::token_answer(s, &issued))
    } else {
        let refreshed = s
            .shared
            .lock()
            .grants
            .refresh_in_place(refresh_token, &prefix, now);
        let (access_token, scope) = refreshed.map_err(|e| invalid_grant("refresh token", e))?;
        let issued = Issued {
            access_token: &access_token,
            refresh_token: None,
            scope: &scope,
        };
        Ok(wire::token_answer(s, &issued))
    }
}

fn client_credentials(s: &SpecShared, params: &Params) -> Response {
    let token = &s.spec.token;
    let scope = params
        .get(&token.fields.scope)
        .map(|scope| {
            scope
                .split(token.scope_separator.as_str())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let now = s.shared.now();
    let prefix = s.config().issued_prefix(TOKEN_PREFIX);
    let access_token = s
        .shared
        .lock()
        .grants
        .issue_client_token(&prefix, &scope, now);
    let issued = Issued {
        access_token: &access_token,
        refresh_token: None,
        scope: &scope,
    };
    wire::token_answer(s, &issued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // "a%3Ab:c+d%25" → id "a:b", secret "c d%".
        let encoded = STANDARD.encode("a%3Ab:c+d%25");
        let headers = with_authorization(&format!("Basic {encoded}"));
        assert_eq!(
            basic_credentials(&headers),
            Some(Some(("a:b".into(), "c d%".into())))
        );
        assert_eq!(
            basic_credentials(&with_authorization("Basic !!")),
            Some(None)
        );
        assert_eq!(basic_credentials(&with_authorization("Bearer x")), None);
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }
}
