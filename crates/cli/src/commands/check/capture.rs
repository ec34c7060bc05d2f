//! A capturing server on 127.0.0.1: the `SpecProvider` that `check` builds
//! is pointed at it (`SpecProviderBuilder::base_url`, which keeps the
//! paths), so what it records is the request the engine really sends, as
//! it left reqwest, and nothing reaches the provider. Every request is
//! answered `400 {"error": "invalid_request"}` and its connection closed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::error::{CliError, CliResult};

/// The longest request head read (the engine's are well under 2 KiB).
const MAX_HEAD: usize = 64 * 1024;
/// The longest body read.
const MAX_BODY: usize = 1024 * 1024;
/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What every request is answered with.
const ANSWER_BODY: &str = r#"{"error":"invalid_request","error_description":"oauth2-adapters-cli check captured this request: nothing was sent"}"#;

fn answer() -> String {
    format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{ANSWER_BODY}",
        ANSWER_BODY.len()
    )
}

/// One request, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// `POST`.
    pub method: String,
    /// The path and query (`/oauth/token`).
    pub target: String,
    /// The headers, in the order sent (names as sent: lowercase).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The running server; it stops when dropped.
pub struct Capture {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Captured>>>,
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
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|err| CliError::Io {
                context: "listening on 127.0.0.1 to capture the requests",
                source: err,
            })?;
        let addr = listener.local_addr().map_err(|err| CliError::Io {
            context: "listening on 127.0.0.1 to capture the requests",
            source: err,
        })?;
        let requests: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let task = tokio::spawn(serve(listener, requests.clone()));
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
        std::mem::take(
            &mut *self
                .requests
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

async fn serve(listener: TcpListener, requests: Arc<Mutex<Vec<Captured>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let requests = requests.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            if let Ok(Ok(Some(request))) =
                tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await
            {
                requests
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(request);
            }
            let _ = stream.write_all(answer().as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// Reads one HTTP/1.1 request with a `Content-Length` body (what reqwest
/// sends for the engine's fixed bodies); `None` for anything else.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Captured>> {
    let mut buffer = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(at) = find(&buffer, b"\r\n\r\n") {
            break at;
        }
        if buffer.len() > MAX_HEAD || read_more(stream, &mut buffer).await? == 0 {
            return Ok(None);
        }
    };
    let Some(mut request) = parse_head(&String::from_utf8_lossy(&buffer[..head_end])) else {
        return Ok(None);
    };
    let length = match header(&request, "content-length") {
        Some(value) => match value.parse::<usize>() {
            Ok(length) if length <= MAX_BODY => length,
            _ => return Ok(None),
        },
        None if header(&request, "transfer-encoding").is_some() => return Ok(None),
        None => 0,
    };
    let mut body = buffer.split_off(head_end + 4);
    while body.len() < length {
        if read_more(stream, &mut body).await? == 0 {
            return Ok(None);
        }
    }
    body.truncate(length);
    request.body = body;
    Ok(Some(request))
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let read = stream.read(&mut chunk).await?;
    buffer.extend_from_slice(&chunk[..read]);
    Ok(read)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The request line and the headers.
fn parse_head(head: &str) -> Option<Captured> {
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Some(Captured {
        method,
        target,
        headers,
        body: Vec::new(),
    })
}

fn header<'a>(request: &'a Captured, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_well_formed() {
        let text = answer();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }

    #[test]
    fn heads_parse() {
        let request =
            parse_head("POST /oauth/token?a=b HTTP/1.1\r\naccept: application/json\r\nx: a:b")
                .unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/oauth/token?a=b");
        assert_eq!(
            request.headers,
            [
                ("accept".to_owned(), "application/json".to_owned()),
                ("x".to_owned(), "a:b".to_owned())
            ]
        );
        assert!(parse_head("POST\r\n").is_none());
        assert!(parse_head("POST / HTTP/1.1\r\nno colon").is_none());
    }
}
