//! The browser session that carries a sign-in from the Connect button to
//! the callback: [`tower_sessions`] with its SQLite store, so every
//! instance of the app that opens the same file sees the same sign-ins
//! (a load balancer may send the callback to another instance).
//!
//! The cookie holds nothing but the session's random id: `HttpOnly` (no
//! script reads it), `SameSite=Lax` (sent on the provider's top-level
//! redirect back, not on cross-site sub-requests or POSTs), `Path=/`,
//! `Secure` when the app is served over https, and a lifetime of
//! [`IDLE_LIFETIME`] since the last change. The
//! [`PendingAuthorization`] (state, PKCE verifier) is kept in the session
//! row on the server, serialized; it never reaches the browser.
//!
//! * One pending sign-in per provider and session, under
//!   `pending.<provider>` (so at most one per Connect button): a new
//!   Connect replaces the earlier one. Nothing is shared between sessions,
//!   so no number of other requests can push a person's sign-in out.
//! * The session id changes whenever a sign-in starts and when one
//!   completes ([`Session::cycle_id`]): an id planted in the browser
//!   before never carries a sign-in.
//! * The callback reads the pending sign-in first and takes it out only
//!   when the callback carries its state: a forged link leaves it usable.

use std::path::Path;
use std::time::Duration;

use oauth2_adapters::PendingAuthorization;
use tower_sessions::cookie::{time, SameSite};
use tower_sessions::session::Error as SessionError;
use tower_sessions::{ExpiredDeletion, Expiry, Session, SessionManagerLayer};
use tower_sessions_sqlx_store::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use tower_sessions_sqlx_store::SqliteStore;

use crate::BoxError;

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "connect_session";

/// How long a session lives after its last change. A little longer than
/// the adapters' own limit on a sign-in (10 minutes), so a late callback
/// gets their clear "expired" error rather than "no sign-in in progress".
pub(crate) const IDLE_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// How often expired sessions are deleted from the store.
const DELETE_EXPIRED_EVERY: Duration = Duration::from_secs(60);

/// How long a statement waits for another instance's write to the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating it if needed) the SQLite session store at `path`.
pub(crate) async fn open_store(path: &Path) -> Result<SqliteStore, BoxError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|e| format!("could not open the session store {}: {e}", path.display()))?;
    let store = SqliteStore::new(pool);
    store.migrate().await?;
    Ok(store)
}

/// Deletes expired sessions every minute, until aborted; a failed round
/// (the file busy) is reported and the next one tried.
pub(crate) async fn delete_expired_forever(store: SqliteStore) {
    let mut every = tokio::time::interval(DELETE_EXPIRED_EVERY);
    loop {
        every.tick().await;
        if let Err(err) = store.delete_expired().await {
            eprintln!("connect: could not delete expired sessions: {err}");
        }
    }
}

/// The session middleware: the cookie described in the module
/// documentation, `Secure` when `secure`.
pub(crate) fn layer(store: SqliteStore, secure: bool) -> SessionManagerLayer<SqliteStore> {
    let lifetime =
        time::Duration::seconds(i64::try_from(IDLE_LIFETIME.as_secs()).unwrap_or(i64::MAX));
    SessionManagerLayer::new(store)
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(lifetime))
}

fn key(provider: &str) -> String {
    format!("pending.{provider}")
}

/// Keeps `pending` as the session's sign-in to `provider` (replacing an
/// earlier one), under a new session id.
pub(crate) async fn start(
    session: &Session,
    provider: &str,
    pending: &PendingAuthorization,
) -> Result<(), SessionError> {
    if session.id().is_some() {
        session.cycle_id().await?;
    }
    session.insert(&key(provider), pending).await
}

/// The session's sign-in to `provider`, read but left in place. A stored
/// value that is no longer a valid pending authorization (altered, or from
/// an incompatible version) is dropped: the error names the part, never a
/// value.
pub(crate) async fn peek(
    session: &Session,
    provider: &str,
) -> Result<Option<PendingAuthorization>, SessionError> {
    match session.get::<PendingAuthorization>(&key(provider)).await {
        Err(SessionError::SerdeJson(err)) => {
            eprintln!("connect: a stored {provider} sign-in was dropped: {err}");
            session.remove_value(&key(provider)).await?;
            Ok(None)
        }
        other => other,
    }
}

/// Takes the session's sign-in to `provider` out, now that a callback
/// carrying its state uses it: the stored copy is deleted at once, and
/// the session goes on under a new id (or ends, if nothing else is in it).
pub(crate) async fn consume(session: &Session, provider: &str) -> Result<(), SessionError> {
    session.remove_value(&key(provider)).await?;
    if session.is_empty().await {
        session.flush().await
    } else {
        session.cycle_id().await
    }
}
