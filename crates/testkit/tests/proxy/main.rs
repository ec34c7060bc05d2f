//! Exercises the fault-injecting TCP proxy against a local echo server
//! and, when one answers, the local PostgreSQL.

mod echo;
mod postgres;

use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What every test returns.
pub type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

/// How long a read must stay silent to count as a hang.
pub const HANG: Duration = Duration::from_millis(250);
/// How long anything that should happen promptly may take.
pub const PROMPT: Duration = Duration::from_secs(2);

/// How an echo-server connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The client half-closed (FIN).
    Eof,
    /// A read or write failed with this kind (e.g. `ConnectionReset`).
    Failed(io::ErrorKind),
}

/// A local echo server that counts what it sees.
pub struct Echo {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub received: Arc<AtomicUsize>,
    pub ended: Arc<Mutex<Vec<Ended>>>,
}

impl Echo {
    pub async fn start() -> io::Result<Echo> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let echo = Echo {
            addr: listener.local_addr()?,
            connections: Arc::default(),
            received: Arc::default(),
            ended: Arc::default(),
        };
        let (connections, received, ended) = (
            echo.connections.clone(),
            echo.received.clone(),
            echo.ended.clone(),
        );
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let (received, ended) = (received.clone(), ended.clone());
                tokio::spawn(async move {
                    let how = serve(socket, &received).await;
                    ended.lock().unwrap().push(how);
                });
            }
        });
        Ok(echo)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }

    pub fn ended(&self) -> Vec<Ended> {
        self.ended.lock().unwrap().clone()
    }
}

async fn serve(mut socket: TcpStream, received: &AtomicUsize) -> Ended {
    let mut buffer = [0; 4096];
    loop {
        match socket.read(&mut buffer).await {
            Ok(0) => {
                let _ = socket.shutdown().await;
                return Ended::Eof;
            }
            Ok(n) => {
                received.fetch_add(n, Ordering::SeqCst);
                if let Err(err) = socket.write_all(&buffer[..n]).await {
                    return Ended::Failed(err.kind());
                }
            }
            Err(err) => return Ended::Failed(err.kind()),
        }
    }
}

/// Connects to `addr` within [`PROMPT`].
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    tokio::time::timeout(PROMPT, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?
}

/// Writes `bytes` and reads back as many, within [`PROMPT`].
pub async fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let exchange = async {
        stream.write_all(bytes).await?;
        let mut back = vec![0; bytes.len()];
        stream.read_exact(&mut back).await?;
        Ok(back)
    };
    tokio::time::timeout(PROMPT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no echo in time"))?
}

/// Whether nothing arrives on `stream` for [`HANG`].
pub async fn hangs(stream: &mut TcpStream) -> bool {
    let mut byte = [0; 1];
    tokio::time::timeout(HANG, stream.read(&mut byte))
        .await
        .is_err()
}

/// What the next read on `stream` gives within [`PROMPT`]: the error kind,
/// `UnexpectedEof` for a clean end, `TimedOut` for nothing, `Other` for data.
pub async fn next_read(stream: &mut TcpStream) -> io::ErrorKind {
    let mut byte = [0; 1];
    match tokio::time::timeout(PROMPT, stream.read(&mut byte)).await {
        Err(_) => io::ErrorKind::TimedOut,
        Ok(Ok(0)) => io::ErrorKind::UnexpectedEof,
        Ok(Ok(_)) => io::ErrorKind::Other,
        Ok(Err(err)) => err.kind(),
    }
}

/// Waits (up to [`PROMPT`]) until `condition` holds.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + PROMPT;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}
