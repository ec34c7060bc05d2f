//! The one normalized token every adapter produces.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::redact::redacted_prefix;

/// Identifies a provider, e.g. `hypersku`, `hike`, `partner`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderId(Cow<'static, str>);

impl ProviderId {
    /// A provider id from a string known at compile time.
    pub const fn from_static(id: &'static str) -> Self {
        Self(Cow::Borrowed(id))
    }

    /// A provider id from any string (for providers defined at run time).
    pub fn new(id: impl Into<String>) -> Self {
        Self(Cow::Owned(id.into()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as it is held: a static id is borrowed, so cloning this
    /// does not allocate (metric labels).
    pub(crate) fn as_cow(&self) -> &Cow<'static, str> {
        &self.0
    }
}

impl fmt::Debug for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token as every adapter returns it, whatever the provider's wire shape.
///
/// Secrets are [`SecretString`]s: `Debug` never prints them and the type does
/// not implement `Serialize`. Persisting a token is the explicit act of
/// calling [`Token::to_record`].
///
/// Expiry instants are absolute; `None` means the provider did not say
/// (such a token is treated as never expiring by [`Token::is_expired`]).
#[non_exhaustive]
#[derive(Clone)]
pub struct Token {
    /// The provider that issued the token.
    pub provider: ProviderId,
    /// The access token (secret).
    pub access_token: SecretString,
    /// The refresh token, when the provider issued one (secret).
    pub refresh_token: Option<SecretString>,
    /// The token type, normally `Bearer`.
    pub token_type: String,
    /// When the access token expires, if known.
    pub expires_at: Option<SystemTime>,
    /// When the refresh token expires, if known.
    pub refresh_expires_at: Option<SystemTime>,
    /// The scopes the provider granted (which may differ from those asked for).
    pub scopes: Vec<String>,
    /// The account the token acts for (HyperSKU `userId`, Hike store, partner id).
    pub subject: Option<String>,
    /// When this token was received.
    pub issued_at: SystemTime,
    /// The provider's remaining non-secret response fields.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Token {
    /// A bearer token with no refresh token, no known expiry and no scopes.
    pub fn new(provider: ProviderId, access_token: SecretString, issued_at: SystemTime) -> Self {
        Self {
            provider,
            access_token,
            refresh_token: None,
            token_type: "Bearer".to_owned(),
            expires_at: None,
            refresh_expires_at: None,
            scopes: Vec::new(),
            subject: None,
            issued_at,
            extra: serde_json::Map::new(),
        }
    }

    /// The access token itself (a secret: keep it out of logs). The same
    /// as `token.access_token.expose_secret()`, without importing
    /// `ExposeSecret`.
    pub fn expose_access_token(&self) -> &str {
        self.access_token.expose_secret()
    }

    /// The refresh token itself, if there is one (a secret: keep it out of
    /// logs). The same as `token.refresh_token.as_ref().map(ExposeSecret::expose_secret)`.
    pub fn expose_refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_ref().map(|t| t.expose_secret())
    }

    /// True when the access token's expiry is known and has passed.
    pub fn is_expired(&self, clock: &dyn Clock) -> bool {
        self.expires_within(Duration::ZERO, clock)
    }

    /// True when the access token expires within `skew` from now
    /// (or already has). A token with unknown expiry never does.
    pub fn expires_within(&self, skew: Duration, clock: &dyn Clock) -> bool {
        match (self.expires_at, clock.now().checked_add(skew)) {
            (Some(at), Some(limit)) => at <= limit,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// True when the refresh token's expiry is known and has passed.
    pub fn is_refresh_token_expired(&self, clock: &dyn Clock) -> bool {
        matches!(self.refresh_expires_at, Some(at) if at <= clock.now())
    }

    /// How long the access token was issued for, if its expiry is known.
    pub fn lifetime(&self) -> Option<Duration> {
        self.expires_at?.duration_since(self.issued_at).ok()
    }

    /// The value of an `Authorization` header carrying this token.
    pub fn authorization_header(&self) -> SecretString {
        SecretString::from(format!(
            "{} {}",
            self.token_type,
            self.access_token.expose_secret()
        ))
    }

    /// Converts the token into a serializable record, secrets included.
    ///
    /// This is the only way to serialize a token: call it where you store
    /// tokens, and nowhere else.
    pub fn to_record(&self) -> TokenRecord {
        TokenRecord {
            provider: self.provider.clone(),
            access_token: self.access_token.expose_secret().to_owned(),
            refresh_token: self
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            token_type: self.token_type.clone(),
            expires_at_ms: self.expires_at.map(to_unix_ms),
            refresh_expires_at_ms: self.refresh_expires_at.map(to_unix_ms),
            scopes: self.scopes.clone(),
            subject: self.subject.clone(),
            issued_at_ms: to_unix_ms(self.issued_at),
            extra: self.extra.clone(),
        }
    }

    /// Rebuilds a token from a record made by [`Token::to_record`].
    pub fn from_record(record: TokenRecord) -> Self {
        Self {
            provider: record.provider,
            access_token: SecretString::from(record.access_token),
            refresh_token: record.refresh_token.map(SecretString::from),
            token_type: record.token_type,
            expires_at: record.expires_at_ms.map(from_unix_ms),
            refresh_expires_at: record.refresh_expires_at_ms.map(from_unix_ms),
            scopes: record.scopes,
            subject: record.subject,
            issued_at: from_unix_ms(record.issued_at_ms),
            extra: record.extra,
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("provider", &self.provider)
            .field("access_token", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at.map(DisplayTime))
            .field(
                "refresh_expires_at",
                &self.refresh_expires_at.map(DisplayTime),
            )
            .field("scopes", &self.scopes)
            .field("subject", &self.subject)
            .field("issued_at", &DisplayTime(self.issued_at))
            .field("extra", &RedactedExtra(&self.extra))
            .finish()
    }
}

/// `Debug` of provider extras with the values of credential-like members
/// (`id_token`, `*_secret`, …, at any depth) replaced by `[redacted]`.
struct RedactedExtra<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl fmt::Debug for RedactedExtra<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in self.0 {
            map.entry(key, &redact_member(key, value));
        }
        map.finish()
    }
}

fn redact_member(key: &str, value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    if crate::redact::is_credential_key(key) {
        return Value::String("[redacted]".to_owned());
    }
    match value {
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), redact_member(k, v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact_member("", v)).collect()),
        other => other.clone(),
    }
}

/// A token in serializable form, secrets in clear text. Made only by
/// [`Token::to_record`]; its `Debug` still redacts.
#[non_exhaustive]
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenRecord {
    /// See [`Token::provider`].
    pub provider: ProviderId,
    /// See [`Token::access_token`].
    pub access_token: String,
    /// See [`Token::refresh_token`].
    pub refresh_token: Option<String>,
    /// See [`Token::token_type`].
    pub token_type: String,
    /// [`Token::expires_at`] in milliseconds since the Unix epoch.
    pub expires_at_ms: Option<u64>,
    /// [`Token::refresh_expires_at`] in milliseconds since the Unix epoch.
    pub refresh_expires_at_ms: Option<u64>,
    /// See [`Token::scopes`].
    pub scopes: Vec<String>,
    /// See [`Token::subject`].
    pub subject: Option<String>,
    /// [`Token::issued_at`] in milliseconds since the Unix epoch.
    pub issued_at_ms: u64,
    /// See [`Token::extra`].
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRecord")
            .field("provider", &self.provider)
            .field("access_token", &redacted_prefix(&self.access_token, 0))
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Formats a [`SystemTime`] as RFC 3339 (UTC, whole seconds).
#[derive(Clone, Copy)]
pub struct DisplayTime(pub SystemTime);

impl fmt::Debug for DisplayTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DisplayTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < UNIX_EPOCH {
            return f.write_str("(before 1970)");
        }
        match self.0.duration_since(UNIX_EPOCH) {
            Ok(d) if d.as_secs() < 253_402_300_800 => {
                write!(f, "{}", humantime::format_rfc3339_seconds(self.0))
            }
            _ => f.write_str("(after 9999)"),
        }
    }
}

fn to_unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn token(clock: &ManualClock) -> Token {
        let mut token = Token::new(
            ProviderId::from_static("test"),
            SecretString::from("access-secret-value"),
            clock.now(),
        );
        token.refresh_token = Some(SecretString::from("refresh-secret-value"));
        token.expires_at = Some(clock.now() + Duration::from_secs(300));
        token
    }

    #[test]
    fn expiry_follows_the_injected_clock() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let token = token(&clock);
        assert!(!token.is_expired(&clock));
        assert!(!token.expires_within(Duration::from_secs(60), &clock));
        clock.advance(Duration::from_secs(241));
        assert!(token.expires_within(Duration::from_secs(60), &clock));
        assert!(!token.is_expired(&clock));
        clock.advance(Duration::from_secs(59));
        assert!(token.is_expired(&clock));
        assert_eq!(token.lifetime(), Some(Duration::from_secs(300)));
    }

    #[test]
    fn unknown_expiry_never_expires() {
        let clock = ManualClock::at_unix(0);
        let mut token = token(&clock);
        token.expires_at = None;
        clock.advance(Duration::from_secs(1 << 40));
        assert!(!token.is_expired(&clock));
        assert!(!token.is_refresh_token_expired(&clock));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let token = token(&clock);
        let text = format!("{token:?} {:?}", token.to_record());
        assert!(!text.contains("secret-value"), "{text}");
        assert!(text.contains("2023-11-14T22:13:20Z"), "{text}");
    }

    #[test]
    fn debug_redacts_credential_like_extras_at_any_depth() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let mut token = token(&clock);
        token
            .extra
            .insert("id_token".into(), "eyJ-id-token-value".into());
        token.extra.insert(
            "nested".into(),
            serde_json::json!({"shop": "s-1", "api_key": "k-value", "list": [{"refreshToken": "r-value"}]}),
        );
        let text = format!("{token:?}");
        for secret in ["eyJ-id-token-value", "k-value", "r-value"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(
            text.contains("s-1"),
            "non-secret extras stay visible: {text}"
        );
    }

    #[test]
    fn record_round_trip_keeps_everything() {
        let clock = ManualClock::at_unix(1_700_000_000);
        let mut token = token(&clock);
        token.scopes = vec!["all".into()];
        token.subject = Some("store-1".into());
        token.extra.insert("expires".into(), 123.into());
        let json = serde_json::to_string(&token.to_record()).unwrap();
        let back = Token::from_record(serde_json::from_str(&json).unwrap());
        assert_eq!(back.to_record(), token.to_record());
    }
}
