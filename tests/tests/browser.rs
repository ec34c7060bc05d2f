//! End to end in a real browser: two instances of the `connect` example's
//! app behind a small load balancer (one public URL), sharing one session
//! file and one token file, and the testkit's HyperSKU and Hike mocks, all
//! started in-process on 127.0.0.1, driven by headless Chromium through
//! chromedriver (WebDriver, via fantoccini).
//!
//! ```text
//! cargo test -p oauth2-adapters-tests --test browser -- --nocapture
//! ```
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver`
//! (`apt-get install -y chromium chromium-driver`). Without them the test
//! prints a skip message and passes, except under `CI=true`, where it fails.
//!
//! It drives: (a) Connect HyperSKU → the consent page (app name, scope) →
//! Allow → the account listed, and no issued token anywhere in the page;
//! (b) the same for Hike; (c) Connect → Deny → "You declined access";
//! (d) a consent URL with its `state` altered → Allow → rejected with the
//! state-mismatch message, the account list unchanged; (e) a sign-in
//! started on instance 1 and completed on instance 2 (the balancer switched
//! between consent and Allow), while the attacks on it fail: a session id
//! planted in the browser is replaced when the sign-in starts (and no
//! longer names a session), 1,100 cookie-less `POST /connect/hike` do not
//! push it out, cross-site links to the callback with a bogus state or a
//! forged denial do not cancel it, and after it the session id changes
//! again; (f) a form on another site posting to `/connect/hike` is refused
//! (403, no sign-in, no cookie). A screenshot of each step is saved to
//! `target/e2e-screenshots/<step>.png`. The `Secure` flag behind https is
//! checked without a browser, in `connect.rs`.

use std::error::Error as StdError;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fantoccini::{Client, ClientBuilder, Locator};
use oauth2_adapters::TokenStore;
use serde_json::json;
use url::Url;

mod connect_app;

use connect_app::balancer::Balancer;
use connect_app::sibling::Sibling;
use connect_app::{callback, flood, http, start, Pair, COOKIE};

type TestResult<T = ()> = Result<T, Box<dyn StdError + Send + Sync>>;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The app name the mocks' consent pages must show.
const APP_NAME: &str = "Browser Test App";
/// How long one page may take to show an expected element.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long chromedriver may take to listen.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the whole walk through may take.
const WHOLE_TEST_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_connects_accounts_in_a_real_browser() -> TestResult {
    if !browser_installed()? {
        return Ok(());
    }
    let started = Instant::now();
    let driver = Chromedriver::start()?;
    let balancer = Arc::new(Balancer::start().await?);
    let dir = tempfile::tempdir()?;
    let pair = Pair::start(balancer.url(), APP_NAME, dir.path()).await?;
    balancer.send_to(pair.one.local_url())?;
    let client = open_browser(&driver).await?;
    let ready = started.elapsed();

    // The walk runs on its own task: a panic or a time-out there still
    // reaches the clean-up below.
    let rig = Rig {
        public: balancer.url().clone(),
        one: pair.one.local_url().clone(),
        two: pair.two.local_url().clone(),
        balancer: balancer.clone(),
        store: pair.one.store(),
    };
    let walk = tokio::spawn(walk_through(client.clone(), rig));
    let outcome = tokio::time::timeout(WHOLE_TEST_TIMEOUT, walk).await;

    let closed = client.close().await;
    pair.shutdown().await;
    drop(driver);
    match outcome {
        Err(_) => return Err(format!("the walk through took over {WHOLE_TEST_TIMEOUT:?}").into()),
        Ok(Err(join)) => return Err(format!("the walk through panicked: {join}").into()),
        Ok(Ok(result)) => result?,
    }
    closed?;
    println!(
        "browser test: done in {:.1?} (browser and apps ready in {ready:.1?})",
        started.elapsed()
    );
    Ok(())
}

/// What the walk through needs: the public URL (the balancer), each
/// instance's own URL, the balancer and the shared token store.
struct Rig {
    public: Url,
    one: Url,
    two: Url,
    balancer: Arc<Balancer>,
    store: Arc<dyn TokenStore>,
}

/// Steps (a) to (f) of the module documentation.
async fn walk_through(client: Client, rig: Rig) -> TestResult {
    let shots = Screenshots::new()?;
    let page = Page { client: &client };
    let (app_url, store) = (&rig.public, rig.store.as_ref());

    page.goto(app_url.as_str()).await?;
    page.wait_for("#connect-hypersku").await?;
    page.wait_for("#connect-hike").await?;
    ensure_contains(
        &page.text("#accounts").await?,
        "No account connected yet.",
        "home",
    )?;
    ensure_served_by(&page, &rig.one, "home").await?;
    shots.take(&client, "01-home").await?;

    // (a) HyperSKU: Connect → consent → Allow → listed.
    page.click("#connect-hypersku").await?;
    page.wait_for("#allow").await?;
    check_consent_page(&page, "HyperSKU", "oms").await?;
    shots.take(&client, "02-hypersku-consent").await?;
    page.click("#allow").await?;
    let row = page
        .wait_for("#accounts tr[data-provider='hypersku']")
        .await?;
    let row = row.text().await?;
    ensure_contains(&row, "HyperSKU", "HyperSKU row")?;
    ensure_contains(&row, "hs-user-1", "HyperSKU row (subject)")?;
    ensure_contains(&row, "oms", "HyperSKU row (scopes)")?;
    ensure_contains(
        &page.text("#notice").await?,
        "HyperSKU connected.",
        "notice",
    )?;
    ensure_clean_home_url(&client, app_url).await?;
    ensure_no_token_in_page(&client, store, 1).await?;
    ensure_session_cookie_hidden_from_scripts(&client).await?;
    shots.take(&client, "03-hypersku-connected").await?;

    // (b) Hike: the same.
    page.click("#connect-hike").await?;
    page.wait_for("#allow").await?;
    check_consent_page(&page, "Hike", "all").await?;
    shots.take(&client, "04-hike-consent").await?;
    page.click("#allow").await?;
    let row = page.wait_for("#accounts tr[data-provider='hike']").await?;
    let row = row.text().await?;
    ensure_contains(&row, "Hike", "Hike row")?;
    ensure_contains(&row, "all", "Hike row (scopes)")?;
    ensure_clean_home_url(&client, app_url).await?;
    ensure_no_token_in_page(&client, store, 2).await?;
    shots.take(&client, "05-hike-connected").await?;
    let accounts = page.text("#accounts").await?;

    // (c) Connect → Deny → a clear message, nothing added.
    page.click("#connect-hypersku").await?;
    page.wait_for("#deny").await?;
    page.click("#deny").await?;
    let error = page.wait_for("#error").await?.text().await?;
    ensure_contains(&error, "You declined access to HyperSKU", "deny message")?;
    ensure_no_query(&client, "after Deny").await?;
    shots.take(&client, "06-hypersku-denied").await?;
    page.goto(app_url.as_str()).await?;
    ensure_same(
        &page.text("#accounts").await?,
        &accounts,
        "accounts after Deny",
    )?;

    // (d) A consent URL whose state was altered → rejected, nothing added.
    page.click("#connect-hike").await?;
    page.wait_for("#allow").await?;
    let tampered = with_altered_state(&client.current_url().await?)?;
    page.goto(tampered.as_str()).await?;
    page.wait_for("#allow").await?;
    page.click("#allow").await?;
    let error = page.wait_for("#error").await?.text().await?;
    ensure_contains(
        &error,
        "This sign-in link is not valid (state mismatch)",
        "tampered state message",
    )?;
    ensure_no_query(&client, "after the tampered state").await?;
    shots.take(&client, "07-hike-state-tampered").await?;
    page.goto(app_url.as_str()).await?;
    ensure_same(
        &page.text("#accounts").await?,
        &accounts,
        "accounts after the tampered state",
    )?;
    ensure_stored(store, 2).await?;
    shots.take(&client, "08-home-unchanged").await?;

    across_instances_under_attack(&client, &rig, &shots).await?;
    cross_site_form_refused(&client, &rig, &shots).await
}

/// (e): a sign-in started on instance 1 and completed on instance 2,
/// through every attack of the module documentation.
async fn across_instances_under_attack(
    client: &Client,
    rig: &Rig,
    shots: &Screenshots,
) -> TestResult {
    let page = Page { client };
    let curl = http()?;

    // An attacker's own session (with a HyperSKU sign-in whose state they
    // know), planted in the victim's browser.
    let attacker = start(&curl, &rig.one, &rig.public, "hypersku", None).await?;
    let sibling = Sibling::start(format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
        attacker.cookie
    ))
    .await?;
    page.goto(sibling.url().as_str()).await?;
    page.wait_for("#planted").await?;
    let planted = session_cookie_value(client).await;
    if planted.as_deref() != Some(attacker.cookie.as_str()) {
        return Err(format!("the session id was not planted: {planted:?}").into());
    }
    page.goto(rig.public.as_str()).await?;

    // The victim connects Hike on instance 1: the planted id is replaced,
    // and no longer names a session.
    page.click("#connect-hike").await?;
    page.wait_for("#allow").await?;
    let consent = client.current_url().await?;
    let during = client.get_named_cookie(COOKIE).await?.value().to_owned();
    if during == attacker.cookie {
        return Err("the planted session id was kept when the sign-in started".into());
    }
    let attacker_callback = format!("code=stolen&state={}", attacker.state()?);
    let (to, _) = callback(
        &curl,
        &rig.one,
        "hypersku",
        &attacker_callback,
        Some(&attacker.cookie),
    )
    .await?;
    ensure_same(
        &to,
        "/error/hypersku/not-in-progress",
        "the planted id after Connect",
    )?;

    // 1,100 cookie-less sign-ins do not push the victim's out.
    let flooded = Instant::now();
    flood(&curl, &rig.one, &rig.public, "hike", 1_100, 16).await?;
    println!(
        "browser test: 1,100 cookie-less POSTs in {:.1?}",
        flooded.elapsed()
    );

    // From here the balancer sends everything to instance 2.
    rig.balancer.send_to(&rig.two)?;

    // Cross-site links to the callback (top-level navigations carry the
    // Lax cookie): a bogus state, then a forged denial. Neither cancels it.
    page.goto(
        rig.public
            .join("callback/hike?code=forged&state=bogus")?
            .as_str(),
    )
    .await?;
    let error = page.wait_for("#error").await?.text().await?;
    ensure_contains(&error, "(state mismatch)", "bogus-state callback")?;
    ensure_served_by(&page, &rig.two, "bogus-state callback").await?;
    shots.take(client, "09-bogus-state-on-instance-2").await?;
    page.goto(
        rig.public
            .join("callback/hike?error=access_denied")?
            .as_str(),
    )
    .await?;
    let error = page.wait_for("#error").await?.text().await?;
    ensure_contains(&error, "You declined access to Hike", "forged denial")?;

    // The victim's consent page, still open: Allow → connected, by instance 2.
    page.goto(consent.as_str()).await?;
    page.wait_for("#allow").await?;
    page.click("#allow").await?;
    let notice = page.wait_for("#notice").await?.text().await?;
    ensure_contains(
        &notice,
        "Hike connected.",
        "sign-in completed on instance 2",
    )?;
    ensure_served_by(&page, &rig.two, "home after the sign-in").await?;
    ensure_clean_home_url(client, &rig.public).await?;
    ensure_stored(rig.store.as_ref(), 3).await?;
    ensure_no_token_in_page(client, rig.store.as_ref(), 3).await?;
    shots
        .take(client, "10-hike-connected-on-instance-2")
        .await?;

    // The session id changed again, and the old one names nothing.
    if let Ok(after) = client.get_named_cookie(COOKIE).await {
        if after.value() == during {
            return Err("the session id was kept when the sign-in completed".into());
        }
    }
    let replay = format!(
        "code=x&state={}",
        connect_app::query_value(&consent, "state").ok_or("no state")?
    );
    let (to, _) = callback(&curl, &rig.two, "hike", &replay, Some(&during)).await?;
    ensure_same(
        &to,
        "/error/hike/not-in-progress",
        "the sign-in's id after it completed",
    )
}

/// (f): a page on another site whose form posts to `/connect/hike`.
async fn cross_site_form_refused(client: &Client, rig: &Rig, shots: &Screenshots) -> TestResult {
    let page = Page { client };
    page.goto(rig.public.as_str()).await?;
    let cookies_before = session_cookie_value(client).await;
    let html = format!(
        "<!DOCTYPE html><title>Elsewhere</title><form method=\"post\" action=\"{}\">\
         <button id=\"go\" type=\"submit\">Win a prize</button></form>",
        rig.public.join("connect/hike")?
    );
    let elsewhere = format!(
        "data:text/html;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(html)
    );
    page.goto(&elsewhere).await?;
    page.click("#go").await?;
    let error = page.wait_for("#error").await?.text().await?;
    ensure_contains(&error, "Request refused", "cross-site form")?;
    let url = client.current_url().await?;
    if url.origin() != rig.public.origin() || url.path() != "/connect/hike" {
        return Err(format!("the cross-site form went on to {url}").into());
    }
    shots.take(client, "11-cross-site-form-refused").await?;
    page.goto(rig.public.as_str()).await?;
    ensure_same(
        &format!("{:?}", session_cookie_value(client).await),
        &format!("{cookies_before:?}"),
        "the session cookie after the cross-site form",
    )?;
    ensure_stored(rig.store.as_ref(), 3).await
}

/// The session cookie's value, if the browser has one.
async fn session_cookie_value(client: &Client) -> Option<String> {
    client
        .get_named_cookie(COOKIE)
        .await
        .ok()
        .map(|cookie| cookie.value().to_owned())
}

/// The page's footer names `instance` (`127.0.0.1:PORT`).
async fn ensure_served_by(page: &Page<'_>, instance: &Url, what: &str) -> TestResult {
    let expected = format!(
        "{}:{}",
        instance.host_str().unwrap_or_default(),
        instance.port().unwrap_or_default()
    );
    ensure_same(&page.text("#served-by").await?, &expected, what)
}

/// The shared token store holds `expected` accounts.
async fn ensure_stored(store: &dyn TokenStore, expected: usize) -> TestResult {
    let stored = store.keys().await?.len();
    if stored != expected {
        return Err(format!("expected {expected} stored accounts, found {stored}").into());
    }
    Ok(())
}

/// The consent page names the app, the provider and the scope.
async fn check_consent_page(page: &Page<'_>, provider: &str, scope: &str) -> TestResult {
    let what = format!("{provider} consent page");
    ensure_same(&page.text("#app-name").await?, APP_NAME, &what)?;
    ensure_contains(&page.text("#provider").await?, provider, &what)?;
    ensure_contains(&page.text("#scopes").await?, scope, &what)?;
    page.wait_for("#deny").await?;
    Ok(())
}

/// No access or refresh token the mocks issued (as stored by the app)
/// appears anywhere in the page source.
async fn ensure_no_token_in_page(
    client: &Client,
    store: &dyn TokenStore,
    expected_tokens: usize,
) -> TestResult {
    let source = client.source().await?;
    let mut secrets = Vec::new();
    for key in store.keys().await? {
        if let Some(stored) = store.load(&key).await? {
            secrets.push(stored.record.access_token);
            secrets.extend(stored.record.refresh_token);
        }
    }
    if secrets.len() < expected_tokens {
        return Err(format!(
            "expected at least {expected_tokens} stored tokens, found {}",
            secrets.len()
        )
        .into());
    }
    for secret in &secrets {
        if secret.len() < 8 {
            return Err("a stored token is too short to search for".into());
        }
        if source.contains(secret.as_str()) {
            return Err(format!("the page shows an issued token ({} chars)", secret.len()).into());
        }
    }
    Ok(())
}

/// The session cookie is `HttpOnly`: scripts do not see it.
async fn ensure_session_cookie_hidden_from_scripts(client: &Client) -> TestResult {
    let visible = client
        .execute("return document.cookie;", Vec::new())
        .await?;
    let visible = visible.as_str().unwrap_or_default();
    if visible.contains("connect_session") {
        return Err("the session cookie is readable from scripts".into());
    }
    Ok(())
}

/// After a sign-in the browser is back on the home page, and the callback's
/// code and state are no longer in the address bar.
async fn ensure_clean_home_url(client: &Client, app_url: &Url) -> TestResult {
    let url = client.current_url().await?;
    let on_home = url.origin() == app_url.origin() && url.path() == "/";
    let leaks = url
        .query_pairs()
        .any(|(name, _)| name == "code" || name == "state");
    if !on_home || leaks {
        return Err(format!("expected the home page without code or state, got {url}").into());
    }
    Ok(())
}

/// The message pages carry no query (so no code or state).
async fn ensure_no_query(client: &Client, what: &str) -> TestResult {
    let url = client.current_url().await?;
    if url.query().is_some() {
        return Err(format!("{what}: the page URL has a query: {url}").into());
    }
    Ok(())
}

/// `consent` with one character of its `state` changed.
fn with_altered_state(consent: &Url) -> TestResult<Url> {
    let mut found = false;
    let pairs: Vec<(String, String)> = consent
        .query_pairs()
        .map(|(name, value)| {
            let value = if name == "state" {
                found = true;
                let mut chars: Vec<char> = value.chars().collect();
                if let Some(first) = chars.first_mut() {
                    *first = if *first == 'A' { 'B' } else { 'A' };
                }
                chars.into_iter().collect()
            } else {
                value.into_owned()
            };
            (name.into_owned(), value)
        })
        .collect();
    if !found {
        return Err(format!("the consent URL has no state: {consent}").into());
    }
    let mut tampered = consent.clone();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    Ok(tampered)
}

fn ensure_contains(text: &str, needle: &str, what: &str) -> TestResult {
    if text.contains(needle) {
        Ok(())
    } else {
        Err(format!("{what}: expected {needle:?} in {text:?}").into())
    }
}

fn ensure_same(got: &str, expected: &str, what: &str) -> TestResult {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected:?}, got {got:?}").into())
    }
}

/// Element look-ups with explicit waits.
struct Page<'a> {
    client: &'a Client,
}

impl Page<'_> {
    async fn goto(&self, url: &str) -> TestResult {
        Ok(self.client.goto(url).await?)
    }

    async fn wait_for(&self, css: &str) -> TestResult<fantoccini::elements::Element> {
        self.client
            .wait()
            .at_most(STEP_TIMEOUT)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
            .map_err(|e| format!("no element {css:?} within {STEP_TIMEOUT:?}: {e}").into())
    }

    async fn text(&self, css: &str) -> TestResult<String> {
        Ok(self.wait_for(css).await?.text().await?)
    }

    async fn click(&self, css: &str) -> TestResult {
        Ok(self.wait_for(css).await?.click().await?)
    }
}

/// Where the screenshots go: `target/e2e-screenshots/` of the workspace.
struct Screenshots {
    dir: PathBuf,
}

impl Screenshots {
    fn new() -> TestResult<Self> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-screenshots");
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir: dir.canonicalize()?,
        })
    }

    async fn take(&self, client: &Client, step: &str) -> TestResult {
        let png = client.screenshot().await?;
        let path = self.dir.join(format!("{step}.png"));
        std::fs::write(&path, png)?;
        println!("screenshot: {}", path.display());
        Ok(())
    }
}

/// Whether Chromium and chromedriver are installed. Missing: an error
/// under `CI=true`, else a skip message.
fn browser_installed() -> TestResult<bool> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    if missing.is_empty() {
        return Ok(true);
    }
    let message = format!(
        "{} not installed (apt-get install -y chromium chromium-driver)",
        missing.join(" and ")
    );
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        return Err(format!("CI=true, so the browser test must run, but {message}").into());
    }
    eprintln!("SKIPPED the browser test: {message}");
    Ok(false)
}

/// chromedriver as a child process on a free loopback port, in its own
/// process group; dropping it stops the group (chromedriver and the
/// browsers it started).
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    fn start() -> TestResult<Self> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("could not start {CHROMEDRIVER}: {e}"))?;
        let mut driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + DRIVER_START_TIMEOUT;
        loop {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(driver);
            }
            if let Some(status) = driver.child.try_wait()? {
                return Err(format!("chromedriver exited at start: {status}").into());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "chromedriver did not listen on port {port} within {DRIVER_START_TIMEOUT:?}"
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The whole group: a browser left over by a failed session goes too.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session.
async fn open_browser(driver: &Chromedriver) -> TestResult<Client> {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--no-proxy-server",
                "--window-size=1100,850",
            ],
        }),
    );
    let client = ClientBuilder::rustls()?
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .map_err(|e| format!("could not open a Chromium session through chromedriver: {e}"))?;
    Ok(client)
}
