//! The behaviour suite: the same checks against every adapter, through the
//! testkit's mock providers on 127.0.0.1.

use oauth2_adapters::hike::Hike;
use oauth2_adapters::hypersku::HyperSku;
use oauth2_adapters::testkit::{Fault, MockServer, ResponseStyle};
use oauth2_adapters::{
    ClientCredentials, ClientCredentialsProvider, Error, ErrorCode, Provider, RenewalKind,
    SpecProvider, TransportErrorKind,
};
use oauth2_adapters_tests::code_flow::{self, sign_in};
use oauth2_adapters_tests::{context, credentials, START_UNIX};

macro_rules! code_flow_suite {
    ($provider:ident, $fixture:path, $rebuild:expr) => {
        mod $provider {
            use super::*;

            #[tokio::test]
            async fn signs_in_and_refreshes_with_rotation() {
                code_flow::signs_in_and_refreshes_with_rotation($fixture().await).await;
            }

            #[tokio::test]
            async fn a_callback_cannot_be_replayed() {
                code_flow::a_callback_cannot_be_replayed($fixture().await).await;
            }

            #[tokio::test]
            async fn a_tampered_state_sends_nothing() {
                code_flow::a_tampered_state_sends_nothing($fixture().await).await;
            }

            #[tokio::test]
            async fn a_denial_is_reported() {
                code_flow::a_denial_is_reported($fixture().await).await;
            }

            #[tokio::test]
            async fn a_stale_authorization_is_rejected() {
                code_flow::a_stale_authorization_is_rejected($fixture().await).await;
            }

            #[tokio::test]
            async fn an_unregistered_redirect_uri_is_refused() {
                code_flow::an_unregistered_redirect_uri_is_refused($fixture().await).await;
            }

            #[tokio::test]
            async fn string_numbers_are_understood() {
                code_flow::string_numbers_are_understood($fixture().await).await;
            }

            #[tokio::test]
            async fn faults_become_typed_errors() {
                code_flow::faults_become_typed_errors($fixture().await).await;
            }

            #[tokio::test]
            async fn a_wrong_secret_is_invalid_client() {
                code_flow::a_wrong_secret_is_invalid_client($fixture().await, $rebuild).await;
            }

            #[tokio::test]
            async fn refreshes_with_the_refresh_token() {
                let fx = $fixture().await;
                assert_eq!(
                    std::sync::Arc::new(fx.provider.clone()).renewal().kind(),
                    RenewalKind::RefreshToken
                );
            }
        }
    };
}

code_flow_suite!(hypersku, oauth2_adapters_tests::hypersku, |fx, secret| {
    let id = fx.mock.config().client_id.clone();
    HyperSku::builder(ClientCredentials::new(id, secret))
        .base_url(fx.mock.base_url().as_str())
        .settings(context(&fx.clock))
        .build()
        .unwrap()
});

code_flow_suite!(hike, oauth2_adapters_tests::hike, |fx, secret| {
    let id = fx.mock.config().client_id.clone();
    Hike::builder(ClientCredentials::new(id, secret))
        .base_url(fx.mock.base_url().as_str())
        .settings(context(&fx.clock))
        .build()
        .unwrap()
});

// The twins: the same cases against a provider made, with no code, from
// the spec files in examples/providers/, which must behave identically.
code_flow_suite!(
    hypersku_from_spec,
    oauth2_adapters_tests::hypersku_spec,
    |fx, secret| {
        let id = fx.mock.config().client_id.clone();
        SpecProvider::builder(
            oauth2_adapters_tests::provider_spec("hypersku"),
            ClientCredentials::new(id, secret),
        )
        .base_url(fx.mock.base_url().as_str())
        .settings(context(&fx.clock))
        .build()
        .unwrap()
    }
);

code_flow_suite!(
    hike_from_spec,
    oauth2_adapters_tests::hike_spec,
    |fx, secret| {
        let id = fx.mock.config().client_id.clone();
        SpecProvider::builder(
            oauth2_adapters_tests::provider_spec("hike"),
            ClientCredentials::new(id, secret),
        )
        .base_url(fx.mock.base_url().as_str())
        .settings(context(&fx.clock))
        .build()
        .unwrap()
    }
);

#[test]
fn the_adapters_speak_the_spec_files() {
    use oauth2_adapters::ClientCredentials as C;
    let credentials = || C::new("id", "secret");
    assert_eq!(
        HyperSku::builder(credentials()).to_spec().unwrap(),
        oauth2_adapters_tests::provider_spec("hypersku"),
        "examples/providers/hypersku.toml is HyperSKU's default spec"
    );
    assert_eq!(
        Hike::builder(credentials()).to_spec().unwrap(),
        oauth2_adapters_tests::provider_spec("hike"),
        "examples/providers/hike.toml is Hike's default spec"
    );
}

mod hypersku_quirks {
    use std::time::Duration;

    use oauth2_adapters::{ExposeSecret, ReauthorizationReason, RefreshTokenProvider};

    use super::*;

    #[tokio::test]
    async fn an_enveloped_response_is_unwrapped() {
        let fx = oauth2_adapters_tests::hypersku().await;
        fx.mock.set_style(ResponseStyle {
            envelope: true,
            string_numbers: true,
            ..Default::default()
        });
        let token = sign_in(&fx).await.expect("signed in");
        assert_eq!(token.subject.as_deref(), Some("hs-user-1"));
        assert_eq!(token.scopes, ["oms"]);
        assert!(token.refresh_expires_at.is_some());
    }

    #[tokio::test]
    async fn the_business_error_code_is_kept() {
        let fx = oauth2_adapters_tests::hypersku().await;
        let token = sign_in(&fx).await.unwrap();
        fx.provider.refresh(&token).await.unwrap();
        let err = fx
            .provider
            .request_refresh(token.refresh_token.as_ref().unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Provider { code: ErrorCode::InvalidGrant, provider_code: Some(c), status: Some(200), .. } if c == "60025"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn an_expired_refresh_token_requires_reauthorization_without_a_request() {
        let fx = oauth2_adapters_tests::hypersku().await;
        let token = sign_in(&fx).await.unwrap();
        fx.mock.clear_requests();
        fx.clock.advance(Duration::from_secs(31 * 86_400));
        let err = fx.provider.refresh(&token).await.unwrap_err();
        assert!(matches!(
            err,
            Error::ReauthorizationRequired {
                reason: ReauthorizationReason::RefreshTokenExpired,
                ..
            }
        ));
        assert!(fx.mock.token_requests().is_empty());
        assert!(!token.access_token.expose_secret().is_empty());
    }
}

mod partner {
    use std::time::UNIX_EPOCH;

    use oauth2_adapters::partner::Partner;

    use super::*;

    #[tokio::test]
    async fn client_credentials_then_reacquire() {
        let fx = oauth2_adapters_tests::partner().await;
        assert_eq!(
            std::sync::Arc::new(fx.provider.clone()).renewal().kind(),
            RenewalKind::Reacquire
        );
        let first = fx.provider.client_credentials(&[]).await.unwrap();
        let second = fx.provider.client_credentials(&[]).await.unwrap();
        assert_eq!(fx.mock.issued_access_tokens(), 2);
        assert!(first.refresh_token.is_none() && second.refresh_token.is_none());
        assert_eq!(first.scopes, ["bookings:create", "bookings:delete"]);
        assert_eq!(
            first.subject.as_deref(),
            Some("f31120ee-b5cb-41c4-9529-288d02e91cd6")
        );
        let expires = first
            .expires_at
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(expires, START_UNIX + 3600);
    }

    #[tokio::test]
    async fn without_expires_in_the_jwt_exp_is_used() {
        let fx = oauth2_adapters_tests::partner().await;
        fx.mock.set_style(ResponseStyle {
            omit_expires_in: true,
            ..Default::default()
        });
        let token = fx.provider.client_credentials(&[]).await.unwrap();
        let expires = token
            .expires_at
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (expires - (START_UNIX + 3600) as f64).abs() < 1.0,
            "{expires}"
        );
    }

    #[tokio::test]
    async fn a_wrong_secret_is_invalid_client() {
        let fx = oauth2_adapters_tests::partner().await;
        let wrong = Partner::builder(ClientCredentials::new(
            fx.mock.config().client_id.clone(),
            "wrong-secret-value-42",
        ))
        .base_url(fx.mock.base_url().as_str())
        .settings(context(&fx.clock))
        .build()
        .unwrap();
        let err = wrong.client_credentials(&[]).await.unwrap_err();
        assert_eq!(
            err.provider_error_code(),
            Some(&ErrorCode::InvalidClient),
            "{err:?}"
        );
        assert!(!format!("{err} {err:?}").contains("wrong-secret-value-42"));
    }

    #[tokio::test]
    async fn scopes_cannot_be_requested() {
        let fx = oauth2_adapters_tests::partner().await;
        let err = fx
            .provider
            .client_credentials(&["bookings:create".into()])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Configuration { .. }));
        assert!(fx.mock.token_requests().is_empty());
    }

    #[tokio::test]
    async fn faults_become_typed_errors() {
        let fx = oauth2_adapters_tests::partner().await;
        fx.mock.push_fault(Fault::Status(500));
        let err = fx.provider.client_credentials(&[]).await.unwrap_err();
        assert!(
            err.is_retryable() && err.http_status() == Some(500),
            "{err:?}"
        );
        fx.mock.push_fault(Fault::MalformedBody);
        let err = fx.provider.client_credentials(&[]).await.unwrap_err();
        assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
        fx.mock
            .push_fault(Fault::Delay(oauth2_adapters_tests::HTTP_TIMEOUT * 2));
        let err = fx.provider.client_credentials(&[]).await.unwrap_err();
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
        fx.provider
            .client_credentials(&[])
            .await
            .expect("recovers after the faults");
    }
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error_that_was_never_sent() {
    let fx = oauth2_adapters_tests::partner().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let provider = oauth2_adapters::partner::Partner::builder(credentials(&fx.mock))
        .base_url(format!("http://127.0.0.1:{port}"))
        .settings(context(&fx.clock))
        .build()
        .unwrap();
    let err = provider.client_credentials(&[]).await.unwrap_err();
    match err {
        Error::Transport { kind, .. } => assert!(kind.request_never_sent(), "{kind:?}"),
        other => panic!("unexpected {other:?}"),
    }
}

mod hike_pkce {
    use oauth2_adapters::{
        AuthorizationCodeProvider, AuthorizeRequest, CallbackParams, PendingAuthorization,
        SecretString,
    };
    use oauth2_adapters_tests::{CodeFlowMock, REDIRECT_URI};

    use super::*;

    /// Hike with PKCE turned on, against the mock (which verifies it).
    async fn hike_with_pkce(
    ) -> oauth2_adapters_tests::Fixture<Hike, oauth2_adapters::testkit::HikeMock> {
        let fx = oauth2_adapters_tests::hike().await;
        let provider = Hike::builder(credentials(&fx.mock))
            .base_url(fx.mock.base_url().as_str())
            .settings(context(&fx.clock))
            .pkce(true)
            .build()
            .expect("the adapter builds");
        oauth2_adapters_tests::Fixture { provider, ..fx }
    }

    #[tokio::test]
    async fn the_mock_checks_the_verifier_the_adapter_sends() {
        let fx = hike_with_pkce().await;
        let token = sign_in(&fx).await.expect("signed in with PKCE");
        assert!(token.refresh_token.is_some());

        // The same flow with a verifier that does not answer the challenge.
        let (url, pending) = fx
            .provider
            .authorize(AuthorizeRequest::new(REDIRECT_URI).unwrap())
            .unwrap();
        let challenge = url
            .query_pairs()
            .find(|(k, _)| k == "code_challenge_method");
        assert_eq!(
            challenge.map(|(_, v)| v.into_owned()).as_deref(),
            Some("S256")
        );
        let mut parts = pending.into_parts();
        parts.pkce_verifier = Some(SecretString::from(
            "another-verifier-0123456789-abcdefghijklmnop".to_owned(),
        ));
        let pending = PendingAuthorization::from_parts(parts).unwrap();
        let callback = fx.mock.approve_url(&url).await.expect("the mock approves");
        let err = fx
            .provider
            .handle_callback(CallbackParams::from_url(&callback).unwrap(), pending)
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Provider {
                    code: ErrorCode::InvalidGrant,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
