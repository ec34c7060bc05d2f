//! The partner's token response and the claims of its JWT.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth2_adapters_core::wire::{
    expiry_from_lifetime, instant_from_epoch_secs, optional_number, optional_scopes,
    optional_string_or_number, reconcile_expiry,
};
use oauth2_adapters_core::{Error, JsonResponse, SecretString, Token};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::PROVIDER_ID;

#[derive(Debug, Deserialize)]
struct TokenBody {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default, deserialize_with = "optional_number")]
    expires_in: Option<f64>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// The JWT claims we read. Fractional epoch seconds are allowed.
#[derive(Debug, Default, Deserialize)]
struct Claims {
    #[serde(default, deserialize_with = "optional_number")]
    exp: Option<f64>,
    #[serde(default, deserialize_with = "optional_scopes")]
    scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "optional_string_or_number")]
    partner_id: Option<String>,
    #[serde(default, deserialize_with = "optional_string_or_number")]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "optional_string_or_number")]
    sub: Option<String>,
    #[serde(default)]
    is_test: Option<bool>,
    #[serde(default)]
    aud: Option<Value>,
}

/// Reads a token response, or the error it stands for.
pub(crate) fn read_token(json: &JsonResponse<'_>, now: SystemTime) -> Result<Token, Error> {
    let value = json.json()?;
    if value.get("access_token").is_none() {
        return Err(json
            .oauth_error(&value)
            .unwrap_or_else(|| json.unexpected("no `access_token` in the response")));
    }
    if !(200..300).contains(&json.status()) {
        return Err(json.status_error());
    }
    let body: TokenBody = json.decode(value)?;
    let access = body
        .access_token
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| json.invalid("`access_token` is missing or empty"))?;
    if let Some(kind) = body
        .token_type
        .as_deref()
        .filter(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Err(json.invalid(format!(
            "unsupported `token_type` {kind:?}: only Bearer tokens can be used"
        )));
    }
    let claims = decode_claims(&access).unwrap_or_default();
    let relative = expiry_from_lifetime("expires_in", body.expires_in, Duration::from_secs(1), now)
        .map_err(|reason| json.invalid(reason))?;
    let absolute = claims.exp.and_then(instant_from_epoch_secs);

    let mut token = Token::new(PROVIDER_ID.clone(), SecretString::from(access), now);
    token.expires_at = reconcile_expiry(&PROVIDER_ID, relative, absolute, now);
    token.scopes = claims.scopes.unwrap_or_default();
    token.subject = claims
        .partner_id
        .clone()
        .or_else(|| claims.user_id.clone())
        .or_else(|| claims.sub.clone());
    token.extra = body.extra;
    for (key, value) in [
        ("partner_id", claims.partner_id.map(Value::from)),
        ("user_id", claims.user_id.map(Value::from)),
        ("is_test", claims.is_test.map(Value::from)),
        ("aud", claims.aud),
    ] {
        if let Some(value) = value {
            token.extra.insert(key.to_owned(), value);
        }
    }
    Ok(token)
}

/// Decodes (never verifies) a JWT's payload; `None` if the token is not a JWT.
fn decode_claims(jwt: &str) -> Option<Claims> {
    let mut parts = jwt.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(claims) => Some(claims),
        Err(_) => {
            tracing::debug!(provider = %PROVIDER_ID, "the access token's JWT payload is not readable JSON; ignoring its claims");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use oauth2_adapters_core::HttpResponse;

    use super::*;

    /// The token from the partner's documentation.
    const DOC_JWT: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiI5YjFlODJhNy0wYTU5LTRlN2UtYWRkNS1iOWZmYTM3YWFkZTEiLCJqdGkiOiI4MTc1NWE2YTdkYWYwMzgyZjBmMjcyM2EyY2M5NTFmODMwZjUzM2FmYjQ2Yjc1ZDliOWE0Y2VhN2QyMTVlZTk5MjZhOTMyNTk1NjdjYmY3OCIsImlhdCI6MTcxMDIyMDAzMS41ODMxMTIsIm5iZiI6MTcxMDIyMDAzMS41ODMxMTQsImV4cCI6MTcxMDIyMzYzMS41Nzc0NzgsInN1YiI6IiIsInNjb3BlcyI6WyJib29raW5nczpjcmVhdGUiLCJib29raW5nczpkZWxldGUiXSwidXNlcl9pZCI6Ijg0MjkwMmRiLTU0ZTUtNDYxNC1iMzQ4LTAwMmU4Y2U1ZGExMiIsInBhcnRuZXJfaWQiOiJmMzExMjBlZS1iNWNiLTQxYzQtOTUyOS0yODhkMDJlOTFjZDYiLCJpc190ZXN0IjpmYWxzZX0.c2ln";
    const ISSUED: u64 = 1_710_220_031;

    fn read(status: u16, body: &str) -> Result<Token, Error> {
        let response = HttpResponse {
            status,
            headers: Default::default(),
            body: body.to_owned().into(),
        };
        let json = JsonResponse::new(&PROVIDER_ID, &response, &[]);
        read_token(&json, UNIX_EPOCH + Duration::from_secs(ISSUED))
    }

    fn secs(t: Option<SystemTime>) -> Option<f64> {
        t.map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64())
    }

    #[test]
    fn the_documented_response_is_normalized_from_expires_in_and_the_jwt() {
        let body =
            format!(r#"{{"token_type":"Bearer","expires_in":3600,"access_token":"{DOC_JWT}"}}"#);
        let token = read(200, &body).unwrap();
        assert_eq!(secs(token.expires_at), Some((ISSUED + 3600) as f64));
        assert_eq!(token.scopes, ["bookings:create", "bookings:delete"]);
        assert_eq!(
            token.subject.as_deref(),
            Some("f31120ee-b5cb-41c4-9529-288d02e91cd6")
        );
        assert_eq!(
            token.extra["user_id"],
            "842902db-54e5-4614-b348-002e8ce5da12"
        );
        assert_eq!(token.extra["is_test"], false);
        assert!(token.refresh_token.is_none());
    }

    #[test]
    fn without_expires_in_the_fractional_jwt_exp_is_used() {
        let body = format!(r#"{{"token_type":"Bearer","access_token":"{DOC_JWT}"}}"#);
        let token = read(200, &body).unwrap();
        let exp = secs(token.expires_at).unwrap();
        assert!((exp - 1_710_223_631.577_478).abs() < 0.001, "{exp}");
    }

    #[test]
    fn an_opaque_token_is_accepted_with_what_the_response_says() {
        let token = read(
            200,
            r#"{"token_type":"Bearer","expires_in":"60","access_token":"opaque"}"#,
        )
        .unwrap();
        assert_eq!(secs(token.expires_at), Some((ISSUED + 60) as f64));
        assert!(token.subject.is_none());
        let token = read(200, r#"{"access_token":"a.bm90IGpzb24.c"}"#).unwrap();
        assert!(token.expires_at.is_none());
    }

    #[test]
    fn errors_are_typed() {
        let err = read(401, r#"{"error":"invalid_client"}"#).unwrap_err();
        assert!(matches!(
            err,
            Error::Provider {
                status: Some(401),
                ..
            }
        ));
        let err = read(200, r#"{"token_type":"MAC","access_token":"x"}"#).unwrap_err();
        assert!(matches!(err, Error::InvalidResponse { .. }));
        let err = read(200, r#"{"token_type":"Bearer"}"#).unwrap_err();
        assert!(matches!(err, Error::InvalidResponse { .. }));
        let err = read(500, r#"{"access_token":"x"}"#).unwrap_err();
        assert!(matches!(err, Error::HttpStatus { status: 500, .. }));
    }
}
