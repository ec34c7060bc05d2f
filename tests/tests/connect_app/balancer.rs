//! A load balancer for the tests: one public address on 127.0.0.1 that
//! forwards each TCP connection to the instance chosen last. Switching
//! closes the open connections, so a browser's kept-alive connection does
//! not stay with the old instance.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};
use url::Url;

use super::TestResult;

#[derive(Default)]
struct Routing {
    backend: Option<SocketAddr>,
    open: Vec<AbortHandle>,
}

/// The balancer; dropping it stops it and closes its connections.
pub struct Balancer {
    url: Url,
    routing: Arc<Mutex<Routing>>,
    accept: JoinHandle<()>,
}

impl Balancer {
    /// Listens on a free port of 127.0.0.1; no backend yet (connections
    /// are closed until [`Balancer::send_to`]).
    pub async fn start() -> TestResult<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = Url::parse(&format!("http://{}/", listener.local_addr()?))?;
        let routing = Arc::new(Mutex::new(Routing::default()));
        let accept = tokio::spawn(accept_loop(listener, routing.clone()));
        Ok(Self {
            url,
            routing,
            accept,
        })
    }

    /// `http://127.0.0.1:PORT/`: the public URL of the instances behind it.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// From now on, new connections go to `instance`; open ones are closed.
    pub fn send_to(&self, instance: &Url) -> TestResult {
        let addr = instance
            .socket_addrs(|| None)?
            .into_iter()
            .next()
            .ok_or_else(|| format!("no address for {instance}"))?;
        let mut routing = lock(&self.routing);
        routing.backend = Some(addr);
        for connection in routing.open.drain(..) {
            connection.abort();
        }
        Ok(())
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accept.abort();
        for connection in lock(&self.routing).open.drain(..) {
            connection.abort();
        }
    }
}

fn lock(routing: &Mutex<Routing>) -> MutexGuard<'_, Routing> {
    routing.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn accept_loop(listener: TcpListener, routing: Arc<Mutex<Routing>>) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        let mut routing = lock(&routing);
        let Some(backend) = routing.backend else {
            continue; // dropped: closed
        };
        routing.open.retain(|connection| !connection.is_finished());
        let forward = tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(backend).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        routing.open.push(forward.abort_handle());
    }
}
