//! [`HttpConfig`]: the token-endpoint client's settings, and how they are
//! checked and applied to a `reqwest` client builder.

use std::fmt;
use std::io::Cursor;
use std::time::Duration;

use rustls_pki_types::pem::{self, SectionKind};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use url::Url;

use crate::error::{Error, Result};

/// Settings of the token-endpoint HTTP client, given to
/// [`ProviderSettings::with_http_config`](crate::ProviderSettings::with_http_config) (or
/// [`HttpClient::new`](crate::adapter::HttpClient::new)).
///
/// Start from `HttpConfig::default()` and chain the `with_*` setters:
///
/// ```
/// use std::time::Duration;
/// use oauth2_adapters::{ProviderSettings, HttpConfig};
///
/// # fn run(ca_pem: Vec<u8>, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> oauth2_adapters::Result<()> {
/// let config = HttpConfig::default()
///     .with_timeout(Duration::from_secs(10))
///     .with_user_agent("my-app/1.2")
///     .with_proxy("http://proxy.internal:3128")
///     .with_root_certificate(ca_pem)
///     .with_client_identity(cert_pem, key_pem);
/// let context = ProviderSettings::with_http_config(&config)?; // checks the proxy URL and the PEM
/// # let _ = context; Ok(()) }
/// ```
///
/// The setters only record; the client is built, and every setting
/// checked, by `ProviderSettings::with_http_config`: a proxy URL that does not
/// parse, PEM that holds no certificate or no usable private key, or a key
/// that does not match its certificate is an
/// [`Error::Configuration`] there, naming the setting and never quoting
/// key material or a proxy password.
///
/// Whatever is set, the client's safety rules hold: redirects are never
/// followed, a response body is read up to
/// [`max_response_bytes`](HttpConfig::max_response_bytes) only, and plain
/// `http` requests (which adapters allow to loopback addresses only) never
/// go through a proxy.
///
/// `Debug` shows the settings without secrets: a proxy URL's credentials
/// and the client identity's private key are redacted.
#[non_exhaustive]
#[derive(Clone)]
pub struct HttpConfig {
    /// Time allowed to establish a connection (default 10 s).
    pub connect_timeout: Duration,
    /// Time allowed for the whole request, body included (default 30 s).
    pub timeout: Duration,
    /// Largest response body accepted, in bytes (default 256 KiB): token
    /// responses are small, and an endless body must not exhaust memory.
    pub max_response_bytes: usize,
    /// The `User-Agent` header (default `oauth2-adapters/<version>`); see
    /// [`HttpConfig::with_user_agent`].
    pub user_agent: String,
    proxy: ProxySetting,
    proxy_bypass: Option<String>,
    root_certificates: Vec<Vec<u8>>,
    client_identity: Option<ClientIdentity>,
}

/// Where `https` requests go.
#[derive(Clone)]
enum ProxySetting {
    /// `HTTPS_PROXY` (or `ALL_PROXY`) from the environment, if set, with
    /// `NO_PROXY`.
    Environment,
    /// Straight to the server.
    Direct,
    /// Through this proxy (the URL may hold credentials).
    Url(SecretString),
}

/// A client certificate chain and its private key, as PEM.
#[derive(Clone)]
struct ClientIdentity {
    certificate_chain_pem: Vec<u8>,
    private_key_pem: SecretSlice<u8>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_response_bytes: 256 * 1024,
            user_agent: concat!("oauth2-adapters/", env!("CARGO_PKG_VERSION")).to_owned(),
            proxy: ProxySetting::Environment,
            proxy_bypass: None,
            root_certificates: Vec::new(),
            client_identity: None,
        }
    }
}

impl HttpConfig {
    /// Sets [`HttpConfig::connect_timeout`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`HttpConfig::timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`HttpConfig::max_response_bytes`].
    pub fn with_max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// Sets the `User-Agent` header of every token request
    /// ([`HttpConfig::user_agent`]). It must be a valid header value
    /// (visible ASCII, spaces and tabs).
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Sends `https` requests through this HTTP proxy (`http://host:port`,
    /// or `https://` for TLS to the proxy itself), as `CONNECT` tunnels:
    /// TLS runs end to end with the token endpoint, so the proxy sees the
    /// host and port, never the request. Credentials in the URL
    /// (`http://user:password@host:port`) are sent to the proxy as basic
    /// authentication (in clear text to an `http://` proxy) and are
    /// redacted from `Debug`.
    ///
    /// Plain `http` requests (loopback endpoints) never use the proxy, so
    /// credentials meant for this machine do not leave it. Without this
    /// setter the environment decides: `HTTPS_PROXY`, else `ALL_PROXY`
    /// (or their lower-case forms), with `NO_PROXY`; `HTTP_PROXY` is never
    /// used. SOCKS proxies are not supported.
    pub fn with_proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = ProxySetting::Url(SecretString::from(url.into()));
        self
    }

    /// Hosts reached directly, bypassing the proxy (of
    /// [`HttpConfig::with_proxy`] or of the environment), in the `NO_PROXY`
    /// syntax: comma-separated domain names (each also matching its
    /// subdomains), IP addresses or CIDR ranges, or `*` for every host.
    /// Replaces the environment's `NO_PROXY`.
    pub fn with_proxy_bypass(mut self, hosts: impl Into<String>) -> Self {
        self.proxy_bypass = Some(hosts.into());
        self
    }

    /// Connects to token endpoints directly: no proxy, whatever the
    /// environment says.
    pub fn without_proxy(mut self) -> Self {
        self.proxy = ProxySetting::Direct;
        self
    }

    /// Trusts the certificates of this PEM (one or several `CERTIFICATE`
    /// blocks, e.g. a private CA) as roots for token endpoints, besides the
    /// platform's trusted roots, which stay trusted. May be called again to
    /// add more.
    pub fn with_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Authenticates this client to token endpoints that ask for a client
    /// certificate (mutual TLS): `certificate_chain_pem` holds the client's
    /// certificate first, then any intermediates; `private_key_pem` holds
    /// its unencrypted private key (`PRIVATE KEY` (PKCS #8), `RSA PRIVATE
    /// KEY` or `EC PRIVATE KEY`). The key is kept as a secret: zeroed when
    /// dropped, never shown by `Debug`. Replaces an earlier identity.
    pub fn with_client_identity(
        mut self,
        certificate_chain_pem: impl Into<Vec<u8>>,
        private_key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_identity = Some(ClientIdentity {
            certificate_chain_pem: certificate_chain_pem.into(),
            private_key_pem: SecretSlice::from(private_key_pem.into()),
        });
        self
    }

    /// Which TLS setting keeps the client from building, when removing it
    /// alone lets `builds` succeed.
    pub(super) fn unusable_setting(&self, builds: impl Fn(&Self) -> bool) -> Option<&'static str> {
        if self.client_identity.is_some()
            && builds(&Self {
                client_identity: None,
                ..self.clone()
            })
        {
            return Some(
                "the client identity is not usable (a key that does not match the \
                 certificate, or not an RSA, ECDSA or Ed25519 key)",
            );
        }
        if !self.root_certificates.is_empty()
            && builds(&Self {
                root_certificates: Vec::new(),
                ..self.clone()
            })
        {
            return Some("a root certificate is not usable (not a valid X.509 certificate)");
        }
        None
    }

    /// Applies the user agent, the proxy and the TLS settings to `builder`,
    /// checking each.
    pub(super) fn configure(
        &self,
        builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder> {
        let user_agent = http::HeaderValue::from_str(&self.user_agent).map_err(|_| {
            Error::configuration("the user agent is not a valid header value (visible ASCII only)")
        })?;
        let mut builder = self.configure_proxy(builder.user_agent(user_agent))?;
        let mut roots = Vec::new();
        for pem in &self.root_certificates {
            for der in certificates("a root certificate PEM", pem)? {
                roots.push(reqwest::Certificate::from_der(&der).map_err(|_| {
                    Error::configuration("a root certificate PEM holds an unusable certificate")
                })?);
            }
        }
        if !roots.is_empty() {
            builder = builder.tls_certs_merge(roots);
        }
        if let Some(identity) = &self.client_identity {
            builder = builder.identity(identity.to_reqwest()?);
        }
        Ok(builder)
    }

    fn configure_proxy(&self, builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder> {
        // Every branch replaces reqwest's own environment proxies, which
        // would also send plain-http (loopback) requests to `HTTP_PROXY`.
        let (url, what) = match &self.proxy {
            ProxySetting::Direct => return Ok(builder.no_proxy()),
            ProxySetting::Url(url) => (url.expose_secret().to_owned(), "the proxy URL"),
            ProxySetting::Environment => {
                let found = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
                    .into_iter()
                    .find_map(|name| {
                        std::env::var(name)
                            .ok()
                            .filter(|value| !value.trim().is_empty())
                            .map(|value| (value, name))
                    });
                match found {
                    Some((value, name)) => (value, name),
                    None => return Ok(builder.no_proxy()),
                }
            }
        };
        let url = Zeroizing::new(url);
        let parsed = check_proxy_url(what, url.trim())?;
        let proxy = reqwest::Proxy::https(parsed.as_str())
            .map_err(|_| Error::configuration(format!("{what} is not a usable proxy URL")))?;
        let bypass = match (&self.proxy_bypass, &self.proxy) {
            (Some(hosts), _) => reqwest::NoProxy::from_string(hosts),
            (None, ProxySetting::Environment) => reqwest::NoProxy::from_env(),
            (None, _) => None,
        };
        Ok(builder.proxy(proxy.no_proxy(bypass)))
    }
}

/// Parses a proxy URL: `http` or `https`, with a host. Errors name `what`
/// and never quote the URL (it may hold a password).
fn check_proxy_url(what: &str, url: &str) -> Result<Url> {
    let parsed = Url::parse(url)
        .map_err(|e| Error::configuration(format!("{what} is not a valid URL: {e}")))?;
    match parsed.scheme() {
        "http" | "https" => {}
        scheme => {
            return Err(Error::configuration(format!(
                "{what} must use http or https, not {scheme} (SOCKS is not supported)"
            )))
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Error::configuration(format!("{what} has no host")));
    }
    Ok(parsed)
}

/// The DER of every `CERTIFICATE` block of `pem`: at least one, and no
/// private key (a sign that a key file was passed by mistake).
fn certificates(what: &str, pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut found = Vec::new();
    for (kind, der) in sections(what, pem)? {
        match kind {
            SectionKind::Certificate => found.push(der.to_vec()),
            kind if is_private_key(kind) => {
                return Err(Error::configuration(format!(
                    "{what} holds a private key; it must hold certificates only"
                )))
            }
            _ => {}
        }
    }
    if found.is_empty() {
        return Err(Error::configuration(format!(
            "{what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(found)
}

/// Every PEM block of `pem` we know, its DER zeroed when dropped (it may be
/// a key). Errors never quote the input.
fn sections(what: &str, pem: &[u8]) -> Result<Vec<(SectionKind, Zeroizing<Vec<u8>>)>> {
    let mut reader = Cursor::new(pem);
    let mut found = Vec::new();
    loop {
        match pem::from_buf(&mut reader) {
            Ok(Some((kind, der))) => found.push((kind, Zeroizing::new(der))),
            Ok(None) => return Ok(found),
            Err(_) => {
                return Err(Error::configuration(format!(
                    "{what} is not valid PEM (a block is unterminated or not base64)"
                )))
            }
        }
    }
}

fn is_private_key(kind: SectionKind) -> bool {
    matches!(
        kind,
        SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
    )
}

impl ClientIdentity {
    /// Checks both PEMs and gives reqwest their concatenation. Whether the
    /// key matches the certificate is checked when the client is built.
    fn to_reqwest(&self) -> Result<reqwest::Identity> {
        let chain = &self.certificate_chain_pem;
        certificates("the client certificate chain PEM", chain)?;
        let key = self.private_key_pem.expose_secret();
        let what = "the client private key PEM";
        let keys = sections(what, key)?
            .into_iter()
            .filter(|(kind, _)| is_private_key(*kind))
            .count();
        if keys != 1 {
            let encrypted = key
                .windows(b"ENCRYPTED PRIVATE KEY".len())
                .any(|w| w == b"ENCRYPTED PRIVATE KEY");
            return Err(Error::configuration(if encrypted {
                format!("{what} holds an encrypted key; decrypt it first")
            } else if keys == 0 {
                format!(
                    "{what} holds no private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
                )
            } else {
                format!("{what} holds {keys} private keys; it must hold one")
            }));
        }
        let mut both = Zeroizing::new(Vec::with_capacity(chain.len() + key.len() + 1));
        both.extend_from_slice(chain);
        both.push(b'\n');
        both.extend_from_slice(key);
        reqwest::Identity::from_pem(&both)
            .map_err(|_| Error::configuration("the client identity PEM is not usable"))
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("user_agent", &self.user_agent)
            .field("proxy", &self.proxy)
            .field("proxy_bypass", &self.proxy_bypass)
            .field("root_certificates", &self.root_certificates.len())
            .field("client_identity", &self.client_identity)
            .finish()
    }
}

impl fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => f.write_str("Environment"),
            Self::Direct => f.write_str("Direct"),
            Self::Url(url) => match Url::parse(url.expose_secret().trim()) {
                Ok(url) => {
                    let credentials = if url.username().is_empty() && url.password().is_none() {
                        ""
                    } else {
                        "[credentials]@"
                    };
                    let host = url.host_str().unwrap_or("");
                    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
                    write!(f, "Url({}://{credentials}{host}{port})", url.scheme())
                }
                Err(_) => f.write_str("Url([not a valid URL])"),
            },
        }
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field(
                "certificate_chain_pem_len",
                &self.certificate_chain_pem.len(),
            )
            .field("private_key_pem", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpClient;

    const SECRET: &str = "pw-sekrit-41";

    /// The configuration error building a client with `config` gives.
    fn refused(config: HttpConfig) -> String {
        match HttpClient::new(&config) {
            Err(err @ Error::Configuration { .. }) => err.to_string(),
            other => panic!("not a configuration error: {other:?}"),
        }
    }

    #[test]
    fn the_defaults_build_and_debug_shows_every_setting() {
        let config = HttpConfig::default();
        HttpClient::new(&config).unwrap();
        let debug = format!("{config:?}");
        for field in [
            "connect_timeout: 10s",
            "timeout: 30s",
            "max_response_bytes: 262144",
            "user_agent: \"oauth2-adapters/",
            "proxy: Environment",
            "proxy_bypass: None",
            "root_certificates: 0",
            "client_identity: None",
        ] {
            assert!(debug.contains(field), "{field} missing from {debug}");
        }
        let direct = format!("{:?}", HttpConfig::default().without_proxy());
        assert!(direct.contains("proxy: Direct"), "{direct}");
    }

    #[test]
    fn proxy_urls_are_checked_without_quoting_them() {
        for (url, expected) in [
            (
                format!("socks5://ops:{SECRET}@127.0.0.1:1080"),
                "not socks5 (SOCKS is not supported)",
            ),
            (
                format!("ftp://ops:{SECRET}@proxy.internal"),
                "must use http or https",
            ),
            (
                format!("http://ops:{SECRET}@"),
                "the proxy URL is not a valid URL: empty host",
            ),
            (format!("proxy.internal:3128 {SECRET}"), "the proxy URL"),
            (
                format!("http://ops:{SECRET}@[::1"),
                "the proxy URL is not a valid URL",
            ),
        ] {
            let config = HttpConfig::default().with_proxy(url.clone());
            let said = refused(config.clone());
            assert!(said.contains(expected), "{url}: {said}");
            assert!(!said.contains(SECRET), "{url}: {said}");
            let debug = format!("{config:?}");
            assert!(!debug.contains(SECRET), "{url}: {debug}");
        }
        let config = HttpConfig::default().with_proxy(format!("http://ops:{SECRET}@proxy:3128"));
        HttpClient::new(&config).unwrap();
        let debug = format!("{config:?}");
        assert!(
            debug.contains("proxy: Url(http://[credentials]@proxy:3128)"),
            "{debug}"
        );
        assert!(!debug.contains("ops"), "{debug}");
        let config = HttpConfig::default().with_proxy("https://proxy.internal");
        assert!(format!("{config:?}").contains("proxy: Url(https://proxy.internal)"));
        HttpClient::new(&config).unwrap();
    }

    #[test]
    fn a_user_agent_must_be_a_header_value() {
        let said = refused(HttpConfig::default().with_user_agent("app/1\r\nX-Injected: 1"));
        assert!(
            said.contains("the user agent is not a valid header value"),
            "{said}"
        );
        HttpClient::new(&HttpConfig::default().with_user_agent("app/1.0 (+ops@example.com)"))
            .unwrap();
    }

    #[test]
    fn root_certificates_must_be_pem_certificates() {
        for (pem, expected) in [
            ("", "a root certificate PEM holds no PEM certificate"),
            ("not PEM at all", "holds no PEM certificate"),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                "holds no PEM certificate",
            ),
            (
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                "a root certificate PEM is not valid PEM",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n",
                "a root certificate PEM is not valid PEM",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "a root certificate is not usable (not a valid X.509 certificate): \
                 invalid peer certificate: BadEncoding",
            ),
        ] {
            let said = refused(HttpConfig::default().with_root_certificate(pem));
            assert!(said.contains(expected), "{pem:?}: {said}");
        }
    }

    #[test]
    fn client_keys_must_be_one_unencrypted_pem_key_and_are_never_shown() {
        let key = format!("-----BEGIN PRIVATE KEY-----\n{SECRET}AAAA\n-----END PRIVATE KEY-----\n");
        let config = HttpConfig::default().with_client_identity("cert", key.clone());
        let debug = format!("{config:?}");
        assert!(
            !debug.contains(SECRET) && !debug.contains("PRIVATE"),
            "{debug}"
        );
        assert!(debug.contains("private_key_pem: \"[redacted]\""), "{debug}");

        let encrypted = format!(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{SECRET}\n-----END ENCRYPTED PRIVATE KEY-----\n"
        );
        let said = refused(HttpConfig::default().with_client_identity(CERT, encrypted));
        assert!(
            said.contains("holds an encrypted key; decrypt it first"),
            "{said}"
        );
        assert!(!said.contains(SECRET), "{said}");
        // The chain is checked first: no certificate in it.
        let said = refused(HttpConfig::default().with_client_identity("", key.clone()));
        assert!(
            said.contains("the client certificate chain PEM holds no PEM certificate"),
            "{said}"
        );
        // Not base64: refused without echoing the offending line.
        let said = refused(HttpConfig::default().with_client_identity(CERT, key));
        assert!(
            said.contains("the client private key PEM is not valid PEM"),
            "{said}"
        );
        assert!(!said.contains(SECRET), "{said}");
    }

    /// A syntactically valid PEM certificate block (its DER is not checked
    /// before the key).
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
}
