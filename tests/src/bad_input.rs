//! The table-driven bad-input suite's harness (`tests/bad_input.rs`): rows,
//! expectations, a panic- and hang-proof runner, the secret-leak check, and
//! the response-body rows every adapter shares.
//!
//! Each row names an input and the exact outcome expected (an `Error`
//! variant with its relevant fields, or `Ok`). A table runs every row and
//! reports every failing row at once.

use std::error::Error as _;
use std::fmt::Write as _;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oauth2_adapters::testkit::Fault;
use oauth2_adapters::{Error, ExposeSecret, Token};

use crate::START_UNIX;

/// What one call returned.
pub type Outcome = Result<Token, Error>;

/// The access token put in the rows' bodies: it must never reach an error.
pub const CANARY_ACCESS: &str = "cAnArY-at-7Hq2Zp9W";
/// A short access token (too short to be masked as credential-like).
pub const CANARY_SHORT: &str = "Zq9x";
/// The refresh token put in the rows' bodies.
pub const CANARY_REFRESH: &str = "cAnArY-rt-3Lm8Xv1K";

/// Longest a row may take before it counts as hung.
pub const ROW_TIMEOUT: Duration = Duration::from_secs(20);

/// An expected outcome: the pattern as written, and the check.
#[derive(Clone, Copy)]
pub struct Expect {
    /// The pattern, for the failure report.
    pub text: &'static str,
    /// Whether an outcome matches it.
    pub check: fn(&Outcome) -> bool,
}

/// `expect!(Err(Error::StateMismatch))`: an [`Expect`] from a pattern (with
/// an optional `if` guard) over an [`Outcome`].
#[macro_export]
macro_rules! expect {
    ($($pattern:tt)+) => {
        $crate::bad_input::Expect {
            text: stringify!($($pattern)+),
            #[allow(clippy::redundant_pattern_matching)]
            check: |outcome: &$crate::bad_input::Outcome| matches!(outcome, $($pattern)+),
        }
    };
}

/// A response the token endpoint gives: through the mock, or (for bytes
/// the mock cannot send, such as invalid UTF-8) straight into the adapter's
/// response reader, the same code path without the network.
#[derive(Clone, Debug)]
pub enum Input {
    /// The mock answers with this fault.
    Fault(Fault),
    /// The adapter's reader is given this response directly.
    Direct {
        /// The HTTP status.
        status: u16,
        /// The `Content-Type`.
        content_type: Option<&'static str>,
        /// The body.
        body: Vec<u8>,
    },
}

/// One row of a response table.
#[derive(Clone)]
pub struct Row {
    /// What the row is about.
    pub name: String,
    /// The response.
    pub input: Input,
    /// The outcome of a code exchange or client credentials request.
    pub expect: Expect,
    /// The outcome of a refresh, when it differs (an `invalid_grant`
    /// becomes "re-authorization required").
    pub on_refresh: Option<Expect>,
    /// Secrets of this row's body beyond the canaries (e.g. a JWT).
    pub secrets: Vec<String>,
}

impl Row {
    /// A row.
    pub fn new(name: impl Into<String>, input: Input, expect: Expect) -> Self {
        Self {
            name: name.into(),
            input,
            expect,
            on_refresh: None,
            secrets: Vec::new(),
        }
    }

    /// The same row, with one more secret its body holds.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// The same row, expecting `expect` from a refresh.
    pub fn on_refresh(mut self, expect: Expect) -> Self {
        self.on_refresh = Some(expect);
        self
    }

    /// The expectation for a refresh (`refresh`) or another call.
    pub fn expectation(&self, refresh: bool) -> Expect {
        match (refresh, self.on_refresh) {
            (true, Some(expect)) => expect,
            _ => self.expect,
        }
    }
}

/// The mock answers `status` with this content type and body.
pub fn body(status: u16, content_type: &str, body: impl Into<String>) -> Input {
    Input::Fault(Fault::StatusWithBody {
        status,
        content_type: content_type.to_owned(),
        body: body.into(),
    })
}

/// The mock answers `status` with a JSON body.
pub fn json(status: u16, body: impl Into<String>) -> Input {
    self::body(status, "application/json", body)
}

/// The adapter reads these bytes as a JSON response with this status.
pub fn direct(status: u16, body: impl Into<Vec<u8>>) -> Input {
    Input::Direct {
        status,
        content_type: Some("application/json"),
        body: body.into(),
    }
}

/// Placeholder in a row's body for the code or refresh token the call sends.
pub const GRANT: &str = "%GRANT%";
/// Placeholder for the client secret.
pub const CLIENT_SECRET: &str = "%CLIENT_SECRET%";
/// Placeholder for the PKCE verifier (or, without PKCE, the client secret).
pub const VERIFIER: &str = "%VERIFIER%";

/// The secrets a call sends, to put in place of the placeholders.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    /// The client secret.
    pub client_secret: String,
    /// The code or refresh token (or, for client credentials, the client secret).
    pub grant: String,
    /// The PKCE verifier (or the client secret).
    pub verifier: String,
}

impl Sent {
    /// `input` with the placeholders replaced.
    pub fn fill(&self, input: &Input) -> Input {
        let fill = |text: &str| {
            text.replace(GRANT, &self.grant)
                .replace(CLIENT_SECRET, &self.client_secret)
                .replace(VERIFIER, &self.verifier)
        };
        match input {
            Input::Fault(Fault::StatusWithBody {
                status,
                content_type,
                body,
            }) => Input::Fault(Fault::StatusWithBody {
                status: *status,
                content_type: content_type.clone(),
                body: fill(body),
            }),
            Input::Direct {
                status,
                content_type,
                body,
            } => Input::Direct {
                status: *status,
                content_type: *content_type,
                body: match std::str::from_utf8(body) {
                    Ok(text) => fill(text).into_bytes(),
                    Err(_) => body.clone(),
                },
            },
            other => other.clone(),
        }
    }

    /// The sent secrets, for the leak check.
    pub fn secrets(&self) -> Vec<String> {
        vec![
            self.client_secret.clone(),
            self.grant.clone(),
            self.verifier.clone(),
        ]
    }
}

/// Collects failing rows and reports them all at once.
#[derive(Debug, Default)]
pub struct Report {
    rows: usize,
    failures: Vec<String>,
}

impl Report {
    /// Records a row's result: `problems` empty means it passed.
    pub fn record(&mut self, name: &str, problems: Vec<String>) {
        self.rows += 1;
        if !problems.is_empty() {
            self.failures
                .push(format!("  {name}:\n    {}", problems.join("\n    ")));
        }
    }

    /// Panics with every failing row, if any; asserts at least `min_rows` ran.
    pub fn finish(self, table: &str, min_rows: usize) {
        assert!(
            self.failures.is_empty(),
            "{table}: {} of {} rows failed:\n{}",
            self.failures.len(),
            self.rows,
            self.failures.join("\n")
        );
        assert!(
            self.rows >= min_rows,
            "{table}: only {} rows, at least {min_rows} expected",
            self.rows
        );
        eprintln!("{table}: {} rows passed", self.rows);
    }
}

/// Runs `call` on its own task, so a panic or a hang is reported as a
/// failure of this row instead of ending the table.
pub async fn guarded<F>(call: F) -> Result<Outcome, String>
where
    F: Future<Output = Outcome> + Send + 'static,
{
    match tokio::time::timeout(ROW_TIMEOUT, tokio::spawn(call)).await {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(join)) if join.is_panic() => Err("the call panicked".to_owned()),
        Ok(Err(join)) => Err(format!("the call's task failed: {join}")),
        Err(_) => Err(format!("the call did not return within {ROW_TIMEOUT:?}")),
    }
}

/// Checks `outcome` against `expect` and, for an error, that no secret is
/// in its `Display`, its `Debug` or the `Display` of its source chain; for
/// a token, that its `Debug` shows neither of its secrets. Returns the
/// problems found.
pub fn check(outcome: &Outcome, expect: Expect, secrets: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    if !(expect.check)(outcome) {
        problems.push(format!(
            "expected {}, got {}",
            expect.text,
            describe(outcome)
        ));
    }
    match outcome {
        Err(err) => {
            let mut texts = vec![("Display", err.to_string()), ("Debug", format!("{err:?}"))];
            let mut source = err.source();
            while let Some(cause) = source {
                texts.push(("source Display", cause.to_string()));
                source = cause.source();
            }
            for (what, text) in texts {
                for secret in secrets.iter().filter(|s| !s.is_empty()) {
                    if text.contains(secret.as_str()) {
                        problems.push(format!(
                            "the error's {what} shows the secret {secret:?}: {text}"
                        ));
                    }
                }
            }
        }
        Ok(token) => {
            let debug = format!("{token:?}");
            let own = [
                Some(token.access_token.expose_secret()),
                token.refresh_token.as_ref().map(|t| t.expose_secret()),
            ];
            for secret in own.into_iter().flatten() {
                if debug.contains(secret) {
                    problems.push(format!("the token's Debug shows its secret: {debug}"));
                }
            }
        }
    }
    problems
}

/// An outcome, for the failure report (a token's secrets are not shown:
/// its `Debug` redacts them).
pub fn describe(outcome: &Outcome) -> String {
    let mut out = String::new();
    match outcome {
        Ok(token) => {
            let _ = write!(out, "Ok({token:?})");
        }
        Err(err) => {
            let _ = write!(out, "Err({err:?})");
        }
    }
    out
}

/// Seconds from the fixtures' start to `t`.
pub fn after_start(t: Option<SystemTime>) -> Option<f64> {
    t.map(|t| {
        t.duration_since(UNIX_EPOCH)
            .map_or(-1.0, |d| d.as_secs_f64() - START_UNIX as f64)
    })
}

/// The wire names of an adapter's token response.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// The access token field (`accessToken`, `access_token`).
    pub access: &'static str,
    /// The relative expiry field (`expiresIn`, `expires_in`).
    pub expires: &'static str,
    /// The refresh token field, if the flow has one.
    pub refresh: Option<&'static str>,
    /// The token type field (`tokenType`, `token_type`).
    pub token_type: &'static str,
}

impl Dialect {
    /// HyperSKU's camelCase.
    pub const HYPERSKU: Self = Self {
        access: "accessToken",
        expires: "expiresIn",
        refresh: Some("refreshToken"),
        token_type: "tokenType",
    };
    /// RFC 6749 (Hike).
    pub const RFC6749: Self = Self {
        access: "access_token",
        expires: "expires_in",
        refresh: Some("refresh_token"),
        token_type: "token_type",
    };
    /// The partner: RFC 6749 names, no refresh token.
    pub const PARTNER: Self = Self {
        access: "access_token",
        expires: "expires_in",
        refresh: None,
        token_type: "token_type",
    };

    /// A JSON token body: the canary access token, `expires` as written
    /// (raw JSON) and the given extra members (raw JSON, may be empty).
    pub fn token(&self, expires: &str, extra: &str) -> String {
        let mut out = format!(r#"{{"{}":"{CANARY_ACCESS}""#, self.access);
        if !expires.is_empty() {
            let _ = write!(out, r#","{}":{expires}"#, self.expires);
        }
        if let Some(refresh) = self.refresh {
            let _ = write!(out, r#","{refresh}":"{CANARY_REFRESH}""#);
        }
        if !extra.is_empty() {
            out.push(',');
            out.push_str(extra);
        }
        out.push('}');
        out
    }

    /// A body whose access token is `raw` (raw JSON).
    pub fn access_as(&self, raw: &str) -> String {
        format!(r#"{{"{}":{raw},"{}":3600}}"#, self.access, self.expires)
    }
}

/// The secrets every row's bodies may contain.
pub fn canaries() -> Vec<String> {
    [CANARY_ACCESS, CANARY_SHORT, CANARY_REFRESH]
        .map(str::to_owned)
        .to_vec()
}

/// Replaces the expectation of the row named `name` (which must exist).
pub fn set(rows: &mut [Row], name: &str, expect: Expect) {
    let row = rows
        .iter_mut()
        .find(|row| row.name == name)
        .unwrap_or_else(|| panic!("no row named {name:?}"));
    row.expect = expect;
    row.on_refresh = None;
}

/// The rows every adapter shares, in its dialect. Outcomes that differ by
/// adapter (an HTTP 201, a non-JSON content type, the shape of a fault's
/// error body) are in the adapters' own tables.
pub fn shared_rows(d: Dialect) -> Vec<Row> {
    let html_502 = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";
    let big = format!(
        r#"{{"{}":"{CANARY_ACCESS}","padding":"{}"}}"#,
        d.access,
        "x".repeat(300 * 1024)
    );
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_extra = d.token(
        "3600",
        &format!(r#""nest":{}1{}"#, "[".repeat(200), "]".repeat(200)),
    );
    let mut bom = "\u{feff}".to_owned();
    bom.push_str(&d.token("3600", ""));
    let mut invalid_utf8 = format!(r#"{{"{}":"{CANARY_ACCESS}"#, d.access).into_bytes();
    invalid_utf8.extend_from_slice(b"\xff\xfe\"}");
    // Found by the partner_response fuzz target: an odd quote before the
    // token made the credential scan pair quotes wrongly.
    let mut misaligned = format!(r#"{{"{}":%"#, d.access).into_bytes();
    misaligned.extend_from_slice(b"\xac\x12\x91\x17*\0\0");
    misaligned.extend_from_slice(
        format!(
            r#""{CANARY_SHORT}","{}\0\0\0{{"{}":"{CANARY_SHORT}",":true}}"#,
            d.expires, d.access
        )
        .as_bytes(),
    );
    let mut latin1_desc = br#"{"error":"invalid_grant","error_description":"caf"#.to_vec();
    latin1_desc.extend_from_slice(b"\xe9\"}");
    let all_nulls = format!(
        r#"{{"{}":null,"{}":null,"{}":null,"scope":null}}"#,
        d.access, d.expires, d.token_type
    );
    let some_nulls = d.token("null", &format!(r#""{}":null,"scope":null"#, d.token_type));
    vec![
        // Not JSON at all.
        Row::new(
            "proxy 502 HTML page",
            body(502, "text/html", html_502),
            expect!(Err(Error::HttpStatus { status: 502, .. })),
        ),
        Row::new(
            "proxy 504 HTML page",
            body(
                504,
                "text/html",
                "<html><body>Gateway Timeout</body></html>",
            ),
            expect!(Err(Error::HttpStatus { status: 504, .. })),
        ),
        Row::new(
            "HTML page with 200",
            body(
                200,
                "text/html",
                "<html><body>Welcome! Please log in.</body></html>",
            ),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "plain text 200",
            body(200, "application/json", "OK"),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "HTML 401 from a WAF",
            body(401, "text/html", "<h1>Unauthorized</h1>"),
            expect!(Err(Error::HttpStatus { status: 401, .. })),
        ),
        Row::new(
            "empty body 200",
            body(200, "application/json", ""),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "empty body 500",
            body(500, "application/json", ""),
            expect!(Err(Error::HttpStatus { status: 500, .. })),
        ),
        Row::new(
            "empty body 503 text",
            body(503, "text/plain", ""),
            expect!(Err(Error::HttpStatus { status: 503, .. })),
        ),
        Row::new(
            "truncated JSON (testkit MalformedBody)",
            Input::Fault(Fault::MalformedBody),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "truncated JSON with a token",
            json(200, format!(r#"{{"{}":"{CANARY_ACCESS}"#, d.access)),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "truncated JSON with a short token",
            json(200, format!(r#"{{"{}":"{CANARY_SHORT}"#, d.access)),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "truncated JSON on 500",
            json(500, format!(r#"{{"{}":"{CANARY_ACCESS}","#, d.access)),
            expect!(Err(Error::HttpStatus { status: 500, .. })),
        ),
        Row::new(
            "body over the 256 KiB cap, 200",
            json(200, big.clone()),
            expect!(Err(Error::Transport {
                kind: oauth2_adapters::TransportErrorKind::ResponseTooLarge,
                ..
            })),
        ),
        Row::new(
            "body over the 256 KiB cap, 500",
            body(500, "text/html", big),
            expect!(Err(Error::Transport {
                kind: oauth2_adapters::TransportErrorKind::ResponseTooLarge,
                ..
            })),
        ),
        // The token itself.
        Row::new(
            "missing access token",
            json(200, format!(r#"{{"{}":3600}}"#, d.expires)),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "empty object",
            json(200, "{}"),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "empty access token",
            json(200, d.access_as(r#""""#)),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "blank access token",
            json(200, d.access_as(r#""   ""#)),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "access token with CR LF (header injection)",
            json(200, d.access_as(r#""abc\r\nX-Evil: 1""#)),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "access token with a space",
            json(200, d.access_as(&format!(r#""{CANARY_ACCESS} x""#))),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "access token with non-ASCII",
            json(200, d.access_as(r#""tökén-1234""#)),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "access token as number",
            json(200, d.access_as("12345")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "access token as array",
            json(200, d.access_as(&format!(r#"["{CANARY_ACCESS}"]"#))),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "access token as object",
            json(
                200,
                d.access_as(&format!(r#"{{"value":"{CANARY_ACCESS}"}}"#)),
            ),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "access token as bool",
            json(200, d.access_as("true")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "access token null",
            json(200, d.access_as("null")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "every field null",
            json(200, all_nulls),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "optional fields null: accepted, expiry unknown",
            json(200, some_nulls),
            expect!(Ok(t) if t.expires_at.is_none()),
        ),
        // Expiries.
        Row::new(
            "expires as bool",
            json(200, d.token("true", "")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "expires as object",
            json(200, d.token(r#"{"seconds":3600}"#, "")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "expires as array",
            json(200, d.token("[3600]", "")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "expires as a word",
            json(200, d.token(r#""soon""#, "")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "expires as numeric string: accepted",
            json(200, d.token(r#""3600""#, "")),
            expect!(Ok(t) if after_start(t.expires_at) == Some(3600.0)),
        ),
        Row::new(
            "expires as padded numeric string: accepted",
            json(200, d.token(r#"" 3600 ""#, "")),
            expect!(Ok(t) if after_start(t.expires_at) == Some(3600.0)),
        ),
        Row::new(
            "expires negative",
            json(200, d.token("-1", "")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "expires negative string",
            json(200, d.token(r#""-3600""#, "")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "expires zero: accepted, expiry unknown (documented)",
            json(200, d.token("0", "")),
            expect!(Ok(t) if t.expires_at.is_none()),
        ),
        Row::new(
            "expires fractional: accepted",
            json(200, d.token("1.5", "")),
            expect!(Ok(t) if after_start(t.expires_at) == Some(1.5)),
        ),
        Row::new(
            "expires 1e300",
            json(200, d.token("1e300", "")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "expires over 100 years",
            json(200, d.token("3200000000", "")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "expires beyond f64 (1e400)",
            json(200, d.token("1e400", "")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "expires \"NaN\"",
            json(200, d.token(r#""NaN""#, "")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "expires \"inf\"",
            json(200, d.token(r#""inf""#, "")),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        // Token types.
        Row::new(
            "token type mac",
            json(
                200,
                d.token("3600", &format!(r#""{}":"mac""#, d.token_type)),
            ),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "token type DPoP",
            json(
                200,
                d.token("3600", &format!(r#""{}":"DPoP""#, d.token_type)),
            ),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "token type empty",
            json(200, d.token("3600", &format!(r#""{}":"""#, d.token_type))),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "token type as number",
            json(200, d.token("3600", &format!(r#""{}":1"#, d.token_type))),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "token type lower-case bearer: accepted",
            json(
                200,
                d.token("3600", &format!(r#""{}":"bearer""#, d.token_type)),
            ),
            expect!(Ok(t) if t.token_type == "Bearer"),
        ),
        Row::new(
            "token type equal to the access token",
            json(
                200,
                d.token("3600", &format!(r#""{}":"{CANARY_ACCESS}""#, d.token_type)),
            ),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        // OAuth error objects.
        Row::new(
            "error object, 400 invalid_grant",
            json(
                400,
                r#"{"error":"invalid_grant","error_description":"code expired"}"#,
            ),
            expect!(Err(Error::Provider {
                code: oauth2_adapters::ErrorCode::InvalidGrant,
                status: Some(400),
                ..
            })),
        )
        .on_refresh(expect!(Err(Error::ReauthorizationRequired {
            reason: oauth2_adapters::ReauthorizationReason::RefreshTokenRejected { .. },
            ..
        }))),
        Row::new(
            "error object, 401 invalid_client",
            json(401, r#"{"error":"invalid_client"}"#),
            expect!(Err(Error::Provider {
                code: oauth2_adapters::ErrorCode::InvalidClient,
                status: Some(401),
                ..
            })),
        ),
        Row::new(
            "error object with status 200",
            json(200, r#"{"error":"invalid_grant"}"#),
            expect!(Err(Error::Provider {
                code: oauth2_adapters::ErrorCode::InvalidGrant,
                status: Some(200),
                ..
            })),
        )
        .on_refresh(expect!(Err(Error::ReauthorizationRequired { .. }))),
        Row::new(
            "error object beside a token, 200",
            json(200, d.token("3600", r#""error":"access_denied""#)),
            expect!(Err(Error::Provider {
                code: oauth2_adapters::ErrorCode::AccessDenied,
                status: Some(200),
                ..
            })),
        ),
        Row::new(
            "error object, 400 unknown code",
            json(400, r#"{"error":"made_up_code"}"#),
            expect!(Err(Error::Provider { code: oauth2_adapters::ErrorCode::Other(c), status: Some(400), .. }) if c == "made_up_code"),
        ),
        Row::new(
            "error object, huge unknown code is cut",
            json(400, format!(r#"{{"error":"{}"}}"#, "e".repeat(10_000))),
            expect!(Err(Error::Provider { code: oauth2_adapters::ErrorCode::Other(c), .. }) if c.chars().count() <= 65),
        ),
        Row::new(
            "error object, code is the echoed token",
            json(
                400,
                format!(
                    r#"{{"error":"{CANARY_ACCESS}","{}":"{CANARY_ACCESS}"}}"#,
                    d.access
                ),
            ),
            expect!(Err(Error::Provider {
                status: Some(400),
                ..
            })),
        ),
        Row::new(
            "error description echoes the token",
            json(
                400,
                format!(
                    r#"{{"error":"invalid_request","error_description":"bad token {CANARY_ACCESS}","{}":"{CANARY_ACCESS}"}}"#,
                    d.access
                ),
            ),
            expect!(Err(Error::Provider {
                description: Some(_),
                ..
            })),
        ),
        Row::new(
            "error description echoes the sent grant",
            json(
                400,
                format!(
                    r#"{{"error":"invalid_grant","error_description":"grant {GRANT} is spent"}}"#
                ),
            ),
            expect!(Err(Error::Provider {
                code: oauth2_adapters::ErrorCode::InvalidGrant,
                description: Some(_),
                ..
            })),
        )
        .on_refresh(expect!(Err(Error::ReauthorizationRequired {
            reason: oauth2_adapters::ReauthorizationReason::RefreshTokenRejected {
                description: Some(_)
            },
            ..
        }))),
        Row::new(
            "error description echoes secret and verifier",
            json(
                401,
                format!(
                    r#"{{"error":"invalid_client","error_description":"secret {CLIENT_SECRET} verifier {VERIFIER}"}}"#
                ),
            ),
            expect!(Err(Error::Provider {
                code: oauth2_adapters::ErrorCode::InvalidClient,
                description: Some(_),
                ..
            })),
        ),
        Row::new(
            "error code is the client secret",
            json(400, format!(r#"{{"error":"{CLIENT_SECRET}"}}"#)),
            expect!(Err(Error::Provider {
                code: oauth2_adapters::ErrorCode::Other(_),
                status: Some(400),
                ..
            })),
        ),
        Row::new(
            "HTML page echoing the request",
            body(
                400,
                "text/html",
                format!(
                    "<pre>client_secret={CLIENT_SECRET}&amp;code={GRANT}&amp;v={VERIFIER}</pre>"
                ),
            ),
            expect!(Err(Error::HttpStatus { status: 400, .. })),
        ),
        Row::new(
            "token type echoes the grant",
            json(
                200,
                d.token("3600", &format!(r#""{}":"{GRANT}""#, d.token_type)),
            ),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "truncated body echoing the client secret",
            json(200, format!(r#"{{"error_description":"{CLIENT_SECRET} "#)),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "error as number",
            json(400, r#"{"error":400}"#),
            expect!(Err(Error::HttpStatus { status: 400, .. })),
        ),
        Row::new(
            "error empty string",
            json(400, r#"{"error":""}"#),
            expect!(Err(Error::HttpStatus { status: 400, .. })),
        ),
        Row::new(
            "error object, 500 server_error",
            json(500, r#"{"error":"server_error"}"#),
            expect!(Err(Error::Provider {
                code: oauth2_adapters::ErrorCode::ServerError,
                status: Some(500),
                ..
            })),
        ),
        Row::new(
            "429 with Retry-After",
            Input::Fault(Fault::RetryAfter {
                status: 429,
                seconds: 7,
            }),
            expect!(Err(Error::HttpStatus { status: 429, retry_after: Some(d), .. }) if *d == Duration::from_secs(7)),
        ),
        Row::new(
            "a token on HTTP 500",
            json(500, d.token("3600", "")),
            expect!(Err(Error::HttpStatus { status: 500, .. })),
        ),
        Row::new(
            "a token on HTTP 400",
            json(400, d.token("3600", "")),
            expect!(Err(Error::HttpStatus { status: 400, .. })),
        ),
        // Redirects.
        Row::new(
            "302 redirect (not followed)",
            Input::Fault(Fault::Redirect("/elsewhere".into())),
            expect!(Err(Error::HttpStatus { status: 302, .. })),
        ),
        Row::new(
            "307 redirect with a token body",
            Input::Fault(Fault::StatusWithBody {
                status: 307,
                content_type: "application/json".into(),
                body: d.token("3600", ""),
            }),
            expect!(Err(Error::HttpStatus { status: 307, .. })),
        ),
        Row::new(
            "301 redirect with an error body",
            json(301, r#"{"error":"invalid_grant"}"#),
            expect!(Err(Error::HttpStatus { status: 301, .. })),
        ),
        // Shapes.
        Row::new(
            "top-level array",
            json(200, format!("[{}]", d.token("3600", ""))),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "top-level string",
            json(200, format!(r#""{CANARY_ACCESS}""#)),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "top-level number",
            json(200, "3600"),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "top-level null",
            json(200, "null"),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "UTF-8 BOM before a valid body",
            json(200, bom),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "10 000 nested arrays",
            json(200, deep_array),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "200-deep nesting in an extra field",
            json(200, deep_extra),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "invalid UTF-8 in the token (direct)",
            direct(200, invalid_utf8),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "invalid UTF-8 in an error description (direct)",
            direct(400, latin1_desc),
            expect!(Err(Error::HttpStatus { status: 400, .. })),
        ),
        Row::new(
            "misaligned quotes around a short token (fuzz regression, direct)",
            direct(200, misaligned),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "duplicate access token keys",
            json(
                200,
                format!(
                    r#"{{"{0}":"{CANARY_ACCESS}","{0}":"{CANARY_SHORT}"}}"#,
                    d.access
                ),
            ),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "duplicate key in an extra object",
            json(200, d.token("3600", r#""meta":{"a":1,"a":2}"#)),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "duplicate error keys on 400",
            json(400, r#"{"error":"invalid_grant","error":"server_error"}"#),
            expect!(Err(Error::HttpStatus { status: 400, .. })),
        ),
        Row::new(
            "trailing garbage after the JSON",
            json(200, format!("{} x", d.token("3600", ""))),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "two JSON documents",
            json(200, format!("{0}{0}", d.token("3600", ""))),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "scope as number",
            json(200, d.token("3600", r#""scope":5"#)),
            expect!(Err(Error::InvalidResponse { .. })),
        ),
        Row::new(
            "unknown extra fields: accepted and kept",
            json(200, d.token("3600", r#""shop":{"id":7},"flag":true"#)),
            expect!(Ok(t) if t.extra.contains_key("shop")),
        ),
        Row::new(
            "charset parameter on the content type: accepted",
            body(200, "application/json; charset=utf-8", d.token("3600", "")),
            expect!(Ok(_)),
        ),
    ]
}
