//! Exercises the mocks over real HTTP.

mod faults;
mod hike;
mod hypersku;
mod partner;
mod recording;
mod rotation;
mod spec_client_auth;
mod spec_pkce;
mod spec_rotation;
mod spec_support;
mod spec_wire;

use std::error::Error;

use url::Url;

/// What every test returns.
pub type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

/// A client that never follows redirects and never uses a proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// An `application/x-www-form-urlencoded` body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The first value of the query parameter `name`.
pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// POSTs `body` as `application/x-www-form-urlencoded`.
pub async fn post_form(
    url: Url,
    pairs: &[(&str, &str)],
) -> Result<(u16, serde_json::Value), Box<dyn Error + Send + Sync>> {
    let response = client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form(pairs))
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

/// POSTs `body` as JSON.
pub async fn post_json(
    url: Url,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value), Box<dyn Error + Send + Sync>> {
    let response = client()
        .post(url)
        .header("accept", "application/json")
        .json(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}
