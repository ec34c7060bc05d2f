//! Checks every code-flow adapter must pass, generic over adapter and mock.

use std::time::Duration;

use oauth2_adapters::testkit::{Fault, ResponseStyle};
use oauth2_adapters::{
    AuthorizationCodeProvider, AuthorizeRequest, CallbackParams, Error, ErrorCode, ExposeSecret,
    ReauthorizationReason, RefreshTokenProvider, Token, TransportErrorKind,
};

use crate::{CodeFlowMock, Fixture, REDIRECT_URI, START_UNIX};

/// Both capabilities a code-flow adapter has.
pub trait CodeFlowProvider: AuthorizationCodeProvider + RefreshTokenProvider {}
impl<T: AuthorizationCodeProvider + RefreshTokenProvider> CodeFlowProvider for T {}

/// Authorizes, approves at the mock and exchanges the code.
pub async fn sign_in<P: CodeFlowProvider, M: CodeFlowMock>(
    fx: &Fixture<P, M>,
) -> Result<Token, Error> {
    let (url, pending) = fx
        .provider
        .authorize(AuthorizeRequest::new(REDIRECT_URI)?)?;
    let callback = fx.mock.approve_url(&url).await.expect("the mock approves");
    fx.provider
        .handle_callback(CallbackParams::from_url(&callback)?, pending)
        .await
}

fn secs_after_start(t: Option<std::time::SystemTime>) -> Option<u64> {
    t.map(|t| {
        t.duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
            - START_UNIX
    })
}

/// Sign in, refresh (the refresh token rotates), and the spent refresh token
/// is rejected with "re-authorization required".
pub async fn signs_in_and_refreshes_with_rotation<P: CodeFlowProvider, M: CodeFlowMock>(
    fx: Fixture<P, M>,
) {
    let token = sign_in(&fx).await.expect("signed in");
    assert_eq!(secs_after_start(token.expires_at), Some(3600));
    assert_eq!(token.token_type, "Bearer");
    let first = token.refresh_token.clone().expect("a refresh token");
    assert!(fx.mock.is_refresh_token_valid(first.expose_secret()));

    fx.clock.advance(Duration::from_secs(3000));
    let refreshed = fx.provider.refresh(&token).await.expect("refreshed");
    let second = refreshed
        .refresh_token
        .clone()
        .expect("a rotated refresh token");
    assert_ne!(first.expose_secret(), second.expose_secret());
    assert_ne!(
        token.access_token.expose_secret(),
        refreshed.access_token.expose_secret()
    );
    assert!(!fx.mock.is_refresh_token_valid(first.expose_secret()));
    assert!(fx.mock.is_refresh_token_valid(second.expose_secret()));
    assert_eq!(secs_after_start(refreshed.expires_at), Some(3000 + 3600));
    assert_eq!(refreshed.scopes, token.scopes);
    assert_eq!(refreshed.subject, token.subject);

    let err = fx
        .provider
        .refresh(&token)
        .await
        .expect_err("a spent refresh token");
    assert!(err.requires_reauthorization(), "{err:?}");
    assert!(matches!(
        err,
        Error::ReauthorizationRequired {
            reason: ReauthorizationReason::RefreshTokenRejected { .. },
            ..
        }
    ));
}

/// A callback cannot be replayed: the pending authorization it answered is
/// consumed (and cannot be cloned), and against any other pending
/// authorization its state does not match, so nothing is sent.
pub async fn a_callback_cannot_be_replayed<P: CodeFlowProvider, M: CodeFlowMock>(
    fx: Fixture<P, M>,
) {
    let (url, pending) = fx
        .provider
        .authorize(AuthorizeRequest::new(REDIRECT_URI).unwrap())
        .unwrap();
    let callback = fx.mock.approve_url(&url).await.unwrap();
    let params = CallbackParams::from_url(&callback).unwrap();
    fx.provider
        .handle_callback(params.clone(), pending)
        .await
        .expect("first exchange");
    let (_, another) = fx
        .provider
        .authorize(AuthorizeRequest::new(REDIRECT_URI).unwrap())
        .unwrap();
    fx.mock.clear_requests();
    let err = fx
        .provider
        .handle_callback(params, another)
        .await
        .expect_err("a replayed callback");
    assert!(matches!(err, Error::StateMismatch), "{err:?}");
    assert!(fx.mock.token_requests().is_empty(), "nothing was sent");
}

/// A callback whose state differs is rejected before anything is sent.
pub async fn a_tampered_state_sends_nothing<P: CodeFlowProvider, M: CodeFlowMock>(
    fx: Fixture<P, M>,
) {
    let (url, pending) = fx
        .provider
        .authorize(AuthorizeRequest::new(REDIRECT_URI).unwrap())
        .unwrap();
    let mut callback = fx.mock.approve_url(&url).await.unwrap();
    let code = CallbackParams::from_url(&callback).unwrap().code.unwrap();
    callback.set_query(Some(&format!("code={}&state=forged", code.expose_secret())));
    let err = fx
        .provider
        .handle_callback(CallbackParams::from_url(&callback).unwrap(), pending)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StateMismatch), "{err:?}");
    assert!(fx.mock.token_requests().is_empty());
}

/// A denial is its own error and sends nothing.
pub async fn a_denial_is_reported<P: CodeFlowProvider, M: CodeFlowMock>(fx: Fixture<P, M>) {
    let (url, pending) = fx
        .provider
        .authorize(AuthorizeRequest::new(REDIRECT_URI).unwrap())
        .unwrap();
    let callback = fx.mock.deny_url(&url).await.unwrap();
    let err = fx
        .provider
        .handle_callback(CallbackParams::from_url(&callback).unwrap(), pending)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthorizationDenied { .. }), "{err:?}");
    assert!(fx.mock.token_requests().is_empty());
}

/// A pending authorization older than 10 minutes is rejected, unsent.
pub async fn a_stale_authorization_is_rejected<P: CodeFlowProvider, M: CodeFlowMock>(
    fx: Fixture<P, M>,
) {
    let (url, pending) = fx
        .provider
        .authorize(AuthorizeRequest::new(REDIRECT_URI).unwrap())
        .unwrap();
    let callback = fx.mock.approve_url(&url).await.unwrap();
    fx.clock.advance(Duration::from_secs(601));
    let err = fx
        .provider
        .handle_callback(CallbackParams::from_url(&callback).unwrap(), pending)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthorizationExpired { .. }), "{err:?}");
    assert!(fx.mock.token_requests().is_empty());
}

/// The mock refuses a redirect URI other than the registered one.
pub async fn an_unregistered_redirect_uri_is_refused<P: CodeFlowProvider, M: CodeFlowMock>(
    fx: Fixture<P, M>,
) {
    let request = AuthorizeRequest::new("http://127.0.0.1:8976/other").unwrap();
    let (url, _pending) = fx.provider.authorize(request).unwrap();
    assert!(fx.mock.approve_url(&url).await.is_err());
}

/// Numbers sent as strings are understood.
pub async fn string_numbers_are_understood<P: CodeFlowProvider, M: CodeFlowMock>(
    fx: Fixture<P, M>,
) {
    fx.mock.set_style(ResponseStyle {
        string_numbers: true,
        ..Default::default()
    });
    let token = sign_in(&fx).await.expect("signed in");
    assert_eq!(secs_after_start(token.expires_at), Some(3600));
}

/// Provider failures become the right typed errors, and nothing is lost:
/// a failure that did not process the grant leaves the refresh token valid.
pub async fn faults_become_typed_errors<P: CodeFlowProvider, M: CodeFlowMock>(fx: Fixture<P, M>) {
    let token = sign_in(&fx).await.expect("signed in");

    fx.mock.push_fault(Fault::Status(503));
    let err = fx.provider.refresh(&token).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(err.http_status(), Some(503));

    fx.mock.push_fault(Fault::RetryAfter {
        status: 429,
        seconds: 7,
    });
    let err = fx.provider.refresh(&token).await.unwrap_err();
    assert!(
        matches!(err, Error::HttpStatus { status: 429, retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{err:?}"
    );

    fx.mock.push_fault(Fault::MalformedBody);
    let err = fx.provider.refresh(&token).await.unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");

    fx.mock
        .push_fault(Fault::Redirect("http://127.0.0.1:9/elsewhere".into()));
    let err = fx.provider.refresh(&token).await.unwrap_err();
    assert!(
        matches!(err, Error::HttpStatus { status: 302, .. }),
        "{err:?}"
    );

    fx.mock.push_fault(Fault::StatusWithBody {
        status: 502,
        content_type: "text/html".into(),
        body: "<html><h1>502 Bad Gateway</h1></html>".into(),
    });
    let err = fx.provider.refresh(&token).await.unwrap_err();
    assert!(
        matches!(err, Error::HttpStatus { status: 502, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("Bad Gateway"), "{err}");

    // Nothing was lost: none of those answers spent the refresh token.
    let current = token.refresh_token.as_ref().expect("a refresh token");
    assert!(fx.mock.is_refresh_token_valid(current.expose_secret()));

    fx.mock.push_fault(Fault::Delay(
        crate::HTTP_TIMEOUT + Duration::from_millis(500),
    ));
    let err = fx.provider.refresh(&token).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportErrorKind::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

/// A wrong client secret is `invalid_client`, and the secret is not in the error.
pub async fn a_wrong_secret_is_invalid_client<P, M, F>(fx: Fixture<P, M>, with_secret: F)
where
    P: CodeFlowProvider,
    M: CodeFlowMock,
    F: FnOnce(&Fixture<P, M>, &str) -> P,
{
    let wrong = with_secret(&fx, "wrong-secret-value-42");
    let (url, pending) = wrong
        .authorize(AuthorizeRequest::new(REDIRECT_URI).unwrap())
        .unwrap();
    let callback = fx.mock.approve_url(&url).await.unwrap();
    let err = wrong
        .handle_callback(CallbackParams::from_url(&callback).unwrap(), pending)
        .await
        .unwrap_err();
    assert_eq!(
        err.provider_error_code(),
        Some(&ErrorCode::InvalidClient),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("wrong-secret-value-42"));
}
