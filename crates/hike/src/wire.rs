//! Hike's one wire quirk: an absolute `expires` beside `expires_in`.

use std::time::SystemTime;

use oauth2_adapters_core::adapter::wire::{instant_from_epoch_secs, reconcile_expiry};
use oauth2_adapters_core::Token;
use serde_json::Value;

/// The name of Hike's absolute expiry field (epoch seconds).
pub(crate) const ABSOLUTE_EXPIRES_FIELD: &str = "expires";

/// Settles the access token's expiry from `expires_in` (already parsed into
/// `expires_at`) and the absolute `expires` (left in `extra`).
///
/// `expires_in` wins: it does not depend on our clock agreeing with Hike's,
/// and the documentation's own examples show `expires` values that are
/// decades off from `expires_in`. `expires` is used only when `expires_in`
/// is missing or zero and `expires` lies in the future; the field itself
/// stays in `extra` for callers.
pub(crate) fn settle_expiry(token: &mut Token, now: SystemTime) {
    let absolute = token
        .extra
        .get(ABSOLUTE_EXPIRES_FIELD)
        .and_then(number)
        .and_then(instant_from_epoch_secs);
    token.expires_at = reconcile_expiry(&token.provider, token.expires_at, absolute, now);
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use oauth2_adapters_core::SecretString;

    use super::*;
    use crate::PROVIDER_ID;

    const NOW: u64 = 1_800_000_000;

    fn token(expires_in: Option<u64>, expires: Option<Value>) -> Token {
        let now = UNIX_EPOCH + Duration::from_secs(NOW);
        let mut token = Token::new(PROVIDER_ID.clone(), SecretString::from("a"), now);
        token.expires_at = expires_in.map(|s| now + Duration::from_secs(s));
        if let Some(expires) = expires {
            token.extra.insert(ABSOLUTE_EXPIRES_FIELD.into(), expires);
        }
        token
    }

    fn settled(mut token: Token) -> Option<u64> {
        settle_expiry(&mut token, UNIX_EPOCH + Duration::from_secs(NOW));
        token
            .expires_at
            .map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
    }

    #[test]
    fn expires_in_wins_over_a_disagreeing_expires() {
        // The documentation's own example: expires is in 2013.
        assert_eq!(
            settled(token(Some(604_800), Some(1_387_145_621.into()))),
            Some(NOW + 604_800)
        );
    }

    #[test]
    fn expires_is_the_fallback_when_expires_in_is_missing() {
        assert_eq!(
            settled(token(None, Some((NOW + 60).into()))),
            Some(NOW + 60)
        );
        assert_eq!(
            settled(token(None, Some(Value::String(format!("{}", NOW + 60))))),
            Some(NOW + 60)
        );
    }

    #[test]
    fn a_past_or_malformed_expires_alone_means_unknown() {
        assert_eq!(settled(token(None, Some((NOW - 60).into()))), None);
        assert_eq!(settled(token(None, Some("soon".into()))), None);
        assert_eq!(settled(token(None, None)), None);
    }
}
