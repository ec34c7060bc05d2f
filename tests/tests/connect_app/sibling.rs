//! Another web server on the same host as the app (another port of
//! 127.0.0.1): cookies do not tell ports apart, so one it sets is sent to
//! the app too. The tests use it to plant a session id in the browser, as
//! a sibling service (or subdomain) of a real deployment could.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

use super::TestResult;

/// Longest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// The server; dropping it stops it.
pub struct Sibling {
    url: Url,
    task: JoinHandle<()>,
}

impl Sibling {
    /// Answers every request with a small page (`#planted`) and this
    /// `Set-Cookie` header.
    pub async fn start(set_cookie: String) -> TestResult<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = Url::parse(&format!("http://{}/", listener.local_addr()?))?;
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let set_cookie = set_cookie.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body =
                        "<!DOCTYPE html><title>Sibling</title><p id=\"planted\">cookie set</p>";
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: {set_cookie}\r\n\
                         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Self { url, task })
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl Drop for Sibling {
    fn drop(&mut self) {
        self.task.abort();
    }
}
