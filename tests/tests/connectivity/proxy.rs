//! A tiny HTTP proxy on 127.0.0.1 that records every request it gets and
//! tunnels `CONNECT` to loopback targets only. Forward-form requests
//! (`POST http://…`) are recorded and answered 502: nothing here should
//! send one.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The longest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// One request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// `CONNECT`, `POST`, …
    pub method: String,
    /// `127.0.0.1:PORT` for `CONNECT`, an absolute URL otherwise.
    pub target: String,
    /// Lower-cased header names with their values.
    pub headers: Vec<(String, String)>,
}

impl ProxyRequest {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The proxy; stops when dropped.
pub struct ConnectProxy {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<ProxyRequest>>>,
    task: JoinHandle<()>,
}

impl ConnectProxy {
    /// A proxy that needs no credentials.
    pub async fn start() -> Self {
        Self::start_inner(None).await
    }

    /// A proxy that answers 407 unless `Proxy-Authorization` is basic
    /// authentication with `user` and `password`.
    pub async fn start_with_credentials(user: &str, password: &str) -> Self {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self::start_inner(Some(format!("Basic {token}"))).await
    }

    async fn start_inner(expected_auth: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (recorded, expected_auth) = (recorded.clone(), expected_auth.clone());
                tokio::spawn(serve(socket, recorded, expected_auth));
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://user:password@127.0.0.1:PORT`.
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<ProxyRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut client: TcpStream,
    recorded: Arc<Mutex<Vec<ProxyRequest>>>,
    expected_auth: Option<String>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > MAX_HEAD {
            return;
        }
    };
    let Some(request) = parse_head(&head[..end]) else {
        let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        return;
    };
    recorded.lock().unwrap().push(request.clone());
    if let Some(expected) = expected_auth {
        if request.header("proxy-authorization") != Some(expected.as_str()) {
            let _ = client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"test\"\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return;
        }
    }
    if request.method != "CONNECT" {
        let _ = client
            .write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        return;
    }
    let loopback =
        request.target.starts_with("127.0.0.1:") || request.target.starts_with("localhost:");
    let upstream = match loopback {
        true => TcpStream::connect(request.target.as_str()).await.ok(),
        false => None,
    };
    let Some(mut upstream) = upstream else {
        let _ = client
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    if upstream.write_all(&head[end..]).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

fn parse_head(head: &[u8]) -> Option<ProxyRequest> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers = lines
        .filter(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Some(ProxyRequest {
        method,
        target,
        headers,
    })
}
