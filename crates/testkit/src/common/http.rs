//! Small HTTP, parameter, time and randomness helpers shared by the mocks.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, StatusCode};

/// A JSON response with the `no-store` caching headers RFC 6749 §5.1 asks for.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// Whether the request's media type (ignoring parameters such as
/// `charset`) is `expected`.
pub(crate) fn has_content_type(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(expected))
}

/// The request's `Content-Type`, for error messages.
pub(crate) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_else(|| "(none)".to_owned())
}

/// Decoded `application/x-www-form-urlencoded` parameters (query or body).
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub(crate) fn parse(raw: &str) -> Self {
        Self {
            pairs: url::form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        }
    }

    /// Parameters from already decoded pairs (a JSON body's fields).
    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// Every pair, in order.
    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The first value of `name`; an empty value counts as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Whether `name` appears at all (even empty).
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// The first parameter name that appears more than once (RFC 6749 §3.1:
    /// "Request and response parameters MUST NOT be included more than once").
    pub(crate) fn repeated(&self) -> Option<&str> {
        self.pairs.iter().enumerate().find_map(|(i, (k, _))| {
            self.pairs[..i]
                .iter()
                .any(|(prev, _)| prev == k)
                .then_some(k.as_str())
        })
    }

    /// All pairs except `decision`, in order (for the consent form).
    pub(crate) fn without_decision(&self) -> impl Iterator<Item = &(String, String)> {
        self.pairs.iter().filter(|(k, _)| k != "decision")
    }
}

/// Whole seconds since the Unix epoch (0 before it).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Fractional seconds since the Unix epoch, microsecond precision.
pub(crate) fn unix_secs_f64(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| {
        d.as_secs() as f64 + f64::from(d.subsec_micros()) / 1_000_000.0
    })
}

/// A random URL-safe string (`num_bytes` random bytes, base64url).
pub(crate) fn random_string(num_bytes: u32) -> String {
    oauth2::CsrfToken::new_random_len(num_bytes).into_secret()
}

/// `num_bytes` random bytes.
pub(crate) fn random_bytes(num_bytes: u32) -> Vec<u8> {
    use base64::Engine as _;
    let text = random_string(num_bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.as_bytes())
        .unwrap_or_else(|_| text.into_bytes())
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
