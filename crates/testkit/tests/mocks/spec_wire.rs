//! SpecMock: body formats and field names, response mapping, envelopes
//! and business codes, revocation, client credentials, the endpoints.

use std::time::{Duration, UNIX_EPOCH};

use oauth2_adapters::testkit::{MockConfig, MockError, MockServer, SpecMock};
use oauth2_adapters::{
    AuthorizationCodeProvider, AuthorizeRequest, CallbackParams, ClientCredentialsProvider,
    ExposeSecret, Provider, ProviderSpec, RefreshTokenProvider,
};
use oauth2_adapters_testkit::spec::SUBJECT;
use serde_json::{json, Value};

use crate::spec_support::{
    code, error_of, me_status, post, provider, sign_in, spec, start, Body, START_UNIX,
};
use crate::TestResult;

const CAMEL: &str = "body = \"json\"\n\
    fields = { grant_type = \"grantType\", client_id = \"clientId\", client_secret = \"clientSecret\", \
    code = \"code\", redirect_uri = \"redirectUri\", refresh_token = \"refreshToken\", \
    code_verifier = \"codeVerifier\", scope = \"scope\" }";

#[tokio::test]
async fn json_bodies_with_their_field_names() -> TestResult {
    let (mock, _clock) = start(spec("", "", CAMEL)).await?;
    let provider = provider(&mock)?;
    let token = sign_in(&mock, &provider).await?;
    provider.refresh(&token).await?;
    for request in mock.token_requests() {
        assert_eq!(request.header("content-type"), Some("application/json"));
        let body = request.json_body().ok_or("a JSON body")?;
        for field in ["grantType", "clientId", "clientSecret"] {
            assert!(body.get(field).is_some(), "{field} in {body}");
        }
        assert!(body.get("client_id").is_none(), "{body}");
    }
    // A form body to a JSON spec, a JSON body to a form spec: 415.
    let config = mock.config().clone();
    let code = code(&mock, None).await?;
    let pairs = [
        ("grantType", "authorization_code"),
        ("code", code.as_str()),
        ("redirectUri", config.redirect_uri.as_str()),
        ("clientId", config.client_id.as_str()),
        ("clientSecret", config.client_secret.as_str()),
    ];
    let (status, _, body) = post(mock.token_url(), Body::Form(&pairs), None).await?;
    assert_eq!(
        (status, error_of(&body)),
        (415, "invalid_request"),
        "{body}"
    );
    // RFC names in a camelCase dialect are not the client's credentials.
    let rfc = [
        ("grant_type", "authorization_code"),
        ("client_id", config.client_id.as_str()),
    ];
    let (status, _, body) = post(mock.token_url(), Body::Json(&rfc), None).await?;
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = post(mock.token_url(), Body::Json(&pairs), None).await?;
    assert_eq!(status, 200, "{body}");

    let (form_mock, _clock) = start(spec("", "", "")).await?;
    let (status, _, body) = post(form_mock.token_url(), Body::Json(&rfc), None).await?;
    assert_eq!(
        (status, error_of(&body)),
        (415, "invalid_request"),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn answers_follow_the_response_section() -> TestResult {
    let response = "[response]\naccess_token = \"data.token|access_token\"\n\
        refresh_token = \"data.refresh\"\nexpires_in = \"data.ttl\"\nexpires_in_unit = \"minutes\"\n\
        expires_at = \"data.until\"\nexpires_at_unit = \"milliseconds\"\n\
        refresh_expires_in = \"data.refresh_ttl\"\nscope = \"data.scopes\"\nscope_separator = \",\"\n\
        subject = \"data.user.id\"\ntoken_type = \"data.kind\"\nbearer_token_types = [\"bot\"]";
    let authorize = "scope_separator = \",\"\ndefault_scopes = [\"read\", \"write\"]";
    let (mock, _clock) = start(spec(&format!("{response}\n"), authorize, "")).await?;
    mock.set_response_fields(serde_json::from_value(
        json!({"instance_url": "https://eu.acme.example"}),
    )?);
    let provider = provider(&mock)?;
    let token = sign_in(&mock, &provider).await?;
    let at = |secs: u64| Some(UNIX_EPOCH + Duration::from_secs(START_UNIX + secs));
    assert_eq!(token.expires_at, at(3600));
    assert_eq!(token.refresh_expires_at, at(30 * 24 * 3600));
    assert_eq!(token.scopes, ["read", "write"]);
    assert_eq!(token.subject.as_deref(), Some(SUBJECT));
    assert_eq!(
        token.extra.get("instance_url"),
        Some(&json!("https://eu.acme.example"))
    );
    assert!(token.refresh_token.is_some());

    let config = mock.config().clone();
    let code = code(&mock, None).await?;
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.as_str()),
    ];
    let (status, _, body) = post(mock.token_url(), Body::Form(&pairs), None).await?;
    assert_eq!(status, 200);
    let data = &body["data"];
    assert_eq!(data["ttl"], json!(60), "minutes: {body}");
    assert_eq!(
        data["until"],
        json!((START_UNIX + 3600) * 1000),
        "milliseconds: {body}"
    );
    assert_eq!(data["scopes"], json!("read,write"));
    assert_eq!(data["kind"], json!("bot"));
    assert_eq!(data["user"]["id"], json!(SUBJECT));
    assert!(
        body.get("access_token").is_none(),
        "only the first path: {body}"
    );
    Ok(())
}

#[tokio::test]
async fn envelopes_carry_tokens_and_business_codes() -> TestResult {
    let response = "[response.envelope]\ncode = \"code\"\nsuccess = [0]\ndata = \"data\"\nmessage = [\"msg\"]\n\
        [response.error_codes]\n60025 = \"invalid_grant\"\n40001 = \"invalid_client\"\n";
    let (mock, _clock) = start(spec(response, "", "")).await?;
    let provider = provider(&mock)?;
    let token = sign_in(&mock, &provider).await?;
    let refreshed = provider.refresh(&token).await?;
    let error = provider
        .refresh(&token)
        .await
        .err()
        .ok_or("a spent token refreshed")?;
    assert!(error.requires_reauthorization(), "{error:?}");

    let config = mock.config().clone();
    let spent = token.refresh_token.as_ref().ok_or("a refresh token")?;
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", spent.expose_secret()),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.as_str()),
    ];
    let (status, _, body) = post(mock.token_url(), Body::Form(&pairs), None).await?;
    assert_eq!(status, 400);
    assert_eq!(body["code"], json!(60025), "{body}");
    assert_eq!(body["data"], Value::Null);
    let live = refreshed.refresh_token.as_ref().ok_or("a refresh token")?;
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", live.expose_secret()),
        ("client_id", config.client_id.as_str()),
        ("client_secret", "wrong"),
    ];
    let (status, _, body) = post(mock.token_url(), Body::Form(&pairs), None).await?;
    assert_eq!(
        (status, body["code"].clone()),
        (401, json!(40001)),
        "{body}"
    );
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", live.expose_secret()),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.as_str()),
    ];
    let (status, _, body) = post(mock.token_url(), Body::Form(&pairs), None).await?;
    assert_eq!(
        (status, body["code"].clone(), body["msg"].clone()),
        (200, json!(0), json!("success"))
    );
    assert!(body["data"]["access_token"].is_string(), "{body}");
    // Unmapped OAuth errors stay RFC 6749 objects.
    let pairs = [
        ("grant_type", "password"),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.as_str()),
    ];
    let (status, _, body) = post(mock.token_url(), Body::Form(&pairs), None).await?;
    assert_eq!(
        (status, error_of(&body)),
        (400, "unsupported_grant_type"),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn mapped_error_values_without_an_envelope() -> TestResult {
    let response = "[response.error_codes]\nbad_verification_code = \"invalid_grant\"\n";
    let (mock, _clock) = start(spec(response, "", "")).await?;
    let provider = provider(&mock)?;
    let (url, pending) = provider.authorize(AuthorizeRequest::new(&mock.config().redirect_uri)?)?;
    let callback = mock.approve(&url).await?;
    let code = crate::query_param(&callback, "code").unwrap_or_default();
    let config = mock.config().clone();
    let pairs = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", config.redirect_uri.as_str()),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.as_str()),
    ];
    let (status, _, body) = post(mock.token_url(), Body::Form(&pairs), None).await?;
    assert_eq!(
        status, 400,
        "the code is refused without its verifier: {body}"
    );
    assert_eq!(error_of(&body), "bad_verification_code");
    let error = provider
        .handle_callback(CallbackParams::from_url(&callback)?, pending)
        .await;
    assert!(error.is_ok(), "PKCE's verifier makes it good: {error:?}");
    Ok(())
}

#[tokio::test]
async fn revocation_ends_the_family() -> TestResult {
    for (revocation, hint) in [
        ("url = \"https://api.acme.example/oauth/revoke\"", true),
        ("url = \"https://api.acme.example/oauth/revoke\"\nbody = \"json\"\ntoken_field = \"tok\"\nsend_token_type_hint = false", false),
    ] {
        let (mock, _clock) = start(spec(&format!("[revocation]\n{revocation}"), "", "")).await?;
        let provider = provider(&mock)?;
        let token = sign_in(&mock, &provider).await?;
        let refreshed = provider.refresh(&token).await?;
        assert!(provider.revoke(&refreshed).await?);
        let rt = refreshed.refresh_token.as_ref().ok_or("a refresh token")?;
        assert!(!mock.is_refresh_token_valid(rt.expose_secret()));
        assert_eq!(me_status(&mock, refreshed.access_token.expose_secret()).await?, 401);
        let revoke_url = mock.revocation_url().ok_or("a revocation URL")?;
        let request = mock
            .requests()
            .into_iter()
            .find(|r| r.path == revoke_url.path())
            .ok_or("no revocation request")?;
        let sent_hint = request.body.contains("token_type_hint");
        assert_eq!(sent_hint, hint, "{}", request.body);
        // An unknown token is 200 too (RFC 7009 §2.2); the client must authenticate.
        let config = mock.config().clone();
        let pairs = [("token", "unknown"), ("tok", "unknown"), ("client_id", config.client_id.as_str()), ("client_secret", "wrong")];
        let body = if hint { Body::Form(&pairs) } else { Body::Json(&pairs) };
        let (status, _, answer) = post(revoke_url.clone(), body, None).await?;
        assert_eq!((status, error_of(&answer)), (401, "invalid_client"), "{answer}");
        let pairs = [("token", "unknown"), ("tok", "unknown"), ("client_id", config.client_id.as_str()), ("client_secret", config.client_secret.as_str())];
        let body = if hint { Body::Form(&pairs) } else { Body::Json(&pairs) };
        assert_eq!(post(revoke_url, body, None).await?.0, 200);
    }
    Ok(())
}

#[tokio::test]
async fn client_credentials_only_when_reacquiring() -> TestResult {
    let spec_text =
        "id = \"machine\"\n[token]\nurl = \"https://api.acme.example/v1/oauth2/token\"\n\
        client_auth = \"client_secret_basic\"\nscope_separator = \",\"";
    let (mock, _clock) = crate::spec_support::start(ProviderSpec::from_toml(spec_text)?).await?;
    let provider = provider(&mock)?;
    let token = provider
        .client_credentials(&["a".into(), "b".into()])
        .await?;
    assert_eq!(token.scopes, ["a", "b"]);
    assert!(token.refresh_token.is_none());
    assert_eq!(
        me_status(&mock, token.access_token.expose_secret()).await?,
        200
    );
    let request = mock.token_requests().pop().ok_or("no request")?;
    assert!(
        request
            .form_body()
            .contains(&("scope".into(), "a,b".into())),
        "{}",
        request.body
    );
    assert!(
        mock.build_authorize_url("s", None).is_err(),
        "no authorize endpoint"
    );

    // A code-flow spec does not serve it.
    let (mock, _clock) = start(spec("", "", "")).await?;
    let error = provider_of(&mock)?
        .client_credentials(&[])
        .await
        .err()
        .ok_or("served")?;
    assert!(
        error.to_string().contains("unsupported_grant_type"),
        "{error}"
    );
    Ok(())
}

fn provider_of(
    mock: &SpecMock,
) -> Result<oauth2_adapters::SpecProvider, crate::spec_support::AnyError> {
    provider(mock)
}

#[tokio::test]
async fn a_separate_refresh_url_takes_the_refreshes() -> TestResult {
    let token = "refresh_url = \"https://api.acme.example/oauth/refresh\"";
    let (mock, _clock) = start(spec("", "", token)).await?;
    assert_eq!(mock.refresh_url().path(), "/oauth/refresh");
    let provider = provider(&mock)?;
    let token = sign_in(&mock, &provider).await?;
    provider.refresh(&token).await?;
    let paths: Vec<String> = mock.token_requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/oauth/token", "/oauth/refresh"]);
    let config = mock.config().clone();
    let pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.as_str()),
    ];
    let (status, _, body) = post(mock.token_url(), Body::Form(&pairs), None).await?;
    assert_eq!(
        (status, error_of(&body)),
        (400, "unsupported_grant_type"),
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn the_authorize_endpoint_speaks_the_dialect() -> TestResult {
    let authorize = "params = { client_id = \"clientId\", redirect_uri = \"redirectUri\" }\n\
        send_response_type = false\nscope_separator = \",\"\nscope_required = true\n\
        extra_params = { access_type = \"offline\" }\npkce = \"off\"";
    let (mock, _clock) = start(spec("", authorize, "")).await?;
    let provider = provider(&mock)?;
    let request = AuthorizeRequest::new(&mock.config().redirect_uri)?
        .with_scopes(["read", "write"])
        .with_param("login_hint", "ada");
    let (url, _pending) = provider.authorize(request)?;
    mock.approve(&url).await?;
    let expected: Vec<(String, String)> = [("access_type", "offline"), ("login_hint", "ada")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
    assert_eq!(mock.authorize_extra_params().pop(), Some(expected));

    let refused = |url: url::Url| {
        let mock = mock.clone();
        async move {
            match mock.approve(&url).await {
                Err(MockError::NoRedirect { status: 400, body }) => body,
                other => panic!("{url} must be refused: {other:?}"),
            }
        }
    };
    let config = mock.config().clone();
    let base = mock.authorize_url().ok_or("an authorize URL")?;
    let with = |pairs: &[(&str, &str)]| {
        let mut url = base.clone();
        url.query_pairs_mut().extend_pairs(pairs);
        url
    };
    let good = [
        ("clientId", config.client_id.as_str()),
        ("redirectUri", config.redirect_uri.as_str()),
        ("scope", "read,write"),
        ("state", "s"),
        ("access_type", "offline"),
    ];
    assert!(mock.approve(&with(&good)).await.is_ok());
    let mut no_extra = good.to_vec();
    no_extra.pop();
    assert!(refused(with(&no_extra))
        .await
        .contains("access_type=offline"));
    let mut spaces = good.to_vec();
    spaces[2] = ("scope", "read write");
    assert!(refused(with(&spaces)).await.contains("whitespace"));
    let mut no_scope = good.to_vec();
    no_scope.remove(2);
    assert!(refused(with(&no_scope)).await.contains("scope"));
    let mut other_redirect = good.to_vec();
    let trailing = format!("{}/", config.redirect_uri);
    other_redirect[1] = ("redirectUri", &trailing);
    assert!(refused(with(&other_redirect))
        .await
        .contains("byte for byte"));
    let mut rfc_names = good.to_vec();
    rfc_names[0] = ("client_id", config.client_id.as_str());
    assert!(refused(with(&rfc_names)).await.contains("clientId"));
    let denied = mock.deny(&with(&good)).await?;
    assert!(denied.as_str().contains("error=access_denied"), "{denied}");
    Ok(())
}

#[tokio::test]
async fn unservable_specs_are_refused() -> TestResult {
    let shared = "id = \"x\"\n[token]\nurl = \"https://a.example/t\"\n[revocation]\nurl = \"https://b.example/t\"";
    let spec = ProviderSpec::from_toml(shared)?;
    let refused = SpecMock::start(spec, MockConfig::default()).await;
    assert!(
        matches!(&refused, Err(MockError::InvalidSpec(m)) if m.contains("share")),
        "{refused:?}"
    );
    let mut invalid = ProviderSpec::new("x", None, "https://a.example/t");
    invalid.id = "Not An Id".into();
    let refused = SpecMock::start(invalid, MockConfig::default()).await;
    assert!(
        matches!(refused, Err(MockError::InvalidSpec(_))),
        "{refused:?}"
    );
    let api = ProviderSpec::new(
        "x",
        Some("https://a.example/api/v1/me"),
        "https://a.example/t",
    );
    assert!(SpecMock::start(api, MockConfig::default()).await.is_err());
    Ok(())
}
