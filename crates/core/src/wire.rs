//! Helpers for parsing token responses that bend the standard: numbers sent
//! as strings, relative and absolute expiries, scope lists.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, SeqAccess, Visitor};
use serde::Deserializer;

use crate::error::{Error, ErrorCode};
use crate::redact::{excerpt, scrub, CODE_CHARS, EXCERPT_CHARS};
use crate::token::{DisplayTime, ProviderId};

/// Longest lifetime accepted for a token, in seconds (100 years). A larger
/// `expires_in` is treated as a malformed response, not as "forever".
pub const MAX_LIFETIME_SECS: f64 = 100.0 * 365.25 * 86_400.0;

/// How far a relative and an absolute expiry may disagree before a warning.
pub const EXPIRY_DISAGREEMENT_TOLERANCE: Duration = Duration::from_secs(300);

/// Deserializes an optional number sent as a JSON number or a numeric
/// string (`"3600"`, `" 3600.5 "`). `null`, a missing field and `""` are `None`.
pub fn optional_number<'de, D>(deserializer: D) -> Result<Option<f64>, D::Error>
where
    D: Deserializer<'de>,
{
    // A visitor, not an untagged enum: no buffering of the value, and no
    // error built (and formatted) for the variant that does not match.
    struct NumberOrString;
    impl<'de> Visitor<'de> for NumberOrString {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number or a numeric string")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
            Ok(Some(n))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(Some(n as f64))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            Ok(Some(n as f64))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<f64>()
                .map(Some)
                .map_err(|_| E::custom("expected a number or a numeric string"))
        }
    }
    deserializer.deserialize_option(NumberOrString)
}

/// Deserializes an optional identifier sent as a string or a number
/// (`"42"` or `42` both give `Some("42")`). `null`, missing and `""` are `None`.
pub fn optional_string_or_number<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    struct StringOrNumber;
    impl<'de> Visitor<'de> for StringOrNumber {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a number")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok((!s.is_empty()).then(|| s.to_owned()))
        }
        fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
            Ok((!s.is_empty()).then_some(s))
        }
        // A number is written as `serde_json::Number` writes it (`1.5`,
        // `1e20`), as when it was read through one.
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(Some(serde_json::Number::from(n).to_string()))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            Ok(Some(serde_json::Number::from(n).to_string()))
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
            serde_json::Number::from_f64(n)
                .map(|n| Some(n.to_string()))
                .ok_or_else(|| E::custom("not a JSON number"))
        }
    }
    deserializer.deserialize_option(StringOrNumber)
}

/// Deserializes an optional scope list sent as a space- or comma-separated
/// string or as a JSON array of strings.
pub fn optional_scopes<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    struct ScopeField;
    impl<'de> Visitor<'de> for ScopeField {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a scope string or a list of scope strings")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(Some(split_scopes(text)))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            while let Some(scope) = seq.next_element::<String>()? {
                list.push(scope);
            }
            Ok(Some(list))
        }
    }
    deserializer.deserialize_option(ScopeField)
}

/// Converts a relative lifetime into an absolute instant.
///
/// `None` and `0` mean "not said" and give `None` (a `0` is a placeholder in
/// the providers' docs, not a token that is already expired). A negative,
/// non-finite or over-[`MAX_LIFETIME_SECS`] value is an error naming `field`.
pub fn expiry_from_lifetime(
    field: &str,
    lifetime: Option<f64>,
    unit: Duration,
    now: SystemTime,
) -> Result<Option<SystemTime>, String> {
    let Some(value) = lifetime else {
        return Ok(None);
    };
    let secs = value * unit.as_secs_f64();
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{field}` is negative or not a number"));
    }
    if secs > MAX_LIFETIME_SECS {
        return Err(format!("`{field}` is over 100 years"));
    }
    if secs == 0.0 {
        return Ok(None);
    }
    now.checked_add(Duration::from_secs_f64(secs))
        .map(Some)
        .ok_or_else(|| format!("`{field}` is out of range"))
}

/// Converts absolute epoch seconds (fractions allowed) into an instant;
/// `None` for non-positive or out-of-range values.
pub fn instant_from_epoch_secs(secs: f64) -> Option<SystemTime> {
    if !secs.is_finite() || secs <= 0.0 || secs > 1e12 {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::from_secs_f64(secs))
}

/// An absolute expiry (epoch seconds, e.g. a JWT's `exp`) that is a token's
/// only one: it must lie in the future and at most [`MAX_LIFETIME_SECS`]
/// away, or the token would be used when already expired, or never renewed.
/// The error names `field`.
pub fn expiry_from_instant(field: &str, secs: f64, now: SystemTime) -> Result<SystemTime, String> {
    let at = instant_from_epoch_secs(secs)
        .filter(|at| *at > now)
        .ok_or_else(|| format!("`{field}` is already past"))?;
    match at.duration_since(now) {
        Ok(ahead) if ahead.as_secs_f64() <= MAX_LIFETIME_SECS => Ok(at),
        _ => Err(format!("`{field}` is over 100 years away")),
    }
}

/// Chooses an access token's expiry from a relative lifetime (`expires_in`)
/// and an absolute instant (Hike's `expires`, a JWT's `exp`).
///
/// The relative value wins when present: it is immune to clock skew between
/// the provider and us. The absolute one is used only when no relative value
/// was given and it lies in the future. A disagreement over
/// [`EXPIRY_DISAGREEMENT_TOLERANCE`] is logged as a warning.
pub fn reconcile_expiry(
    provider: &ProviderId,
    relative: Option<SystemTime>,
    absolute: Option<SystemTime>,
    now: SystemTime,
) -> Option<SystemTime> {
    match (relative, absolute) {
        (Some(rel), Some(abs)) => {
            let gap = rel
                .duration_since(abs)
                .or_else(|_| abs.duration_since(rel))
                .unwrap_or_default();
            if gap > EXPIRY_DISAGREEMENT_TOLERANCE {
                tracing::warn!(
                    provider = %provider,
                    relative_expiry = %DisplayTime(rel),
                    absolute_expiry = %DisplayTime(abs),
                    "the provider's relative and absolute expiries disagree; using the relative one"
                );
            }
            Some(rel)
        }
        (Some(rel), None) => Some(rel),
        (None, Some(abs)) if abs > now => Some(abs),
        (None, _) => None,
    }
}

/// Splits a scope string on spaces and commas, dropping empty parts.
pub fn split_scopes(scope: &str) -> Vec<String> {
    scope
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An [`Error::InvalidResponse`] with a redacted excerpt of `body`. The
/// reason is scrubbed too (it may quote a field name or a `token_type`
/// taken from the body).
pub fn invalid_response(
    provider: &ProviderId,
    reason: impl Into<String>,
    body: &[u8],
    known_secrets: &[&str],
) -> Error {
    Error::InvalidResponse {
        provider: provider.clone(),
        reason: scrub(&reason.into(), known_secrets, body, EXCERPT_CHARS),
        excerpt: excerpt(body, known_secrets),
    }
}

/// Checks an access token before it is accepted: it must be non-blank and
/// made of visible ASCII characters only (RFC 6750's `b64token` and every
/// opaque token in practice), since it is sent as `Authorization: Bearer
/// <token>`: a control character, space or non-ASCII character would make
/// the header invalid (or, with a CR LF, inject another header). `field` is
/// the wire name used in the reason.
pub fn check_access_token(field: &str, token: &str) -> Result<(), String> {
    if token.trim().is_empty() {
        return Err(format!("`{field}` is missing or empty"));
    }
    if !is_visible_ascii(token.as_bytes()) {
        return Err(format!(
            "`{field}` has characters an Authorization header cannot carry \
             (control, space or non-ASCII)"
        ));
    }
    Ok(())
}

/// True when every byte is visible ASCII (`!` to `~`); a non-ASCII
/// character's bytes are all >= 0x80, so they fail too. Checked a block
/// at a time without an early exit, so the compiler vectorizes it (a JWT
/// is about a kilobyte).
fn is_visible_ascii(bytes: &[u8]) -> bool {
    bytes.chunks(32).all(|block| {
        block
            .iter()
            .fold(true, |ok, &b| ok & (b.wrapping_sub(b'!') <= b'~' - b'!'))
    })
}

/// Checks a token type, when the response gives one: only `Bearer` (in any
/// case) is usable. The reason quotes at most 40 characters of the value
/// (the caller's error excerpt scrubs secrets). `field` is the wire name.
pub fn check_bearer(field: &str, token_type: Option<&str>) -> Result<(), String> {
    match token_type.filter(|t| !t.eq_ignore_ascii_case("bearer")) {
        None => Ok(()),
        Some(kind) => {
            let kind: String = kind.chars().take(40).collect();
            Err(format!(
                "unsupported `{field}` {kind:?}: only Bearer tokens can be used"
            ))
        }
    }
}

/// Parses an OAuth error code as sent. A code that is not one of RFC 6749's
/// is kept as [`ErrorCode::Other`], scrubbed of `known_secrets` and of the
/// credential values of `body`, and cut to [`CODE_CHARS`] characters.
pub fn error_code(code: &str, known_secrets: &[&str], body: &[u8]) -> ErrorCode {
    match ErrorCode::parse(code) {
        ErrorCode::Other(other) => ErrorCode::Other(scrub(&other, known_secrets, body, CODE_CHARS)),
        known => known,
    }
}

/// Checks that `body` is exactly one JSON document (nothing after it) in
/// which no object repeats a key. RFC 8259 leaves the meaning of a repeated
/// key to each parser (first wins, last wins, error), so a token response
/// that repeats one is refused rather than read one way here and another
/// way elsewhere. The reason names the position, never the key.
pub fn check_json_document(body: &[u8]) -> Result<(), String> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    UniqueKeys
        .deserialize(&mut deserializer)
        .and_then(|()| deserializer.end())
        .map_err(|err| {
            if err.is_data() {
                format!(
                    "a JSON object repeats a key (line {}, column {})",
                    err.line(),
                    err.column()
                )
            } else {
                describe_json_error(&err)
            }
        })
}

/// Parses `body` as one JSON document into a [`Value`](serde_json::Value), refusing an object
/// that repeats a key, in a single pass (what [`serde_json::from_slice`]
/// and [`check_json_document`] do in two). The error is described by
/// category and position only.
pub fn parse_json_document(body: &[u8]) -> Result<serde_json::Value, String> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    UniqueValue
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|err| {
            if err.is_data() {
                format!(
                    "a JSON object repeats a key (line {}, column {})",
                    err.line(),
                    err.column()
                )
            } else {
                describe_json_error(&err)
            }
        })
}

/// Builds a JSON value, failing on the first object that repeats a key.
#[derive(Clone, Copy)]
pub(crate) struct UniqueValue;

impl<'de> serde::de::DeserializeSeed<'de> for UniqueValue {
    type Value = serde_json::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueValue {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                serde_json::map::Entry::Occupied(_) => {
                    return Err(serde::de::Error::custom("repeated key"))
                }
                serde_json::map::Entry::Vacant(entry) => {
                    entry.insert(map.next_value_seed(self)?);
                }
            }
        }
        Ok(serde_json::Value::Object(object))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .map_or(serde_json::Value::Null, serde_json::Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(serde_json::Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(serde_json::Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
}

/// Walks a JSON value, failing on the first object that repeats a key.
#[derive(Clone, Copy)]
struct UniqueKeys;

impl<'de> serde::de::DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(serde::de::Error::custom("repeated key"));
            }
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Describes a `serde_json` error without quoting the input (which may hold
/// a secret): its category and position only.
pub fn describe_json_error(err: &serde_json::Error) -> String {
    let what = match err.classify() {
        serde_json::error::Category::Io => "unreadable body",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "a field has the wrong type or is missing",
        serde_json::error::Category::Eof => "the JSON body is truncated or empty",
    };
    format!("{what} (line {}, column {})", err.line(), err.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "optional_number")]
        n: Option<f64>,
    }

    fn n(json: &str) -> Result<Option<f64>, serde_json::Error> {
        serde_json::from_str::<Probe>(json).map(|p| p.n)
    }

    #[test]
    fn numbers_and_numeric_strings_are_accepted() {
        assert_eq!(n(r#"{"n": 3600}"#).unwrap(), Some(3600.0));
        assert_eq!(n(r#"{"n": "3600"}"#).unwrap(), Some(3600.0));
        assert_eq!(n(r#"{"n": " 1.5 "}"#).unwrap(), Some(1.5));
        assert_eq!(n(r#"{"n": null}"#).unwrap(), None);
        assert_eq!(n(r#"{"n": ""}"#).unwrap(), None);
        assert_eq!(n(r#"{}"#).unwrap(), None);
        assert!(n(r#"{"n": "soon"}"#).is_err());
        assert!(n(r#"{"n": true}"#).is_err());
    }

    #[derive(Debug, Deserialize)]
    struct Ids {
        #[serde(default, deserialize_with = "optional_string_or_number")]
        id: Option<String>,
        #[serde(default, deserialize_with = "optional_scopes")]
        scope: Option<Vec<String>>,
    }

    #[test]
    fn ids_and_scopes_are_read_leniently() {
        let ids: Ids = serde_json::from_str(r#"{"id": 42, "scope": "a b"}"#).unwrap();
        assert_eq!(ids.id.as_deref(), Some("42"));
        assert_eq!(ids.scope, Some(vec!["a".to_owned(), "b".to_owned()]));
        let ids: Ids = serde_json::from_str(r#"{"id": "u-1", "scope": ["x"]}"#).unwrap();
        assert_eq!(ids.id.as_deref(), Some("u-1"));
        assert_eq!(ids.scope, Some(vec!["x".to_owned()]));
        let ids: Ids = serde_json::from_str(r#"{"id": null, "scope": null}"#).unwrap();
        assert!(ids.id.is_none() && ids.scope.is_none());
    }

    /// The lenient readers read the same from JSON text, from a borrowed
    /// and an owned `Value`, and from inside a struct with a flattened
    /// field (where serde buffers the value first).
    #[test]
    fn lenient_readers_agree_on_every_deserializer() {
        #[derive(Debug, Deserialize)]
        struct Flat {
            #[serde(default, deserialize_with = "optional_number")]
            n: Option<f64>,
            #[serde(default, deserialize_with = "optional_string_or_number")]
            id: Option<String>,
            #[serde(default, deserialize_with = "optional_scopes")]
            scope: Option<Vec<String>>,
            #[serde(flatten)]
            _rest: serde_json::Map<String, serde_json::Value>,
        }
        let numbers = [
            ("3600", Some(3600.0)),
            ("-5", Some(-5.0)),
            ("1.5", Some(1.5)),
            (r#"" 7 ""#, Some(7.0)),
            (r#""""#, None),
            ("null", None),
        ];
        for (json, expected) in numbers {
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(optional_number(&value).unwrap(), expected, "{json}");
            assert_eq!(optional_number(value).unwrap(), expected, "{json}");
            let flat: Flat = serde_json::from_str(&format!(r#"{{"n": {json}, "x": 1}}"#)).unwrap();
            assert_eq!(flat.n, expected, "{json}");
        }
        for bad in ["true", r#""soon""#, "[1]", "{}"] {
            let value: serde_json::Value = serde_json::from_str(bad).unwrap();
            let err = optional_number(&value).unwrap_err();
            assert!(err.is_data(), "{bad}");
            assert!(
                n(&format!(r#"{{"n": {bad}}}"#)).unwrap_err().is_data(),
                "{bad}"
            );
        }
        // Numbers are written as serde_json writes them.
        let ids = [
            ("42", Some("42")),
            ("-7", Some("-7")),
            ("1.5", Some("1.5")),
            ("1e20", Some("1e+20")),
            ("2.0", Some("2.0")),
            (r#""u-1""#, Some("u-1")),
            (r#""""#, None),
            ("null", None),
        ];
        for (json, expected) in ids {
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            let via_number = match &value {
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            if let Some(written) = via_number {
                assert_eq!(Some(written.as_str()), expected, "{json}");
            }
            assert_eq!(
                optional_string_or_number(&value).unwrap().as_deref(),
                expected
            );
            assert_eq!(
                optional_string_or_number(value).unwrap().as_deref(),
                expected
            );
            let flat: Flat = serde_json::from_str(&format!(r#"{{"id": {json}}}"#)).unwrap();
            assert_eq!(flat.id.as_deref(), expected, "{json}");
        }
        assert!(optional_string_or_number(&serde_json::json!(true)).is_err());
        let scopes = [
            (r#""a b,c""#, Some(vec!["a", "b", "c"])),
            (r#"["x", "y z"]"#, Some(vec!["x", "y z"])),
            ("[]", Some(vec![])),
            ("null", None),
        ];
        for (json, expected) in scopes {
            let expected: Option<Vec<String>> =
                expected.map(|list| list.into_iter().map(str::to_owned).collect());
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(optional_scopes(&value).unwrap(), expected, "{json}");
            assert_eq!(optional_scopes(value).unwrap(), expected, "{json}");
            let flat: Flat = serde_json::from_str(&format!(r#"{{"scope": {json}}}"#)).unwrap();
            assert_eq!(flat.scope, expected, "{json}");
        }
        for bad in ["[1]", r#"["a", null]"#, "7", "{}"] {
            let value: serde_json::Value = serde_json::from_str(bad).unwrap();
            assert!(optional_scopes(&value).unwrap_err().is_data(), "{bad}");
        }
    }

    #[test]
    fn visible_ascii_is_checked_in_blocks() {
        for byte in 0..=255u8 {
            assert_eq!(
                is_visible_ascii(&[byte]),
                byte.is_ascii_graphic(),
                "{byte:#x}"
            );
        }
        // A bad byte at every position of a JWT-sized token, across blocks.
        let good = vec![b'a'; 1000];
        assert!(is_visible_ascii(&good));
        assert!(is_visible_ascii(b""));
        for at in [0, 1, 31, 32, 33, 63, 64, 500, 998, 999] {
            for bad in [b' ', b'\n', 0x7f, 0x80, 0xff] {
                let mut token = good.clone();
                token[at] = bad;
                assert!(!is_visible_ascii(&token), "{bad:#x} at {at}");
            }
        }
    }

    #[test]
    fn lifetimes_become_instants_and_zero_means_unknown() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let secs = Duration::from_secs(1);
        assert_eq!(
            expiry_from_lifetime("expires_in", Some(60.0), secs, now).unwrap(),
            Some(now + Duration::from_secs(60))
        );
        assert_eq!(
            expiry_from_lifetime("expires_in", Some(60_000.0), Duration::from_millis(1), now)
                .unwrap(),
            Some(now + Duration::from_secs(60))
        );
        assert_eq!(
            expiry_from_lifetime("expires_in", Some(0.0), secs, now).unwrap(),
            None
        );
        assert_eq!(
            expiry_from_lifetime("expires_in", None, secs, now).unwrap(),
            None
        );
        assert!(expiry_from_lifetime("expires_in", Some(-1.0), secs, now).is_err());
        assert!(expiry_from_lifetime("expires_in", Some(1e300), secs, now).is_err());
        assert!(expiry_from_lifetime("expires_in", Some(f64::NAN), secs, now).is_err());
    }

    #[test]
    fn relative_expiry_wins_and_absolute_is_a_fallback() {
        let p = ProviderId::from_static("p");
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let rel = Some(now + Duration::from_secs(60));
        let past = Some(now - Duration::from_secs(500));
        let future = Some(now + Duration::from_secs(120));
        assert_eq!(reconcile_expiry(&p, rel, past, now), rel);
        assert_eq!(reconcile_expiry(&p, None, future, now), future);
        assert_eq!(reconcile_expiry(&p, None, past, now), None);
        assert_eq!(reconcile_expiry(&p, None, None, now), None);
    }

    #[test]
    fn fractional_epoch_seconds_are_kept() {
        let t = instant_from_epoch_secs(1_710_223_631.577_478).unwrap();
        let d = t.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(d.as_secs(), 1_710_223_631);
        assert!(d.subsec_millis() >= 577);
        assert_eq!(instant_from_epoch_secs(-1.0), None);
    }

    #[test]
    fn scopes_split_on_spaces_and_commas() {
        assert_eq!(split_scopes("a b,c  "), vec!["a", "b", "c"]);
        assert!(split_scopes("").is_empty());
    }

    #[test]
    fn access_tokens_must_fit_in_a_header() {
        assert!(check_access_token("t", "eyJ.abc-_~+/=").is_ok());
        for bad in ["", "  ", "a b", "a\r\nX-Evil: 1", "t\u{0}", "tök"] {
            let reason = check_access_token("t", bad).unwrap_err();
            assert!(!reason.contains(bad) || bad.trim().is_empty(), "{reason}");
        }
    }

    #[test]
    fn one_document_without_repeated_keys() {
        assert!(check_json_document(br#"{"a":1,"b":[{"c":1,"d":2}]} "#).is_ok());
        assert!(check_json_document(b"not json").is_err());
        assert!(check_json_document(br#"{"a":1} x"#).is_err());
        assert!(check_json_document(br#"{"a":1}{"a":1}"#).is_err());
        let err = check_json_document(br#"{"a":1,"a":2}"#).unwrap_err();
        assert!(err.contains("repeats") && !err.contains("\"a\""), "{err}");
        assert!(check_json_document(br#"{"x":{"t":"s3cret","t":"s3cret"}}"#).is_err());
        assert!(check_json_document(br#"[{"k":1},{"k":1}]"#).is_ok());
        assert!(check_json_document(br#"{"\u0061":1,"a":2}"#).is_err());
    }

    #[test]
    fn json_errors_never_quote_the_input() {
        let err = serde_json::from_str::<Probe>(r#"{"n": "secret-value-123"}"#).unwrap_err();
        assert!(!describe_json_error(&err).contains("secret"));
    }
}
