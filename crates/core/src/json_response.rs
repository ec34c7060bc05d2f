//! Reading a JSON token response by hand, for adapters whose wire format
//! the `oauth2` crate cannot speak (HyperSKU's camelCase, the partner's JSON
//! request). Every adapter maps statuses and bodies to errors the same way.

use serde::de::DeserializeOwned;
use serde_json::Value;

use std::fmt;

use crate::error::Error;
use crate::http::HttpResponse;
use crate::redact::{excerpt, field_excerpt};
use crate::token::ProviderId;
use crate::wire::{describe_json_error, error_code, invalid_response, parse_json_document};

/// A response from a token endpoint, with what is needed to describe a
/// failure without leaking a secret.
///
/// Its `Debug` shows the provider and the status only: neither the body
/// nor the known secrets.
#[derive(Clone, Copy)]
pub struct JsonResponse<'a> {
    provider: &'a ProviderId,
    response: &'a HttpResponse,
    known_secrets: &'a [&'a str],
}

impl<'a> JsonResponse<'a> {
    /// Wraps a response; `known_secrets` (what was sent) are scrubbed from
    /// every excerpt.
    pub fn new(
        provider: &'a ProviderId,
        response: &'a HttpResponse,
        known_secrets: &'a [&'a str],
    ) -> Self {
        Self {
            provider,
            response,
            known_secrets,
        }
    }

    /// The body, as received.
    pub fn body(&self) -> &[u8] {
        &self.response.body
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.response.status
    }

    /// The response's `Retry-After` delay (seconds or an HTTP-date), when given.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.response.retry_after()
    }

    /// Parses the body as JSON.
    ///
    /// A redirect is always an [`Error::HttpStatus`] (token endpoints must
    /// not redirect); an unparseable body, or one where an object repeats a
    /// key ([`check_json_document`](crate::adapter::wire::check_json_document)), is an [`Error::HttpStatus`] on a
    /// non-2xx status and an [`Error::InvalidResponse`] on a 2xx one.
    pub fn json(&self) -> Result<Value, Error> {
        if (300..400).contains(&self.response.status) {
            return Err(self.status_error());
        }
        let unusable = |reason: String| {
            if self.response.is_success() {
                self.invalid(reason)
            } else {
                self.status_error()
            }
        };
        parse_json_document(&self.response.body).map_err(unusable)
    }

    /// Decodes a JSON value into `T`, describing failures without quoting values.
    pub fn decode<T: DeserializeOwned>(&self, value: Value) -> Result<T, Error> {
        serde_json::from_value(value).map_err(|err| self.invalid(describe_json_error(&err)))
    }

    /// An RFC 6749 §5.2 error object (`{"error": "...", ...}`), if the body
    /// is one: an object whose `error` is a non-empty string. An unknown
    /// code is scrubbed and cut ([`error_code`]).
    pub fn oauth_error(&self, value: &Value) -> Option<Error> {
        let code = value
            .get("error")?
            .as_str()
            .filter(|code| !code.is_empty())?;
        Some(Error::Provider {
            provider: self.provider.clone(),
            code: error_code(code, self.known_secrets, &self.response.body),
            provider_code: None,
            description: self.text_field(value, "error_description"),
            status: Some(self.response.status),
            retry_after: self.response.retry_after(),
        })
    }

    /// A string field of `value`, scrubbed of the known secrets and of the
    /// body's own credential values, as an [`excerpt`].
    pub fn text_field(&self, value: &Value, field: &str) -> Option<String> {
        let text = value.get(field).and_then(Value::as_str)?;
        Some(field_excerpt(text, self.known_secrets, &self.response.body))
    }

    /// True when the `Content-Type` is `application/json` (parameters
    /// such as a charset allowed), or absent.
    pub fn is_json_content_type(&self) -> bool {
        let Some(value) = self.response.headers.get(http::header::CONTENT_TYPE) else {
            return true;
        };
        value.to_str().is_ok_and(|value| {
            value
                .split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
        })
    }

    /// [`Error::HttpStatus`] for this response.
    pub fn status_error(&self) -> Error {
        Error::HttpStatus {
            provider: self.provider.clone(),
            status: self.response.status,
            retry_after: self.response.retry_after(),
            excerpt: excerpt(&self.response.body, self.known_secrets),
        }
    }

    /// [`Error::InvalidResponse`] for this response.
    pub fn invalid(&self, reason: impl Into<String>) -> Error {
        invalid_response(
            self.provider,
            reason,
            &self.response.body,
            self.known_secrets,
        )
    }

    /// The error for a body that is neither a token nor a known error shape.
    pub fn unexpected(&self, reason: impl Into<String>) -> Error {
        if self.response.is_success() {
            self.invalid(reason)
        } else {
            self.status_error()
        }
    }
}

impl fmt::Debug for JsonResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonResponse")
            .field("provider", self.provider)
            .field("status", &self.response.status)
            .field("body_bytes", &self.response.body.len())
            .field("known_secrets", &self.known_secrets.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::error::ErrorCode;

    static P: ProviderId = ProviderId::from_static("p");

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: http::HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn html_error_pages_are_status_errors() {
        let r = response(502, "<html>502 Bad Gateway</html>");
        let err = JsonResponse::new(&P, &r, &[]).json().unwrap_err();
        assert!(matches!(err, Error::HttpStatus { status: 502, .. }));
        assert!(err.is_retryable());
    }

    #[test]
    fn a_2xx_non_json_body_is_an_invalid_response() {
        let r = response(200, "{\"access_token\": \"");
        let err = JsonResponse::new(&P, &r, &[]).json().unwrap_err();
        assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
    }

    #[test]
    fn redirects_are_status_errors_even_with_json() {
        let r = response(302, "{}");
        let err = JsonResponse::new(&P, &r, &[]).json().unwrap_err();
        assert!(matches!(err, Error::HttpStatus { status: 302, .. }));
    }

    #[test]
    fn repeated_keys_are_unusable_bodies() {
        let r = response(200, r#"{"access_token":"a","access_token":"b"}"#);
        let err = JsonResponse::new(&P, &r, &[]).json().unwrap_err();
        assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
        let r = response(400, r#"{"error":"a","error":"b"}"#);
        let err = JsonResponse::new(&P, &r, &[]).json().unwrap_err();
        assert!(
            matches!(err, Error::HttpStatus { status: 400, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_codes_are_scrubbed_and_debug_shows_no_secret() {
        let r = response(400, r#"{"error":"bad-abc123secret"}"#);
        let json = JsonResponse::new(&P, &r, &["abc123secret"]);
        let err = json.oauth_error(&json.json().unwrap()).unwrap();
        assert!(
            !format!("{err} {err:?}").contains("abc123secret"),
            "{err:?}"
        );
        assert!(!format!("{json:?}").contains("abc123secret"));
        let r = response(400, r#"{"error":""}"#);
        let json = JsonResponse::new(&P, &r, &[]);
        assert!(json.oauth_error(&json.json().unwrap()).is_none());
    }

    #[test]
    fn oauth_errors_are_provider_errors_with_scrubbed_descriptions() {
        let r = response(
            400,
            r#"{"error":"invalid_grant","error_description":"code abc123secret spent"}"#,
        );
        let json = JsonResponse::new(&P, &r, &["abc123secret"]);
        let value = json.json().unwrap();
        let err = json.oauth_error(&value).unwrap();
        assert!(matches!(
            &err,
            Error::Provider {
                code: ErrorCode::InvalidGrant,
                status: Some(400),
                ..
            }
        ));
        assert!(!err.to_string().contains("abc123secret"), "{err}");
    }
}
