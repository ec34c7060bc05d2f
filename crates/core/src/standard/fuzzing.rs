//! Entry points for the fuzz targets in `fuzz/`: **not a stable API**.
//!
//! [`respond`] runs one token request of a [`StandardProvider`] exactly as
//! a real one runs (the `oauth2` crate builds the request and parses the
//! answer, then the same error mapping and normalization), except that the
//! answer is a canned response instead of a network round trip.

use futures_util::FutureExt;
use secrecy::SecretString;

use super::outcome::{RecordingClient, Transport};
use super::StandardProvider;
use crate::authorize::fuzzing::{pending, verified_code};
use crate::error::{Error, Result};
use crate::http::HttpResponse;
use crate::token::Token;

/// The authorization code [`respond`] exchanges.
pub const CODE: &str = "fz-code-Vb7Nc2XzQ1";
/// The refresh token [`respond`] sends.
pub const REFRESH_TOKEN: &str = "fz-refresh-Jk4Ty8PqW3";
/// The PKCE verifier of the code exchange (sent when the provider uses PKCE).
pub const PKCE_VERIFIER: &str = "fz-verifier-Mn5Rd1GsE6-0123456789abcdef0123456789";

/// Which token request to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuzzGrant {
    /// Exchange [`CODE`] (with [`PKCE_VERIFIER`]).
    AuthorizationCode,
    /// Refresh with [`REFRESH_TOKEN`].
    RefreshToken,
    /// Client credentials, no scopes.
    ClientCredentials,
}

/// Runs `grant` on `provider` against `response` (e.g.
/// [`HttpResponse::from_parts`]). It never waits: the
/// canned answer is ready at once.
pub fn respond(
    provider: &StandardProvider,
    grant: FuzzGrant,
    response: HttpResponse,
) -> Result<Token> {
    let recorder = RecordingClient::new(Transport::Canned(response));
    let run = async {
        match grant {
            FuzzGrant::AuthorizationCode => {
                let pending = pending(provider.id.clone(), Some(PKCE_VERIFIER));
                provider
                    .exchange_code_via(&recorder, &verified_code(CODE), &pending)
                    .await
            }
            FuzzGrant::RefreshToken => {
                let refresh = SecretString::from(REFRESH_TOKEN);
                provider.refresh_via(&recorder, &refresh).await
            }
            FuzzGrant::ClientCredentials => provider.client_credentials_via(&recorder, &[]).await,
        }
    };
    run.now_or_never().unwrap_or_else(|| {
        Err(Error::configuration(
            "the canned token request did not complete at once",
        ))
    })
}
