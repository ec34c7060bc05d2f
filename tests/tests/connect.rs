//! The `connect` example's app over plain HTTP (no browser): two instances
//! behind one public URL share sign-ins, and each attack on the sign-in
//! flow fails. `browser.rs` walks the same in headless Chromium.
//!
//! ```text
//! cargo test -p oauth2-adapters-tests --test connect
//! ```
//!
//! The "load balancer" here is the test itself: it sends each request to
//! the instance it chooses, with the `Origin` the public URL gives.

mod connect_app;

use connect_app::{
    at_instance, callback, connect, cookie_attributes, cookie_value, flood, http, origin,
    set_cookie, start, Pair, TestResult,
};
use oauth2_adapters_examples::connect::{ConnectApp, Options};
use reqwest::StatusCode;
use url::Url;

const APP_NAME: &str = "Connect Test App";

fn public(url: &str) -> Url {
    Url::parse(url).expect("a valid URL")
}

async fn pair(public_url: &Url) -> TestResult<(Pair, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let pair = Pair::start(public_url, APP_NAME, dir.path()).await?;
    Ok((pair, dir))
}

/// Completes `started` at `instance`: the mock approves, the browser lands
/// on the callback with the session cookie. Returns where the app sent it.
async fn complete(
    pair: &Pair,
    slug: &str,
    started: &connect_app::Started,
    instance: &Url,
) -> TestResult<String> {
    let mocks = pair.one.mocks().ok_or("no mocks")?;
    let redirect = match slug {
        "hike" => mocks.hike.approve(&started.authorize_url).await?,
        _ => mocks.hypersku.approve(&started.authorize_url).await?,
    };
    let back = at_instance(&redirect, instance)?;
    let (to, _) = callback(
        &http()?,
        instance,
        slug,
        back.query().unwrap_or_default(),
        Some(&started.cookie),
    )
    .await?;
    Ok(to)
}

#[tokio::test]
async fn a_sign_in_started_on_one_instance_completes_on_the_other() -> TestResult {
    let public_url = public("http://balancer.test/");
    let (pair, _dir) = pair(&public_url).await?;
    let client = http()?;

    let started = start(&client, pair.one.local_url(), &public_url, "hike", None).await?;
    let to = complete(&pair, "hike", &started, pair.two.local_url()).await?;
    assert_eq!(to, "/?connected=hike");
    assert_eq!(pair.two.store().keys().await?.len(), 1);
    assert_eq!(pair.one.store().keys().await?.len(), 1, "one token file");
    pair.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn cookie_less_posts_do_not_evict_a_real_sign_in() -> TestResult {
    let public_url = public("http://balancer.test/");
    let (pair, _dir) = pair(&public_url).await?;
    let client = http()?;

    let started = start(&client, pair.one.local_url(), &public_url, "hike", None).await?;
    // More than the old global limit (1,024 sign-ins in progress).
    flood(
        &client,
        pair.one.local_url(),
        &public_url,
        "hike",
        1_100,
        16,
    )
    .await?;
    let to = complete(&pair, "hike", &started, pair.two.local_url()).await?;
    assert_eq!(to, "/?connected=hike");
    pair.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_bogus_state_or_a_forged_denial_does_not_cancel_a_sign_in() -> TestResult {
    let public_url = public("http://balancer.test/");
    let (pair, _dir) = pair(&public_url).await?;
    let client = http()?;
    let instance = pair.two.local_url();

    let started = start(&client, pair.one.local_url(), &public_url, "hike", None).await?;
    let cookie = Some(started.cookie.as_str());
    let (to, set) = callback(&client, instance, "hike", "code=x&state=bogus", cookie).await?;
    assert_eq!(to, "/error/hike/state-mismatch");
    assert_eq!(set, None, "the session is left as it was");
    let (to, set) = callback(&client, instance, "hike", "code=x", cookie).await?;
    assert_eq!(to, "/error/hike/state-mismatch");
    assert_eq!(set, None);
    let (to, set) = callback(&client, instance, "hike", "error=access_denied", cookie).await?;
    assert_eq!(to, "/error/hike/denied");
    assert_eq!(set, None);

    let to = complete(&pair, "hike", &started, instance).await?;
    assert_eq!(to, "/?connected=hike");
    // Used once: the same callback again finds nothing.
    let state = format!("code=x&state={}", started.state()?);
    let (to, _) = callback(&client, instance, "hike", &state, cookie).await?;
    assert_eq!(to, "/error/hike/not-in-progress");
    pair.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_planted_session_id_is_rotated_when_a_sign_in_starts_and_ends() -> TestResult {
    let public_url = public("http://balancer.test/");
    let (pair, _dir) = pair(&public_url).await?;
    let client = http()?;
    let (one, two) = (pair.one.local_url(), pair.two.local_url());

    // The attacker's own session, with a sign-in whose state they know…
    let attacker = start(&client, one, &public_url, "hypersku", None).await?;
    // …planted in the victim's browser, who then connects Hike.
    let victim = start(&client, one, &public_url, "hike", Some(&attacker.cookie)).await?;
    assert_ne!(victim.cookie, attacker.cookie, "the planted id was kept");
    // The planted id no longer names a session.
    let query = format!("code=x&state={}", attacker.state()?);
    let (to, _) = callback(&client, two, "hypersku", &query, Some(&attacker.cookie)).await?;
    assert_eq!(to, "/error/hypersku/not-in-progress");

    // Completing the sign-in rotates the id again.
    let mocks = pair.one.mocks().ok_or("no mocks")?;
    let redirect = at_instance(&mocks.hike.approve(&victim.authorize_url).await?, two)?;
    let (to, set) = callback(
        &client,
        two,
        "hike",
        redirect.query().unwrap_or_default(),
        Some(&victim.cookie),
    )
    .await?;
    assert_eq!(to, "/?connected=hike");
    let after = set.and_then(|c| cookie_value(&c));
    assert!(
        after.as_ref().is_some_and(|after| *after != victim.cookie),
        "expected a new session id after the sign-in, got {after:?}"
    );
    let query = format!("code=x&state={}", victim.state()?);
    let (to, _) = callback(&client, two, "hike", &query, Some(&victim.cookie)).await?;
    assert_eq!(to, "/error/hike/not-in-progress");
    pair.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn cross_site_posts_are_refused_before_any_session_is_made() -> TestResult {
    let public_url = public("http://balancer.test/");
    let (pair, _dir) = pair(&public_url).await?;
    let client = http()?;
    let instance = pair.one.local_url();
    let own = origin(&public_url);

    let refused: [(Option<&str>, Option<&str>); 6] = [
        (None, None),
        (Some("http://evil.example"), None),
        (Some("null"), None),
        (Some(&own), Some("cross-site")),
        (Some(&own), Some("same-site")),
        (Some(&origin(instance)), None), // the instance itself is not the public URL
    ];
    for (origin, fetch_site) in refused {
        let mut request = client.post(instance.join("connect/hike")?);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = fetch_site {
            request = request.header("sec-fetch-site", site);
        }
        let response = request.send().await?;
        let what = format!("Origin {origin:?}, Sec-Fetch-Site {fetch_site:?}");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        assert_eq!(set_cookie(response.headers()), None, "{what}");
        let page = response.text().await?;
        assert!(page.contains("Request refused"), "{what}: {page}");
    }
    let response = connect(&client, instance, "hike", Some(&own), None).await?;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    pair.shutdown().await;
    Ok(())
}

/// The session cookie's flags, over http and behind an https public URL.
#[tokio::test]
async fn the_cookie_is_http_only_lax_and_secure_behind_https() -> TestResult {
    let client = http()?;
    for (public_url, secure) in [
        (public("https://app.example/"), true),
        (public("http://balancer.test/"), false),
    ] {
        let app = ConnectApp::start(Options {
            port: 0,
            public_url: Some(public_url.clone()),
            app_name: APP_NAME.to_owned(),
            ..Options::default()
        })
        .await?;
        let response = connect(
            &client,
            app.local_url(),
            "hike",
            Some(&origin(&public_url)),
            None,
        )
        .await?;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{public_url}");
        let set = set_cookie(response.headers()).ok_or("no session cookie")?;
        let attributes = cookie_attributes(&set);
        for expected in ["httponly", "samesite=lax", "path=/"] {
            assert!(attributes.iter().any(|a| a == expected), "{set}");
        }
        assert_eq!(attributes.iter().any(|a| a == "secure"), secure, "{set}");
        // The cookie is an opaque id: no state, verifier or URL in it.
        let value = cookie_value(&set).ok_or("empty cookie")?;
        assert!(value.len() <= 32 && !value.contains('.'), "{set}");
        app.shutdown().await;
    }
    Ok(())
}
