//! What the three mocks share: configuration, recording, faults, the
//! server, grants and the consent page.

pub(crate) mod api;
pub(crate) mod config;
pub(crate) mod consent;
pub(crate) mod faults;
pub(crate) mod grants;
pub(crate) mod http;
pub(crate) mod recording;
pub(crate) mod server;
pub(crate) mod wire_faults;

pub use config::MockConfig;
pub use faults::{Fault, ResponseStyle};
pub use grants::Rotation;
pub use recording::RecordedRequest;

use url::Url;

/// Why starting a mock or driving its authorize endpoint failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// Binding `127.0.0.1:0` failed.
    #[error("could not bind the mock server to 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The HTTP request to the mock failed.
    #[error("request to the mock failed: {0}")]
    Http(String),
    /// The authorize endpoint answered without a redirect (e.g. the 400
    /// page for invalid parameters).
    #[error("the authorize endpoint answered {status} instead of a redirect: {body}")]
    NoRedirect {
        /// The HTTP status received.
        status: u16,
        /// The response body (usually the HTML error page).
        body: String,
    },
    /// The `Location` header was not a valid absolute URL.
    #[error("the authorize endpoint redirected to an invalid location: {0}")]
    BadLocation(String),
    /// The spec given to [`SpecMock::start`](crate::SpecMock::start) cannot
    /// be served (it does not validate, two endpoints share a path, or it
    /// has no authorize endpoint to approve at).
    #[error("the provider spec cannot be served: {0}")]
    InvalidSpec(String),
    /// The URL given to `approve` / `deny` does not point at this mock's
    /// authorize endpoint.
    #[error("the authorize URL {got} does not point at the mock's authorize endpoint {expected}")]
    WrongEndpoint {
        /// The mock's authorize endpoint.
        expected: String,
        /// The URL that was given.
        got: String,
    },
}

/// What every mock offers; the behaviour suites are generic over it.
pub trait MockServer: Send + Sync {
    /// The server's root, `http://127.0.0.1:PORT/`: configure the adapter's
    /// base URL with it.
    fn base_url(&self) -> Url;
    /// The configuration the mock was started with.
    fn config(&self) -> &MockConfig;
    /// The client credentials the mock accepts, for the adapter's builder.
    fn credentials(&self) -> oauth2_adapters_core::ClientCredentials {
        oauth2_adapters_core::ClientCredentials::new(
            self.config().client_id.clone(),
            self.config().client_secret.clone(),
        )
    }
    /// Settings for an adapter pointed at this mock: the mock's clock (so a
    /// test clock is set once, in [`MockConfig::with_clock`], and a token
    /// manager built with the adapter picks it up too), a 5 s request
    /// timeout and no retries (each call is one request, which tests can
    /// count). Change them with the `with_*` methods of
    /// [`ProviderSettings`](oauth2_adapters_core::ProviderSettings).
    /// Fails only if the HTTP client cannot be built.
    fn provider_settings(
        &self,
    ) -> oauth2_adapters_core::Result<oauth2_adapters_core::ProviderSettings> {
        let http = oauth2_adapters_core::HttpConfig::default()
            .with_timeout(std::time::Duration::from_secs(5));
        Ok(
            oauth2_adapters_core::ProviderSettings::with_http_config(&http)?
                .with_clock(self.config().clock.clone())
                .with_retry_policy(oauth2_adapters_core::RetryPolicy::never()),
        )
    }
    /// Every request received (all endpoints), in order.
    fn requests(&self) -> Vec<RecordedRequest>;
    /// Only the requests to a token endpoint (exchange, refresh, client
    /// credentials), in order.
    fn token_requests(&self) -> Vec<RecordedRequest>;
    /// Forgets the recorded requests.
    fn clear_requests(&self);
    /// Queues a one-shot [`Fault`] for a coming token request (FIFO).
    fn push_fault(&self, fault: Fault);
    /// Sets the persistent [`ResponseStyle`].
    fn set_style(&self, style: ResponseStyle);
    /// Whether the refresh token would be accepted now: false for spent
    /// (rotated), unknown or expired ones. Always false for the partner.
    fn is_refresh_token_valid(&self, refresh_token: &str) -> bool;
    /// How many times a spent (rotated) refresh token was presented again.
    /// Each such attempt is refused; with
    /// [`MockConfig::revoke_on_reuse`] it also revokes the token's family.
    /// Always 0 for the partner.
    fn refresh_token_reuses(&self) -> usize;
    /// Every successful refresh-token rotation, in order, with the wall-clock
    /// time it was committed. Always empty for the partner.
    fn rotations(&self) -> Vec<Rotation>;
    /// How many access tokens were issued in total.
    fn issued_access_tokens(&self) -> usize;
    /// Revokes every access token issued so far, as a provider does when
    /// the user disconnects the app: the protected API answers 401
    /// `invalid_token` to them while the client still holds them. Returns
    /// how many were revoked. Refresh tokens stay valid, and tokens issued
    /// afterwards are accepted.
    fn revoke_access_tokens(&self) -> usize;
    /// Whether the protected API would accept `access_token` now: issued by
    /// this mock, not revoked, not expired by the mock's clock.
    fn is_access_token_valid(&self, access_token: &str) -> bool;
    /// The protected API's `GET /api/v1/me`: answers `{"subject",
    /// "client_id","scopes"}` to a valid `Authorization: Bearer` token and
    /// 401 `invalid_token` otherwise (see the mocks' module docs).
    fn me_url(&self) -> Url {
        let mut url = self.base_url();
        url.set_path(api::ME_PATH);
        url
    }
    /// The protected API's `POST /api/v1/echo`: answers `{"subject","echo"}`
    /// with the JSON body it received, under the same rules as
    /// [`MockServer::me_url`].
    fn echo_url(&self) -> Url {
        let mut url = self.base_url();
        url.set_path(api::ECHO_PATH);
        url
    }
}

/// Implements [`MockServer`] for a handle with a `core: Arc<MockCore>` field.
macro_rules! impl_mock_provider {
    ($ty:ty) => {
        impl $crate::MockServer for $ty {
            fn base_url(&self) -> ::url::Url {
                self.core.base_url()
            }
            fn config(&self) -> &$crate::MockConfig {
                self.core.config()
            }
            fn requests(&self) -> Vec<$crate::RecordedRequest> {
                self.core.requests()
            }
            fn token_requests(&self) -> Vec<$crate::RecordedRequest> {
                self.core.token_requests()
            }
            fn clear_requests(&self) {
                self.core.clear_requests()
            }
            fn push_fault(&self, fault: $crate::Fault) {
                self.core.push_fault(fault)
            }
            fn set_style(&self, style: $crate::ResponseStyle) {
                self.core.set_style(style)
            }
            fn is_refresh_token_valid(&self, refresh_token: &str) -> bool {
                self.core.is_refresh_token_valid(refresh_token)
            }
            fn refresh_token_reuses(&self) -> usize {
                self.core.shared.lock().grants.refresh_token_reuses()
            }
            fn rotations(&self) -> Vec<$crate::Rotation> {
                self.core.shared.lock().grants.rotations()
            }
            fn issued_access_tokens(&self) -> usize {
                self.core.issued_access_tokens()
            }
            fn revoke_access_tokens(&self) -> usize {
                self.core.revoke_access_tokens()
            }
            fn is_access_token_valid(&self, access_token: &str) -> bool {
                self.core.is_access_token_valid(access_token)
            }
        }
    };
}
pub(crate) use impl_mock_provider;
