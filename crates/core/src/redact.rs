//! Redaction: the one place that decides what of a secret-bearing text may be shown.
//!
//! Two kinds of secret are removed from every text that goes into an error:
//!
//! * the *known* secrets: what the client sent (client secret, code, refresh
//!   token, PKCE verifier, API key), given by the caller;
//! * the *credential values* of the response itself: the string under any
//!   credential-like key (`access_token`, `accessToken`, `refresh_token`,
//!   `id_token`, `client_secret`, …), found by [`credential_values`] even in
//!   a body that is not valid JSON. A server that echoes its own token into an
//!   `error_description`, or a truncated body, cannot leak it.

use serde_json::Value;

/// Longest excerpt of a response body kept in an error, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// Longest provider error code kept in an error, in characters.
pub const CODE_CHARS: usize = 64;

/// Shortest credential value (found in a response) that is also scrubbed
/// from the rest of the text: shorter ones are redacted where they stand,
/// but replacing a 2-letter value everywhere would destroy the diagnostics.
pub const MIN_SCRUBBED_VALUE_CHARS: usize = 4;

/// Most credential values of one body scrubbed from the rest of the text
/// (the first ones, in order of appearance). A bound keeps a hostile body
/// from making redaction quadratic; values past it are still redacted where
/// they stand in a JSON body, just not searched for elsewhere.
pub const MAX_SCRUBBED_VALUES: usize = 32;

const REDACTED: &str = "[redacted]";

/// Longest key [`credential_values`] considers: longer strings are not
/// credential keys, and the bound keeps the every-quote scan linear.
const MAX_KEY_CHARS: usize = 64;

/// JSON keys whose string values are kept in excerpts: diagnostics, never secrets.
const DIAGNOSTIC_KEYS: &[&str] = &[
    "error",
    "error_description",
    "error_uri",
    "msg",
    "message",
    "status",
    "success",
    "token_type",
    "tokenType",
    "scope",
    "scopes",
];

/// Shows the first `visible` characters of a secret followed by `…`,
/// or `[redacted]` when `visible` is 0 or the secret is too short to hide
/// anything (fewer than 4 × `visible` characters).
pub fn redacted_prefix(secret: &str, visible: usize) -> String {
    let len = secret.chars().count();
    if visible == 0 || len < visible.saturating_mul(4) {
        return REDACTED.to_owned();
    }
    let prefix: String = secret.chars().take(visible).collect();
    format!("{prefix}… ({len} chars)")
}

/// A short excerpt of a response body that is safe to put in an error.
///
/// * Every occurrence of a `known_secret` (what we sent: client secret, code,
///   refresh token), and of every [credential value](credential_values) of
///   the body, is replaced, also in its form-urlencoded spelling.
/// * A JSON body keeps its structure; string values are kept only under
///   diagnostic keys (`error`, `error_description`, `msg`, …), numbers and
///   booleans are kept, every other string becomes `[redacted]`.
/// * A body that only looks like JSON (truncated, with a BOM, …) gets the
///   same treatment, string literal by string literal.
/// * Any other body (HTML, text) keeps its words, but every run of 16 or
///   more token characters, and every run of 8 or more that mixes letters
///   and digits, is masked: such runs look like credentials.
/// * The result is cut to [`EXCERPT_CHARS`] characters.
pub fn excerpt(body: &[u8], known_secrets: &[&str]) -> String {
    let secrets = Secrets::new(known_secrets, body);
    let text = secrets.replace(&String::from_utf8_lossy(body));
    let redacted = match serde_json::from_str::<Value>(&text) {
        Ok(mut value) if value.is_object() || value.is_array() => {
            redact_json(&mut value, None, &secrets);
            value.to_string()
        }
        _ if looks_like_json(&text) => mask_credential_like_words(&redact_json_like(&text)),
        _ => mask_credential_like_words(&text),
    };
    truncate_chars(&redacted, EXCERPT_CHARS)
}

/// An [`excerpt`] of one field of a response (an `error_description`, a
/// `msg`), scrubbed of the known secrets and of the credential values of
/// the whole `body` the field came from.
pub fn field_excerpt(text: &str, known_secrets: &[&str], body: &[u8]) -> String {
    let values = scrubbed_values(body);
    let secrets: Vec<&str> = known_secrets
        .iter()
        .copied()
        .chain(values.iter().map(String::as_str))
        .collect();
    excerpt(text.as_bytes(), &secrets)
}

/// The credential values of `body` that are scrubbed everywhere: at least
/// [`MIN_SCRUBBED_VALUE_CHARS`] long, the first [`MAX_SCRUBBED_VALUES`].
fn scrubbed_values(body: &[u8]) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for value in credential_values(body) {
        if value.chars().count() >= MIN_SCRUBBED_VALUE_CHARS && !values.contains(&value) {
            values.push(value);
            if values.len() == MAX_SCRUBBED_VALUES {
                break;
            }
        }
    }
    values
}

/// `text` (a reason, an error code, a `token_type` we quote) with every
/// known secret and every credential value of `body` replaced, control
/// characters turned into spaces, and cut to `max_chars` characters.
///
/// Unlike [`excerpt`], words are not masked: use it for text whose words are
/// ours or short identifiers.
pub fn scrub(text: &str, known_secrets: &[&str], body: &[u8], max_chars: usize) -> String {
    let secrets = Secrets::new(known_secrets, body);
    let replaced: String = secrets
        .replace(text)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate_chars(&replaced, max_chars)
}

/// The values of credential-like keys in `body`: the string after
/// `"access_token":`, `"accessToken":`, `"refresh_token":`, `"id_token":`,
/// `"client_secret":`, … anywhere in the text, at any depth, whether or not
/// the body as a whole is valid JSON (a truncated body's last, unterminated
/// string counts). Every `"` is tried as the start of a key, so quotes that
/// pair up wrongly in garbage cannot hide one. Each value is returned
/// decoded and, when it has escapes, also as written, in order of appearance.
pub fn credential_values(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    for i in (0..chars.len()).filter(|&i| chars[i] == '"') {
        let key = read_string(&chars, i + 1, MAX_KEY_CHARS);
        if !key.terminated || !is_credential_key(&key.decoded) {
            continue;
        }
        let Some(colon) = skip_whitespace(&chars, key.end).filter(|&j| chars[j] == ':') else {
            continue;
        };
        let Some(open) = skip_whitespace(&chars, colon + 1).filter(|&j| chars[j] == '"') else {
            continue;
        };
        let value = read_string(&chars, open + 1, usize::MAX);
        if value.raw != value.decoded {
            found.push(value.raw);
        }
        found.push(value.decoded);
    }
    found.retain(|v| !v.is_empty());
    found
}

/// Whether a JSON key names a credential: it ends with `token`, `secret`
/// or `verifier`, or is a password or API key (case, `_` and `-` ignored).
/// `token_type` and `expires_in`-like keys do not.
pub fn is_credential_key(key: &str) -> bool {
    let normalized: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    ["token", "secret", "verifier", "password", "apikey", "jwt"]
        .iter()
        .any(|end| normalized.ends_with(end))
}

/// The secrets to replace: known ones (any length) and credential values
/// of the body (at least [`MIN_SCRUBBED_VALUE_CHARS`]), each also
/// form-urlencoded, longest first.
struct Secrets(Vec<String>);

impl Secrets {
    fn new(known: &[&str], body: &[u8]) -> Self {
        let mut all: Vec<String> = known
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| (*s).to_owned())
            .collect();
        if !body.is_empty() {
            all.extend(scrubbed_values(body));
        }
        let encoded: Vec<String> = all
            .iter()
            .map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect())
            .collect();
        all.extend(encoded);
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.dedup();
        Self(all)
    }

    fn replace(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.0 {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

fn redact_json(value: &mut Value, key: Option<&str>, secrets: &Secrets) {
    match value {
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (k, mut v) in entries {
                redact_json(&mut v, Some(&k), secrets);
                map.insert(secrets.replace(&k), v);
            }
        }
        Value::Array(items) => {
            for item in items {
                redact_json(item, key, secrets);
            }
        }
        Value::String(s) => {
            *s = if keeps_string(key, s) {
                mask_credential_like_words(&secrets.replace(s))
            } else {
                REDACTED.to_owned()
            };
        }
        _ => {}
    }
}

/// Whether the string value `value` under `key` is a diagnostic to keep.
fn keeps_string(key: Option<&str>, value: &str) -> bool {
    match key {
        Some(k) if DIAGNOSTIC_KEYS.contains(&k) => true,
        // Business codes such as HyperSKU's "60025" may come as strings.
        Some("code") => value.len() <= 8 && value.bytes().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// True when `text` starts (after whitespace and a BOM) like a JSON object or array.
fn looks_like_json(text: &str) -> bool {
    text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .starts_with(['{', '['])
}

/// Redacts the string literals of a text that looks like JSON but does not
/// parse: a string followed by `:` is a key and kept; any other string is a
/// value, kept only when it directly follows a diagnostic key's `:`.
fn redact_json_like(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut last_key: Option<String> = None;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '"' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let literal = read_string(&chars, i + 1, usize::MAX);
        let written: String = chars[i..literal.end].iter().collect();
        let is_key = skip_whitespace(&chars, literal.end).is_some_and(|j| chars[j] == ':');
        if is_key {
            out.push_str(&written);
            last_key = Some(literal.decoded);
        } else {
            let after_colon = out.trim_end().ends_with(':');
            let key = last_key.as_deref().filter(|_| after_colon);
            if keeps_string(key, &literal.decoded) {
                out.push_str(&written);
            } else {
                out.push('"');
                out.push_str(REDACTED);
                out.push('"');
            }
        }
        i = literal.end;
    }
    out
}

/// A JSON string literal read from `chars[start..]` (just after its opening quote).
struct Literal {
    /// The value with escapes resolved (invalid escapes kept as written).
    decoded: String,
    /// The characters between the quotes, as written.
    raw: String,
    /// The index just after the closing quote (or the end of the text).
    end: usize,
    /// Whether the closing quote was found.
    terminated: bool,
}

/// Reads at most `max` characters of the literal; a longer one counts as
/// unterminated.
fn read_string(chars: &[char], start: usize, max: usize) -> Literal {
    let mut decoded = String::new();
    let mut i = start;
    let end = chars.len().min(start.saturating_add(max));
    while i < end {
        match chars[i] {
            '"' => {
                return Literal {
                    decoded,
                    raw: chars[start..i].iter().collect(),
                    end: i + 1,
                    terminated: true,
                }
            }
            '\\' if i + 1 < chars.len() => {
                let (c, used) = unescape(&chars[i + 1..]);
                decoded.push_str(&c);
                i += 1 + used;
            }
            c => {
                decoded.push(c);
                i += 1;
            }
        }
    }
    Literal {
        raw: chars[start.min(chars.len())..i.min(chars.len()).max(start.min(chars.len()))]
            .iter()
            .collect(),
        decoded,
        end: i.min(chars.len()),
        terminated: false,
    }
}

/// Resolves the escape after a backslash; returns its text and how many
/// characters it used. A malformed escape is kept as written.
fn unescape(rest: &[char]) -> (String, usize) {
    let simple = match rest[0] {
        '"' => Some('"'),
        '\\' => Some('\\'),
        '/' => Some('/'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        _ => None,
    };
    if let Some(c) = simple {
        return (c.to_string(), 1);
    }
    let hex: String = rest.iter().skip(1).take(4).collect();
    match u32::from_str_radix(&hex, 16)
        .ok()
        .filter(|_| hex.len() == 4)
    {
        Some(code) if rest[0] == 'u' => (char::from_u32(code).unwrap_or('\u{fffd}').to_string(), 5),
        _ => (format!("\\{}", rest[0]), 1),
    }
}

fn skip_whitespace(chars: &[char], from: usize) -> Option<usize> {
    (from..chars.len()).find(|&j| !chars[j].is_whitespace())
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=')
}

fn mask_credential_like_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let has_alpha = word.chars().any(|c| c.is_ascii_alphabetic());
        let has_digit = word.chars().any(|c| c.is_ascii_digit());
        let len = word.chars().count();
        if len >= 16 || (len >= 8 && has_alpha && has_digit) {
            out.push_str(REDACTED);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_token_char(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(if c.is_control() { ' ' } else { c });
        }
    }
    flush(&mut word, &mut out);
    out
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_diagnostics_and_hides_everything_else() {
        let body = br#"{"error":"invalid_grant","error_description":"bad code","access_token":"abc","code":60025,"data":{"refreshToken":"r"}}"#;
        let out = excerpt(body, &[]);
        assert!(out.contains("invalid_grant"), "{out}");
        assert!(out.contains("bad code"), "{out}");
        assert!(out.contains("60025"), "{out}");
        assert!(!out.contains("\"abc\""), "{out}");
        assert!(!out.contains("\"r\""), "{out}");
    }

    #[test]
    fn known_secrets_are_removed_even_from_diagnostics() {
        let body = br#"{"error":"invalid_grant","error_description":"code s3cr3t-code is spent"}"#;
        let out = excerpt(body, &["s3cr3t-code"]);
        assert!(!out.contains("s3cr3t"), "{out}");
    }

    #[test]
    fn html_keeps_words_and_masks_credential_like_runs() {
        let body = b"<html><body>502 Bad Gateway token=eyJhbGciOiJSUzI1NiJ9abc</body></html>";
        let out = excerpt(body, &[]);
        assert!(out.contains("502 Bad Gateway"), "{out}");
        assert!(!out.contains("eyJhbGciOiJSUzI1NiJ9abc"), "{out}");
    }

    #[test]
    fn truncated_json_is_masked_as_text() {
        let out = excerpt(br#"{"access_token":"at_1234567"#, &[]);
        assert!(!out.contains("at_1234567"), "{out}");
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let body = "é ".repeat(500);
        let out = excerpt(body.as_bytes(), &[]);
        assert_eq!(out.chars().count(), EXCERPT_CHARS + 1);
    }

    #[test]
    fn prefix_hides_short_secrets_entirely() {
        assert_eq!(redacted_prefix("abc", 4), "[redacted]");
        assert_eq!(
            redacted_prefix("abcdefghijklmnopqrst", 4),
            "abcd… (20 chars)"
        );
    }

    #[test]
    fn credential_values_are_found_in_json_and_in_broken_json() {
        let body =
            br#"{"data":{"accessToken":"at-1234"},"refresh_token" : "rt\u0041b","token_type":"x"}"#;
        let values = credential_values(body);
        assert!(values.contains(&"at-1234".to_owned()), "{values:?}");
        assert!(values.contains(&"rtAb".to_owned()), "{values:?}");
        assert!(values.contains(&"rt\\u0041b".to_owned()), "{values:?}");
        assert!(!values.contains(&"x".to_owned()), "{values:?}");
        let values = credential_values(b"\xef\xbb\xbf{\"access_token\":\"trunc");
        assert_eq!(values, ["trunc"]);
    }

    #[test]
    fn misaligned_quotes_cannot_hide_a_credential() {
        // Found by the partner_response fuzz target.
        let body = b"{\"access_token\":%\xac*\0\"Qz7\",\"expires_in\0{\"access_token\":\"Qz7Kp2\",\":true}";
        assert!(credential_values(body).contains(&"Qz7Kp2".to_owned()));
        assert!(!excerpt(body, &[]).contains("Qz7Kp2"));
    }

    #[test]
    fn a_token_echoed_into_a_diagnostic_is_scrubbed() {
        let body = br#"{"error":"invalid_grant","error_description":"token tk-9Q revoked","access_token":"tk-9Q"}"#;
        let out = excerpt(body, &[]);
        assert!(!out.contains("tk-9Q"), "{out}");
        assert!(out.contains("revoked"), "{out}");
    }

    #[test]
    fn keys_and_escaped_secrets_are_scrubbed() {
        let body = br#"{"s\u0033cret-key":1,"error_description":"s\u0033cret-key"}"#;
        let out = excerpt(body, &["s3cret-key"]);
        assert!(!out.contains("s3cret-key"), "{out}");
    }

    #[test]
    fn broken_json_values_are_redacted_but_keys_and_diagnostics_kept() {
        let out = excerpt(br#"{"error":"bad","access_token":"ab"#, &[]);
        assert!(out.contains("\"error\":\"bad\""), "{out}");
        assert!(!out.contains("\"ab"), "{out}");
        let out = excerpt("\u{feff}{\"access_token\":\"Zx9\"}".as_bytes(), &[]);
        assert!(!out.contains("Zx9"), "{out}");
    }

    #[test]
    fn scrub_replaces_secrets_and_controls_and_cuts() {
        let out = scrub("code s3 is\nspent", &["s3"], b"", 12);
        assert_eq!(out, "code [redact…");
        let out = scrub(
            "weird-token-value",
            &[],
            br#"{"access_token":"weird-token-value"}"#,
            64,
        );
        assert_eq!(out, "[redacted]");
    }

    #[test]
    fn credential_keys() {
        for key in [
            "access_token",
            "accessToken",
            "refresh-token",
            "id_token",
            "client_secret",
            "code_verifier",
            "apiKey",
        ] {
            assert!(is_credential_key(key), "{key}");
        }
        for key in [
            "token_type",
            "tokenType",
            "expires_in",
            "refreshTokenExpireIn",
            "error",
            "scope",
        ] {
            assert!(!is_credential_key(key), "{key}");
        }
    }
}
