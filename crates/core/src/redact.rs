//! Redaction: the one place that decides what of a secret-bearing text may be shown.

use serde_json::Value;

/// Longest excerpt of a response body kept in an error, in characters.
pub const EXCERPT_CHARS: usize = 200;

const REDACTED: &str = "[redacted]";

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
///   refresh token) is replaced.
/// * A JSON body keeps its structure; string values are kept only under
///   diagnostic keys (`error`, `error_description`, `msg`, …), numbers and
///   booleans are kept, every other string becomes `[redacted]`.
/// * Any other body (HTML, truncated JSON, text) keeps its words, but every
///   run of 16 or more token characters, and every run of 8 or more that mixes
///   letters and digits, is masked: such runs look like credentials.
/// * The result is cut to [`EXCERPT_CHARS`] characters.
pub fn excerpt(body: &[u8], known_secrets: &[&str]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut text = text.into_owned();
    for secret in known_secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, REDACTED);
    }
    let redacted = match serde_json::from_str::<Value>(&text) {
        Ok(mut value) if value.is_object() || value.is_array() => {
            redact_json(&mut value, None);
            value.to_string()
        }
        _ => mask_credential_like_words(&text),
    };
    truncate_chars(&redacted, EXCERPT_CHARS)
}

fn redact_json(value: &mut Value, key: Option<&str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                redact_json(v, Some(k));
            }
        }
        Value::Array(items) => {
            for item in items {
                redact_json(item, key);
            }
        }
        Value::String(s) => {
            let keep = match key {
                Some(k) if DIAGNOSTIC_KEYS.contains(&k) => true,
                // Business codes such as HyperSKU's "60025" may come as strings.
                Some("code") => s.len() <= 8 && s.bytes().all(|b| b.is_ascii_digit()),
                _ => false,
            };
            if keep {
                *s = mask_credential_like_words(s);
            } else {
                *s = REDACTED.to_owned();
            }
        }
        _ => {}
    }
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
}
