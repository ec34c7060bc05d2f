//! What `tokens list` says of a stored token, and how times are shown.
//!
//! The rule, for a token read at `now`:
//!
//! 1. **reauth** when its refresh token's known expiry has passed, or its
//!    access token has expired and it has no refresh token (except for
//!    providers that renew by requesting a new token with client
//!    credentials, the partner adapter's `partner`: nobody signs in for
//!    those);
//! 2. **fresh** when it has no expiry;
//! 3. **due** when it has expired (and 1. does not apply), or `now` has
//!    reached the earliest moment a token manager with the default
//!    [`RefreshTiming`] may refresh it: `skew` plus the whole `jitter`
//!    before expiry, each capped by the lifetime as the manager caps them;
//! 4. **fresh** otherwise.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oauth2_adapters::manager::RefreshTiming;
use oauth2_adapters::store::TokenRecord;
use oauth2_adapters::DisplayTime;

use crate::cli::Status;

/// Providers whose tokens are renewed with client credentials, without a
/// refresh token or a user.
const REACQUIRING_PROVIDERS: &[&str] = &["partner"];

/// The times and facts the status depends on (no secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// When the access token was issued (ms since the Unix epoch).
    pub issued_at_ms: u64,
    /// When the access token expires, if known.
    pub expires_at_ms: Option<u64>,
    /// When the refresh token expires, if known.
    pub refresh_expires_at_ms: Option<u64>,
    /// Whether there is a refresh token.
    pub has_refresh_token: bool,
}

impl Lifetimes {
    /// The lifetimes of a decoded record.
    pub fn of(record: &TokenRecord) -> Self {
        Self {
            issued_at_ms: record.issued_at_ms,
            expires_at_ms: record.expires_at_ms,
            refresh_expires_at_ms: record.refresh_expires_at_ms,
            has_refresh_token: record.refresh_token.is_some(),
        }
    }

    /// The clear-text expiry fields of a record that cannot be decoded
    /// (they are never encrypted). Only numbers are read; nothing else of
    /// the text is kept.
    pub fn from_raw(record: &str) -> Option<(Option<u64>, Option<u64>)> {
        let value: serde_json::Value = serde_json::from_str(record).ok()?;
        let field = |name: &str| value.get(name).and_then(serde_json::Value::as_u64);
        Some((field("expires_at_ms"), field("refresh_expires_at_ms")))
    }

    /// The status at `now` of a token of `provider`.
    pub fn status(&self, provider: &str, now: SystemTime) -> Status {
        let now_ms = unix_ms(now);
        let reacquires = REACQUIRING_PROVIDERS.contains(&provider);
        if !reacquires && self.refresh_expires_at_ms.is_some_and(|at| at <= now_ms) {
            return Status::Reauth;
        }
        let Some(expires_at_ms) = self.expires_at_ms else {
            return Status::Fresh;
        };
        if expires_at_ms <= now_ms {
            return if self.has_refresh_token || reacquires {
                Status::Due
            } else {
                Status::Reauth
            };
        }
        let earliest =
            RefreshTiming::default().refresh_at(time(self.issued_at_ms), time(expires_at_ms), 1.0);
        if now >= earliest {
            Status::Due
        } else {
            Status::Fresh
        }
    }
}

/// Milliseconds since the Unix epoch as a time.
pub fn time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// A time as milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// RFC 3339, UTC, whole seconds.
pub fn absolute(ms: u64) -> String {
    DisplayTime(time(ms)).to_string()
}

/// Seconds from `now` to `ms` (negative: in the past).
pub fn seconds_left(ms: u64, now: SystemTime) -> i64 {
    let now_ms = i128::from(unix_ms(now));
    let diff = (i128::from(ms) - now_ms).div_euclid(1000);
    i64::try_from(diff).unwrap_or(if diff < 0 { i64::MIN } else { i64::MAX })
}

/// "in 3 min" or "expired 2 h ago".
pub fn relative(ms: u64, now: SystemTime) -> String {
    let secs = seconds_left(ms, now);
    if secs > 0 {
        format!("in {}", span(secs.unsigned_abs()))
    } else {
        format!("expired {} ago", span(secs.unsigned_abs()))
    }
}

/// A duration in one rounded unit: seconds, minutes, hours or days.
fn span(secs: u64) -> String {
    match secs {
        0..90 => format!("{secs} s"),
        90..5_400 => format!("{} min", (secs + 30) / 60),
        5_400..172_800 => format!("{} h", (secs + 1_800) / 3_600),
        _ => format!("{} d", (secs + 43_200) / 86_400),
    }
}

/// "2025-06-01T10:00:00Z (in 3 min)", or "never" without an expiry.
pub fn expiry(ms: Option<u64>, now: SystemTime) -> String {
    match ms {
        Some(ms) => format!("{} ({})", absolute(ms), relative(ms, now)),
        None => "never".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_750_000_000_000;

    fn now() -> SystemTime {
        time(NOW)
    }

    fn lifetimes(issued: i64, expires: Option<i64>, refresh: Option<i64>, rt: bool) -> Lifetimes {
        let at = |secs: i64| NOW.checked_add_signed(secs * 1000).unwrap();
        Lifetimes {
            issued_at_ms: at(issued),
            expires_at_ms: expires.map(at),
            refresh_expires_at_ms: refresh.map(at),
            has_refresh_token: rt,
        }
    }

    #[test]
    fn statuses_follow_the_rule() {
        let one_hour = |left: i64, rt| lifetimes(left - 3600, Some(left), None, rt);
        assert_eq!(one_hour(3000, true).status("hike", now()), Status::Fresh);
        // Default timing: 60 s skew + up to 30 s jitter before expiry.
        assert_eq!(one_hour(91, true).status("hike", now()), Status::Fresh);
        assert_eq!(one_hour(89, true).status("hike", now()), Status::Due);
        assert_eq!(one_hour(-10, true).status("hike", now()), Status::Due);
        assert_eq!(one_hour(-10, false).status("hike", now()), Status::Reauth);
        assert_eq!(one_hour(-10, false).status("partner", now()), Status::Due);
        // Not expired, but the refresh token has.
        let spent = lifetimes(-100, Some(3000), Some(-1), true);
        assert_eq!(spent.status("hike", now()), Status::Reauth);
        assert_eq!(spent.status("partner", now()), Status::Fresh);
        // No expiry at all.
        assert_eq!(
            lifetimes(-100, None, None, false).status("x", now()),
            Status::Fresh
        );
        // A 60 s token is due from half its life (minus 10 % jitter).
        let short = lifetimes(-20, Some(40), None, true);
        assert_eq!(short.status("hike", now()), Status::Fresh);
        let short = lifetimes(-25, Some(35), None, true);
        assert_eq!(short.status("hike", now()), Status::Due);
    }

    #[test]
    fn times_are_shown_absolute_and_relative() {
        assert_eq!(relative(NOW + 180_000, now()), "in 3 min");
        assert_eq!(relative(NOW - 7_200_000, now()), "expired 2 h ago");
        assert_eq!(relative(NOW + 45_000, now()), "in 45 s");
        assert_eq!(relative(NOW, now()), "expired 0 s ago");
        assert_eq!(relative(NOW + 3 * 86_400_000, now()), "in 3 d");
        assert_eq!(absolute(0), "1970-01-01T00:00:00Z");
        assert_eq!(expiry(None, now()), "never");
        assert_eq!(seconds_left(NOW - 1500, now()), -2);
        assert_eq!(
            seconds_left(u64::MAX, time(0)),
            i64::try_from(u64::MAX / 1000).unwrap()
        );
    }

    #[test]
    fn raw_records_give_only_their_expiries() {
        let raw =
            r#"{"access_token":"enc:v1:x:AAAA","expires_at_ms":5,"refresh_expires_at_ms":null}"#;
        assert_eq!(Lifetimes::from_raw(raw), Some((Some(5), None)));
        assert_eq!(Lifetimes::from_raw("not json"), None);
    }
}
