//! The partner bookings API adapter: client credentials with a JSON body,
//! a JWT access token, and no refresh (a new token is requested instead,
//! [`RenewalKind::Reacquire`](oauth2_adapters_core::RenewalKind)).
//!
//! The JWT's payload is **decoded, not verified**: it is read only for the
//! expiry (when `expires_in` is missing), the scopes and the partner/user
//! ids. The API that receives the token verifies it; a client has no key to.
//!
//! ```no_run
//! use oauth2_adapters::{ClientCredentials, ClientCredentialsProvider};
//! use oauth2_adapters::partner::Partner;
//!
//! # async fn run() -> oauth2_adapters::Result<()> {
//! let partner = Partner::builder(ClientCredentials::new("client-id", "client-secret"))
//!     .base_url("https://bookings.example.com")
//!     .build()?;
//! let token = partner.client_credentials(&[]).await?;
//! # Ok(()) }
//! ```
//!
//! The partner has no authorization code flow, so asking it for an
//! authorize URL does not compile:
//!
//! ```compile_fail
//! use oauth2_adapters::{AuthorizationCodeProvider, AuthorizeRequest, ClientCredentials};
//! use oauth2_adapters::partner::Partner;
//!
//! let partner = Partner::builder(ClientCredentials::new("id", "secret"))
//!     .base_url("https://bookings.example.com")
//!     .build()
//!     .unwrap();
//! let _ = partner.authorize(AuthorizeRequest::new("https://example.com/cb").unwrap());
//! ```
#![deny(missing_docs)]

mod config;
mod provider;
mod wire;

pub use config::{PartnerBuilder, DEFAULT_TOKEN_PATH};
pub use provider::Partner;
#[doc(hidden)]
pub use wire::fuzzing;

use oauth2_adapters_core::ProviderId;

/// The id recorded in every partner token.
pub static PROVIDER_ID: ProviderId = ProviderId::from_static("partner");
