//! What the fuzz targets share: turning raw bytes into a canned
//! token-endpoint response, and the "no secret in an error" check.
//!
//! An input is `[status, content type, mode, body...]`. In the body, the
//! markers below are replaced before the response is read, so the fuzzer
//! can place the secrets the client sent (and the access token the server
//! returns) anywhere with two bytes.

use std::error::Error as _;

use oauth2_adapters_core::adapter::redact::credential_values;
use oauth2_adapters_core::{Error, Token};

/// Statuses an input's first byte picks from.
pub const STATUSES: [u16; 16] = [
    200, 200, 200, 201, 204, 301, 302, 400, 401, 403, 404, 429, 500, 502, 503, 504,
];

/// Content types an input's second byte picks from.
pub const CONTENT_TYPES: [Option<&str>; 6] = [
    Some("application/json"),
    Some("application/json;charset=UTF-8"),
    Some("text/html"),
    Some("text/plain"),
    None,
    Some("Application/JSON"),
];

/// The access token a body may carry (marker `$A`): short enough not to
/// look credential-like, so only the library's scrubbing can hide it.
pub const ACCESS_CANARY: &str = "Qz7Kp2";

/// Beyond this many credential values in one body, the library scrubs only
/// the first ones from the rest of the text (a documented bound), so the
/// canary check is skipped.
pub const MAX_CHECKED_VALUES: usize = 32;

/// A decoded input.
#[derive(Debug)]
pub struct Canned {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: Option<&'static str>,
    /// A target-specific choice (grant, expiry unit, body shape).
    pub mode: u8,
    /// The body, markers replaced.
    pub body: Vec<u8>,
}

/// Decodes `[status, content type, mode, body...]`, replacing each
/// `(marker, secret)` in the body. `None` for inputs under 3 bytes.
pub fn decode(data: &[u8], markers: &[(&str, &str)]) -> Option<Canned> {
    let (&[status, content_type, mode], body) = data.split_first_chunk::<3>()?;
    Some(Canned {
        status: STATUSES[usize::from(status) % STATUSES.len()],
        content_type: CONTENT_TYPES[usize::from(content_type) % CONTENT_TYPES.len()],
        mode,
        body: replace_markers(body, markers),
    })
}

/// `bytes` with every `(marker, value)` replaced (markers are ASCII).
pub fn replace_markers(bytes: &[u8], markers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    'outer: while i < bytes.len() {
        for (marker, value) in markers {
            if bytes[i..].starts_with(marker.as_bytes()) {
                out.extend_from_slice(value.as_bytes());
                i += marker.len();
                continue 'outer;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Every text an error shows: `Display`, `Debug`, and the `Display` of each
/// source.
pub fn error_texts(err: &Error) -> Vec<String> {
    let mut texts = vec![err.to_string(), format!("{err:?}")];
    let mut source = err.source();
    while let Some(cause) = source {
        texts.push(cause.to_string());
        source = cause.source();
    }
    texts
}

/// Panics (a fuzzer "crash") when an error shows one of `secrets`.
pub fn assert_hidden(err: &Error, secrets: &[&str]) {
    for text in error_texts(err) {
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            assert!(
                !text.contains(secret),
                "the secret {secret:?} shows in the error: {text}"
            );
        }
    }
}

/// The checks every response target makes on a result: the secrets the
/// client sent never show in an error; nor does the access token the body
/// carries (as `"access_token":"…"` or `"accessToken":"…"`); a token's
/// `Debug` never shows its secrets.
pub fn check_response(result: &Result<Token, Error>, sent: &[&str], body: &[u8]) {
    match result {
        Err(err) => {
            assert_hidden(err, sent);
            if carries_canary(body) {
                assert_hidden(err, &[ACCESS_CANARY]);
            }
        }
        Ok(token) => check_token(token),
    }
}

/// A token's `Debug` shows neither its access nor its refresh token: it is
/// the same whatever their values. An accepted access token is never blank.
pub fn check_token(token: &Token) {
    use oauth2_adapters_core::{ExposeSecret, SecretString};
    assert!(
        !token.access_token.expose_secret().trim().is_empty(),
        "a blank access token was accepted"
    );
    let mut other = token.clone();
    other.access_token = SecretString::from("other-access");
    other.refresh_token = token
        .refresh_token
        .as_ref()
        .map(|_| SecretString::from("other-refresh"));
    assert_eq!(
        format!("{token:?}"),
        format!("{other:?}"),
        "the token's Debug depends on its secrets"
    );
}

/// Whether the body hands out the canary as its access token (and has few
/// enough credential values for every one to be scrubbed).
fn carries_canary(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let carried = ["\"access_token\":\"", "\"accessToken\":\""]
        .iter()
        .any(|key| text.contains(&format!("{key}{ACCESS_CANARY}\"")));
    carried && credential_values(body).len() <= MAX_CHECKED_VALUES
}
