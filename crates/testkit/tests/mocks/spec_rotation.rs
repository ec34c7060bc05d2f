//! SpecMock: refresh tokens rotated or not, reuse counted, families
//! revoked on reuse when configured.

use oauth2_adapters::testkit::{MockConfig, MockServer, SpecMock};
use oauth2_adapters::{ExposeSecret, RefreshTokenProvider};
use serde_json::Value;

use crate::spec_support::{
    error_of, me_status, post, provider, sign_in, spec, start, start_with, AnyError, Body,
};
use crate::TestResult;

/// A raw refresh with the post credentials: status and body.
async fn refresh(mock: &SpecMock, refresh_token: &str) -> Result<(u16, Value), AnyError> {
    let config = mock.config();
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.as_str()),
    ];
    let (status, _, body) = post(mock.refresh_url(), Body::Form(&pairs), None).await?;
    Ok((status, body))
}

#[tokio::test]
async fn rotation_on_spends_the_old_token_and_counts_reuse() -> TestResult {
    let (mock, _clock) = start(spec("rotates_refresh_tokens = true", "", "")).await?;
    let provider = provider(&mock)?;
    let first = sign_in(&mock, &provider).await?;
    let old = first.refresh_token.clone().ok_or("a refresh token")?;
    let second = provider.refresh(&first).await?;
    let new = second
        .refresh_token
        .clone()
        .ok_or("a rotated refresh token")?;
    assert_ne!(old.expose_secret(), new.expose_secret());
    assert!(!mock.is_refresh_token_valid(old.expose_secret()));
    assert!(mock.is_refresh_token_valid(new.expose_secret()));
    assert_eq!(mock.rotations().len(), 1);
    assert_eq!(mock.refresh_token_reuses(), 0);

    let (status, body) = refresh(&mock, old.expose_secret()).await?;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"), "{body}");
    assert_eq!(mock.refresh_token_reuses(), 1);
    let error = provider
        .refresh(&first)
        .await
        .err()
        .ok_or("the spent token refreshed")?;
    assert!(error.requires_reauthorization(), "{error:?}");
    assert_eq!(mock.refresh_token_reuses(), 2);
    // Without revoke_on_reuse the successor lives on.
    assert!(mock.is_refresh_token_valid(new.expose_secret()));
    assert_eq!(
        me_status(&mock, second.access_token.expose_secret()).await?,
        200
    );
    Ok(())
}

#[tokio::test]
async fn rotation_off_keeps_the_refresh_token_working() -> TestResult {
    let (mock, _clock) = start(spec("rotates_refresh_tokens = false", "", "")).await?;
    let provider = provider(&mock)?;
    let first = sign_in(&mock, &provider).await?;
    let old = first.refresh_token.clone().ok_or("a refresh token")?;
    for _ in 0..2 {
        let (status, body) = refresh(&mock, old.expose_secret()).await?;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("refresh_token").is_none(), "no new one: {body}");
    }
    let refreshed = provider.refresh(&first).await?;
    let kept = refreshed
        .refresh_token
        .clone()
        .ok_or("the old one is kept")?;
    assert_eq!(kept.expose_secret(), old.expose_secret());
    assert_ne!(
        refreshed.access_token.expose_secret(),
        first.access_token.expose_secret()
    );
    assert!(mock.is_refresh_token_valid(old.expose_secret()));
    assert_eq!(mock.refresh_token_reuses(), 0);
    assert!(mock.rotations().is_empty());
    Ok(())
}

#[tokio::test]
async fn reuse_revokes_the_family_when_configured() -> TestResult {
    let config = MockConfig::default().with_revoke_on_reuse(true);
    let (mock, _clock) = start_with(spec("", "", ""), config).await?;
    let provider = provider(&mock)?;
    let first = sign_in(&mock, &provider).await?;
    let second = provider.refresh(&first).await?;
    let live = second
        .refresh_token
        .clone()
        .ok_or("a rotated refresh token")?;
    // A second family, untouched by the first one's reuse.
    let other = sign_in(&mock, &provider).await?;

    let old = first.refresh_token.clone().ok_or("a refresh token")?;
    let (status, body) = refresh(&mock, old.expose_secret()).await?;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"), "{body}");
    assert_eq!(mock.refresh_token_reuses(), 1);
    assert!(
        !mock.is_refresh_token_valid(live.expose_secret()),
        "the successor is revoked"
    );
    assert_eq!(
        me_status(&mock, second.access_token.expose_secret()).await?,
        401
    );
    let (status, body) = refresh(&mock, live.expose_secret()).await?;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"), "{body}");
    assert_eq!(
        me_status(&mock, other.access_token.expose_secret()).await?,
        200
    );
    let other_refresh = other.refresh_token.as_ref().ok_or("a refresh token")?;
    assert!(mock.is_refresh_token_valid(other_refresh.expose_secret()));
    Ok(())
}

#[tokio::test]
async fn tokens_expire_by_the_mock_clock() -> TestResult {
    let (mock, clock) = start(spec("", "", "")).await?;
    let provider = provider(&mock)?;
    let token = sign_in(&mock, &provider).await?;
    assert_eq!(
        me_status(&mock, token.access_token.expose_secret()).await?,
        200
    );
    clock.advance(mock.config().access_token_lifetime);
    assert_eq!(
        me_status(&mock, token.access_token.expose_secret()).await?,
        401
    );
    let refreshed = provider.refresh(&token).await?;
    assert_eq!(
        me_status(&mock, refreshed.access_token.expose_secret()).await?,
        200
    );
    clock.advance(mock.config().refresh_token_lifetime);
    let rt = refreshed.refresh_token.clone().ok_or("a refresh token")?;
    assert!(!mock.is_refresh_token_valid(rt.expose_secret()));
    Ok(())
}

/// Retries follow from rotation: a refresh of a provider whose refresh
/// tokens do not rotate can be repeated, so a 503 is retried and the
/// refresh succeeds; a rotating one is sent once (a second send could
/// spend a token the provider already rotated), so the 503 is the answer.
#[tokio::test]
async fn a_refresh_is_retried_after_a_5xx_only_when_tokens_do_not_rotate() -> TestResult {
    use oauth2_adapters::testkit::Fault;
    use oauth2_adapters::{RetryPolicy, SpecProvider};
    use std::time::Duration;

    for rotates in [false, true] {
        let (mock, _clock) =
            start(spec(&format!("rotates_refresh_tokens = {rotates}"), "", "")).await?;
        let retries = RetryPolicy::default()
            .with_max_attempts(3)
            .with_backoff(Duration::from_millis(10), Duration::from_millis(50));
        let provider = SpecProvider::builder(mock.spec().clone(), mock.credentials())
            .base_url(mock.base_url().as_str())
            .settings(mock.provider_settings()?.with_retry_policy(retries))
            .build()?;
        let first = sign_in(&mock, &provider).await?;
        let before = mock.token_requests().len();
        mock.push_fault(Fault::Status(503));
        let result = provider.refresh(&first).await;
        let sent = mock.token_requests().len() - before;
        if rotates {
            let error = result.err().ok_or("a rotating refresh was retried")?;
            assert_eq!(error.http_status(), Some(503), "{error:?}");
            assert_eq!(sent, 1, "a rotating refresh is sent once");
        } else {
            let refreshed = result?;
            assert_eq!(sent, 2, "the 503, then the retry");
            assert_eq!(
                me_status(&mock, refreshed.access_token.expose_secret()).await?,
                200
            );
        }
    }
    Ok(())
}
