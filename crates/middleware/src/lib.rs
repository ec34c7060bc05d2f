//! Authenticated requests through [`reqwest_middleware`]: [`BearerAuth`]
//! puts a valid access token from a
//! [`TokenManager`](oauth2_adapters_core::manager::TokenManager) on every
//! request, and when the API answers 401 it forces one refresh and retries
//! the request once.
//!
//! ```no_run
//! use oauth2_adapters::middleware::reqwest_middleware::{reqwest, ClientBuilder};
//! use oauth2_adapters::middleware::BearerAuth;
//! use oauth2_adapters::prelude::*;
//!
//! # async fn run(manager: TokenManager, key: TokenKey) -> Result<(), Box<dyn std::error::Error>> {
//! let api = ClientBuilder::new(reqwest::Client::new())
//!     .with(BearerAuth::new(manager, key))
//!     .build();
//! let me = api.get("https://api.example.com/v1/me").send().await?;
//! let echoed = api
//!     .post("https://api.example.com/v1/echo")
//!     .query(&[("dry_run", "true")])
//!     .json(&[("note", "hello")])
//!     .send()
//!     .await?;
//! # let _ = (me, echoed); Ok(()) }
//! ```
//!
//! [`reqwest_middleware`] and [`reqwest`] are re-exported with the `json`,
//! `form` and `query` features on, so `.json(..)`, `.form(..)`, `.query(..)`
//! and `Response::json` work without adding either crate (add them yourself
//! only for other features, e.g. `reqwest`'s `stream` or `multipart`, at the
//! same versions: reqwest-middleware 0.5, reqwest 0.13).
//!
//! The rules, in order:
//!
//! 1. The key is the request's [`TokenKey`](oauth2_adapters_core::TokenKey)
//!    extension if it has one
//!    ([`RequestBuilder::with_extension`](reqwest_middleware::RequestBuilder::with_extension),
//!    one client for many accounts), else the middleware's key.
//! 2. [`TokenManager::get`](oauth2_adapters_core::manager::TokenManager::get)
//!    gives the token (cached, refreshed when due); its
//!    `Authorization` header replaces any the request had, marked
//!    sensitive. A manager error (e.g. re-authorization required) is
//!    returned as [`reqwest_middleware::Error::Middleware`] wrapping the
//!    [`oauth2_adapters_core::Error`]: see [`token_error`].
//! 3. Any status but 401 is returned as is.
//! 4. On a 401 for a token that a refresh forced by an earlier 401 gave
//!    less than [`BearerAuth::with_forced_refresh_interval`] ago (30 s by
//!    default), the 401 is returned as is: an API that keeps refusing does
//!    not rotate the refresh token on every request.
//! 5. On another 401, [`TokenManager::force_refresh`](oauth2_adapters_core::manager::TokenManager::force_refresh)
//!    renews the rejected token (single-flighted per key: concurrent 401s
//!    on one token cause one refresh; a caller whose token another task
//!    already replaced gets the new token without a request). A failure
//!    is returned as in rule 2.
//! 6. The request is sent again, once, with the new token, and that
//!    response is returned whatever its status: never a second retry. It
//!    is not sent again, and the 401 is returned, when its body cannot be
//!    replayed ([`reqwest::Request::try_clone`] gives `None`: a stream; the
//!    token is refreshed all the same, so the caller's own retry uses the
//!    new one) or when the manager handed back the very token the API just
//!    rejected (a provider that re-issues the same access token): resending
//!    a credential the API refused a moment ago would only cost a request.
//!
//! Nothing here logs or formats a token: a `debug` event on each retry
//! names the key (`provider|account|scopes`) and the new token's version.
#![deny(missing_docs)]

mod bearer;

pub use bearer::{token_error, BearerAuth, DEFAULT_FORCED_REFRESH_INTERVAL};
/// The `reqwest` under [`reqwest_middleware`] (0.13), with its `json`,
/// `form` and `query` features: the same crate as
/// `reqwest_middleware::reqwest`.
pub use reqwest;
/// The `reqwest-middleware` this crate is built for (0.5, on reqwest 0.13),
/// with its `json`, `form` and `query` features.
pub use reqwest_middleware;
