//! The token response of a standard provider, read leniently.

use std::time::Duration;

use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, RefreshToken, Scope};
use serde::{Deserialize, Deserializer, Serialize};

use crate::wire::{optional_number, optional_scopes};

/// A token response (RFC 6749 §5.1) read leniently: `expires_in` may be a
/// numeric string, `scope` may be a list, a missing `token_type` means
/// `Bearer`, and every other field is kept in `extra`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LenientTokenResponse {
    pub(crate) access_token: AccessToken,
    #[serde(default = "bearer", deserialize_with = "token_type")]
    pub(crate) token_type: BasicTokenType,
    #[serde(default, deserialize_with = "optional_number")]
    pub(crate) expires_in: Option<f64>,
    #[serde(default)]
    pub(crate) refresh_token: Option<RefreshToken>,
    #[serde(default, rename = "scope", deserialize_with = "scopes")]
    pub(crate) scopes: Option<Vec<Scope>>,
    /// Every other field of the response.
    #[serde(flatten)]
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
}

impl oauth2::TokenResponse for LenientTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<Duration> {
        self.expires_in
            .filter(|secs| secs.is_finite() && *secs >= 0.0 && *secs < 1e12)
            .map(Duration::from_secs_f64)
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

fn token_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BasicTokenType, D::Error> {
    let value = Option::<String>::deserialize(deserializer)?;
    Ok(
        match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("bearer") => BasicTokenType::Bearer,
            Some("mac") => BasicTokenType::Mac,
            Some(_) => BasicTokenType::Extension(value.unwrap_or_default()),
        },
    )
}

fn scopes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<Scope>>, D::Error> {
    Ok(optional_scopes(deserializer)?.map(|list| list.into_iter().map(Scope::new).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth2::TokenResponse;

    fn parse(json: &str) -> LenientTokenResponse {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_hike_response_keeps_its_absolute_expires() {
        let r = parse(
            r#"{"access_token":"a","token_type":"Bearer","expires":1387145621,"expires_in":604800,"refresh_token":"r"}"#,
        );
        assert_eq!(r.expires_in(), Some(Duration::from_secs(604_800)));
        assert_eq!(r.extra.get("expires"), Some(&serde_json::json!(1387145621)));
        assert!(r.refresh_token().is_some());
    }

    #[test]
    fn numeric_strings_lists_and_missing_type_are_accepted() {
        let r = parse(r#"{"access_token":"a","expires_in":"3600","scope":["x","y"]}"#);
        assert_eq!(r.expires_in, Some(3600.0));
        assert_eq!(r.token_type, BasicTokenType::Bearer);
        assert_eq!(r.scopes().map(Vec::len), Some(2));
        let r = parse(r#"{"access_token":"a","token_type":"bearer","scope":"read write"}"#);
        assert_eq!(r.scopes().map(Vec::len), Some(2));
    }

    #[test]
    fn a_missing_access_token_is_an_error() {
        assert!(
            serde_json::from_str::<LenientTokenResponse>(r#"{"token_type":"Bearer"}"#).is_err()
        );
    }
}
