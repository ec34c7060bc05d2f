//! A fault-injecting TCP proxy: put it between a client and any TCP
//! service (PostgreSQL, a mock provider) and cut, stall or reset the link
//! without touching the service.
//!
//! ```
//! use oauth2_adapters::testkit::{FaultProxy, ProxyMode};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let upstream_addr = upstream.local_addr()?;
//! # tokio::spawn(async move {
//! #     while let Ok((mut socket, _)) = upstream.accept().await {
//! #         tokio::spawn(async move {
//! #             let (mut r, mut w) = socket.split();
//! #             let _ = tokio::io::copy(&mut r, &mut w).await;
//! #         });
//! #     }
//! # });
//! // `upstream_addr` is an echo server here; PostgreSQL in real tests.
//! let proxy = FaultProxy::start(upstream_addr).await?;
//! let mut client = tokio::net::TcpStream::connect(proxy.local_addr()).await?;
//! client.write_all(b"ping").await?;
//! let mut answer = [0; 4];
//! client.read_exact(&mut answer).await?;
//! assert_eq!(&answer, b"ping");
//!
//! proxy.reset_all(); // "the server restarted": this connection gets an RST
//! assert!(client.read(&mut answer).await.is_err());
//! proxy.set_mode(ProxyMode::Refuse); // new connections are reset at once
//! assert_eq!(
//!     proxy.url_for("postgres://app@db.internal:5432/test")?,
//!     format!("postgres://app@127.0.0.1:{}/test", proxy.local_addr().port())
//! );
//! proxy.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use url::Url;

/// How long the accept loop waits after a failed `accept` (e.g. out of
/// file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// The size of each direction's forwarding buffer.
const BUFFER: usize = 16 * 1024;

/// What a [`FaultProxy`] does with connections, set with
/// [`FaultProxy::set_mode`] or [`FaultProxy::cut_for`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyMode {
    /// Forward every byte, both directions (the default).
    #[default]
    Pass,
    /// New connections are accepted and reset (RST) at once: the client's
    /// `connect` succeeds, its first read or write fails with "connection
    /// reset", as when nothing listens behind a load balancer. Existing
    /// connections keep working.
    Refuse,
    /// A network partition: bytes read on existing connections are
    /// discarded in both directions (a FIN is held back, as TCP would keep
    /// retransmitting it), so clients hang until their own timeout. New
    /// connections are not accepted: the kernel completes the handshake
    /// into the listen backlog and the client hangs too; when the mode
    /// leaves `Blackhole`, they are accepted and their buffered bytes
    /// delivered.
    Blackhole,
    /// Forwarding pauses: bytes are held (the kernel buffers the rest) and
    /// delivered, in order, when the mode returns to `Pass` (or `Refuse`).
    /// New connections are accepted, connected upstream and held the same way.
    Stall,
    /// Every existing connection is reset (RST to both the client and the
    /// upstream) when this mode is set, and new ones are reset at once while
    /// it lasts.
    Reset,
}

/// What a [`FaultProxy`] has seen, from [`FaultProxy::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyStats {
    /// Connections accepted from clients, in any mode.
    pub accepted: u64,
    /// Connections currently open (accepted and not yet closed).
    pub active: u64,
    /// New connections reset at once ([`ProxyMode::Refuse`] or
    /// [`ProxyMode::Reset`]).
    pub refused: u64,
    /// Open connections reset by [`ProxyMode::Reset`] or
    /// [`FaultProxy::reset_all`].
    pub reset: u64,
    /// Connections whose upstream could not be reached (the client was reset).
    pub upstream_errors: u64,
    /// Bytes forwarded from clients to the upstream.
    pub bytes_to_upstream: u64,
    /// Bytes forwarded from the upstream to clients.
    pub bytes_to_client: u64,
    /// Bytes discarded by [`ProxyMode::Blackhole`], both directions.
    pub bytes_discarded: u64,
}

/// Why [`FaultProxy::url_for`] could not rewrite a URL. The message never
/// contains the URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyUrlError {
    /// The string is not a URL.
    #[error("not a valid URL: {0}")]
    Invalid(#[source] url::ParseError),
    /// The URL has no host to replace (e.g. `mailto:` or a Unix socket path).
    #[error("the URL has no host:port to point at the proxy")]
    NoHost,
}

/// An in-process TCP proxy on `127.0.0.1` (a free port) forwarding every
/// connection to one upstream address, with switchable faults
/// ([`ProxyMode`]) and counters ([`ProxyStats`]).
///
/// Modes apply to new and existing connections at once (see each mode).
/// The proxy runs on the tokio runtime it was started on; its methods are
/// synchronous and may be called from anywhere. Dropping it (or
/// [`FaultProxy::shutdown`]) stops listening and closes every connection.
pub struct FaultProxy {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    upstream: SocketAddr,
    runtime: Handle,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("local_addr", &self.local_addr)
            .field("upstream", &self.upstream)
            .field("mode", &self.mode())
            .field("stats", &self.stats())
            .finish()
    }
}

/// What the proxy handle and its tasks share: the control channel (only
/// the handle and the restore timers, through a `Weak`, hold the sender)
/// and the counters.
struct Shared {
    control: watch::Sender<Control>,
    counters: Arc<Counters>,
}

/// The state every task watches.
#[derive(Clone, Copy, Debug, Default)]
struct Control {
    mode: ProxyMode,
    /// Bumped by every reset ([`ProxyMode::Reset`], `reset_all`): a
    /// connection accepted under an older generation is reset.
    generation: u64,
    /// Bumped by every mode change, so a `cut_for` timer restores `Pass`
    /// only if nobody changed the mode since.
    epoch: u64,
    shutdown: bool,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    active: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    upstream_errors: AtomicU64,
    to_upstream: AtomicU64,
    to_client: AtomicU64,
    discarded: AtomicU64,
}

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0` and forwards each accepted connection to
    /// `upstream`, in [`ProxyMode::Pass`]. Must be called within a tokio
    /// runtime (an error otherwise). The upstream is connected per client
    /// connection, so it need not be up yet.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        let runtime = Handle::try_current().map_err(io::Error::other)?;
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let local_addr = listener.local_addr()?;
        let (control, watcher) = watch::channel(Control::default());
        let counters = Arc::new(Counters::default());
        let task = runtime.spawn(accept_loop(
            listener,
            upstream,
            watcher,
            Arc::clone(&counters),
        ));
        tracing::debug!(%local_addr, %upstream, "fault proxy started");
        Ok(FaultProxy {
            shared: Arc::new(Shared { control, counters }),
            local_addr,
            upstream,
            runtime,
            task: Mutex::new(Some(task)),
        })
    }

    /// The address clients should connect to (`127.0.0.1:PORT`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address connections are forwarded to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        self.shared.control.borrow().mode
    }

    /// Switches to `mode` now (see [`ProxyMode`] for its effect on
    /// existing and new connections). Cancels a pending
    /// [`FaultProxy::cut_for`] restore.
    pub fn set_mode(&self, mode: ProxyMode) {
        tracing::debug!(?mode, proxy = %self.local_addr, "fault proxy: mode");
        self.shared.control.send_modify(|control| {
            control.mode = mode;
            control.epoch += 1;
            if mode == ProxyMode::Reset {
                control.generation += 1;
            }
        });
    }

    /// Switches to `mode` now and back to [`ProxyMode::Pass`] after
    /// `duration` (real time), unless the mode was changed again meanwhile
    /// (then the later change wins and nothing is restored).
    pub fn cut_for(&self, duration: Duration, mode: ProxyMode) {
        self.set_mode(mode);
        let epoch = self.shared.control.borrow().epoch;
        let shared: Weak<Shared> = Arc::downgrade(&self.shared);
        self.runtime.spawn(async move {
            tokio::time::sleep(duration).await;
            if let Some(shared) = shared.upgrade() {
                shared.control.send_if_modified(|control| {
                    let unchanged = control.epoch == epoch;
                    if unchanged {
                        control.mode = ProxyMode::Pass;
                        control.epoch += 1;
                    }
                    unchanged
                });
            }
        });
    }

    /// Resets (RST) every connection open now, once, like a server
    /// restart, and keeps the current mode: connections opened afterwards
    /// work normally (in `Pass`). From the moment this returns, no byte
    /// read on an old connection is forwarded; the RSTs themselves are sent
    /// as soon as each connection's task runs.
    pub fn reset_all(&self) {
        tracing::debug!(proxy = %self.local_addr, "fault proxy: reset all");
        self.shared
            .control
            .send_modify(|control| control.generation += 1);
    }

    /// The counters so far.
    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ProxyStats {
            accepted: get(&c.accepted),
            active: get(&c.active),
            refused: get(&c.refused),
            reset: get(&c.reset),
            upstream_errors: get(&c.upstream_errors),
            bytes_to_upstream: get(&c.to_upstream),
            bytes_to_client: get(&c.to_client),
            bytes_discarded: get(&c.discarded),
        }
    }

    /// `url` with its host and port replaced by the proxy's, e.g.
    /// `postgres://app:pw@10.0.0.5:5432/test?sslmode=disable` →
    /// `postgres://app:pw@127.0.0.1:PORT/test?sslmode=disable`. User,
    /// password, path and query are kept (a `host=` query parameter, which
    /// some drivers honour over the authority, is not rewritten).
    pub fn url_for(&self, url: &str) -> Result<String, ProxyUrlError> {
        let mut parsed = Url::parse(url).map_err(ProxyUrlError::Invalid)?;
        if !parsed.has_host() {
            return Err(ProxyUrlError::NoHost);
        }
        parsed
            .set_ip_host(self.local_addr.ip())
            .map_err(|()| ProxyUrlError::NoHost)?;
        parsed
            .set_port(Some(self.local_addr.port()))
            .map_err(|()| ProxyUrlError::NoHost)?;
        Ok(parsed.into())
    }

    /// Stops listening, closes every connection (FIN, not RST) and waits
    /// for the proxy's tasks to end.
    pub async fn shutdown(self) {
        self.signal_shutdown();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    fn signal_shutdown(&self) {
        self.shared
            .control
            .send_modify(|control| control.shutdown = true);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.signal_shutdown();
    }
}

/// Why a connection is being torn down by the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// A reset (mode or `reset_all`): RST both sides.
    Reset,
    /// The proxy stops: close both sides.
    Shutdown,
}

/// What one direction of a connection ended with.
#[derive(Debug)]
enum PumpError {
    Stop(Stop),
    Io(io::Error),
}

/// What to do with bytes read on a connection.
enum Gate {
    Forward,
    Discard,
}

/// Accepts connections (not while in `Blackhole`) until shutdown; reaps
/// finished connection tasks; on shutdown, ends them all.
async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    mut control: watch::Receiver<Control>,
    counters: Arc<Counters>,
) {
    let mut connections = JoinSet::new();
    loop {
        let now = *control.borrow_and_update();
        if now.shutdown {
            break;
        }
        let accepting = now.mode != ProxyMode::Blackhole;
        tokio::select! {
            accepted = listener.accept(), if accepting => match accepted {
                Ok((client, _)) => {
                    add(&counters.accepted, 1);
                    let now = *control.borrow();
                    if matches!(now.mode, ProxyMode::Refuse | ProxyMode::Reset) {
                        add(&counters.refused, 1);
                        abort(client);
                    } else {
                        connections.spawn(forward(
                            client,
                            upstream,
                            control.clone(),
                            now.generation,
                            Arc::clone(&counters),
                        ));
                    }
                }
                Err(err) => {
                    tracing::debug!(%err, "fault proxy: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            changed = control.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Each connection sees the shutdown and closes itself; abort stragglers.
    let grace = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(1), grace)
        .await
        .is_err()
    {
        connections.shutdown().await;
    }
}

/// Counts an open connection for as long as it lives.
struct Active<'a>(&'a AtomicU64);

impl<'a> Active<'a> {
    fn new(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Closes `stream` with an RST instead of a FIN.
fn abort(stream: TcpStream) {
    if let Err(err) = stream.set_zero_linger() {
        tracing::debug!(%err, "fault proxy: cannot set SO_LINGER 0");
    }
    drop(stream);
}

/// One client connection: connects upstream and pumps both directions
/// through the gate until both end, a reset or shutdown.
async fn forward(
    client: TcpStream,
    upstream_addr: SocketAddr,
    control: watch::Receiver<Control>,
    generation: u64,
    counters: Arc<Counters>,
) {
    let _active = Active::new(&counters.active);
    let mut stop = control.clone();
    let connected = tokio::select! {
        connected = TcpStream::connect(upstream_addr) => connected,
        reason = stopped(&mut stop, generation) => {
            if reason == Stop::Reset {
                add(&counters.reset, 1);
            }
            abort(client);
            return;
        }
    };
    let mut upstream = match connected {
        Ok(upstream) => upstream,
        Err(err) => {
            tracing::debug!(%err, %upstream_addr, "fault proxy: upstream unreachable");
            add(&counters.upstream_errors, 1);
            abort(client);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let mut client = client;
    let end = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let up = pump(
            client_read,
            upstream_write,
            control.clone(),
            generation,
            &counters.to_upstream,
            &counters.discarded,
        );
        let down = pump(
            upstream_read,
            client_write,
            control,
            generation,
            &counters.to_client,
            &counters.discarded,
        );
        tokio::select! {
            both = async { tokio::try_join!(up, down) } => both.map(|_| ()),
            reason = stopped(&mut stop, generation) => Err(PumpError::Stop(reason)),
        }
    };
    match end {
        Ok(()) | Err(PumpError::Stop(Stop::Shutdown)) => {}
        Err(PumpError::Stop(Stop::Reset)) => {
            add(&counters.reset, 1);
            abort(client);
            abort(upstream);
        }
        // One side failed (e.g. the upstream reset): pass the failure on.
        Err(PumpError::Io(err)) => {
            tracing::debug!(%err, "fault proxy: connection failed");
            abort(client);
            abort(upstream);
        }
    }
}

/// Resolves when the connection must stop: shutdown, or a reset since
/// `generation`.
async fn stopped(control: &mut watch::Receiver<Control>, generation: u64) -> Stop {
    loop {
        let now = *control.borrow_and_update();
        if now.shutdown {
            return Stop::Shutdown;
        }
        if now.generation != generation {
            return Stop::Reset;
        }
        if control.changed().await.is_err() {
            return Stop::Shutdown;
        }
    }
}

/// What to do with bytes read now: forward, discard, or (stalled) wait
/// for the mode to change.
async fn gate(control: &mut watch::Receiver<Control>, generation: u64) -> Result<Gate, Stop> {
    loop {
        let now = *control.borrow_and_update();
        if now.shutdown {
            return Err(Stop::Shutdown);
        }
        if now.generation != generation {
            return Err(Stop::Reset);
        }
        match now.mode {
            ProxyMode::Pass | ProxyMode::Refuse => return Ok(Gate::Forward),
            ProxyMode::Blackhole => return Ok(Gate::Discard),
            ProxyMode::Reset => return Err(Stop::Reset),
            ProxyMode::Stall => {}
        }
        if control.changed().await.is_err() {
            return Err(Stop::Shutdown);
        }
    }
}

/// Copies `from` to `to` through the gate; at end of stream, half-closes
/// `to` (a FIN passes the gate like data, but is never discarded).
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut control: watch::Receiver<Control>,
    generation: u64,
    forwarded: &AtomicU64,
    discarded: &AtomicU64,
) -> Result<(), PumpError> {
    let mut buffer = vec![0; BUFFER];
    loop {
        let n = from.read(&mut buffer).await.map_err(PumpError::Io)?;
        if n == 0 {
            while let Gate::Discard = gate(&mut control, generation)
                .await
                .map_err(PumpError::Stop)?
            {
                if control.changed().await.is_err() {
                    return Err(PumpError::Stop(Stop::Shutdown));
                }
            }
            return to.shutdown().await.map_err(PumpError::Io);
        }
        match gate(&mut control, generation)
            .await
            .map_err(PumpError::Stop)?
        {
            Gate::Forward => {
                to.write_all(&buffer[..n]).await.map_err(PumpError::Io)?;
                add(forwarded, n);
            }
            Gate::Discard => add(discarded, n),
        }
    }
}
