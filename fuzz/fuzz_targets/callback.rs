//! The callback parser and verifier: `CallbackParams::from_query` (or
//! `from_url`), then verification against a fixed pending authorization,
//! as `handle_callback` does before any request.
//!
//! Input: `[age, mode, query...]`: the pending authorization is `age * 5`
//! seconds old; mode bit 0 parses the query as part of a URL (mode bit 1
//! also appends it as a fragment). Markers: `$S` the pending state, `$C`
//! a code. Neither may ever show in an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth2_adapters_core::fuzzing::{callback, callback_url, STATE};
use oauth2_adapters_core::{CallbackParams, ExposeSecret};
use oauth2_adapters_fuzz::{assert_hidden, replace_markers};

const CODE: &str = "fzCode9Xq";

fuzz_target!(|data: &[u8]| {
    let Some((&[age, mode], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let query_bytes = replace_markers(rest, &[("$S", STATE), ("$C", CODE)]);
    let query = String::from_utf8_lossy(&query_bytes);
    let age = u64::from(age) * 5;
    let (result, params) = if mode & 1 == 0 {
        (callback(&query, age), CallbackParams::from_query(&query))
    } else {
        let text = if mode & 2 == 0 {
            format!("https://app.example/callback?{query}")
        } else {
            format!("https://app.example/callback#{query}")
        };
        let Ok(url) = url::Url::parse(&text) else {
            return;
        };
        (callback_url(&url, age), CallbackParams::from_url(&url))
    };
    let Err(err) = result else {
        return;
    };
    assert_hidden(&err, &[STATE]);
    let code_in_play = params
        .ok()
        .and_then(|p| p.code)
        .is_some_and(|code| code.expose_secret() == CODE);
    if code_in_play {
        assert_hidden(&err, &[CODE]);
    }
});
