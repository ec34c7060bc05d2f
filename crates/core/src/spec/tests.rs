//! The spec engine without a network: loading (errors name the field),
//! the authorize URL, and reading answers.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::ExposeSecret;

use super::*;
use crate::clock::ManualClock;
use crate::error::{Error, ErrorCode};
use crate::http::HttpResponse;
use crate::provider::{AuthorizationCodeProvider, ClientCredentials, ProviderSettings};
use crate::token::Token;
use crate::AuthorizeRequest;

const NOW: u64 = 1_800_000_000;

/// A HyperSKU-like dialect: camelCase JSON, an envelope, business codes.
const ENVELOPED: &str = r#"
    id = "shop"
    [authorize]
    url = "https://shop.example/auth"
    params = { client_id = "clientId", redirect_uri = "redirectUri" }
    send_response_type = false
    pkce = "off"
    [token]
    url = "https://api.shop.example/token"
    body = "json"
    [response]
    access_token = "accessToken"
    token_type = "tokenType|token_type"
    refresh_token = "refreshToken"
    expires_in = "expiresIn"
    refresh_expires_in = "refreshTokenExpireIn"
    subject = "userId"
    [response.envelope]
    success = [0, 200]
    [response.error_codes]
    60025 = "invalid_grant"
    invalid_refresh = "invalid_grant"
"#;

fn provider(spec: &str) -> SpecProvider {
    let settings = ProviderSettings::new()
        .unwrap()
        .with_clock(Arc::new(ManualClock::at_unix(NOW)));
    SpecProvider::builder(
        ProviderSpec::from_toml(spec).unwrap(),
        ClientCredentials::new("id", "sent-secret"),
    )
    .settings(settings)
    .build()
    .unwrap()
}

fn read(spec: &str, status: u16, body: &str) -> Result<Token, Error> {
    provider(spec).read_response(
        &HttpResponse::from_parts(status, Some("application/json"), body.as_bytes()),
        "the-code",
    )
}

fn secs(t: Option<SystemTime>) -> Option<u64> {
    t.map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
}

fn field_of(text: &str) -> String {
    ProviderSpec::from_toml(text).unwrap_err().field
}

#[test]
fn a_bad_spec_is_refused_naming_the_field() {
    let minimal =
        |extra: &str| format!("id = \"p\"\n[token]\nurl = \"https://p.example/t\"\n{extra}");
    assert_eq!(
        field_of(&minimal("").replace("https://p.example/t", "not a url")),
        "token.url"
    );
    assert_eq!(
        field_of(&minimal("refresh_url = \"ftp://p.example/r\"")),
        "token.refresh_url"
    );
    assert_eq!(
        field_of(&minimal("headers = { \"bad header\" = \"x\" }")),
        "token.headers"
    );
    assert_eq!(
        field_of(&minimal("[response.envelope]\nsuccess = []")),
        "response.envelope.success"
    );
    assert_eq!(
        field_of(&minimal("[response]\naccess_token = \"data..x\"")),
        "response.access_token"
    );
    assert_eq!(
        field_of(&minimal("").replace("id = \"p\"", "id = \"Has Caps\"")),
        "id"
    );
    assert_eq!(
        field_of(
            "id = \"p\"\nrenewal = \"refresh_token\"\n[token]\nurl = \"https://p.example/t\"\n"
        ),
        "renewal"
    );
    // Unknown and mistyped fields stop the parse, at their line.
    let unknown = ProviderSpec::from_toml(&minimal("colour = \"blue\"")).unwrap_err();
    assert!(unknown.message.contains("colour"), "{unknown}");
    assert_eq!(unknown.field, "line 4");
    // A position is not quoted as a field name is.
    assert!(
        unknown.to_string().starts_with("provider spec: line 4: "),
        "{unknown}"
    );
    let missing = ProviderSpec::from_toml("id = \"p\"\n").unwrap_err();
    assert_eq!(
        missing.to_string(),
        "provider spec: line 1: missing field `token`"
    );
    let bad_url = ProviderSpec::from_toml(&minimal("").replace("https://p.example/t", "x"));
    assert!(bad_url
        .unwrap_err()
        .to_string()
        .starts_with("provider spec: `token.url`: "),);
    let typed =
        ProviderSpec::from_toml(&minimal("[response]\nstatus_200_only = \"yes\"")).unwrap_err();
    assert!(
        typed.message.contains("bool") || typed.message.contains("boolean"),
        "{typed}"
    );
    assert!(ProviderSpec::from_json(r#"{"id":"p","token":{"url":"https://p.example/t"}}"#).is_ok());
    let json = ProviderSpec::from_json(r#"{"id":"p"}"#).unwrap_err();
    assert_eq!(json.field, "line 1, column 10");
    assert_eq!(
        json.to_string(),
        "provider spec: line 1, column 10: missing field `token`"
    );
    assert_eq!(
        ProviderSpec::from_json(r#"{"id":"p","token":{"url":"x"}}"#)
            .unwrap_err()
            .field,
        "token.url"
    );
}

#[test]
fn the_redirect_uri_is_sent_byte_for_byte() {
    let acme = provider(ENVELOPED);
    for given in [
        "https://shop.example.com",
        "https://Shop.Example.com:443/cb?x=%7e",
        "http://127.0.0.1:8976/callback",
    ] {
        let (url, pending) = acme
            .authorize(AuthorizeRequest::new(given).unwrap())
            .unwrap();
        let sent: Vec<_> = url
            .query_pairs()
            .filter(|(k, _)| k == "redirectUri")
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(sent, [given]);
        assert_eq!(pending.redirect_uri(), given);
    }
    assert!(AuthorizeRequest::new("https://shop.example/cb#frag").is_err());
    assert!(AuthorizeRequest::new("https://shop.example/c b").is_err());
}

#[test]
fn the_authorize_url_follows_the_dialect() {
    let spec = r#"
        id = "g"
        [authorize]
        url = "https://accounts.example/o/auth?hd=example.com"
        scope_separator = ","
        default_scopes = ["a", "b"]
        extra_params = { access_type = "offline", prompt = "consent" }
        [token]
        url = "https://oauth.example/token"
    "#;
    let g = provider(spec);
    let request = AuthorizeRequest::new("https://app.example/cb")
        .unwrap()
        .with_param("login_hint", "me@example.com");
    let (url, pending) = g.authorize(request).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "hd",
            "response_type",
            "client_id",
            "scope",
            "redirect_uri",
            "state",
            "code_challenge",
            "code_challenge_method",
            "access_type",
            "prompt",
            "login_hint"
        ]
    );
    assert!(pairs.contains(&("scope".into(), "a,b".into())));
    assert!(pairs.contains(&("code_challenge_method".into(), "S256".into())));
    assert!(pending.pkce_verifier().is_some());
    // The enveloped dialect: camelCase, no response_type, no PKCE.
    let (url, _) = provider(ENVELOPED)
        .authorize(AuthorizeRequest::new("https://app.example/cb").unwrap())
        .unwrap();
    let keys: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(keys, ["clientId", "redirectUri", "state"]);
}

#[test]
fn envelopes_business_codes_and_error_objects_are_errors() {
    let err = read(
        ENVELOPED,
        200,
        r#"{"code":60025,"msg":"code the-code expired","data":null}"#,
    )
    .unwrap_err();
    match &err {
        Error::Provider {
            code,
            provider_code,
            description,
            status,
            ..
        } => {
            assert_eq!(code, &ErrorCode::InvalidGrant);
            assert_eq!(provider_code.as_deref(), Some("60025"));
            assert_eq!(status, &Some(200));
            assert!(!description.as_deref().unwrap().contains("the-code"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = read(ENVELOPED, 200, r#"{"code":"70001","msg":"maintenance"}"#).unwrap_err();
    assert!(matches!(err, Error::Provider { code: ErrorCode::Other(ref c), .. } if c == "70001"));
    // An error object wins over a token, and its code is mapped too.
    let err = read(
        ENVELOPED,
        200,
        r#"{"error":"invalid_refresh","accessToken":"at"}"#,
    )
    .unwrap_err();
    assert_eq!(err.provider_error_code(), Some(&ErrorCode::InvalidGrant));
    assert_eq!(err.provider_code(), Some("invalid_refresh"));
    // A success envelope carries the token; the status wins over the body.
    let token = read(
        ENVELOPED,
        200,
        r#"{"code":"200","data":{"accessToken":"at","expiresIn":"7200","refreshToken":"rt","refreshTokenExpireIn":60,"userId":42,"shop":"s-1"}}"#,
    )
    .unwrap();
    assert_eq!(token.expose_access_token(), "at");
    assert_eq!(token.expose_refresh_token(), Some("rt"));
    assert_eq!(secs(token.expires_at), Some(NOW + 7200));
    assert_eq!(secs(token.refresh_expires_at), Some(NOW + 60));
    assert_eq!(token.subject.as_deref(), Some("42"));
    assert_eq!(token.extra.get("shop"), Some(&serde_json::json!("s-1")));
    let err = read(
        ENVELOPED,
        500,
        r#"{"code":200,"data":{"accessToken":"at"}}"#,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::HttpStatus { status: 500, .. }),
        "{err:?}"
    );
    for bad in [
        r#"{"code":200,"msg":"ok","data":null}"#,
        r#"{"accessToken":""}"#,
        r#"{"accessToken":12}"#,
        r#"{"accessToken":"at","expiresIn":-5}"#,
        r#"{"accessToken":"at","tokenType":"mac"}"#,
        r#"{"accessToken":"at","token_type":"DPoP"}"#,
        r#"{"other":1}"#,
    ] {
        let err = read(ENVELOPED, 200, bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidResponse { .. }),
            "{bad}: {err:?}"
        );
        assert!(!format!("{err} {err:?}").contains("sent-secret"));
    }
}

#[test]
fn expiry_units_and_precedence_follow_the_spec() {
    let spec = |extra: &str| {
        format!(
            "id = \"p\"\n[token]\nurl = \"https://p.example/t\"\n[response]\nexpires_at = \"expires\"\n{extra}"
        )
    };
    let later = NOW + 7200;
    let body = format!(r#"{{"access_token":"a","expires_in":3600,"expires":{later}}}"#);
    let at = |extra: &str| secs(read(&spec(extra), 200, &body).unwrap().expires_at);
    assert_eq!(at(""), Some(NOW + 3600), "relative wins by default");
    assert_eq!(at("expiry_precedence = \"absolute\""), Some(later));
    assert_eq!(at("expiry_precedence = \"earliest\""), Some(NOW + 3600));
    assert_eq!(at("expires_in_unit = \"minutes\""), Some(NOW + 3600 * 60));
    let only_absolute = format!(r#"{{"access_token":"a","expires":{later}}}"#);
    assert_eq!(
        secs(read(&spec(""), 200, &only_absolute).unwrap().expires_at),
        Some(later)
    );
    let past = format!(r#"{{"access_token":"a","expires":{}}}"#, NOW - 10);
    assert_eq!(secs(read(&spec(""), 200, &past).unwrap().expires_at), None);
    let ms = format!(r#"{{"access_token":"a","expires":{}}}"#, later * 1000);
    assert_eq!(
        secs(
            read(&spec("expires_at_unit = \"milliseconds\""), 200, &ms)
                .unwrap()
                .expires_at
        ),
        Some(later)
    );
    let _ = Duration::ZERO;
}

#[test]
fn scopes_status_and_content_type_rules() {
    let spec = "id = \"p\"\n[token]\nurl = \"https://p.example/t\"\n[response]\nscope_separator = \",\"\nstatus_200_only = true\njson_content_type_only = true\n";
    let token = read(spec, 200, r#"{"access_token":"a","scope":"x, y"}"#).unwrap();
    assert_eq!(token.scopes, ["x", "y"]);
    assert!(matches!(
        read(spec, 201, r#"{"access_token":"a"}"#),
        Err(Error::InvalidResponse { .. })
    ));
    let plain = provider(spec).read_response(
        &HttpResponse::from_parts(200, Some("text/plain"), br#"{"access_token":"a"}"#),
        "",
    );
    assert!(
        matches!(plain, Err(Error::InvalidResponse { .. })),
        "{plain:?}"
    );
    let charset = provider(spec).read_response(
        &HttpResponse::from_parts(
            200,
            Some("application/json; charset=utf-8"),
            br#"{"access_token":"a"}"#,
        ),
        "",
    );
    assert!(charset.is_ok());
    let required = "id = \"p\"\n[token]\nurl = \"https://p.example/t\"\n[response]\ntoken_type_required = true\n";
    assert!(read(required, 200, r#"{"access_token":"a"}"#).is_err());
    assert_eq!(
        read(
            required,
            200,
            r#"{"access_token":"a","token_type":"bearer"}"#
        )
        .unwrap()
        .access_token
        .expose_secret(),
        "a"
    );
}

#[test]
fn builder_rules() {
    let required = "id = \"p\"\n[authorize]\nurl = \"https://p.example/a\"\npkce = \"required\"\n[token]\nurl = \"https://p.example/t\"\n";
    let spec = ProviderSpec::from_toml(required).unwrap();
    let credentials = || ClientCredentials::new("id", "s");
    assert!(SpecProvider::builder(spec.clone(), credentials())
        .pkce(false)
        .build()
        .is_err());
    let insecure = spec.clone();
    let mut insecure = insecure;
    insecure.token.url = "http://p.example/t".into();
    assert!(SpecProvider::builder(insecure.clone(), credentials())
        .build()
        .is_err());
    // Moved to a loopback mock, http is fine, and every endpoint moves.
    let moved = SpecProvider::builder(insecure, credentials())
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    assert_eq!(moved.token_url().as_str(), "http://127.0.0.1:9/t");
    assert!(!format!("{moved:?}").contains("\"s\""));
}
