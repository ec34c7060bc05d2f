#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod authorize;
pub mod clock;
pub mod error;
pub mod http;
pub mod json_response;
pub mod manager;
pub mod metrics;
pub mod provider;
pub mod redact;
pub mod retry;
pub mod standard;
pub mod store;
pub mod token;
pub mod wire;

pub use authorize::{
    AuthorizeRequest, AuthorizeUrlParams, CallbackParams, PendingAuthorization, VerifiedCode,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{
    DeferredReason, Error, ErrorCode, ReauthorizationReason, Result, TransportErrorKind,
};
pub use http::{HttpClient, HttpConfig, HttpResponse};
pub use json_response::JsonResponse;
pub use provider::{
    AuthorizationCodeProvider, ClientCredentials, ClientCredentialsProvider, Context, Provider,
    RefreshPolicy, RefreshTokenProvider,
};
pub use retry::{Grant, RetryPolicy, RetrySafety};
pub use secrecy::{ExposeSecret, SecretString};
pub use standard::{ClientAuth, StandardProvider, StandardProviderBuilder};
pub use store::{CasOutcome, LeaseOutcome, MemoryStore, StoredToken, TokenKey, TokenStore};
pub use token::{DisplayTime, ProviderId, Token, TokenRecord};
