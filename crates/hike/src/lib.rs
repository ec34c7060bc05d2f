//! The Hike adapter: a standard RFC 6749 authorization code flow,
//! form-encoded, with rotating refresh tokens and an extra absolute
//! `expires` field.
//!
//! It is a [`StandardProvider`](oauth2_adapters_core::StandardProvider)
//! described by Hike's endpoints, plus one quirk: the absolute `expires`
//! is cross-checked with `expires_in` (see `docs/providers/hike.md`).
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
mod wire;

pub use config::{HikeBuilder, DEFAULT_BASE_URL, DEFAULT_SCOPE};
pub use provider::Hike;

use oauth2_adapters_core::ProviderId;

/// The id recorded in every Hike token.
pub static PROVIDER_ID: ProviderId = ProviderId::from_static("hike");

/// Entry points for the fuzz targets in `fuzz/`: **not a stable API**.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use oauth2_adapters_core::adapter::HttpResponse;
    use oauth2_adapters_core::fuzzing::respond;
    use oauth2_adapters_core::{
        ClientAuth, ClientCredentials, Error, ManualClock, ProviderSettings, StandardProvider,
        Token,
    };

    pub use oauth2_adapters_core::fuzzing::{FuzzGrant, CODE, PKCE_VERIFIER, REFRESH_TOKEN};

    use crate::PROVIDER_ID;

    /// The client secret the adapter sent.
    pub const CLIENT_SECRET: &str = "fz-hike-client-secret-Ka1Sd9";
    /// The clock's time, in Unix seconds.
    pub const NOW_UNIX: u64 = 1_800_000_000;

    /// The standard provider Hike's builder makes (`HikeBuilder::build`):
    /// Hike's id, credentials in the body, PKCE on so the verifier is sent.
    fn standard() -> &'static StandardProvider {
        static PROVIDER: OnceLock<StandardProvider> = OnceLock::new();
        PROVIDER.get_or_init(|| {
            let context = ProviderSettings::new()
                .expect("the default HTTP client builds")
                .with_clock(Arc::new(ManualClock::at_unix(NOW_UNIX)));
            StandardProvider::builder(PROVIDER_ID.as_str().to_owned())
                .authorize_url(format!("{}/oauth/authorize", crate::DEFAULT_BASE_URL))
                .token_url(format!("{}/oauth/token", crate::DEFAULT_BASE_URL))
                .default_scopes([crate::DEFAULT_SCOPE])
                .client_auth(ClientAuth::RequestBody)
                .pkce(true)
                .settings(context)
                .build(ClientCredentials::new("fz-client", CLIENT_SECRET))
                .expect("the fuzzing provider builds")
        })
    }

    /// Runs `grant` against a canned token-endpoint answer through the
    /// adapter's code path: the standard provider (the `oauth2` crate's
    /// request and parsing, the core's error mapping and normalization),
    /// then Hike's `expires` reconciliation.
    pub fn read_token_response(
        grant: FuzzGrant,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Token, Error> {
        let response = HttpResponse::from_parts(status, content_type, body);
        let mut token = respond(standard(), grant, response)?;
        let now: SystemTime = UNIX_EPOCH + Duration::from_secs(NOW_UNIX);
        crate::wire::settle_expiry(&mut token, now);
        Ok(token)
    }
}
