//! The `connect` example's web app: a person connects their HyperSKU and
//! Hike accounts in a browser, and the app keeps the tokens.
//!
//! A library module, so the end-to-end browser test can start it in-process;
//! `examples/connect.rs` is its command line.
//!
//! * `GET /` lists the connected accounts (provider, subject, scopes,
//!   expiry: never a secret) under **Connect HyperSKU** / **Connect Hike**.
//! * A Connect button (a form `POST`, accepted only from the app's own
//!   origin) calls the adapter's `authorize()`, keeps the
//!   [`PendingAuthorization`](oauth2_adapters::PendingAuthorization) in the
//!   browser's session ([`tower_sessions`], rows in a SQLite file; the
//!   cookie holds only the session id, `HttpOnly`, `SameSite=Lax`, `Secure`
//!   over https) under a new session id, and redirects to the provider.
//! * `/callback/{provider}` reads the pending authorization, takes it out
//!   of the session only if the callback carries its state (so a forged
//!   link cannot cancel it), calls `handle_callback`, stores the token
//!   through the [`TokenManager`] in a SQLite file, and redirects home. A
//!   denial, a tampered state or an expired sign-in ends on a clear
//!   message page.
//!
//! Several instances that share the session file, the token file, the
//! public URL and the providers serve the same sign-ins: one behind a load
//! balancer may start a sign-in and another complete it.
//!
//! By default the testkit's HyperSKU and Hike mocks run on 127.0.0.1, their
//! consent pages standing in for the providers' sign-in.

mod accounts;
mod guard;
mod options;
mod pages;
mod problems;
mod providers;
mod routes;
mod session;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters::manager::TokenManager;
use oauth2_adapters::store_sql::SqliteStore;
use oauth2_adapters::TokenStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

pub use options::{Command, Options, ProviderChoice, DEFAULT_PORT, USAGE};
pub use providers::Mocks;

use crate::BoxError;

/// How long [`ConnectApp::shutdown`] lets open connections finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long [`ConnectApp::shutdown`] waits for running refreshes and pending
/// writes: longer than the providers' longest request with its retries
/// (`Renewal::worst_case`, 45 s with the default settings). It returns as
/// soon as they are done, so a generous deadline costs nothing.
const REFRESH_DRAIN_DEADLINE: Duration = Duration::from_secs(60);

/// The running app: its URLs, its token and session files and, by
/// default, the mock providers. Dropping it stops the server (and the mocks).
pub struct ConnectApp {
    url: Url,
    local_url: Url,
    redirect_uris: Vec<(&'static str, Url)>,
    db_path: PathBuf,
    sessions_path: PathBuf,
    store: Arc<dyn TokenStore>,
    manager: TokenManager,
    mocks: Option<Mocks>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
    session_cleanup: JoinHandle<()>,
    // Last: removed after everything that uses the database file.
    _temp_dir: Option<tempfile::TempDir>,
}

impl ConnectApp {
    /// Binds `127.0.0.1:<port>`, starts the providers (the mocks, the
    /// mocks of another instance, or the real ones), opens the token and
    /// session stores and serves the app.
    pub async fn start(options: Options) -> Result<Self, BoxError> {
        let listener = TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|e| format!("could not listen on 127.0.0.1:{}: {e}", options.port))?;
        let served_by = format!("127.0.0.1:{}", listener.local_addr()?.port());
        let local_url = Url::parse(&format!("http://{served_by}/"))?;
        let url = options.public_url.unwrap_or_else(|| local_url.clone());

        let (providers, mocks) = match &options.providers {
            ProviderChoice::StartMocks => {
                let (providers, mocks) = providers::sandbox(&url, &options.app_name).await?;
                (providers, Some(mocks))
            }
            ProviderChoice::MocksAt { hypersku, hike } => {
                (providers::at_mocks(&url, hypersku, hike)?, None)
            }
            ProviderChoice::Real => (providers::real(&url)?, None),
        };

        let temp_dir = if options.db.is_none() || options.sessions.is_none() {
            Some(
                tempfile::Builder::new()
                    .prefix("oauth2-adapters-connect-")
                    .tempdir()?,
            )
        } else {
            None
        };
        let in_temp = |name: &str| temp_dir.as_ref().map(|dir| dir.path().join(name));
        let db_path = options
            .db
            .or_else(|| in_temp("tokens.sqlite"))
            .ok_or("no token file")?;
        let sessions_path = options
            .sessions
            .or_else(|| in_temp("sessions.sqlite"))
            .ok_or("no session file")?;
        let store: Arc<dyn TokenStore> = Arc::new(SqliteStore::open(&db_path).await?);
        let sessions = session::open_store(&sessions_path).await?;
        let manager = providers
            .iter()
            .fold(TokenManager::builder().store(store.clone()), |b, p| {
                b.provider(p.adapter.clone())
            })
            .build()?;

        let redirect_uris = providers
            .iter()
            .map(|p| (p.name, p.redirect_uri.clone()))
            .collect();
        let secure_cookies = url.scheme() == "https";
        let state = Arc::new(routes::AppState {
            app_name: options.app_name,
            providers,
            manager: manager.clone(),
            store: store.clone(),
            origin: url.origin().ascii_serialization(),
            served_by,
        });
        let session_cleanup = tokio::spawn(session::delete_expired_forever(sessions.clone()));
        let app = routes::router(state, sessions, secure_cookies);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(err) = served {
                eprintln!("connect: the server stopped: {err}");
            }
        });
        Ok(Self {
            url,
            local_url,
            redirect_uris,
            db_path,
            sessions_path,
            store,
            manager,
            mocks,
            stop: Some(stop),
            server,
            session_cleanup,
            _temp_dir: temp_dir,
        })
    }

    /// The app's home page as browsers reach it: the public URL
    /// (`http://127.0.0.1:PORT/` unless one was given).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// This instance's own address, `http://127.0.0.1:PORT/` (behind a
    /// load balancer, where the balancer sends requests).
    pub fn local_url(&self) -> &Url {
        &self.local_url
    }

    /// Each provider's name and the redirect URI registered for it.
    pub fn redirect_uris(&self) -> &[(&'static str, Url)] {
        &self.redirect_uris
    }

    /// The SQLite file the tokens are kept in.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The SQLite file the browser sessions are kept in.
    pub fn sessions_path(&self) -> &Path {
        &self.sessions_path
    }

    /// The token store (tests read it to know the issued tokens).
    pub fn store(&self) -> Arc<dyn TokenStore> {
        self.store.clone()
    }

    /// The mock providers, unless the app uses the real ones.
    pub fn mocks(&self) -> Option<&Mocks> {
        self.mocks.as_ref()
    }

    /// Stops the server, letting open requests finish for a few seconds,
    /// then the token manager (running refreshes finish, pending writes land).
    pub async fn shutdown(mut self) {
        self.session_cleanup.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
        let report = self.manager.shutdown(REFRESH_DRAIN_DEADLINE).await;
        for lost in &report.unpersisted {
            eprintln!(
                "connect: {}: a refreshed token could not be stored",
                lost.key
            );
        }
    }
}

impl Drop for ConnectApp {
    fn drop(&mut self) {
        self.server.abort();
        self.session_cleanup.abort();
    }
}
