use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use oauth2_adapters_core::ManualClock;
use oauth2_adapters_testkit::partner::{PartnerClaims, JWT_HEADER, PARTNER_ID, USER_ID};
use oauth2_adapters_testkit::{MockConfig, MockServer, PartnerMock, ResponseStyle};
use serde_json::{json, Value};

use crate::{client, form, post_json, TestResult};

fn credentials(mock: &PartnerMock, grant_type: &str) -> Value {
    json!({
        "grant_type": grant_type,
        "client_id": mock.config().client_id,
        "client_secret": mock.config().client_secret,
    })
}

#[tokio::test]
async fn issues_a_decodable_jwt_with_fractional_times() -> TestResult {
    let start = SystemTime::UNIX_EPOCH + Duration::from_micros(1_710_220_031_583_112);
    let clock = ManualClock::new(start);
    let mock = PartnerMock::start(MockConfig::default().with_clock(Arc::new(clock))).await?;
    let (status, body) =
        post_json(mock.token_url(), &credentials(&mock, "client_credentials")).await?;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let jwt = body["access_token"].as_str().unwrap_or_default();

    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[0])?, JWT_HEADER.as_bytes());
    assert!(URL_SAFE_NO_PAD.decode(parts[2])?.len() >= 128);
    assert!(!jwt.contains('='));
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1])?)?;
    assert!(raw.contains("\"iat\":1710220031.583112"), "{raw}");
    assert!(raw.contains("\"exp\":1710223631.583112"), "{raw}");
    assert!(
        raw.starts_with("{\"aud\":\"test-client-id\",\"jti\":"),
        "{raw}"
    );

    let claims = PartnerClaims::decode(jwt).ok_or("claims")?;
    assert_eq!(claims.aud, "test-client-id");
    assert_eq!(claims.iat, 1_710_220_031.583_112);
    assert_eq!(claims.nbf, claims.iat);
    assert_eq!(claims.exp, 1_710_223_631.583_112);
    assert_eq!(claims.sub, "");
    assert_eq!(claims.scopes, ["bookings:create", "bookings:delete"]);
    assert_eq!(claims.user_id, USER_ID);
    assert_eq!(claims.partner_id, PARTNER_ID);
    assert!(claims.is_test);
    assert_eq!(claims.jti.len(), 80);

    let (_, again) = post_json(mock.token_url(), &credentials(&mock, "client_credentials")).await?;
    let again = PartnerClaims::decode(again["access_token"].as_str().unwrap_or_default())
        .ok_or("claims")?;
    assert_ne!(again.jti, claims.jti);
    assert_eq!(mock.issued_access_tokens(), 2);
    Ok(())
}

#[tokio::test]
async fn refresh_is_not_supported() -> TestResult {
    let mock = PartnerMock::start(MockConfig::default()).await?;
    let mut body = credentials(&mock, "refresh_token");
    body["refresh_token"] = json!("anything");
    let (status, answer) = post_json(mock.token_url(), &body).await?;
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("unsupported_grant_type"))
    );
    assert!(!mock.is_refresh_token_valid("anything"));
    assert_eq!(mock.issued_access_tokens(), 0);
    Ok(())
}

#[tokio::test]
async fn bad_credentials_and_content_type() -> TestResult {
    let mock = PartnerMock::start(MockConfig::default()).await?;
    let mut body = credentials(&mock, "client_credentials");
    body["client_secret"] = json!("wrong");
    let (status, answer) = post_json(mock.token_url(), &body).await?;
    assert_eq!((status, &answer["error"]), (401, &json!("invalid_client")));

    let response = client()
        .post(mock.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "test-client-id"),
            ("client_secret", "test-client-secret-0123456789"),
        ]))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 415);
    let (status, answer) = post_json(mock.token_url(), &json!({"client_id": "x"})).await?;
    assert_eq!((status, &answer["error"]), (400, &json!("invalid_request")));
    Ok(())
}

#[tokio::test]
async fn omit_expires_in_and_string_numbers() -> TestResult {
    let mock = PartnerMock::start(
        MockConfig::default().with_access_token_lifetime(Duration::from_secs(120)),
    )
    .await?;
    mock.set_style(ResponseStyle {
        string_numbers: true,
        ..ResponseStyle::default()
    });
    let (_, body) = post_json(mock.token_url(), &credentials(&mock, "client_credentials")).await?;
    assert_eq!(body["expires_in"], "120");
    mock.set_style(ResponseStyle {
        omit_expires_in: true,
        ..ResponseStyle::default()
    });
    let (_, body) = post_json(mock.token_url(), &credentials(&mock, "client_credentials")).await?;
    assert!(body.get("expires_in").is_none());
    let claims =
        PartnerClaims::decode(body["access_token"].as_str().unwrap_or_default()).ok_or("claims")?;
    assert!((claims.exp - claims.iat - 120.0).abs() < 1e-3);
    Ok(())
}
