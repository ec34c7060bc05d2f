//! Driving the `connect` example's app over HTTP, as a browser (or an
//! attacker with curl) would: two instances sharing one session file and
//! one token file, the session cookie, the Connect form and the callback.
//! Used by `connect.rs` (no browser) and `browser.rs`.

// Each test crate that includes this module uses part of it.
#![allow(dead_code)]

pub mod balancer;
pub mod sibling;

use std::path::Path;

use oauth2_adapters::testkit::MockServer as _;
use oauth2_adapters_examples::connect::{ConnectApp, Options, ProviderChoice};
use reqwest::header::{self, HeaderMap};
use reqwest::{Response, StatusCode};
use url::Url;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The session cookie's name.
pub const COOKIE: &str = "connect_session";

/// Two instances of the app behind one public URL, sharing the session and
/// token files under `dir` and the first one's mock providers.
pub struct Pair {
    pub one: ConnectApp,
    pub two: ConnectApp,
}

impl Pair {
    /// Starts both. The mocks (started by the first) send browsers back to
    /// `public_url`.
    pub async fn start(public_url: &Url, app_name: &str, dir: &Path) -> TestResult<Self> {
        let options = |providers| Options {
            port: 0,
            public_url: Some(public_url.clone()),
            db: Some(dir.join("tokens.sqlite")),
            sessions: Some(dir.join("sessions.sqlite")),
            providers,
            app_name: app_name.to_owned(),
        };
        let one = ConnectApp::start(options(ProviderChoice::StartMocks)).await?;
        let mocks = one.mocks().ok_or("the first instance started no mocks")?;
        let at_mocks = ProviderChoice::MocksAt {
            hypersku: mocks.hypersku.base_url(),
            hike: mocks.hike.base_url(),
        };
        let two = ConnectApp::start(options(at_mocks)).await?;
        Ok(Self { one, two })
    }

    pub async fn shutdown(self) {
        self.two.shutdown().await;
        self.one.shutdown().await;
    }
}

/// An HTTP client that follows no redirect and uses no proxy.
pub fn http() -> TestResult<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()?)
}

/// `origin` of `url` as browsers send it in `Origin`.
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// `POST /connect/<slug>` at `instance`, with these `Origin` and cookie.
pub async fn connect(
    client: &reqwest::Client,
    instance: &Url,
    slug: &str,
    origin: Option<&str>,
    cookie: Option<&str>,
) -> TestResult<Response> {
    let mut request = client.post(instance.join(&format!("connect/{slug}"))?);
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, format!("{COOKIE}={cookie}"));
    }
    Ok(request.send().await?)
}

/// A sign-in started: the session cookie and the provider's authorize URL.
pub struct Started {
    pub cookie: String,
    pub authorize_url: Url,
}

impl Started {
    /// The state the authorize URL carries.
    pub fn state(&self) -> TestResult<String> {
        query_value(&self.authorize_url, "state")
            .ok_or_else(|| format!("no state in {}", self.authorize_url).into())
    }
}

/// Starts a sign-in to `slug` at `instance` as the app's own page would
/// (`Origin` of the public URL): a 303 to the provider and a session cookie.
pub async fn start(
    client: &reqwest::Client,
    instance: &Url,
    public: &Url,
    slug: &str,
    cookie: Option<&str>,
) -> TestResult<Started> {
    let response = connect(client, instance, slug, Some(&origin(public)), cookie).await?;
    if response.status() != StatusCode::SEE_OTHER {
        return Err(format!("POST /connect/{slug}: {}", response.status()).into());
    }
    let cookie = set_cookie(response.headers())
        .and_then(|c| cookie_value(&c))
        .ok_or("no session cookie set")?;
    let authorize_url = Url::parse(location(&response)?)?;
    Ok(Started {
        cookie,
        authorize_url,
    })
}

/// `GET /callback/<slug>?<query>` at `instance` with `cookie`: where it
/// redirects to, and the `Set-Cookie` it sent, if any.
pub async fn callback(
    client: &reqwest::Client,
    instance: &Url,
    slug: &str,
    query: &str,
    cookie: Option<&str>,
) -> TestResult<(String, Option<String>)> {
    let mut url = instance.join(&format!("callback/{slug}"))?;
    url.set_query(Some(query));
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, format!("{COOKIE}={cookie}"));
    }
    let response = request.send().await?;
    let to = location(&response)?.to_owned();
    Ok((to, set_cookie(response.headers())))
}

/// The provider's redirect back (from the mock's `approve`) re-aimed at
/// `instance`: what a load balancer does with it.
pub fn at_instance(redirect: &Url, instance: &Url) -> TestResult<Url> {
    let mut url = instance.join(redirect.path().trim_start_matches('/'))?;
    url.set_query(redirect.query());
    Ok(url)
}

/// The `Location` of a redirect.
pub fn location(response: &Response) -> TestResult<&str> {
    Ok(response
        .headers()
        .get(header::LOCATION)
        .ok_or_else(|| format!("{} without a Location", response.status()))?
        .to_str()?)
}

/// The session cookie's `Set-Cookie` header, if one was sent.
pub fn set_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{COOKIE}=")))
        .map(str::to_owned)
}

/// The value in a `Set-Cookie` header (`None` for a removal).
pub fn cookie_value(set_cookie: &str) -> Option<String> {
    let value = set_cookie
        .strip_prefix(&format!("{COOKIE}="))?
        .split(';')
        .next()?;
    (!value.is_empty()).then(|| value.to_owned())
}

/// The attributes of a `Set-Cookie` header, lower-cased (`httponly`,
/// `samesite=lax`, `secure`, `path=/`, …).
pub fn cookie_attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|attribute| attribute.trim().to_ascii_lowercase())
        .collect()
}

/// The value of query parameter `name`.
pub fn query_value(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `POST /connect/<slug>` at `instance` `count` times without a cookie,
/// `in_flight` at a time, each with the app's `Origin` (curl can send
/// any): each must start a sign-in (303).
pub async fn flood(
    client: &reqwest::Client,
    instance: &Url,
    public: &Url,
    slug: &str,
    count: usize,
    in_flight: usize,
) -> TestResult {
    let origin = origin(public);
    let mut started = 0;
    while started < count {
        let batch = in_flight.min(count - started);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..batch {
            let (client, instance, origin, slug) = (
                client.clone(),
                instance.clone(),
                origin.clone(),
                slug.to_owned(),
            );
            tasks.spawn(async move {
                connect(&client, &instance, &slug, Some(&origin), None)
                    .await
                    .map(|response| response.status())
            });
        }
        while let Some(status) = tasks.join_next().await {
            let status = status??;
            if status != StatusCode::SEE_OTHER {
                return Err(format!("a cookie-less POST got {status}").into());
            }
        }
        started += batch;
    }
    Ok(())
}
