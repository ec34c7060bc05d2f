//! The Hike adapter: a standard RFC 6749 authorization code flow,
//! form-encoded, with rotating refresh tokens and an extra absolute
//! `expires` field.
//!
//! It is a [`StandardProvider`](oauth2_adapters_core::StandardProvider)
//! described by Hike's endpoints, plus one quirk: the absolute `expires`
//! is cross-checked with `expires_in` (see `docs/providers/hike.md`).
//!
//! ```no_run
//! use oauth2_adapters_core::{AuthorizationCodeProvider, AuthorizeRequest, ClientCredentials};
//! use oauth2_adapters_hike::Hike;
//!
//! let hike = Hike::builder(ClientCredentials::new("app-id", "app-secret")).build()?;
//! let (url, pending) = hike.authorize(AuthorizeRequest::new("https://example.com/callback")?)?;
//! // Send the user to `url`, keep `pending` until the callback.
//! # Ok::<(), oauth2_adapters_core::Error>(())
//! ```
#![deny(missing_docs)]

mod config;
mod provider;
mod wire;

pub use config::{HikeBuilder, DEFAULT_BASE_URL, DEFAULT_SCOPE};
pub use provider::Hike;

use oauth2_adapters_core::ProviderId;

/// The id recorded in every Hike token.
pub static PROVIDER_ID: ProviderId = ProviderId::from_static("hike");
