//! Refresh-token rotation: the reuse count, family revocation on reuse
//! (RFC 9700 §4.14.2), the rotation log and the hold after commit.

use std::error::Error;
use std::time::{Duration, Instant, SystemTime};

use oauth2_adapters_testkit::hypersku::INVALID_GRANT_CODE;
use oauth2_adapters_testkit::{
    HikeMock, HyperSkuMock, MockConfig, MockServer, PartnerMock, Rotation,
};
use serde_json::{json, Value};

use crate::{client, post_form, post_json, query_param, TestResult};

type AnyError = Box<dyn Error + Send + Sync>;

/// An access and a refresh token.
#[derive(Clone)]
struct Pair {
    access: String,
    refresh: String,
}

fn pair(body: &Value, access: &str, refresh: &str) -> Result<Pair, AnyError> {
    let field = |name: &str| {
        body[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no {name} in the response"))
    };
    Ok(Pair {
        access: field(access)?,
        refresh: field(refresh)?,
    })
}

async fn hike_sign_in(mock: &HikeMock) -> Result<Pair, AnyError> {
    let code = hike_code(mock).await?;
    hike_exchange(mock, &code).await
}

async fn hike_code(mock: &HikeMock) -> Result<String, AnyError> {
    let callback = mock.approve(&mock.build_authorize_url(Some("s"))).await?;
    Ok(query_param(&callback, "code").unwrap_or_default())
}

async fn hike_exchange(mock: &HikeMock, code: &str) -> Result<Pair, AnyError> {
    let config = mock.config();
    let (status, body) = post_form(
        mock.token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &config.client_id),
            ("client_secret", &config.client_secret),
            ("code", code),
            ("redirect_uri", &config.redirect_uri),
        ],
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    pair(&body, "access_token", "refresh_token")
}

/// Refreshes at Hike: the new pair, or the `error_description` of the 400.
async fn hike_refresh(
    mock: &HikeMock,
    refresh_token: &str,
) -> Result<Result<Pair, String>, AnyError> {
    let config = mock.config();
    let (status, body) = post_form(
        mock.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &config.client_id),
            ("client_secret", &config.client_secret),
            ("refresh_token", refresh_token),
        ],
    )
    .await?;
    match status {
        200 => Ok(Ok(pair(&body, "access_token", "refresh_token")?)),
        400 => {
            assert_eq!(body["error"], "invalid_grant", "{body}");
            Ok(Err(body["error_description"]
                .as_str()
                .unwrap_or_default()
                .to_owned()))
        }
        other => Err(format!("unexpected HTTP {other}: {body}").into()),
    }
}

async fn hypersku_sign_in(mock: &HyperSkuMock) -> Result<Pair, AnyError> {
    let code = hypersku_code(mock).await?;
    hypersku_exchange(mock, &code).await
}

async fn hypersku_code(mock: &HyperSkuMock) -> Result<String, AnyError> {
    let callback = mock.approve(&mock.build_authorize_url("s")).await?;
    Ok(query_param(&callback, "code").unwrap_or_default())
}

async fn hypersku_exchange(mock: &HyperSkuMock, code: &str) -> Result<Pair, AnyError> {
    let config = mock.config();
    let request = json!({
        "clientId": config.client_id,
        "clientSecret": config.client_secret,
        "code": code,
        "redirectUri": config.redirect_uri,
    });
    let (status, body) = post_json(mock.token_url(), &request).await?;
    assert_eq!(status, 200, "{body}");
    pair(&body, "accessToken", "refreshToken")
}

/// Refreshes at HyperSKU: the new pair, or the `msg` of the 60025 error.
async fn hypersku_refresh(
    mock: &HyperSkuMock,
    refresh_token: &str,
) -> Result<Result<Pair, String>, AnyError> {
    let config = mock.config();
    let request = json!({
        "clientId": config.client_id,
        "clientSecret": config.client_secret,
        "refreshToken": refresh_token,
    });
    let (status, body) = post_json(mock.refresh_url(), &request).await?;
    assert_eq!(status, 200, "{body}");
    if body["code"] == json!(INVALID_GRANT_CODE) {
        return Ok(Err(body["msg"].as_str().unwrap_or_default().to_owned()));
    }
    Ok(Ok(pair(&body, "accessToken", "refreshToken")?))
}

/// The protected API's status for `access_token`.
async fn api_status(mock: &impl MockServer, access_token: &str) -> Result<u16, AnyError> {
    let response = client()
        .get(mock.me_url())
        .bearer_auth(access_token)
        .send()
        .await?;
    Ok(response.status().as_u16())
}

#[tokio::test]
async fn reuse_is_counted_and_refused_and_the_successor_lives_on_by_default() -> TestResult {
    let mock = HikeMock::start(MockConfig::default()).await?;
    let first = hike_sign_in(&mock).await?;
    let second = hike_refresh(&mock, &first.refresh).await??;
    assert_eq!(mock.refresh_token_reuses(), 0, "a rotation is no reuse");

    let reused = hike_refresh(&mock, &first.refresh).await?;
    assert_eq!(
        reused.err().as_deref(),
        Some("the refresh token is invalid: grant already used")
    );
    assert_eq!(mock.refresh_token_reuses(), 1);
    // Unknown tokens are no reuse either.
    assert!(hike_refresh(&mock, "hike_rt_9_unknown").await?.is_err());
    assert_eq!(mock.refresh_token_reuses(), 1);

    // Without `revoke_on_reuse` the live successor keeps working.
    assert!(mock.is_refresh_token_valid(&second.refresh));
    assert_eq!(api_status(&mock, &second.access).await?, 200);
    assert_eq!(
        api_status(&mock, &first.access).await?,
        200,
        "still unexpired"
    );
    let third = hike_refresh(&mock, &second.refresh).await??;
    assert!(hike_refresh(&mock, &first.refresh).await?.is_err());
    assert!(hike_refresh(&mock, &second.refresh).await?.is_err());
    assert_eq!(mock.refresh_token_reuses(), 3);
    assert!(mock.is_refresh_token_valid(&third.refresh));

    let partner = PartnerMock::start(MockConfig::default()).await?;
    assert_eq!(partner.refresh_token_reuses(), 0);
    assert!(partner.rotations().is_empty());
    Ok(())
}

#[tokio::test]
async fn reuse_revokes_the_whole_family_when_configured() -> TestResult {
    let mock = HikeMock::start(MockConfig::default().with_revoke_on_reuse(true)).await?;
    let first = hike_sign_in(&mock).await?;
    let second = hike_refresh(&mock, &first.refresh).await??;
    let live = hike_refresh(&mock, &second.refresh).await??;
    // Another authorization: another family, untouched by the reuse below.
    let other = hike_sign_in(&mock).await?;
    let other_next = hike_refresh(&mock, &other.refresh).await??;
    assert_eq!(api_status(&mock, &live.access).await?, 200);

    // The attacker (or a crashed client) replays the first refresh token.
    assert!(hike_refresh(&mock, &first.refresh).await?.is_err());
    assert_eq!(mock.refresh_token_reuses(), 1);

    // The live successor and every access token of the family are dead.
    assert!(!mock.is_refresh_token_valid(&live.refresh));
    for access in [&first.access, &second.access, &live.access] {
        assert!(!mock.is_access_token_valid(access));
        assert_eq!(api_status(&mock, access).await?, 401);
    }
    let refused = hike_refresh(&mock, &live.refresh).await?;
    assert_eq!(
        refused.err().as_deref(),
        Some("the refresh token is invalid: grant was revoked")
    );
    assert_eq!(
        mock.refresh_token_reuses(),
        1,
        "a revoked token is no reuse"
    );

    // The other family lives on.
    assert!(mock.is_refresh_token_valid(&other_next.refresh));
    assert_eq!(api_status(&mock, &other_next.access).await?, 200);
    assert_eq!(api_status(&mock, &other.access).await?, 200);
    assert!(hike_refresh(&mock, &other_next.refresh).await?.is_ok());

    // A reuse after the revocation is still counted; nothing more dies.
    assert!(hike_refresh(&mock, &second.refresh).await?.is_err());
    assert_eq!(mock.refresh_token_reuses(), 2);
    // Tokens issued after a fresh sign-in are fine.
    let fresh = hike_sign_in(&mock).await?;
    assert_eq!(api_status(&mock, &fresh.access).await?, 200);
    Ok(())
}

#[tokio::test]
async fn hypersku_counts_reuse_and_revokes_the_family() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default().with_revoke_on_reuse(true)).await?;
    let first = hypersku_sign_in(&mock).await?;
    let second = hypersku_refresh(&mock, &first.refresh).await??;
    assert_eq!(mock.rotations().len(), 1);
    assert_eq!(api_status(&mock, &second.access).await?, 200);

    let reused = hypersku_refresh(&mock, &first.refresh).await?;
    assert_eq!(
        reused.err().as_deref(),
        Some("invalid refresh token: grant already used")
    );
    assert_eq!(mock.refresh_token_reuses(), 1);
    assert!(!mock.is_refresh_token_valid(&second.refresh));
    assert_eq!(api_status(&mock, &second.access).await?, 401);
    let refused = hypersku_refresh(&mock, &second.refresh).await?;
    assert_eq!(
        refused.err().as_deref(),
        Some("invalid refresh token: grant was revoked")
    );
    assert_eq!(mock.rotations().len(), 1, "failed refreshes are not logged");
    Ok(())
}

#[tokio::test]
async fn rotations_are_logged_in_order_with_their_commit_time() -> TestResult {
    let mock = HikeMock::start(MockConfig::default()).await?;
    let first = hike_sign_in(&mock).await?;
    assert!(mock.rotations().is_empty(), "an exchange is no rotation");

    let mut chain = vec![first.refresh.clone()];
    let mut windows = Vec::new();
    for _ in 0..3 {
        let before = SystemTime::now();
        let next = hike_refresh(&mock, chain.last().ok_or("empty")?).await??;
        windows.push((before, SystemTime::now()));
        chain.push(next.refresh);
    }
    let _ = hike_refresh(&mock, &chain[0]).await?; // a refused reuse: not logged

    let rotations = mock.rotations();
    assert_eq!(rotations.len(), 3);
    for (i, rotation) in rotations.iter().enumerate() {
        assert_eq!(rotation.old_refresh_token, chain[i]);
        assert_eq!(rotation.new_refresh_token, chain[i + 1]);
        let (before, after) = windows[i];
        assert!(
            rotation.committed_at >= before && rotation.committed_at <= after,
            "rotation {i} committed outside its request"
        );
    }
    assert!(rotations
        .windows(2)
        .all(|w| w[0].committed_at <= w[1].committed_at));
    Ok(())
}

#[tokio::test]
async fn rotation_debug_shows_no_token() -> TestResult {
    let mock = HikeMock::start(MockConfig::default()).await?;
    let first = hike_sign_in(&mock).await?;
    let second = hike_refresh(&mock, &first.refresh).await??;
    let rotation: Rotation = mock.rotations().pop().ok_or("no rotation")?;
    let debug = format!("{rotation:?}");
    assert!(!debug.contains(&first.refresh), "{debug}");
    assert!(!debug.contains(&second.refresh), "{debug}");
    // The prefix (provider, kind, issue number) stays readable.
    assert!(
        debug.contains(r#"old_refresh_token: "hike_rt_1_[redacted]""#),
        "{debug}"
    );
    assert!(
        debug.contains(r#"new_refresh_token: "hike_rt_2_[redacted]""#),
        "{debug}"
    );
    Ok(())
}

/// Waits (up to `limit`) until `mock` has logged `n` rotations.
async fn rotations_reach(mock: &impl MockServer, n: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while mock.rotations().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    mock.rotations().len() >= n
}

#[tokio::test]
async fn refresh_responses_are_held_after_the_commit() -> TestResult {
    const HOLD: Duration = Duration::from_secs(1);
    let mock = HikeMock::start(MockConfig::default().with_refresh_delay_after_commit(HOLD)).await?;

    // Exchanges are not held.
    let code = hike_code(&mock).await?;
    let started = Instant::now();
    let first = hike_exchange(&mock, &code).await?;
    assert!(started.elapsed() < HOLD, "{:?}", started.elapsed());

    // While the response is held, the rotation is already committed.
    let refresh = tokio::spawn({
        let mock = mock.clone();
        let token = first.refresh.clone();
        async move { hike_refresh(&mock, &token).await }
    });
    assert!(rotations_reach(&mock, 1, HOLD / 2).await, "no commit");
    assert!(!refresh.is_finished(), "the response is held");
    assert!(
        !mock.is_refresh_token_valid(&first.refresh),
        "already spent"
    );
    let committed = mock.rotations().pop().ok_or("no rotation")?;
    assert!(mock.is_refresh_token_valid(&committed.new_refresh_token));
    let second = refresh.await???;
    let received = SystemTime::now();
    assert_eq!(second.refresh, committed.new_refresh_token);
    let held = received.duration_since(committed.committed_at)?;
    assert!(held >= HOLD, "held only {held:?}");

    // A client that gives up during the hold never learns the new token,
    // yet the provider rotated: the crash window this option opens.
    let impatient = reqwest::Client::builder()
        .timeout(HOLD / 2)
        .no_proxy()
        .build()?;
    let config = mock.config();
    let body = crate::form(&[
        ("grant_type", "refresh_token"),
        ("client_id", &config.client_id),
        ("client_secret", &config.client_secret),
        ("refresh_token", &second.refresh),
    ]);
    let result = impatient
        .post(mock.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await;
    assert!(result.is_err_and(|e| e.is_timeout()));
    assert!(rotations_reach(&mock, 2, HOLD).await, "no commit");
    assert!(!mock.is_refresh_token_valid(&second.refresh));
    let lost = mock.rotations().pop().ok_or("no rotation")?;
    assert_eq!(lost.old_refresh_token, second.refresh);
    assert!(mock.is_refresh_token_valid(&lost.new_refresh_token));

    // Refused refreshes are answered at once.
    let started = Instant::now();
    assert!(hike_refresh(&mock, &first.refresh).await?.is_err());
    assert!(started.elapsed() < HOLD, "{:?}", started.elapsed());
    Ok(())
}

#[tokio::test]
async fn hypersku_refresh_responses_are_held_too() -> TestResult {
    const HOLD: Duration = Duration::from_secs(1);
    let mock =
        HyperSkuMock::start(MockConfig::default().with_refresh_delay_after_commit(HOLD)).await?;
    let code = hypersku_code(&mock).await?;
    let started = Instant::now();
    let first = hypersku_exchange(&mock, &code).await?;
    assert!(started.elapsed() < HOLD, "{:?}", started.elapsed());
    let started = Instant::now();
    let second = hypersku_refresh(&mock, &first.refresh).await??;
    assert!(started.elapsed() >= HOLD, "{:?}", started.elapsed());
    let rotation = mock.rotations().pop().ok_or("no rotation")?;
    assert_eq!(rotation.new_refresh_token, second.refresh);
    let started = Instant::now();
    assert!(hypersku_refresh(&mock, &first.refresh).await?.is_err());
    assert!(started.elapsed() < HOLD, "{:?}", started.elapsed());
    Ok(())
}

#[tokio::test]
async fn hike_issues_many_grants_without_requests() -> TestResult {
    let mock = HikeMock::start(MockConfig::default()).await?;
    let grants = mock.issue_grants(3);
    assert_eq!(grants.len(), 3);
    assert!(mock.requests().is_empty(), "no request was made");
    assert_eq!(mock.issued_access_tokens(), 3);
    let mut refresh_tokens: Vec<_> = grants.iter().map(|(_, r)| r.clone()).collect();
    refresh_tokens.sort();
    refresh_tokens.dedup();
    assert_eq!(refresh_tokens.len(), 3, "distinct refresh tokens");
    for (access, refresh) in &grants {
        assert!(mock.is_access_token_valid(access));
        assert!(mock.is_refresh_token_valid(refresh));
    }
    // Each rotates once, like a signed-in grant; the spent one is refused.
    let (_, first) = &grants[0];
    let next = hike_refresh(&mock, first)
        .await?
        .map_err(|e| e.to_string())?;
    assert!(mock.is_refresh_token_valid(&next.refresh));
    assert!(hike_refresh(&mock, first).await?.is_err());
    assert_eq!(mock.refresh_token_reuses(), 1);
    // Families are separate: the reuse revoked nothing of the others.
    assert!(mock.is_refresh_token_valid(&grants[1].1));
    Ok(())
}
