//! Starting and stopping a mock server, and the state its handlers share.

use std::collections::VecDeque;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use super::faults::{Fault, ResponseStyle};
use super::grants::Grants;
use super::recording::{self, RecordedRequest};
use super::wire_faults;
use super::{MockConfig, MockError};

/// How long [`MockCore::shutdown`] waits for open connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The mutable part of a mock, behind one mutex (never held across `.await`).
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) faults: VecDeque<Fault>,
    pub(crate) style: ResponseStyle,
    pub(crate) grants: Grants,
}

/// What the handlers of one mock share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: MockConfig,
    token_paths: Vec<String>,
    state: Mutex<State>,
}

impl Shared {
    /// Locks the state, recovering from a poisoned mutex.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configured clock's current time.
    pub(crate) fn now(&self) -> SystemTime {
        self.config.clock.now()
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        self.lock().requests.push(request);
    }

    /// Pops the next queued fault for a token handler, if any. Nothing
    /// when the wire-fault layer already took this request's fault.
    pub(crate) fn pop_fault(&self) -> Option<Fault> {
        if wire_faults::taken_for_this_request() {
            return None;
        }
        self.lock().faults.pop_front()
    }

    /// Pops the next queued fault if `path` is a token endpoint and the
    /// fault is a wire fault.
    pub(crate) fn pop_wire_fault(&self, path: &str) -> Option<Fault> {
        if !self.token_paths.iter().any(|p| p == path) {
            return None;
        }
        let mut state = self.lock();
        if state.faults.front().is_some_and(Fault::is_wire_fault) {
            state.faults.pop_front()
        } else {
            None
        }
    }

    pub(crate) fn style(&self) -> ResponseStyle {
        self.lock().style
    }
}

/// A running mock server: its address, shared state and stop switch.
/// Dropping it stops the server.
pub(crate) struct MockCore {
    pub(crate) shared: Arc<Shared>,
    base_url: Url,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for MockCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockCore")
            .field("base_url", &self.base_url.as_str())
            .field("client_id", &self.shared.config.client_id)
            .finish_non_exhaustive()
    }
}

impl MockCore {
    /// Binds `127.0.0.1:0`, builds the router with `routes` (given the
    /// shared state), wraps it in the recording middleware and spawns it on
    /// the current tokio runtime.
    pub(crate) async fn start(
        config: MockConfig,
        token_paths: &[&str],
        routes: impl FnOnce(Arc<Shared>) -> Router,
    ) -> Result<Arc<Self>, MockError> {
        let shared = Arc::new(Shared {
            config,
            token_paths: token_paths.iter().map(|p| (*p).to_owned()).collect(),
            state: Mutex::new(State::default()),
        });
        let router = routes(Arc::clone(&shared))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&shared),
                wire_faults::apply,
            ))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&shared),
                recording::record,
            ));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(MockError::Bind)?;
        let addr = listener.local_addr().map_err(MockError::Bind)?;
        let base_url = Url::parse(&format!("http://{addr}/"))
            .map_err(|e| MockError::BadLocation(format!("http://{addr}/: {e}")))?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            });
            if let Err(err) = server.await {
                tracing::warn!(%err, "mock server stopped with an error");
            }
        });
        tracing::debug!(%base_url, "mock server started");
        Ok(Arc::new(Self {
            shared,
            base_url,
            stop: Mutex::new(Some(stop_tx)),
            task: Mutex::new(Some(task)),
        }))
    }

    pub(crate) fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    /// `path` (absolute, e.g. `/oauth/token`) on this server.
    pub(crate) fn url(&self, path: &str) -> Url {
        let mut url = self.base_url.clone();
        url.set_path(path);
        url
    }

    fn signal_stop(&self) {
        let sender = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(sender) = sender {
            let _ = sender.send(());
        }
    }

    /// Stops accepting connections and waits (up to a grace period) for
    /// open ones to finish.
    pub(crate) async fn shutdown(&self) {
        self.signal_stop();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }

    pub(crate) fn config(&self) -> &MockConfig {
        &self.shared.config
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    pub(crate) fn token_requests(&self) -> Vec<RecordedRequest> {
        let paths = &self.shared.token_paths;
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| paths.contains(&r.path))
            .cloned()
            .collect()
    }

    pub(crate) fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    pub(crate) fn push_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    pub(crate) fn set_style(&self, style: ResponseStyle) {
        self.shared.lock().style = style;
    }

    pub(crate) fn is_refresh_token_valid(&self, refresh_token: &str) -> bool {
        let now = self.shared.now();
        self.shared
            .lock()
            .grants
            .is_refresh_token_valid(refresh_token, now)
    }

    pub(crate) fn issued_access_tokens(&self) -> usize {
        self.shared.lock().grants.access_tokens_issued()
    }

    pub(crate) fn revoke_access_tokens(&self) -> usize {
        self.shared.lock().grants.access_tokens.revoke_all()
    }

    pub(crate) fn is_access_token_valid(&self, access_token: &str) -> bool {
        let (now, lifetime) = (self.shared.now(), self.shared.config.access_token_lifetime);
        let grants = &self.shared.lock().grants;
        grants
            .access_tokens
            .check(access_token, now, lifetime)
            .is_ok()
    }
}

impl Drop for MockCore {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
