//! Building the authorize redirect and verifying the callback.

use std::fmt;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::error::{Error, ErrorCode, Result};
use crate::redact::{excerpt, scrub, CODE_CHARS, MIN_SCRUBBED_VALUE_CHARS};
use crate::token::ProviderId;

mod pending;

pub use pending::{InvalidPendingAuthorization, PendingAuthorization, PendingAuthorizationParts};

/// How long a pending authorization stays usable by default (10 minutes,
/// the lifetime of the providers' authorization codes).
pub const DEFAULT_PENDING_MAX_AGE: Duration = Duration::from_secs(600);

/// Longest callback query accepted, in bytes.
pub const MAX_CALLBACK_QUERY_BYTES: usize = 8 * 1024;

/// What the application asks for when it sends a user to the provider.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// Where the provider sends the user back, exactly as given: providers
    /// compare it byte for byte with the registered one, so it is sent as
    /// is (not normalized: no trailing `/` added, no case or port changes).
    pub redirect_uri: String,
    /// The scopes to ask for; `None` uses the provider's default.
    pub scopes: Option<Vec<String>>,
    /// Extra authorize parameters for this request (e.g. `prompt=consent`),
    /// after the provider's own.
    pub extra_params: Vec<(String, String)>,
}

impl AuthorizeRequest {
    /// A request with the provider's default scopes. `redirect_uri` must be
    /// an absolute URL without a fragment (RFC 6749 §3.1.2); it is checked,
    /// then sent exactly as given.
    pub fn new(redirect_uri: &str) -> Result<Self> {
        if let Some(problem) = redirect_uri_problem(redirect_uri) {
            return Err(Error::configuration(problem));
        }
        Ok(Self {
            redirect_uri: redirect_uri.to_owned(),
            scopes: None,
            extra_params: Vec::new(),
        })
    }

    /// Adds an authorize parameter for this request only (e.g.
    /// `("prompt", "consent")`); the provider's own parameters come first.
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_params.push((name.into(), value.into()));
        self
    }

    /// Asks for these scopes instead of the provider's default.
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }
}

/// What is wrong with a redirect URI, if anything: it must be an absolute
/// URL without a fragment (RFC 6749 §3.1.2), spaces or control characters.
fn redirect_uri_problem(redirect_uri: &str) -> Option<String> {
    let parsed = match Url::parse(redirect_uri) {
        Ok(parsed) => parsed,
        Err(e) => return Some(format!("redirect URI is not a valid URL: {e}")),
    };
    if parsed.fragment().is_some() {
        return Some("redirect URI must not have a fragment (RFC 6749 §3.1.2)".to_owned());
    }
    if redirect_uri
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Some("redirect URI must not contain spaces or control characters".to_owned());
    }
    None
}

/// What an adapter needs to build its authorize URL. Made by the core.
#[derive(Debug)]
pub struct AuthorizeUrlParams<'a> {
    /// The anti-CSRF state to send.
    pub state: &'a str,
    /// The redirect URI to send, exactly as the application gave it.
    pub redirect_uri: &'a str,
    /// The scopes to send.
    pub scopes: &'a [String],
    /// The PKCE challenge, when the provider uses PKCE.
    pub pkce_challenge: Option<&'a oauth2::PkceCodeChallenge>,
    /// The request's extra parameters ([`AuthorizeRequest::with_param`]).
    pub extra_params: &'a [(String, String)],
}

/// The parameters of the provider's redirect back to the application.
#[derive(Clone, Default)]
pub struct CallbackParams {
    /// `code` (secret).
    pub code: Option<SecretString>,
    /// `state`.
    pub state: Option<String>,
    /// `error`.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

impl fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_ref().map(|_| "[redacted]"))
            .field("state", &self.state.as_ref().map(|_| "[redacted]"))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish()
    }
}

impl CallbackParams {
    /// Parses a callback query string (without the leading `?`).
    ///
    /// Rejected with [`Error::InvalidCallback`]: a query over
    /// 8 KiB; one that repeats `code`, `state`,
    /// `error` or `error_description`; one where the value of one of those
    /// has a malformed `%` escape or does not decode to UTF-8 (the value
    /// would otherwise be silently changed). Unknown parameters are ignored.
    pub fn from_query(query: &str) -> Result<Self> {
        if query.len() > MAX_CALLBACK_QUERY_BYTES {
            return Err(invalid_callback(format!(
                "the query is {} bytes, over the {MAX_CALLBACK_QUERY_BYTES}-byte limit",
                query.len()
            )));
        }
        let mut params = Self::default();
        let mut code: Option<String> = None;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let Ok(key) = decode_component(key) else {
                continue;
            };
            let slot = match key.as_str() {
                "code" => &mut code,
                "state" => &mut params.state,
                "error" => &mut params.error,
                "error_description" => &mut params.error_description,
                _ => continue,
            };
            if slot.is_some() {
                return Err(invalid_callback(format!(
                    "the parameter `{key}` is repeated"
                )));
            }
            let value = decode_component(value)
                .map_err(|problem| invalid_callback(format!("the parameter `{key}` {problem}")))?;
            *slot = Some(value);
        }
        params.code = code.map(SecretString::from);
        Ok(params)
    }

    /// Parses the query of a full callback URL.
    ///
    /// Only the query is read: the URL's scheme, host, port and path are
    /// **not** compared with the redirect URI (the application's router
    /// already chose the handler, and behind a proxy the URL it rebuilds
    /// may legitimately differ; the `state` is what ties a callback to its
    /// authorization). A URL whose query has none of `code`, `state` and
    /// `error` but whose fragment does is rejected with
    /// [`Error::InvalidCallback`]: the code flow never answers in the
    /// fragment, and reading it would accept an implicit-flow style response.
    pub fn from_url(url: &Url) -> Result<Self> {
        let params = Self::from_query(url.query().unwrap_or(""))?;
        let empty = params.code.is_none() && params.state.is_none() && params.error.is_none();
        if empty {
            let in_fragment = url.fragment().is_some_and(|fragment| {
                fragment.split('&').any(|pair| {
                    let key = pair.split_once('=').map_or(pair, |(key, _)| key);
                    matches!(key, "code" | "state" | "error" | "access_token")
                })
            });
            if in_fragment {
                return Err(invalid_callback(
                    "the callback's parameters are in the URL fragment, not the query".to_owned(),
                ));
            }
        }
        Ok(params)
    }
}

/// Decodes one `application/x-www-form-urlencoded` component strictly:
/// `+` is a space, `%` must start a two-digit hex escape, and the result
/// must be UTF-8.
fn decode_component(raw: &str) -> std::result::Result<String, &'static str> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .filter(|_| bytes[i + 1].is_ascii_hexdigit());
                out.push(hex.ok_or("has a malformed percent-escape")?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once decoded")
}

/// An authorization code whose callback passed every check: the only thing
/// an adapter can exchange. It can be made only by the core's verification.
#[derive(Clone)]
pub struct VerifiedCode(SecretString);

impl VerifiedCode {
    /// The code, for the exchange request.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl fmt::Debug for VerifiedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerifiedCode([redacted])")
    }
}

/// Checks a callback against the pending authorization, in this order:
///
/// 1. an `error` parameter: a *present* `state` must match (a forged error
///    is a [`Error::StateMismatch`]), but a missing one is accepted, since
///    providers (Hike) omit it on a denial; `access_denied` has its own
///    variant; an empty `error` is an [`Error::InvalidCallback`];
/// 2. the pending authorization's age (how far `now` is from its
///    creation, either way: one made "in the future" by more than `max_age`
///    is refused too, so an altered `created_at` cannot make it last);
/// 3. the `state` (compared in constant time);
/// 4. the `code`: present, not blank, without control characters.
///
/// The provider's `error` and `error_description` are kept in the error,
/// scrubbed of the state and code and cut short.
pub(crate) fn verify_callback(
    params: CallbackParams,
    pending: &PendingAuthorization,
    now: SystemTime,
    max_age: Duration,
) -> Result<VerifiedCode> {
    let expected = pending.state().expose_secret();
    let state_matches = pending.state_matches(&params);
    if let Some(error) = &params.error {
        if params.state.is_some() && !state_matches {
            return Err(Error::StateMismatch);
        }
        return Err(callback_error(error, &params, expected));
    }
    let age = now
        .duration_since(pending.created_at())
        .unwrap_or_else(|ahead| ahead.duration());
    if age > max_age {
        return Err(Error::AuthorizationExpired { age, max_age });
    }
    if !state_matches {
        return Err(Error::StateMismatch);
    }
    match params.code {
        Some(code) if code.expose_secret().chars().any(char::is_control) => Err(invalid_callback(
            "the callback's `code` contains control characters".to_owned(),
        )),
        Some(code) if !code.expose_secret().trim().is_empty() => Ok(VerifiedCode(code)),
        _ => Err(invalid_callback("the callback has no `code`".to_owned())),
    }
}

/// The error a callback's `error` parameter stands for.
fn callback_error(error: &str, params: &CallbackParams, state: &str) -> Error {
    if error.trim().is_empty() {
        return invalid_callback("the callback's `error` parameter is empty".to_owned());
    }
    let code = params
        .code
        .as_ref()
        .map(|c| c.expose_secret())
        .filter(|c| c.chars().count() >= MIN_SCRUBBED_VALUE_CHARS);
    let secrets: Vec<&str> = [Some(state), code].into_iter().flatten().collect();
    let description = params
        .error_description
        .as_deref()
        .map(|d| excerpt(d.as_bytes(), &secrets));
    match ErrorCode::parse(error) {
        ErrorCode::AccessDenied => Error::AuthorizationDenied { description },
        ErrorCode::Other(other) => Error::AuthorizationFailed {
            code: ErrorCode::Other(scrub(&other, &secrets, b"", CODE_CHARS)),
            description,
        },
        code => Error::AuthorizationFailed { code, description },
    }
}

fn invalid_callback(reason: String) -> Error {
    Error::InvalidCallback { reason }
}

/// Entry points for the fuzz targets in `fuzz/`: **not a stable API**.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// The state of the fixed pending authorization [`callback`] verifies against.
    pub const STATE: &str = "fz-state-4Rk9pQ2mX7vB";

    /// When the fixed pending authorization was made.
    const CREATED_SECS: u64 = 1_800_000_000;

    /// A pending authorization for `provider` with [`STATE`], made at a
    /// fixed instant, for fuzzing the exchange of a verified code.
    pub(crate) fn pending(provider: ProviderId, verifier: Option<&str>) -> PendingAuthorization {
        PendingAuthorization::from_trusted_parts(PendingAuthorizationParts {
            provider,
            state: SecretString::from(STATE),
            redirect_uri: "https://app.example/callback".to_owned(),
            scopes: vec!["all".to_owned()],
            pkce_verifier: verifier.map(SecretString::from),
            created_at: SystemTime::UNIX_EPOCH + Duration::from_secs(CREATED_SECS),
        })
    }

    /// A code as if it had passed verification (crate-internal: the fuzz
    /// targets cannot forge one).
    pub(crate) fn verified_code(code: &str) -> VerifiedCode {
        VerifiedCode(SecretString::from(code))
    }

    /// Runs the callback parser and verifier exactly as
    /// `handle_callback` does: [`CallbackParams::from_query`], then
    /// verification against a fixed pending authorization (state
    /// [`STATE`]) `age_secs` seconds after it was made.
    pub fn callback(query: &str, age_secs: u64) -> Result<()> {
        let params = CallbackParams::from_query(query)?;
        verify(params, age_secs)
    }

    /// Like [`callback`], from a full URL ([`CallbackParams::from_url`]).
    pub fn callback_url(url: &Url, age_secs: u64) -> Result<()> {
        let params = CallbackParams::from_url(url)?;
        verify(params, age_secs)
    }

    fn verify(params: CallbackParams, age_secs: u64) -> Result<()> {
        let pending = pending(ProviderId::from_static("fuzz"), None);
        let now = pending.created_at() + Duration::from_secs(age_secs);
        verify_callback(params, &pending, now, DEFAULT_PENDING_MAX_AGE).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> PendingAuthorization {
        PendingAuthorization::new(
            ProviderId::from_static("test"),
            "http://127.0.0.1/cb".to_owned(),
            vec!["all".into()],
            None,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000),
        )
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn query_for(pending: &PendingAuthorization, code: &str) -> String {
        format!("code={code}&state={}", pending.state().expose_secret())
    }

    #[test]
    fn a_matching_callback_yields_the_code() {
        let p = pending();
        let params = CallbackParams::from_query(&query_for(&p, "the-code")).unwrap();
        let code = verify_callback(params, &p, at(1_100), DEFAULT_PENDING_MAX_AGE).unwrap();
        assert_eq!(code.secret().expose_secret(), "the-code");
    }

    #[test]
    fn state_must_be_present_and_equal() {
        let p = pending();
        for query in ["code=c", "code=c&state=", "code=c&state=other"] {
            let params = CallbackParams::from_query(query).unwrap();
            let err = verify_callback(params, &p, at(1_100), DEFAULT_PENDING_MAX_AGE).unwrap_err();
            assert!(matches!(err, Error::StateMismatch), "{query}: {err:?}");
        }
    }

    #[test]
    fn access_denied_has_its_own_error_even_without_state() {
        let params = CallbackParams::from_query("error=access_denied").unwrap();
        let err =
            verify_callback(params, &pending(), at(1_100), DEFAULT_PENDING_MAX_AGE).unwrap_err();
        assert!(matches!(
            err,
            Error::AuthorizationDenied { description: None }
        ));
    }

    #[test]
    fn other_errors_keep_code_and_description() {
        let params =
            CallbackParams::from_query("error=invalid_scope&error_description=nope").unwrap();
        let err =
            verify_callback(params, &pending(), at(1_100), DEFAULT_PENDING_MAX_AGE).unwrap_err();
        assert!(
            matches!(err, Error::AuthorizationFailed { code: ErrorCode::InvalidScope, description: Some(ref d) } if d == "nope")
        );
    }

    #[test]
    fn a_stale_pending_authorization_is_rejected() {
        let p = pending();
        let params = CallbackParams::from_query(&query_for(&p, "c")).unwrap();
        let err =
            verify_callback(params, &p, at(1_000 + 601), DEFAULT_PENDING_MAX_AGE).unwrap_err();
        assert!(matches!(err, Error::AuthorizationExpired { .. }));
    }

    #[test]
    fn one_made_too_far_in_the_future_is_rejected_too() {
        let p = pending();
        // A little clock skew between servers is fine…
        let params = CallbackParams::from_query(&query_for(&p, "c")).unwrap();
        assert!(verify_callback(params, &p, at(1_000 - 5), DEFAULT_PENDING_MAX_AGE).is_ok());
        // …but not a creation time past the maximum age ahead.
        let params = CallbackParams::from_query(&query_for(&p, "c")).unwrap();
        let err =
            verify_callback(params, &p, at(1_000 - 601), DEFAULT_PENDING_MAX_AGE).unwrap_err();
        assert!(matches!(err, Error::AuthorizationExpired { .. }), "{err:?}");
    }

    #[test]
    fn repeated_or_oversized_queries_are_rejected() {
        let err = CallbackParams::from_query("code=a&code=b&state=s").unwrap_err();
        assert!(matches!(err, Error::InvalidCallback { .. }));
        let err = CallbackParams::from_query("state=a&state=a").unwrap_err();
        assert!(matches!(err, Error::InvalidCallback { .. }));
        let huge = format!("code={}", "x".repeat(MAX_CALLBACK_QUERY_BYTES));
        assert!(matches!(
            CallbackParams::from_query(&huge).unwrap_err(),
            Error::InvalidCallback { .. }
        ));
    }

    #[test]
    fn a_missing_code_is_an_invalid_callback() {
        let p = pending();
        let params =
            CallbackParams::from_query(&format!("state={}", p.state().expose_secret())).unwrap();
        let err = verify_callback(params, &p, at(1_001), DEFAULT_PENDING_MAX_AGE).unwrap_err();
        assert!(matches!(err, Error::InvalidCallback { .. }));
    }

    #[test]
    fn a_present_state_must_match_even_on_an_error() {
        let p = pending();
        let params = CallbackParams::from_query("error=access_denied&state=forged").unwrap();
        let err = verify_callback(params, &p, at(1_100), DEFAULT_PENDING_MAX_AGE).unwrap_err();
        assert!(matches!(err, Error::StateMismatch), "{err:?}");
    }

    #[test]
    fn descriptions_and_unknown_codes_never_show_state_or_code() {
        let p = pending();
        let state = p.state().expose_secret().to_owned();
        let query = format!(
            "error=x{state}&error_description=state+{state}+code+c0de-val&code=c0de-val&state={state}"
        );
        let err = verify_callback(
            CallbackParams::from_query(&query).unwrap(),
            &p,
            at(1_100),
            DEFAULT_PENDING_MAX_AGE,
        )
        .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(matches!(err, Error::AuthorizationFailed { .. }), "{err:?}");
        assert!(
            !text.contains(&state) && !text.contains("c0de-val"),
            "{text}"
        );
    }

    #[test]
    fn malformed_escapes_and_non_utf8_values_are_rejected() {
        for query in [
            "code=%zz&state=s",
            "code=a&state=%4",
            "state=%FF%FE",
            "code=%C3%28",
        ] {
            let err = CallbackParams::from_query(query).unwrap_err();
            assert!(
                matches!(err, Error::InvalidCallback { .. }),
                "{query}: {err:?}"
            );
        }
        let params = CallbackParams::from_query("code=a%2Bb+c&other=%zz").unwrap();
        assert_eq!(params.code.unwrap().expose_secret(), "a+b c");
    }

    #[test]
    fn blank_or_control_codes_and_empty_errors_are_invalid() {
        let p = pending();
        let state = p.state().expose_secret().to_owned();
        for query in [
            format!("code=+&state={state}"),
            format!("code=a%0Db&state={state}"),
            format!("error=&code=c&state={state}"),
        ] {
            let params = CallbackParams::from_query(&query).unwrap();
            let err = verify_callback(params, &p, at(1_100), DEFAULT_PENDING_MAX_AGE).unwrap_err();
            assert!(
                matches!(err, Error::InvalidCallback { .. }),
                "{query}: {err:?}"
            );
        }
    }

    #[test]
    fn parameters_in_the_fragment_are_refused() {
        let url = Url::parse("http://127.0.0.1/cb#code=c&state=s").unwrap();
        let err = CallbackParams::from_url(&url).unwrap_err();
        assert!(matches!(err, Error::InvalidCallback { .. }), "{err:?}");
        let url = Url::parse("http://127.0.0.1/cb?code=c&state=s#code=x").unwrap();
        let params = CallbackParams::from_url(&url).unwrap();
        assert_eq!(params.code.unwrap().expose_secret(), "c");
    }

    #[test]
    fn debug_redacts_code_and_state() {
        let p = pending();
        let params = CallbackParams::from_query(&query_for(&p, "secret-code")).unwrap();
        let text = format!("{params:?} {p:?}");
        assert!(!text.contains("secret-code"));
        assert!(!text.contains(p.state().expose_secret()));
    }
}
