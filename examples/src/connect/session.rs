//! The browser session that carries a sign-in from the Connect button to
//! the callback: a random id in a cookie, and a bounded server-side map
//! from (session id, provider) to the [`PendingAuthorization`].
//!
//! The cookie holds nothing but 32 random bytes (base64url): `HttpOnly`
//! (no script reads it), `SameSite=Lax` (sent on the provider's top-level
//! redirect back, not on cross-site sub-requests or POSTs), `Path=/`,
//! `Secure` when the app is served over https, and no expiry (a browser
//! session cookie; the server forgets a sign-in after [`MAX_AGE`]). The
//! pending authorization (state, PKCE verifier) never leaves the server.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine as _;
use oauth2_adapters::PendingAuthorization;

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "connect_session";

/// How many sign-ins may be in progress at once, over all browsers; the
/// oldest is dropped to make room.
pub(crate) const MAX_PENDING: usize = 1024;

/// How long a sign-in may stay in progress. A little longer than the
/// adapters' own limit (10 minutes), so a late callback gets their clear
/// "expired" error rather than "no sign-in in progress".
pub(crate) const MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// Random bytes in a session id.
const ID_BYTES: usize = 32;

/// A session id: 32 random bytes, base64url. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct SessionId(String);

impl SessionId {
    /// A new random id from the operating system's generator.
    pub(crate) fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; ID_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }

    /// The id in the request's cookie, if there is a well-formed one.
    pub(crate) fn from_jar(jar: &CookieJar) -> Option<Self> {
        let value = jar.get(COOKIE_NAME)?.value();
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .ok()?;
        (decoded.len() == ID_BYTES).then(|| Self(value.to_owned()))
    }

    /// The cookie that carries this id (see the module documentation).
    pub(crate) fn cookie(&self, secure: bool) -> Cookie<'static> {
        Cookie::build((COOKIE_NAME, self.0.clone()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(secure)
            .build()
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

struct Entry {
    pending: PendingAuthorization,
    created: Instant,
}

/// The sign-ins in progress, keyed by session and provider: bounded to
/// [`MAX_PENDING`] entries of at most [`MAX_AGE`].
#[derive(Default)]
pub(crate) struct PendingSignIns {
    entries: Mutex<HashMap<(SessionId, &'static str), Entry>>,
}

impl PendingSignIns {
    /// Keeps `pending` for `session`'s sign-in to `provider`, replacing an
    /// earlier one for the same pair.
    pub(crate) fn put(
        &self,
        session: &SessionId,
        provider: &'static str,
        pending: PendingAuthorization,
    ) {
        let now = Instant::now();
        let mut entries = self.lock();
        entries.retain(|_, entry| now.duration_since(entry.created) <= MAX_AGE);
        let key = (session.clone(), provider);
        while entries.len() >= MAX_PENDING && !entries.contains_key(&key) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.created)
                .map(|(key, _)| key.clone());
            match oldest {
                Some(oldest) => entries.remove(&oldest),
                None => break,
            };
        }
        entries.insert(
            key,
            Entry {
                pending,
                created: now,
            },
        );
    }

    /// Takes out `session`'s sign-in to `provider` (so it is used once), if
    /// there is one younger than [`MAX_AGE`].
    pub(crate) fn take(
        &self,
        session: &SessionId,
        provider: &'static str,
    ) -> Option<PendingAuthorization> {
        let entry = self.lock().remove(&(session.clone(), provider))?;
        (entry.created.elapsed() <= MAX_AGE).then_some(entry.pending)
    }

    /// How many sign-ins are in progress.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(SessionId, &'static str), Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for PendingSignIns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSignIns")
            .field("in_progress", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use oauth2_adapters::hike::Hike;
    use oauth2_adapters::{AuthorizationCodeProvider, AuthorizeRequest, ClientCredentials};

    use super::*;

    /// Makes pending authorizations (one adapter: building one is slow).
    struct Pendings(Hike);

    impl Pendings {
        fn new() -> Self {
            Self(
                Hike::builder(ClientCredentials::new("id", "secret"))
                    .build()
                    .expect("a valid configuration"),
            )
        }

        fn next(&self) -> PendingAuthorization {
            let request = AuthorizeRequest::new("http://127.0.0.1:3000/callback/hike")
                .expect("a valid redirect URI");
            self.0.authorize(request).expect("an authorize URL").1
        }
    }

    #[test]
    fn a_pending_sign_in_is_taken_once_and_only_by_its_session() {
        let (sessions, pendings) = (PendingSignIns::default(), Pendings::new());
        let (a, b) = (
            SessionId::random().expect("random"),
            SessionId::random().expect("random"),
        );
        assert_ne!(a, b);
        sessions.put(&a, "hike", pendings.next());
        assert!(sessions.take(&b, "hike").is_none());
        assert!(sessions.take(&a, "hypersku").is_none());
        assert!(sessions.take(&a, "hike").is_some());
        assert!(sessions.take(&a, "hike").is_none());
    }

    #[test]
    fn the_map_is_bounded_and_drops_the_oldest() {
        let (sessions, pendings) = (PendingSignIns::default(), Pendings::new());
        let first = SessionId::random().expect("random");
        sessions.put(&first, "hike", pendings.next());
        for _ in 0..MAX_PENDING {
            sessions.put(
                &SessionId::random().expect("random"),
                "hike",
                pendings.next(),
            );
        }
        assert_eq!(sessions.len(), MAX_PENDING);
        assert!(sessions.take(&first, "hike").is_none());
    }

    #[test]
    fn the_cookie_is_http_only_lax_and_hides_nothing_else() {
        let id = SessionId::random().expect("random");
        let cookie = id.cookie(false).to_string();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(cookie.contains("Path=/"), "{cookie}");
        assert!(!cookie.contains("Secure"), "{cookie}");
        assert!(id.cookie(true).to_string().contains("Secure"));
        assert_eq!(format!("{id:?}"), "SessionId([redacted])");

        let jar = CookieJar::new().add(id.cookie(false));
        assert_eq!(SessionId::from_jar(&jar), Some(id));
        let forged = CookieJar::new().add(Cookie::new(COOKIE_NAME, "short"));
        assert_eq!(SessionId::from_jar(&forged), None);
    }
}
