//! The proxy in front of the shared PostgreSQL (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), at the TCP level: an
//! `SSLRequest` (8 bytes) is answered with one byte, `S` or `N`, before
//! any authentication. An unreachable server skips these tests, or fails
//! them when `CI=true`.

use std::io::ErrorKind;
use std::net::SocketAddr;

use oauth2_adapters_testkit::{FaultProxy, ProxyMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{connect, hangs, next_read, TestResult, PROMPT};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Length 8, then the SSLRequest code 80877103 (PostgreSQL protocol §55.2.10).
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// The server's address, or `None` (skip) when it does not answer outside CI.
async fn postgres() -> Result<Option<(String, SocketAddr)>, Box<dyn std::error::Error + Send + Sync>>
{
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let parsed = url::Url::parse(&url)?;
    let host = parsed
        .host_str()
        .ok_or("DATABASE_URL has no host")?
        .to_owned();
    let port = parsed.port().unwrap_or(5432);
    let reachable = async {
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other("no address"))?;
        connect(addr).await.map(|_| addr)
    };
    match reachable.await {
        Ok(addr) => Ok(Some((url, addr))),
        Err(err) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            Err(format!("PostgreSQL is unreachable ({err}) and CI=true").into())
        }
        Err(err) => {
            eprintln!("skipped: PostgreSQL is unreachable ({err}); set DATABASE_URL");
            Ok(None)
        }
    }
}

/// Sends an SSLRequest and reads the one-byte answer within [`PROMPT`].
async fn ssl_answer(stream: &mut TcpStream) -> std::io::Result<u8> {
    stream.write_all(&SSL_REQUEST).await?;
    let mut answer = [0; 1];
    tokio::time::timeout(PROMPT, stream.read_exact(&mut answer))
        .await
        .map_err(|_| std::io::Error::new(ErrorKind::TimedOut, "no answer"))??;
    Ok(answer[0])
}

fn is_postgres_answer(byte: u8) -> bool {
    byte == b'S' || byte == b'N'
}

#[tokio::test]
async fn postgres_answers_through_the_proxy_and_every_fault_cuts_it() -> TestResult {
    let Some((url, addr)) = postgres().await? else {
        return Ok(());
    };
    let proxy = FaultProxy::start(addr).await?;
    let proxied = proxy.url_for(&url)?;
    assert!(proxied.contains(&format!("127.0.0.1:{}", proxy.local_addr().port())));

    // Pass: the server's own answer comes back.
    let mut open = connect(proxy.local_addr()).await?;
    let answer = ssl_answer(&mut open).await?;
    assert!(is_postgres_answer(answer), "answer {answer:#x}");
    assert_eq!(proxy.stats().bytes_to_upstream, 8);
    assert_eq!(proxy.stats().bytes_to_client, 1);

    // Blackhole: a new connection hangs.
    proxy.set_mode(ProxyMode::Blackhole);
    let mut cut = connect(proxy.local_addr()).await?;
    cut.write_all(&SSL_REQUEST).await?;
    assert!(hangs(&mut cut).await);
    drop(cut);

    // Stall: held, then answered once the link is back.
    proxy.set_mode(ProxyMode::Stall);
    let mut stalled = connect(proxy.local_addr()).await?;
    stalled.write_all(&SSL_REQUEST).await?;
    assert!(hangs(&mut stalled).await);
    proxy.set_mode(ProxyMode::Pass);
    let mut answer = [0; 1];
    tokio::time::timeout(PROMPT, stalled.read_exact(&mut answer)).await??;
    assert!(is_postgres_answer(answer[0]));

    // Refuse: new connections are reset, the open ones live on.
    proxy.set_mode(ProxyMode::Refuse);
    let mut refused = connect(proxy.local_addr()).await?;
    assert_eq!(next_read(&mut refused).await, ErrorKind::ConnectionReset);
    proxy.set_mode(ProxyMode::Pass);

    // "PostgreSQL restarted": the open connections are reset, new ones work.
    proxy.reset_all();
    assert_eq!(next_read(&mut open).await, ErrorKind::ConnectionReset);
    assert_eq!(next_read(&mut stalled).await, ErrorKind::ConnectionReset);
    let mut fresh = connect(proxy.local_addr()).await?;
    assert!(is_postgres_answer(ssl_answer(&mut fresh).await?));

    // Reset mode: the same, and new connections are reset until it ends.
    proxy.set_mode(ProxyMode::Reset);
    assert_eq!(next_read(&mut fresh).await, ErrorKind::ConnectionReset);
    let mut during = connect(proxy.local_addr()).await?;
    assert_eq!(next_read(&mut during).await, ErrorKind::ConnectionReset);
    proxy.set_mode(ProxyMode::Pass);
    let mut after = connect(proxy.local_addr()).await?;
    assert!(is_postgres_answer(ssl_answer(&mut after).await?));

    let stats = proxy.stats();
    assert_eq!(stats.refused, 2, "{stats:?}");
    assert!(stats.reset >= 3, "{stats:?}");
    assert_eq!(stats.upstream_errors, 0, "{stats:?}");
    proxy.shutdown().await;
    Ok(())
}
