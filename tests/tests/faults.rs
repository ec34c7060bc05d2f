//! Faults and the retry rules, through the testkit's fault modes: a retry
//! happens only where it cannot spend something twice.
//!
//! * client credentials: retried on any retryable failure;
//! * a code exchange: retried only when the request never left;
//! * a refresh with a rotating refresh token: retried only when the request
//!   never left.
//!
//! Attempts are counted twice: at the mock (requests received) and in the
//! `oauth2_adapters.token_request` spans (attempts made, including those
//! that never reached a server).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use oauth2_adapters::hike::Hike;
use oauth2_adapters::hypersku::HyperSku;
use oauth2_adapters::partner::Partner;
use oauth2_adapters::testkit::{Fault, MockServer};
use oauth2_adapters::{
    AuthorizationCodeProvider, AuthorizeRequest, CallbackParams, ClientCredentialsProvider, Error,
    ExposeSecret, RefreshTokenProvider, RetryPolicy, TransportErrorKind,
};
use oauth2_adapters_tests::code_flow::{sign_in, CodeFlowProvider};
use oauth2_adapters_tests::trace_capture::{CapturedSpan, TraceCapture};
use oauth2_adapters_tests::{
    context_with_retries, credentials, CodeFlowMock, Fixture, HTTP_TIMEOUT, REDIRECT_URI,
};

const TOKEN_REQUEST: &str = "oauth2_adapters.token_request";

/// Retries with short waits, so the suite stays quick.
fn quick_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(attempts)
        .with_backoff(Duration::from_millis(10), Duration::from_millis(40))
        .with_max_elapsed(Duration::from_secs(10))
}

/// `http://127.0.0.1:PORT/` where nothing listens: connections are refused.
fn refused_base_url() -> String {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/")
}

fn outcomes(spans: &[CapturedSpan]) -> Vec<&str> {
    spans
        .iter()
        .map(|s| s.field("outcome").unwrap_or("?"))
        .collect()
}

fn is_transport(err: &Error, expected: TransportErrorKind) -> bool {
    matches!(err, Error::Transport { kind, .. } if *kind == expected)
}

mod client_credentials_are_retried {
    use super::*;

    async fn partner(attempts: u32) -> Fixture<Partner, oauth2_adapters::testkit::PartnerMock> {
        oauth2_adapters_tests::partner_with_retries(quick_retries(attempts)).await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn through_a_5xx_burst() {
        let fx = partner(4).await;
        for status in [500, 502, 503] {
            fx.mock.push_fault(Fault::Status(status));
        }
        let capture = TraceCapture::start();
        let token = fx.provider.client_credentials(&[]).await.expect("a token");
        assert!(!token.access_token.expose_secret().is_empty());
        assert_eq!(fx.mock.token_requests().len(), 4);
        let spans = capture.spans(TOKEN_REQUEST);
        let attempts: Vec<_> = spans.iter().map(|s| s.field("attempt")).collect();
        assert_eq!(attempts, [Some("1"), Some("2"), Some("3"), Some("4")]);
        assert_eq!(
            outcomes(&spans),
            [
                "provider_error",
                "provider_error",
                "provider_error",
                "success"
            ]
        );
        assert_eq!(spans[0].field("http.status"), Some("500"));
        assert_eq!(spans[3].field("grant"), Some("client_credentials"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn at_most_max_attempts_times() {
        let fx = partner(3).await;
        for _ in 0..5 {
            fx.mock.push_fault(Fault::StatusWithBody {
                status: 502,
                content_type: "text/html".into(),
                body: "<html><h1>502 Bad Gateway</h1></html>".into(),
            });
        }
        let err = fx.provider.client_credentials(&[]).await.unwrap_err();
        assert!(
            matches!(err, Error::HttpStatus { status: 502, .. }),
            "{err:?}"
        );
        assert_eq!(fx.mock.token_requests().len(), 3);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn within_the_total_time_budget() {
        let policy = RetryPolicy::default()
            .with_max_attempts(10)
            .with_backoff(Duration::from_millis(100), Duration::from_millis(100))
            .with_max_elapsed(Duration::from_millis(120));
        let fx = oauth2_adapters_tests::partner_with_retries(policy).await;
        for _ in 0..10 {
            fx.mock.push_fault(Fault::Status(503));
        }
        let err = fx.provider.client_credentials(&[]).await.unwrap_err();
        assert!(err.is_retryable());
        // Backoffs of 50–100 ms: a third attempt would start past 120 ms.
        let sent = fx.mock.token_requests().len();
        assert!((2..=3).contains(&sent), "{sent} attempts");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn after_the_delay_a_429_asks_for() {
        let fx = partner(3).await;
        fx.mock.push_fault(Fault::RetryAfter {
            status: 429,
            seconds: 1,
        });
        let started = Instant::now();
        fx.provider.client_credentials(&[]).await.expect("a token");
        assert!(started.elapsed() >= Duration::from_secs(1), "waited");
        assert_eq!(fx.mock.token_requests().len(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn not_when_retry_after_exceeds_the_budget() {
        let fx = partner(3).await;
        fx.mock.push_fault(Fault::RetryAfter {
            status: 503,
            seconds: 60,
        });
        let err = fx.provider.client_credentials(&[]).await.unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(60)), "{err:?}");
        assert_eq!(fx.mock.token_requests().len(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn after_a_connection_reset_mid_body() {
        let fx = partner(3).await;
        fx.mock.push_fault(Fault::ResetMidBody);
        let capture = TraceCapture::start();
        fx.provider.client_credentials(&[]).await.expect("a token");
        assert_eq!(fx.mock.token_requests().len(), 2);
        assert_eq!(
            outcomes(&capture.spans(TOKEN_REQUEST)),
            ["transport", "success"]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn after_a_timeout_before_the_headers() {
        let fx = partner(3).await;
        fx.mock
            .push_fault(Fault::StallAfterProcessing(HTTP_TIMEOUT * 2));
        fx.provider.client_credentials(&[]).await.expect("a token");
        assert_eq!(fx.mock.token_requests().len(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn after_a_refused_connection() {
        let fx = partner(3).await;
        let provider = Partner::builder(credentials(&fx.mock))
            .base_url(refused_base_url())
            .settings(context_with_retries(&fx.clock, quick_retries(3)))
            .build()
            .unwrap();
        let capture = TraceCapture::start();
        let err = provider.client_credentials(&[]).await.unwrap_err();
        assert!(is_transport(&err, TransportErrorKind::Connect), "{err:?}");
        assert_eq!(capture.spans(TOKEN_REQUEST).len(), 3);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_body_within_the_timeout_is_read_in_one_attempt() {
        let fx = partner(3).await;
        fx.mock.push_fault(Fault::SlowBody(HTTP_TIMEOUT / 4));
        fx.provider.client_credentials(&[]).await.expect("a token");
        assert_eq!(fx.mock.token_requests().len(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_body_past_the_timeout_times_out() {
        let fx = oauth2_adapters_tests::partner().await; // no retries
        fx.mock.push_fault(Fault::SlowBody(HTTP_TIMEOUT * 2));
        let err = fx.provider.client_credentials(&[]).await.unwrap_err();
        assert!(is_transport(&err, TransportErrorKind::Timeout), "{err:?}");
    }
}

/// The code-flow rules, for an adapter and its mock. `dead` builds the same
/// adapter pointed at a port where nothing listens.
macro_rules! single_use_rules {
    ($name:ident, $fixture:path, $adapter:ty) => {
        mod $name {
            use super::*;

            async fn fixture() -> Fixture<$adapter, impl CodeFlowMock> {
                $fixture(quick_retries(3)).await
            }

            fn dead<M: MockServer>(fx: &Fixture<$adapter, M>) -> $adapter {
                <$adapter>::builder(credentials(&fx.mock))
                    .base_url(refused_base_url())
                    .settings(context_with_retries(&fx.clock, quick_retries(3)))
                    .build()
                    .unwrap()
            }

            #[tokio::test(flavor = "current_thread")]
            async fn a_code_exchange_is_not_retried_once_sent() {
                code_exchange_is_not_retried_once_sent(fixture().await).await;
            }

            #[tokio::test(flavor = "current_thread")]
            async fn a_code_exchange_that_never_left_is_retried() {
                let fx = fixture().await;
                let (url, pending) = fx
                    .provider
                    .authorize(AuthorizeRequest::new(REDIRECT_URI).unwrap())
                    .unwrap();
                let callback = fx.mock.approve_url(&url).await.unwrap();
                let capture = TraceCapture::start();
                let err = dead(&fx)
                    .handle_callback(CallbackParams::from_url(&callback).unwrap(), pending)
                    .await
                    .unwrap_err();
                assert!(is_transport(&err, TransportErrorKind::Connect), "{err:?}");
                let spans = capture.spans(TOKEN_REQUEST);
                assert_eq!(spans.len(), 3);
                assert_eq!(spans[0].field("grant"), Some("authorization_code"));
            }

            #[tokio::test(flavor = "current_thread")]
            async fn a_rotating_refresh_is_not_retried_once_sent() {
                rotating_refresh_is_not_retried_once_sent(fixture().await).await;
            }

            #[tokio::test(flavor = "current_thread")]
            async fn a_rotating_refresh_that_never_left_is_retried() {
                let fx = fixture().await;
                let token = sign_in(&fx).await.unwrap();
                assert!(fx.provider.rotates_refresh_tokens());
                let capture = TraceCapture::start();
                let err = dead(&fx).refresh(&token).await.unwrap_err();
                assert!(is_transport(&err, TransportErrorKind::Connect), "{err:?}");
                assert_eq!(capture.spans(TOKEN_REQUEST).len(), 3);
                let refresh_token = token.refresh_token.as_ref().unwrap();
                assert!(fx
                    .mock
                    .is_refresh_token_valid(refresh_token.expose_secret()));
                fx.provider
                    .refresh(&token)
                    .await
                    .expect("still refreshable");
            }
        }
    };
}

single_use_rules!(
    hypersku,
    oauth2_adapters_tests::hypersku_with_retries,
    HyperSku
);
single_use_rules!(hike, oauth2_adapters_tests::hike_with_retries, Hike);

/// A sent exchange fails three ways (a 503, a reset mid-body, a timeout
/// before the headers): one request each, never a second.
async fn code_exchange_is_not_retried_once_sent<P: CodeFlowProvider, M: CodeFlowMock>(
    fx: Fixture<P, M>,
) {
    let faults = [
        (Fault::Status(503), None),
        (Fault::ResetMidBody, Some(TransportErrorKind::Interrupted)),
        (
            Fault::StallAfterProcessing(HTTP_TIMEOUT * 2),
            Some(TransportErrorKind::Timeout),
        ),
    ];
    for (fault, kind) in faults {
        fx.mock.clear_requests();
        fx.mock.push_fault(fault.clone());
        let err = sign_in(&fx).await.unwrap_err();
        match kind {
            Some(kind) => assert!(is_transport(&err, kind), "{fault:?}: {err:?}"),
            None => assert_eq!(err.http_status(), Some(503), "{err:?}"),
        }
        assert!(err.is_retryable(), "retryable in itself: {err:?}");
        assert_eq!(fx.mock.token_requests().len(), 1, "{fault:?} was retried");
    }
}

/// A sent refresh fails three ways: one request each. After the reset, the
/// provider has rotated the token the client never received: the old one
/// is spent, which is exactly why the request is not repeated.
async fn rotating_refresh_is_not_retried_once_sent<P: CodeFlowProvider, M: CodeFlowMock>(
    fx: Fixture<P, M>,
) {
    let faults = [
        (Fault::Status(503), None),
        (
            Fault::StallAfterProcessing(HTTP_TIMEOUT * 2),
            Some(TransportErrorKind::Timeout),
        ),
        (Fault::ResetMidBody, Some(TransportErrorKind::Interrupted)),
    ];
    for (fault, kind) in faults {
        let token = sign_in(&fx).await.unwrap();
        fx.mock.clear_requests();
        fx.mock.push_fault(fault.clone());
        let err = fx.provider.refresh(&token).await.unwrap_err();
        match kind {
            Some(kind) => assert!(is_transport(&err, kind), "{fault:?}: {err:?}"),
            None => assert_eq!(err.http_status(), Some(503), "{err:?}"),
        }
        assert_eq!(fx.mock.token_requests().len(), 1, "{fault:?} was retried");
        let old = token.refresh_token.as_ref().unwrap().expose_secret();
        let spent = !fx.mock.is_refresh_token_valid(old);
        assert_eq!(spent, kind.is_some(), "{fault:?}: the grant was processed");
    }
}
