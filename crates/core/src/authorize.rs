//! Building the authorize redirect and verifying the callback.

use std::fmt;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use url::Url;

use crate::error::{Error, ErrorCode, Result};
use crate::token::{DisplayTime, ProviderId};

/// How long a pending authorization stays usable by default (10 minutes,
/// the lifetime of the providers' authorization codes).
pub const DEFAULT_PENDING_MAX_AGE: Duration = Duration::from_secs(600);

/// Longest callback query accepted, in bytes.
pub const MAX_CALLBACK_QUERY_BYTES: usize = 8 * 1024;

/// What the application asks for when it sends a user to the provider.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// Where the provider sends the user back; must match the registered URI exactly.
    pub redirect_uri: Url,
    /// The scopes to ask for; `None` uses the provider's default.
    pub scopes: Option<Vec<String>>,
}

impl AuthorizeRequest {
    /// A request with the provider's default scopes.
    pub fn new(redirect_uri: &str) -> Result<Self> {
        let redirect_uri = Url::parse(redirect_uri)
            .map_err(|e| Error::configuration(format!("redirect URI is not a valid URL: {e}")))?;
        Ok(Self {
            redirect_uri,
            scopes: None,
        })
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

/// What an adapter needs to build its authorize URL. Made by the core.
#[derive(Debug)]
pub struct AuthorizeUrlParams<'a> {
    /// The anti-CSRF state to send.
    pub state: &'a str,
    /// The redirect URI to send.
    pub redirect_uri: &'a Url,
    /// The scopes to send.
    pub scopes: &'a [String],
    /// The PKCE challenge, when the provider uses PKCE.
    pub pkce_challenge: Option<&'a oauth2::PkceCodeChallenge>,
}

/// What the application keeps between the redirect and the callback:
/// the state, the redirect URI, the PKCE verifier and when it was made.
///
/// It is consumed by the callback, so a state can be used once only.
#[derive(Clone)]
pub struct PendingAuthorization {
    provider: ProviderId,
    state: SecretString,
    redirect_uri: Url,
    scopes: Vec<String>,
    pkce_verifier: Option<SecretString>,
    created_at: SystemTime,
}

impl PendingAuthorization {
    /// Makes a pending authorization with a fresh random state.
    pub(crate) fn new(
        provider: ProviderId,
        redirect_uri: Url,
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

    /// The provider it was made for.
    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }

    /// The state sent to the provider.
    pub fn state(&self) -> &SecretString {
        &self.state
    }

    /// The redirect URI sent to the provider (the exchange must send it again).
    pub fn redirect_uri(&self) -> &Url {
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

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("provider", &self.provider)
            .field("state", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("scopes", &self.scopes)
            .field("pkce", &self.pkce_verifier.is_some())
            .field("created_at", &DisplayTime(self.created_at))
            .finish()
    }
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
    /// A query over [`MAX_CALLBACK_QUERY_BYTES`], or one that repeats
    /// `code`, `state`, `error` or `error_description`, is rejected.
    /// Unknown parameters are ignored.
    pub fn from_query(query: &str) -> Result<Self> {
        if query.len() > MAX_CALLBACK_QUERY_BYTES {
            return Err(invalid_callback(format!(
                "the query is {} bytes, over the {MAX_CALLBACK_QUERY_BYTES}-byte limit",
                query.len()
            )));
        }
        let mut params = Self::default();
        let mut code: Option<String> = None;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match key.as_ref() {
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
            *slot = Some(value.into_owned());
        }
        params.code = code.map(SecretString::from);
        Ok(params)
    }

    /// Parses the query of a full callback URL.
    pub fn from_url(url: &Url) -> Result<Self> {
        Self::from_query(url.query().unwrap_or(""))
    }
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
/// an `error` parameter (`access_denied` has its own variant), the pending
/// authorization's age, the `state` (compared in constant time), the `code`.
pub(crate) fn verify_callback(
    params: CallbackParams,
    pending: &PendingAuthorization,
    now: SystemTime,
    max_age: Duration,
) -> Result<VerifiedCode> {
    if let Some(error) = params.error {
        let description = params.error_description;
        return Err(match ErrorCode::parse(&error) {
            ErrorCode::AccessDenied => Error::AuthorizationDenied { description },
            code => Error::AuthorizationFailed { code, description },
        });
    }
    let age = now.duration_since(pending.created_at).unwrap_or_default();
    if age > max_age {
        return Err(Error::AuthorizationExpired { age, max_age });
    }
    let expected = pending.state.expose_secret().as_bytes();
    let state_matches = params
        .state
        .as_deref()
        .is_some_and(|got| bool::from(got.as_bytes().ct_eq(expected)));
    if !state_matches {
        return Err(Error::StateMismatch);
    }
    match params.code {
        Some(code) if !code.expose_secret().is_empty() => Ok(VerifiedCode(code)),
        _ => Err(invalid_callback("the callback has no `code`".to_owned())),
    }
}

fn invalid_callback(reason: String) -> Error {
    Error::InvalidCallback { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> PendingAuthorization {
        PendingAuthorization::new(
            ProviderId::from_static("test"),
            Url::parse("http://127.0.0.1/cb").unwrap(),
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
    fn debug_redacts_code_and_state() {
        let p = pending();
        let params = CallbackParams::from_query(&query_for(&p, "secret-code")).unwrap();
        let text = format!("{params:?} {p:?}");
        assert!(!text.contains("secret-code"));
        assert!(!text.contains(p.state().expose_secret()));
    }
}
