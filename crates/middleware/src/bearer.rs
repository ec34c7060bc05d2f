//! [`BearerAuth`]: the token manager's access token on every request, one
//! forced refresh and one retry on a 401.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use http::header::AUTHORIZATION;
use http::{Extensions, HeaderValue, StatusCode};
use oauth2_adapters_core::manager::{AccessToken, TokenManager};
use oauth2_adapters_core::{Error, TokenKey};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

/// A [`Middleware`] that authorizes each request with the access token of
/// a [`TokenKey`] from a [`TokenManager`], and on a 401 forces one refresh
/// and retries the request once (the rules: the [crate docs](crate)).
///
/// Cheap to clone. Its `Debug` shows the key only.
#[derive(Clone)]
pub struct BearerAuth {
    manager: TokenManager,
    key: TokenKey,
    pacer: Arc<ForcedRefreshPacer>,
}

/// The default of [`BearerAuth::with_forced_refresh_interval`].
pub const DEFAULT_FORCED_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Entries kept before old ones are pruned.
const PACER_PRUNE_AT: usize = 4096;

/// Remembers, per key, when a 401 last forced a refresh and which token
/// version that refresh gave: a 401 on that token (or a newer one) within
/// the interval is not worth another refresh.
struct ForcedRefreshPacer {
    interval: Duration,
    last: Mutex<HashMap<TokenKey, (Instant, u64)>>,
}

impl ForcedRefreshPacer {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, (Instant, u64)>> {
        self.last
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// True when a refresh forced for `key` within the interval already
    /// produced `rejected` or a newer token.
    fn is_paced(&self, key: &TokenKey, rejected: &AccessToken) -> bool {
        self.lock().get(key).is_some_and(|(at, version)| {
            rejected.version() >= *version && at.elapsed() < self.interval
        })
    }

    fn forced(&self, key: &TokenKey, fresh: &AccessToken) {
        let mut last = self.lock();
        if last.len() >= PACER_PRUNE_AT {
            last.retain(|_, (at, _)| at.elapsed() < self.interval);
        }
        last.insert(key.clone(), (Instant::now(), fresh.version()));
    }
}

impl BearerAuth {
    /// Authorizes requests with `key`'s token from `manager` (the manager
    /// is a shared handle: pass a clone of the one the application uses).
    /// A request's own [`TokenKey`] extension overrides `key`.
    pub fn new(manager: TokenManager, key: TokenKey) -> Self {
        Self {
            manager,
            key,
            pacer: Arc::new(ForcedRefreshPacer::new(DEFAULT_FORCED_REFRESH_INTERVAL)),
        }
    }

    /// A 401 forces at most one refresh per key per `interval` (default
    /// 30 s): a 401 on the token such a refresh gave, within the interval,
    /// is returned to the caller as it is, so an API that keeps refusing
    /// (a revoked grant, a missing permission) does not rotate the refresh
    /// token on every request.
    pub fn with_forced_refresh_interval(mut self, interval: Duration) -> Self {
        self.pacer = Arc::new(ForcedRefreshPacer::new(interval));
        self
    }

    /// The key used for requests without a [`TokenKey`] extension.
    pub fn key(&self) -> &TokenKey {
        &self.key
    }
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Middleware for BearerAuth {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let key = extensions.get::<TokenKey>().unwrap_or(&self.key).clone();
        let token = self.manager.get(&key).await.map_err(middleware_error)?;
        let replay = request.try_clone();
        authorize(&mut request, &key, &token)?;
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        if self.pacer.is_paced(&key, &token) {
            tracing::debug!(token.key = %key, "the API rejected a token refreshed moments ago: returning the 401 without another refresh");
            return Ok(response);
        }
        let fresh = self
            .manager
            .force_refresh(&key, &token)
            .await
            .map_err(middleware_error)?;
        if fresh.version() > token.version() {
            self.pacer.forced(&key, &fresh);
        }
        let Some(mut replay) = replay else {
            tracing::debug!(token.key = %key, "the API rejected the access token; refreshed it, but the request body cannot be replayed: not retrying");
            return Ok(response);
        };
        if fresh.expose_authorization_header() == token.expose_authorization_header() {
            tracing::debug!(token.key = %key, "the API rejected the access token and the refresh gave the same token back: not retrying");
            return Ok(response);
        }
        tracing::debug!(token.key = %key, token.version = fresh.version(), "the API rejected the access token; retrying once with the refreshed token");
        drop(response);
        authorize(&mut replay, &key, &fresh)?;
        next.run(replay, extensions).await
    }
}

/// Sets the request's `Authorization` header to `token`'s, marked sensitive.
fn authorize(
    request: &mut Request,
    key: &TokenKey,
    token: &AccessToken,
) -> reqwest_middleware::Result<()> {
    let mut value = HeaderValue::from_str(token.expose_authorization_header()).map_err(|_| {
        middleware_error(Error::InvalidResponse {
            provider: key.provider(),
            reason: "the access token has characters an HTTP header cannot carry".into(),
            excerpt: String::new(),
        })
    })?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}

fn middleware_error(error: Error) -> reqwest_middleware::Error {
    reqwest_middleware::Error::Middleware(anyhow::Error::new(error))
}

/// The token manager's [`Error`] when that is why a request through
/// [`BearerAuth`] failed (no token for the key, re-authorization required,
/// a failed refresh); `None` for transport and other middleware errors.
///
/// ```
/// # fn check(result: reqwest_middleware::Result<reqwest::Response>) {
/// if let Err(error) = &result {
///     if oauth2_adapters::middleware::token_error(error)
///         .is_some_and(|e| e.requires_reauthorization())
///     {
///         // ask the user to sign in again
///     }
/// }
/// # }
/// ```
pub fn token_error(error: &reqwest_middleware::Error) -> Option<&Error> {
    if let reqwest_middleware::Error::Middleware(error) = error {
        error.downcast_ref::<Error>()
    } else {
        None
    }
}
