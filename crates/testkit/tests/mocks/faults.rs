use std::time::{Duration, Instant, SystemTime};

use oauth2_adapters_testkit::{Fault, HikeMock, HyperSkuMock, MockConfig, MockServer, PartnerMock};
use serde_json::{json, Value};

use crate::{client, form, post_json, query_param, TestResult};

#[tokio::test]
async fn faults_apply_once_in_order_and_leave_the_grant_unused() -> TestResult {
    let mock = HikeMock::start(MockConfig::default()).await?;
    for fault in [
        Fault::Status(503),
        Fault::RetryAfter {
            status: 429,
            seconds: 7,
        },
        Fault::StatusWithBody {
            status: 502,
            content_type: "text/html".to_owned(),
            body: "<html>Bad Gateway</html>".to_owned(),
        },
        Fault::MalformedBody,
        Fault::Redirect("http://127.0.0.1:9/elsewhere".to_owned()),
        Fault::Delay(Duration::from_millis(150)),
    ] {
        mock.push_fault(fault);
    }
    // Authorize requests do not pop faults.
    let callback = mock.approve(&mock.build_authorize_url(Some("s"))).await?;
    let code = query_param(&callback, "code").unwrap_or_default();
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("client_id", "test-client-id"),
        ("client_secret", "test-client-secret-0123456789"),
        ("code", &code),
        ("redirect_uri", "http://127.0.0.1:8976/callback"),
    ]);
    let send = || {
        client()
            .post(mock.token_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
    };

    let response = send().await?;
    assert_eq!(response.status().as_u16(), 503);
    let error: Value = response.json().await?;
    assert_eq!(error["error"], "temporarily_unavailable");

    let response = send().await?;
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"7"[..])
    );
    assert_eq!(response.text().await?, "Too Many Requests");

    let response = send().await?;
    assert_eq!(response.status().as_u16(), 502);
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"text/html"[..])
    );
    assert_eq!(response.text().await?, "<html>Bad Gateway</html>");

    let response = send().await?;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await?, r#"{"access_token": ""#);

    let response = send().await?;
    assert_eq!(response.status().as_u16(), 302);
    assert_eq!(
        response.headers().get("location").map(|v| v.as_bytes()),
        Some(&b"http://127.0.0.1:9/elsewhere"[..])
    );
    assert_eq!(mock.issued_access_tokens(), 0);

    let started = Instant::now();
    let response = send().await?;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(response.status().as_u16(), 200);
    let token: Value = response.json().await?;
    assert!(token["access_token"].is_string());

    // The queue is empty: the (now spent) code is refused normally.
    let response = send().await?;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(mock.issued_access_tokens(), 1);
    assert_eq!(mock.token_requests().len(), 7);
    Ok(())
}

#[tokio::test]
async fn fault_bodies_use_the_provider_error_shape() -> TestResult {
    let hypersku = HyperSkuMock::start(MockConfig::default()).await?;
    hypersku.push_fault(Fault::Status(500));
    let (status, body) = post_json(hypersku.refresh_url(), &json!({})).await?;
    assert_eq!(status, 500);
    assert_eq!(body["code"], 500);
    assert_eq!(body["data"], Value::Null);

    let partner = PartnerMock::start(MockConfig::default()).await?;
    partner.push_fault(Fault::Status(401));
    partner.push_fault(Fault::Status(500));
    let request = json!({
        "grant_type": "client_credentials",
        "client_id": "test-client-id",
        "client_secret": "test-client-secret-0123456789",
    });
    let (status, body) = post_json(partner.token_url(), &request).await?;
    assert_eq!((status, &body["error"]), (401, &json!("invalid_client")));
    let (status, body) = post_json(partner.token_url(), &request).await?;
    assert_eq!((status, &body["error"]), (500, &json!("server_error")));
    let (status, body) = post_json(partner.token_url(), &request).await?;
    assert_eq!(status, 200);
    assert!(body["access_token"].is_string());
    assert_eq!(partner.issued_access_tokens(), 1);
    Ok(())
}

#[tokio::test]
async fn retry_after_date_sends_a_well_formed_http_date() -> TestResult {
    let mock = HikeMock::start(MockConfig::default()).await?;
    mock.push_fault(Fault::RetryAfterDate {
        status: 503,
        after: Duration::from_secs(120),
    });
    let before = SystemTime::now();
    let response = client().post(mock.token_url()).send().await?;
    let after = SystemTime::now();
    assert_eq!(response.status().as_u16(), 503);
    let value = response
        .headers()
        .get("retry-after")
        .ok_or("no Retry-After")?
        .to_str()?
        .to_owned();
    let headers = response.headers().clone();
    assert_eq!(response.text().await?, "Service Unavailable");

    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", 29 characters, and it
    // survives a parse/format round trip unchanged.
    assert_eq!(value.len(), 29, "{value}");
    assert!(value.ends_with(" GMT"), "{value}");
    let date = httpdate::parse_http_date(&value)?;
    assert_eq!(httpdate::fmt_http_date(date), value);
    // 120 s after the request, rounded up to a whole second.
    let earliest = before + Duration::from_secs(119);
    let latest = after + Duration::from_secs(121);
    assert!(date >= earliest && date <= latest, "{value}");

    // The core reads it back as a delay of about two minutes.
    let parsed = oauth2_adapters_core::adapter::HttpResponse {
        status: 503,
        headers,
        body: Default::default(),
    };
    let delay = parsed.retry_after().ok_or("the core did not parse it")?;
    assert!(
        delay > Duration::from_secs(110) && delay <= Duration::from_secs(121),
        "{delay:?}"
    );
    // The fault was one-shot and left nothing behind.
    assert_eq!(mock.issued_access_tokens(), 0);
    assert_eq!(mock.token_requests().len(), 1);
    Ok(())
}
