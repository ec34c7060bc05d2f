//! Recording every request a mock receives, in a snapshot-friendly shape.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;

use super::server::Shared;

/// The only headers kept in a [`RecordedRequest`], so recordings do not
/// depend on the port, the client library or the body length.
const RECORDED_HEADERS: [&str; 3] = ["accept", "authorization", "content-type"];

/// Largest request body a mock accepts (token requests are tiny).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What [`RecordedRequest::redacted`] puts in place of an `authorization`
/// header that does not contain a placeholder.
pub const REDACTED: &str = "[redacted]";

/// One request the mock received (every request, authorize and token
/// endpoints alike).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    /// The HTTP method, e.g. `"POST"`.
    pub method: String,
    /// The path, e.g. `"/oauth/token"`.
    pub path: String,
    /// The raw query string (without `?`), if any.
    pub query: Option<String>,
    /// Lower-cased header names with their values, sorted by name. Only
    /// `accept`, `authorization` and `content-type` are kept, so recordings
    /// are stable (no host/port, user agent or content length).
    pub headers: Vec<(String, String)>,
    /// The body, decoded as UTF-8 (lossily).
    pub body: String,
}

impl RecordedRequest {
    pub(crate) fn from_parts(parts: &http::request::Parts, body: &[u8]) -> Self {
        let mut headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter(|(name, _)| RECORDED_HEADERS.contains(&name.as_str()))
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        Self {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers,
            body: String::from_utf8_lossy(body).into_owned(),
        }
    }

    /// A copy with every occurrence of each `(secret, placeholder)` replaced
    /// in the query, the header values and the body. The
    /// `application/x-www-form-urlencoded` encoding of each secret is
    /// replaced too (so a redirect URI inside a form body is found). Empty
    /// secrets are ignored.
    ///
    /// The `authorization` header value is always replaced by `"[redacted]"`
    /// unless it contains one of the placeholders after replacement (e.g.
    /// `Bearer [access-token]`).
    pub fn redacted(&self, replacements: &[(&str, &str)]) -> RecordedRequest {
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| {
                let mut value = replace_all(value, replacements);
                if name == "authorization"
                    && !replacements.iter().any(|(_, placeholder)| {
                        !placeholder.is_empty() && value.contains(placeholder)
                    })
                {
                    value = REDACTED.to_owned();
                }
                (name.clone(), value)
            })
            .collect();
        RecordedRequest {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.as_deref().map(|q| replace_all(q, replacements)),
            headers,
            body: replace_all(&self.body, replacements),
        }
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json_body(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The body decoded as `application/x-www-form-urlencoded` pairs, in order.
    pub fn form_body(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }

    /// The first value of the header `name` (lower-case), if recorded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn replace_all(text: &str, replacements: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (secret, placeholder) in replacements {
        if secret.is_empty() {
            continue;
        }
        out = out.replace(secret, placeholder);
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        if encoded != *secret {
            out = out.replace(&encoded, placeholder);
        }
    }
    out
}

/// Middleware: buffers the body, records the request, then passes it on.
pub(crate) async fn record(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            shared.record(RecordedRequest::from_parts(&parts, &bytes));
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(err) => {
            shared.record(RecordedRequest::from_parts(&parts, b""));
            tracing::debug!(%err, "mock: request body rejected");
            (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()
        }
    }
}
