//! An HTTPS front for a plain-HTTP mock: terminates TLS on 127.0.0.1 (with
//! a client certificate required, if asked) and forwards the decrypted
//! bytes to the mock, keeping a copy of what the client sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use super::pki::{Authority, Leaf};

/// The most of the client's bytes kept.
const KEPT: usize = 1 << 20;

/// The front; stops when dropped.
pub struct TlsFront {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
    handshakes: Arc<Mutex<Handshakes>>,
    task: JoinHandle<()>,
}

/// How the TLS handshakes ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Handshakes {
    /// Completed.
    pub completed: usize,
    /// Failed (e.g. the client refused the certificate, or had none).
    pub failed: usize,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl TlsFront {
    /// A front presenting `server` for `upstream`; with `client_ca`, it
    /// requires a client certificate that this CA signed.
    pub async fn start(upstream: SocketAddr, server: &Leaf, client_ca: Option<&Authority>) -> Self {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca.cert_der()).unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(vec![server.cert_der.clone()], server.private_key())
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let handshakes = Arc::new(Mutex::new(Handshakes::default()));
        let (kept, counted) = (received.clone(), handshakes.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (acceptor, kept, counted) = (acceptor.clone(), kept.clone(), counted.clone());
                tokio::spawn(async move {
                    let tls = match acceptor.accept(socket).await {
                        Ok(tls) => {
                            counted.lock().unwrap().completed += 1;
                            tls
                        }
                        Err(_) => {
                            counted.lock().unwrap().failed += 1;
                            return;
                        }
                    };
                    let Ok(upstream) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    forward(tls, upstream, kept).await;
                });
            }
        });
        Self {
            addr,
            received,
            handshakes,
            task,
        }
    }

    /// `https://127.0.0.1:PORT`, the base URL to give an adapter.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What clients sent, decrypted, as (lossy) text.
    pub fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap()).into_owned()
    }

    /// How the handshakes ended so far.
    pub fn handshakes(&self) -> Handshakes {
        *self.handshakes.lock().unwrap()
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies both ways until either side closes, keeping the client's bytes.
async fn forward<C>(client: C, upstream: TcpStream, kept: Arc<Mutex<Vec<u8>>>)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut from_client, mut to_client) = tokio::io::split(client);
    let (mut from_upstream, mut to_upstream) = upstream.into_split();
    let up = async {
        let mut buf = vec![0; 16 * 1024];
        loop {
            match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    {
                        let mut kept = kept.lock().unwrap();
                        let room = KEPT.saturating_sub(kept.len()).min(n);
                        kept.extend_from_slice(&buf[..room]);
                    }
                    if to_upstream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_upstream.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut from_upstream, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    tokio::join!(up, down);
}
