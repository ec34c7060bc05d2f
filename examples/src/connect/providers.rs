//! The providers the app can connect: the testkit's mocks started on
//! 127.0.0.1 (by this instance or by another one), or the real HyperSKU and
//! Hike configured from the environment.

use std::sync::Arc;

use oauth2_adapters::hike::Hike;
use oauth2_adapters::hypersku::HyperSku;
use oauth2_adapters::testkit::{HikeMock, HyperSkuMock, MockConfig, MockServer};
use oauth2_adapters::{AuthorizationCodeProvider, ClientCredentials};
use url::Url;

use crate::BoxError;

/// One provider behind a Connect button.
pub(crate) struct Connectable {
    /// Its id, used in paths and element ids (`hypersku`, `hike`).
    pub(crate) slug: &'static str,
    /// Its name as people know it.
    pub(crate) name: &'static str,
    /// The adapter (the token manager renews its tokens too).
    pub(crate) adapter: Arc<dyn AuthorizationCodeProvider>,
    /// `http://127.0.0.1:PORT/callback/<slug>`, registered with the provider.
    pub(crate) redirect_uri: Url,
}

/// The testkit's mock providers the app started (kept running while it runs).
#[derive(Debug)]
pub struct Mocks {
    /// The mock HyperSKU.
    pub hypersku: HyperSkuMock,
    /// The mock Hike.
    pub hike: HikeMock,
}

/// The display name of a provider slug (for the account list).
pub(crate) fn display_name(slug: &str) -> &str {
    match slug {
        "hypersku" => "HyperSKU",
        "hike" => "Hike",
        other => other,
    }
}

/// The redirect URI of `slug` on the app at `app_url`.
pub(crate) fn redirect_uri(app_url: &Url, slug: &str) -> Result<Url, BoxError> {
    Ok(app_url.join(&format!("callback/{slug}"))?)
}

/// Starts the mock HyperSKU and Hike on 127.0.0.1, each registered with
/// the app's callback, and builds adapters pointed at them.
pub(crate) async fn sandbox(
    app_url: &Url,
    app_name: &str,
) -> Result<(Vec<Connectable>, Mocks), BoxError> {
    let hypersku_uri = redirect_uri(app_url, "hypersku")?;
    let hike_uri = redirect_uri(app_url, "hike")?;
    let config = |uri: &Url| {
        MockConfig::default()
            .with_redirect_uri(uri.as_str())
            .with_app_name(app_name)
    };
    let hypersku_mock = HyperSkuMock::start(config(&hypersku_uri)).await?;
    let hike_mock = HikeMock::start(config(&hike_uri)).await?;

    let hypersku = Arc::new(
        HyperSku::builder(credentials(hypersku_mock.config()))
            .base_url(hypersku_mock.base_url().as_str())
            .build()?,
    );
    let hike = Arc::new(
        Hike::builder(credentials(hike_mock.config()))
            .base_url(hike_mock.base_url().as_str())
            .build()?,
    );
    let providers = vec![
        hypersku_connectable(hypersku, hypersku_uri),
        hike_connectable(hike, hike_uri),
    ];
    Ok((
        providers,
        Mocks {
            hypersku: hypersku_mock,
            hike: hike_mock,
        },
    ))
}

/// Adapters for mocks another instance started (with the testkit's
/// default registration, which [`sandbox`] uses too).
pub(crate) fn at_mocks(
    app_url: &Url,
    hypersku_url: &Url,
    hike_url: &Url,
) -> Result<Vec<Connectable>, BoxError> {
    let registration = MockConfig::default();
    let hypersku = Arc::new(
        HyperSku::builder(credentials(&registration))
            .base_url(hypersku_url.as_str())
            .build()?,
    );
    let hike = Arc::new(
        Hike::builder(credentials(&registration))
            .base_url(hike_url.as_str())
            .build()?,
    );
    Ok(vec![
        hypersku_connectable(hypersku, redirect_uri(app_url, "hypersku")?),
        hike_connectable(hike, redirect_uri(app_url, "hike")?),
    ])
}

/// The real providers whose client id is set in the environment. Fails,
/// naming the variables, when none is configured or a secret is missing.
pub(crate) fn real(app_url: &Url) -> Result<Vec<Connectable>, BoxError> {
    let mut providers = Vec::new();
    if let Some(credentials) = real_credentials("HYPERSKU_CLIENT_ID", "HYPERSKU_CLIENT_SECRET")? {
        let mut builder = HyperSku::builder(credentials);
        if let Some(url) = optional_var("HYPERSKU_AUTHORIZE_URL") {
            builder = builder.authorize_url(url);
        }
        if let Some(url) = optional_var("HYPERSKU_API_BASE_URL") {
            builder = builder.api_base_url(url);
        }
        let uri = redirect_uri(app_url, "hypersku")?;
        providers.push(hypersku_connectable(Arc::new(builder.build()?), uri));
    }
    if let Some(credentials) = real_credentials("HIKE_CLIENT_ID", "HIKE_CLIENT_SECRET")? {
        let mut builder = Hike::builder(credentials);
        if let Some(url) = optional_var("HIKE_BASE_URL") {
            builder = builder.base_url(url);
        }
        let uri = redirect_uri(app_url, "hike")?;
        providers.push(hike_connectable(Arc::new(builder.build()?), uri));
    }
    if providers.is_empty() {
        return Err(
            "--real needs credentials: set HYPERSKU_CLIENT_ID and HYPERSKU_CLIENT_SECRET, \
                    and/or HIKE_CLIENT_ID and HIKE_CLIENT_SECRET (or run without --real to use \
                    the local mock providers)"
                .into(),
        );
    }
    Ok(providers)
}

fn hypersku_connectable(adapter: Arc<HyperSku>, redirect_uri: Url) -> Connectable {
    Connectable {
        slug: "hypersku",
        name: "HyperSKU",
        adapter,
        redirect_uri,
    }
}

fn hike_connectable(adapter: Arc<Hike>, redirect_uri: Url) -> Connectable {
    Connectable {
        slug: "hike",
        name: "Hike",
        adapter,
        redirect_uri,
    }
}

fn credentials(config: &MockConfig) -> ClientCredentials {
    ClientCredentials::new(config.client_id.clone(), config.client_secret.clone())
}

/// The credentials in `id_var` / `secret_var`: `None` when the id is not
/// set, an error naming `secret_var` when only the id is.
fn real_credentials(id_var: &str, secret_var: &str) -> Result<Option<ClientCredentials>, String> {
    let Some(id) = optional_var(id_var) else {
        return Ok(None);
    };
    let secret = optional_var(secret_var)
        .ok_or_else(|| format!("{id_var} is set but {secret_var} is not: set both"))?;
    Ok(Some(ClientCredentials::new(id, secret)))
}

/// A set, non-empty environment variable.
fn optional_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}
