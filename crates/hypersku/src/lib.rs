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
//! use oauth2_adapters::{AuthorizationCodeProvider, AuthorizeRequest, ClientCredentials};
//! use oauth2_adapters::hypersku::HyperSku;
//!
//! let hypersku = HyperSku::builder(ClientCredentials::new("client-id", "client-secret")).build()?;
//! let (url, pending) = hypersku.authorize(AuthorizeRequest::new("https://example.com/callback")?)?;
//! // Send the user to `url`, keep `pending` until the callback.
//! # Ok::<(), oauth2_adapters::Error>(())
//! ```
#![deny(missing_docs)]

mod config;
mod provider;

pub use config::{
    BodyFieldNames, ExpiryUnit, HyperSkuBuilder, DEFAULT_ACCESS_TOKEN_PATH, DEFAULT_API_BASE_URL,
    DEFAULT_AUTHORIZE_URL, DEFAULT_INVALID_GRANT_CODES, DEFAULT_REFRESH_TOKEN_PATH, DEFAULT_SCOPE,
    DEFAULT_SUCCESS_CODES,
};
pub use provider::HyperSku;

use oauth2_adapters_core::ProviderId;

/// HyperSKU's documented dialect, as data (`spec.toml` in this crate, the
/// same as `examples/providers/hypersku.toml`): what [`HyperSku`] speaks
/// with the builder's defaults.
/// (It always loads: a unit test checks it.)
pub fn default_spec() -> Result<oauth2_adapters_core::ProviderSpec, oauth2_adapters_core::SpecError>
{
    oauth2_adapters_core::ProviderSpec::from_toml(include_str!("../spec.toml"))
}

/// The id recorded in every HyperSKU token.
pub static PROVIDER_ID: ProviderId = ProviderId::from_static("hypersku");

/// Entry points for the fuzz targets in `fuzz/`: **not a stable API**.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::{Arc, OnceLock};

    use oauth2_adapters_core::adapter::HttpResponse;
    use oauth2_adapters_core::{ClientCredentials, Error, ManualClock, ProviderSettings, Token};

    use crate::{ExpiryUnit, HyperSku};

    /// The client secret of the adapter [`read_token_response`] uses.
    pub const CLIENT_SECRET: &str = "fz-hs-client-secret-Lp0Oq8";
    /// The API key it sends.
    pub const API_KEY: &str = "fz-hs-api-key-Zr4Ud6";
    /// The code (or refresh token) it sent.
    pub const GRANT_SECRET: &str = "fz-hs-grant-Wc2Ey5Tb";
    /// Its clock's time, in Unix seconds.
    pub const NOW_UNIX: u64 = 1_800_000_000;

    fn adapter(unit: ExpiryUnit) -> &'static HyperSku {
        static SECONDS: OnceLock<HyperSku> = OnceLock::new();
        static MILLIS: OnceLock<HyperSku> = OnceLock::new();
        let cell = match unit {
            ExpiryUnit::Seconds => &SECONDS,
            ExpiryUnit::Milliseconds => &MILLIS,
        };
        cell.get_or_init(|| {
            let context = ProviderSettings::new()
                .expect("the default HTTP client builds")
                .with_clock(Arc::new(ManualClock::at_unix(NOW_UNIX)));
            HyperSku::builder(ClientCredentials::new("fz-client", CLIENT_SECRET))
                .api_key(API_KEY)
                .expiry_unit(unit)
                .settings(context)
                .build()
                .expect("the fuzzing adapter builds")
        })
    }

    /// Reads `body` (with this status and content type) exactly as the
    /// adapter reads a real token-endpoint response.
    pub fn read_token_response(
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
        unit: ExpiryUnit,
    ) -> Result<Token, Error> {
        let response = HttpResponse::from_parts(status, content_type, body);
        adapter(unit).read(&response, GRANT_SECRET)
    }
}
