//! Hike's response handling: the standard provider's `oauth2`-crate
//! request and parsing against a canned answer, the core's error mapping
//! and normalization, then Hike's `expires` reconciliation; the same code
//! path as a real request, without the network.
//!
//! Input: `[status, content type, mode, body...]`; mode picks the grant
//! (code exchange with PKCE, refresh, client credentials). Markers: `$S`
//! client secret, `$G` the code or refresh token, `$V` the PKCE verifier,
//! `$A` the access token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth2_adapters_fuzz::{check_response, decode, ACCESS_CANARY};
use oauth2_adapters_hike::fuzzing::{
    read_token_response, FuzzGrant, CLIENT_SECRET, CODE, PKCE_VERIFIER, REFRESH_TOKEN,
};

fuzz_target!(|data: &[u8]| {
    let grant = match data.get(2).map_or(0, |mode| mode % 3) {
        0 => FuzzGrant::AuthorizationCode,
        1 => FuzzGrant::RefreshToken,
        _ => FuzzGrant::ClientCredentials,
    };
    let sent: &[&str] = match grant {
        FuzzGrant::AuthorizationCode => &[CLIENT_SECRET, CODE, PKCE_VERIFIER],
        FuzzGrant::RefreshToken => &[CLIENT_SECRET, REFRESH_TOKEN],
        FuzzGrant::ClientCredentials => &[CLIENT_SECRET],
    };
    let grant_secret = match grant {
        FuzzGrant::RefreshToken => REFRESH_TOKEN,
        _ => CODE,
    };
    let markers = [
        ("$S", CLIENT_SECRET),
        ("$G", grant_secret),
        ("$V", PKCE_VERIFIER),
        ("$A", ACCESS_CANARY),
    ];
    let Some(input) = decode(data, &markers) else {
        return;
    };
    let result = read_token_response(grant, input.status, input.content_type, &input.body);
    check_response(&result, sent, &input.body);
});
