//! What a standard provider makes of the `oauth2` crate's outcome: the
//! token, or the error the response stands for.
//!
//! The crate parses the response; its errors carry neither the status nor
//! (for a success) the body, so [`RecordingClient`] keeps both.

use std::sync::Mutex;
use std::time::Duration;

use oauth2::basic::{BasicErrorResponse, BasicTokenType};
use oauth2::{AsyncHttpClient, RequestTokenError};
use secrecy::SecretString;
use serde_json::Value;

use super::{StandardProvider, StandardResponse};
use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpResponse, OAuth2Future, TransportFailure};
use crate::redact::{excerpt, field_excerpt, scrub, EXCERPT_CHARS};
use crate::token::Token;
use crate::wire::{
    check_access_token, check_json_document, describe_json_error, error_code, expiry_from_lifetime,
    invalid_response,
};

/// The status, `Retry-After` and body of the last response.
#[derive(Debug, Default)]
pub(super) struct Recorded {
    status: u16,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

/// Where the `oauth2` crate's requests go.
pub(super) enum Transport<'a> {
    /// The token endpoint, through the context's client.
    Http(&'a HttpClient),
    /// A fixed answer, for the fuzz targets: the request is built but not sent.
    Canned(HttpResponse),
}

/// Runs the `oauth2` crate's requests on a [`Transport`] and remembers the
/// answer, which the crate's errors do not carry.
pub(super) struct RecordingClient<'a> {
    transport: Transport<'a>,
    last: Mutex<Option<Recorded>>,
}

impl<'a> RecordingClient<'a> {
    pub(super) fn new(transport: Transport<'a>) -> Self {
        Self {
            transport,
            last: Mutex::new(None),
        }
    }

    fn take(&self) -> Option<Recorded> {
        self.last.lock().ok().and_then(|mut last| last.take())
    }
}

impl<'c> AsyncHttpClient<'c> for RecordingClient<'_> {
    type Error = TransportFailure;
    type Future = OAuth2Future<'c>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = match &self.transport {
                Transport::Http(http) => http.execute_http(request).await?,
                Transport::Canned(response) => {
                    drop(request);
                    response.clone().into_oauth2()?
                }
            };
            if let Ok(mut last) = self.last.lock() {
                *last = Some(Recorded {
                    status: response.status().as_u16(),
                    retry_after: crate::http::retry_after(response.headers()),
                    body: response.body().clone(),
                });
            }
            Ok(response)
        })
    }
}

type Outcome =
    std::result::Result<StandardResponse, RequestTokenError<TransportFailure, BasicErrorResponse>>;

impl StandardProvider {
    /// The token, or the error the response stands for:
    ///
    /// * a transport failure → [`Error::Transport`];
    /// * a redirect → [`Error::HttpStatus`], whatever the body;
    /// * an error object (`{"error": "…"}`, a non-empty string), on any
    ///   status, even 200 and even beside an `access_token` →
    ///   [`Error::Provider`];
    /// * any other non-2xx answer → [`Error::HttpStatus`];
    /// * a 2xx other than 200, a non-JSON content type, an unparseable
    ///   body, a repeated key, a non-Bearer `token_type`, an empty token or
    ///   an impossible `expires_in` → [`Error::InvalidResponse`].
    pub(super) fn finish(
        &self,
        outcome: Outcome,
        recorder: &RecordingClient<'_>,
        known: &[&str],
    ) -> Result<Token> {
        let recorded = recorder.take().unwrap_or_default();
        match outcome {
            Ok(response) => {
                if let Some(err) = self.error_member(&recorded, known) {
                    return Err(err);
                }
                check_json_document(&recorded.body)
                    .map_err(|reason| invalid_response(&self.id, reason, &recorded.body, known))?;
                self.normalize(response, &recorded.body, known)
            }
            Err(RequestTokenError::Request(failure)) => Err(failure.into_error(&self.id)),
            Err(err) => Err(self.map_error(err, &recorded, known)),
        }
    }

    fn map_error(
        &self,
        err: RequestTokenError<TransportFailure, BasicErrorResponse>,
        recorded: &Recorded,
        known: &[&str],
    ) -> Error {
        let status = recorded.status;
        let body = recorded.body.as_slice();
        if (300..400).contains(&status) {
            return self.status_error(recorded, known);
        }
        if let Some(err) = self.error_member(recorded, known) {
            return err;
        }
        if !(200..300).contains(&status) {
            return self.status_error(recorded, known);
        }
        let reason = match err {
            _ if status != 200 => format!("HTTP {status}: a token response must have status 200"),
            RequestTokenError::Parse(parse, _) => {
                format!(
                    "{} at `{}`",
                    describe_json_error(parse.inner()),
                    parse.path()
                )
            }
            RequestTokenError::Other(reason) => reason,
            RequestTokenError::ServerResponse(_) | RequestTokenError::Request(_) => {
                "an unexpected answer".to_owned()
            }
        };
        invalid_response(&self.id, reason, body, known)
    }

    /// An [`Error::Provider`] when the body is a JSON object whose `error`
    /// is a non-empty string and which repeats no key.
    fn error_member(&self, recorded: &Recorded, known: &[&str]) -> Option<Error> {
        let body = recorded.body.as_slice();
        let value = serde_json::from_slice::<Value>(body).ok()?;
        let code = value.get("error")?.as_str().filter(|c| !c.is_empty())?;
        check_json_document(body).ok()?;
        Some(Error::Provider {
            provider: self.id.clone(),
            code: error_code(code, known, body),
            provider_code: None,
            description: value
                .get("error_description")
                .and_then(Value::as_str)
                .map(|d| field_excerpt(d, known, body)),
            status: Some(recorded.status),
            retry_after: recorded.retry_after,
        })
    }

    fn status_error(&self, recorded: &Recorded, known: &[&str]) -> Error {
        Error::HttpStatus {
            provider: self.id.clone(),
            status: recorded.status,
            retry_after: recorded.retry_after,
            excerpt: excerpt(&recorded.body, known),
        }
    }

    fn normalize(&self, response: StandardResponse, body: &[u8], known: &[&str]) -> Result<Token> {
        let now = self.context.clock.now();
        let invalid = |reason: String| invalid_response(&self.id, reason, body, known);
        let access = response.access_token.secret();
        check_access_token("access_token", access).map_err(invalid)?;
        if response.token_type != BasicTokenType::Bearer {
            let kind = scrub(response.token_type.as_ref(), known, body, EXCERPT_CHARS / 4);
            return Err(invalid(format!(
                "unsupported `token_type` {kind:?}: only Bearer tokens can be used"
            )));
        }
        let mut token = Token::new(self.id.clone(), SecretString::from(access.clone()), now);
        token.refresh_token = response
            .refresh_token
            .as_ref()
            .filter(|t| !t.secret().is_empty())
            .map(|t| SecretString::from(t.secret().clone()));
        token.expires_at = expiry_from_lifetime(
            "expires_in",
            response.expires_in,
            Duration::from_secs(1),
            now,
        )
        .map_err(invalid)?;
        token.scopes = response
            .scopes
            .as_ref()
            .map(|scopes| scopes.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        token.extra = response.extra;
        Ok(token)
    }
}
