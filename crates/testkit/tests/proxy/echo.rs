use std::io::ErrorKind;
use std::time::{Duration, Instant};

use oauth2_adapters_testkit::{FaultProxy, ProxyMode, ProxyStats, ProxyUrlError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{connect, eventually, hangs, next_read, round_trip, Echo, Ended, TestResult};

async fn start() -> Result<(Echo, FaultProxy), Box<dyn std::error::Error + Send + Sync>> {
    let echo = Echo::start().await?;
    let proxy = FaultProxy::start(echo.addr).await?;
    Ok((echo, proxy))
}

#[tokio::test]
async fn pass_forwards_every_byte_both_ways_and_counts_them() -> TestResult {
    let (echo, proxy) = start().await?;
    assert!(proxy.local_addr().ip().is_loopback());
    assert_ne!(proxy.local_addr(), echo.addr);
    assert_eq!(proxy.upstream(), echo.addr);
    assert_eq!(proxy.mode(), ProxyMode::Pass);

    let mut client = connect(proxy.local_addr()).await?;
    // More than one buffer's worth, every byte value.
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(round_trip(&mut client, &payload).await?, payload);
    assert_eq!(echo.received(), payload.len());

    // A half-close passes: the echo server sees EOF and closes its side.
    client.shutdown().await?;
    assert_eq!(next_read(&mut client).await, ErrorKind::UnexpectedEof);
    assert!(eventually(|| proxy.stats().active == 0).await);
    assert_eq!(echo.ended(), vec![Ended::Eof]);
    let stats = proxy.stats();
    let expected = ProxyStats::default();
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.bytes_to_upstream, payload.len() as u64);
    assert_eq!(stats.bytes_to_client, payload.len() as u64);
    let rest = |s: ProxyStats| {
        (
            s.active,
            s.refused,
            s.reset,
            s.upstream_errors,
            s.bytes_discarded,
        )
    };
    assert_eq!(rest(stats), rest(expected));
    Ok(())
}

#[tokio::test]
async fn refuse_resets_new_connections_and_spares_open_ones() -> TestResult {
    let (echo, proxy) = start().await?;
    let mut open = connect(proxy.local_addr()).await?;
    assert_eq!(round_trip(&mut open, b"before").await?, b"before");

    proxy.set_mode(ProxyMode::Refuse);
    let started = Instant::now();
    let mut refused = connect(proxy.local_addr()).await?;
    assert_eq!(next_read(&mut refused).await, ErrorKind::ConnectionReset);
    assert!(started.elapsed() < Duration::from_secs(1), "promptly");
    assert_eq!(round_trip(&mut open, b"during").await?, b"during");
    assert_eq!(
        echo.connections(),
        1,
        "the refused one never reached upstream"
    );

    proxy.set_mode(ProxyMode::Pass);
    let mut later = connect(proxy.local_addr()).await?;
    assert_eq!(round_trip(&mut later, b"after").await?, b"after");
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.refused, stats.reset), (3, 1, 0));
    assert_eq!(echo.connections(), 2);
    Ok(())
}

#[tokio::test]
async fn blackhole_discards_bytes_and_holds_new_connections_until_it_ends() -> TestResult {
    let (echo, proxy) = start().await?;
    let mut open = connect(proxy.local_addr()).await?;
    assert_eq!(round_trip(&mut open, b"x").await?, b"x");

    proxy.set_mode(ProxyMode::Blackhole);
    open.write_all(b"lost").await?;
    assert!(hangs(&mut open).await, "nothing comes back");
    assert_eq!(echo.received(), 1, "nothing reached the upstream");
    assert!(eventually(|| proxy.stats().bytes_discarded == 4).await);

    // A new connection completes its handshake (the listen backlog) but is
    // neither accepted nor forwarded.
    let mut pending = connect(proxy.local_addr()).await?;
    pending.write_all(b"queued").await?;
    assert!(hangs(&mut pending).await);
    assert_eq!(proxy.stats().accepted, 1);
    assert_eq!(echo.connections(), 1);

    // The partition heals: the discarded bytes are gone, new bytes pass,
    // and the pending connection is accepted with its bytes intact.
    proxy.set_mode(ProxyMode::Pass);
    assert_eq!(round_trip(&mut open, b"back").await?, b"back");
    let mut echoed = [0; 6];
    tokio::time::timeout(crate::PROMPT, pending.read_exact(&mut echoed)).await??;
    assert_eq!(&echoed, b"queued");
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.bytes_discarded), (2, 4));
    assert_eq!(echo.received(), 1 + 4 + 6);
    Ok(())
}

#[tokio::test]
async fn blackhole_holds_a_fin_back() -> TestResult {
    let (echo, proxy) = start().await?;
    let mut open = connect(proxy.local_addr()).await?;
    assert_eq!(round_trip(&mut open, b"x").await?, b"x");
    proxy.set_mode(ProxyMode::Blackhole);
    open.shutdown().await?;
    assert!(hangs(&mut open).await);
    assert!(echo.ended().is_empty(), "the FIN did not pass");
    proxy.set_mode(ProxyMode::Pass);
    assert_eq!(next_read(&mut open).await, ErrorKind::UnexpectedEof);
    assert!(eventually(|| echo.ended() == vec![Ended::Eof]).await);
    Ok(())
}

#[tokio::test]
async fn stall_holds_bytes_and_delivers_them_in_order_afterwards() -> TestResult {
    let (echo, proxy) = start().await?;
    let mut open = connect(proxy.local_addr()).await?;
    assert_eq!(round_trip(&mut open, b"a").await?, b"a");

    proxy.set_mode(ProxyMode::Stall);
    open.write_all(b"held-").await?;
    open.write_all(b"in-order").await?;
    let mut fresh = connect(proxy.local_addr()).await?;
    fresh.write_all(b"new").await?;
    assert!(hangs(&mut open).await);
    assert!(hangs(&mut fresh).await);
    assert_eq!(echo.received(), 1, "held, not forwarded");

    proxy.set_mode(ProxyMode::Pass);
    let mut back = [0; 13];
    tokio::time::timeout(crate::PROMPT, open.read_exact(&mut back)).await??;
    assert_eq!(&back, b"held-in-order");
    let mut back = [0; 3];
    tokio::time::timeout(crate::PROMPT, fresh.read_exact(&mut back)).await??;
    assert_eq!(&back, b"new");
    assert_eq!(proxy.stats().bytes_discarded, 0);
    Ok(())
}

#[tokio::test]
async fn reset_mode_resets_open_and_new_connections() -> TestResult {
    let (echo, proxy) = start().await?;
    let mut first = connect(proxy.local_addr()).await?;
    let mut second = connect(proxy.local_addr()).await?;
    assert_eq!(round_trip(&mut first, b"1").await?, b"1");
    assert_eq!(round_trip(&mut second, b"2").await?, b"2");

    proxy.set_mode(ProxyMode::Reset);
    assert_eq!(next_read(&mut first).await, ErrorKind::ConnectionReset);
    assert_eq!(next_read(&mut second).await, ErrorKind::ConnectionReset);
    // The upstream's side was reset too.
    assert!(
        eventually(|| echo.ended() == vec![Ended::Failed(ErrorKind::ConnectionReset); 2]).await,
        "{:?}",
        echo.ended()
    );
    let mut new = connect(proxy.local_addr()).await?;
    assert_eq!(next_read(&mut new).await, ErrorKind::ConnectionReset);

    proxy.set_mode(ProxyMode::Pass);
    let mut after = connect(proxy.local_addr()).await?;
    assert_eq!(round_trip(&mut after, b"ok").await?, b"ok");
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.reset, stats.refused), (4, 2, 1));
    Ok(())
}

#[tokio::test]
async fn reset_all_kills_open_connections_once_and_keeps_passing() -> TestResult {
    let (_echo, proxy) = start().await?;
    let mut old = connect(proxy.local_addr()).await?;
    assert_eq!(round_trip(&mut old, b"old").await?, b"old");
    let mut idle = connect(proxy.local_addr()).await?;
    assert!(eventually(|| proxy.stats().active == 2).await);

    proxy.reset_all();
    assert_eq!(proxy.mode(), ProxyMode::Pass);
    // Bytes written after the reset never reach the upstream: the write
    // may be accepted locally, but the answer is a reset, not an echo.
    let _ = old.write_all(b"late").await;
    assert_eq!(next_read(&mut old).await, ErrorKind::ConnectionReset);
    assert_eq!(next_read(&mut idle).await, ErrorKind::ConnectionReset);

    let mut new = connect(proxy.local_addr()).await?;
    assert_eq!(round_trip(&mut new, b"new").await?, b"new");
    assert!(hangs(&mut new).await, "and nothing else arrives");
    let stats = proxy.stats();
    assert_eq!((stats.reset, stats.refused, stats.active), (2, 0, 1));
    assert_eq!(stats.bytes_to_upstream, 6, "\"late\" was not forwarded");
    Ok(())
}

#[tokio::test]
async fn cut_for_restores_pass_unless_the_mode_changed_meanwhile() -> TestResult {
    let (_echo, proxy) = start().await?;
    let cut = Duration::from_millis(300);
    let started = Instant::now();
    proxy.cut_for(cut, ProxyMode::Refuse);
    assert_eq!(proxy.mode(), ProxyMode::Refuse);
    let mut refused = connect(proxy.local_addr()).await?;
    assert_eq!(next_read(&mut refused).await, ErrorKind::ConnectionReset);
    assert!(eventually(|| proxy.mode() == ProxyMode::Pass).await);
    assert!(started.elapsed() >= cut, "{:?}", started.elapsed());
    let mut ok = connect(proxy.local_addr()).await?;
    assert_eq!(round_trip(&mut ok, b"hi").await?, b"hi");

    // A later change wins over the pending restore.
    proxy.cut_for(Duration::from_millis(100), ProxyMode::Blackhole);
    proxy.set_mode(ProxyMode::Stall);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.mode(), ProxyMode::Stall);
    proxy.set_mode(ProxyMode::Pass);
    assert_eq!(round_trip(&mut ok, b"again").await?, b"again");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_upstream_resets_the_client() -> TestResult {
    // Bind then drop a listener: its port refuses connections.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?;
    let proxy = FaultProxy::start(closed).await?;
    let mut client = connect(proxy.local_addr()).await?;
    assert_eq!(next_read(&mut client).await, ErrorKind::ConnectionReset);
    assert!(eventually(|| proxy.stats().upstream_errors == 1).await);
    Ok(())
}

#[tokio::test]
async fn shutdown_closes_everything_and_stops_listening() -> TestResult {
    let (echo, proxy) = start().await?;
    let addr = proxy.local_addr();
    let mut open = connect(addr).await?;
    assert_eq!(round_trip(&mut open, b"x").await?, b"x");
    proxy.shutdown().await;
    assert_eq!(next_read(&mut open).await, ErrorKind::UnexpectedEof);
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert_eq!(
        refused.err().map(|e| e.kind()),
        Some(ErrorKind::ConnectionRefused)
    );
    assert!(eventually(|| echo.ended() == vec![Ended::Eof]).await);

    // Dropping the proxy stops it too.
    let proxy = FaultProxy::start(echo.addr).await?;
    let addr = proxy.local_addr();
    let mut open = connect(addr).await?;
    assert_eq!(round_trip(&mut open, b"y").await?, b"y");
    drop(proxy);
    assert_eq!(next_read(&mut open).await, ErrorKind::UnexpectedEof);
    Ok(())
}

#[tokio::test]
async fn url_for_points_a_database_url_at_the_proxy() -> TestResult {
    let (_echo, proxy) = start().await?;
    let port = proxy.local_addr().port();
    assert_eq!(
        proxy.url_for("postgres://postgres@127.0.0.1:5432/test")?,
        format!("postgres://postgres@127.0.0.1:{port}/test")
    );
    assert_eq!(
        proxy.url_for("postgresql://app:s3cret@db.example.com/app?sslmode=disable")?,
        format!("postgresql://app:s3cret@127.0.0.1:{port}/app?sslmode=disable")
    );
    assert_eq!(
        proxy.url_for("http://[::1]:8080/x")?,
        format!("http://127.0.0.1:{port}/x")
    );
    let invalid = proxy
        .url_for("postgres://app:s3cret@host:99999/db")
        .unwrap_err();
    assert!(matches!(invalid, ProxyUrlError::Invalid(_)));
    assert!(!invalid.to_string().contains("s3cret"), "{invalid}");
    assert!(matches!(
        proxy.url_for("mailto:app@example.com"),
        Err(ProxyUrlError::NoHost)
    ));
    assert!(matches!(
        proxy.url_for("sqlite:///tmp/db"),
        Err(ProxyUrlError::NoHost)
    ));
    Ok(())
}
