//! Why a sign-in did not complete, in words for the person at the browser.
//!
//! The callback never renders its own query: it redirects to
//! `/error/<provider>/<problem>`, so the code and state leave the address
//! bar and the history, and the page can only show one of these fixed
//! messages.

use axum::http::StatusCode;
use oauth2_adapters::Error;

/// A sign-in that did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The person clicked Deny (`error=access_denied`).
    Denied,
    /// The callback's `state` is missing or is not this sign-in's.
    StateMismatch,
    /// The callback's query is malformed.
    InvalidLink,
    /// The sign-in was started too long ago.
    Expired,
    /// This browser has no sign-in to this provider in progress.
    NotInProgress,
    /// The provider redirected back with an error other than a denial.
    ProviderFailed,
    /// The code exchange failed.
    ExchangeFailed,
    /// The token could not be stored.
    SaveFailed,
    /// The sign-in could not be started.
    StartFailed,
    /// The session store could not be read or written.
    SessionFailed,
}

impl Problem {
    const ALL: [Self; 10] = [
        Self::Denied,
        Self::StateMismatch,
        Self::InvalidLink,
        Self::Expired,
        Self::NotInProgress,
        Self::ProviderFailed,
        Self::ExchangeFailed,
        Self::SaveFailed,
        Self::StartFailed,
        Self::SessionFailed,
    ];

    /// What went wrong, from the error `handle_callback` returned.
    pub(crate) fn from_error(error: &Error) -> Self {
        match error {
            Error::AuthorizationDenied { .. } => Self::Denied,
            Error::StateMismatch => Self::StateMismatch,
            Error::InvalidCallback { .. } => Self::InvalidLink,
            Error::AuthorizationExpired { .. } => Self::Expired,
            Error::AuthorizationFailed { .. } => Self::ProviderFailed,
            _ => Self::ExchangeFailed,
        }
    }

    /// Its path segment in `/error/<provider>/<slug>`.
    pub(crate) fn slug(self) -> &'static str {
        match self {
            Self::Denied => "denied",
            Self::StateMismatch => "state-mismatch",
            Self::InvalidLink => "invalid-link",
            Self::Expired => "expired",
            Self::NotInProgress => "not-in-progress",
            Self::ProviderFailed => "provider-failed",
            Self::ExchangeFailed => "exchange-failed",
            Self::SaveFailed => "save-failed",
            Self::StartFailed => "start-failed",
            Self::SessionFailed => "session-failed",
        }
    }

    /// The problem whose [`Problem::slug`] is `slug`.
    pub(crate) fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.slug() == slug)
    }

    /// The HTTP status of its page.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Self::Denied => StatusCode::FORBIDDEN,
            Self::StateMismatch | Self::InvalidLink | Self::Expired | Self::NotInProgress => {
                StatusCode::BAD_REQUEST
            }
            Self::ProviderFailed | Self::ExchangeFailed => StatusCode::BAD_GATEWAY,
            Self::SaveFailed | Self::StartFailed | Self::SessionFailed => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The page's heading.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::Denied => "Access declined",
            Self::StateMismatch | Self::InvalidLink => "Sign-in link not valid",
            Self::Expired => "Sign-in expired",
            Self::NotInProgress => "No sign-in in progress",
            Self::ProviderFailed | Self::ExchangeFailed => "Sign-in failed",
            Self::SaveFailed => "Account not saved",
            Self::StartFailed => "Sign-in not started",
            Self::SessionFailed => "Session unavailable",
        }
    }

    /// The message, naming the provider.
    pub(crate) fn message(self, provider: &str) -> String {
        const AGAIN: &str = "Nothing was connected; start again from the home page.";
        match self {
            Self::Denied => format!(
                "You declined access to {provider}. Nothing was connected; \
                 use Connect {provider} to try again."
            ),
            Self::StateMismatch => format!(
                "This sign-in link is not valid (state mismatch): it does not belong to the \
                 {provider} sign-in this browser started, or it was altered. {AGAIN}"
            ),
            Self::InvalidLink => {
                format!("This sign-in link is not valid (malformed callback). {AGAIN}")
            }
            Self::Expired => format!(
                "This sign-in to {provider} took too long and expired (it must be completed \
                 within 10 minutes). {AGAIN}"
            ),
            Self::NotInProgress => format!(
                "No sign-in to {provider} is in progress in this browser: the link was already \
                 used, it expired, or it was opened in another browser. {AGAIN}"
            ),
            Self::ProviderFailed => {
                format!("{provider} could not complete the sign-in and sent back an error. {AGAIN}")
            }
            Self::ExchangeFailed => {
                format!("{provider} did not accept the sign-in (the code exchange failed). {AGAIN}")
            }
            Self::SaveFailed => format!(
                "The {provider} account was authorized but could not be saved. \
                 Start again from the home page."
            ),
            Self::StartFailed => format!(
                "The sign-in to {provider} could not be started. Try again from the home page."
            ),
            Self::SessionFailed => format!(
                "This browser's session could not be read or saved, so the sign-in to \
                 {provider} cannot go on. {AGAIN}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn errors_map_to_clear_messages_and_slugs_round_trip() {
        let denied = Error::AuthorizationDenied { description: None };
        assert_eq!(Problem::from_error(&denied), Problem::Denied);
        assert!(Problem::Denied
            .message("HyperSKU")
            .starts_with("You declined access to HyperSKU."));
        assert_eq!(
            Problem::from_error(&Error::StateMismatch),
            Problem::StateMismatch
        );
        assert!(Problem::StateMismatch
            .message("Hike")
            .starts_with("This sign-in link is not valid (state mismatch)"));
        let expired = Error::AuthorizationExpired {
            age: Duration::from_secs(700),
            max_age: Duration::from_secs(600),
        };
        assert_eq!(Problem::from_error(&expired), Problem::Expired);
        assert_eq!(
            Problem::from_error(&Error::configuration("x")),
            Problem::ExchangeFailed
        );
        for problem in Problem::ALL {
            assert_eq!(Problem::from_slug(problem.slug()), Some(problem));
        }
        assert_eq!(Problem::from_slug("<script>"), None);
    }
}
