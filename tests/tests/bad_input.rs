//! Table-driven bad-input suites: malformed token responses for every
//! adapter and grant, and malformed callbacks, each row with the exact
//! outcome expected. Every row also checks that the call returned (no
//! panic, no hang) and that no secret in play shows in the error's
//! `Display`, `Debug` or source chain. All failing rows are reported at once.
//!
//! The harness and the rows every adapter shares are in
//! `tests/src/bad_input.rs`.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use oauth2_adapters::hike::{self, Hike};
use oauth2_adapters::hypersku::{self, ExpiryUnit, HyperSku};
use oauth2_adapters::partner;
use oauth2_adapters::testkit::{Fault, MockServer};
use oauth2_adapters::{
    AuthorizationCodeProvider, AuthorizeRequest, CallbackParams, ClientCredentials,
    ClientCredentialsProvider, Error, ErrorCode, ExposeSecret, PendingAuthorization,
    ReauthorizationReason,
};
use oauth2_adapters_tests::bad_input::{
    after_start, body, canaries, check, guarded, json, set, shared_rows, Dialect, Input, Outcome,
    Report, Row, Sent, CANARY_ACCESS, CANARY_REFRESH,
};
use oauth2_adapters_tests::code_flow::{sign_in, CodeFlowProvider};
use oauth2_adapters_tests::{
    context, credentials, expect, CodeFlowMock, Fixture, REDIRECT_URI, START_UNIX,
};
use url::Url;

/// At least this many rows per table.
const MIN_ROWS: usize = 40;

// ---------------------------------------------------------------------------
// Runners
// ---------------------------------------------------------------------------

/// How a code-flow adapter reads a response handed to it directly.
type Direct = fn(refresh: bool, status: u16, content_type: Option<&str>, body: &[u8]) -> Outcome;

/// Runs every row against a fresh fixture: a code exchange, or (with
/// `refresh`) a refresh of a freshly issued token.
async fn run_code_flow<P, M, F, Fut>(
    table: &str,
    rows: Vec<Row>,
    refresh: bool,
    fixture: F,
    direct: Direct,
    direct_sent: Sent,
) where
    P: CodeFlowProvider + Clone + 'static,
    M: CodeFlowMock + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Fixture<P, M>>,
{
    let mut report = Report::default();
    for row in &rows {
        let expect = row.expectation(refresh);
        let mut secrets = canaries();
        secrets.extend(row.secrets.iter().cloned());
        let mut problems = Vec::new();
        let outcome = match &row.input {
            Input::Direct { .. } => {
                secrets.extend(direct_sent.secrets());
                let Input::Direct {
                    status,
                    content_type,
                    body,
                } = direct_sent.fill(&row.input)
                else {
                    unreachable!("a direct row stays direct");
                };
                guarded(async move { direct(refresh, status, content_type, &body) }).await
            }
            Input::Fault(_) => {
                let fx = fixture().await;
                let (outcome, sent) = if refresh {
                    refresh_once(&fx, row).await
                } else {
                    exchange_once(&fx, row).await
                };
                secrets.extend(sent);
                let sent = fx.mock.token_requests().len();
                if sent != 1 {
                    problems.push(format!("{sent} token requests reached the mock, not 1"));
                }
                outcome
            }
        };
        match outcome {
            Ok(outcome) => problems.extend(check(&outcome, expect, &secrets)),
            Err(failure) => problems.push(failure),
        }
        report.record(&row.name, problems);
    }
    report.finish(table, MIN_ROWS);
}

/// Authorizes, approves at the mock, queues the row's fault and handles
/// the callback. Returns the outcome and the secrets in play.
async fn exchange_once<P, M>(
    fx: &Fixture<P, M>,
    row: &Row,
) -> (Result<Outcome, String>, Vec<String>)
where
    P: CodeFlowProvider + Clone + 'static,
    M: CodeFlowMock + 'static,
{
    let request = AuthorizeRequest::new(REDIRECT_URI).expect("a valid redirect URI");
    let (url, pending) = fx.provider.authorize(request).expect("an authorize URL");
    let callback = fx.mock.approve_url(&url).await.expect("the mock approves");
    let params = CallbackParams::from_url(&callback).expect("a valid callback");
    let code = params
        .code
        .as_ref()
        .expect("a code")
        .expose_secret()
        .to_owned();
    let client_secret = fx.mock.config().client_secret.clone();
    let verifier = pending
        .pkce_verifier()
        .map_or(client_secret.clone(), |v| v.expose_secret().to_owned());
    let sent = Sent {
        client_secret,
        grant: code,
        verifier,
    };
    let mut secrets = sent.secrets();
    secrets.push(pending.state().expose_secret().to_owned());
    push(fx, &sent.fill(&row.input));
    let provider = fx.provider.clone();
    let outcome = guarded(async move { provider.handle_callback(params, pending).await }).await;
    (outcome, secrets)
}

/// Signs in, queues the row's fault and refreshes the token.
async fn refresh_once<P, M>(fx: &Fixture<P, M>, row: &Row) -> (Result<Outcome, String>, Vec<String>)
where
    P: CodeFlowProvider + Clone + 'static,
    M: CodeFlowMock + 'static,
{
    let token = sign_in(fx).await.expect("signed in");
    let refresh_token = token
        .refresh_token
        .as_ref()
        .expect("a refresh token")
        .expose_secret()
        .to_owned();
    let client_secret = fx.mock.config().client_secret.clone();
    let sent = Sent {
        verifier: client_secret.clone(),
        client_secret,
        grant: refresh_token,
    };
    let mut secrets = sent.secrets();
    secrets.push(token.access_token.expose_secret().to_owned());
    push(fx, &sent.fill(&row.input));
    let provider = fx.provider.clone();
    let outcome = guarded(async move { provider.refresh(&token).await }).await;
    (outcome, secrets)
}

fn push<P, M: MockServer>(fx: &Fixture<P, M>, input: &Input) {
    fx.mock.clear_requests();
    if let Input::Fault(fault) = input {
        fx.mock.push_fault(fault.clone());
    }
}

/// Hike with PKCE on, so a verifier is in play.
async fn hike_with_pkce() -> Fixture<Hike, oauth2_adapters::testkit::HikeMock> {
    let mut fx = oauth2_adapters_tests::hike().await;
    fx.provider = Hike::builder(credentials(&fx.mock))
        .base_url(fx.mock.base_url().as_str())
        .pkce(true)
        .settings(context(&fx.clock))
        .build()
        .expect("the adapter builds");
    fx
}

fn hypersku_direct(_refresh: bool, status: u16, ct: Option<&str>, body: &[u8]) -> Outcome {
    hypersku::fuzzing::read_token_response(status, ct, body, ExpiryUnit::Seconds)
}

fn hypersku_direct_sent() -> Sent {
    Sent {
        client_secret: hypersku::fuzzing::CLIENT_SECRET.into(),
        grant: hypersku::fuzzing::GRANT_SECRET.into(),
        verifier: hypersku::fuzzing::API_KEY.into(),
    }
}

fn hike_direct(refresh: bool, status: u16, ct: Option<&str>, body: &[u8]) -> Outcome {
    let grant = if refresh {
        hike::fuzzing::FuzzGrant::RefreshToken
    } else {
        hike::fuzzing::FuzzGrant::AuthorizationCode
    };
    hike::fuzzing::read_token_response(grant, status, ct, body)
}

fn hike_direct_sent(refresh: bool) -> Sent {
    Sent {
        client_secret: hike::fuzzing::CLIENT_SECRET.into(),
        grant: if refresh {
            hike::fuzzing::REFRESH_TOKEN
        } else {
            hike::fuzzing::CODE
        }
        .into(),
        verifier: hike::fuzzing::PKCE_VERIFIER.into(),
    }
}

// ---------------------------------------------------------------------------
// HyperSKU
// ---------------------------------------------------------------------------

fn hypersku_rows() -> Vec<Row> {
    let d = Dialect::HYPERSKU;
    let mut rows = shared_rows(d);
    let token = d.token("3600", "");
    let envelope = |code: &str, data: &str| format!(r#"{{"code":{code},"msg":"m","data":{data}}}"#);
    rows.extend([
        Row::new("HTTP 201 with a token: accepted (the docs list 201)", json(201, token.clone()), expect!(Ok(_))),
        Row::new("text/plain content type: accepted (not checked)", body(200, "text/plain", token.clone()), expect!(Ok(_))),
        Row::new("fault 503 (enveloped)", Input::Fault(Fault::Status(503)), expect!(Err(Error::Provider { code: ErrorCode::TemporarilyUnavailable, status: Some(503), .. }))),
        Row::new("fault 500 (enveloped)", Input::Fault(Fault::Status(500)), expect!(Err(Error::Provider { code: ErrorCode::ServerError, status: Some(500), .. }))),
        Row::new("fault 401 (enveloped)", Input::Fault(Fault::Status(401)), expect!(Err(Error::Provider { code: ErrorCode::InvalidClient, status: Some(401), .. }))),
        Row::new("fault 400 (enveloped)", Input::Fault(Fault::Status(400)), expect!(Err(Error::Provider { code: ErrorCode::InvalidRequest, status: Some(400), .. }))),
        Row::new("envelope 60025 on HTTP 200", json(200, envelope("60025", "null")), expect!(Err(Error::Provider { code: ErrorCode::InvalidGrant, provider_code: Some(c), status: Some(200), .. }) if c == "60025"))
            .on_refresh(expect!(Err(Error::ReauthorizationRequired { reason: ReauthorizationReason::RefreshTokenRejected { .. }, .. }))),
        Row::new("envelope \"60025\" as a string", json(200, envelope(r#""60025""#, "null")), expect!(Err(Error::Provider { code: ErrorCode::InvalidGrant, .. })))
            .on_refresh(expect!(Err(Error::ReauthorizationRequired { .. }))),
        Row::new("envelope 60025.0 as a float", json(200, envelope("60025.0", "null")), expect!(Err(Error::Provider { code: ErrorCode::InvalidGrant, .. })))
            .on_refresh(expect!(Err(Error::ReauthorizationRequired { .. }))),
        Row::new("envelope unknown code 70001", json(200, envelope("70001", "null")), expect!(Err(Error::Provider { code: ErrorCode::Other(c), provider_code: Some(p), .. }) if c == "70001" && p == "70001")),
        Row::new("envelope failure code beside a bare token", json(200, d.token("3600", r#""code":60025"#)), expect!(Err(Error::Provider { code: ErrorCode::InvalidGrant, .. })))
            .on_refresh(expect!(Err(Error::ReauthorizationRequired { .. }))),
        Row::new("envelope msg echoes the grant", json(200, format!(r#"{{"code":60025,"msg":"{} used","data":null}}"#, oauth2_adapters_tests::bad_input::GRANT)), expect!(Err(Error::Provider { description: Some(_), .. })))
            .on_refresh(expect!(Err(Error::ReauthorizationRequired { .. }))),
        Row::new("envelope success, data null", json(200, envelope("200", "null")), expect!(Err(Error::InvalidResponse { .. }))),
        Row::new("envelope success, data a string", json(200, envelope("200", &format!(r#""{CANARY_ACCESS}""#))), expect!(Err(Error::InvalidResponse { .. }))),
        Row::new("envelope success, data an array", json(200, envelope("200", &format!("[{token}]"))), expect!(Err(Error::InvalidResponse { .. }))),
        Row::new("envelope success, no data", json(200, r#"{"code":200,"msg":"success"}"#), expect!(Err(Error::InvalidResponse { .. }))),
        Row::new("envelope code a word", json(200, envelope(r#""ok""#, &token)), expect!(Err(Error::InvalidResponse { .. }))),
        Row::new("envelope code a bool", json(200, envelope("true", &token)), expect!(Err(Error::InvalidResponse { .. }))),
        Row::new("envelope code null", json(200, envelope("null", &token)), expect!(Err(Error::InvalidResponse { .. }))),
        Row::new("envelope success on HTTP 500", json(500, envelope("200", &token)), expect!(Err(Error::HttpStatus { status: 500, .. }))),
        Row::new("envelope success code 0: accepted", json(200, envelope("0", &token)), expect!(Ok(t) if after_start(t.expires_at) == Some(3600.0))),
        Row::new("envelope success with string numbers: accepted", json(200, envelope(r#""200""#, &d.token(r#""3600""#, r#""refreshTokenExpireIn":"7200""#))), expect!(Ok(t) if after_start(t.refresh_expires_at) == Some(7200.0))),
        Row::new("refreshTokenExpireIn negative", json(200, d.token("3600", r#""refreshTokenExpireIn":-1"#)), expect!(Err(Error::InvalidResponse { .. }))),
        Row::new("refreshTokenExpireIn as bool", json(200, d.token("3600", r#""refreshTokenExpireIn":false"#)), expect!(Err(Error::InvalidResponse { .. }))),
        Row::new("userId as object", json(200, d.token("3600", r#""userId":{"id":1}"#)), expect!(Err(Error::InvalidResponse { .. }))),
        Row::new("userId as number: accepted", json(200, d.token("3600", r#""userId":42"#)), expect!(Ok(t) if t.subject.as_deref() == Some("42"))),
        Row::new("refreshToken as number", json(200, d.token("3600", "").replace(&format!(r#""{CANARY_REFRESH}""#), "7")), expect!(Err(Error::InvalidResponse { .. }))),
        Row::new("snake_case token_type mac", json(200, d.token("3600", r#""token_type":"mac""#)), expect!(Err(Error::InvalidResponse { .. }))),
    ]);
    rows
}

#[tokio::test]
async fn hypersku_code_exchange() {
    let rows = hypersku_rows();
    run_code_flow(
        "hypersku exchange",
        rows,
        false,
        oauth2_adapters_tests::hypersku,
        hypersku_direct,
        hypersku_direct_sent(),
    )
    .await;
}

#[tokio::test]
async fn hypersku_refresh() {
    let rows = hypersku_rows();
    run_code_flow(
        "hypersku refresh",
        rows,
        true,
        oauth2_adapters_tests::hypersku,
        hypersku_direct,
        hypersku_direct_sent(),
    )
    .await;
}

// ---------------------------------------------------------------------------
// Hike
// ---------------------------------------------------------------------------

fn hike_rows() -> Vec<Row> {
    let d = Dialect::RFC6749;
    let mut rows = shared_rows(d);
    let token = d.token("3600", "");
    let now = START_UNIX;
    rows.extend([
        Row::new(
            "HTTP 201 with a token (RFC 6749 says 200)",
            json(201, token.clone()),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "HTTP 204, empty",
            body(204, "application/json", ""),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "text/plain content type",
            body(200, "text/plain", token.clone()),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "upper-case JSON content type: accepted",
            body(200, "Application/JSON", token.clone()),
            expect!(Ok(_)),
        ),
        Row::new(
            "no content type: accepted (direct)",
            Input::Direct {
                status: 200,
                content_type: None,
                body: token.clone().into_bytes(),
            },
            expect!(Ok(_)),
        ),
        Row::new(
            "fault 503",
            Input::Fault(Fault::Status(503)),
            expect!(Err(Error::Provider {
                code: ErrorCode::TemporarilyUnavailable,
                status: Some(503),
                ..
            })),
        ),
        Row::new(
            "fault 500",
            Input::Fault(Fault::Status(500)),
            expect!(Err(Error::Provider {
                code: ErrorCode::ServerError,
                status: Some(500),
                ..
            })),
        ),
        Row::new(
            "fault 401",
            Input::Fault(Fault::Status(401)),
            expect!(Err(Error::Provider {
                code: ErrorCode::InvalidClient,
                status: Some(401),
                ..
            })),
        ),
        Row::new(
            "fault 400",
            Input::Fault(Fault::Status(400)),
            expect!(Err(Error::Provider {
                code: ErrorCode::InvalidRequest,
                status: Some(400),
                ..
            })),
        ),
        Row::new(
            "only a past `expires`: accepted, expiry unknown",
            json(200, d.token("", &format!(r#""expires":{}"#, now - 60))),
            expect!(Ok(t) if t.expires_at.is_none()),
        ),
        Row::new(
            "only a future `expires`: used",
            json(200, d.token("", &format!(r#""expires":{}"#, now + 60))),
            expect!(Ok(t) if after_start(t.expires_at) == Some(60.0)),
        ),
        Row::new(
            "`expires` as bool beside expires_in: ignored",
            json(200, d.token("3600", r#""expires":true"#)),
            expect!(Ok(t) if after_start(t.expires_at) == Some(3600.0)),
        ),
        Row::new(
            "`expires` absurd beside no expires_in: unknown",
            json(200, d.token("", r#""expires":1e300"#)),
            expect!(Ok(t) if t.expires_at.is_none()),
        ),
        Row::new(
            "refresh_token as number",
            json(
                200,
                d.token("3600", "")
                    .replace(&format!(r#""{CANARY_REFRESH}""#), "7"),
            ),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "refresh_token empty: none issued",
            json(200, d.token("3600", "").replace(CANARY_REFRESH, "")),
            expect!(Ok(_)),
        ),
        Row::new(
            "scope as array: accepted",
            json(200, d.token("3600", r#""scope":["all"]"#)),
            expect!(Ok(t) if t.scopes == ["all"]),
        ),
        Row::new(
            "error_uri as number on 400",
            json(400, r#"{"error":"invalid_grant","error_uri":5}"#),
            expect!(Err(Error::Provider {
                code: ErrorCode::InvalidGrant,
                ..
            })),
        )
        .on_refresh(expect!(Err(Error::ReauthorizationRequired { .. }))),
    ]);
    rows
}

#[tokio::test]
async fn hike_code_exchange() {
    run_code_flow(
        "hike exchange",
        hike_rows(),
        false,
        hike_with_pkce,
        hike_direct,
        hike_direct_sent(false),
    )
    .await;
}

#[tokio::test]
async fn hike_refresh() {
    run_code_flow(
        "hike refresh",
        hike_rows(),
        true,
        oauth2_adapters_tests::hike,
        hike_direct,
        hike_direct_sent(true),
    )
    .await;
}

// ---------------------------------------------------------------------------
// Partner (client credentials, JWT access token)
// ---------------------------------------------------------------------------

/// A JWT whose claims are `claims` (raw JSON) and whose signature is the canary.
fn jwt(claims: &str) -> String {
    format!(
        "{}.{}.{CANARY_ACCESS}",
        URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

/// A partner row whose access token is `token`, with `expires_in` (raw
/// JSON, or empty for none).
fn partner_jwt_row(
    name: &str,
    token: &str,
    expires_in: &str,
    expect: oauth2_adapters_tests::bad_input::Expect,
) -> Row {
    let mut body = format!(r#"{{"token_type":"Bearer","access_token":"{token}""#);
    if !expires_in.is_empty() {
        body.push_str(&format!(r#","expires_in":{expires_in}"#));
    }
    body.push('}');
    Row::new(name, json(200, body), expect).secret(token)
}

fn partner_rows() -> Vec<Row> {
    let d = Dialect::PARTNER;
    let mut rows = shared_rows(d);
    set(
        &mut rows,
        "scope as number",
        expect!(Ok(t) if t.extra.contains_key("scope")),
    );
    let token = d.token("3600", "");
    let future = START_UNIX + 3600;
    let past = START_UNIX - 60;
    let full = format!(
        r#"{{"exp":{future}.5,"scopes":["bookings:create"],"partner_id":"p-1","user_id":"u-1","is_test":true}}"#
    );
    rows.extend([
        Row::new("HTTP 201 with a token: accepted", json(201, token.clone()), expect!(Ok(_))),
        Row::new("text/plain content type: accepted (not checked)", body(200, "text/plain", token), expect!(Ok(_))),
        Row::new("fault 503", Input::Fault(Fault::Status(503)), expect!(Err(Error::Provider { code: ErrorCode::TemporarilyUnavailable, status: Some(503), .. }))),
        Row::new("fault 500", Input::Fault(Fault::Status(500)), expect!(Err(Error::Provider { code: ErrorCode::ServerError, status: Some(500), .. }))),
        Row::new("fault 401", Input::Fault(Fault::Status(401)), expect!(Err(Error::Provider { code: ErrorCode::InvalidClient, status: Some(401), .. }))),
        Row::new("fault 400", Input::Fault(Fault::Status(400)), expect!(Err(Error::Provider { code: ErrorCode::InvalidRequest, status: Some(400), .. }))),
        partner_jwt_row("a well-formed JWT: claims read", &jwt(&full), "3600", expect!(Ok(t) if t.subject.as_deref() == Some("p-1") && t.scopes == ["bookings:create"])),
        partner_jwt_row("JWT without expires_in: exp used", &jwt(&full), "", expect!(Ok(t) if after_start(t.expires_at) == Some(3600.5))),
        partner_jwt_row("JWT with two parts: opaque, accepted", "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9", "3600", expect!(Ok(t) if t.scopes.is_empty() && t.subject.is_none())),
        partner_jwt_row("JWT with four parts: opaque, accepted", &format!("{}.x", jwt(&full)), "3600", expect!(Ok(t) if t.subject.is_none())),
        partner_jwt_row("JWT payload not base64: claims ignored", "aGVhZGVy.!!!not-base64!!!.c2ln", "3600", expect!(Ok(t) if t.subject.is_none())),
        partner_jwt_row("JWT payload not JSON: claims ignored", &jwt("not json at all"), "3600", expect!(Ok(t) if t.subject.is_none())),
        partner_jwt_row("JWT payload a JSON array: claims ignored", &jwt("[1,2]"), "3600", expect!(Ok(t) if t.subject.is_none())),
        partner_jwt_row("JWT payload with '=' padding: read", &format!("e30.{}=.sig", URL_SAFE_NO_PAD.encode(r#"{"partner_id":"p-2"}"#)), "3600", expect!(Ok(t) if t.subject.as_deref() == Some("p-2"))),
        partner_jwt_row("JWT exp past, expires_in given: expires_in wins", &jwt(&format!(r#"{{"exp":{past}}}"#)), "3600", expect!(Ok(t) if after_start(t.expires_at) == Some(3600.0))),
        partner_jwt_row("JWT exp past, no expires_in", &jwt(&format!(r#"{{"exp":{past}}}"#)), "", expect!(Err(Error::InvalidResponse { .. }))),
        partner_jwt_row("JWT exp now, no expires_in", &jwt(&format!(r#"{{"exp":{START_UNIX}}}"#)), "", expect!(Err(Error::InvalidResponse { .. }))),
        partner_jwt_row("JWT exp numeric string: used", &jwt(&format!(r#"{{"exp":"{future}"}}"#)), "", expect!(Ok(t) if after_start(t.expires_at) == Some(3600.0))),
        partner_jwt_row("JWT exp a word, no expires_in", &jwt(r#"{"exp":"tomorrow"}"#), "", expect!(Err(Error::InvalidResponse { .. }))),
        partner_jwt_row("JWT exp a word, expires_in given: ignored", &jwt(r#"{"exp":"tomorrow","partner_id":"p-3"}"#), "60", expect!(Ok(t) if t.subject.as_deref() == Some("p-3"))),
        partner_jwt_row("JWT exp absurd (1e11), no expires_in", &jwt(r#"{"exp":1e11}"#), "", expect!(Err(Error::InvalidResponse { .. }))),
        partner_jwt_row("JWT exp negative, no expires_in", &jwt(r#"{"exp":-1}"#), "", expect!(Err(Error::InvalidResponse { .. }))),
        partner_jwt_row("JWT exp an object, no expires_in", &jwt(r#"{"exp":{"at":1}}"#), "", expect!(Err(Error::InvalidResponse { .. }))),
        partner_jwt_row("JWT without exp nor expires_in: expiry unknown", &jwt(r#"{"partner_id":"p-4"}"#), "", expect!(Ok(t) if t.expires_at.is_none())),
        partner_jwt_row("JWT scopes of the wrong type: ignored, rest kept", &jwt(r#"{"scopes":5,"user_id":"u-5"}"#), "60", expect!(Ok(t) if t.scopes.is_empty() && t.subject.as_deref() == Some("u-5"))),
        partner_jwt_row("JWT ids as numbers: accepted", &jwt(r#"{"partner_id":17}"#), "60", expect!(Ok(t) if t.subject.as_deref() == Some("17"))),
    ]);
    rows
}

#[tokio::test]
async fn partner_client_credentials() {
    let mut report = Report::default();
    let direct_sent = Sent {
        client_secret: partner::fuzzing::CLIENT_SECRET.into(),
        grant: partner::fuzzing::CLIENT_SECRET.into(),
        verifier: partner::fuzzing::CLIENT_SECRET.into(),
    };
    for row in partner_rows() {
        let mut secrets = canaries();
        secrets.extend(row.secrets.iter().cloned());
        let mut problems = Vec::new();
        let outcome = match &row.input {
            Input::Direct { .. } => {
                secrets.extend(direct_sent.secrets());
                let Input::Direct {
                    status,
                    content_type,
                    body,
                } = direct_sent.fill(&row.input)
                else {
                    unreachable!("a direct row stays direct");
                };
                guarded(async move {
                    partner::fuzzing::read_token_response(status, content_type, &body)
                })
                .await
            }
            Input::Fault(_) => {
                let fx = oauth2_adapters_tests::partner().await;
                let secret = fx.mock.config().client_secret.clone();
                let sent = Sent {
                    client_secret: secret.clone(),
                    grant: secret.clone(),
                    verifier: secret,
                };
                secrets.extend(sent.secrets());
                push(&fx, &sent.fill(&row.input));
                let provider = fx.provider.clone();
                let outcome = guarded(async move { provider.client_credentials(&[]).await }).await;
                let sent = fx.mock.token_requests().len();
                if sent != 1 {
                    problems.push(format!("{sent} token requests reached the mock, not 1"));
                }
                outcome
            }
        };
        match outcome {
            Ok(outcome) => problems.extend(check(&outcome, row.expect, &secrets)),
            Err(failure) => problems.push(failure),
        }
        report.record(&row.name, problems);
    }
    report.finish("partner client credentials", MIN_ROWS);
}

// ---------------------------------------------------------------------------
// Callbacks
// ---------------------------------------------------------------------------

/// What a callback row starts from: a real approval at the mock.
struct Ctx {
    code: String,
    state: String,
    callback: Url,
}

/// What a callback row hands to the library.
enum CallbackInput {
    /// `CallbackParams::from_query`.
    Query(String),
    /// `CallbackParams::from_url`.
    Url(Url),
    /// Params built by the application itself (not parsed by the library).
    Params(CallbackParams),
}

/// Something beyond parsing and verifying.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Parse, then `handle_callback` with the pending authorization.
    Plain,
    /// The clock moves this far before the callback.
    After(Duration),
    /// Handled once, then replayed against a new pending authorization.
    Replayed,
    /// The pending authorization comes from another provider.
    Foreign,
}

struct CallbackRow {
    name: &'static str,
    input: fn(&Ctx) -> CallbackInput,
    scenario: Scenario,
    expect: oauth2_adapters_tests::bad_input::Expect,
    /// Token requests expected at the mock (0 unless the code is exchanged).
    requests: usize,
}

fn row(
    name: &'static str,
    input: fn(&Ctx) -> CallbackInput,
    expect: oauth2_adapters_tests::bad_input::Expect,
) -> CallbackRow {
    CallbackRow {
        name,
        input,
        scenario: Scenario::Plain,
        expect,
        requests: 0,
    }
}

fn q(text: String) -> CallbackInput {
    CallbackInput::Query(text)
}

fn callback_rows() -> Vec<CallbackRow> {
    use CallbackInput::Url as U;
    let ok = |name, input| CallbackRow {
        requests: 1,
        ..row(name, input, expect!(Ok(_)))
    };
    vec![
        ok("the real callback (baseline)", |c| U(c.callback.clone())),
        row(
            "missing state",
            |c| q(format!("code={}", c.code)),
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "empty state",
            |c| q(format!("code={}&state=", c.code)),
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "state without `=`",
            |c| q(format!("code={}&state", c.code)),
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "duplicated state, same value",
            |c| q(format!("code={}&state={1}&state={1}", c.code, c.state)),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "duplicated state, other value",
            |c| q(format!("code={}&state={}&state=x", c.code, c.state)),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "mismatched state",
            |c| q(format!("code={}&state=forged-state-value", c.code)),
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "state in upper case",
            |c| q(format!("code={}&state={}", c.code, c.state.to_uppercase())),
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "state in lower case",
            |c| q(format!("code={}&state={}", c.code, c.state.to_lowercase())),
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "state with a trailing space (+)",
            |c| q(format!("code={}&state={}+", c.code, c.state)),
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "state with a trailing %20",
            |c| q(format!("code={}&state={}%20", c.code, c.state)),
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "state with a leading space",
            |c| q(format!("code={}&state=+{}", c.code, c.state)),
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "a prefix of the state",
            |c| {
                q(format!(
                    "code={}&state={}",
                    c.code,
                    &c.state[..c.state.len() - 1]
                ))
            },
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "the state plus one character",
            |c| q(format!("code={}&state={}x", c.code, c.state)),
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "missing code",
            |c| q(format!("state={}", c.state)),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "empty code",
            |c| q(format!("code=&state={}", c.state)),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "blank code",
            |c| q(format!("code=++&state={}", c.state)),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "duplicated code",
            |c| q(format!("code={0}&code={0}&state={1}", c.code, c.state)),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "code with a line feed",
            |c| q(format!("code={}%0A&state={}", c.code, c.state)),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "blank code in app-built params",
            |c| {
                CallbackInput::Params(CallbackParams {
                    code: Some(" ".to_owned().into()),
                    state: Some(c.state.clone()),
                    ..Default::default()
                })
            },
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "access_denied without description or state",
            |_| q("error=access_denied".into()),
            expect!(Err(Error::AuthorizationDenied { description: None })),
        ),
        row(
            "access_denied with a description",
            |_| q("error=access_denied&error_description=The+user+said+no".into()),
            expect!(Err(Error::AuthorizationDenied { description: Some(d) }) if d == "The user said no"),
        ),
        row(
            "access_denied with the right state",
            |c| q(format!("error=access_denied&state={}", c.state)),
            expect!(Err(Error::AuthorizationDenied { .. })),
        ),
        row(
            "access_denied with a forged state",
            |_| q("error=access_denied&state=forged".into()),
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "server_error",
            |c| q(format!("error=server_error&state={}", c.state)),
            expect!(Err(Error::AuthorizationFailed {
                code: ErrorCode::ServerError,
                ..
            })),
        ),
        row(
            "temporarily_unavailable",
            |_| q("error=temporarily_unavailable".into()),
            expect!(Err(Error::AuthorizationFailed {
                code: ErrorCode::TemporarilyUnavailable,
                ..
            })),
        ),
        row(
            "invalid_scope with description",
            |_| q("error=invalid_scope&error_description=no+such+scope".into()),
            expect!(Err(Error::AuthorizationFailed {
                code: ErrorCode::InvalidScope,
                description: Some(_)
            })),
        ),
        row(
            "an unknown error code",
            |_| q("error=made_up".into()),
            expect!(Err(Error::AuthorizationFailed { code: ErrorCode::Other(c), .. }) if c == "made_up"),
        ),
        row(
            "error together with a code",
            |c| {
                q(format!(
                    "error=access_denied&code={}&state={}",
                    c.code, c.state
                ))
            },
            expect!(Err(Error::AuthorizationDenied { .. })),
        ),
        row(
            "error_description holding the state",
            |c| {
                q(format!(
                    "error=access_denied&error_description=state+{0}+rejected&state={0}",
                    c.state
                ))
            },
            expect!(Err(Error::AuthorizationDenied {
                description: Some(_)
            })),
        ),
        row(
            "error_description holding the code",
            |c| {
                q(format!(
                    "error=server_error&error_description=code+{}+failed&code={0}",
                    c.code
                ))
            },
            expect!(Err(Error::AuthorizationFailed {
                description: Some(_),
                ..
            })),
        ),
        row(
            "error code holding the state",
            |c| q(format!("error=bad_{0}&state={0}", c.state)),
            expect!(Err(Error::AuthorizationFailed {
                code: ErrorCode::Other(_),
                ..
            })),
        ),
        row(
            "empty error",
            |c| q(format!("error=&code={}&state={}", c.code, c.state)),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "duplicated error",
            |_| q("error=access_denied&error=server_error".into()),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "duplicated error_description",
            |_| q("error=access_denied&error_description=a&error_description=b".into()),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "long error_description is cut",
            |_| {
                q(format!(
                    "error=access_denied&error_description={}",
                    "word+".repeat(1000)
                ))
            },
            expect!(Err(Error::AuthorizationDenied { description: Some(d) }) if d.chars().count() <= 201),
        ),
        row(
            "query over 8 KiB",
            |c| {
                q(format!(
                    "code={}&state={}&pad={}",
                    c.code,
                    c.state,
                    "x".repeat(9 * 1024)
                ))
            },
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "malformed %-escape in the code",
            |c| q(format!("code={}%zz&state={}", c.code, c.state)),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "truncated %-escape in the state",
            |c| q(format!("code={}&state={}%4", c.code, c.state)),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "non-UTF-8 code",
            |c| q(format!("code={}%FF&state={}", c.code, c.state)),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "non-UTF-8 state",
            |c| q(format!("code={}&state=%C3%28{}", c.code, c.state)),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "overlong UTF-8 in the description",
            |_| q("error=access_denied&error_description=%C0%AF".into()),
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        row(
            "parameters in the fragment",
            |c| {
                let mut u = c.callback.clone();
                let query = u.query().unwrap_or_default().to_owned();
                u.set_query(None);
                u.set_fragment(Some(&query));
                U(u)
            },
            expect!(Err(Error::InvalidCallback { .. })),
        ),
        ok("parameters in the query and junk in the fragment", |c| {
            let mut u = c.callback.clone();
            u.set_fragment(Some("code=other&state=other"));
            U(u)
        }),
        ok("another host: not checked (documented)", |c| {
            let mut u = c.callback.clone();
            u.set_host(Some("evil.example")).expect("a host");
            U(u)
        }),
        ok("another path: not checked (documented)", |c| {
            let mut u = c.callback.clone();
            u.set_path("/elsewhere");
            U(u)
        }),
        ok("unknown parameters are ignored", |c| {
            q(format!(
                "iss=x&code={}&session_state=y&state={}&x=%zz",
                c.code, c.state
            ))
        }),
        ok("percent-encoded parameter names", |c| {
            q(format!("c%6Fde={}&st%61te={}", c.code, c.state))
        }),
        ok("a lone error_description is ignored", |c| {
            q(format!(
                "code={}&state={}&error_description=hm",
                c.code, c.state
            ))
        }),
        row(
            "empty query",
            |_| q(String::new()),
            expect!(Err(Error::StateMismatch)),
        ),
        row(
            "only separators",
            |_| q("&&&=&".into()),
            expect!(Err(Error::StateMismatch)),
        ),
        CallbackRow {
            scenario: Scenario::After(Duration::from_secs(601)),
            ..row(
                "expired pending authorization (601 s)",
                |c| U(c.callback.clone()),
                expect!(Err(Error::AuthorizationExpired { .. })),
            )
        },
        CallbackRow {
            scenario: Scenario::After(Duration::from_secs(599)),
            ..ok("pending authorization at 599 s: still valid", |c| {
                U(c.callback.clone())
            })
        },
        CallbackRow {
            scenario: Scenario::Replayed,
            requests: 1,
            ..row(
                "replayed callback against a new pending authorization: state mismatch, nothing more sent",
                |c| U(c.callback.clone()),
                expect!(Err(Error::StateMismatch)),
            )
        },
        CallbackRow {
            scenario: Scenario::Foreign,
            ..row(
                "pending authorization of another provider",
                |c| U(c.callback.clone()),
                expect!(Err(Error::Configuration { .. })),
            )
        },
    ]
}

/// A pending authorization made by HyperSKU (no request is sent).
fn foreign_pending() -> PendingAuthorization {
    let hypersku = HyperSku::builder(ClientCredentials::new("id", "secret"))
        .base_url("http://127.0.0.1:9")
        .build()
        .expect("builds");
    let request = AuthorizeRequest::new(REDIRECT_URI).expect("a valid URI");
    hypersku.authorize(request).expect("an authorize URL").1
}

#[tokio::test]
async fn callbacks() {
    let mut report = Report::default();
    for row in callback_rows() {
        let fx = hike_with_pkce().await;
        let request = AuthorizeRequest::new(REDIRECT_URI).expect("a valid redirect URI");
        let (url, pending) = fx.provider.authorize(request).expect("an authorize URL");
        let callback = fx.mock.approve(&url).await.expect("the mock approves");
        let approved = CallbackParams::from_url(&callback).expect("a valid callback");
        let ctx = Ctx {
            code: approved.code.expect("a code").expose_secret().to_owned(),
            state: pending.state().expose_secret().to_owned(),
            callback,
        };
        let mut secrets = vec![
            ctx.code.clone(),
            ctx.state.clone(),
            fx.mock.config().client_secret.clone(),
        ];
        secrets.extend(
            pending
                .pkce_verifier()
                .map(|v| v.expose_secret().to_owned()),
        );
        fx.mock.clear_requests();
        let parsed = match (row.input)(&ctx) {
            CallbackInput::Query(query) => CallbackParams::from_query(&query),
            CallbackInput::Url(url) => CallbackParams::from_url(&url),
            CallbackInput::Params(params) => Ok(params),
        };
        let provider = fx.provider.clone();
        let scenario = row.scenario;
        if let Scenario::After(by) = scenario {
            fx.clock.advance(by);
        }
        let outcome = match parsed {
            Err(err) => Ok(Err(err)),
            Ok(params) => {
                guarded(async move {
                    match scenario {
                        Scenario::Foreign => {
                            provider.handle_callback(params, foreign_pending()).await
                        }
                        Scenario::Replayed => {
                            // The first use succeeds; the pending authorization
                            // is consumed (not Clone), and a new one's state
                            // does not match the replayed callback.
                            provider.handle_callback(params.clone(), pending).await?;
                            let (_, another) = provider.authorize(
                                AuthorizeRequest::new(REDIRECT_URI).expect("a valid redirect URI"),
                            )?;
                            provider.handle_callback(params, another).await
                        }
                        Scenario::Plain | Scenario::After(_) => {
                            provider.handle_callback(params, pending).await
                        }
                    }
                })
                .await
            }
        };
        let mut problems = match outcome {
            Ok(outcome) => check(&outcome, row.expect, &secrets),
            Err(failure) => vec![failure],
        };
        let sent = fx.mock.token_requests().len();
        if sent != row.requests {
            problems.push(format!(
                "{sent} token requests reached the mock, not {}",
                row.requests
            ));
        }
        report.record(row.name, problems);
    }
    report.finish("callbacks", MIN_ROWS);
}

/// A sanity check of the tables themselves: enough rows, unique names.
#[test]
fn tables_have_unique_row_names() {
    for (table, names) in [
        (
            "hypersku",
            hypersku_rows()
                .into_iter()
                .map(|r| r.name)
                .collect::<Vec<_>>(),
        ),
        ("hike", hike_rows().into_iter().map(|r| r.name).collect()),
        (
            "partner",
            partner_rows().into_iter().map(|r| r.name).collect(),
        ),
        (
            "callbacks",
            callback_rows()
                .into_iter()
                .map(|r| r.name.to_owned())
                .collect(),
        ),
    ] {
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "{table} has duplicate row names");
        assert!(names.len() >= MIN_ROWS, "{table}: {} rows", names.len());
    }
}
