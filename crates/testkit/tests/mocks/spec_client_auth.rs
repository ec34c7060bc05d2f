//! SpecMock: client authentication exactly as the spec says, fixed and
//! secret headers.

use oauth2_adapters::testkit::{MockConfig, MockServer};
use oauth2_adapters::{ClientCredentials, ErrorCode, ExposeSecret, Provider};

use crate::spec_support::{
    code, error_of, post, provider, provider_with, sign_in, spec, start, start_with, Body,
    RFC_CHALLENGE, RFC_VERIFIER,
};
use crate::TestResult;

const REVOCATION: &str = "[revocation]\nurl = \"https://api.acme.example/oauth/revoke\"";

#[tokio::test]
async fn basic_takes_the_header_only() -> TestResult {
    // Special characters: RFC 6749 §2.3.1 form-encodes both parts.
    let config = MockConfig::default()
        .with_client_id("acme id:1")
        .with_client_secret("s3cr:t+/ &%é");
    let spec = spec(REVOCATION, "", "client_auth = \"client_secret_basic\"");
    let (mock, _clock) = start_with(spec, config).await?;
    let provider = provider(&mock)?;
    let token = sign_in(&mock, &provider).await?;
    let exchange = mock.token_requests().pop().ok_or("no exchange")?;
    assert!(
        exchange
            .header("authorization")
            .is_some_and(|h| h.starts_with("Basic ")),
        "{exchange:?}"
    );
    let body = exchange.form_body();
    assert!(
        !body
            .iter()
            .any(|(k, _)| k == "client_id" || k == "client_secret"),
        "{body:?}"
    );
    // The revocation authenticates the same way.
    assert!(provider.revoke(&token).await?);
    let refresh = token.refresh_token.as_ref().ok_or("a refresh token")?;
    assert!(!mock.is_refresh_token_valid(refresh.expose_secret()));

    let config = mock.config().clone();
    let (id, secret) = (config.client_id.as_str(), config.client_secret.as_str());
    let code = code(&mock, None).await?;
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
    ];
    // Credentials in the body are refused, even beside a good header.
    let mut with_body = grant.to_vec();
    with_body.extend([("client_id", id), ("client_secret", secret)]);
    let (status, _, answer) =
        post(mock.token_url(), Body::Form(&with_body), Some((id, secret))).await?;
    assert_eq!(
        (status, error_of(&answer)),
        (400, "invalid_request"),
        "{answer}"
    );
    let (status, _, answer) = post(mock.token_url(), Body::Form(&with_body), None).await?;
    assert_eq!(
        (status, error_of(&answer)),
        (400, "invalid_request"),
        "{answer}"
    );
    // No header, or a wrong one: 401 with a Basic challenge.
    for basic in [None, Some((id, "wrong"))] {
        let (status, challenge, answer) = post(mock.token_url(), Body::Form(&grant), basic).await?;
        assert_eq!(
            (status, error_of(&answer)),
            (401, "invalid_client"),
            "{answer}"
        );
        assert!(
            challenge.is_some_and(|c| c.starts_with("Basic")),
            "{basic:?}"
        );
    }
    let (status, _, answer) =
        post(mock.token_url(), Body::Form(&grant), Some((id, secret))).await?;
    assert_eq!(status, 200, "the code survived the refusals: {answer}");
    Ok(())
}

#[tokio::test]
async fn post_takes_the_body_only() -> TestResult {
    let (mock, _clock) = start(spec("", "", "")).await?;
    sign_in(&mock, &provider(&mock)?).await?;
    let exchange = mock.token_requests().pop().ok_or("no exchange")?;
    assert_eq!(exchange.header("authorization"), None);
    let config = mock.config().clone();
    let (id, secret) = (config.client_id.as_str(), config.client_secret.as_str());
    let code = code(&mock, None).await?;
    let grant = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
        ("client_id", id),
    ];
    // A missing secret, a wrong one.
    let (status, _, answer) = post(mock.token_url(), Body::Form(&grant), None).await?;
    assert_eq!(
        (status, error_of(&answer)),
        (401, "invalid_client"),
        "{answer}"
    );
    let mut wrong = grant.clone();
    wrong.push(("client_secret", "wrong"));
    let (status, _, answer) = post(mock.token_url(), Body::Form(&wrong), None).await?;
    assert_eq!(
        (status, error_of(&answer)),
        (401, "invalid_client"),
        "{answer}"
    );
    // Basic beside the body: two methods in one request.
    let mut good = grant.clone();
    good.push(("client_secret", secret));
    let (status, _, answer) = post(mock.token_url(), Body::Form(&good), Some((id, secret))).await?;
    assert_eq!(
        (status, error_of(&answer)),
        (400, "invalid_request"),
        "{answer}"
    );
    let (status, _, answer) = post(mock.token_url(), Body::Form(&good), None).await?;
    assert_eq!(status, 200, "{answer}");

    // A provider with the wrong secret is told invalid_client.
    let wrong = provider_with(&mock, ClientCredentials::new(id, "wrong"))?;
    let error = sign_in(&mock, &wrong)
        .await
        .err()
        .ok_or("a wrong secret signed in")?;
    let error = error.downcast::<oauth2_adapters::Error>()?;
    assert!(
        matches!(
            &*error,
            oauth2_adapters::Error::Provider {
                code: ErrorCode::InvalidClient,
                ..
            }
        ),
        "{error:?}"
    );
    Ok(())
}

#[tokio::test]
async fn none_takes_no_secret_and_needs_pkce() -> TestResult {
    let (mock, _clock) = start(spec("", "", "client_auth = \"none\"")).await?;
    let id = mock.config().client_id.clone();
    let public = provider_with(&mock, ClientCredentials::new(id.as_str(), ""))?;
    let token = sign_in(&mock, &public).await?;
    assert!(mock.is_access_token_valid(token.access_token.expose_secret()));
    let exchange = mock.token_requests().pop().ok_or("no exchange")?;
    let body = exchange.form_body();
    assert!(
        body.iter().any(|(k, v)| k == "client_id" && *v == id),
        "{body:?}"
    );
    assert!(!body.iter().any(|(k, _)| k == "client_secret"), "{body:?}");
    assert!(body.iter().any(|(k, _)| k == "code_verifier"), "{body:?}");
    assert_eq!(exchange.header("authorization"), None);

    // No challenge: refused at the authorize endpoint.
    assert!(mock
        .approve(&mock.build_authorize_url("s", None)?)
        .await
        .is_err());
    let code = code(&mock, Some((RFC_CHALLENGE, "S256"))).await?;
    let redirect = mock.config().redirect_uri.clone();
    let grant = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("client_id", id.as_str()),
        ("code_verifier", RFC_VERIFIER),
    ];
    let mut with_secret = grant.clone();
    with_secret.push(("client_secret", "anything"));
    let (status, _, answer) = post(mock.token_url(), Body::Form(&with_secret), None).await?;
    assert_eq!(
        (status, error_of(&answer)),
        (400, "invalid_request"),
        "{answer}"
    );
    let (status, _, answer) = post(mock.token_url(), Body::Form(&grant), Some((&id, "x"))).await?;
    assert_eq!(
        (status, error_of(&answer)),
        (400, "invalid_request"),
        "{answer}"
    );
    let (status, _, answer) = post(mock.token_url(), Body::Form(&grant), None).await?;
    assert_eq!(status, 200, "{answer}");
    Ok(())
}

#[tokio::test]
async fn fixed_and_secret_headers_are_required() -> TestResult {
    let token = "headers = { Accept = \"application/json\", X-Api-Version = \"2\" }\n\
                 secret_headers = { X-Api-Key = \"api_key\" }";
    let (mock, _clock) = start(spec("", "", token)).await?;
    mock.set_secret("api_key", "key-1");
    let build = |secret: Option<&str>| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
        let mut builder =
            oauth2_adapters::SpecProvider::builder(mock.spec().clone(), mock.credentials())
                .base_url(mock.base_url().as_str())
                .settings(mock.provider_settings()?);
        if let Some(secret) = secret {
            builder = builder.secret("api_key", secret);
        }
        Ok(builder.build()?)
    };
    for wrong in [None, Some("key-2")] {
        let error = sign_in(&mock, &build(wrong)?)
            .await
            .err()
            .ok_or("signed in")?;
        let text = error.to_string();
        assert!(text.contains("invalid_client"), "{wrong:?}: {text}");
        assert!(!text.contains("key-2"), "the secret is quoted: {text}");
    }
    sign_in(&mock, &build(Some("key-1"))?).await?;
    let exchange = mock.token_requests().pop().ok_or("no exchange")?;
    assert_eq!(
        exchange.header("accept"),
        Some("application/json"),
        "sent once"
    );

    // Without the fixed header.
    let config = mock.config().clone();
    let code = code(&mock, None).await?;
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.as_str()),
    ];
    let (status, _, answer) = post(mock.token_url(), Body::Form(&grant), None).await?;
    assert_eq!(
        (status, error_of(&answer)),
        (400, "invalid_request"),
        "{answer}"
    );
    assert!(answer["error_description"]
        .as_str()
        .is_some_and(|d| d.contains("X-Api-Version")));
    Ok(())
}
