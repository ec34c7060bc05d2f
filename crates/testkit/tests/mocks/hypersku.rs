use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters_core::ManualClock;
use oauth2_adapters_testkit::hypersku::{INVALID_GRANT_CODE, SCOPE, USER_ID};
use oauth2_adapters_testkit::{HyperSkuMock, MockConfig, MockError, MockServer, ResponseStyle};
use serde_json::{json, Value};

use crate::{client, post_json, query_param, TestResult};

async fn code(mock: &HyperSkuMock, state: &str) -> Result<String, MockError> {
    let callback = mock.approve(&mock.build_authorize_url(state)).await?;
    Ok(query_param(&callback, "code").unwrap_or_default())
}

fn exchange_body(mock: &HyperSkuMock, code: &str) -> Value {
    let config = mock.config();
    json!({
        "clientId": config.client_id,
        "clientSecret": config.client_secret,
        "code": code,
        "redirectUri": config.redirect_uri,
        "grantType": "authorization_code",
    })
}

fn refresh_body(mock: &HyperSkuMock, refresh_token: &str) -> Value {
    let config = mock.config();
    json!({
        "clientId": config.client_id,
        "clientSecret": config.client_secret,
        "refreshToken": refresh_token,
        "grantType": "refresh_token",
    })
}

#[tokio::test]
async fn approve_returns_callback_with_code_and_state() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default()).await?;
    let callback = mock.approve(&mock.build_authorize_url("st-1")).await?;
    assert!(callback
        .as_str()
        .starts_with("http://127.0.0.1:8976/callback?code="));
    assert_eq!(query_param(&callback, "state").as_deref(), Some("st-1"));
    assert!(query_param(&callback, "code").is_some_and(|c| c.len() >= 20));
    Ok(())
}

#[tokio::test]
async fn code_exchange_is_single_use() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default()).await?;
    let code = code(&mock, "s").await?;
    let (status, body) = post_json(mock.token_url(), &exchange_body(&mock, &code)).await?;
    assert_eq!(status, 200);
    assert!(body["accessToken"]
        .as_str()
        .is_some_and(|t| t.starts_with("hs_at_1_")));
    assert_eq!(body["expiresIn"], 3600);
    assert_eq!(body["refreshTokenExpireIn"], 30 * 24 * 3600);
    assert_eq!(body["scope"], SCOPE);
    assert_eq!(body["userId"], USER_ID);
    let refresh = body["refreshToken"].as_str().unwrap_or_default();
    assert!(mock.is_refresh_token_valid(refresh));
    assert_eq!(mock.issued_access_tokens(), 1);

    let (status, body) = post_json(mock.token_url(), &exchange_body(&mock, &code)).await?;
    assert_eq!(status, 200, "HyperSKU reports refused grants in a 200");
    assert_eq!(body["code"], INVALID_GRANT_CODE);
    assert_eq!(body["data"], Value::Null);
    assert!(body["msg"]
        .as_str()
        .is_some_and(|m| m.contains("already used")));
    assert_eq!(mock.issued_access_tokens(), 1);
    Ok(())
}

#[tokio::test]
async fn grant_type_is_optional_and_checked_when_present() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default()).await?;
    let code = code(&mock, "s").await?;
    let mut body = exchange_body(&mock, &code);
    body["grantType"] = json!("refresh_token");
    let (status, answer) = post_json(mock.token_url(), &body).await?;
    assert_eq!((status, &answer["code"]), (400, &json!(400)));
    if let Value::Object(map) = &mut body {
        map.remove("grantType");
    }
    let (status, answer) = post_json(mock.token_url(), &body).await?;
    assert_eq!(status, 200);
    assert!(answer["accessToken"].is_string());
    Ok(())
}

#[tokio::test]
async fn redirect_mismatch_is_refused() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default()).await?;
    let code = code(&mock, "s").await?;
    let mut body = exchange_body(&mock, &code);
    body["redirectUri"] = json!("http://127.0.0.1:8976/other");
    let (status, answer) = post_json(mock.token_url(), &body).await?;
    assert_eq!((status, &answer["code"]), (200, &json!(INVALID_GRANT_CODE)));
    // The mismatch does not consume the code.
    let (status, answer) = post_json(mock.token_url(), &exchange_body(&mock, &code)).await?;
    assert_eq!(status, 200);
    assert!(answer["accessToken"].is_string());
    Ok(())
}

#[tokio::test]
async fn wrong_secret_is_401_and_keeps_the_code() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default()).await?;
    let code = code(&mock, "s").await?;
    let mut body = exchange_body(&mock, &code);
    body["clientSecret"] = json!("nope");
    let (status, answer) = post_json(mock.token_url(), &body).await?;
    assert_eq!(status, 401);
    assert_eq!(
        answer,
        json!({"code": 401, "msg": "client authentication failed", "data": null})
    );
    let (status, _) = post_json(mock.token_url(), &exchange_body(&mock, &code)).await?;
    assert_eq!(status, 200);
    Ok(())
}

#[tokio::test]
async fn content_type_and_malformed_bodies() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default()).await?;
    let response = client()
        .post(mock.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("clientId=a")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 415);
    let body: Value = response.json().await?;
    assert_eq!(body["code"], 415);

    let response = client()
        .post(mock.token_url())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await?;
    assert_eq!(body["code"], 400);
    assert_eq!(body["data"], Value::Null);

    let (status, body) = post_json(mock.token_url(), &json!({"clientId": "x"})).await?;
    assert_eq!((status, &body["code"]), (400, &json!(400)));
    Ok(())
}

#[tokio::test]
async fn refresh_rotates_and_rejects_reuse() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default()).await?;
    let code = code(&mock, "s").await?;
    let (_, first) = post_json(mock.token_url(), &exchange_body(&mock, &code)).await?;
    let old = first["refreshToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let (status, second) = post_json(mock.refresh_url(), &refresh_body(&mock, &old)).await?;
    assert_eq!(status, 200);
    let new = second["refreshToken"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(new, old);
    assert_ne!(second["accessToken"], first["accessToken"]);
    assert!(!mock.is_refresh_token_valid(&old));
    assert!(mock.is_refresh_token_valid(&new));
    assert_eq!(mock.issued_access_tokens(), 2);

    let (status, reused) = post_json(mock.refresh_url(), &refresh_body(&mock, &old)).await?;
    assert_eq!((status, &reused["code"]), (200, &json!(INVALID_GRANT_CODE)));
    let (status, unknown) = post_json(mock.refresh_url(), &refresh_body(&mock, "nope")).await?;
    assert_eq!(
        (status, &unknown["code"]),
        (200, &json!(INVALID_GRANT_CODE))
    );
    assert!(!mock.is_refresh_token_valid("nope"));
    Ok(())
}

#[tokio::test]
async fn codes_and_refresh_tokens_expire_on_the_config_clock() -> TestResult {
    let clock = ManualClock::at_unix(1_700_000_000);
    let config = MockConfig::default()
        .with_clock(Arc::new(clock.clone()))
        .with_refresh_token_lifetime(Duration::from_secs(3600));
    let mock = HyperSkuMock::start(config).await?;

    let stale = code(&mock, "s").await?;
    clock.advance(Duration::from_secs(10 * 60));
    let (_, body) = post_json(mock.token_url(), &exchange_body(&mock, &stale)).await?;
    assert_eq!(body["code"], INVALID_GRANT_CODE);
    assert!(body["msg"].as_str().is_some_and(|m| m.contains("expired")));

    let fresh = code(&mock, "s").await?;
    clock.advance(Duration::from_secs(9 * 60));
    let (_, body) = post_json(mock.token_url(), &exchange_body(&mock, &fresh)).await?;
    let refresh = body["refreshToken"].as_str().unwrap_or_default().to_owned();
    assert_eq!(body["refreshTokenExpireIn"], 3600);
    clock.advance(Duration::from_secs(3600));
    assert!(!mock.is_refresh_token_valid(&refresh));
    let (_, body) = post_json(mock.refresh_url(), &refresh_body(&mock, &refresh)).await?;
    assert_eq!(body["code"], INVALID_GRANT_CODE);
    Ok(())
}

#[tokio::test]
async fn envelope_and_string_numbers() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default()).await?;
    mock.set_style(ResponseStyle {
        envelope: true,
        string_numbers: true,
        omit_expires_in: false,
    });
    let code = code(&mock, "s").await?;
    let (status, body) = post_json(mock.token_url(), &exchange_body(&mock, &code)).await?;
    assert_eq!(status, 200);
    assert_eq!(body["code"], 200);
    assert_eq!(body["msg"], "success");
    assert_eq!(body["data"]["expiresIn"], "3600");
    assert_eq!(body["data"]["refreshTokenExpireIn"], "2592000");
    assert!(body["data"]["accessToken"].is_string());
    let (_, error) = post_json(mock.token_url(), &exchange_body(&mock, &code)).await?;
    assert_eq!(error["code"], INVALID_GRANT_CODE);
    assert_eq!(error["data"], Value::Null);
    Ok(())
}

#[tokio::test]
async fn invalid_authorize_requests_get_a_400_page() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default()).await?;
    let good = mock.build_authorize_url("s");
    let cases = [
        // Standard OAuth names instead of HyperSKU's camelCase ones.
        "response_type=code&client_id=test-client-id&redirect_uri=http%3A%2F%2F127.0.0.1%3A8976%2Fcallback&scope=oms&state=s",
        // Missing state (required by HyperSKU).
        "clientId=test-client-id&scope=oms&redirectUri=http%3A%2F%2F127.0.0.1%3A8976%2Fcallback",
        // Missing scope.
        "clientId=test-client-id&redirectUri=http%3A%2F%2F127.0.0.1%3A8976%2Fcallback&state=s",
        // Unknown client.
        "clientId=other&scope=oms&redirectUri=http%3A%2F%2F127.0.0.1%3A8976%2Fcallback&state=s",
        // Redirect URI not exactly the registered one.
        "clientId=test-client-id&scope=oms&redirectUri=http%3A%2F%2F127.0.0.1%3A8976%2Fcallback%2F&state=s",
    ];
    for query in cases {
        let mut url = good.clone();
        url.set_query(Some(query));
        match mock.approve(&url).await {
            Err(MockError::NoRedirect { status: 400, body }) => {
                assert!(body.contains("Invalid authorization request"), "{body}");
            }
            other => panic!("{query}: expected a 400 page, got {other:?}"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn consent_page_and_deny() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default()).await?;
    let url = mock.build_authorize_url("st<&>");
    let response = client().get(url.clone()).send().await?;
    assert_eq!(response.status().as_u16(), 200);
    let page = response.text().await?;
    assert!(page.contains("test-client-id"));
    assert!(page.contains("<code>oms</code>"));
    assert!(page.contains("value=\"allow\"") && page.contains("value=\"deny\""));
    assert!(page.contains("value=\"st&lt;&amp;&gt;\""));

    let denied = mock.deny(&url).await?;
    assert_eq!(
        denied.as_str(),
        "http://127.0.0.1:8976/callback?error=access_denied&state=st%3C%26%3E"
    );
    assert_eq!(mock.issued_access_tokens(), 0);
    Ok(())
}

#[tokio::test]
async fn approve_refuses_urls_for_another_endpoint() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default()).await?;
    let mut url = mock.build_authorize_url("s");
    url.set_path("/oauth/authorize");
    assert!(matches!(
        mock.approve(&url).await,
        Err(MockError::WrongEndpoint { .. })
    ));
    let mut url = mock.build_authorize_url("s");
    url.set_host(Some("app.hypersku.com"))?;
    assert!(matches!(
        mock.deny(&url).await,
        Err(MockError::WrongEndpoint { .. })
    ));
    assert!(mock.requests().is_empty());
    Ok(())
}
