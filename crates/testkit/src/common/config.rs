//! The registration and lifetimes a mock is started with.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters_core::{Clock, SystemClock};

use super::grants::OnReuse;

/// How a mock provider is set up: the one registered client, its redirect
/// URI, token lifetimes and the clock that drives every expiry.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use oauth2_adapters::ManualClock;
/// use oauth2_adapters::testkit::MockConfig;
///
/// let clock = ManualClock::at_unix(1_700_000_000);
/// let config = MockConfig::default()
///     .with_redirect_uri("http://127.0.0.1:9000/cb")
///     .with_access_token_lifetime(Duration::from_secs(60))
///     .with_clock(Arc::new(clock));
/// assert_eq!(config.client_id, "test-client-id");
/// ```
#[derive(Clone)]
pub struct MockConfig {
    /// The registered client id (default `"test-client-id"`).
    pub client_id: String,
    /// The registered application's name, shown on the consent page
    /// (default `"Example App"`).
    pub app_name: String,
    /// The registered client secret (default `"test-client-secret-0123456789"`).
    pub client_secret: String,
    /// The registered redirect URI (default `"http://127.0.0.1:8976/callback"`).
    /// Authorize requests and code exchanges must send exactly this string.
    pub redirect_uri: String,
    /// Lifetime of issued access tokens (default 3600 s).
    pub access_token_lifetime: Duration,
    /// Lifetime of issued refresh tokens (default 30 days). HyperSKU reports
    /// it as `refreshTokenExpireIn`; Hike does not report it but the mock
    /// still rejects a refresh token older than this.
    pub refresh_token_lifetime: Duration,
    /// The clock used for code expiry (10 minutes), token issue times,
    /// Hike's `expires` and the partner JWT's `iat`/`nbf`/`exp`
    /// (default [`SystemClock`]).
    pub clock: Arc<dyn Clock>,
    /// RFC 9700 §4.14.2 (default off): when a spent refresh token is
    /// presented again, revoke its whole family: every refresh token
    /// descended from the same code exchange, the live successor included,
    /// and their access tokens (the protected API refuses them). The reuse
    /// itself is refused (`invalid_grant`) either way, and counted in
    /// [`MockServer::refresh_token_reuses`](crate::MockServer::refresh_token_reuses).
    pub revoke_on_reuse: bool,
    /// How long (real time) every successful refresh response is held
    /// after the rotation was committed (the old refresh token spent, the
    /// new one issued and logged in
    /// [`MockServer::rotations`](crate::MockServer::rotations)) and
    /// before it is sent (default zero). Unlike the one-shot
    /// [`Fault::StallAfterProcessing`](crate::Fault::StallAfterProcessing),
    /// it applies to every refresh (not to code exchanges), so a crash test
    /// can land kills between the provider's rotation and the client's commit.
    pub refresh_delay_after_commit: Duration,
    /// Prepended to every access and refresh token the mock issues (default
    /// empty), so tests can try token values of any shape: `"enc:"` makes
    /// them look like a store's ciphertext, for example.
    pub token_prefix: String,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            client_id: "test-client-id".to_owned(),
            app_name: "Example App".to_owned(),
            client_secret: "test-client-secret-0123456789".to_owned(),
            redirect_uri: "http://127.0.0.1:8976/callback".to_owned(),
            access_token_lifetime: Duration::from_secs(3600),
            refresh_token_lifetime: Duration::from_secs(30 * 24 * 3600),
            clock: Arc::new(SystemClock),
            revoke_on_reuse: false,
            refresh_delay_after_commit: Duration::ZERO,
            token_prefix: String::new(),
        }
    }
}

/// Shows everything but the client secret.
impl fmt::Debug for MockConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockConfig")
            .field("client_id", &self.client_id)
            .field("app_name", &self.app_name)
            .field("client_secret", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("refresh_token_lifetime", &self.refresh_token_lifetime)
            .field("clock", &self.clock)
            .field("revoke_on_reuse", &self.revoke_on_reuse)
            .field(
                "refresh_delay_after_commit",
                &self.refresh_delay_after_commit,
            )
            .field("token_prefix", &self.token_prefix)
            .finish()
    }
}

impl MockConfig {
    /// Sets [`MockConfig::redirect_uri`].
    pub fn with_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = uri.into();
        self
    }

    /// Sets [`MockConfig::clock`] (e.g. a shared
    /// [`ManualClock`](oauth2_adapters_core::ManualClock)).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets [`MockConfig::access_token_lifetime`].
    pub fn with_access_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.access_token_lifetime = lifetime;
        self
    }

    /// Sets [`MockConfig::refresh_token_lifetime`].
    pub fn with_refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_token_lifetime = lifetime;
        self
    }

    /// Sets [`MockConfig::client_id`].
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Sets [`MockConfig::app_name`], the name the consent page shows.
    pub fn with_app_name(mut self, app_name: impl Into<String>) -> Self {
        self.app_name = app_name.into();
        self
    }

    /// Sets [`MockConfig::revoke_on_reuse`].
    pub fn with_revoke_on_reuse(mut self, revoke: bool) -> Self {
        self.revoke_on_reuse = revoke;
        self
    }

    /// Sets [`MockConfig::refresh_delay_after_commit`].
    pub fn with_refresh_delay_after_commit(mut self, delay: Duration) -> Self {
        self.refresh_delay_after_commit = delay;
        self
    }

    /// Sets [`MockConfig::token_prefix`].
    pub fn with_token_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.token_prefix = prefix.into();
        self
    }

    /// The prefix of the tokens a mock whose own prefix is `mock` issues:
    /// [`MockConfig::token_prefix`] then `mock` (`hike_at_1_…`).
    pub(crate) fn issued_prefix(&self, mock: &str) -> String {
        format!("{}{mock}", self.token_prefix)
    }

    /// The [`OnReuse`] rule [`MockConfig::revoke_on_reuse`] selects.
    pub(crate) fn on_reuse(&self) -> OnReuse {
        if self.revoke_on_reuse {
            OnReuse::RevokeFamily
        } else {
            OnReuse::Refuse
        }
    }

    /// Holds a successful refresh response for
    /// [`MockConfig::refresh_delay_after_commit`].
    pub(crate) async fn hold_refresh_response(&self) {
        if !self.refresh_delay_after_commit.is_zero() {
            tokio::time::sleep(self.refresh_delay_after_commit).await;
        }
    }

    /// Sets [`MockConfig::client_secret`].
    pub fn with_client_secret(mut self, client_secret: impl Into<String>) -> Self {
        self.client_secret = client_secret.into();
        self
    }
}
