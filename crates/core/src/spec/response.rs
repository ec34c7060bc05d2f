//! Reading a token response the way a spec describes it.

use std::time::SystemTime;

use secrecy::SecretString;
use serde_json::Value;

use super::{EnvelopeSpec, ExpiryPrecedence, ResponseSpec};
use crate::error::{Error, ErrorCode};
use crate::json_response::JsonResponse;
use crate::token::{ProviderId, Token};
use crate::wire::{
    check_access_token, check_bearer, describe_json_error, expiry_from_lifetime,
    instant_from_epoch_secs, optional_number, optional_scopes, optional_string_or_number,
    reconcile_expiry,
};

/// True when `path` is one plain name: no `.` path, no `|` alternatives.
pub(super) fn is_plain(path: &str) -> bool {
    !path.bytes().any(|b| b == b'|' || b == b'.')
}

/// The value at `path`: alternatives separated by `|` (the first present
/// wins), each a dot-separated path into nested objects.
pub(super) fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    if is_plain(path) {
        // One plain name (every default path): no splitting.
        return value.get(path);
    }
    path.split('|').find_map(|alternative| {
        alternative
            .split('.')
            .try_fold(value, |value, name| value.get(name))
    })
}

/// The first path of `path`'s alternatives that is present.
fn present<'p>(value: &Value, path: &'p str) -> Option<&'p str> {
    path.split('|')
        .find(|alternative| lookup(value, alternative).is_some())
}

/// The name a field was found under in `value` (for error messages): the
/// alternative of `path` that is present, else `path`.
fn field_name<'p>(value: &Value, path: &'p str) -> &'p str {
    present(value, path).unwrap_or(path)
}

/// Reads a token, or the error the response stands for, in this order:
///
/// * an RFC 6749 `{"error": "…"}` body is an [`Error::Provider`], even
///   beside a token (its code mapped through `error_codes`);
/// * an envelope code outside `success` is an [`Error::Provider`] even with
///   HTTP 200, even beside a token;
/// * a body with the access token is a bare token; otherwise a success
///   envelope carries the token object at its `data`;
/// * a token on a non-2xx status is an [`Error::HttpStatus`] (the status
///   wins over the body), and with `status_200_only` any 2xx but 200 is an
///   [`Error::InvalidResponse`].
pub(super) fn read_token(
    provider: &ProviderId,
    json: &JsonResponse<'_>,
    spec: &ResponseSpec,
    now: SystemTime,
) -> Result<Token, Error> {
    match super::flat_response::read(json, spec) {
        Some(fields) => normalize(provider, json, fields, spec, now),
        None => read_general(provider, json, spec, now),
    }
}

/// [`read_token`] through a parsed JSON document: any body, any spec.
pub(super) fn read_general(
    provider: &ProviderId,
    json: &JsonResponse<'_>,
    spec: &ResponseSpec,
    now: SystemTime,
) -> Result<Token, Error> {
    let value = json.json()?;
    if let Some(error) = json.oauth_error(&value) {
        return Err(remap(error, spec));
    }
    let envelope = spec
        .envelope
        .as_ref()
        .and_then(|env| lookup(&value, &env.code).map(|code| (env, envelope_code(code))));
    if let Some((env, Some(code))) = envelope {
        if !env.success.contains(&code) {
            return Err(business_error(provider, json, &value, env, code, spec));
        }
    }
    let object = if lookup(&value, &spec.access_token).is_some() {
        &value
    } else {
        let first = spec.access_token.split('|').next().unwrap_or_default();
        match envelope {
            None => return Err(json.unexpected(format!("no `{first}` in the response"))),
            Some((_, None)) => return Err(json.unexpected("the envelope's code is not a number")),
            Some((env, Some(_))) => match lookup(&value, &env.data) {
                Some(data @ Value::Object(_)) => data,
                _ => {
                    return Err(json
                        .unexpected(format!("the success envelope has no `{}` object", env.data)))
                }
            },
        }
    };
    let status = json.status();
    if !(200..300).contains(&status) {
        return Err(json.status_error());
    }
    if spec.status_200_only && status != 200 {
        return Err(json.invalid(format!(
            "HTTP {status}: a token response must have status 200"
        )));
    }
    if spec.json_content_type_only && !json.is_json_content_type() {
        return Err(json.invalid("the token response is not `application/json`"));
    }
    normalize(provider, json, Fields(object), spec, now)
}

/// Where [`normalize`] finds a token's fields: a parsed JSON object
/// ([`Fields`]), or the fields the flat fast path kept (a
/// [`FlatObject`](crate::flat_object::FlatObject) named by
/// [`mapped_paths`]).
pub(super) trait TokenFields {
    /// The value at `path`.
    fn get(&self, path: &str) -> Option<&Value>;
    /// The name the value at `path` was found under (for error messages).
    fn name<'p>(&self, path: &'p str) -> &'p str;
    /// The string at `path` (a string, as [`TokenFields::get`] found).
    fn take_string(&mut self, path: &str) -> String;
    /// The token object's other top-level fields, kept for callers.
    fn into_extra(self, spec: &ResponseSpec) -> serde_json::Map<String, Value>;
}

/// A parsed JSON token object.
struct Fields<'v>(&'v Value);

impl TokenFields for Fields<'_> {
    fn get(&self, path: &str) -> Option<&Value> {
        lookup(self.0, path)
    }
    fn name<'p>(&self, path: &'p str) -> &'p str {
        field_name(self.0, path)
    }
    fn take_string(&mut self, path: &str) -> String {
        lookup(self.0, path)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_default()
    }
    fn into_extra(self, spec: &ResponseSpec) -> serde_json::Map<String, Value> {
        extra(self.0, spec)
    }
}

fn normalize(
    provider: &ProviderId,
    json: &JsonResponse<'_>,
    mut object: impl TokenFields,
    spec: &ResponseSpec,
    now: SystemTime,
) -> Result<Token, Error> {
    let invalid = |reason: String| json.invalid(reason);
    let access = match object.get(&spec.access_token) {
        Some(Value::String(_)) => object.take_string(&spec.access_token),
        None | Some(Value::Null) => String::new(),
        Some(_) => {
            return Err(invalid(format!(
                "`{}` is not a string",
                object.name(&spec.access_token)
            )))
        }
    };
    check_access_token(object.name(&spec.access_token), &access).map_err(invalid)?;
    match object.get(&spec.token_type) {
        Some(Value::String(kind))
            if spec
                .bearer_token_types
                .iter()
                .any(|bearer| bearer.eq_ignore_ascii_case(kind)) => {}
        Some(Value::String(kind)) => {
            check_bearer(object.name(&spec.token_type), Some(kind)).map_err(invalid)?
        }
        None | Some(Value::Null) if spec.token_type_required => {
            return Err(invalid(format!(
                "no `{}`: the provider must say the token is Bearer",
                object.name(&spec.token_type)
            )))
        }
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err(invalid(format!(
                "`{}` is not a string",
                object.name(&spec.token_type)
            )))
        }
    }
    let mut token = Token::new(provider.clone(), SecretString::from(access), now);
    token.refresh_token = match object.get(&spec.refresh_token) {
        Some(Value::String(refresh)) if !refresh.is_empty() => {
            Some(SecretString::from(object.take_string(&spec.refresh_token)))
        }
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(_) => {
            return Err(invalid(format!(
                "`{}` is not a string",
                object.name(&spec.refresh_token)
            )))
        }
    };
    let unit = spec.expires_in_unit.duration();
    let relative = expiry_from_lifetime(
        object.name(&spec.expires_in),
        number(json, &object, &spec.expires_in)?,
        unit,
        now,
    )
    .map_err(invalid)?;
    // An absolute expiry that is not a number is ignored, not an error:
    // the lifetime is the reliable one.
    let absolute = spec
        .expires_at
        .as_ref()
        .and_then(|path| object.get(path))
        .and_then(|value| optional_number(value).ok().flatten())
        .map(|n| n * spec.expires_at_unit.duration().as_secs_f64())
        .and_then(instant_from_epoch_secs);
    token.expires_at = settle(provider, spec.expiry_precedence, relative, absolute, now);
    if let Some(path) = &spec.refresh_expires_in {
        token.refresh_expires_at =
            expiry_from_lifetime(object.name(path), number(json, &object, path)?, unit, now)
                .map_err(invalid)?;
    }
    token.scopes = scopes(json, &object, spec)?;
    if let Some(path) = &spec.subject {
        token.subject = match object.get(path) {
            Some(value) => optional_string_or_number(value).map_err(|e| {
                invalid(format!(
                    "`{}`: {}",
                    object.name(path),
                    describe_json_error(&e)
                ))
            })?,
            None => None,
        };
    }
    token.extra = object.into_extra(spec);
    Ok(token)
}

/// A lenient number at `path` (a number or a numeric string).
fn number(
    json: &JsonResponse<'_>,
    object: &impl TokenFields,
    path: &str,
) -> Result<Option<f64>, Error> {
    match object.get(path) {
        None => Ok(None),
        Some(value) => optional_number(value).map_err(|e| {
            let field = object.name(path);
            json.invalid(format!("`{field}`: {}", describe_json_error(&e)))
        }),
    }
}

fn scopes(
    json: &JsonResponse<'_>,
    object: &impl TokenFields,
    spec: &ResponseSpec,
) -> Result<Vec<String>, Error> {
    let Some(value) = object.get(&spec.scope) else {
        return Ok(Vec::new());
    };
    if let (Some(separator), Value::String(text)) = (&spec.scope_separator, value) {
        return Ok(text
            .split(separator.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect());
    }
    optional_scopes(value)
        .map(Option::unwrap_or_default)
        .map_err(|e| json.invalid(format!("`{}`: {}", spec.scope, describe_json_error(&e))))
}

/// The expiry, from a lifetime and an absolute instant, per `precedence`.
fn settle(
    provider: &ProviderId,
    precedence: ExpiryPrecedence,
    relative: Option<SystemTime>,
    absolute: Option<SystemTime>,
    now: SystemTime,
) -> Option<SystemTime> {
    let ahead = absolute.filter(|at| *at > now);
    match precedence {
        ExpiryPrecedence::Relative => reconcile_expiry(provider, relative, absolute, now),
        ExpiryPrecedence::Absolute => ahead.or(relative),
        ExpiryPrecedence::Earliest => match (relative, ahead) {
            (Some(r), Some(a)) => Some(r.min(a)),
            (r, a) => r.or(a),
        },
    }
}

/// The paths the token is made from; the other fields are its extras.
pub(super) fn mapped_paths(spec: &ResponseSpec) -> [Option<&String>; 7] {
    [
        Some(&spec.access_token),
        Some(&spec.token_type),
        Some(&spec.refresh_token),
        Some(&spec.expires_in),
        Some(&spec.scope),
        spec.refresh_expires_in.as_ref(),
        spec.subject.as_ref(),
    ]
}

/// The token object's other top-level fields, kept for callers.
fn extra(object: &Value, spec: &ResponseSpec) -> serde_json::Map<String, Value> {
    let Value::Object(fields) = object else {
        return serde_json::Map::new();
    };
    let mapped = mapped_paths(spec);
    // A field is mapped when it is the first segment of one of a path's
    // alternatives (`a.b|c` maps `a` and `c`).
    let is_mapped = |name: &str| {
        mapped.iter().flatten().any(|path| {
            if is_plain(path) {
                return path.as_str() == name;
            }
            path.split('|')
                .any(|alternative| alternative.split('.').next() == Some(name))
        })
    };
    let mut extra = serde_json::Map::new();
    for (name, value) in fields {
        if !is_mapped(name) {
            extra.insert(name.clone(), value.clone());
        }
    }
    extra
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

/// An OAuth error whose code the spec maps to another.
fn remap(error: Error, spec: &ResponseSpec) -> Error {
    match error {
        Error::Provider {
            provider,
            code,
            provider_code: None,
            description,
            status,
            retry_after,
        } if spec.error_codes.contains_key(code.as_str()) => Error::Provider {
            provider,
            provider_code: Some(code.as_str().to_owned()),
            code: ErrorCode::parse(&spec.error_codes[code.as_str()]),
            description,
            status,
            retry_after,
        },
        other => other,
    }
}

fn business_error(
    provider: &ProviderId,
    json: &JsonResponse<'_>,
    value: &Value,
    envelope: &EnvelopeSpec,
    code: i64,
    spec: &ResponseSpec,
) -> Error {
    let code_text = code.to_string();
    let normalized = spec.error_codes.get(&code_text).map_or_else(
        || ErrorCode::Other(code_text.clone()),
        |c| ErrorCode::parse(c),
    );
    let description = envelope.message.iter().find_map(|path| {
        let (parent, field) = match path.rsplit_once('.') {
            Some((parent, field)) => (lookup(value, parent)?, field),
            None => (value, path.as_str()),
        };
        json.text_field(parent, field)
    });
    Error::Provider {
        provider: provider.clone(),
        code: normalized,
        provider_code: Some(code_text),
        description,
        status: Some(json.status()),
        retry_after: json.retry_after(),
    }
}
