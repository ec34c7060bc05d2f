//! What the hot path reads: a compact, immutable view of one token.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};

use crate::token::{DisplayTime, Token};

/// When to refresh ahead of expiry.
#[derive(Debug, Clone, Copy)]
pub struct RefreshTiming {
    /// Refresh this long before expiry (default 60 s)…
    pub skew: Duration,
    /// …but never more than this fraction of the token's lifetime before
    /// expiry (default 0.5: a 300 s token is reused for at least 150 s).
    pub max_skew_fraction: f64,
    /// Refresh up to this much earlier still, at random, so a fleet does not
    /// refresh in lockstep (default 30 s, capped at 10 % of the lifetime).
    pub jitter: Duration,
}

impl Default for RefreshTiming {
    fn default() -> Self {
        Self {
            skew: Duration::from_secs(60),
            max_skew_fraction: 0.5,
            jitter: Duration::from_secs(30),
        }
    }
}

const JITTER_MAX_FRACTION: f64 = 0.1;

/// The longest skew or jitter [`RefreshTiming::validate`] accepts.
const MAX_TIMING: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

impl RefreshTiming {
    /// Checks the settings: `max_skew_fraction` a number in `[0, 1]`,
    /// `skew` and `jitter` at most ten years. The
    /// [`TokenManagerBuilder`](crate::manager::TokenManagerBuilder) refuses
    /// timing that fails this, with an [`Error::Configuration`](crate::Error::Configuration).
    pub fn validate(&self) -> crate::Result<()> {
        if !(0.0..=1.0).contains(&self.max_skew_fraction) {
            return Err(crate::Error::configuration(format!(
                "RefreshTiming::max_skew_fraction must be a number from 0 to 1, not {}",
                self.max_skew_fraction
            )));
        }
        for (name, value) in [("skew", self.skew), ("jitter", self.jitter)] {
            if value > MAX_TIMING {
                return Err(crate::Error::configuration(format!(
                    "RefreshTiming::{name} must be at most ten years, not {value:?}"
                )));
            }
        }
        Ok(())
    }

    /// When a token issued at `issued_at` and expiring at `expires_at`
    /// should be refreshed. `jitter_sample` is in `[0, 1)`.
    pub fn refresh_at(
        &self,
        issued_at: SystemTime,
        expires_at: SystemTime,
        jitter_sample: f64,
    ) -> SystemTime {
        // Never panics, even on settings `validate` refuses: a NaN fraction
        // counts as 0.5, and no sum can overflow.
        let unit = |x: f64, nan: f64| if x.is_nan() { nan } else { x.clamp(0.0, 1.0) };
        let lifetime = expires_at.duration_since(issued_at).unwrap_or_default();
        let skew = self
            .skew
            .min(lifetime.mul_f64(unit(self.max_skew_fraction, 0.5)));
        let jitter_cap = self.jitter.min(lifetime.mul_f64(JITTER_MAX_FRACTION));
        let jitter = jitter_cap.mul_f64(unit(jitter_sample, 0.0));
        expires_at
            .checked_sub(skew.saturating_add(jitter))
            .unwrap_or(issued_at)
            .max(issued_at)
    }
}

/// One cached token: the `Authorization` header value (which contains the
/// access token, so the secret is stored once), its expiry, when to refresh
/// it, and the store version it came from. Immutable; replaced whole.
pub(crate) struct CachedToken {
    header: SecretString,
    /// Where the access token starts in `header` (after `Bearer `).
    token_start: u32,
    /// Milliseconds since the epoch; [`NEVER`] when unknown.
    expires_at_ms: u64,
    /// Milliseconds since the epoch; [`NEVER`] when not refreshed ahead.
    refresh_at_ms: u64,
    pub(crate) version: u64,
}

/// "No such instant": an expiry that is not known.
const NEVER: u64 = u64::MAX;

impl CachedToken {
    pub(crate) fn new(token: &Token, version: u64, timing: &RefreshTiming) -> Self {
        let header = format!(
            "{} {}",
            token.token_type,
            token.access_token.expose_secret()
        );
        let token_start = u32::try_from(token.token_type.len() + 1).unwrap_or(0);
        let refresh_at = token
            .expires_at
            .map(|expires| timing.refresh_at(token.issued_at, expires, fastrand::f64()));
        Self {
            header: SecretString::from(header),
            token_start,
            expires_at_ms: token.expires_at.map_or(NEVER, unix_ms),
            refresh_at_ms: refresh_at.map_or(NEVER, unix_ms),
            version,
        }
    }

    /// Usable without starting a refresh.
    pub(crate) fn is_fresh(&self, now_ms: u64) -> bool {
        now_ms < self.refresh_at_ms
    }

    /// Not yet expired (it may be due for refresh).
    pub(crate) fn is_valid(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }

    pub(crate) fn header(&self) -> &str {
        self.header.expose_secret()
    }

    pub(crate) fn expires_at_ms(&self) -> Option<u64> {
        (self.expires_at_ms != NEVER).then_some(self.expires_at_ms)
    }
}

pub(crate) use crate::clock::unix_ms;

/// A valid access token handed out by the
/// [`TokenManager`](crate::manager::TokenManager). Its `Debug` redacts.
///
/// Reading one from the cache touches no counter shared between threads
/// (it is an `arc-swap` guard, not a reference-count increment), so many
/// threads reading one key do not contend. Hold it for the request it
/// authorizes, not for long: cloning it, or holding many at once on one
/// thread, falls back to a shared reference count.
pub struct AccessToken(Held);

enum Held {
    /// Borrowed from the cache, without a reference-count increment.
    Guard(arc_swap::Guard<Option<Arc<CachedToken>>>),
    /// Owned.
    Arc(Arc<CachedToken>),
}

impl Clone for AccessToken {
    fn clone(&self) -> Self {
        let owned = match &self.0 {
            Held::Guard(guard) => guard.as_ref().map_or_else(empty, Arc::clone),
            Held::Arc(arc) => Arc::clone(arc),
        };
        Self(Held::Arc(owned))
    }
}

/// What an (impossible) guard over no token reads as.
fn empty() -> Arc<CachedToken> {
    static EMPTY: std::sync::OnceLock<Arc<CachedToken>> = std::sync::OnceLock::new();
    Arc::clone(EMPTY.get_or_init(|| {
        Arc::new(CachedToken {
            header: SecretString::from(String::new()),
            token_start: 0,
            expires_at_ms: 0,
            refresh_at_ms: 0,
            version: 0,
        })
    }))
}

impl AccessToken {
    pub(crate) fn owned(cached: Arc<CachedToken>) -> Self {
        Self(Held::Arc(cached))
    }

    /// A guard known to hold a token.
    pub(crate) fn guarded(guard: arc_swap::Guard<Option<Arc<CachedToken>>>) -> Self {
        Self(Held::Guard(guard))
    }

    pub(crate) fn cached(&self) -> &CachedToken {
        match &self.0 {
            Held::Guard(guard) => match guard.as_deref() {
                Some(cached) => cached,
                None => empty_ref(),
            },
            Held::Arc(arc) => arc,
        }
    }

    /// The access token itself.
    pub fn expose_secret(&self) -> &str {
        let cached = self.cached();
        cached
            .header
            .expose_secret()
            .get(cached.token_start as usize..)
            .unwrap_or_default()
    }

    /// The `Authorization` header value, e.g. `Bearer eyJ…`.
    pub fn expose_authorization_header(&self) -> &str {
        self.cached().header.expose_secret()
    }

    /// When it expires, if known.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.cached()
            .expires_at_ms()
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// The store version it came from (changes with every refresh).
    pub fn version(&self) -> u64 {
        self.cached().version
    }
}

fn empty_ref() -> &'static CachedToken {
    static EMPTY: std::sync::OnceLock<Arc<CachedToken>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(empty)
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at().map(DisplayTime))
            .field("version", &self.version())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::ProviderId;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn skew_is_capped_by_a_fraction_of_the_lifetime() {
        let timing = RefreshTiming {
            jitter: Duration::ZERO,
            ..Default::default()
        };
        // A one-hour token refreshes 60 s early.
        assert_eq!(timing.refresh_at(at(0), at(3600), 0.0), at(3540));
        // A 300 s token is still reused for 240 s.
        assert_eq!(timing.refresh_at(at(0), at(300), 0.0), at(240));
        // A 60 s token refreshes at half-life, not immediately.
        assert_eq!(timing.refresh_at(at(0), at(60), 0.0), at(30));
    }

    #[test]
    fn jitter_only_moves_the_refresh_earlier_and_is_capped() {
        let timing = RefreshTiming::default();
        let earliest = timing.refresh_at(at(0), at(3600), 0.999_999);
        assert!(earliest >= at(3600 - 60 - 30) && earliest < at(3540));
        // For a 100 s token the jitter is at most 10 s.
        assert!(timing.refresh_at(at(0), at(100), 0.999_999) >= at(100 - 50 - 10));
    }

    #[test]
    fn bad_timing_is_refused_and_never_panics() {
        for fraction in [f64::NAN, -0.1, 1.5, f64::INFINITY] {
            let timing = RefreshTiming {
                max_skew_fraction: fraction,
                ..Default::default()
            };
            assert!(timing.validate().is_err(), "{fraction}");
            let _ = timing.refresh_at(at(0), at(3600), f64::NAN);
        }
        let huge = RefreshTiming {
            skew: Duration::MAX,
            jitter: Duration::MAX,
            ..Default::default()
        };
        assert!(huge.validate().is_err());
        assert_eq!(huge.refresh_at(at(10), at(3600), 0.0), at(1805));
        assert!(RefreshTiming::default().validate().is_ok());
    }

    #[test]
    fn the_header_holds_the_token_once_and_debug_redacts() {
        let mut token = Token::new(
            ProviderId::from_static("p"),
            SecretString::from("tok-123"),
            at(0),
        );
        token.expires_at = Some(at(3600));
        let access = AccessToken::owned(Arc::new(CachedToken::new(
            &token,
            7,
            &RefreshTiming::default(),
        )));
        assert_eq!(access.expose_secret(), "tok-123");
        assert_eq!(access.expose_authorization_header(), "Bearer tok-123");
        assert_eq!(access.version(), 7);
        assert!(!format!("{access:?}").contains("tok-123"));
        assert!(access.cached().is_fresh(unix_ms(at(3000))));
        assert!(!access.cached().is_fresh(unix_ms(at(3590))));
        assert!(access.cached().is_valid(unix_ms(at(3590))));
        assert!(!access.cached().is_valid(unix_ms(at(3600))));
    }
}
