//! Mock HyperSKU, Hike and partner OAuth2 servers, and a mock of any
//! provider spec, for tests and examples.
//!
//! Each mock is an [axum] server bound to `127.0.0.1` on a free port,
//! started in-process on the current tokio runtime. It follows its
//! provider's documentation (endpoint paths, parameter names, body
//! encodings, response and error shapes), keeps real grant state
//! (single-use codes valid 10 minutes, rotating refresh tokens) and records
//! every request it receives.
//!
//! | mock | flow | endpoints |
//! |---|---|---|
//! | [`HyperSkuMock`] | authorization code + refresh, camelCase JSON | [`hypersku`] |
//! | [`HikeMock`] | RFC 6749 authorization code + refresh, form-encoded | [`hike`] |
//! | [`PartnerMock`] | client credentials, JSON, JWT access token, no refresh | [`partner`] |
//! | [`SpecMock`] | whatever a [`ProviderSpec`](oauth2_adapters_core::ProviderSpec) says: names, bodies, client authentication, PKCE, rotation, envelopes, revocation | [`spec`] |
//!
//! Point an adapter at [`MockServer::base_url`], drive the authorize step
//! without a browser with `approve` / `deny` (they return the callback URL
//! the provider would redirect to), and inspect what the adapter sent with
//! [`MockServer::requests`] / [`MockServer::token_requests`].
//! [`MockServer::push_fault`] queues one-shot misbehaviours (error
//! statuses, HTML bodies, `Retry-After` in seconds or as an HTTP-date,
//! delays, truncated JSON, redirects, and faults on the wire after the
//! grant was processed: a connection reset mid-body, a slow body, a stall
//! before the headers)
//! and [`MockServer::set_style`] switches response shapes (HyperSKU's
//! envelope, numbers as strings, a missing `expires_in`). Time comes from
//! [`MockConfig::clock`], so a shared
//! [`ManualClock`](oauth2_adapters_core::ManualClock) lets tests expire
//! codes and tokens without sleeping.
//!
//! Refresh tokens rotate (Hike, HyperSKU). A spent refresh token presented
//! again is refused and counted ([`MockServer::refresh_token_reuses`]);
//! with [`MockConfig::revoke_on_reuse`] the mock also revokes the whole
//! grant family, as RFC 9700 §4.14.2 recommends: every refresh token
//! descended from the same code exchange, the live successor included, and
//! their access tokens. [`MockServer::rotations`] logs every successful
//! rotation (old and new refresh token, the wall-clock time the mock
//! committed it; its `Debug` redacts the tokens), and
//! [`MockConfig::refresh_delay_after_commit`] holds every refresh response
//! after that commit, so a crash test can kill a client between the
//! provider's rotation and its own.
//!
//! [`FaultProxy`] is an in-process TCP proxy on `127.0.0.1` for cutting the
//! link to any TCP service (the shared PostgreSQL, a mock) without stopping
//! it: [`ProxyMode`] `Pass`, `Refuse` (new connections reset at once),
//! `Blackhole` (bytes discarded, clients hang), `Stall` (bytes held, then
//! delivered) and `Reset` (every connection reset);
//! [`FaultProxy::cut_for`] restores `Pass` after a while,
//! [`FaultProxy::reset_all`] resets the open connections once ("the server
//! restarted"), [`FaultProxy::stats`] counts connections and bytes, and
//! [`FaultProxy::url_for`] points a database URL at the proxy.
//!
//! ```
//! use oauth2_adapters::testkit::{HikeMock, MockConfig, MockServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = HikeMock::start(MockConfig::default()).await?;
//! // An adapter would build this URL from `mock.base_url()`.
//! let authorize = mock.build_authorize_url(Some("xyz"));
//! let callback = mock.approve(&authorize).await?;
//! assert!(callback.as_str().starts_with("http://127.0.0.1:8976/callback?code="));
//! assert!(callback.as_str().ends_with("&state=xyz"));
//! assert_eq!(mock.requests().len(), 1);
//! mock.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Each mock also serves a small protected API (`GET /api/v1/me`,
//! `POST /api/v1/echo`) that accepts only access tokens it issued and has
//! not revoked ([`MockServer::revoke_access_tokens`]), for testing
//! authenticated requests. The HyperSKU and Hike authorize endpoints serve
//! a real HTML consent page (app name, scope, Allow / Deny) for browser
//! tests.
//!
//! Recorded requests only keep the `accept`, `authorization` and
//! `content-type` headers, so they snapshot well once secrets are replaced
//! with [`RecordedRequest::redacted`].
#![deny(missing_docs)]

mod common;
pub mod hike;
pub mod hypersku;
pub mod partner;
pub mod proxy;
pub mod spec;

pub use common::{
    Fault, MockConfig, MockError, MockServer, RecordedRequest, ResponseStyle, Rotation,
};
pub use hike::HikeMock;
pub use hypersku::HyperSkuMock;
pub use partner::PartnerMock;
pub use proxy::{FaultProxy, ProxyMode, ProxyStats, ProxyUrlError};
pub use spec::SpecMock;
