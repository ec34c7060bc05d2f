//! What the hot path reads: a compact, immutable view of one token.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::ExposeSecret;
use triomphe::ThinArc;

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
/// access token, so the secret is stored once), when to refresh it, its
/// expiry, and the store version it came from. Immutable; replaced whole.
///
/// One allocation: a reference count, [`Meta`] and the header's bytes
/// inline (a thin pointer, as `arc-swap` needs).
#[derive(Clone)]
#[repr(transparent)]
pub(crate) struct CachedToken(ThinArc<Meta, SecretByte>);

/// A byte of the header, zeroed when the token is dropped (as
/// `SecretString` does).
#[repr(transparent)]
pub(crate) struct SecretByte(u8);

impl Drop for SecretByte {
    fn drop(&mut self) {
        // SAFETY: `self.0` is a valid, writable byte; volatile, so the
        // write to memory about to be freed is not optimized away.
        unsafe { std::ptr::write_volatile(&mut self.0, 0) };
    }
}

/// What a [`CachedToken`] knows besides its header.
pub(crate) struct Meta {
    /// Milliseconds since the epoch; [`NEVER`] when not refreshed ahead
    /// (the expiry is unknown). The one field the hot path reads.
    refresh_at_ms: u64,
    version: u64,
    /// The expiry, after `refresh_at_ms`: in milliseconds, or in whole
    /// seconds (rounded down) when `offset_in_secs`.
    expiry_offset: u32,
    offset_in_secs: bool,
    /// Where the access token starts in the header (after `Bearer `);
    /// [`UNKNOWN_START`] past `u16` (a token type of 64 KiB).
    token_start: u16,
}

// SAFETY: a `CachedToken` is exactly a `ThinArc` (`repr(transparent)`),
// whose own implementation this forwards to.
unsafe impl arc_swap::RefCnt for CachedToken {
    type Base = <ThinArc<Meta, SecretByte> as arc_swap::RefCnt>::Base;

    fn into_ptr(me: Self) -> *mut Self::Base {
        <ThinArc<Meta, SecretByte> as arc_swap::RefCnt>::into_ptr(me.0)
    }

    fn as_ptr(me: &Self) -> *mut Self::Base {
        <ThinArc<Meta, SecretByte> as arc_swap::RefCnt>::as_ptr(&me.0)
    }

    unsafe fn from_ptr(ptr: *const Self::Base) -> Self {
        // SAFETY: forwarded; `ptr` came from `into_ptr` or `as_ptr` above.
        Self(unsafe { <ThinArc<Meta, SecretByte> as arc_swap::RefCnt>::from_ptr(ptr) })
    }
}

/// `Meta::token_start` when the token type is too long to record it.
const UNKNOWN_START: u16 = u16::MAX;

/// "No such instant": an expiry that is not known.
const NEVER: u64 = u64::MAX;

impl CachedToken {
    pub(crate) fn new(token: &Token, version: u64, timing: &RefreshTiming) -> Self {
        let mut header = format!(
            "{} {}",
            token.token_type,
            token.access_token.expose_secret()
        );
        let token_start = u16::try_from(token.token_type.len() + 1)
            .ok()
            .filter(|start| *start != UNKNOWN_START)
            .unwrap_or(UNKNOWN_START);
        let (refresh_at_ms, expiry_offset, offset_in_secs) = match token.expires_at {
            None => (NEVER, 0, false),
            Some(expires) => {
                let refresh = unix_ms(timing.refresh_at(token.issued_at, expires, fastrand::f64()));
                let offset = unix_ms(expires).saturating_sub(refresh);
                match u32::try_from(offset) {
                    Ok(ms) => (refresh, ms, false),
                    Err(_) => (
                        refresh,
                        u32::try_from(offset / 1000).unwrap_or(u32::MAX),
                        true,
                    ),
                }
            }
        };
        let meta = Meta {
            refresh_at_ms,
            version,
            expiry_offset,
            offset_in_secs,
            token_start,
        };
        let cached = Self(ThinArc::from_header_and_iter(
            meta,
            header.bytes().map(SecretByte),
        ));
        // Zeroes the header's only other copy.
        secrecy::zeroize::Zeroize::zeroize(&mut header);
        cached
    }

    fn meta(&self) -> &Meta {
        &self.0.header.header
    }

    /// Usable without starting a refresh.
    pub(crate) fn is_fresh(&self, now_ms: u64) -> bool {
        now_ms < self.meta().refresh_at_ms
    }

    /// Not yet expired (it may be due for refresh).
    pub(crate) fn is_valid(&self, now_ms: u64) -> bool {
        self.expires_at_ms().is_none_or(|expires| now_ms < expires)
    }

    pub(crate) fn header(&self) -> &str {
        let bytes = &self.0.slice;
        // SAFETY: `SecretByte` is a transparent `u8`; the bytes were copied
        // from a `String` (`new`) and are only changed when dropped.
        unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                bytes.as_ptr().cast::<u8>(),
                bytes.len(),
            ))
        }
    }

    pub(crate) fn version(&self) -> u64 {
        self.meta().version
    }

    pub(crate) fn expires_at_ms(&self) -> Option<u64> {
        let meta = self.meta();
        if meta.refresh_at_ms == NEVER {
            return None;
        }
        let offset = u64::from(meta.expiry_offset);
        let offset = if meta.offset_in_secs {
            offset * 1000
        } else {
            offset
        };
        Some(meta.refresh_at_ms.saturating_add(offset))
    }

    fn access_token(&self) -> &str {
        let header = self.header();
        match self.meta().token_start {
            // A token type too long to record where it ends: the token is
            // what follows the last space (an RFC 6750 token has none).
            UNKNOWN_START => header.rsplit_once(' ').map_or(header, |(_, token)| token),
            start => header.get(usize::from(start)..).unwrap_or_default(),
        }
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
    Guard(arc_swap::Guard<Option<CachedToken>>),
    /// Owned.
    Owned(CachedToken),
}

impl Clone for AccessToken {
    fn clone(&self) -> Self {
        Self(Held::Owned(self.cached().clone()))
    }
}

impl AccessToken {
    pub(crate) fn owned(cached: CachedToken) -> Self {
        Self(Held::Owned(cached))
    }

    /// A guard known to hold a token.
    pub(crate) fn guarded(guard: arc_swap::Guard<Option<CachedToken>>) -> Self {
        Self(Held::Guard(guard))
    }

    pub(crate) fn cached(&self) -> &CachedToken {
        match &self.0 {
            Held::Guard(guard) => match guard.as_ref() {
                Some(cached) => cached,
                None => empty(),
            },
            Held::Owned(cached) => cached,
        }
    }

    /// The access token itself.
    pub fn expose_secret(&self) -> &str {
        self.cached().access_token()
    }

    /// The `Authorization` header value, e.g. `Bearer eyJ…`.
    pub fn expose_authorization_header(&self) -> &str {
        self.cached().header()
    }

    /// When it expires, if known.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.cached()
            .expires_at_ms()
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// The store version it came from (changes with every refresh).
    pub fn version(&self) -> u64 {
        self.cached().version()
    }
}

/// What an (impossible) guard over no token reads as.
fn empty() -> &'static CachedToken {
    static EMPTY: std::sync::OnceLock<CachedToken> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| {
        CachedToken(ThinArc::from_header_and_iter(
            Meta {
                refresh_at_ms: 0,
                version: 0,
                expiry_offset: 0,
                offset_in_secs: false,
                token_start: 0,
            },
            std::iter::empty(),
        ))
    })
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
    use secrecy::SecretString;

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
    fn a_long_token_type_does_not_change_the_token() {
        for len in [6, 254, 255, 300, 65_534, 65_535, 70_000] {
            let mut token = Token::new(
                ProviderId::from_static("p"),
                SecretString::from("tok-123"),
                at(0),
            );
            token.token_type = "T".repeat(len);
            let cached = CachedToken::new(&token, 1, &RefreshTiming::default());
            let access = AccessToken::owned(cached);
            assert_eq!(
                access.expose_secret(),
                "tok-123",
                "token type of {len} bytes"
            );
            assert_eq!(
                access.expose_authorization_header().len(),
                len + 1 + "tok-123".len()
            );
        }
        // The record of where the token starts takes no extra room.
        assert_eq!(std::mem::size_of::<Meta>(), 24);
    }

    #[test]
    fn the_header_holds_the_token_once_and_debug_redacts() {
        let mut token = Token::new(
            ProviderId::from_static("p"),
            SecretString::from("tok-123"),
            at(0),
        );
        token.expires_at = Some(at(3600));
        let access = AccessToken::owned(CachedToken::new(&token, 7, &RefreshTiming::default()));
        assert_eq!(access.expose_secret(), "tok-123");
        assert_eq!(access.expose_authorization_header(), "Bearer tok-123");
        assert_eq!(access.version(), 7);
        assert!(!format!("{access:?}").contains("tok-123"));
        assert!(access.cached().is_fresh(unix_ms(at(3000))));
        assert!(!access.cached().is_fresh(unix_ms(at(3590))));
        assert!(access.cached().is_valid(unix_ms(at(3590))));
        assert!(!access.cached().is_valid(unix_ms(at(3600))));
        assert_eq!(access.expires_at(), Some(at(3600)));
    }

    #[test]
    fn a_far_expiry_is_kept_to_the_second_and_never_later() {
        let mut token = Token::new(
            ProviderId::from_static("p"),
            SecretString::from("tok"),
            at(0),
        );
        // Refreshed 60 days before a 10-year expiry: the offset is stored
        // in seconds.
        token.expires_at = Some(at(10 * 365 * 86_400) + Duration::from_millis(999));
        let timing = RefreshTiming {
            skew: Duration::from_secs(60 * 86_400),
            jitter: Duration::ZERO,
            ..Default::default()
        };
        let cached = CachedToken::new(&token, 1, &timing);
        let expires = cached.expires_at_ms().unwrap();
        assert!(expires <= unix_ms(token.expires_at.unwrap()));
        assert!(expires + 1000 > unix_ms(token.expires_at.unwrap()));
        assert!(cached.is_fresh(unix_ms(at(10 * 365 * 86_400 - 61 * 86_400))));
        assert!(!cached.is_fresh(unix_ms(at(10 * 365 * 86_400 - 59 * 86_400))));
        // No expiry: always fresh and valid.
        token.expires_at = None;
        let cached = CachedToken::new(&token, 1, &timing);
        assert!(cached.is_fresh(u64::MAX - 1) && cached.is_valid(u64::MAX - 1));
        assert_eq!(cached.expires_at_ms(), None);
    }
}
