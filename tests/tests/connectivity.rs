//! The token-endpoint client's connectivity settings (`HttpConfig`): an
//! HTTP proxy, extra trusted roots, a client identity (mutual TLS) and the
//! user agent, each through an adapter built on
//! `ProviderSettings::with_http_config`, and the client's safety rules through them
//! (redirects never followed, the body cap, plain http never proxied,
//! token endpoints https-only except on loopback).
//!
//! Everything runs on 127.0.0.1: the partner mock (plain HTTP) behind an
//! HTTPS front made here (certificates from `rcgen`), and a small CONNECT
//! proxy that records what it is asked.

mod connectivity {
    pub mod pki;
    pub mod proxy;
    pub mod tls_front;
}

use std::error::Error as _;
use std::time::Duration;

use connectivity::pki::Authority;
use connectivity::proxy::ConnectProxy;
use connectivity::tls_front::{Handshakes, TlsFront};
use oauth2_adapters::partner::Partner;
use oauth2_adapters::testkit::{Fault, MockConfig, MockServer, PartnerMock};
use oauth2_adapters::{
    ClientCredentialsProvider, Error, HttpConfig, ProviderSettings, RetryPolicy, TransportErrorKind,
};
use oauth2_adapters_tests::credentials;

/// The partner mock behind an HTTPS front, with the PKI that made it.
struct Https {
    mock: PartnerMock,
    front: TlsFront,
    server_ca: Authority,
    client_ca: Authority,
}

impl Https {
    /// Without (`false`) or requiring (`true`) a client certificate signed
    /// by `client_ca`.
    async fn start(mutual: bool) -> Self {
        let mock = PartnerMock::start(MockConfig::default()).await.unwrap();
        let (server_ca, client_ca) = (Authority::new("server CA"), Authority::new("client CA"));
        let upstream = mock.base_url().socket_addrs(|| None).unwrap()[0];
        let front =
            TlsFront::start(upstream, &server_ca.server(), mutual.then_some(&client_ca)).await;
        Self {
            mock,
            front,
            server_ca,
            client_ca,
        }
    }

    /// The settings that trust the front's CA (short timeouts).
    fn trusting(&self) -> HttpConfig {
        base().with_root_certificate(self.server_ca.cert_pem())
    }

    /// The partner adapter at the front, with `config`.
    fn partner(&self, config: &HttpConfig) -> Partner {
        partner_at(&self.front.base_url(), &self.mock, config)
    }
}

/// Short timeouts, and no proxy from the environment (tests that want a
/// proxy set one; `env_proxy.rs` tests the environment's).
fn base() -> HttpConfig {
    HttpConfig::default()
        .without_proxy()
        .with_timeout(Duration::from_secs(5))
        .with_connect_timeout(Duration::from_secs(5))
}

/// The partner adapter at `base_url`, one attempt per call.
fn partner_at(base_url: &str, mock: &PartnerMock, config: &HttpConfig) -> Partner {
    let context = ProviderSettings::with_http_config(config)
        .expect("the HTTP client builds")
        .with_retry_policy(RetryPolicy::never());
    Partner::builder(credentials(mock))
        .base_url(base_url)
        .settings(context)
        .build()
        .expect("the adapter builds")
}

/// The transport error's kind and everything it says (sources included).
fn transport_failure(err: &Error) -> (TransportErrorKind, String) {
    let Error::Transport { kind, .. } = err else {
        panic!("not a transport error: {err:?}");
    };
    (*kind, said(err))
}

fn said(err: &Error) -> String {
    let mut said = format!("{err}");
    let mut source = err.source();
    while let Some(cause) = source {
        said.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    said
}

#[tokio::test]
async fn token_requests_go_through_the_proxy_with_the_user_agent_set() {
    let https = Https::start(false).await;
    let proxy = ConnectProxy::start().await;
    let config = https
        .trusting()
        .with_proxy(proxy.url())
        .with_user_agent("connectivity-test/1.0 (+ops@example.com)");
    let token = https.partner(&config).client_credentials(&[]).await;
    token.expect("a token through the proxy");

    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "CONNECT");
    assert_eq!(requests[0].target, https.front.addr().to_string());
    // The user agent reaches the token endpoint, inside the tunnel.
    let received = https.front.received().to_ascii_lowercase();
    assert!(
        received.contains("\r\nuser-agent: connectivity-test/1.0 (+ops@example.com)\r\n"),
        "{received}"
    );
    assert_eq!(https.mock.token_requests().len(), 1);
}

/// An `https://` proxy: TLS to the proxy (its certificate checked against
/// the same roots), then the tunnel's own TLS to the endpoint inside it.
#[tokio::test]
async fn an_https_proxy_is_reached_over_tls() {
    let https = Https::start(false).await;
    let proxy = ConnectProxy::start().await;
    let proxy_front = TlsFront::start(proxy.addr(), &https.server_ca.server(), None).await;
    let config = https.trusting().with_proxy(proxy_front.base_url());
    https
        .partner(&config)
        .client_credentials(&[])
        .await
        .expect("a token through an https proxy");
    assert_eq!(proxy_front.handshakes().completed, 1);
    let connect = format!("CONNECT {} HTTP/1.1\r\n", https.front.addr());
    assert!(
        proxy_front.received().starts_with(&connect),
        "{}",
        proxy_front.received()
    );
    assert_eq!(proxy.requests().len(), 1);
    assert_eq!(https.mock.token_requests().len(), 1);
}

#[tokio::test]
async fn proxy_credentials_are_sent_to_the_proxy_and_never_shown() {
    let https = Https::start(false).await;
    let proxy = ConnectProxy::start_with_credentials("ops", "proxy-pa55word").await;
    let config = https
        .trusting()
        .with_proxy(proxy.url_with_credentials("ops", "proxy-pa55word"));
    let debug = format!("{config:?}");
    assert!(!debug.contains("pa55word"), "{debug}");
    assert!(debug.contains("[credentials]@127.0.0.1"), "{debug}");
    https
        .partner(&config)
        .client_credentials(&[])
        .await
        .expect("the proxy accepts the credentials");

    // Without them the proxy refuses the tunnel: nothing reaches the endpoint.
    let err = https
        .partner(&https.trusting().with_proxy(proxy.url()))
        .client_credentials(&[])
        .await
        .expect_err("407 from the proxy");
    let (kind, said) = transport_failure(&err);
    assert_eq!(kind, TransportErrorKind::Connect, "{said}");
    assert_eq!(proxy.requests().len(), 2);
    assert!(proxy.requests()[1].header("proxy-authorization").is_none());
    assert_eq!(https.mock.token_requests().len(), 1);
}

#[tokio::test]
async fn plain_http_loopback_requests_never_use_the_proxy() {
    let mock = PartnerMock::start(MockConfig::default()).await.unwrap();
    let proxy = ConnectProxy::start().await;
    let partner = partner_at(
        mock.base_url().as_str(),
        &mock,
        &base().with_proxy(proxy.url()),
    );
    partner.client_credentials(&[]).await.expect("a token");
    assert_eq!(mock.token_requests().len(), 1);
    assert_eq!(
        proxy.requests(),
        Vec::new(),
        "a plain-http request was proxied"
    );
}

#[tokio::test]
async fn hosts_on_the_bypass_list_are_reached_directly() {
    let https = Https::start(false).await;
    let proxy = ConnectProxy::start().await;
    let config = https
        .trusting()
        .with_proxy(proxy.url())
        .with_proxy_bypass("example.com, 127.0.0.1");
    https
        .partner(&config)
        .client_credentials(&[])
        .await
        .expect("a token, directly");
    assert_eq!(proxy.requests(), Vec::new());
    assert_eq!(https.mock.token_requests().len(), 1);
}

#[tokio::test]
async fn an_https_endpoint_is_trusted_only_once_its_root_is_added() {
    let https = Https::start(false).await;

    let err = https
        .partner(&base())
        .client_credentials(&[])
        .await
        .expect_err("a certificate from an unknown CA");
    let (kind, said) = transport_failure(&err);
    assert_eq!(kind, TransportErrorKind::Connect, "{said}");
    assert!(err.request_never_sent(), "{said}");
    assert!(said.contains("UnknownIssuer"), "{said}");
    // Another CA's root does not help either.
    let other = Authority::new("another CA");
    let err = https
        .partner(&base().with_root_certificate(other.cert_pem()))
        .client_credentials(&[])
        .await
        .expect_err("a root that did not sign the certificate");
    assert_eq!(transport_failure(&err).0, TransportErrorKind::Connect);
    assert_eq!(
        https.mock.token_requests().len(),
        0,
        "a request got through"
    );

    // Several roots in one PEM, the right one among them.
    let bundle = format!("{}{}", other.cert_pem(), https.server_ca.cert_pem());
    https
        .partner(&base().with_root_certificate(bundle))
        .client_credentials(&[])
        .await
        .expect("the front's CA is trusted");
    assert_eq!(https.mock.token_requests().len(), 1);
    let received = https.front.received().to_ascii_lowercase();
    let default_agent = concat!(
        "\r\nuser-agent: oauth2-adapters/",
        env!("CARGO_PKG_VERSION")
    );
    assert!(received.contains(default_agent), "{received}");
}

#[tokio::test]
async fn mutual_tls_needs_the_client_identity() {
    let https = Https::start(true).await;

    let err = https
        .partner(&https.trusting())
        .client_credentials(&[])
        .await
        .expect_err("no client certificate");
    // TLS 1.3: the server refuses after the client's last handshake
    // message, so the client learns it while sending (not while connecting).
    let (_, said) = transport_failure(&err);
    assert!(said.contains("CertificateRequired"), "{said}");
    let stranger = Authority::new("a CA the server does not trust").client();
    let err = https
        .partner(
            &https
                .trusting()
                .with_client_identity(stranger.cert_pem, stranger.key_pem),
        )
        .client_credentials(&[])
        .await
        .expect_err("a client certificate the server does not trust");
    let (_, said) = transport_failure(&err);
    assert!(said.contains("UnknownCA"), "{said}");
    assert_eq!(
        https.mock.token_requests().len(),
        0,
        "a request got through"
    );
    assert_eq!(https.front.handshakes().completed, 0);

    let client = https.client_ca.client();
    let config = https
        .trusting()
        .with_client_identity(client.cert_pem, client.key_pem.clone());
    let debug = format!("{config:?}");
    let key_body = client.key_pem.lines().nth(1).unwrap();
    assert!(!debug.contains(key_body), "{debug}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    https
        .partner(&config)
        .client_credentials(&[])
        .await
        .expect("a token over mutual TLS");
    assert_eq!(https.mock.token_requests().len(), 1);
    assert_eq!(
        https.front.handshakes(),
        Handshakes {
            completed: 1,
            failed: 2
        }
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_through_the_proxy_and_tls() {
    let https = Https::start(false).await;
    let proxy = ConnectProxy::start().await;
    let elsewhere = PartnerMock::start(MockConfig::default()).await.unwrap();
    https
        .mock
        .push_fault(Fault::Redirect(elsewhere.token_url().to_string()));
    let err = https
        .partner(&https.trusting().with_proxy(proxy.url()))
        .client_credentials(&[])
        .await
        .expect_err("a redirect is an error");
    assert_eq!(err.http_status(), Some(302), "{err:?}");
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
    assert_eq!(proxy.requests().len(), 1, "{:?}", proxy.requests());
}

#[tokio::test]
async fn the_body_cap_holds_through_the_proxy_and_tls() {
    let https = Https::start(false).await;
    let proxy = ConnectProxy::start().await;
    let config = https
        .trusting()
        .with_proxy(proxy.url())
        .with_max_response_bytes(4096);
    let partner = https.partner(&config);
    let body = |len: usize| format!(r#"{{"pad":"{}"}}"#, "x".repeat(len));
    https.mock.push_fault(Fault::StatusWithBody {
        status: 200,
        content_type: "application/json".into(),
        body: body(4096),
    });
    let err = partner
        .client_credentials(&[])
        .await
        .expect_err("over the cap");
    assert_eq!(
        transport_failure(&err).0,
        TransportErrorKind::ResponseTooLarge
    );
    // Just under the cap is read (and refused as a token, but not as a size).
    https.mock.push_fault(Fault::StatusWithBody {
        status: 200,
        content_type: "application/json".into(),
        body: body(4000),
    });
    let err = partner
        .client_credentials(&[])
        .await
        .expect_err("no token in it");
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
    assert_eq!(proxy.requests().len(), 1, "one tunnel, kept alive");
}

/// Unusable certificates and keys are configuration errors naming the
/// setting, quoting no key material.
#[test]
fn unusable_certificates_and_keys_are_configuration_errors() {
    let ca = Authority::new("CA");
    let (client, other) = (ca.client(), ca.client());
    let key_lines: Vec<&str> = client
        .key_pem
        .lines()
        .chain(other.key_pem.lines())
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let cases: Vec<(&str, HttpConfig, &str)> = vec![
        (
            "a key that is not the certificate's",
            base().with_client_identity(client.cert_pem.clone(), other.key_pem.clone()),
            "the client identity is not usable (a key that does not match the certificate",
        ),
        (
            "the certificate given as the key",
            base().with_client_identity(client.cert_pem.clone(), client.cert_pem.clone()),
            "holds no private key",
        ),
        (
            "the key given as the certificate",
            base().with_client_identity(client.key_pem.clone(), client.key_pem.clone()),
            "client certificate chain PEM holds a private key",
        ),
        (
            "a key as a root",
            base().with_root_certificate(client.key_pem.clone()),
            "root certificate PEM holds a private key",
        ),
        (
            "two keys",
            base().with_client_identity(
                client.cert_pem.clone(),
                format!("{}{}", client.key_pem, other.key_pem),
            ),
            "holds 2 private keys",
        ),
        (
            "a damaged key",
            base().with_client_identity(
                client.cert_pem.clone(),
                client.key_pem.replace(key_lines[1], "AAAA"),
            ),
            "client identity",
        ),
        (
            "a truncated key",
            base().with_client_identity(
                client.cert_pem.clone(),
                client
                    .key_pem
                    .lines()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            "client private key PEM is not valid PEM",
        ),
    ];
    for (case, config, expected) in cases {
        let err = ProviderSettings::with_http_config(&config).expect_err(case);
        assert!(
            matches!(err, Error::Configuration { .. }),
            "{case}: {err:?}"
        );
        let said = said(&err);
        assert!(said.contains(expected), "{case}: {said}");
        for line in &key_lines {
            assert!(!said.contains(line), "{case} quotes key material: {said}");
        }
    }
}

/// The https-only rule for token endpoints (loopback excepted) holds
/// whatever the connectivity settings: with a proxy, extra roots and a
/// client identity configured, a plain-http endpoint elsewhere is still a
/// configuration error for every adapter, and nothing reaches the proxy.
#[tokio::test]
async fn token_endpoints_stay_https_only_with_a_proxy_and_custom_roots() {
    use oauth2_adapters::hike::Hike;
    use oauth2_adapters::hypersku::HyperSku;
    use oauth2_adapters::{ClientCredentials, StandardProvider};

    let proxy = ConnectProxy::start().await;
    let (server_ca, client) = (
        Authority::new("server CA"),
        Authority::new("client CA").client(),
    );
    let config = HttpConfig::default()
        .with_proxy(proxy.url())
        .with_root_certificate(server_ca.cert_pem())
        .with_client_identity(client.cert_pem, client.key_pem);
    let settings = || ProviderSettings::with_http_config(&config).expect("the client builds");
    let creds = || ClientCredentials::new("client", "secret");
    let build = |base: &str| -> [(&str, Result<(), Error>); 4] {
        [
            (
                "HyperSKU",
                HyperSku::builder(creds())
                    .base_url(base)
                    .settings(settings())
                    .build()
                    .map(drop),
            ),
            (
                "Hike",
                Hike::builder(creds())
                    .base_url(base)
                    .settings(settings())
                    .build()
                    .map(drop),
            ),
            (
                "partner",
                Partner::builder(creds())
                    .base_url(base)
                    .settings(settings())
                    .build()
                    .map(drop),
            ),
            (
                "standard",
                StandardProvider::builder("standard")
                    .authorize_url(format!("{base}/authorize"))
                    .token_url(format!("{base}/token"))
                    .settings(settings())
                    .build(creds())
                    .map(drop),
            ),
        ]
    };
    for base in ["http://api.example.com", "http://10.0.0.1"] {
        for (adapter, result) in build(base) {
            assert!(
                matches!(result, Err(Error::Configuration { .. })),
                "{adapter} accepted {base} with a proxy and custom roots: {result:?}"
            );
        }
    }
    for (adapter, result) in build("https://api.example.com") {
        assert!(result.is_ok(), "{adapter}: {result:?}");
    }
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}
