//! How the manager renews a key's token: the provider's [`Renewal`].

use std::time::Duration;

use crate::error::{Error, ReauthorizationReason, Result};
use crate::provider::{ProviderSettings, Renewal};
use crate::store::TokenKey;
use crate::token::Token;

impl Renewal {
    /// The longest one renewal can take: the provider's request timeout
    /// with its retries ([`crate::RetryPolicy::worst_case`]); zero for
    /// [`Renewal::Never`].
    pub fn worst_case(&self) -> Duration {
        self.settings().map_or(Duration::ZERO, |settings| {
            settings.retry.worst_case(settings.http.timeout())
        })
    }

    /// The settings (HTTP client, retries, clock) of the provider that
    /// renews; `None` for [`Renewal::Never`].
    pub(crate) fn settings(&self) -> Option<&ProviderSettings> {
        match self {
            Self::RefreshToken(p) => Some(p.settings()),
            Self::Reacquire(p) => Some(p.settings()),
            Self::Never => None,
        }
    }

    /// True unless renewing spends nothing single-use (client credentials),
    /// so a renewal in doubt must not be repeated by another instance.
    pub(crate) fn spends_refresh_token(&self) -> bool {
        !matches!(self, Self::Reacquire(_))
    }

    /// A new token for `key`, given the current one (if any).
    pub(crate) async fn renew(&self, key: &TokenKey, current: Option<&Token>) -> Result<Token> {
        match (self, current) {
            (Self::RefreshToken(provider), Some(current)) => provider.refresh(current).await,
            (Self::Reacquire(provider), _) => provider.client_credentials(&key.scopes()).await,
            (Self::RefreshToken(_), None) => Err(Error::ReauthorizationRequired {
                provider: key.provider(),
                reason: ReauthorizationReason::NotAuthorized,
            }),
            (Self::Never, _) => Err(Error::ReauthorizationRequired {
                provider: key.provider(),
                reason: ReauthorizationReason::NoRefreshToken,
            }),
        }
    }
}
