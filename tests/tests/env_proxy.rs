//! Proxies from the environment: `HTTPS_PROXY` (else `ALL_PROXY`) and
//! `NO_PROXY` are honoured for `https` token endpoints when no proxy is
//! configured; `HTTP_PROXY` never is (plain-http endpoints are loopback
//! ones, whose credentials must not leave the machine); `without_proxy`
//! ignores them all; a proxy variable that does not parse is a
//! configuration error naming the variable, not quoting it.
//!
//! The variables are process-wide, so this binary holds one test, which
//! sets them, checks each case in turn, and restores them.

#[allow(dead_code)] // Shared with `connectivity.rs`, which uses all of it.
mod connectivity {
    pub mod pki;
    pub mod proxy;
    pub mod tls_front;
}

use std::time::Duration;

use connectivity::pki::Authority;
use connectivity::proxy::ConnectProxy;
use connectivity::tls_front::TlsFront;
use oauth2_adapters::partner::Partner;
use oauth2_adapters::testkit::{MockConfig, MockServer, PartnerMock};
use oauth2_adapters::{
    ClientCredentialsProvider, Error, HttpConfig, ProviderSettings, RetryPolicy,
};
use oauth2_adapters_tests::credentials;

const VARIABLES: [&str; 8] = [
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Sets `pairs` and removes every other proxy variable.
fn set_env(pairs: &[(&str, &str)]) {
    for name in VARIABLES {
        std::env::remove_var(name);
    }
    for (name, value) in pairs {
        std::env::set_var(name, value);
    }
}

/// A partner client at `base_url`, built now (the environment is read when
/// the client is built).
fn partner(base_url: &str, mock: &PartnerMock, config: HttpConfig) -> Result<Partner, Error> {
    let context = ProviderSettings::with_http_config(&config.with_timeout(Duration::from_secs(5)))?
        .with_retry_policy(RetryPolicy::never());
    Partner::builder(credentials(mock))
        .base_url(base_url)
        .settings(context)
        .build()
}

#[tokio::test]
async fn proxies_from_the_environment() {
    let saved: Vec<(&str, Option<String>)> = VARIABLES
        .iter()
        .map(|name| (*name, std::env::var(name).ok()))
        .collect();

    let mock = PartnerMock::start(MockConfig::default()).await.unwrap();
    let ca = Authority::new("server CA");
    let upstream = mock.base_url().socket_addrs(|| None).unwrap()[0];
    let front = TlsFront::start(upstream, &ca.server(), None).await;
    let https = front.base_url();
    let http = mock.base_url().to_string();
    let trusting = || HttpConfig::default().with_root_certificate(ca.cert_pem());
    let proxy = ConnectProxy::start().await;
    let tunnels = || proxy.requests().len();

    // HTTPS_PROXY: https endpoints go through it; HTTP_PROXY is ignored.
    set_env(&[("HTTPS_PROXY", &proxy.url()), ("HTTP_PROXY", &proxy.url())]);
    let client = partner(&https, &mock, trusting()).unwrap();
    client
        .client_credentials(&[])
        .await
        .expect("via HTTPS_PROXY");
    assert_eq!(tunnels(), 1);
    assert_eq!(proxy.requests()[0].target, front.addr().to_string());
    let client = partner(&http, &mock, trusting()).unwrap();
    client.client_credentials(&[]).await.expect("direct");
    assert_eq!(tunnels(), 1, "a plain-http request went to HTTP_PROXY");

    // HTTP_PROXY alone: still direct, for http and https alike.
    set_env(&[("HTTP_PROXY", &proxy.url()), ("http_proxy", &proxy.url())]);
    for base_url in [&http, &https] {
        let client = partner(base_url, &mock, trusting()).unwrap();
        client.client_credentials(&[]).await.expect("direct");
    }
    assert_eq!(tunnels(), 1, "HTTP_PROXY was used");
    set_env(&[("HTTPS_PROXY", &proxy.url())]);

    // without_proxy: the environment is ignored.
    let client = partner(&https, &mock, trusting().without_proxy()).unwrap();
    client.client_credentials(&[]).await.expect("direct");
    assert_eq!(tunnels(), 1, "without_proxy used HTTPS_PROXY");

    // ALL_PROXY (lower case too), and NO_PROXY.
    set_env(&[("all_proxy", &proxy.url())]);
    let client = partner(&https, &mock, trusting()).unwrap();
    client.client_credentials(&[]).await.expect("via all_proxy");
    assert_eq!(tunnels(), 2);
    set_env(&[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", "127.0.0.1")]);
    let client = partner(&https, &mock, trusting()).unwrap();
    client
        .client_credentials(&[])
        .await
        .expect("NO_PROXY: direct");
    assert_eq!(tunnels(), 2, "NO_PROXY ignored");
    // with_proxy_bypass replaces NO_PROXY.
    let client = partner(&https, &mock, trusting().with_proxy_bypass("example.com")).unwrap();
    client
        .client_credentials(&[])
        .await
        .expect("via HTTPS_PROXY");
    assert_eq!(tunnels(), 3);

    // A variable that does not parse: a configuration error naming it.
    set_env(&[("HTTPS_PROXY", "socks5://ops:pw-env-secret@127.0.0.1:1")]);
    let err = partner(&https, &mock, trusting()).expect_err("a SOCKS proxy");
    assert!(matches!(err, Error::Configuration { .. }), "{err:?}");
    let said = err.to_string();
    assert!(
        said.contains("HTTPS_PROXY must use http or https"),
        "{said}"
    );
    assert!(!said.contains("pw-env-secret"), "{said}");
    // ... unless the environment is ignored.
    partner(&https, &mock, trusting().without_proxy()).expect("without_proxy");

    set_env(&[]);
    for (name, value) in saved {
        if let Some(value) = value {
            std::env::set_var(name, value);
        }
    }
}
