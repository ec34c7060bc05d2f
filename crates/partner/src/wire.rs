//! The partner's token response and the claims of its JWT.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oauth2_adapters_core::adapter::wire::{
    check_access_token, check_bearer, expiry_from_instant, expiry_from_lifetime,
    instant_from_epoch_secs, optional_number, optional_scopes, optional_string_or_number,
    reconcile_expiry,
};
use oauth2_adapters_core::adapter::{FlatObject, JsonResponse};
use oauth2_adapters_core::{Error, SecretString, Token};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
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

/// The JWT claims we read, each on its own: a claim of the wrong type is
/// ignored without losing the others (they are informational, the token is
/// not verified), except `exp` when it is the only expiry there is.
#[derive(Debug, Default)]
struct Claims {
    exp: Exp,
    scopes: Option<Vec<String>>,
    partner_id: Option<String>,
    user_id: Option<String>,
    sub: Option<String>,
    is_test: Option<bool>,
    aud: Option<Value>,
}

/// The `exp` claim: fractional epoch seconds, as a number or numeric string.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Exp {
    #[default]
    Absent,
    At(f64),
    Unreadable,
}

impl Claims {
    /// The claims from the payload's raw values (a `null` claim is absent).
    fn from_raw(raw: RawClaims) -> Self {
        let present = |v: Option<Value>| v.filter(|v| !v.is_null());
        let text =
            |v: Option<Value>| present(v).and_then(|v| optional_string_or_number(v).ok().flatten());
        Self {
            exp: match present(raw.exp).map(optional_number) {
                None | Some(Ok(None)) => Exp::Absent,
                Some(Ok(Some(secs))) => Exp::At(secs),
                Some(Err(_)) => Exp::Unreadable,
            },
            scopes: present(raw.scopes).and_then(|v| optional_scopes(v).ok().flatten()),
            partner_id: text(raw.partner_id),
            user_id: text(raw.user_id),
            sub: text(raw.sub),
            is_test: present(raw.is_test).and_then(|v| v.as_bool()),
            aud: present(raw.aud),
        }
    }
}

/// The payload's claims that are read, as sent; every other claim (`jti`,
/// `iat`, ...) is skipped without being built. A claim sent twice keeps
/// its last value, as a JSON object read into a map does.
#[derive(Debug, Default)]
struct RawClaims {
    exp: Option<Value>,
    scopes: Option<Value>,
    partner_id: Option<Value>,
    user_id: Option<Value>,
    sub: Option<Value>,
    is_test: Option<Value>,
    aud: Option<Value>,
}

/// A claim's name, read without allocating.
enum ClaimName {
    Exp,
    Scopes,
    PartnerId,
    UserId,
    Sub,
    IsTest,
    Aud,
    Other,
}

impl<'de> Deserialize<'de> for ClaimName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = ClaimName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<ClaimName, E> {
                Ok(match name {
                    "exp" => ClaimName::Exp,
                    "scopes" => ClaimName::Scopes,
                    "partner_id" => ClaimName::PartnerId,
                    "user_id" => ClaimName::UserId,
                    "sub" => ClaimName::Sub,
                    "is_test" => ClaimName::IsTest,
                    "aud" => ClaimName::Aud,
                    _ => ClaimName::Other,
                })
            }
        }
        deserializer.deserialize_str(Name)
    }
}

impl<'de> Deserialize<'de> for RawClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = RawClaims;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of claims")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawClaims, A::Error> {
                let mut raw = RawClaims::default();
                while let Some(name) = map.next_key::<ClaimName>()? {
                    let slot = match name {
                        ClaimName::Exp => &mut raw.exp,
                        ClaimName::Scopes => &mut raw.scopes,
                        ClaimName::PartnerId => &mut raw.partner_id,
                        ClaimName::UserId => &mut raw.user_id,
                        ClaimName::Sub => &mut raw.sub,
                        ClaimName::IsTest => &mut raw.is_test,
                        ClaimName::Aud => &mut raw.aud,
                        ClaimName::Other => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(raw)
            }
        }
        deserializer.deserialize_map(Object)
    }
}

/// Reads a token response, or the error it stands for:
///
/// * an RFC 6749 `{"error": "…"}` body is an [`Error::Provider`], even
///   beside an `access_token` and on HTTP 200;
/// * a token on a non-2xx status is an [`Error::HttpStatus`];
/// * an empty token, a `token_type` other than Bearer, an impossible
///   `expires_in` → [`Error::InvalidResponse`];
/// * without `expires_in`, the JWT's `exp` is the expiry, so an `exp` that
///   is not a number, already past or over 100 years away is an
///   [`Error::InvalidResponse`] (a token that arrives expired would be
///   re-requested in a loop); no `exp` at all means "expiry unknown".
pub(crate) fn read_token(json: &JsonResponse<'_>, now: SystemTime) -> Result<Token, Error> {
    let body = match flat_body(json) {
        Some(body) => body,
        None => general_body(json)?,
    };
    let access = body.access_token.unwrap_or_default();
    check_access_token("access_token", &access).map_err(|reason| json.invalid(reason))?;
    check_bearer("token_type", body.token_type.as_deref())
        .map_err(|reason| json.invalid(reason))?;
    let claims = decode_claims(&access).unwrap_or_default();
    let relative = expiry_from_lifetime("expires_in", body.expires_in, Duration::from_secs(1), now)
        .map_err(|reason| json.invalid(reason))?;
    let absolute = match (relative, claims.exp) {
        (_, Exp::Absent) | (Some(_), Exp::Unreadable) => None,
        (Some(_), Exp::At(secs)) => instant_from_epoch_secs(secs),
        (None, Exp::Unreadable) => {
            return Err(json.invalid("no `expires_in`, and the JWT's `exp` is not a number"))
        }
        (None, Exp::At(secs)) => {
            Some(expiry_from_instant("exp", secs, now).map_err(|reason| {
                json.invalid(format!("no `expires_in`, and the JWT's {reason}"))
            })?)
        }
    };

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

/// The body of a well-formed answer, read in one pass: `None` when
/// anything is unusual, and [`general_body`] says what.
fn flat_body(json: &JsonResponse<'_>) -> Option<TokenBody> {
    if !(200..300).contains(&json.status()) {
        return None;
    }
    let mut object = FlatObject::read(json.body(), ["access_token", "token_type", "expires_in"])?;
    let text = |value: Option<&Value>| match value {
        None | Some(Value::Null) => Some(false),
        Some(Value::String(_)) => Some(true),
        Some(_) => None,
    };
    let has_access = text(Some(object.get("access_token")?))?;
    let has_type = text(object.get("token_type"))?;
    let expires_in = match object.get("expires_in") {
        None => None,
        Some(value) => optional_number(value).ok()?,
    };
    Some(TokenBody {
        access_token: if has_access {
            object.take_string("access_token")
        } else {
            None
        },
        token_type: if has_type {
            object.take_string("token_type")
        } else {
            None
        },
        expires_in,
        extra: object.into_extra(),
    })
}

/// The body through a parsed JSON document: any answer, with the error it
/// stands for.
fn general_body(json: &JsonResponse<'_>) -> Result<TokenBody, Error> {
    let value = json.json()?;
    if let Some(error) = json.oauth_error(&value) {
        return Err(error);
    }
    if value.get("access_token").is_none() {
        return Err(json.unexpected("no `access_token` in the response"));
    }
    if !(200..300).contains(&json.status()) {
        return Err(json.status_error());
    }
    json.decode(value)
}

/// Decodes (never verifies) a JWT's payload; `None` if the token is not a
/// JWT or its payload is not a JSON object.
fn decode_claims(jwt: &str) -> Option<Claims> {
    let mut parts = jwt.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice::<RawClaims>(&bytes) {
        Ok(raw) => Some(Claims::from_raw(raw)),
        Err(_) => {
            tracing::debug!(provider = %PROVIDER_ID, "the access token's JWT payload is not readable JSON; ignoring its claims");
            None
        }
    }
}

/// Entry points for the fuzz targets in `fuzz/`: **not a stable API**.
pub mod fuzzing {
    use std::time::{Duration, UNIX_EPOCH};

    use oauth2_adapters_core::adapter::{HttpResponse, JsonResponse};
    use oauth2_adapters_core::{Error, Token};

    use crate::PROVIDER_ID;

    /// The client secret the adapter sent.
    pub const CLIENT_SECRET: &str = "fz-pt-client-secret-Yh7Ij3";
    /// The clock's time, in Unix seconds.
    pub const NOW_UNIX: u64 = 1_800_000_000;

    /// Reads `body` (with this status and content type) exactly as the
    /// adapter reads a real token-endpoint response: the same
    /// [`JsonResponse`] with the same known secret, the same reader.
    pub fn read_token_response(
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Token, Error> {
        let response = HttpResponse::from_parts(status, content_type, body);
        let known = [CLIENT_SECRET];
        let json = JsonResponse::new(&PROVIDER_ID, &response, &known);
        super::read_token(&json, UNIX_EPOCH + Duration::from_secs(NOW_UNIX))
    }

    /// Runs the JWT claims decoder on `jwt`; true when it found claims.
    pub fn decode_jwt_claims(jwt: &str) -> bool {
        super::decode_claims(jwt).is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use oauth2_adapters_core::adapter::HttpResponse;

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

    fn jwt(claims: &str) -> String {
        format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn without_expires_in_a_past_or_unreadable_exp_is_refused() {
        for claims in [
            r#"{"exp":1000}"#,
            r#"{"exp":"tomorrow"}"#,
            r#"{"exp":1e11}"#,
            r#"{"exp":-5}"#,
        ] {
            let body = format!(r#"{{"access_token":"{}"}}"#, jwt(claims));
            let err = read(200, &body).unwrap_err();
            assert!(
                matches!(err, Error::InvalidResponse { .. }),
                "{claims}: {err:?}"
            );
        }
        let body = format!(
            r#"{{"access_token":"{}","expires_in":60}}"#,
            jwt(r#"{"exp":1000}"#)
        );
        assert_eq!(
            secs(read(200, &body).unwrap().expires_at),
            Some((ISSUED + 60) as f64)
        );
        let body = format!(
            r#"{{"access_token":"{}"}}"#,
            jwt(r#"{"exp":"1710223631.5"}"#)
        );
        assert!(read(200, &body).unwrap().expires_at.is_some());
    }

    #[test]
    fn one_bad_claim_does_not_lose_the_others() {
        let claims = r#"{"exp":"soon","scopes":["a"],"partner_id":{"x":1},"user_id":7}"#;
        let body = format!(r#"{{"access_token":"{}","expires_in":60}}"#, jwt(claims));
        let token = read(200, &body).unwrap();
        assert_eq!(token.scopes, ["a"]);
        assert_eq!(token.subject.as_deref(), Some("7"));
    }

    #[test]
    fn claims_are_read_as_a_json_object_would_be() {
        // A repeated claim keeps its last value; `null` is absent; claims
        // not read are skipped whatever they hold; escaped names count.
        let claims = r#"{"jti":{"deep":[1,{"x":null}]},"partner_id":"first","partner_id":"last",
            "sub":null,"user_id":"u","scop\u0065s":"a b","aud":["x","y"],"is_test":true}"#;
        let decoded = decode_claims(&jwt(claims)).expect("claims");
        assert_eq!(decoded.partner_id.as_deref(), Some("last"));
        assert_eq!(decoded.sub, None);
        assert_eq!(decoded.user_id.as_deref(), Some("u"));
        assert_eq!(decoded.scopes, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(decoded.aud, Some(serde_json::json!(["x", "y"])));
        assert_eq!(decoded.is_test, Some(true));
        assert_eq!(decoded.exp, Exp::Absent);
        // Not an object, or not JSON, or trailing bytes: no claims at all.
        for payload in [r#"["exp",1]"#, "not json", r#"{"exp":1} x"#, r#"{"exp":"#] {
            assert!(decode_claims(&jwt(payload)).is_none(), "{payload}");
        }
    }

    #[test]
    fn an_error_member_wins_over_a_token() {
        let err = read(200, r#"{"error":"invalid_client","access_token":"x"}"#).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Provider {
                    status: Some(200),
                    ..
                }
            ),
            "{err:?}"
        );
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

    /// Whenever the one-pass reader answers, the general reader gives the
    /// same body; where it gives up, the general reader decides.
    #[test]
    fn the_one_pass_reader_agrees_with_the_general_reader() {
        let bodies = [
            format!(r#"{{"token_type":"Bearer","expires_in":3600,"access_token":"{DOC_JWT}"}}"#),
            r#"{"access_token":"a","token_type":null,"expires_in":"60","x":{"y":[1]}}"#.into(),
            r#"{"access_token":null}"#.into(),
            r#"{"access_token":7}"#.into(),
            r#"{"access_token":"a","token_type":5}"#.into(),
            r#"{"access_token":"a","expires_in":"soon"}"#.into(),
            r#"{"access_token":"a","access_token":"b"}"#.into(),
            r#"{"access_token":"a","x":{"k":1,"k":2}}"#.into(),
            r#"{"access_token":"a","error":"invalid_client"}"#.into(),
            r#"{"access_token":"a","error":7}"#.into(),
            r#"{"token_type":"Bearer"}"#.into(),
            r#"{"access_token":"a"} x"#.into(),
            r#"["access_token"]"#.into(),
        ];
        let mut answered = 0;
        for body in &bodies {
            for status in [200, 201, 401, 500] {
                let response = HttpResponse {
                    status,
                    headers: Default::default(),
                    body: body.clone().into(),
                };
                let json = JsonResponse::new(&PROVIDER_ID, &response, &[]);
                let Some(fast) = flat_body(&json) else {
                    continue;
                };
                answered += 1;
                let general = general_body(&json).expect("the general reader reads it too");
                assert_eq!(fast.access_token, general.access_token, "{body}");
                assert_eq!(fast.token_type, general.token_type, "{body}");
                assert_eq!(fast.expires_in, general.expires_in, "{body}");
                assert_eq!(fast.extra, general.extra, "{body}");
            }
        }
        assert!(answered >= 6, "{answered}");
    }
}
