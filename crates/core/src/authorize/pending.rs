//! The sign-in in progress between the redirect and the callback, and how
//! it is kept in a store that several servers share.

use std::fmt;
use std::time::SystemTime;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::{redirect_uri_problem, CallbackParams};
use crate::error::Error;
use crate::token::{DisplayTime, ProviderId};

/// Shortest state accepted by [`PendingAuthorization::from_parts`]: the
/// core makes 22 characters (16 random bytes, base64url).
const MIN_STATE_CHARS: usize = 22;
/// Longest state accepted by [`PendingAuthorization::from_parts`].
const MAX_STATE_CHARS: usize = 128;
/// RFC 7636 §4.1: a code verifier is 43 to 128 unreserved characters.
const PKCE_VERIFIER_CHARS: std::ops::RangeInclusive<usize> = 43..=128;
/// Longest provider id accepted by [`PendingAuthorization::from_parts`].
const MAX_PROVIDER_ID_BYTES: usize = 128;

/// What the application keeps between the redirect and the callback:
/// the state, the redirect URI, the PKCE verifier and when it was made.
///
/// It is consumed by the callback, and it is not `Clone`, so a state can be
/// used once only:
///
/// ```compile_fail
/// # fn reuse(pending: oauth2_adapters::PendingAuthorization) {
/// let copy = pending.clone(); // PendingAuthorization is not Clone
/// # }
/// ```
///
/// # Keeping it where several servers can read it
///
/// Behind a load balancer the callback may reach another server than the
/// one that made the redirect. Keep the pending authorization in a store
/// they share (a session store, a database):
/// [`into_parts`](Self::into_parts) / [`from_parts`](Self::from_parts)
/// take it apart and put it back together (checking every part), and with
/// the `serde` feature it implements `Serialize` and `Deserialize` (one
/// JSON object; see [`PendingAuthorizationParts`] for the fields).
///
/// **Server-side only.** It holds the PKCE verifier and the state, the two
/// secrets that tie a callback to the browser that started it: never put
/// it (serialized or in parts) in a cookie, a URL, a hidden form field or
/// anything else the browser keeps (`localStorage`, a JWT). A session
/// store keyed by an opaque cookie is the place.
///
/// Single use is then up to the store: remove the stored copy when the
/// callback uses it (take it out only once
/// [`state_matches`](Self::state_matches) says the callback is its own, so
/// a forged link cannot cancel a real sign-in). The provider's codes are
/// single-use too, so a copy used twice cannot yield two tokens.
pub struct PendingAuthorization {
    provider: ProviderId,
    state: SecretString,
    redirect_uri: String,
    scopes: Vec<String>,
    pkce_verifier: Option<SecretString>,
    created_at: SystemTime,
}

/// A [`PendingAuthorization`] taken apart, to be kept in a store of the
/// application's own and put back together with
/// [`PendingAuthorization::from_parts`].
///
/// **Server-side only**: `state` and `pkce_verifier` are secrets (see
/// [`PendingAuthorization`]). Its `Debug` hides them.
///
/// The `serde` form of a [`PendingAuthorization`] has the same fields, by
/// these names: `provider`, `state`, `redirect_uri`, `scopes`,
/// `pkce_verifier` (absent without PKCE) and `created_at`
/// (`{"secs_since_epoch": …, "nanos_since_epoch": …}`).
pub struct PendingAuthorizationParts {
    /// The provider it was made for.
    pub provider: ProviderId,
    /// The state sent to the provider (secret).
    pub state: SecretString,
    /// The redirect URI sent to the provider, byte for byte.
    pub redirect_uri: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The PKCE verifier, when PKCE is used (secret).
    pub pkce_verifier: Option<SecretString>,
    /// When it was made (the callback refuses it once it is too old).
    pub created_at: SystemTime,
}

/// Why [`PendingAuthorization::from_parts`] (or deserializing one) refused
/// the parts: they were not made by [`authorize`] or were altered since.
/// It never quotes a value (the parts hold secrets).
///
/// [`authorize`]: crate::AuthorizationCodeProvider::authorize
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPendingAuthorization {
    /// The provider id is empty, too long, or has spaces or control characters.
    #[error(
        "the provider id is empty, over {MAX_PROVIDER_ID_BYTES} bytes, or has spaces or control characters"
    )]
    Provider,
    /// The state is not 22 to 128 URL-safe characters.
    #[error(
        "the state is not {MIN_STATE_CHARS} to {MAX_STATE_CHARS} URL-safe characters (A-Z a-z 0-9 - . _ ~)"
    )]
    State,
    /// The PKCE verifier is not 43 to 128 URL-safe characters (RFC 7636 §4.1).
    #[error("the PKCE verifier is not 43 to 128 URL-safe characters (RFC 7636 §4.1)")]
    PkceVerifier,
    /// The redirect URI is not an absolute URL, has a fragment, or has
    /// spaces or control characters (the checks of
    /// [`AuthorizeRequest::new`](crate::AuthorizeRequest::new)).
    #[error(
        "the redirect URI is not an absolute URL without a fragment, spaces or control characters"
    )]
    RedirectUri,
    /// A scope has control characters.
    #[error("a scope has control characters")]
    Scope,
}

impl From<InvalidPendingAuthorization> for Error {
    fn from(invalid: InvalidPendingAuthorization) -> Self {
        Error::configuration(format!("invalid pending authorization: {invalid}"))
    }
}

impl PendingAuthorization {
    /// Makes a pending authorization with a fresh random state.
    pub(crate) fn new(
        provider: ProviderId,
        redirect_uri: String,
        scopes: Vec<String>,
        pkce_verifier: Option<SecretString>,
        created_at: SystemTime,
    ) -> Self {
        Self {
            provider,
            state: SecretString::from(oauth2::CsrfToken::new_random().into_secret()),
            redirect_uri,
            scopes,
            pkce_verifier,
            created_at,
        }
    }

    /// Puts parts together without checking them (the fuzz targets' fixed
    /// pending authorization).
    pub(crate) fn from_trusted_parts(parts: PendingAuthorizationParts) -> Self {
        Self {
            provider: parts.provider,
            state: parts.state,
            redirect_uri: parts.redirect_uri,
            scopes: parts.scopes,
            pkce_verifier: parts.pkce_verifier,
            created_at: parts.created_at,
        }
    }

    /// Takes it apart, to keep it in a store of the application's own.
    /// **Server-side only** (see [`PendingAuthorization`]).
    pub fn into_parts(self) -> PendingAuthorizationParts {
        PendingAuthorizationParts {
            provider: self.provider,
            state: self.state,
            redirect_uri: self.redirect_uri,
            scopes: self.scopes,
            pkce_verifier: self.pkce_verifier,
            created_at: self.created_at,
        }
    }

    /// Puts a pending authorization back together from the parts
    /// [`into_parts`](Self::into_parts) gave, checking each: a provider id
    /// without spaces or control characters, a state of 22 to 128 URL-safe
    /// characters, a PKCE verifier of 43 to 128 (RFC 7636 §4.1), the
    /// redirect URI checks of
    /// [`AuthorizeRequest::new`](crate::AuthorizeRequest::new), scopes
    /// without control characters. `created_at` is not checked here: the
    /// callback refuses one too far in the past or in the future.
    ///
    /// ```
    /// use oauth2_adapters::hike::Hike;
    /// use oauth2_adapters::prelude::*;
    /// use oauth2_adapters::PendingAuthorizationParts;
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let hike = Hike::builder(ClientCredentials::new("app-id", "app-secret")).build()?;
    /// let (_url, pending) = hike.authorize(AuthorizeRequest::new("https://app.example/cb")?)?;
    /// let parts: PendingAuthorizationParts = pending.into_parts();
    /// // … kept server-side, read back by another server …
    /// let pending = PendingAuthorization::from_parts(parts)?;
    /// assert_eq!(pending.redirect_uri(), "https://app.example/cb");
    /// # Ok(()) }
    /// # run().unwrap();
    /// ```
    pub fn from_parts(
        parts: PendingAuthorizationParts,
    ) -> Result<Self, InvalidPendingAuthorization> {
        let provider = parts.provider.as_str();
        if provider.is_empty()
            || provider.len() > MAX_PROVIDER_ID_BYTES
            || provider
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(InvalidPendingAuthorization::Provider);
        }
        let state = parts.state.expose_secret();
        if !(MIN_STATE_CHARS..=MAX_STATE_CHARS).contains(&state.len()) || !is_unreserved(state) {
            return Err(InvalidPendingAuthorization::State);
        }
        if let Some(verifier) = &parts.pkce_verifier {
            let verifier = verifier.expose_secret();
            if !PKCE_VERIFIER_CHARS.contains(&verifier.len()) || !is_unreserved(verifier) {
                return Err(InvalidPendingAuthorization::PkceVerifier);
            }
        }
        if redirect_uri_problem(&parts.redirect_uri).is_some() {
            return Err(InvalidPendingAuthorization::RedirectUri);
        }
        if parts
            .scopes
            .iter()
            .any(|scope| scope.chars().any(char::is_control))
        {
            return Err(InvalidPendingAuthorization::Scope);
        }
        Ok(Self::from_trusted_parts(parts))
    }

    /// The provider it was made for.
    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }

    /// The state sent to the provider.
    pub fn state(&self) -> &SecretString {
        &self.state
    }

    /// Whether `params` carries this authorization's state (compared in
    /// constant time). A store can ask before it takes the pending
    /// authorization out: a callback with another state (a forged or stale
    /// link) must leave the real sign-in usable.
    /// [`handle_callback`](crate::AuthorizationCodeProvider::handle_callback)
    /// makes the same comparison.
    pub fn state_matches(&self, params: &CallbackParams) -> bool {
        params.state.as_deref().is_some_and(|got| {
            bool::from(got.as_bytes().ct_eq(self.state.expose_secret().as_bytes()))
        })
    }

    /// The redirect URI sent to the provider, exactly as given (the
    /// exchange must send it again, byte for byte).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The scopes asked for.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The PKCE verifier, when PKCE is used.
    pub fn pkce_verifier(&self) -> Option<&SecretString> {
        self.pkce_verifier.as_ref()
    }

    /// When it was made.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }
}

/// RFC 3986 unreserved characters only (what states and verifiers are made of).
fn is_unreserved(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_fields(
            f,
            "PendingAuthorization",
            &self.provider,
            &self.redirect_uri,
            &self.scopes,
            self.pkce_verifier.is_some(),
            self.created_at,
        )
    }
}

impl fmt::Debug for PendingAuthorizationParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_fields(
            f,
            "PendingAuthorizationParts",
            &self.provider,
            &self.redirect_uri,
            &self.scopes,
            self.pkce_verifier.is_some(),
            self.created_at,
        )
    }
}

/// The `Debug` of both: everything but the state and the verifier.
fn debug_fields(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    provider: &ProviderId,
    redirect_uri: &str,
    scopes: &[String],
    pkce: bool,
    created_at: SystemTime,
) -> fmt::Result {
    f.debug_struct(name)
        .field("provider", provider)
        .field("state", &"[redacted]")
        .field("redirect_uri", &redirect_uri)
        .field("scopes", &scopes)
        .field("pkce", &pkce)
        .field("created_at", &DisplayTime(created_at))
        .finish()
}

/// `Serialize` / `Deserialize` (feature `serde`): one JSON object with the
/// fields of [`PendingAuthorizationParts`]. Deserializing applies the checks
/// of [`PendingAuthorization::from_parts`].
#[cfg(feature = "serde")]
mod serde_impls {
    use std::time::SystemTime;

    use secrecy::{ExposeSecret, SecretString};
    use serde::de::{self, Deserializer, Visitor};
    use serde::{Deserialize, Serialize, Serializer};

    use super::{PendingAuthorization, PendingAuthorizationParts};
    use crate::token::ProviderId;

    #[derive(Serialize)]
    struct WireRef<'a> {
        provider: &'a str,
        state: &'a str,
        redirect_uri: &'a str,
        scopes: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        pkce_verifier: Option<&'a str>,
        created_at: SystemTime,
    }

    #[derive(Deserialize)]
    struct Wire {
        provider: String,
        state: SecretField,
        redirect_uri: String,
        scopes: Vec<String>,
        #[serde(default)]
        pkce_verifier: Option<SecretField>,
        created_at: SystemTime,
    }

    /// A string read straight into a [`SecretString`].
    struct SecretField(SecretString);

    impl<'de> Deserialize<'de> for SecretField {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct SecretVisitor;

            impl Visitor<'_> for SecretVisitor {
                type Value = SecretField;

                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a string")
                }

                fn visit_str<E: de::Error>(self, value: &str) -> Result<SecretField, E> {
                    Ok(SecretField(SecretString::from(value)))
                }

                fn visit_string<E: de::Error>(self, value: String) -> Result<SecretField, E> {
                    Ok(SecretField(SecretString::from(value)))
                }
            }

            deserializer.deserialize_str(SecretVisitor)
        }
    }

    /// **Server-side only**: the output holds the state and the PKCE
    /// verifier in clear (see [`PendingAuthorization`]).
    impl Serialize for PendingAuthorization {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            WireRef {
                provider: self.provider.as_str(),
                state: self.state.expose_secret(),
                redirect_uri: &self.redirect_uri,
                scopes: &self.scopes,
                pkce_verifier: self.pkce_verifier.as_ref().map(|v| v.expose_secret()),
                created_at: self.created_at,
            }
            .serialize(serializer)
        }
    }

    /// Applies the checks of [`PendingAuthorization::from_parts`]; the error
    /// names the part, never its value.
    impl<'de> Deserialize<'de> for PendingAuthorization {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let wire = Wire::deserialize(deserializer)?;
            PendingAuthorization::from_parts(PendingAuthorizationParts {
                provider: ProviderId::new(wire.provider),
                state: wire.state.0,
                redirect_uri: wire.redirect_uri,
                scopes: wire.scopes,
                pkce_verifier: wire.pkce_verifier.map(|v| v.0),
                created_at: wire.created_at,
            })
            .map_err(|invalid| {
                de::Error::custom(format_args!("invalid pending authorization: {invalid}"))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const STATE: &str = "Zq3uR9sT1vW8xY2aB4cD6e";
    const VERIFIER: &str = "vErIfIeR-0123456789_abcdefghijklmnopqrstuvwxyz";

    fn parts() -> PendingAuthorizationParts {
        PendingAuthorizationParts {
            provider: ProviderId::from_static("hike"),
            state: SecretString::from(STATE),
            redirect_uri: "https://app.example/callback/hike?tenant=a%20b".to_owned(),
            scopes: vec!["all".to_owned(), "read:orders".to_owned()],
            pkce_verifier: Some(SecretString::from(VERIFIER)),
            created_at: SystemTime::UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789),
        }
    }

    fn assert_same(a: &PendingAuthorization, b: &PendingAuthorizationParts) {
        assert_eq!(a.provider(), &b.provider);
        assert_eq!(a.state().expose_secret(), b.state.expose_secret());
        assert_eq!(a.redirect_uri(), b.redirect_uri);
        assert_eq!(a.scopes(), b.scopes.as_slice());
        assert_eq!(
            a.pkce_verifier().map(|v| v.expose_secret().to_owned()),
            b.pkce_verifier
                .as_ref()
                .map(|v| v.expose_secret().to_owned())
        );
        assert_eq!(a.created_at(), b.created_at);
    }

    fn assert_hides_secrets(text: &str) {
        assert!(!text.contains(STATE), "{text}");
        assert!(!text.contains(VERIFIER), "{text}");
    }

    #[test]
    fn parts_round_trip() {
        let pending = PendingAuthorization::from_parts(parts()).unwrap();
        assert_same(&pending, &parts());
        let again = PendingAuthorization::from_parts(pending.into_parts()).unwrap();
        assert_same(&again, &parts());

        let mut without_pkce = parts();
        without_pkce.pkce_verifier = None;
        let pending = PendingAuthorization::from_parts(without_pkce).unwrap();
        assert!(pending.pkce_verifier().is_none());
    }

    #[test]
    fn what_authorize_makes_is_accepted_back() {
        let (_, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        let made = PendingAuthorization::new(
            ProviderId::from_static("hike"),
            "http://127.0.0.1:3000/callback/hike".to_owned(),
            vec![],
            Some(SecretString::from(verifier.into_secret())),
            SystemTime::now(),
        );
        let state = made.state().expose_secret().to_owned();
        let back = PendingAuthorization::from_parts(made.into_parts()).unwrap();
        assert_eq!(back.state().expose_secret(), state);
    }

    #[test]
    fn debug_of_both_hides_state_and_verifier() {
        let text = format!("{:?}", parts());
        assert_hides_secrets(&text);
        assert!(text.starts_with("PendingAuthorizationParts {"), "{text}");
        assert!(text.contains("pkce: true"), "{text}");
        let pending = PendingAuthorization::from_parts(parts()).unwrap();
        let text = format!("{pending:?}");
        assert_hides_secrets(&text);
        assert!(text.contains("\"hike\""), "{text}");
    }

    #[test]
    fn a_tampered_part_is_refused_by_name_without_its_value() {
        type Tamper = fn(&mut PendingAuthorizationParts);
        let cases: [(Tamper, InvalidPendingAuthorization); 12] = [
            (
                |p| p.provider = ProviderId::new(""),
                InvalidPendingAuthorization::Provider,
            ),
            (
                |p| p.provider = ProviderId::new("hi ke"),
                InvalidPendingAuthorization::Provider,
            ),
            (
                |p| p.state = SecretString::from(""),
                InvalidPendingAuthorization::State,
            ),
            (
                |p| p.state = SecretString::from(&STATE[1..]),
                InvalidPendingAuthorization::State,
            ),
            (
                |p| p.state = SecretString::from(format!("{STATE}/")),
                InvalidPendingAuthorization::State,
            ),
            (
                |p| p.state = SecretString::from("a".repeat(129)),
                InvalidPendingAuthorization::State,
            ),
            (
                |p| p.pkce_verifier = Some(SecretString::from(&VERIFIER[4..])),
                InvalidPendingAuthorization::PkceVerifier,
            ),
            (
                |p| p.pkce_verifier = Some(SecretString::from(format!("{VERIFIER}+"))),
                InvalidPendingAuthorization::PkceVerifier,
            ),
            (
                |p| p.redirect_uri = "/callback/hike".to_owned(),
                InvalidPendingAuthorization::RedirectUri,
            ),
            (
                |p| p.redirect_uri = "https://app.example/cb#x".to_owned(),
                InvalidPendingAuthorization::RedirectUri,
            ),
            (
                |p| p.redirect_uri = "https://app.example/c b".to_owned(),
                InvalidPendingAuthorization::RedirectUri,
            ),
            (
                |p| p.scopes.push("a\nb".to_owned()),
                InvalidPendingAuthorization::Scope,
            ),
        ];
        for (tamper, expected) in cases {
            let mut parts = parts();
            tamper(&mut parts);
            let err = PendingAuthorization::from_parts(parts).unwrap_err();
            assert_eq!(err, expected);
            let text = format!("{err} {err:?} {}", Error::from(err));
            assert_hides_secrets(&text);
        }
    }

    #[test]
    fn state_matches_only_its_own_state() {
        let pending = PendingAuthorization::from_parts(parts()).unwrap();
        let query = |q: &str| CallbackParams::from_query(q).unwrap();
        assert!(pending.state_matches(&query(&format!("code=c&state={STATE}"))));
        assert!(!pending.state_matches(&query("code=c")));
        assert!(!pending.state_matches(&query("code=c&state=")));
        assert!(!pending.state_matches(&query(&format!("state={}", &STATE[1..]))));
        assert!(!pending.state_matches(&query(&format!("state={STATE}x"))));
    }

    #[cfg(feature = "serde")]
    mod serde {
        use super::*;

        fn json() -> serde_json::Value {
            serde_json::to_value(PendingAuthorization::from_parts(parts()).unwrap()).unwrap()
        }

        #[test]
        fn json_round_trip() {
            let value = json();
            assert_eq!(value["provider"], "hike");
            assert_eq!(value["state"], STATE);
            assert_eq!(value["pkce_verifier"], VERIFIER);
            assert_eq!(value["created_at"]["nanos_since_epoch"], 123_456_789);
            let text = serde_json::to_string(&value).unwrap();
            let back: PendingAuthorization = serde_json::from_str(&text).unwrap();
            assert_same(&back, &parts());
            assert_hides_secrets(&format!("{back:?}"));

            let mut without_pkce = parts();
            without_pkce.pkce_verifier = None;
            let value =
                serde_json::to_value(PendingAuthorization::from_parts(without_pkce).unwrap())
                    .unwrap();
            assert!(value.get("pkce_verifier").is_none(), "{value}");
            let back: PendingAuthorization = serde_json::from_value(value).unwrap();
            assert!(back.pkce_verifier().is_none());
        }

        #[test]
        fn tampered_json_is_refused_naming_the_part_only() {
            let cases: [(&str, serde_json::Value, &str); 5] = [
                ("state", serde_json::json!(format!("{STATE}!")), "the state"),
                ("state", serde_json::json!(&STATE[..10]), "the state"),
                (
                    "pkce_verifier",
                    serde_json::json!("short"),
                    "the PKCE verifier",
                ),
                (
                    "redirect_uri",
                    serde_json::json!("not a url"),
                    "the redirect URI",
                ),
                ("provider", serde_json::json!(""), "the provider id"),
            ];
            for (field, value, named) in cases {
                let mut json = json();
                json[field] = value;
                let err = serde_json::from_value::<PendingAuthorization>(json).unwrap_err();
                let text = format!("{err} {err:?}");
                assert!(text.contains(named), "{field}: {text}");
                assert_hides_secrets(&text);
            }
            let mut missing = json();
            missing.as_object_mut().unwrap().remove("state");
            let err = serde_json::from_value::<PendingAuthorization>(missing).unwrap_err();
            assert!(err.to_string().contains("missing field `state`"), "{err}");
        }
    }
}
