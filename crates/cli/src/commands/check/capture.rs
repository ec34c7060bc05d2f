//! A capturing server on 127.0.0.1: the `SpecProvider` that `check` builds
//! is pointed at it (`SpecProviderBuilder::base_url`, which keeps the
//! paths), so what it records is the request the engine really sends, as
//! it left reqwest, and nothing reaches the provider. It is a one-handler
//! axum server: every request is recorded and answered
//! `400 {"error": "invalid_request"}`, its connection closed.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::error::{CliError, CliResult};

/// The longest body read (the engine's are well under 2 KiB); a longer
/// one is not recorded.
const MAX_BODY: usize = 1024 * 1024;
/// How long one request may take to send its body.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What every request is answered with.
const ANSWER_BODY: &str = r#"{"error":"invalid_request","error_description":"oauth2-adapters-cli check captured this request: nothing was sent"}"#;

/// One request, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// `POST`.
    pub method: String,
    /// The path and query (`/oauth/token`).
    pub target: String,
    /// The headers, in the order received (several values of one name
    /// together, at the first one's place), names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

type Requests = Arc<Mutex<Vec<Captured>>>;

/// The running server; it stops when dropped.
pub struct Capture {
    addr: SocketAddr,
    requests: Requests,
    task: JoinHandle<()>,
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Capture {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> CliResult<Self> {
        let io = |source| CliError::Io {
            context: "listening on 127.0.0.1 to capture the requests",
            source,
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let requests = Requests::default();
        let router = Router::new()
            .fallback(record)
            .with_state(Arc::clone(&requests));
        let task = tokio::spawn(async move {
            // It only stops with an error it cannot accept through (the
            // calls then fail, and `one` reports their error).
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            addr,
            requests,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`, for `SpecProviderBuilder::base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs `call` (one engine call) and returns the first request it
    /// sent, or the call's error when it sent none (it refused before
    /// sending, e.g. a secret that cannot be a header value).
    pub async fn one<T>(
        &self,
        call: impl Future<Output = oauth2_adapters::Result<T>>,
    ) -> Result<Captured, oauth2_adapters::Error> {
        self.take();
        let outcome = call.await;
        match (self.take().into_iter().next(), outcome) {
            (Some(request), _) => Ok(request),
            (None, Err(err)) => Err(err),
            (None, Ok(_)) => Err(oauth2_adapters::Error::configuration(
                "the engine reported success without sending a request",
            )),
        }
    }

    fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *lock(&self.requests))
    }
}

fn lock(requests: &Requests) -> std::sync::MutexGuard<'_, Vec<Captured>> {
    requests.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The one handler: records the request (unless its body is too long or
/// too slow), then answers it.
async fn record(State(requests): State<Requests>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Ok(Ok(body)) = tokio::time::timeout(READ_TIMEOUT, to_bytes(body, MAX_BODY)).await {
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        lock(&requests).push(Captured {
            method: parts.method.as_str().to_owned(),
            target: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
            headers,
            body: body.to_vec(),
        });
    }
    answer()
}

fn answer() -> Response {
    (
        StatusCode::BAD_REQUEST,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CONNECTION, HeaderValue::from_static("close")),
        ],
        ANSWER_BODY,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// Sends `request` as is and returns the whole answer.
    async fn send(capture: &Capture, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(capture.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        String::from_utf8(answer).unwrap()
    }

    #[tokio::test]
    async fn requests_are_recorded_as_received_and_refused() {
        let capture = Capture::start().await.unwrap();
        let answer = send(
            &capture,
            b"POST /oauth/token?a=b HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Later: a:b\r\n\
              Accept: application/json\r\nx-later: c\r\nContent-Length: 11\r\n\r\ncode=x&y=%2",
        )
        .await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "invalid_request");

        let requests = capture.take();
        assert_eq!(requests.len(), 1);
        let request = &requests[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/oauth/token?a=b");
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            request.headers,
            pairs(&[
                ("host", "127.0.0.1"),
                ("x-later", "a:b"),
                ("x-later", "c"),
                ("accept", "application/json"),
                ("content-length", "11"),
            ])
        );
        assert_eq!(request.body, b"code=x&y=%2");
        assert!(capture.take().is_empty(), "taken once");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_not_recorded() {
        let capture = Capture::start().await.unwrap();
        let length = MAX_BODY + 1;
        let mut request =
            format!("POST /t HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n\r\n")
                .into_bytes();
        request.resize(request.len() + length, b'a');
        let answer = send(&capture, &request).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        assert!(capture.take().is_empty());

        let answer = send(&capture, b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        let requests = capture.take();
        assert_eq!(requests.len(), 1);
        assert_eq!(
            (requests[0].method.as_str(), requests[0].target.as_str()),
            ("GET", "/x")
        );
        assert!(requests[0].body.is_empty());
    }
}
