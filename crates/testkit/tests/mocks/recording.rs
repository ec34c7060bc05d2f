use std::time::Duration;

use oauth2_adapters_testkit::{HikeMock, HyperSkuMock, MockConfig, MockServer, RecordedRequest};
use serde_json::json;

use crate::{client, post_form, query_param, TestResult};

const SECRET: &str = "test-client-secret-0123456789";
const REDIRECT: &str = "http://127.0.0.1:8976/callback";

#[tokio::test]
async fn every_request_is_recorded_with_stable_headers() -> TestResult {
    let mock = HikeMock::start(MockConfig::default()).await?;
    let callback = mock.approve(&mock.build_authorize_url(Some("st"))).await?;
    let code = query_param(&callback, "code").unwrap_or_default();
    let (status, _) = post_form(
        mock.token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "test-client-id"),
            ("client_secret", SECRET),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await?;
    assert_eq!(status, 200);

    let all = mock.requests();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].method, "GET");
    assert_eq!(all[0].path, "/oauth/authorize");
    assert!(all[0]
        .query
        .as_deref()
        .is_some_and(|q| q.ends_with("&state=st&decision=allow")));

    let token = mock.token_requests();
    assert_eq!(token.len(), 1);
    let request = &token[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/oauth/token")
    );
    assert_eq!(request.query, None);
    assert_eq!(
        request.headers,
        vec![
            ("accept".to_owned(), "application/json".to_owned()),
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned()
            ),
        ]
    );
    assert!(request
        .form_body()
        .contains(&("client_secret".to_owned(), SECRET.to_owned())));
    assert_eq!(request.json_body(), None);

    let redacted = request.redacted(&[
        (SECRET, "[client_secret]"),
        (&code, "[code]"),
        (REDIRECT, "[redirect_uri]"),
        ("", "[ignored]"),
    ]);
    assert_eq!(
        redacted.body,
        "grant_type=authorization_code&client_id=test-client-id\
         &client_secret=[client_secret]&code=[code]&redirect_uri=[redirect_uri]"
    );
    assert_eq!(serde_json::to_value(&redacted)?["path"], "/oauth/token");

    mock.clear_requests();
    assert!(mock.requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn redaction_of_authorization_and_json_bodies() -> TestResult {
    let mock = HyperSkuMock::start(MockConfig::default()).await?;
    for authorization in ["Basic dGVzdDpzZWNyZXQ=", "Bearer at-secret"] {
        client()
            .post(mock.token_url())
            .header("authorization", authorization)
            .header("user-agent", "not-recorded")
            .json(&json!({"clientId": "test-client-id", "clientSecret": SECRET}))
            .send()
            .await?;
    }
    let requests: Vec<RecordedRequest> = mock
        .token_requests()
        .iter()
        .map(|r| r.redacted(&[(SECRET, "[secret]"), ("at-secret", "[access_token]")]))
        .collect();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("authorization"), Some("[redacted]"));
    assert_eq!(
        requests[1].header("authorization"),
        Some("Bearer [access_token]")
    );
    assert_eq!(requests[0].header("user-agent"), None);
    assert_eq!(
        requests[0].json_body(),
        Some(json!({"clientId": "test-client-id", "clientSecret": "[secret]"}))
    );
    let names: Vec<&str> = requests[0]
        .headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    // reqwest sends `accept: */*` by default.
    assert_eq!(names, ["accept", "authorization", "content-type"]);
    Ok(())
}

#[tokio::test]
async fn unknown_paths_are_recorded_but_not_token_requests() -> TestResult {
    let mock = HikeMock::start(MockConfig::default()).await?;
    let response = client()
        .get(mock.base_url().join("nope?x=1")?)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 404);
    let response = client().get(mock.token_url()).send().await?;
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(mock.requests().len(), 2);
    assert!(mock.token_requests().iter().all(|r| r.method == "GET"));
    Ok(())
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_server() -> TestResult {
    let mock = HikeMock::start(MockConfig::default()).await?;
    let url = mock.token_url();
    let clone = mock.clone();
    mock.shutdown().await;
    assert!(client().get(url).send().await.is_err());
    drop(clone);

    let mock = HikeMock::start(MockConfig::default()).await?;
    let url = mock.token_url();
    assert!(client().get(url.clone()).send().await.is_ok());
    drop(mock);
    let mut stopped = false;
    for _ in 0..50 {
        // A fresh client, so no pooled connection is reused.
        if client().get(url.clone()).send().await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        stopped,
        "the server still answers after the last handle was dropped"
    );
    Ok(())
}
