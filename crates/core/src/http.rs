//! The one HTTP client used for token endpoints, and its bridge to the `oauth2` crate.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use url::Url;

use crate::error::{Error, Result, TransportErrorKind};
use crate::token::ProviderId;

mod config;

pub use config::HttpConfig;

/// A `reqwest` client configured for token endpoints: redirects are never
/// followed (a token endpoint that redirects is an error, and following it
/// could send credentials elsewhere), timeouts are set and bodies are capped.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    max_response_bytes: usize,
    timeout: Duration,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("max_response_bytes", &self.max_response_bytes)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A response read in full (within the size cap). Its `Debug` shows the
/// status, the header names and the body's length, never the body (it may
/// hold tokens).
#[derive(Clone)]
pub struct HttpResponse {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl HttpResponse {
    /// A response made from its parts (a canned answer, e.g. for the fuzz
    /// targets): `content_type` becomes the `Content-Type` header when it is
    /// a valid header value.
    pub fn from_parts(status: u16, content_type: Option<&str>, body: &[u8]) -> Self {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = content_type.and_then(|ct| http::HeaderValue::from_str(ct).ok()) {
            headers.insert(http::header::CONTENT_TYPE, value);
        }
        Self {
            status,
            headers,
            body: Bytes::copy_from_slice(body),
        }
    }

    /// The same response as the `oauth2` crate's type.
    pub(crate) fn into_oauth2(self) -> std::result::Result<oauth2::HttpResponse, TransportFailure> {
        let mut builder = http::Response::builder().status(self.status);
        if let Some(headers) = builder.headers_mut() {
            *headers = self.headers;
        }
        builder
            .body(self.body.to_vec())
            .map_err(|_| TransportFailure {
                kind: TransportErrorKind::Other,
                source: None,
            })
    }

    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `Retry-After` header as a delay from now (RFC 9110 §10.2.3):
    /// delay-seconds (saturating at `u64::MAX` seconds), or an HTTP-date
    /// minus the system time (zero for a date in the past). Anything else,
    /// or no header, is `None`; only the first header counts.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }
}

/// The `Retry-After` header of a response as a delay from now (system
/// time). RFC 9110 §10.2.3 allows two forms:
///
/// - delay-seconds (`120`): that many seconds; a number too large for a
///   `u64` saturates at `u64::MAX` seconds (it is still "not soon");
/// - an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`, or the obsolete RFC 850
///   and asctime forms recipients must accept): the date minus now, zero
///   for a date in the past.
///
/// Anything else (a sign, a fraction, an unparseable date, a value that is
/// not visible ASCII) gives `None`, as does a missing header. Only the first
/// `Retry-After` header counts.
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

/// [`retry_after`] with `now` given.
fn retry_after_at(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits: parsing fails on overflow alone.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A transport failure before any provider context is known.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct TransportFailure {
    /// What kind of failure.
    pub kind: TransportErrorKind,
    /// The underlying error, its URL stripped.
    #[source]
    pub source: Option<reqwest::Error>,
}

impl TransportFailure {
    /// Attaches the provider, giving the crate's [`Error`].
    pub fn into_error(self, provider: &ProviderId) -> Error {
        Error::Transport {
            provider: provider.clone(),
            kind: self.kind,
            source: self.source.map(|e| std::sync::Arc::new(e) as _),
        }
    }

    fn from_reqwest(err: reqwest::Error) -> Self {
        let kind = if err.is_connect() {
            TransportErrorKind::Connect
        } else if err.is_timeout() {
            TransportErrorKind::Timeout
        } else if err.is_body() || err.is_request() || err.is_decode() {
            TransportErrorKind::Interrupted
        } else {
            TransportErrorKind::Other
        };
        Self {
            kind,
            source: Some(err.without_url()),
        }
    }
}

impl HttpClient {
    /// A client with the given settings; an [`Error::Configuration`] when
    /// one is unusable (see [`HttpConfig`]).
    pub fn new(config: &HttpConfig) -> Result<Self> {
        let builder = || {
            reqwest::Client::builder()
                // Never follow a redirect, whatever else is configured.
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(config.connect_timeout)
                .timeout(config.timeout)
        };
        let inner = config.configure(builder())?.build().map_err(|e| {
            // rustls parses the roots and the key, and checks the key against
            // the certificate, only now: name the setting that fails.
            let builds = |c: &HttpConfig| c.configure(builder()).is_ok_and(|b| b.build().is_ok());
            match config.unusable_setting(builds) {
                Some(what) => Error::configuration(format!("{what}{}", sources(&e))),
                None => Error::configuration(format!(
                    "cannot build the HTTP client: {e}{}",
                    sources(&e)
                )),
            }
        })?;
        Ok(Self {
            inner,
            max_response_bytes: config.max_response_bytes,
            timeout: config.timeout,
        })
    }

    /// The longest one request may take, connecting and reading the whole
    /// response included ([`HttpConfig::timeout`]).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The underlying `reqwest` client, to build requests with.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// Sends a request and reads the whole response within the size cap.
    /// Any status is a response; only transport failures are errors.
    pub async fn execute(
        &self,
        request: reqwest::Request,
    ) -> std::result::Result<HttpResponse, TransportFailure> {
        let started = Instant::now();
        // What the debug events name, copied only when they are on.
        let logged = tracing::enabled!(tracing::Level::DEBUG)
            .then(|| (request.method().clone(), request.url().path().to_owned()));
        let result = self.execute_inner(request).await;
        if let Ok(response) = &result {
            // Fills the `http.status` field of the enclosing token-request span.
            tracing::Span::current().record("http.status", response.status);
        }
        let Some((method, path)) = logged else {
            return result;
        };
        match &result {
            Ok(response) => tracing::debug!(
                http.method = %method,
                url.path = %path,
                http.status = response.status,
                duration_ms = started.elapsed().as_millis() as u64,
                "token endpoint answered"
            ),
            Err(failure) => tracing::debug!(
                http.method = %method,
                url.path = %path,
                error.kind = %failure.kind,
                duration_ms = started.elapsed().as_millis() as u64,
                "token endpoint request failed"
            ),
        }
        result
    }

    async fn execute_inner(
        &self,
        request: reqwest::Request,
    ) -> std::result::Result<HttpResponse, TransportFailure> {
        let too_large = || TransportFailure {
            kind: TransportErrorKind::ResponseTooLarge,
            source: None,
        };
        let mut response = self
            .inner
            .execute(request)
            .await
            .map_err(TransportFailure::from_reqwest)?;
        if response
            .content_length()
            .is_some_and(|len| len > self.max_response_bytes as u64)
        {
            return Err(too_large());
        }
        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        // One buffer: a body that arrives in one chunk (the usual token
        // answer) is kept as is; more chunks are gathered once.
        let mut first: Option<Bytes> = None;
        let mut gathered: Option<BytesMut> = None;
        let mut len = 0usize;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(TransportFailure::from_reqwest)?
        {
            len += chunk.len();
            if len > self.max_response_bytes {
                return Err(too_large());
            }
            match (&mut gathered, first.take()) {
                (Some(buffer), _) => buffer.extend_from_slice(&chunk),
                (None, None) => first = Some(chunk),
                (None, Some(earlier)) => {
                    let mut buffer = BytesMut::with_capacity(
                        response
                            .content_length()
                            .map_or(len * 2, |l| l as usize)
                            .min(self.max_response_bytes),
                    );
                    buffer.extend_from_slice(&earlier);
                    buffer.extend_from_slice(&chunk);
                    gathered = Some(buffer);
                }
            }
        }
        let body = match gathered {
            Some(buffer) => buffer.freeze(),
            None => first.unwrap_or_default(),
        };
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// Sends a request built with [`HttpClient::reqwest`], attributing
    /// failures to `provider`.
    pub async fn send(
        &self,
        provider: &ProviderId,
        request: reqwest::RequestBuilder,
    ) -> Result<HttpResponse> {
        let request = request.build().map_err(|e| {
            Error::configuration(format!("cannot build the request: {}", e.without_url()))
        })?;
        self.execute(request)
            .await
            .map_err(|failure| failure.into_error(provider))
    }

    /// Sends an `oauth2`-crate request (an `http::Request<Vec<u8>>`).
    pub async fn execute_http(
        &self,
        request: oauth2::HttpRequest,
    ) -> std::result::Result<oauth2::HttpResponse, TransportFailure> {
        let request =
            reqwest::Request::try_from(request).map_err(TransportFailure::from_reqwest)?;
        self.execute(request).await?.into_oauth2()
    }
}

/// `": cause: cause…"`, the messages of an error's sources (reqwest's build
/// errors say only "builder error"; the cause, e.g. rustls'
/// `KeyMismatch`, is a source). None holds key material.
fn sources(err: &dyn std::error::Error) -> String {
    let mut said = String::new();
    let mut source = err.source();
    while let Some(cause) = source {
        said.push_str(": ");
        said.push_str(&cause.to_string());
        source = cause.source();
    }
    said
}

/// The future of an [`oauth2::AsyncHttpClient`] running on [`HttpClient`].
pub(crate) type OAuth2Future<'c> = Pin<
    Box<
        dyn Future<Output = std::result::Result<oauth2::HttpResponse, TransportFailure>>
            + Send
            + 'c,
    >,
>;

/// The bridge to the `oauth2` crate: its flows run on this client, so the
/// workspace holds a single `reqwest` version.
impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = TransportFailure;
    type Future = OAuth2Future<'c>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.execute_http(request))
    }
}

/// Checks that a token endpoint uses `https`, or `http` on a loopback
/// address (tests and the testkit). Anything else is a configuration error:
/// credentials must never cross a network in clear text.
pub fn require_secure_endpoint(what: &str, url: &Url) -> Result<()> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        scheme => Err(Error::configuration(format!(
            "{what} must use https (or http on a loopback address), not {scheme}://{}",
            url.host_str().unwrap_or("")
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Joins a base URL (`https://api.example.com`, with or without a path or
/// trailing slash) and an endpoint path (`/oauth/token`).
pub fn endpoint_url(what: &str, base: &str, path: &str) -> Result<Url> {
    let joined = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    parse_url(what, &joined)
}

/// Parses a URL given as configuration.
pub fn parse_url(what: &str, value: &str) -> Result<Url> {
    Url::parse(value).map_err(|e| Error::configuration(format!("{what} is not a valid URL: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for value in values {
            let value = http::HeaderValue::from_bytes(value.as_bytes()).unwrap();
            headers.append(http::header::RETRY_AFTER, value);
        }
        headers
    }

    /// 2015-10-21T07:28:00Z, the RFC 9110 example date.
    fn rfc_example_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_445_412_480)
    }

    fn at(value: &str, now: SystemTime) -> Option<Duration> {
        retry_after_at(&headers(&[value]), now)
    }

    #[test]
    fn retry_after_in_seconds() {
        let now = rfc_example_time();
        assert_eq!(at("120", now), Some(Duration::from_secs(120)));
        assert_eq!(at(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(at("0", now), Some(Duration::ZERO));
        assert_eq!(at("007", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after_at(&headers(&[]), now), None);
        // Only the first header counts.
        assert_eq!(
            retry_after_at(&headers(&["3", "9"]), now),
            Some(Duration::from_secs(3))
        );
        // Through the public accessor (system time; seconds do not depend on it).
        let response = HttpResponse {
            status: 429,
            headers: headers(&["42"]),
            body: Bytes::new(),
        };
        assert_eq!(response.retry_after(), Some(Duration::from_secs(42)));
    }

    #[test]
    fn retry_after_as_an_http_date_in_the_future() {
        let now = rfc_example_time();
        let later = Some(Duration::from_secs(90));
        // IMF-fixdate, then the obsolete RFC 850 and asctime forms.
        assert_eq!(at("Wed, 21 Oct 2015 07:29:30 GMT", now), later);
        assert_eq!(at("Wednesday, 21-Oct-15 07:29:30 GMT", now), later);
        assert_eq!(at("Wed Oct 21 07:29:30 2015", now), later);
        // Sub-second `now`: the delay is exact, not rounded.
        let now = now + Duration::from_millis(250);
        assert_eq!(
            at("Wed, 21 Oct 2015 07:28:01 GMT", now),
            Some(Duration::from_millis(750))
        );
    }

    #[test]
    fn retry_after_as_an_http_date_uses_the_system_clock() {
        let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
        let delay = retry_after(&headers(&[&in_a_minute])).unwrap();
        // The date has whole seconds: between 59 and 60 s, minus the test's own run time.
        assert!(delay <= Duration::from_secs(60), "{delay:?}");
        assert!(delay >= Duration::from_secs(55), "{delay:?}");
    }

    #[test]
    fn retry_after_in_the_past_is_zero() {
        let now = rfc_example_time();
        assert_eq!(
            at("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            at("Tue, 20 Oct 2015 07:28:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            at("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        let yesterday = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(86_400));
        assert_eq!(retry_after(&headers(&[&yesterday])), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage_is_none() {
        let now = rfc_example_time();
        for garbage in [
            "",
            "   ",
            "soon",
            "-5",
            "+5",
            "1.5",
            "1e3",
            "12 s",
            "0x10",
            "Wed, 21 Oct 2015 07:28:00",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 25:28:00 GMT",
            "2015-10-21T07:28:00Z",
            "Wed, 21 Oct 2015 07:28:00 GMT trailing",
        ] {
            assert_eq!(at(garbage, now), None, "{garbage:?}");
        }
        // Not visible ASCII: `to_str` refuses it.
        let mut raw = http::HeaderMap::new();
        raw.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_bytes(b"12\xff").unwrap(),
        );
        assert_eq!(retry_after_at(&raw, now), None);
    }

    #[test]
    fn retry_after_huge_values_saturate_or_are_dates_far_away() {
        let now = rfc_example_time();
        let max = Some(Duration::from_secs(u64::MAX));
        assert_eq!(at("18446744073709551615", now), max);
        assert_eq!(at("18446744073709551616", now), max, "u64::MAX + 1");
        assert_eq!(at(&"9".repeat(400), now), max);
        // The latest date httpdate represents, and one past it.
        let far = at("Fri, 31 Dec 9999 23:59:59 GMT", now).unwrap();
        assert_eq!(far, Duration::from_secs(253_402_300_799 - 1_445_412_480));
        assert_eq!(at("Sat, 01 Jan 10000 00:00:00 GMT", now), None);
    }

    #[test]
    fn endpoint_urls_join_without_double_slashes() {
        let url = endpoint_url("x", "http://127.0.0.1:1/", "/oauth/token").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:1/oauth/token");
        let url = endpoint_url("x", "https://h/base", "api/oauth/token").unwrap();
        assert_eq!(url.as_str(), "https://h/base/api/oauth/token");
        assert!(endpoint_url("x", "not a url", "/t").is_err());
    }

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        let ok = [
            "https://api.hikeup.com/oauth/token",
            "http://127.0.0.1:8080/t",
            "http://localhost/t",
            "http://[::1]:1/t",
        ];
        for url in ok {
            require_secure_endpoint("token URL", &Url::parse(url).unwrap()).unwrap();
        }
        let bad = [
            "http://api.hikeup.com/oauth/token",
            "http://10.0.0.1/t",
            "ftp://127.0.0.1/t",
        ];
        for url in bad {
            let err = require_secure_endpoint("token URL", &Url::parse(url).unwrap()).unwrap_err();
            assert!(matches!(err, Error::Configuration { .. }), "{url}");
        }
    }
}
