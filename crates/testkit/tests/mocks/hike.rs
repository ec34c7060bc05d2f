use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters_core::ManualClock;
use oauth2_adapters_testkit::{HikeMock, MockConfig, MockError, MockServer, ResponseStyle};
use serde_json::Value;

use crate::{client, form, post_form, query_param, TestResult};

const NOW: u64 = 1_700_000_000;

async fn start() -> Result<(HikeMock, ManualClock), MockError> {
    let clock = ManualClock::at_unix(NOW);
    let mock = HikeMock::start(MockConfig::default().with_clock(Arc::new(clock.clone()))).await?;
    Ok((mock, clock))
}

async fn code(mock: &HikeMock) -> Result<String, MockError> {
    let callback = mock.approve(&mock.build_authorize_url(Some("s"))).await?;
    Ok(query_param(&callback, "code").unwrap_or_default())
}

async fn exchange(
    mock: &HikeMock,
    code: &str,
    redirect_uri: &str,
) -> Result<(u16, Value), Box<dyn std::error::Error + Send + Sync>> {
    let config = mock.config();
    post_form(
        mock.token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &config.client_id),
            ("client_secret", &config.client_secret),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ],
    )
    .await
}

async fn refresh(
    mock: &HikeMock,
    refresh_token: &str,
) -> Result<(u16, Value), Box<dyn std::error::Error + Send + Sync>> {
    let config = mock.config();
    post_form(
        mock.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &config.client_id),
            ("client_secret", &config.client_secret),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

#[tokio::test]
async fn exchange_answers_like_the_docs_and_codes_are_single_use() -> TestResult {
    let (mock, _clock) = start().await?;
    let code = code(&mock).await?;
    let redirect = mock.config().redirect_uri.clone();
    let response = client()
        .post(mock.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "test-client-id"),
            ("client_secret", "test-client-secret-0123456789"),
            ("code", &code),
            ("redirect_uri", &redirect),
        ]))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let body: Value = response.json().await?;
    assert!(body["access_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("hike_at_1_")));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["expires"], NOW + 3600);
    assert!(body["refresh_token"].is_string());

    let (status, body) = exchange(&mock, &code, &redirect).await?;
    assert_eq!((status, &body["error"]), (400, &"invalid_grant".into()));
    Ok(())
}

#[tokio::test]
async fn expired_code_and_redirect_mismatch_are_invalid_grant() -> TestResult {
    let (mock, clock) = start().await?;
    let redirect = mock.config().redirect_uri.clone();
    let code = code(&mock).await?;
    let (status, body) = exchange(&mock, &code, "http://127.0.0.1:8976/other").await?;
    assert_eq!((status, &body["error"]), (400, &"invalid_grant".into()));
    clock.advance(Duration::from_secs(601));
    let (status, body) = exchange(&mock, &code, &redirect).await?;
    assert_eq!((status, &body["error"]), (400, &"invalid_grant".into()));
    assert!(body["error_description"]
        .as_str()
        .is_some_and(|d| d.contains("expired")));
    Ok(())
}

#[tokio::test]
async fn client_authentication() -> TestResult {
    let (mock, _clock) = start().await?;
    let code = code(&mock).await?;
    let (status, body) = post_form(
        mock.token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "test-client-id"),
            ("client_secret", "wrong"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8976/callback"),
        ],
    )
    .await?;
    assert_eq!((status, &body["error"]), (401, &"invalid_client".into()));

    // HTTP Basic instead of body credentials is refused.
    let response = client()
        .post(mock.token_url())
        .basic_auth("test-client-id", Some("test-client-secret-0123456789"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8976/callback"),
        ]))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().await?;
    assert_eq!(body["error"], "invalid_client");

    let (status, _) = exchange(&mock, &code, "http://127.0.0.1:8976/callback").await?;
    assert_eq!(status, 200, "refused requests leave the code usable");
    Ok(())
}

#[tokio::test]
async fn request_errors() -> TestResult {
    let (mock, _clock) = start().await?;
    let config = mock.config().clone();
    let (status, body) = post_form(
        mock.token_url(),
        &[
            ("grant_type", "password"),
            ("client_id", &config.client_id),
            ("client_secret", &config.client_secret),
        ],
    )
    .await?;
    assert_eq!(
        (status, &body["error"]),
        (400, &"unsupported_grant_type".into())
    );

    let (status, body) = post_form(
        mock.token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &config.client_id),
            ("client_secret", &config.client_secret),
        ],
    )
    .await?;
    assert_eq!((status, &body["error"]), (400, &"invalid_request".into()));

    let response = client()
        .post(mock.token_url())
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 415);
    Ok(())
}

#[tokio::test]
async fn refresh_rotates_and_rejects_reuse() -> TestResult {
    let (mock, clock) = start().await?;
    let code = code(&mock).await?;
    let (_, first) = exchange(&mock, &code, "http://127.0.0.1:8976/callback").await?;
    let old = first["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    clock.advance(Duration::from_secs(100));
    let (status, second) = refresh(&mock, &old).await?;
    assert_eq!(status, 200);
    assert_eq!(second["expires"], NOW + 100 + 3600);
    let new = second["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(new, old);
    assert!(!mock.is_refresh_token_valid(&old));
    assert!(mock.is_refresh_token_valid(&new));

    let (status, body) = refresh(&mock, &old).await?;
    assert_eq!((status, &body["error"]), (400, &"invalid_grant".into()));
    let (status, _) = refresh(&mock, &new).await?;
    assert_eq!(status, 200);
    assert_eq!(mock.issued_access_tokens(), 3);
    Ok(())
}

#[tokio::test]
async fn omit_expires_in_and_string_numbers() -> TestResult {
    let (mock, _clock) = start().await?;
    mock.set_style(ResponseStyle {
        omit_expires_in: true,
        string_numbers: true,
        ..ResponseStyle::default()
    });
    let code = code(&mock).await?;
    let (status, body) = exchange(&mock, &code, "http://127.0.0.1:8976/callback").await?;
    assert_eq!(status, 200);
    assert!(body.get("expires_in").is_none());
    assert_eq!(body["expires"], (NOW + 3600).to_string());
    Ok(())
}

#[tokio::test]
async fn approve_and_deny_locations() -> TestResult {
    let (mock, _clock) = start().await?;
    let denied = mock.deny(&mock.build_authorize_url(None)).await?;
    assert_eq!(
        denied.as_str(),
        "http://127.0.0.1:8976/callback?error=access_denied"
    );
    let approved = mock.approve(&mock.build_authorize_url(None)).await?;
    assert!(query_param(&approved, "code").is_some());
    assert!(query_param(&approved, "state").is_none());

    let mut wrong = mock.build_authorize_url(Some("s"));
    wrong.set_query(Some(
        "response_type=token&client_id=test-client-id&redirect_uri=http%3A%2F%2F127.0.0.1%3A8976%2Fcallback&scope=all",
    ));
    assert!(matches!(
        mock.approve(&wrong).await,
        Err(MockError::NoRedirect { status: 400, .. })
    ));
    wrong.set_query(Some(
        "response_type=code&client_id=test-client-id&redirect_uri=http%3A%2F%2F127.0.0.1%3A8976%2Fcallback",
    ));
    assert!(matches!(
        mock.approve(&wrong).await,
        Err(MockError::NoRedirect { status: 400, .. })
    ));
    Ok(())
}

/// A code issued for an authorization with a PKCE challenge.
async fn code_with_challenge(
    mock: &HikeMock,
    challenge: &str,
    method: Option<&str>,
) -> Result<String, MockError> {
    let mut url = mock.build_authorize_url(Some("s"));
    url.query_pairs_mut()
        .append_pair("code_challenge", challenge);
    if let Some(method) = method {
        url.query_pairs_mut()
            .append_pair("code_challenge_method", method);
    }
    let callback = mock.approve(&url).await?;
    Ok(query_param(&callback, "code").unwrap_or_default())
}

async fn exchange_with_verifier(
    mock: &HikeMock,
    code: &str,
    verifier: Option<&str>,
) -> Result<(u16, Value), Box<dyn std::error::Error + Send + Sync>> {
    let config = mock.config();
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.as_str()),
        ("code", code),
        ("redirect_uri", config.redirect_uri.as_str()),
    ];
    pairs.extend(verifier.map(|v| ("code_verifier", v)));
    post_form(mock.token_url(), &pairs).await
}

#[tokio::test]
async fn pkce_is_verified_when_a_challenge_was_sent() -> TestResult {
    use crate::spec_support::{OTHER_VERIFIER, RFC_CHALLENGE, RFC_VERIFIER};
    let (mock, _clock) = start().await?;
    for (challenge, method) in [
        (RFC_CHALLENGE, Some("S256")),
        (RFC_VERIFIER, Some("plain")),
        (RFC_VERIFIER, None),
    ] {
        let code = code_with_challenge(&mock, challenge, method).await?;
        for wrong in [None, Some(OTHER_VERIFIER), Some("short")] {
            let (status, body) = exchange_with_verifier(&mock, &code, wrong).await?;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant")),
                "{method:?} with {wrong:?}: {body}"
            );
        }
        // A PKCE failure leaves the code usable; the right verifier wins.
        let (status, body) = exchange_with_verifier(&mock, &code, Some(RFC_VERIFIER)).await?;
        assert_eq!(status, 200, "{method:?}: {body}");
    }
    // Without a challenge, no verifier is needed (and one sent is ignored).
    let code = code(&mock).await?;
    let (status, body) = exchange_with_verifier(&mock, &code, Some(OTHER_VERIFIER)).await?;
    assert_eq!(status, 200, "{body}");
    // A malformed challenge or an unknown method gets the error page.
    for (challenge, method) in [("short", Some("S256")), (RFC_CHALLENGE, Some("S512"))] {
        let outcome = code_with_challenge(&mock, challenge, method).await;
        assert!(
            matches!(outcome, Err(MockError::NoRedirect { status: 400, .. })),
            "{challenge} {method:?}: {outcome:?}"
        );
    }
    Ok(())
}
