//! The Hike adapter: a standard RFC 6749 authorization code flow,
//! form-encoded, with rotating refresh tokens and an extra absolute
//! `expires` field.
//!
//! It is Hike's spec ([`default_spec`], the same as
//! `examples/providers/hike.toml`) spoken by the core's
//! [`SpecProvider`](oauth2_adapters_core::SpecProvider), behind a typed
//! builder. Its one quirk is data too: `expires_in` wins, and the absolute
//! `expires` is used only when `expires_in` is missing or zero and
//! `expires` lies ahead (see `docs/providers/hike.md`).
//!
//! ```no_run
//! use oauth2_adapters::{AuthorizationCodeProvider, AuthorizeRequest, ClientCredentials};
//! use oauth2_adapters::hike::Hike;
//!
//! let hike = Hike::builder(ClientCredentials::new("app-id", "app-secret")).build()?;
//! let (url, pending) = hike.authorize(AuthorizeRequest::new("https://example.com/callback")?)?;
//! // Send the user to `url`, keep `pending` until the callback.
//! # Ok::<(), oauth2_adapters::Error>(())
//! ```
#![deny(missing_docs)]

mod config;
mod provider;

pub use config::{HikeBuilder, DEFAULT_BASE_URL, DEFAULT_SCOPE};
pub use provider::Hike;

use oauth2_adapters_core::ProviderId;

/// The id recorded in every Hike token.
pub static PROVIDER_ID: ProviderId = ProviderId::from_static("hike");

/// Hike's documented dialect, as data (`spec.toml` in this crate, the same
/// as `examples/providers/hike.toml`): what [`Hike`] speaks with the
/// builder's defaults. (It always loads: a unit test checks it.)
pub fn default_spec() -> Result<oauth2_adapters_core::ProviderSpec, oauth2_adapters_core::SpecError>
{
    oauth2_adapters_core::ProviderSpec::from_toml(include_str!("../spec.toml"))
}

/// Entry points for the fuzz targets in `fuzz/`: **not a stable API**.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::{Arc, OnceLock};

    use oauth2_adapters_core::adapter::HttpResponse;
    use oauth2_adapters_core::{ClientCredentials, Error, ManualClock, ProviderSettings, Token};

    pub use oauth2_adapters_core::fuzzing::{FuzzGrant, CODE, PKCE_VERIFIER, REFRESH_TOKEN};

    use crate::Hike;

    /// The client secret the adapter sent.
    pub const CLIENT_SECRET: &str = "fz-hike-client-secret-Ka1Sd9";
    /// The clock's time, in Unix seconds.
    pub const NOW_UNIX: u64 = 1_800_000_000;

    /// The adapter Hike's builder makes, PKCE on so the verifier is a
    /// known secret too.
    fn adapter() -> Result<&'static Hike, Error> {
        static ADAPTER: OnceLock<Hike> = OnceLock::new();
        if let Some(adapter) = ADAPTER.get() {
            return Ok(adapter);
        }
        let settings =
            ProviderSettings::new()?.with_clock(Arc::new(ManualClock::at_unix(NOW_UNIX)));
        let adapter = Hike::builder(ClientCredentials::new("fz-client", CLIENT_SECRET))
            .pkce(true)
            .settings(settings)
            .build()?;
        Ok(ADAPTER.get_or_init(|| adapter))
    }

    /// Reads a canned token-endpoint answer to `grant` through the
    /// adapter's code path (the spec engine's parsing, error mapping and
    /// normalization, Hike's expiry rule).
    pub fn read_token_response(
        grant: FuzzGrant,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Token, Error> {
        let response = HttpResponse::from_parts(status, content_type, body);
        let secret = match grant {
            FuzzGrant::AuthorizationCode => CODE,
            _ => REFRESH_TOKEN,
        };
        adapter()?.read(&response, secret)
    }
}
