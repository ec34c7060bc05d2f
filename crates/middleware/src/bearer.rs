//! [`BearerAuth`]: the token manager's access token on every request, one
//! forced refresh and one retry on a 401.

use std::fmt;

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
}

impl BearerAuth {
    /// Authorizes requests with `key`'s token from `manager` (the manager
    /// is a shared handle: pass a clone of the one the application uses).
    /// A request's own [`TokenKey`] extension overrides `key`.
    pub fn new(manager: TokenManager, key: TokenKey) -> Self {
        Self { manager, key }
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
        let fresh = self
            .manager
            .force_refresh(&key, &token)
            .await
            .map_err(middleware_error)?;
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
///     if oauth2_adapters_middleware::token_error(error)
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
