//! The partner's response reader and its JWT claims decoder.
//!
//! Input: `[status, content type, mode, body...]`. Mode % 3: 0, the body
//! is the response as is; 1 and 2, the body is the JWT's claims (its
//! payload, base64url-encoded into a token inside a well-formed response),
//! with `expires_in` (1) or without (2). The claims decoder also runs on
//! the raw body. Markers: `$S` client secret, `$A` the access token.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use oauth2_adapters_fuzz::{assert_hidden, check_response, decode, ACCESS_CANARY};
use oauth2_adapters_partner::fuzzing::{decode_jwt_claims, read_token_response, CLIENT_SECRET};

fuzz_target!(|data: &[u8]| {
    let markers = [("$S", CLIENT_SECRET), ("$A", ACCESS_CANARY)];
    let Some(input) = decode(data, &markers) else {
        return;
    };
    let _ = decode_jwt_claims(&String::from_utf8_lossy(&input.body));
    match input.mode % 3 {
        0 => {
            let result = read_token_response(input.status, input.content_type, &input.body);
            check_response(&result, &[CLIENT_SECRET], &input.body);
        }
        mode => {
            let jwt = format!(
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.c2lnbmF0dXJl",
                URL_SAFE_NO_PAD.encode(&input.body)
            );
            let expires_in = if mode == 1 {
                r#","expires_in":3600"#
            } else {
                ""
            };
            let body = format!(r#"{{"token_type":"Bearer","access_token":"{jwt}"{expires_in}}}"#);
            let result = read_token_response(200, Some("application/json"), body.as_bytes());
            match &result {
                Err(err) => assert_hidden(err, &[CLIENT_SECRET, &jwt]),
                Ok(token) => oauth2_adapters_fuzz::check_token(token),
            }
        }
    }
});
