//! Helpers shared by the examples: printing a token as a table, a local
//! callback server for the code flows, running a code flow end to end, and
//! the [`connect`] example's web app.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::RawQuery;
use axum::routing::get;
use axum::Router;
use oauth2_adapters::adapter::redact::redacted_prefix;
use oauth2_adapters::{
    AuthorizationCodeProvider, AuthorizeRequest, CallbackParams, DisplayTime, ExposeSecret, Token,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use url::Url;

pub mod connect;

/// The error type of the examples.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// How many characters of a secret the examples show.
const VISIBLE_SECRET_CHARS: usize = 6;

/// Renders a token as a two-column table; secrets appear only as a short prefix.
pub fn token_table(title: &str, token: &Token) -> String {
    let mut rows: Vec<(String, String)> = vec![
        ("provider".into(), token.provider.to_string()),
        ("token type".into(), token.token_type.clone()),
        (
            "access token".into(),
            redacted_prefix(token.access_token.expose_secret(), VISIBLE_SECRET_CHARS),
        ),
        (
            "refresh token".into(),
            token.refresh_token.as_ref().map_or_else(
                || "(none)".into(),
                |t| redacted_prefix(t.expose_secret(), VISIBLE_SECRET_CHARS),
            ),
        ),
        ("expires at".into(), time_or_unknown(token.expires_at)),
        (
            "refresh expires at".into(),
            time_or_unknown(token.refresh_expires_at),
        ),
        ("scopes".into(), token.scopes.join(" ")),
        (
            "subject".into(),
            token.subject.clone().unwrap_or_else(|| "(unknown)".into()),
        ),
        ("issued at".into(), DisplayTime(token.issued_at).to_string()),
    ];
    for (key, value) in &token.extra {
        rows.push((format!("extra.{key}"), value.to_string()));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("── {title} ──\n");
    for (key, value) in rows {
        let _ = writeln!(out, "  {key:<width$}  {value}");
    }
    out
}

fn time_or_unknown(time: Option<std::time::SystemTime>) -> String {
    time.map_or_else(|| "(unknown)".into(), |t| DisplayTime(t).to_string())
}

/// A one-route web server on 127.0.0.1 that receives the provider's redirect.
pub struct CallbackServer {
    redirect_uri: Url,
    received: mpsc::Receiver<String>,
    server: tokio::task::JoinHandle<()>,
}

impl CallbackServer {
    /// Starts listening on `127.0.0.1:port` (0 picks a free port) at `/callback`.
    pub async fn start(port: u16) -> Result<Self, BoxError> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let (sender, received) = mpsc::channel(4);
        let app = Router::new().route(
            "/callback",
            get(move |RawQuery(query): RawQuery| {
                let sender = sender.clone();
                async move {
                    let _ = sender.send(query.unwrap_or_default()).await;
                    "Signed in: you can close this window and return to the terminal."
                }
            }),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            redirect_uri: Url::parse(&format!("http://127.0.0.1:{port}/callback"))?,
            received,
            server,
        })
    }

    /// The redirect URI to register with the provider.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Waits for the provider's redirect and parses its query.
    pub async fn next_callback(&mut self, timeout: Duration) -> Result<CallbackParams, BoxError> {
        let query = tokio::time::timeout(timeout, self.received.recv())
            .await
            .map_err(|_| "no callback arrived in time")?
            .ok_or("the callback server stopped")?;
        Ok(CallbackParams::from_query(&query)?)
    }
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Approves an authorize URL and returns the provider's redirect (the testkit's `approve`).
pub type ApproveFn =
    Box<dyn Fn(Url) -> Pin<Box<dyn Future<Output = Result<Url, BoxError>> + Send>> + Send + Sync>;

/// Who approves the authorization: a person in a browser, or the testkit.
pub enum Approver {
    /// Print the URL and wait for a person to sign in.
    Person,
    /// Ask the testkit's mock to approve, then follow its redirect to the
    /// callback server as a browser would.
    Sandbox(ApproveFn),
}

/// Runs the authorization code flow through a real callback server: build
/// the redirect, have it approved, receive the callback, exchange the code.
pub async fn sign_in<P>(
    provider: &P,
    callback: &mut CallbackServer,
    approver: &Approver,
) -> Result<Token, BoxError>
where
    P: AuthorizationCodeProvider + ?Sized,
{
    let request = AuthorizeRequest::new(callback.redirect_uri().as_str())?;
    let (url, pending) = provider.authorize(request)?;
    match approver {
        Approver::Person => {
            println!("Open this URL in your browser and approve the app:\n\n  {url}\n");
        }
        Approver::Sandbox(approve) => {
            let redirect = approve(url).await?;
            // Follow the redirect to our callback server, as the browser would.
            reqwest::get(redirect).await?.error_for_status()?;
        }
    }
    let params = callback.next_callback(Duration::from_secs(600)).await?;
    Ok(provider.handle_callback(params, pending).await?)
}

/// Reads a required environment variable, naming it in the error.
pub fn env_var(name: &str) -> Result<String, BoxError> {
    std::env::var(name)
        .map_err(|_| format!("set the environment variable {name} (or pass --sandbox)").into())
}

/// True when the command line has `--sandbox`.
pub fn sandbox_requested() -> bool {
    std::env::args().any(|arg| arg == "--sandbox")
}

/// Resolves on Ctrl-C, or on SIGTERM on Unix (what a service manager or
/// `kill` sends): the moment to call `TokenManager::shutdown`.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// A directory only the current user can read, for the examples' token
/// databases: `$XDG_DATA_HOME/oauth2-adapters-examples`, else
/// `~/.local/share/oauth2-adapters-examples`, created with mode 0700 (if it
/// already exists with wider permissions they are narrowed to 0700; if it is
/// not a directory or belongs to another user than the base, it is refused).
/// Never a fixed path under the shared temp directory, which another local
/// user could create first and read.
pub fn private_data_dir() -> std::io::Result<std::path::PathBuf> {
    use std::io::{Error, ErrorKind};
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".local/share"))
        })
        .ok_or_else(|| Error::new(ErrorKind::NotFound, "neither XDG_DATA_HOME nor HOME is set"))?;
    let dir = base.join("oauth2-adapters-examples");
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(&dir)?;
        let meta = std::fs::symlink_metadata(&dir)?;
        // The directory must belong to whoever owns the base (the user's
        // own data directory), not to another user who created it first.
        let owner = std::fs::metadata(&base)?.uid();
        if !meta.is_dir() || meta.uid() != owner {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("{} is not a directory of this user", dir.display()),
            ));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    #[cfg(not(unix))]
    builder.create(&dir)?;
    Ok(dir)
}
