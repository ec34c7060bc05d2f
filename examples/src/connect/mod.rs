//! The `connect` example's web app: a person connects their HyperSKU and
//! Hike accounts in a browser, and the app keeps the tokens.
//!
//! A library module, so the end-to-end browser test can start it in-process;
//! `examples/connect.rs` is its command line.
//!
//! * `GET /` lists the connected accounts (provider, subject, scopes,
//!   expiry: never a secret) under **Connect HyperSKU** / **Connect Hike**.
//! * A Connect button calls the adapter's `authorize()`, keeps the
//!   [`PendingAuthorization`](oauth2_adapters::PendingAuthorization) on the
//!   server under a random session id carried by an `HttpOnly`,
//!   `SameSite=Lax` cookie (bounded in count and age), and redirects to the
//!   provider.
//! * `/callback/{provider}` takes the pending authorization out (single
//!   use), calls `handle_callback`, stores the token through the
//!   [`TokenManager`] in a SQLite file, and redirects home. A denial, a
//!   tampered state or an expired sign-in ends on a clear message page.
//!
//! By default the testkit's HyperSKU and Hike mocks run on 127.0.0.1, their
//! consent pages standing in for the providers' sign-in.

mod accounts;
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

pub use options::{Command, Options, DEFAULT_PORT, USAGE};
pub use providers::Mocks;

use crate::BoxError;

/// How long [`ConnectApp::shutdown`] lets open connections finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The running app: its URL, its token store and, by default, the mock
/// providers. Dropping it stops the server (and the mocks).
pub struct ConnectApp {
    url: Url,
    redirect_uris: Vec<(&'static str, Url)>,
    db_path: PathBuf,
    store: Arc<dyn TokenStore>,
    manager: TokenManager,
    mocks: Option<Mocks>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<()>,
    // Last: removed after everything that uses the database file.
    _temp_dir: Option<tempfile::TempDir>,
}

impl ConnectApp {
    /// Binds `127.0.0.1:<port>`, starts the providers (the mocks, or the
    /// real ones with `options.real`), opens the store and serves the app.
    pub async fn start(options: Options) -> Result<Self, BoxError> {
        let listener = TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|e| format!("could not listen on 127.0.0.1:{}: {e}", options.port))?;
        let url = Url::parse(&format!(
            "http://127.0.0.1:{}/",
            listener.local_addr()?.port()
        ))?;

        let (providers, mocks) = if options.real {
            (providers::real(&url)?, None)
        } else {
            let (providers, mocks) = providers::sandbox(&url, &options.app_name).await?;
            (providers, Some(mocks))
        };

        let (db_path, temp_dir) = match options.db {
            Some(path) => (path, None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("oauth2-adapters-connect-")
                    .tempdir()?;
                (dir.path().join("tokens.sqlite"), Some(dir))
            }
        };
        let store: Arc<dyn TokenStore> = Arc::new(SqliteStore::open(&db_path).await?);
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
        let state = Arc::new(routes::AppState {
            app_name: options.app_name,
            providers,
            sessions: session::PendingSignIns::default(),
            manager: manager.clone(),
            store: store.clone(),
            secure_cookies: url.scheme() == "https",
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, routes::router(state))
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
            redirect_uris,
            db_path,
            store,
            manager,
            mocks,
            stop: Some(stop),
            server,
            _temp_dir: temp_dir,
        })
    }

    /// The app's home page, `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Each provider's name and the redirect URI registered for it.
    pub fn redirect_uris(&self) -> &[(&'static str, Url)] {
        &self.redirect_uris
    }

    /// The SQLite file the tokens are kept in.
    pub fn db_path(&self) -> &Path {
        &self.db_path
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
        let report = self.manager.shutdown(SHUTDOWN_GRACE).await;
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
    }
}
