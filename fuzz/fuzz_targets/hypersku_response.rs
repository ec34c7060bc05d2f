//! HyperSKU's response reader (bare or enveloped camelCase JSON), exactly
//! as the adapter runs it on a real answer.
//!
//! Input: `[status, content type, mode, body...]`; mode bit 0 picks the
//! expiry unit. Markers: `$S` client secret, `$G` the code or refresh token
//! sent, `$K` the API key, `$A` the access token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth2_adapters_fuzz::{check_response, decode, ACCESS_CANARY};
use oauth2_adapters_hypersku::fuzzing::{
    read_token_response, API_KEY, CLIENT_SECRET, GRANT_SECRET,
};
use oauth2_adapters_hypersku::ExpiryUnit;

fuzz_target!(|data: &[u8]| {
    let markers = [
        ("$S", CLIENT_SECRET),
        ("$G", GRANT_SECRET),
        ("$K", API_KEY),
        ("$A", ACCESS_CANARY),
    ];
    let Some(input) = decode(data, &markers) else {
        return;
    };
    let unit = if input.mode & 1 == 0 {
        ExpiryUnit::Seconds
    } else {
        ExpiryUnit::Milliseconds
    };
    let result = read_token_response(input.status, input.content_type, &input.body, unit);
    check_response(
        &result,
        &[CLIENT_SECRET, GRANT_SECRET, API_KEY],
        &input.body,
    );
});
