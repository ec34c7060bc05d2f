//! How the manager renews a key's token: the provider's refresh policy.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ReauthorizationReason, Result};
use crate::provider::{ClientCredentialsProvider, RefreshTokenProvider};
use crate::store::TokenKey;
use crate::token::{ProviderId, Token};

/// A provider's way to renew tokens, registered with the
/// [`TokenManager`](crate::manager::TokenManager) once per provider.
#[derive(Clone)]
pub enum Renewer {
    /// With the refresh token ([`crate::RefreshPolicy::RefreshToken`]: HyperSKU, Hike).
    RefreshToken(Arc<dyn RefreshTokenProvider>),
    /// By requesting a new token ([`crate::RefreshPolicy::Reacquire`]: the partner).
    /// Keys of such a provider need no prior sign-in: the first `get` acquires.
    Reacquire(Arc<dyn ClientCredentialsProvider>),
}

impl Renewer {
    /// Renews with the provider's refresh token grant.
    pub fn refresh_token<P: RefreshTokenProvider + 'static>(provider: Arc<P>) -> Self {
        Self::RefreshToken(provider)
    }

    /// Renews by requesting a new token with client credentials.
    pub fn reacquire<P: ClientCredentialsProvider + 'static>(provider: Arc<P>) -> Self {
        Self::Reacquire(provider)
    }

    /// The provider it renews for.
    pub fn provider_id(&self) -> &ProviderId {
        match self {
            Self::RefreshToken(p) => p.id(),
            Self::Reacquire(p) => p.id(),
        }
    }

    /// The longest one renewal can take: the provider's request timeout
    /// with its retries ([`crate::RetryPolicy::worst_case`]).
    pub fn worst_case(&self) -> std::time::Duration {
        let context = match self {
            Self::RefreshToken(p) => p.context(),
            Self::Reacquire(p) => p.context(),
        };
        context.retry.worst_case(context.http.timeout())
    }

    /// True when a renewal spends something single-use (a refresh token),
    /// so a renewal in doubt must not be repeated by another instance.
    pub(crate) fn spends_refresh_token(&self) -> bool {
        matches!(self, Self::RefreshToken(_))
    }

    /// A new token for `key`, given the current one (if any).
    pub(crate) async fn renew(&self, key: &TokenKey, current: Option<&Token>) -> Result<Token> {
        match (self, current) {
            (Self::RefreshToken(provider), Some(current)) => provider.refresh(current).await,
            (Self::RefreshToken(provider), None) => Err(Error::ReauthorizationRequired {
                provider: provider.id().clone(),
                reason: ReauthorizationReason::NotAuthorized,
            }),
            (Self::Reacquire(provider), _) => provider.client_credentials(&key.scopes()).await,
        }
    }
}

impl fmt::Debug for Renewer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RefreshToken(p) => write!(f, "Renewer::RefreshToken({})", p.id()),
            Self::Reacquire(p) => write!(f, "Renewer::Reacquire({})", p.id()),
        }
    }
}
