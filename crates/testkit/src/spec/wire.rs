//! Token answers and errors shaped as the spec's `[response]` says.

use std::time::Duration;

use axum::response::Response;
use http::{header, HeaderValue, StatusCode};
use oauth2_adapters_core::{ClientAuthMethod, ProviderSpec, TimeUnit};
use serde_json::{Map, Value};

use super::{SpecShared, SUBJECT};
use crate::common::http::{json_response, unix_secs};

/// What a grant issued, for the answer.
pub(super) struct Issued<'a> {
    pub(super) access_token: &'a str,
    /// `None`: the answer carries no refresh token.
    pub(super) refresh_token: Option<&'a str>,
    /// Space-separated, as the grants store it.
    pub(super) scope: &'a str,
}

/// The first alternative of a response path (`a.b|c` → `a.b`).
fn first(path: &str) -> &str {
    path.split('|').next().unwrap_or(path)
}

/// Sets `value` at the dotted `path` of `object`, making the objects on
/// the way (a non-object in the way is replaced).
pub(super) fn set_path(object: &mut Map<String, Value>, path: &str, value: Value) {
    let mut names = path.split('.').peekable();
    let mut current = object;
    while let Some(name) = names.next() {
        if names.peek().is_none() {
            current.insert(name.to_owned(), value);
            return;
        }
        let slot = current
            .entry(name.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else {
            return;
        };
        current = next;
    }
}

/// `duration` as a whole number of `unit`s (rounded down).
fn in_unit(duration: Duration, unit: TimeUnit) -> u64 {
    let per_unit = unit.duration().as_millis().max(1);
    u64::try_from(duration.as_millis() / per_unit).unwrap_or(u64::MAX)
}

/// The 200 answer for `issued`.
pub(super) fn token_answer(s: &SpecShared, issued: &Issued<'_>) -> Response {
    let spec = &s.spec.response;
    let config = s.config();
    let style = s.shared.style();
    let mut token = s.lock().response_fields.clone();
    set_path(
        &mut token,
        first(&spec.access_token),
        Value::from(issued.access_token),
    );
    let token_type = spec
        .bearer_token_types
        .first()
        .map_or("Bearer", String::as_str);
    set_path(&mut token, first(&spec.token_type), Value::from(token_type));
    let lifetime = config.access_token_lifetime;
    if !style.omit_expires_in {
        let n = in_unit(lifetime, spec.expires_in_unit);
        set_path(&mut token, first(&spec.expires_in), style.number(n));
    }
    if let Some(path) = &spec.expires_at {
        let at = Duration::from_secs(unix_secs(s.shared.now())).saturating_add(lifetime);
        let n = in_unit(at, spec.expires_at_unit);
        set_path(&mut token, first(path), style.number(n));
    }
    if let Some(refresh) = issued.refresh_token {
        set_path(&mut token, first(&spec.refresh_token), Value::from(refresh));
        if let Some(path) = &spec.refresh_expires_in {
            let n = in_unit(config.refresh_token_lifetime, spec.expires_in_unit);
            set_path(&mut token, first(path), style.number(n));
        }
    }
    if !issued.scope.is_empty() {
        let separator = spec.scope_separator.as_deref().unwrap_or(" ");
        let scope = issued.scope.split(' ').collect::<Vec<_>>().join(separator);
        set_path(&mut token, first(&spec.scope), Value::from(scope));
    }
    if let Some(path) = &spec.subject {
        set_path(&mut token, first(path), Value::from(SUBJECT));
    }
    let body = match &spec.envelope {
        Some(envelope) => {
            let mut body = Map::new();
            let code = envelope.success.first().copied().unwrap_or(200);
            set_path(&mut body, first(&envelope.code), Value::from(code));
            if let Some(message) = envelope.message.first() {
                set_path(&mut body, first(message), Value::from("success"));
            }
            set_path(&mut body, first(&envelope.data), Value::Object(token));
            body
        }
        None => token,
    };
    json_response(StatusCode::OK, &Value::Object(body))
}

/// An error answer for the OAuth error `code`: an RFC 6749 object whose
/// `error` is the first provider code the spec maps to `code` (else
/// `code`), or, with an envelope and a numeric code mapped to `code`, an
/// envelope with that code. `invalid_client` of a Basic spec carries
/// `WWW-Authenticate: Basic` (RFC 6749 §5.2).
pub(super) fn error(
    spec: &ProviderSpec,
    status: StatusCode,
    code: &str,
    description: &str,
) -> Response {
    let response = &spec.response;
    let mut mapped = response
        .error_codes
        .iter()
        .filter(|(_, oauth)| oauth.as_str() == code)
        .map(|(provider, _)| provider.as_str());
    let numeric = response
        .error_codes
        .iter()
        .filter(|(_, oauth)| oauth.as_str() == code)
        .find_map(|(provider, _)| provider.parse::<i64>().ok());
    let body = match (&response.envelope, numeric) {
        (Some(envelope), Some(numeric)) => {
            let mut body = Map::new();
            set_path(&mut body, first(&envelope.code), Value::from(numeric));
            if let Some(message) = envelope.message.first() {
                set_path(&mut body, first(message), Value::from(description));
            }
            set_path(&mut body, first(&envelope.data), Value::Null);
            body
        }
        _ => {
            let mut body = Map::new();
            let error = mapped.next().unwrap_or(code);
            body.insert("error".into(), Value::from(error));
            body.insert("error_description".into(), Value::from(description));
            body
        }
    };
    let mut answer = json_response(status, &Value::Object(body));
    if code == "invalid_client" && spec.token.client_auth == ClientAuthMethod::ClientSecretBasic {
        let challenge = format!("Basic realm=\"{}\"", spec.id);
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            answer.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_make_nested_objects() {
        let mut object = Map::new();
        set_path(&mut object, "a", json!(1));
        set_path(&mut object, "team.id", json!("T1"));
        set_path(&mut object, "team.name", json!("n"));
        set_path(&mut object, "a.b", json!(2));
        assert_eq!(
            Value::Object(object),
            json!({"a": {"b": 2}, "team": {"id": "T1", "name": "n"}})
        );
    }

    #[test]
    fn lifetimes_are_written_in_the_spec_unit() {
        let hour = Duration::from_secs(3600);
        assert_eq!(in_unit(hour, TimeUnit::Seconds), 3600);
        assert_eq!(in_unit(hour, TimeUnit::Milliseconds), 3_600_000);
        assert_eq!(in_unit(hour, TimeUnit::Minutes), 60);
        assert_eq!(first("accessToken|access_token"), "accessToken");
    }
}
