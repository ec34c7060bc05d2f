//! A small multi-tenant service loop: keeps Hike tokens for many stores
//! fresh with the token manager, the background refresher and a durable store.
//!
//! ```text
//! cargo run --example token_manager
//! cargo run --example token_manager -- --postgres postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! By default it starts the testkit's Hike on 127.0.0.1 (tokens live 4 s, so
//! refreshes happen while you watch), signs in `--accounts` stores (default
//! 20), and keeps the tokens in a SQLite file in a directory only you can
//! read (`~/.local/share/oauth2-adapters-examples/`, mode 0700; the file is
//! 0600). On Ctrl-C or SIGTERM it shuts the manager down cleanly: running
//! refreshes finish and pending writes land before it exits.
//!
//! To share state between two running copies, give both the same
//! `--postgres URL` and the same provider: run the first copy, then start the
//! second with the `--hike-url` and `--client-id` it prints, the testkit's
//! default test secret (`--client-secret test-client-secret-0123456789`; the
//! example never prints a secret), and `--accounts 0` so it serves the stores
//! the first one signed in.
//! Only one copy refreshes each token (the store's lease), and neither ever
//! sends a spent refresh token.
//!
//! Options: `--seconds N` (default 10), `--prefix P` (account name prefix,
//! default `store-`), `--sqlite PATH`, `--quiet` (print only the summary
//! line), `--max-concurrent N` (background refreshes at once, default 4),
//! `--refresher-only` (make no API calls, so only the background refresher
//! renews tokens, at most `--max-concurrent` at once; without it, an API
//! call on a token due for renewal starts a refresh of its own),
//! `--http-timeout-ms N` (per token request, default 2000; no retries), and
//! `--lease-ms N` / `--in-doubt-grace-ms N` (the refresh lease and how long
//! a lapsed one blocks its refresh token; defaults 3000 and 600000).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth2_adapters::hike::Hike;
use oauth2_adapters::manager::{TokenEvent, TokenManager};
use oauth2_adapters::store_sql::{PostgresStore, SqliteStore};
use oauth2_adapters::testkit::{HikeMock, MockConfig, MockServer};
use oauth2_adapters::{
    AuthorizationCodeProvider, AuthorizeRequest, CallbackParams, ClientCredentials, HttpConfig,
    Provider, ProviderSettings, RetryPolicy, TokenKey, TokenStore,
};
use oauth2_adapters_examples::{private_data_dir, shutdown_signal, BoxError};

const REDIRECT_URI: &str = "http://127.0.0.1:8976/callback";

struct Options {
    postgres: Option<String>,
    sqlite: Option<String>,
    hike_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    accounts: usize,
    seconds: u64,
    prefix: String,
    quiet: bool,
    max_concurrent: usize,
    refresher_only: bool,
    http_timeout: Duration,
    lease: Duration,
    in_doubt_grace: Duration,
}

fn options() -> Result<Options, BoxError> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        postgres: None,
        sqlite: None,
        hike_url: None,
        client_id: None,
        client_secret: None,
        accounts: 20,
        seconds: 10,
        prefix: "store-".into(),
        quiet: false,
        max_concurrent: 4,
        refresher_only: false,
        http_timeout: Duration::from_millis(2000),
        lease: Duration::from_millis(3000),
        in_doubt_grace: Duration::from_secs(600),
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--postgres" => o.postgres = Some(value()?),
            "--sqlite" => o.sqlite = Some(value()?),
            "--hike-url" => o.hike_url = Some(value()?),
            "--client-id" => o.client_id = Some(value()?),
            "--client-secret" => o.client_secret = Some(value()?),
            "--accounts" => o.accounts = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--prefix" => o.prefix = value()?,
            "--quiet" => o.quiet = true,
            "--max-concurrent" => o.max_concurrent = value()?.parse()?,
            "--refresher-only" => o.refresher_only = true,
            "--http-timeout-ms" => o.http_timeout = Duration::from_millis(value()?.parse()?),
            "--lease-ms" => o.lease = Duration::from_millis(value()?.parse()?),
            "--in-doubt-grace-ms" => o.in_doubt_grace = Duration::from_millis(value()?.parse()?),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(o)
}

async fn open_store(o: &Options) -> Result<Arc<dyn TokenStore>, BoxError> {
    Ok(match (&o.postgres, &o.sqlite) {
        (Some(url), _) => Arc::new(PostgresStore::connect(url).await?),
        (None, Some(path)) => Arc::new(SqliteStore::open(path).await?),
        (None, None) => {
            let path = private_data_dir()?.join("token-manager.sqlite");
            Arc::new(SqliteStore::open(path).await?)
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let o = options()?;
    // The provider: an existing server, or the testkit's Hike started here.
    let (hike_url, credentials, mock) = match &o.hike_url {
        Some(url) => {
            let id = o.client_id.clone().ok_or("--hike-url needs --client-id")?;
            let secret = o
                .client_secret
                .clone()
                .ok_or("--hike-url needs --client-secret")?;
            (url.clone(), ClientCredentials::new(id, secret), None)
        }
        None => {
            let config = MockConfig::default()
                .with_redirect_uri(REDIRECT_URI)
                .with_access_token_lifetime(Duration::from_secs(4));
            let mock = HikeMock::start(config).await?;
            let c = mock.config();
            let credentials = ClientCredentials::new(c.client_id.clone(), c.client_secret.clone());
            (mock.base_url().to_string(), credentials, Some(mock))
        }
    };
    if !o.quiet {
        println!(
            "provider: --hike-url {hike_url} --client-id {}",
            credentials.client_id
        );
    }
    // Short requests without retries, so a short lease still covers the
    // longest one (the builder checks it).
    let context =
        ProviderSettings::with_http_config(&HttpConfig::default().with_timeout(o.http_timeout))?
            .with_retry_policy(RetryPolicy::never());
    let hike = Arc::new(
        Hike::builder(credentials)
            .base_url(hike_url)
            .settings(context)
            .build()?,
    );
    let refreshes = Arc::new(AtomicUsize::new(0));
    let store = open_store(&o).await?;
    let manager = {
        let refreshes = refreshes.clone();
        let quiet = o.quiet;
        TokenManager::builder()
            .store(store.clone())
            .provider(hike.clone())
            .lease(o.lease, Duration::from_millis(50))
            .in_doubt_grace(o.in_doubt_grace)
            .refresh_in_background(Duration::from_millis(100), o.max_concurrent)
            .on_event(move |event| {
                if let TokenEvent::Refreshed { .. } = event {
                    refreshes.fetch_add(1, Ordering::Relaxed);
                }
                if !quiet {
                    println!("event: {event:?}");
                }
            })
            .build()?
    };

    // Sign stores in (with the testkit, no browser is needed). Accounts left
    // by an earlier run belong to a mock that no longer exists: forget them.
    if let Some(mock) = &mock {
        for key in store.keys().await? {
            if &key.provider() == hike.id() && key.account().starts_with(&o.prefix) {
                manager.remove(&key).await?;
            }
        }
        for i in 0..o.accounts {
            let (url, pending) = hike.authorize(AuthorizeRequest::new(REDIRECT_URI)?)?;
            let callback = mock.approve(&url).await?;
            let token = hike
                .handle_callback(CallbackParams::from_url(&callback)?, pending)
                .await?;
            manager
                .insert(TokenKey::new(hike.id(), &format!("{}{i}", o.prefix)), token)
                .await?;
        }
    }
    let warmed = manager.warm().await?;
    for unreadable in &warmed.unreadable {
        eprintln!("skipped {}: {}", unreadable.key, unreadable.error);
    }
    // The stores this copy serves: every Hike account with the prefix.
    let keys: Vec<TokenKey> = store
        .keys()
        .await?
        .into_iter()
        .filter(|key| &key.provider() == hike.id() && key.account().starts_with(&o.prefix))
        .collect();

    // The service loop: every 100 ms, "call the API" for every store
    // (unless `--refresher-only`), until the time is up or a Ctrl-C /
    // SIGTERM arrives.
    let (mut gets, mut errors) = (0usize, 0usize);
    let started = Instant::now();
    let signal = shutdown_signal();
    tokio::pin!(signal);
    while started.elapsed() < Duration::from_secs(o.seconds) {
        let calls = if o.refresher_only { &[][..] } else { &keys[..] };
        for key in calls {
            gets += 1;
            if let Err(error) = manager.get(key).await {
                errors += 1;
                eprintln!("{key}: {error}");
            }
        }
        tokio::select! {
            () = &mut signal => break,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    // Finish running refreshes and land pending writes before exiting.
    let report = manager.shutdown(Duration::from_secs(60)).await;
    for lost in &report.unpersisted {
        eprintln!("{}: a refreshed token could not be stored", lost.key);
    }
    for key in &report.abandoned_refreshes {
        eprintln!("{key}: a refresh was still running at the shutdown deadline");
    }
    println!(
        "summary: accounts={} gets={gets} errors={errors} refreshes={}",
        keys.len(),
        refreshes.load(Ordering::Relaxed)
    );
    if errors > 0 {
        return Err(format!("{errors} requests had no valid token").into());
    }
    Ok(())
}
