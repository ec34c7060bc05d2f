//! The HyperSKU adapter: authorization code with camelCase query parameters
//! and camelCase JSON token bodies (`accessToken`, `expiresIn`,
//! `refreshToken`, `refreshTokenExpireIn`, `scope`, `userId`).
//!
//! Responses are accepted bare (as documented) or inside a
//! `{code, msg, data}` envelope, numbers as JSON numbers or numeric strings.
//! Everything HyperSKU's documentation leaves unsaid (body field names, the
//! refresh path, the expiry unit) is configuration on [`HyperSkuBuilder`],
//! with the defaults listed in `docs/providers/hypersku.md`.
//!
//! ```no_run
//! use oauth2_adapters_core::{AuthorizationCodeProvider, AuthorizeRequest, ClientCredentials};
//! use oauth2_adapters_hypersku::HyperSku;
//!
//! let hypersku = HyperSku::builder(ClientCredentials::new("client-id", "client-secret")).build()?;
//! let (url, pending) = hypersku.authorize(AuthorizeRequest::new("https://example.com/callback")?)?;
//! // Send the user to `url`, keep `pending` until the callback.
//! # Ok::<(), oauth2_adapters_core::Error>(())
//! ```
#![deny(missing_docs)]

mod config;
mod provider;
mod wire;

pub use config::{
    BodyFieldNames, ExpiryUnit, HyperSkuBuilder, DEFAULT_ACCESS_TOKEN_PATH, DEFAULT_API_BASE_URL,
    DEFAULT_AUTHORIZE_URL, DEFAULT_INVALID_GRANT_CODES, DEFAULT_REFRESH_TOKEN_PATH, DEFAULT_SCOPE,
    DEFAULT_SUCCESS_CODES,
};
pub use provider::HyperSku;

use oauth2_adapters_core::ProviderId;

/// The id recorded in every HyperSKU token.
pub static PROVIDER_ID: ProviderId = ProviderId::from_static("hypersku");
