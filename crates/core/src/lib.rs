#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod authorize;
mod clock;
mod error;
mod flat_object;
mod http;
mod json_response;
pub mod manager;
pub mod metrics;
mod provider;
mod redact;
mod retry;
mod spec;
mod standard;
pub mod store;
mod token;
mod wire;

pub use authorize::{
    AuthorizeRequest, CallbackParams, InvalidPendingAuthorization, PendingAuthorization,
    PendingAuthorizationParts,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{
    DeferredReason, Error, ErrorCode, ReauthorizationReason, Result, TransportErrorKind,
};
pub use http::HttpConfig;
pub use manager::{AccessToken, TokenEvent, TokenManager};
pub use provider::{
    AuthorizationCodeProvider, ClientCredentials, ClientCredentialsProvider, Provider,
    ProviderSettings, RefreshTokenProvider, Renewal, RenewalKind,
};
pub use retry::RetryPolicy;
pub use secrecy::{ExposeSecret, SecretString};
pub use spec::{
    AuthorizeParamNames, AuthorizeSpec, BodyFormat, ClientAuthMethod, EnvelopeSpec,
    ExpiryPrecedence, Pkce, ProviderSpec, ResponseSpec, RevocationSpec, SpecError, SpecProvider,
    SpecProviderBuilder, TimeUnit, TokenFieldNames, TokenSpec,
};
pub use standard::{ClientAuth, StandardProvider, StandardProviderBuilder};
pub use store::{MemoryStore, TokenKey, TokenStore};
pub use token::{DisplayTime, ProviderId, Token};

/// Everything most applications use, in one import:
/// `use oauth2_adapters::prelude::*;` brings the grant traits (so
/// `authorize`, `handle_callback`, `refresh` and `client_credentials` can be
/// called), the token manager, the sign-in types and the errors.
pub mod prelude {
    pub use crate::{
        AccessToken, AuthorizationCodeProvider, AuthorizeRequest, CallbackParams,
        ClientCredentials, ClientCredentialsProvider, Error, ExposeSecret, PendingAuthorization,
        Provider, RefreshTokenProvider, Result, Token, TokenEvent, TokenKey, TokenManager,
        TokenStore,
    };
}

/// For writing an adapter: the pieces the built-in adapters are made of.
/// Applications do not need this module.
///
/// * [`HttpClient`](adapter::HttpClient) sends one token request within the
///   settings' safety rules (no redirects, a body cap) and gives an
///   [`HttpResponse`](adapter::HttpResponse);
/// * [`JsonResponse`](adapter::JsonResponse) classifies a JSON answer
///   (an OAuth error, a status error, a body);
/// * [`wire`](adapter::wire) turns wire values into the normalized
///   [`Token`]: lenient numbers, scopes, expiry rules, access-token checks;
/// * [`redact`](adapter::redact) makes the body excerpts errors carry
///   without a secret in them;
/// * [`AuthorizeUrlParams`](adapter::AuthorizeUrlParams) and
///   [`VerifiedCode`](adapter::VerifiedCode) are what the core hands an
///   adapter for the authorize URL and the code exchange;
/// * [`Grant`](adapter::Grant) and [`RetrySafety`](adapter::RetrySafety)
///   name a token request for the retry rules, spans and metrics.
pub mod adapter {
    pub use crate::authorize::{AuthorizeUrlParams, VerifiedCode};
    pub use crate::flat_object::FlatObject;
    pub use crate::http::{
        endpoint_url, parse_url, require_secure_endpoint, HttpClient, HttpResponse,
        TransportFailure,
    };
    pub use crate::json_response::JsonResponse;
    pub use crate::retry::{Grant, RetrySafety};
    pub use crate::standard::LenientTokenResponse;

    /// Wire values into the normalized token: lenient numbers, scopes,
    /// expiry rules, access-token checks.
    pub mod wire {
        pub use crate::wire::*;
    }

    /// Excerpts of response bodies without secrets in them.
    pub mod redact {
        pub use crate::redact::*;
    }
}

/// Entry points for the fuzz targets in `fuzz/`: **not a stable API**.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::authorize::fuzzing::*;
    pub use crate::standard::fuzzing::*;
}
