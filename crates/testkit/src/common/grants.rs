//! Authorization codes, refresh tokens and issued access tokens.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use super::api::AccessTokens;
use super::http::random_string;

/// How long an authorization code can be exchanged.
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// An authorization code, bound to the client and redirect URI it was
/// issued for, and to the PKCE challenge of its authorization request.
#[derive(Debug, Clone)]
pub(crate) struct CodeGrant {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scope: String,
    pub(crate) issued_at: SystemTime,
    pub(crate) used: bool,
    pub(crate) pkce: Option<PkceChallenge>,
}

/// A PKCE code challenge method (RFC 7636 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PkceMethod {
    /// `BASE64URL(SHA256(verifier)) == challenge`.
    S256,
    /// `verifier == challenge`.
    Plain,
}

/// The PKCE challenge an authorization request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PkceChallenge {
    pub(crate) challenge: String,
    pub(crate) method: PkceMethod,
}

impl PkceChallenge {
    /// Whether `verifier` answers this challenge (RFC 7636 §4.6). A
    /// verifier that is not 43 to 128 unreserved characters (§4.1) never does.
    pub(crate) fn verify(&self, verifier: &str) -> bool {
        if !is_pkce_value(verifier) {
            return false;
        }
        match self.method {
            PkceMethod::Plain => verifier == self.challenge,
            PkceMethod::S256 => {
                let verifier = oauth2::PkceCodeVerifier::new(verifier.to_owned());
                let computed = oauth2::PkceCodeChallenge::from_code_verifier_sha256(&verifier);
                computed.as_str() == self.challenge
            }
        }
    }
}

impl PkceChallenge {
    /// The challenge of an authorization request (RFC 7636 §4.3) from its
    /// `code_challenge` and `code_challenge_method` values, named
    /// `challenge_name` and `method_name` in the messages: `None` when no
    /// challenge was sent, `plain` when no method was; a malformed
    /// challenge or an unknown method is refused with a message.
    pub(crate) fn parse(
        challenge: Option<&str>,
        method: Option<&str>,
        challenge_name: &str,
        method_name: &str,
    ) -> Result<Option<Self>, String> {
        let Some(challenge) = challenge else {
            return Ok(None);
        };
        if !is_pkce_value(challenge) {
            return Err(format!(
                "{challenge_name} must be 43 to 128 unreserved characters (RFC 7636 §4.2)"
            ));
        }
        let method = match method {
            None | Some("plain") => PkceMethod::Plain,
            Some("S256") => PkceMethod::S256,
            Some(other) => {
                return Err(format!(
                    "unsupported {method_name} {other:?} (S256 or plain)"
                ))
            }
        };
        Ok(Some(Self {
            challenge: challenge.to_owned(),
            method,
        }))
    }
}

/// 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`
/// (RFC 7636 §4.1 for verifiers, §4.2 for challenges).
pub(crate) fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The chain of refresh tokens (and their access tokens) descended from one
/// authorization: a code exchange starts one, each rotation keeps it.
pub(crate) type Family = u64;

/// A refresh token: whether it was already rotated away (spent) or revoked
/// with its whole family.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) scope: String,
    pub(crate) expires_at: SystemTime,
    pub(crate) spent: bool,
    pub(crate) revoked: bool,
    pub(crate) family: Family,
}

/// One successful refresh-token rotation, as the mock committed it: the
/// refresh token presented, the one issued in its place, and when (wall
/// clock, [`SystemTime::now`], not the mock's configured clock) the mock
/// had spent the old one and issued the new one, before the response was
/// sent. Its `Debug` shows only the tokens' non-random prefix
/// (`hike_rt_2_[redacted]`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotation {
    /// The refresh token that was spent.
    pub old_refresh_token: String,
    /// The refresh token issued in its place.
    pub new_refresh_token: String,
    /// When the rotation was committed (system time).
    pub committed_at: SystemTime,
}

impl fmt::Debug for Rotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotation")
            .field("old_refresh_token", &Redacted(&self.old_refresh_token))
            .field("new_refresh_token", &Redacted(&self.new_refresh_token))
            .field("committed_at", &self.committed_at)
            .finish()
    }
}

/// A mock token shown as its non-random prefix: `{prefix}_rt_{n}_` is
/// kept and the random tail redacted; anything else is fully redacted.
struct Redacted<'a>(&'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = self.0.splitn(4, '_');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(prefix), Some(kind @ ("rt" | "at")), Some(n), Some(_))
                if !prefix.is_empty()
                    && prefix.bytes().all(|b| b.is_ascii_alphabetic())
                    && !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                write!(f, "\"{prefix}_{kind}_{n}_[redacted]\"")
            }
            _ => f.write_str("\"[redacted]\""),
        }
    }
}

/// Why a code or refresh token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantError {
    Unknown,
    AlreadyUsed,
    Revoked,
    Expired,
    ClientMismatch,
    RedirectMismatch,
    /// PKCE: no verifier for a code issued with a challenge.
    VerifierMissing,
    /// PKCE: the verifier does not answer the code's challenge.
    VerifierMismatch,
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GrantError::Unknown => "unknown grant",
            GrantError::AlreadyUsed => "grant already used",
            GrantError::Revoked => "grant was revoked",
            GrantError::Expired => "grant expired",
            GrantError::ClientMismatch => "grant was issued to another client",
            GrantError::RedirectMismatch => "redirect URI does not match the authorization request",
            GrantError::VerifierMissing => {
                "the code was issued with a PKCE challenge: code_verifier is required"
            }
            GrantError::VerifierMismatch => "the code_verifier does not match the PKCE challenge",
        })
    }
}

/// An access token with, for code flows, its refresh token.
#[derive(Debug, Clone)]
pub(crate) struct IssuedTokens {
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
}

/// What the mock does when a spent refresh token is presented again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnReuse {
    /// Refuse it (`invalid_grant`) and nothing more.
    Refuse,
    /// Refuse it and revoke its whole family (RFC 9700 §4.14.2).
    RevokeFamily,
}

/// Everything a mock has issued. Its `Debug` shows counts, never tokens.
#[derive(Default)]
pub(crate) struct Grants {
    codes: HashMap<String, CodeGrant>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    access_tokens_issued: usize,
    families: Family,
    refresh_token_reuses: usize,
    rotations: Vec<Rotation>,
    /// The issued access tokens, for the protected API.
    pub(crate) access_tokens: AccessTokens,
}

impl fmt::Debug for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grants")
            .field("codes", &self.codes.len())
            .field("refresh_tokens", &self.refresh_tokens.len())
            .field("access_tokens_issued", &self.access_tokens_issued)
            .field("families", &self.families)
            .field("refresh_token_reuses", &self.refresh_token_reuses)
            .field("rotations", &self.rotations.len())
            .finish()
    }
}

impl Grants {
    /// Issues a fresh single-use authorization code, bound to `pkce` when
    /// the authorization request carried a challenge.
    pub(crate) fn issue_code(
        &mut self,
        client_id: &str,
        redirect_uri: &str,
        scope: &str,
        pkce: Option<PkceChallenge>,
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
                pkce,
            },
        );
        code
    }

    /// Redeems `code`: it must exist, be unused, younger than
    /// [`CODE_LIFETIME`] and bound to `client_id` and `redirect_uri`. On
    /// success the code is spent. A redirect or client mismatch leaves the
    /// code usable. PKCE is not checked (see [`Grants::redeem_code_with`]).
    pub(crate) fn redeem_code(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        now: SystemTime,
    ) -> Result<CodeGrant, GrantError> {
        self.redeem_code_with(code, client_id, redirect_uri, None, now)
    }

    /// Like [`Grants::redeem_code`], and when `verifier` is `Some` (the
    /// mock checks PKCE) a code issued with a challenge needs a verifier
    /// (`Some(Some(..))`) that answers it. A PKCE failure, like a redirect
    /// mismatch, leaves the code usable.
    pub(crate) fn redeem_code_with(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: Option<Option<&str>>,
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
        if let (Some(verifier), Some(challenge)) = (verifier, &grant.pkce) {
            match verifier {
                None => return Err(GrantError::VerifierMissing),
                Some(verifier) if !challenge.verify(verifier) => {
                    return Err(GrantError::VerifierMismatch)
                }
                Some(_) => {}
            }
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

    /// Redeems `code` (see [`Grants::redeem_code`]) and issues the first
    /// pair of a new family. Returns the tokens and the granted scope.
    pub(crate) fn exchange_code(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        prefix: &str,
        now: SystemTime,
        refresh_lifetime: Duration,
    ) -> Result<(IssuedTokens, String), GrantError> {
        let grant = self.redeem_code(code, client_id, redirect_uri, now)?;
        Ok(self.start_family(grant, prefix, now, refresh_lifetime))
    }

    /// Issues the first pair of a new family for a redeemed code. Returns
    /// the tokens and the granted scope.
    pub(crate) fn start_family(
        &mut self,
        grant: CodeGrant,
        prefix: &str,
        now: SystemTime,
        refresh_lifetime: Duration,
    ) -> (IssuedTokens, String) {
        self.families += 1;
        let family = self.families;
        let tokens = self.issue_pair(prefix, &grant.scope, family, now, refresh_lifetime);
        (tokens, grant.scope)
    }

    /// Starts `count` families at once, as `count` code exchanges for
    /// `scope` would, without codes: the first pair of each.
    pub(crate) fn start_families(
        &mut self,
        count: usize,
        prefix: &str,
        scope: &str,
        now: SystemTime,
        refresh_lifetime: Duration,
    ) -> Vec<IssuedTokens> {
        self.refresh_tokens.reserve(count);
        (0..count)
            .map(|_| {
                self.families += 1;
                let family = self.families;
                self.issue_pair(prefix, scope, family, now, refresh_lifetime)
            })
            .collect()
    }

    /// A refresh without rotation: `refresh_token` must be live (known,
    /// unspent, unrevoked, unexpired) and stays so; a new access token is
    /// issued in its family. Returns it and the scope.
    pub(crate) fn refresh_in_place(
        &mut self,
        refresh_token: &str,
        prefix: &str,
        now: SystemTime,
    ) -> Result<(String, String), GrantError> {
        let grant = self
            .refresh_tokens
            .get(refresh_token)
            .ok_or(GrantError::Unknown)?;
        if grant.spent {
            return Err(GrantError::AlreadyUsed);
        }
        if grant.revoked {
            return Err(GrantError::Revoked);
        }
        if now >= grant.expires_at {
            return Err(GrantError::Expired);
        }
        let (scope, family) = (grant.scope.clone(), grant.family);
        let access_token = self.issue_access_token(prefix);
        self.access_tokens
            .record(&access_token, &scope, now, Some(family));
        Ok((access_token, scope))
    }

    /// Issues an access token without a refresh token or family (the
    /// client credentials grant).
    pub(crate) fn issue_client_token(
        &mut self,
        prefix: &str,
        scope: &str,
        now: SystemTime,
    ) -> String {
        let access_token = self.issue_access_token(prefix);
        self.access_tokens.record(&access_token, scope, now, None);
        access_token
    }

    /// RFC 7009: revokes a refresh token with its whole family (RFC 7009
    /// §2.1: every token of the same grant), or one access token. Returns
    /// whether the token was known; an unknown one changes nothing.
    pub(crate) fn revoke_token(&mut self, token: &str) -> bool {
        if let Some(grant) = self.refresh_tokens.get(token) {
            let family = grant.family;
            self.revoke_family(family);
            if let Some(grant) = self.refresh_tokens.get_mut(token) {
                grant.revoked = true;
            }
            return true;
        }
        self.access_tokens.revoke(token)
    }

    /// Rotates `refresh_token`: spends it (see
    /// [`Grants::spend_refresh_token`]), issues a new pair in the same
    /// family and logs the [`Rotation`]. Returns the tokens and the scope.
    pub(crate) fn rotate_refresh_token(
        &mut self,
        refresh_token: &str,
        on_reuse: OnReuse,
        prefix: &str,
        now: SystemTime,
        refresh_lifetime: Duration,
    ) -> Result<(IssuedTokens, String), GrantError> {
        let grant = self.spend_refresh_token(refresh_token, now, on_reuse)?;
        let tokens = self.issue_pair(prefix, &grant.scope, grant.family, now, refresh_lifetime);
        self.rotations.push(Rotation {
            old_refresh_token: refresh_token.to_owned(),
            new_refresh_token: tokens.refresh_token.clone(),
            committed_at: SystemTime::now(),
        });
        Ok((tokens, grant.scope))
    }

    /// Issues an access token and a refresh token valid for
    /// `refresh_lifetime`, both in `family`.
    fn issue_pair(
        &mut self,
        prefix: &str,
        scope: &str,
        family: Family,
        now: SystemTime,
        refresh_lifetime: Duration,
    ) -> IssuedTokens {
        let access_token = self.issue_access_token(prefix);
        self.access_tokens
            .record(&access_token, scope, now, Some(family));
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
                revoked: false,
                family,
            },
        );
        IssuedTokens {
            access_token,
            refresh_token,
        }
    }

    /// Spends `refresh_token`: it must exist, be unspent, unrevoked and
    /// unexpired. A spent one presented again counts as a reuse and, with
    /// [`OnReuse::RevokeFamily`], revokes its family.
    fn spend_refresh_token(
        &mut self,
        refresh_token: &str,
        now: SystemTime,
        on_reuse: OnReuse,
    ) -> Result<RefreshGrant, GrantError> {
        let grant = self
            .refresh_tokens
            .get_mut(refresh_token)
            .ok_or(GrantError::Unknown)?;
        if grant.spent {
            let family = grant.family;
            self.refresh_token_reuses += 1;
            if on_reuse == OnReuse::RevokeFamily {
                let revoked = self.revoke_family(family);
                tracing::debug!(
                    family,
                    revoked,
                    "mock: refresh token reused, family revoked"
                );
            }
            return Err(GrantError::AlreadyUsed);
        }
        if grant.revoked {
            return Err(GrantError::Revoked);
        }
        if now >= grant.expires_at {
            return Err(GrantError::Expired);
        }
        grant.spent = true;
        Ok(grant.clone())
    }

    /// Revokes every refresh token of `family` and their access tokens;
    /// returns how many tokens were still usable.
    fn revoke_family(&mut self, family: Family) -> usize {
        let refresh = self
            .refresh_tokens
            .values_mut()
            .filter(|g| g.family == family && !g.spent && !g.revoked)
            .map(|g| g.revoked = true)
            .count();
        refresh + self.access_tokens.revoke_family(family)
    }

    /// Whether `refresh_token` would currently be accepted.
    pub(crate) fn is_refresh_token_valid(&self, refresh_token: &str, now: SystemTime) -> bool {
        self.refresh_tokens
            .get(refresh_token)
            .is_some_and(|g| !g.spent && !g.revoked && now < g.expires_at)
    }

    /// How many times a spent refresh token was presented again.
    pub(crate) fn refresh_token_reuses(&self) -> usize {
        self.refresh_token_reuses
    }

    /// Every successful rotation, in order.
    pub(crate) fn rotations(&self) -> Vec<Rotation> {
        self.rotations.clone()
    }

    /// How many access tokens were issued.
    pub(crate) fn access_tokens_issued(&self) -> usize {
        self.access_tokens_issued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_only_the_mock_prefix() {
        let shown = |token: &str| format!("{:?}", Redacted(token));
        assert_eq!(shown("hike_rt_12_a_b-c"), r#""hike_rt_12_[redacted]""#);
        assert_eq!(shown("hs_at_3_xyz"), r#""hs_at_3_[redacted]""#);
        for opaque in [
            "secret",
            "hike_rt_x_abc",
            "hike_rt_1",
            "a-b_rt_1_c",
            "_rt_1_c",
        ] {
            assert_eq!(shown(opaque), r#""[redacted]""#, "{opaque}");
        }
    }

    #[test]
    fn families_are_revoked_on_reuse_only_when_asked() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let day = Duration::from_secs(86_400);
        let mut grants = Grants::default();
        for on_reuse in [OnReuse::Refuse, OnReuse::RevokeFamily] {
            let code = grants.issue_code("c", "r", "all", None, now);
            let (first, _) = grants
                .exchange_code(&code, "c", "r", "t", now, day)
                .unwrap();
            let rotate = |grants: &mut Grants, token: &str| {
                grants.rotate_refresh_token(token, on_reuse, "t", now, day)
            };
            let (second, scope) = rotate(&mut grants, &first.refresh_token).unwrap();
            assert_eq!(scope, "all");
            let reuse = rotate(&mut grants, &first.refresh_token).unwrap_err();
            assert_eq!(reuse, GrantError::AlreadyUsed);
            let revoked = on_reuse == OnReuse::RevokeFamily;
            assert_eq!(
                grants.is_refresh_token_valid(&second.refresh_token, now),
                !revoked
            );
            let api = grants.access_tokens.check(&second.access_token, now, day);
            assert_eq!(api.is_ok(), !revoked);
        }
        assert_eq!(grants.refresh_token_reuses(), 2);
        assert_eq!(grants.rotations().len(), 2);
        let debug = format!("{grants:?}");
        assert!(debug.contains("families: 2"), "{debug}");
        assert!(!debug.contains("t_rt_"), "{debug}");
    }
}
