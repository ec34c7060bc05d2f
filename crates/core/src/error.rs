//! The one error type every adapter returns.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::token::ProviderId;

/// What went wrong, in terms a caller can act on.
///
/// No variant ever carries a secret: response bodies are kept only as short
/// excerpts made by [`crate::redact::excerpt`].
///
/// `Error` is `Clone`, so one failed refresh can be handed to every caller
/// that was waiting for it.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The provider answered with an error object (RFC 6749 §5.2, or a
    /// provider's business code such as HyperSKU's `60025`).
    #[error("{provider}: the provider refused the request: {code}{}{}", fmt_opt(" (provider code ", provider_code.as_deref(), ")"), fmt_opt(": ", description.as_deref(), ""))]
    Provider {
        /// The provider.
        provider: ProviderId,
        /// The normalized error code.
        code: ErrorCode,
        /// The provider's own code, when it is not an RFC 6749 code.
        provider_code: Option<String>,
        /// The provider's human-readable description, if any.
        description: Option<String>,
        /// The HTTP status of the response.
        status: Option<u16>,
        /// The `Retry-After` delay, when the response carried one (seconds or an HTTP-date).
        retry_after: Option<Duration>,
    },
    /// The provider answered with an unexpected HTTP status and no error object.
    #[error("{provider}: unexpected HTTP status {status}; body: {excerpt}")]
    HttpStatus {
        /// The provider.
        provider: ProviderId,
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` delay, when the provider sent one (seconds or an HTTP-date).
        retry_after: Option<Duration>,
        /// A short, redacted excerpt of the body.
        excerpt: String,
    },
    /// The request could not be completed at the transport level.
    #[error("{provider}: transport failure: {kind}")]
    Transport {
        /// The provider.
        provider: ProviderId,
        /// What kind of failure.
        kind: TransportErrorKind,
        /// The underlying error (its URL stripped).
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// The provider answered with a success status but a body we cannot use.
    #[error("{provider}: unusable response: {reason}; body: {excerpt}")]
    InvalidResponse {
        /// The provider.
        provider: ProviderId,
        /// What was wrong with it.
        reason: String,
        /// A short, redacted excerpt of the body.
        excerpt: String,
    },
    /// The callback's `state` is missing or differs from the pending authorization's.
    #[error("the callback's state does not match the pending authorization")]
    StateMismatch,
    /// The user (or the provider) denied the authorization (`error=access_denied`).
    #[error("the authorization was denied{}", fmt_opt(": ", description.as_deref(), ""))]
    AuthorizationDenied {
        /// The provider's `error_description`, if any.
        description: Option<String>,
    },
    /// The callback carried an error other than `access_denied`.
    #[error("the authorization failed: {code}{}", fmt_opt(": ", description.as_deref(), ""))]
    AuthorizationFailed {
        /// The `error` parameter.
        code: ErrorCode,
        /// The `error_description` parameter, if any.
        description: Option<String>,
    },
    /// The pending authorization is older than allowed.
    #[error("the pending authorization is stale ({}s old, at most {}s allowed)", age.as_secs(), max_age.as_secs())]
    AuthorizationExpired {
        /// Its age when the callback arrived.
        age: Duration,
        /// The allowed age.
        max_age: Duration,
    },
    /// The callback's query is malformed (no code, a duplicated parameter, …).
    #[error("invalid callback: {reason}")]
    InvalidCallback {
        /// What is wrong with it.
        reason: String,
    },
    /// The user must authorize the application again: the refresh token is
    /// missing, expired or was rejected.
    #[error("{provider}: re-authorization required: {reason}")]
    ReauthorizationRequired {
        /// The provider.
        provider: ProviderId,
        /// Why.
        reason: ReauthorizationReason,
    },
    /// The token store failed (a database error, a corrupt record, …).
    #[error("token store: {message}")]
    Store {
        /// What failed (no secret: stores never put token values in errors).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// The adapter is misconfigured (a bad URL, a non-https token endpoint, …).
    #[error("configuration error: {reason}")]
    Configuration {
        /// What is wrong.
        reason: String,
    },
    /// The token manager did not try to renew the token now, because trying
    /// could not help or could do harm: the key's last refresh failed and it
    /// is backing off, another instance's refresh is in doubt or still
    /// running, or the manager is shutting down. Nothing was sent.
    #[error("token not renewed now: {reason}{}", fmt_retry_after(*retry_after))]
    RefreshDeferred {
        /// Why.
        reason: DeferredReason,
        /// When trying again may help.
        retry_after: Option<Duration>,
    },
    /// A bug: code the library runs (an adapter, a store, a hook) panicked.
    /// The panic's message is not kept (it could hold anything); it was
    /// logged where it happened.
    #[error("internal error: {what} panicked")]
    Internal {
        /// What panicked, e.g. `the refresh of hike|store-1|`.
        what: String,
    },
}

fn fmt_retry_after(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |d| format!(" (retry in {} ms)", d.as_millis()))
}

/// Why the token manager deferred a renewal ([`Error::RefreshDeferred`]).
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum DeferredReason {
    /// The key's last refresh failed with `last`; the manager retries after
    /// a backoff instead of on every call.
    Backoff {
        /// The error the last refresh ended with.
        last: Box<Error>,
    },
    /// Another instance took the refresh lease for the stored token and let
    /// it lapse without storing a result: it may have spent the refresh
    /// token and still hold its successor, so sending the stored refresh
    /// token again could spend it twice. The manager waits for that
    /// instance's write (or for the in-doubt grace to pass).
    InDoubt,
    /// Another instance is refreshing the token and did not finish within
    /// the wait.
    OtherInstanceRefreshing,
    /// The manager is shutting down and starts no refresh.
    ShuttingDown,
}

impl fmt::Display for DeferredReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backoff { last } => write!(f, "the last refresh failed ({last})"),
            Self::InDoubt => f.write_str(
                "another instance's refresh is in doubt (its lease lapsed before it stored a result)",
            ),
            Self::OtherInstanceRefreshing => {
                f.write_str("another instance is still refreshing the token")
            }
            Self::ShuttingDown => f.write_str("the token manager is shutting down"),
        }
    }
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A store error with its cause.
    pub fn store(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Store {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// A configuration error.
    pub fn configuration(reason: impl Into<String>) -> Self {
        Self::Configuration {
            reason: reason.into(),
        }
    }

    /// True when the same request may succeed if tried again later
    /// (a transport failure, a 5xx/429/408, `temporarily_unavailable`).
    ///
    /// Whether a retry is *safe* also depends on the grant: an authorization
    /// code is single-use, so a code exchange must not be retried once sent.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { kind, .. } => !matches!(kind, TransportErrorKind::ResponseTooLarge),
            Self::HttpStatus { status, .. } => is_retryable_status(*status),
            Self::Provider { code, status, .. } => {
                matches!(
                    code,
                    ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable
                ) || status.is_some_and(is_retryable_status)
            }
            Self::Store { .. } => true,
            Self::RefreshDeferred { reason, .. } => !matches!(reason, DeferredReason::ShuttingDown),
            Self::InvalidResponse { .. }
            | Self::Internal { .. }
            | Self::StateMismatch
            | Self::AuthorizationDenied { .. }
            | Self::AuthorizationFailed { .. }
            | Self::AuthorizationExpired { .. }
            | Self::InvalidCallback { .. }
            | Self::ReauthorizationRequired { .. }
            | Self::Configuration { .. } => false,
        }
    }

    /// True when only a new authorization by the user can recover.
    pub fn requires_reauthorization(&self) -> bool {
        match self {
            Self::ReauthorizationRequired { .. } => true,
            Self::RefreshDeferred {
                reason: DeferredReason::Backoff { last },
                ..
            } => last.requires_reauthorization(),
            Self::RefreshDeferred { .. } | Self::Internal { .. } => false,
            Self::Provider { .. }
            | Self::HttpStatus { .. }
            | Self::Transport { .. }
            | Self::InvalidResponse { .. }
            | Self::StateMismatch
            | Self::AuthorizationDenied { .. }
            | Self::AuthorizationFailed { .. }
            | Self::AuthorizationExpired { .. }
            | Self::InvalidCallback { .. }
            | Self::Store { .. }
            | Self::Configuration { .. } => false,
        }
    }

    /// The provider whose request failed, when the error names one.
    pub fn provider(&self) -> Option<&ProviderId> {
        match self {
            Self::Provider { provider, .. }
            | Self::HttpStatus { provider, .. }
            | Self::Transport { provider, .. }
            | Self::InvalidResponse { provider, .. }
            | Self::ReauthorizationRequired { provider, .. } => Some(provider),
            Self::RefreshDeferred {
                reason: DeferredReason::Backoff { last },
                ..
            } => last.provider(),
            _ => None,
        }
    }

    /// The provider's own error code when it is not an RFC 6749 one, e.g.
    /// HyperSKU's business code `60025` (see the adapter's docs for what
    /// each means). Looks through a backoff to the error that caused it.
    pub fn provider_code(&self) -> Option<&str> {
        match self {
            Self::Provider { provider_code, .. } => provider_code.as_deref(),
            Self::RefreshDeferred {
                reason: DeferredReason::Backoff { last },
                ..
            } => last.provider_code(),
            _ => None,
        }
    }

    /// The provider's (scrubbed) human-readable description, if it sent one.
    pub fn description(&self) -> Option<&str> {
        match self {
            Self::Provider { description, .. }
            | Self::AuthorizationDenied { description }
            | Self::AuthorizationFailed { description, .. } => description.as_deref(),
            _ => None,
        }
    }

    /// Why the user must authorize again, for [`Error::ReauthorizationRequired`]
    /// (also behind a backoff).
    pub fn reauthorization_reason(&self) -> Option<&ReauthorizationReason> {
        match self {
            Self::ReauthorizationRequired { reason, .. } => Some(reason),
            Self::RefreshDeferred {
                reason: DeferredReason::Backoff { last },
                ..
            } => last.reauthorization_reason(),
            _ => None,
        }
    }

    /// The provider's error code, when the provider answered with one.
    pub fn provider_error_code(&self) -> Option<&ErrorCode> {
        match self {
            Self::Provider { code, .. } => Some(code),
            _ => None,
        }
    }

    /// How long the provider asked to wait (`Retry-After`), when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Provider { retry_after, .. }
            | Self::HttpStatus { retry_after, .. }
            | Self::RefreshDeferred { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True only when the request provably never reached the server (the
    /// connection could not be made), so even a single-use grant may be
    /// sent again.
    pub fn request_never_sent(&self) -> bool {
        matches!(self, Self::Transport { kind, .. } if kind.request_never_sent())
    }

    /// The HTTP status of the provider's answer, when there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Provider { status, .. } => *status,
            Self::HttpStatus { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429 | 500 | 502 | 503 | 504)
}

fn fmt_opt(before: &str, value: Option<&str>, after: &str) -> String {
    value.map_or_else(String::new, |v| format!("{before}{v}{after}"))
}

/// An OAuth error code: the RFC 6749 §5.2 / §4.1.2.1 ones, or another string.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`
    InvalidClient,
    /// `invalid_grant`: the code or refresh token is invalid, expired, revoked or spent.
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `invalid_scope`
    InvalidScope,
    /// `access_denied`
    AccessDenied,
    /// `unsupported_response_type`
    UnsupportedResponseType,
    /// `server_error`
    ServerError,
    /// `temporarily_unavailable`
    TemporarilyUnavailable,
    /// Any other code, as sent.
    Other(String),
}

impl ErrorCode {
    /// Parses a code as sent on the wire.
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "unsupported_response_type" => Self::UnsupportedResponseType,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as sent on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::Other(code) => code,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a transport failure.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// The connection could not be made: the request never reached the server.
    Connect,
    /// The request or response timed out.
    Timeout,
    /// The connection failed while the request or response was in flight.
    Interrupted,
    /// The response body exceeded the configured cap.
    ResponseTooLarge,
    /// Any other transport failure.
    Other,
}

impl TransportErrorKind {
    /// True only when the request provably never reached the server, so even
    /// a single-use grant may be sent again.
    pub fn request_never_sent(self) -> bool {
        matches!(self, Self::Connect)
    }
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "could not connect",
            Self::Timeout => "timed out",
            Self::Interrupted => "connection interrupted",
            Self::ResponseTooLarge => "response body over the size cap",
            Self::Other => "request failed",
        })
    }
}

/// Why the user must authorize again.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReauthorizationReason {
    /// The token has no refresh token.
    NoRefreshToken,
    /// The refresh token's known expiry has passed.
    RefreshTokenExpired,
    /// Nothing is stored for this account: it was never authorized, or was removed.
    NotAuthorized,
    /// The provider rejected the refresh token.
    RefreshTokenRejected {
        /// The provider's description, if any.
        description: Option<String>,
    },
}

impl fmt::Display for ReauthorizationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoRefreshToken => f.write_str("no refresh token"),
            Self::RefreshTokenExpired => f.write_str("the refresh token has expired"),
            Self::NotAuthorized => f.write_str("no token is stored for this account"),
            Self::RefreshTokenRejected { description } => write!(
                f,
                "the provider rejected the refresh token{}",
                fmt_opt(": ", description.as_deref(), "")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_error_display_names_code_and_description() {
        let err = Error::Provider {
            provider: ProviderId::from_static("hypersku"),
            code: ErrorCode::InvalidGrant,
            provider_code: Some("60025".into()),
            description: Some("code used".into()),
            status: Some(200),
            retry_after: None,
        };
        assert_eq!(
            err.to_string(),
            "hypersku: the provider refused the request: invalid_grant (provider code 60025): code used"
        );
        assert!(!err.is_retryable());
        assert!(!err.requires_reauthorization());
    }

    #[test]
    fn codes_round_trip() {
        for code in ["invalid_grant", "server_error", "weird"] {
            assert_eq!(ErrorCode::parse(code).as_str(), code);
        }
    }

    #[test]
    fn retryable_statuses() {
        let status = |status| Error::HttpStatus {
            provider: ProviderId::from_static("p"),
            status,
            retry_after: None,
            excerpt: String::new(),
        };
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(302).is_retryable());
    }
}
