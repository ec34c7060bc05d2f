//! HyperSKU's token response: bare or enveloped, camelCase, lenient numbers.

use std::time::SystemTime;

use oauth2_adapters_core::adapter::wire::{
    check_access_token, check_bearer, expiry_from_lifetime, optional_number, optional_scopes,
    optional_string_or_number,
};
use oauth2_adapters_core::adapter::JsonResponse;
use oauth2_adapters_core::{Error, ErrorCode, SecretString, Token};
use serde::Deserialize;
use serde_json::Value;

use crate::config::ExpiryUnit;
use crate::PROVIDER_ID;

/// How to read a response, from the adapter's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadRules<'a> {
    pub unit: ExpiryUnit,
    pub success_codes: &'a [i64],
    pub invalid_grant_codes: &'a [i64],
}

/// `OAuth2TokenVo`, read leniently.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenBody {
    #[serde(default)]
    access_token: Option<String>,
    /// Not in the docs' `OAuth2TokenVo`; when sent, it must say Bearer.
    #[serde(default, alias = "token_type")]
    token_type: Option<String>,
    #[serde(default, deserialize_with = "optional_number")]
    expires_in: Option<f64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default, deserialize_with = "optional_number")]
    refresh_token_expire_in: Option<f64>,
    #[serde(default, deserialize_with = "optional_scopes")]
    scope: Option<Vec<String>>,
    #[serde(default, deserialize_with = "optional_string_or_number")]
    user_id: Option<String>,
    #[serde(flatten)]
    extra: serde_json::Map<String, Value>,
}

/// Reads a token, or the error the response stands for, in this order:
///
/// * an RFC 6749 `{"error": "…"}` body is an [`Error::Provider`], even
///   beside a token;
/// * a numeric `code` outside `success_codes` is an [`Error::Provider`]
///   even with HTTP 200 (`invalid_grant_codes` map to `invalid_grant`),
///   even beside a token;
/// * a body with `accessToken` is a bare token (the documented shape);
/// * otherwise a body with a success `code` is an envelope carrying the
///   token in `data`;
/// * a token (bare or enveloped) on a non-2xx status is an
///   [`Error::HttpStatus`]: the status wins over the body.
pub(crate) fn read_token(
    json: &JsonResponse<'_>,
    rules: ReadRules<'_>,
    now: SystemTime,
) -> Result<Token, Error> {
    let value = json.json()?;
    if let Some(error) = json.oauth_error(&value) {
        return Err(error);
    }
    let envelope = value.get("code").map(envelope_code);
    if let Some(Some(code)) = envelope {
        if !rules.success_codes.contains(&code) {
            return Err(business_error(json, &value, code, rules));
        }
    }
    let body = if value.get("accessToken").is_some() {
        value
    } else {
        match envelope {
            None => return Err(json.unexpected("no `accessToken` in the response")),
            Some(None) => return Err(json.unexpected("the envelope `code` is not a number")),
            Some(Some(_)) => match value.get("data") {
                Some(data @ Value::Object(_)) => data.clone(),
                _ => return Err(json.unexpected("the success envelope has no `data` object")),
            },
        }
    };
    if !(200..300).contains(&json.status()) {
        return Err(json.status_error());
    }
    normalize(json, json.decode::<TokenBody>(body)?, rules.unit, now)
}

fn normalize(
    json: &JsonResponse<'_>,
    body: TokenBody,
    unit: ExpiryUnit,
    now: SystemTime,
) -> Result<Token, Error> {
    let access = body.access_token.unwrap_or_default();
    check_access_token("accessToken", &access).map_err(|reason| json.invalid(reason))?;
    check_bearer("tokenType", body.token_type.as_deref()).map_err(|reason| json.invalid(reason))?;
    let mut token = Token::new(PROVIDER_ID.clone(), SecretString::from(access), now);
    token.refresh_token = body
        .refresh_token
        .filter(|t| !t.is_empty())
        .map(SecretString::from);
    token.expires_at = expiry_from_lifetime("expiresIn", body.expires_in, unit.duration(), now)
        .map_err(|r| json.invalid(r))?;
    token.refresh_expires_at = expiry_from_lifetime(
        "refreshTokenExpireIn",
        body.refresh_token_expire_in,
        unit.duration(),
        now,
    )
    .map_err(|r| json.invalid(r))?;
    token.scopes = body.scope.unwrap_or_default();
    token.subject = body.user_id;
    token.extra = body.extra;
    Ok(token)
}

fn envelope_code(code: &Value) -> Option<i64> {
    match code {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn business_error(
    json: &JsonResponse<'_>,
    value: &Value,
    code: i64,
    rules: ReadRules<'_>,
) -> Error {
    let normalized = if rules.invalid_grant_codes.contains(&code) {
        ErrorCode::InvalidGrant
    } else {
        match code {
            400 => ErrorCode::InvalidRequest,
            401 => ErrorCode::InvalidClient,
            500 => ErrorCode::ServerError,
            503 => ErrorCode::TemporarilyUnavailable,
            other => ErrorCode::Other(other.to_string()),
        }
    };
    Error::Provider {
        provider: PROVIDER_ID.clone(),
        code: normalized,
        provider_code: Some(code.to_string()),
        description: json
            .text_field(value, "msg")
            .or_else(|| json.text_field(value, "message")),
        status: Some(json.status()),
        retry_after: json.retry_after(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use oauth2_adapters_core::adapter::HttpResponse;
    use oauth2_adapters_core::ExposeSecret;

    use super::*;

    const NOW: u64 = 1_800_000_000;
    const RULES: ReadRules<'static> = ReadRules {
        unit: ExpiryUnit::Seconds,
        success_codes: &[0, 200],
        invalid_grant_codes: &[60025],
    };

    fn read_with(status: u16, body: &str, rules: ReadRules<'_>) -> Result<Token, Error> {
        let response = HttpResponse {
            status,
            headers: Default::default(),
            body: body.to_owned().into(),
        };
        let json = JsonResponse::new(&PROVIDER_ID, &response, &["sent-secret"]);
        read_token(&json, rules, UNIX_EPOCH + Duration::from_secs(NOW))
    }

    fn read(status: u16, body: &str) -> Result<Token, Error> {
        read_with(status, body, RULES)
    }

    fn secs(t: Option<SystemTime>) -> Option<u64> {
        t.map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
    }

    const BARE: &str = r#"{"accessToken":"at","expiresIn":7200,"refreshToken":"rt","refreshTokenExpireIn":2592000,"scope":"oms","userId":"u-1"}"#;

    #[test]
    fn the_documented_bare_body_is_normalized() {
        let token = read(200, BARE).unwrap();
        assert_eq!(token.access_token.expose_secret(), "at");
        assert_eq!(token.refresh_token.as_ref().unwrap().expose_secret(), "rt");
        assert_eq!(secs(token.expires_at), Some(NOW + 7200));
        assert_eq!(secs(token.refresh_expires_at), Some(NOW + 2_592_000));
        assert_eq!(token.scopes, ["oms"]);
        assert_eq!(token.subject.as_deref(), Some("u-1"));
        assert!(token.extra.is_empty());
    }

    #[test]
    fn an_envelope_with_string_numbers_is_normalized() {
        let body = r#"{"code":"200","msg":"success","data":{"accessToken":"at","expiresIn":"7200","refreshToken":"rt","refreshTokenExpireIn":"60","scope":"oms","userId":42}}"#;
        let token = read(200, body).unwrap();
        assert_eq!(secs(token.expires_at), Some(NOW + 7200));
        assert_eq!(secs(token.refresh_expires_at), Some(NOW + 60));
        assert_eq!(token.subject.as_deref(), Some("42"));
    }

    #[test]
    fn missing_optional_fields_and_zero_expiries_mean_unknown() {
        let token = read(
            200,
            r#"{"accessToken":"at","expiresIn":0,"refreshTokenExpireIn":null}"#,
        )
        .unwrap();
        assert!(token.refresh_token.is_none());
        assert!(token.expires_at.is_none());
        assert!(token.refresh_expires_at.is_none());
        assert!(token.subject.is_none());
        assert!(token.scopes.is_empty());
    }

    #[test]
    fn milliseconds_can_be_configured() {
        let rules = ReadRules {
            unit: ExpiryUnit::Milliseconds,
            ..RULES
        };
        let token = read_with(200, r#"{"accessToken":"at","expiresIn":7200000}"#, rules).unwrap();
        assert_eq!(secs(token.expires_at), Some(NOW + 7200));
    }

    #[test]
    fn an_envelope_failure_code_is_an_error_even_with_http_200() {
        let err = read(
            200,
            r#"{"code":60025,"msg":"code sent-secret expired","data":null}"#,
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
                assert!(!description.as_deref().unwrap().contains("sent-secret"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn an_unlisted_business_code_is_kept_as_is() {
        let err = read(200, r#"{"code":"70001","msg":"maintenance"}"#).unwrap_err();
        assert!(
            matches!(err, Error::Provider { code: ErrorCode::Other(ref c), .. } if c == "70001")
        );
        let err = read(401, r#"{"code":401,"msg":"client authentication failed"}"#).unwrap_err();
        assert!(matches!(
            err,
            Error::Provider {
                code: ErrorCode::InvalidClient,
                status: Some(401),
                ..
            }
        ));
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        let cases = [
            (200, r#"{"code":200,"msg":"ok","data":null}"#),
            (200, r#"{"accessToken":""}"#),
            (200, r#"{"accessToken":null}"#),
            (200, r#"{"accessToken":"at","expiresIn":-5}"#),
            (200, r#"{"accessToken":"at","expiresIn":"soon"}"#),
            (200, r#"{"accessToken":12}"#),
            (200, r#"{"something":"else"}"#),
            (200, r#"["accessToken"]"#),
            (200, ""),
        ];
        for (status, body) in cases {
            let err = read(status, body).unwrap_err();
            assert!(
                matches!(err, Error::InvalidResponse { .. }),
                "{body}: {err:?}"
            );
        }
        let err = read(502, "<html>Bad Gateway</html>").unwrap_err();
        assert!(matches!(err, Error::HttpStatus { status: 502, .. }));
    }

    #[test]
    fn errors_win_over_tokens_and_statuses_over_success_envelopes() {
        let err = read(200, r#"{"error":"invalid_grant","accessToken":"at"}"#).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Provider {
                    code: ErrorCode::InvalidGrant,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = read(200, r#"{"code":60025,"accessToken":"at"}"#).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Provider {
                    code: ErrorCode::InvalidGrant,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = read(500, r#"{"code":200,"data":{"accessToken":"at"}}"#).unwrap_err();
        assert!(
            matches!(err, Error::HttpStatus { status: 500, .. }),
            "{err:?}"
        );
        let token = read(200, r#"{"code":"n/a","accessToken":"at"}"#).unwrap();
        assert_eq!(token.access_token.expose_secret(), "at");
    }

    #[test]
    fn a_token_type_other_than_bearer_is_refused() {
        for kind in ["\"mac\"", "\"DPoP\"", "\"\""] {
            let body = format!(r#"{{"accessToken":"at","tokenType":{kind}}}"#);
            let err = read(200, &body).unwrap_err();
            assert!(
                matches!(err, Error::InvalidResponse { .. }),
                "{kind}: {err:?}"
            );
        }
        read(200, r#"{"accessToken":"at","token_type":"bearer"}"#).unwrap();
        read(200, r#"{"accessToken":"at","tokenType":null}"#).unwrap();
    }

    #[test]
    fn an_rfc_error_object_is_understood_too() {
        let err = read(400, r#"{"error":"invalid_grant"}"#).unwrap_err();
        assert!(matches!(
            err,
            Error::Provider {
                code: ErrorCode::InvalidGrant,
                ..
            }
        ));
    }
}
