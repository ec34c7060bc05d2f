//! SpecMock: PKCE (RFC 7636) S256 and plain, required, off.

use oauth2_adapters::testkit::{MockError, MockServer};
use oauth2_adapters::ExposeSecret;

use crate::spec_support::{
    code, error_of, post, provider, sign_in, spec, start, AnyError, Body, OTHER_VERIFIER,
    RFC_CHALLENGE, RFC_VERIFIER,
};
use crate::TestResult;

/// Exchanges `code` with `verifier` (none: no `code_verifier` field).
async fn exchange(
    mock: &oauth2_adapters::testkit::SpecMock,
    code: &str,
    verifier: Option<&str>,
) -> Result<(u16, serde_json::Value), AnyError> {
    let config = mock.config();
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.as_str()),
        ("code", code),
        ("redirect_uri", config.redirect_uri.as_str()),
    ];
    pairs.extend(verifier.map(|v| ("code_verifier", v)));
    let (status, _, body) = post(mock.token_url(), Body::Form(&pairs), None).await?;
    Ok((status, body))
}

#[tokio::test]
async fn s256_and_plain_need_the_verifier_that_answers_the_challenge() -> TestResult {
    let (mock, _clock) = start(spec("", "", "")).await?;
    for (method, challenge) in [("S256", RFC_CHALLENGE), ("plain", RFC_VERIFIER)] {
        let code = code(&mock, Some((challenge, method))).await?;
        for wrong in [Some(OTHER_VERIFIER), None, Some("short")] {
            let (status, body) = exchange(&mock, &code, wrong).await?;
            assert_eq!(
                (status, error_of(&body)),
                (400, "invalid_grant"),
                "{method} with {wrong:?}: {body}"
            );
        }
        // A PKCE failure leaves the code usable; the right verifier wins.
        let (status, body) = exchange(&mock, &code, Some(RFC_VERIFIER)).await?;
        assert_eq!(status, 200, "{method} with the right verifier: {body}");
        assert!(body["access_token"].is_string(), "{body}");
        let (status, body) = exchange(&mock, &code, Some(RFC_VERIFIER)).await?;
        assert_eq!(
            (status, error_of(&body)),
            (400, "invalid_grant"),
            "spent: {body}"
        );
    }
    // S256's challenge is not a plain verifier.
    let code = code(&mock, Some((RFC_CHALLENGE, "S256"))).await?;
    let (status, _) = exchange(&mock, &code, Some(RFC_CHALLENGE)).await?;
    assert_eq!(status, 400);
    // No method means plain (RFC 7636 §4.3).
    let mut url = mock.build_authorize_url("s", None)?;
    url.query_pairs_mut()
        .append_pair("code_challenge", RFC_VERIFIER);
    let callback = mock.approve(&url).await?;
    let code = crate::query_param(&callback, "code").unwrap_or_default();
    assert_eq!(exchange(&mock, &code, Some(RFC_VERIFIER)).await?.0, 200);
    Ok(())
}

#[tokio::test]
async fn a_code_without_a_challenge_needs_no_verifier_unless_required() -> TestResult {
    let (mock, _clock) = start(spec("", "", "")).await?;
    let code = code(&mock, None).await?;
    assert_eq!(exchange(&mock, &code, None).await?.0, 200);

    let (mock, _clock) = start(spec("", "pkce = \"required\"", "")).await?;
    let refused = mock.approve(&mock.build_authorize_url("s", None)?).await;
    match refused {
        Err(MockError::NoRedirect { status: 400, body }) => {
            assert!(body.contains("PKCE is required"), "{body}")
        }
        other => panic!("an authorization without a challenge must be refused: {other:?}"),
    }
    for (challenge, method) in [("too-short", "S256"), (RFC_CHALLENGE, "S512")] {
        let refused = mock
            .approve(&mock.build_authorize_url("s", Some((challenge, method)))?)
            .await;
        assert!(
            matches!(refused, Err(MockError::NoRedirect { status: 400, .. })),
            "{challenge} {method}: {refused:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn with_pkce_off_the_challenge_is_an_extra_parameter() -> TestResult {
    let (mock, _clock) = start(spec("", "pkce = \"off\"", "")).await?;
    let code = code(&mock, Some((RFC_CHALLENGE, "S256"))).await?;
    let extras = mock.authorize_extra_params();
    assert_eq!(
        extras.last().cloned().unwrap_or_default(),
        vec![
            ("code_challenge".to_owned(), RFC_CHALLENGE.to_owned()),
            ("code_challenge_method".to_owned(), "S256".to_owned()),
        ]
    );
    assert_eq!(exchange(&mock, &code, None).await?.0, 200, "not checked");
    Ok(())
}

#[tokio::test]
async fn a_spec_provider_signs_in_with_s256() -> TestResult {
    let (mock, _clock) = start(spec("", "pkce = \"required\"", "")).await?;
    let provider = provider(&mock)?;
    let token = sign_in(&mock, &provider).await?;
    assert!(mock.is_access_token_valid(token.access_token.expose_secret()));
    let authorize = &mock.requests()[0];
    let query = authorize.query.clone().unwrap_or_default();
    assert!(query.contains("code_challenge_method=S256"), "{query}");
    let exchange = mock.token_requests().pop().ok_or("no exchange")?;
    assert!(
        exchange
            .form_body()
            .iter()
            .any(|(k, _)| k == "code_verifier"),
        "{}",
        exchange.body
    );
    Ok(())
}
