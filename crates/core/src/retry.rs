//! Retrying token requests: only where a retry cannot spend something twice,
//! with exponential backoff and jitter, bounded in count and in total time.
//!
//! Every attempt runs in a `tracing` span named `oauth2_adapters.token_request`
//! and is counted through the `metrics` facade (see `docs/observability.md`).

use std::future::Future;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::error::{Error, Result};
use crate::token::{ProviderId, Token};

/// Whether sending a token request twice can spend something twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetrySafety {
    /// Sending it again is harmless: client credentials, or a refresh token
    /// the provider does not rotate. Retried on any retryable error.
    Repeatable,
    /// It spends a single-use credential (an authorization code, a rotating
    /// refresh token). Retried only when the request provably never reached
    /// the server ([`TransportErrorKind::request_never_sent`](crate::TransportErrorKind::request_never_sent)).
    SingleUse,
}

/// The grant a token request belongs to, as named in spans and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Grant {
    /// RFC 6749 §4.1.3: exchanging an authorization code.
    AuthorizationCode,
    /// RFC 6749 §6: refreshing with a refresh token.
    RefreshToken,
    /// RFC 6749 §4.4: client credentials.
    ClientCredentials,
}

impl Grant {
    /// The RFC 6749 `grant_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }
}

/// How often and for how long a failed token request is tried again.
///
/// The default: at most 3 attempts, backoff 250 ms then 500 ms (each
/// between half and all of that, at random), capped at 4 s per wait, and
/// no retry that would end more than 15 s after the first attempt began. A
/// `Retry-After` from the provider replaces the computed backoff; one
/// longer than the remaining budget ends the retries, and the returned
/// error carries it ([`Error::retry_after`]).
///
/// ```
/// use std::time::Duration;
/// use oauth2_adapters::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .with_max_attempts(5)
///     .with_backoff(Duration::from_millis(100), Duration::from_secs(2))
///     .with_max_elapsed(Duration::from_secs(10));
/// assert_eq!(policy.max_attempts(), 5);
/// assert_eq!(RetryPolicy::never().max_attempts(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            max_elapsed: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// At most `attempts` attempts in total (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The first backoff, doubled on each retry up to `max`.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// No retry may start later than this after the first attempt began.
    pub fn with_max_elapsed(mut self, max: Duration) -> Self {
        self.max_elapsed = max;
        self
    }

    /// The maximum number of attempts.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The longest a token request with its retries can take, when one
    /// attempt takes at most `timeout`.
    ///
    /// No retry starts later than [`RetryPolicy::with_max_elapsed`] after the
    /// first attempt began (a `Retry-After` delay is capped by the same
    /// budget), so the last attempt ends by `max_elapsed + timeout`, however
    /// many attempts are allowed: the bound is that, not
    /// `timeout × attempts + budget`, which would only overstate it.
    pub fn worst_case(&self, timeout: Duration) -> Duration {
        if self.max_attempts <= 1 {
            timeout
        } else {
            timeout.saturating_add(self.max_elapsed)
        }
    }

    /// The backoff after `attempts_made` failed attempts: the exponential
    /// ceiling `initial × 2^(attempts_made − 1)` (capped), jittered to
    /// between half and all of it so that clients do not retry in step.
    pub fn backoff(&self, attempts_made: u32) -> Duration {
        let doublings = attempts_made.saturating_sub(1).min(20);
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// The wait before the next attempt, or `None` to give up with `error`.
    pub fn next_delay(
        &self,
        safety: RetrySafety,
        error: &Error,
        attempts_made: u32,
        elapsed: Duration,
    ) -> Option<Duration> {
        if attempts_made >= self.max_attempts || !error.is_retryable() {
            return None;
        }
        if safety == RetrySafety::SingleUse && !error.request_never_sent() {
            return None;
        }
        let delay = error
            .retry_after()
            .unwrap_or_else(|| self.backoff(attempts_made));
        (elapsed.saturating_add(delay) <= self.max_elapsed).then_some(delay)
    }
}

/// What a token request is, for the retry rule, spans and metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenRequest<'a> {
    pub(crate) provider: &'a ProviderId,
    pub(crate) grant: Grant,
    pub(crate) safety: RetrySafety,
}

/// Runs `attempt` until it succeeds or `policy` says to stop, each attempt
/// in its own span and counted.
pub(crate) async fn with_retries<F, Fut>(
    policy: &RetryPolicy,
    request: TokenRequest<'_>,
    mut attempt: F,
) -> Result<Token>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Token>>,
{
    let started = Instant::now();
    let mut attempts_made = 0u32;
    loop {
        attempts_made += 1;
        let span = tracing::info_span!(
            "oauth2_adapters.token_request",
            provider = %request.provider,
            grant = request.grant.as_str(),
            attempt = attempts_made,
            http.status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let attempt_started = Instant::now();
        let result = attempt().instrument(span.clone()).await;
        let duration = attempt_started.elapsed();
        let outcome = outcome_label(&result);
        span.record("duration_ms", duration.as_millis() as u64);
        span.record("outcome", outcome);
        if let Some(status) = result.as_ref().err().and_then(Error::http_status) {
            span.record("http.status", status);
        }
        crate::metrics::token_request(request.provider, request.grant, outcome, duration);
        let error = match result {
            Ok(token) => return Ok(token),
            Err(error) => error,
        };
        let Some(delay) =
            policy.next_delay(request.safety, &error, attempts_made, started.elapsed())
        else {
            if attempts_made > 1 || error.is_retryable() {
                tracing::debug!(
                    parent: &span,
                    attempts = attempts_made,
                    retryable = error.is_retryable(),
                    safety = ?request.safety,
                    "token request not retried"
                );
            }
            return Err(error);
        };
        tracing::info!(
            parent: &span,
            delay_ms = delay.as_millis() as u64,
            error = %error,
            "token request failed; retrying"
        );
        crate::metrics::token_request_retry(request.provider, request.grant);
        tokio::time::sleep(delay).await;
    }
}

/// A low-cardinality label for a token request's result.
fn outcome_label(result: &Result<Token>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(Error::Provider { .. }) => "provider_error",
        Err(Error::HttpStatus { .. }) => "http_status",
        Err(Error::Transport { .. }) => "transport",
        Err(Error::InvalidResponse { .. }) => "invalid_response",
        Err(Error::ReauthorizationRequired { .. }) => "reauthorization_required",
        Err(_) => "other_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorCode, TransportErrorKind};

    static P: ProviderId = ProviderId::from_static("p");

    fn transport(kind: TransportErrorKind) -> Error {
        Error::Transport {
            provider: P.clone(),
            kind,
            source: None,
        }
    }

    fn status(status: u16, retry_after: Option<Duration>) -> Error {
        Error::HttpStatus {
            provider: P.clone(),
            status,
            retry_after,
            excerpt: String::new(),
        }
    }

    const ZERO: Duration = Duration::ZERO;

    #[test]
    fn repeatable_requests_retry_retryable_errors_only() {
        let policy = RetryPolicy::default();
        let safety = RetrySafety::Repeatable;
        assert!(policy
            .next_delay(safety, &status(503, None), 1, ZERO)
            .is_some());
        assert!(policy
            .next_delay(safety, &transport(TransportErrorKind::Timeout), 1, ZERO)
            .is_some());
        assert!(policy
            .next_delay(safety, &status(400, None), 1, ZERO)
            .is_none());
        let invalid_grant = Error::Provider {
            provider: P.clone(),
            code: ErrorCode::InvalidGrant,
            provider_code: None,
            description: None,
            status: Some(400),
            retry_after: None,
        };
        assert!(policy.next_delay(safety, &invalid_grant, 1, ZERO).is_none());
        assert!(policy
            .next_delay(
                safety,
                &transport(TransportErrorKind::ResponseTooLarge),
                1,
                ZERO
            )
            .is_none());
    }

    #[test]
    fn single_use_requests_retry_only_when_never_sent() {
        let policy = RetryPolicy::default();
        let safety = RetrySafety::SingleUse;
        assert!(policy
            .next_delay(safety, &transport(TransportErrorKind::Connect), 1, ZERO)
            .is_some());
        for sent in [
            transport(TransportErrorKind::Timeout),
            transport(TransportErrorKind::Interrupted),
            status(503, None),
            status(429, Some(Duration::from_secs(1))),
        ] {
            assert!(
                policy.next_delay(safety, &sent, 1, ZERO).is_none(),
                "{sent}"
            );
        }
    }

    #[test]
    fn attempts_and_total_time_are_bounded() {
        let policy = RetryPolicy::default().with_max_attempts(3);
        let error = status(502, None);
        assert!(policy
            .next_delay(RetrySafety::Repeatable, &error, 2, ZERO)
            .is_some());
        assert!(policy
            .next_delay(RetrySafety::Repeatable, &error, 3, ZERO)
            .is_none());
        let late = Duration::from_secs(15);
        assert!(policy
            .next_delay(RetrySafety::Repeatable, &error, 1, late)
            .is_none());
        assert!(RetryPolicy::never()
            .next_delay(RetrySafety::Repeatable, &error, 1, ZERO)
            .is_none());
    }

    #[test]
    fn retry_after_replaces_the_backoff_and_may_end_the_retries() {
        let policy = RetryPolicy::default();
        let soon = status(429, Some(Duration::from_secs(2)));
        assert_eq!(
            policy.next_delay(RetrySafety::Repeatable, &soon, 1, ZERO),
            Some(Duration::from_secs(2))
        );
        let too_late = status(429, Some(Duration::from_secs(60)));
        assert_eq!(
            policy.next_delay(RetrySafety::Repeatable, &too_late, 1, ZERO),
            None
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy::default()
            .with_backoff(Duration::from_millis(100), Duration::from_millis(350));
        for _ in 0..100 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let second = policy.backoff(2);
            assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
            let capped = policy.backoff(10);
            assert!(capped >= Duration::from_millis(175) && capped <= Duration::from_millis(350));
        }
        let distinct: std::collections::HashSet<_> = (0..50).map(|_| policy.backoff(3)).collect();
        assert!(distinct.len() > 1, "the backoff is jittered");
    }
}
