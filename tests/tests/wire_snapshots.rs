//! Snapshots of the exact requests each adapter sends and of each
//! normalized token. Secrets are replaced by placeholders. A changed
//! snapshot is a changed wire format: review it, never accept it blindly.

use oauth2_adapters::testkit::{MockServer, RecordedRequest};
use oauth2_adapters::{
    AuthorizeRequest, CallbackParams, ClientCredentialsProvider, ExposeSecret, Token,
};
use oauth2_adapters_tests::code_flow::CodeFlowProvider;
use oauth2_adapters_tests::{CodeFlowMock, Fixture, REDIRECT_URI};
use url::Url;

/// The authorize URL without host and port, its random state replaced.
fn authorize_snapshot(url: &Url) -> String {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "[state]".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("GET {}?{}", url.path(), query.join("&"))
}

fn last_token_request(mock: &dyn MockServer, replacements: &[(&str, &str)]) -> RecordedRequest {
    mock.token_requests()
        .last()
        .expect("a token request was sent")
        .redacted(replacements)
}

struct CodeFlowSnapshots {
    authorize: String,
    exchange: RecordedRequest,
    token: Token,
    refresh: RecordedRequest,
    refreshed: Token,
}

async fn code_flow<P: CodeFlowProvider, M: CodeFlowMock>(fx: &Fixture<P, M>) -> CodeFlowSnapshots {
    let secret = fx.mock.config().client_secret.clone();
    let (url, pending) = fx
        .provider
        .authorize(AuthorizeRequest::new(REDIRECT_URI).unwrap())
        .unwrap();
    let callback = fx.mock.approve_url(&url).await.unwrap();
    let params = CallbackParams::from_url(&callback).unwrap();
    let code = params.code.as_ref().unwrap().expose_secret().to_owned();
    let token = fx.provider.handle_callback(params, pending).await.unwrap();
    let exchange = last_token_request(&fx.mock, &[(&secret, "[client_secret]"), (&code, "[code]")]);
    let refresh_token = token
        .refresh_token
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    let refreshed = fx.provider.refresh(&token).await.unwrap();
    let refresh = last_token_request(
        &fx.mock,
        &[
            (&secret, "[client_secret]"),
            (&refresh_token, "[refresh_token]"),
        ],
    );
    CodeFlowSnapshots {
        authorize: authorize_snapshot(&url),
        exchange,
        token,
        refresh,
        refreshed,
    }
}

#[tokio::test]
async fn hypersku_wire() {
    let fx = oauth2_adapters_tests::hypersku().await;
    let snaps = code_flow(&fx).await;
    insta::assert_snapshot!("hypersku_authorize", snaps.authorize);
    insta::assert_json_snapshot!("hypersku_exchange_request", snaps.exchange);
    insta::assert_debug_snapshot!("hypersku_token", snaps.token);
    insta::assert_json_snapshot!("hypersku_refresh_request", snaps.refresh);
    insta::assert_debug_snapshot!("hypersku_refreshed_token", snaps.refreshed);
}

#[tokio::test]
async fn hike_wire() {
    let fx = oauth2_adapters_tests::hike().await;
    let snaps = code_flow(&fx).await;
    insta::assert_snapshot!("hike_authorize", snaps.authorize);
    insta::assert_json_snapshot!("hike_exchange_request", snaps.exchange);
    insta::assert_debug_snapshot!("hike_token", snaps.token);
    insta::assert_json_snapshot!("hike_refresh_request", snaps.refresh);
    insta::assert_debug_snapshot!("hike_refreshed_token", snaps.refreshed);
}

/// The providers made from the spec files send and read exactly what the
/// adapters do: the same snapshots.
#[tokio::test]
async fn hypersku_from_spec_wire() {
    let fx = oauth2_adapters_tests::hypersku_spec().await;
    let snaps = code_flow(&fx).await;
    insta::assert_snapshot!("hypersku_authorize", snaps.authorize);
    insta::assert_json_snapshot!("hypersku_exchange_request", snaps.exchange);
    insta::assert_debug_snapshot!("hypersku_token", snaps.token);
    insta::assert_json_snapshot!("hypersku_refresh_request", snaps.refresh);
    insta::assert_debug_snapshot!("hypersku_refreshed_token", snaps.refreshed);
}

#[tokio::test]
async fn hike_from_spec_wire() {
    let fx = oauth2_adapters_tests::hike_spec().await;
    let snaps = code_flow(&fx).await;
    insta::assert_snapshot!("hike_authorize", snaps.authorize);
    insta::assert_json_snapshot!("hike_exchange_request", snaps.exchange);
    insta::assert_debug_snapshot!("hike_token", snaps.token);
    insta::assert_json_snapshot!("hike_refresh_request", snaps.refresh);
    insta::assert_debug_snapshot!("hike_refreshed_token", snaps.refreshed);
}

#[tokio::test]
async fn partner_wire() {
    let fx = oauth2_adapters_tests::partner().await;
    let secret = fx.mock.config().client_secret.clone();
    let token = fx.provider.client_credentials(&[]).await.unwrap();
    let request = last_token_request(&fx.mock, &[(&secret, "[client_secret]")]);
    insta::assert_json_snapshot!("partner_client_credentials_request", request);
    insta::assert_debug_snapshot!("partner_token", token);
}
