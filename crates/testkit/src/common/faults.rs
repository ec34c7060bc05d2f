//! One-shot misbehaviours and persistent response-shape switches.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

/// A one-shot misbehaviour applied to the next token-endpoint request.
///
/// Faults are queued FIFO with [`MockServer::push_fault`](crate::MockServer::push_fault);
/// each token request pops at most one. Authorize requests never pop a fault.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and a small JSON error body in the provider's
    /// error shape. The grant is not processed (the code or refresh token
    /// stays usable).
    Status(u16),
    /// Answer with exactly this status, content type and body (e.g. an HTML
    /// 502 page from a proxy). The grant is not processed.
    StatusWithBody {
        /// The HTTP status.
        status: u16,
        /// The `Content-Type` header value.
        content_type: String,
        /// The body, sent as is.
        body: String,
    },
    /// Answer with this status (e.g. 429 or 503), a `Retry-After: seconds`
    /// header and a plain-text body with the status' reason phrase (e.g.
    /// `Too Many Requests`), as a rate limiter or gateway in front of the
    /// provider would. The grant is not processed.
    RetryAfter {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` value, in seconds.
        seconds: u64,
    },
    /// Like [`Fault::RetryAfter`], but the header is an HTTP-date (RFC 9110
    /// §10.2.3, IMF-fixdate such as `Wed, 21 Oct 2015 07:28:00 GMT`) `after`
    /// from now by the system clock (not [`MockConfig::clock`](crate::MockConfig::clock):
    /// clients compare it with their own wall clock), rounded up to a whole
    /// second. The grant is not processed.
    RetryAfterDate {
        /// The HTTP status.
        status: u16,
        /// How far in the future the date is.
        after: Duration,
    },
    /// Sleep this long (real time), then answer normally (the grant is processed).
    Delay(Duration),
    /// Answer 200 with a truncated JSON body (`{"access_token": "`).
    /// The grant is not processed.
    MalformedBody,
    /// Answer `302 Found` with this `Location`. The grant is not processed.
    Redirect(String),
    /// Process the grant (a code or refresh token is spent, a token is
    /// issued), send the headers with the full `Content-Length`, then half
    /// the body, then drop the connection: the client sees a connection
    /// reset mid-body and never learns the new token.
    ResetMidBody,
    /// Process the grant, send the headers at once, then trickle the body
    /// out in small pieces spread evenly over this duration (real time).
    SlowBody(Duration),
    /// Process the grant, then wait this long (real time) before sending
    /// anything: a client whose timeout is shorter gives up before the
    /// headers, although the grant was spent.
    StallAfterProcessing(Duration),
}

impl Fault {
    /// True for the faults that let the grant be processed and then damage
    /// the response on the wire (see `wire_faults`).
    pub(crate) fn is_wire_fault(&self) -> bool {
        matches!(
            self,
            Self::ResetMidBody | Self::SlowBody(_) | Self::StallAfterProcessing(_)
        )
    }
}

/// Persistent response-shape switches (all off by default), set with
/// [`MockServer::set_style`](crate::MockServer::set_style).
///
/// ```
/// use oauth2_adapters::testkit::ResponseStyle;
/// let style = ResponseStyle { string_numbers: true, ..ResponseStyle::default() };
/// assert!(!style.envelope);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResponseStyle {
    /// HyperSKU only: wrap success bodies as
    /// `{"code": 200, "msg": "success", "data": {...}}` (error bodies are
    /// always `{"code": 60025, "msg": "...", "data": null}`-shaped).
    pub envelope: bool,
    /// Send numeric fields (`expiresIn`, `refreshTokenExpireIn`,
    /// `expires_in`, `expires`) as JSON strings, e.g. `"3600"`.
    pub string_numbers: bool,
    /// Partner: omit `expires_in` (the client must read the JWT `exp`).
    /// Hike: omit `expires_in` (the client falls back to `expires`).
    pub omit_expires_in: bool,
}

impl ResponseStyle {
    /// `n` as a JSON number, or as a JSON string when `string_numbers` is set.
    pub(crate) fn number(&self, n: u64) -> serde_json::Value {
        if self.string_numbers {
            serde_json::Value::String(n.to_string())
        } else {
            serde_json::Value::from(n)
        }
    }
}

/// Applies `fault` (if any). `Some(response)` means "answer this and do not
/// process the grant"; `None` means "process the request normally" (after
/// the delay, for [`Fault::Delay`]). `error_body` builds the provider's
/// JSON error body for a status.
pub(crate) async fn apply(
    fault: Option<Fault>,
    error_body: fn(u16) -> serde_json::Value,
) -> Option<Response> {
    let fault = fault?;
    tracing::debug!(?fault, "mock: applying fault");
    match fault {
        Fault::Status(status) => Some(json_error(status, error_body)),
        Fault::StatusWithBody {
            status,
            content_type,
            body,
        } => {
            let mut response = (status_code(status), body).into_response();
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            Some(response)
        }
        Fault::RetryAfter { status, seconds } => {
            Some(retry_after(status, HeaderValue::from(seconds)))
        }
        Fault::RetryAfterDate { status, after } => {
            let date = http_date_after(SystemTime::now(), after);
            let value = HeaderValue::from_str(&date).unwrap_or(HeaderValue::from_static("0"));
            Some(retry_after(status, value))
        }
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
        Fault::MalformedBody => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"access_token": ""#,
            )
                .into_response(),
        ),
        Fault::Redirect(location) => {
            let mut response = StatusCode::FOUND.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            Some(response)
        }
        // Taken by the wire-fault layer before the handler runs.
        Fault::ResetMidBody | Fault::SlowBody(_) | Fault::StallAfterProcessing(_) => None,
    }
}

/// `status` with `Retry-After: value` and the reason phrase as a plain-text body.
fn retry_after(status: u16, value: HeaderValue) -> Response {
    let code = status_code(status);
    let reason = code.canonical_reason().unwrap_or("Error");
    let mut response = (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        reason,
    )
        .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, value);
    response
}

/// The IMF-fixdate of `now + after`, rounded up to a whole second so the
/// date is never earlier than asked (an HTTP-date has no fractions).
/// Saturates at the latest date `httpdate` can write (9999-12-31).
pub(crate) fn http_date_after(now: SystemTime, after: Duration) -> String {
    const LATEST: Duration = Duration::from_secs(253_402_300_799);
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let target = since_epoch.saturating_add(after);
    let whole = target
        .as_secs()
        .saturating_add(u64::from(target.subsec_nanos() > 0));
    let secs = Duration::from_secs(whole).min(LATEST);
    httpdate::fmt_http_date(UNIX_EPOCH + secs)
}

fn json_error(status: u16, error_body: fn(u16) -> serde_json::Value) -> Response {
    super::http::json_response(status_code(status), &error_body(status))
}

/// `status` as a [`StatusCode`], 500 if it is not a valid one.
fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The RFC 6749 §5.2-style error body used by Hike and the partner for a
/// fault status.
pub(crate) fn rfc6749_fault_body(status: u16) -> serde_json::Value {
    let error = match status {
        400 => "invalid_request",
        401 => "invalid_client",
        429 | 503 => "temporarily_unavailable",
        _ => "server_error",
    };
    serde_json::json!({
        "error": error,
        "error_description": format!("mock fault: HTTP {status}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_round_up_and_saturate() {
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        let example = 1_445_412_480; // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(
            http_date_after(at(example), Duration::from_secs(90)),
            "Wed, 21 Oct 2015 07:29:30 GMT"
        );
        assert_eq!(
            http_date_after(at(example) + Duration::from_millis(1), Duration::ZERO),
            "Wed, 21 Oct 2015 07:28:01 GMT"
        );
        assert_eq!(
            http_date_after(at(example), Duration::MAX),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }
}
