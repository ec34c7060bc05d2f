//! Authorization codes, refresh tokens and issued access tokens.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use super::api::AccessTokens;
use super::http::random_string;

/// How long an authorization code can be exchanged.
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// An authorization code, bound to the client and redirect URI it was issued for.
#[derive(Debug, Clone)]
pub(crate) struct CodeGrant {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scope: String,
    pub(crate) issued_at: SystemTime,
    pub(crate) used: bool,
}

/// A refresh token and whether it was already rotated away.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) scope: String,
    pub(crate) expires_at: SystemTime,
    pub(crate) spent: bool,
}

/// Why a code or refresh token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantError {
    Unknown,
    AlreadyUsed,
    Expired,
    ClientMismatch,
    RedirectMismatch,
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GrantError::Unknown => "unknown grant",
            GrantError::AlreadyUsed => "grant already used",
            GrantError::Expired => "grant expired",
            GrantError::ClientMismatch => "grant was issued to another client",
            GrantError::RedirectMismatch => "redirect URI does not match the authorization request",
        })
    }
}

/// An access token with, for code flows, its refresh token.
#[derive(Debug, Clone)]
pub(crate) struct IssuedTokens {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
}

/// Everything a mock has issued.
#[derive(Debug, Default)]
pub(crate) struct Grants {
    codes: HashMap<String, CodeGrant>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    access_tokens_issued: usize,
    /// The issued access tokens, for the protected API.
    pub(crate) access_tokens: AccessTokens,
}

impl Grants {
    /// Issues a fresh single-use authorization code.
    pub(crate) fn issue_code(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
        now: SystemTime,
    ) -> String {
        let code = random_string(24);
        self.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                scope: scope.to_owned(),
                issued_at: now,
                used: false,
            },
        );
        code
    }

    /// Redeems `code`: it must exist, be unused, younger than
    /// [`CODE_LIFETIME`] and bound to `client_id` and `redirect_uri`. On
    /// success the code is spent. A redirect or client mismatch leaves the
    /// code usable.
    pub(crate) fn redeem_code(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        now: SystemTime,
    ) -> Result<CodeGrant, GrantError> {
        let grant = self.codes.get_mut(code).ok_or(GrantError::Unknown)?;
        if grant.used {
            return Err(GrantError::AlreadyUsed);
        }
        if now >= grant.issued_at + CODE_LIFETIME {
            return Err(GrantError::Expired);
        }
        if grant.client_id != client_id {
            return Err(GrantError::ClientMismatch);
        }
        if grant.redirect_uri != redirect_uri {
            return Err(GrantError::RedirectMismatch);
        }
        grant.used = true;
        Ok(grant.clone())
    }

    /// Issues an access token named `{prefix}_at_{n}_{random}`.
    pub(crate) fn issue_access_token(&mut self, prefix: &str) -> String {
        self.access_tokens_issued += 1;
        format!(
            "{prefix}_at_{}_{}",
            self.access_tokens_issued,
            random_string(16)
        )
    }

    /// Counts an access token minted elsewhere (the partner's JWTs) and
    /// returns the running count.
    pub(crate) fn count_access_token(&mut self) -> usize {
        self.access_tokens_issued += 1;
        self.access_tokens_issued
    }

    /// Issues an access token and a refresh token valid for `refresh_lifetime`.
    pub(crate) fn issue_pair(
        &mut self,
        prefix: &str,
        scope: &str,
        now: SystemTime,
        refresh_lifetime: Duration,
    ) -> IssuedTokens {
        let access_token = self.issue_access_token(prefix);
        self.access_tokens.record(&access_token, scope, now);
        let refresh_token = format!(
            "{prefix}_rt_{}_{}",
            self.access_tokens_issued,
            random_string(24)
        );
        self.refresh_tokens.insert(
            refresh_token.clone(),
            RefreshGrant {
                scope: scope.to_owned(),
                expires_at: now + refresh_lifetime,
                spent: false,
            },
        );
        IssuedTokens {
            access_token,
            refresh_token,
        }
    }

    /// Spends `refresh_token` (rotation): it must exist, be unspent and unexpired.
    pub(crate) fn spend_refresh_token(
        &mut self,
        refresh_token: &str,
        now: SystemTime,
    ) -> Result<RefreshGrant, GrantError> {
        let grant = self
            .refresh_tokens
            .get_mut(refresh_token)
            .ok_or(GrantError::Unknown)?;
        if grant.spent {
            return Err(GrantError::AlreadyUsed);
        }
        if now >= grant.expires_at {
            return Err(GrantError::Expired);
        }
        grant.spent = true;
        Ok(grant.clone())
    }

    /// Whether `refresh_token` would currently be accepted.
    pub(crate) fn is_refresh_token_valid(&self, refresh_token: &str, now: SystemTime) -> bool {
        self.refresh_tokens
            .get(refresh_token)
            .is_some_and(|g| !g.spent && now < g.expires_at)
    }

    /// How many access tokens were issued.
    pub(crate) fn access_tokens_issued(&self) -> usize {
        self.access_tokens_issued
    }
}
