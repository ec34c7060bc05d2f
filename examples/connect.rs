//! A web app where a person connects their HyperSKU and Hike accounts in a
//! browser: Connect → the provider's consent page → Allow → the account is
//! listed (provider, subject, scopes, expiry; never a secret).
//!
//! ```text
//! cargo run --example connect
//! ```
//!
//! Then open the URL it prints (default `http://127.0.0.1:3000/`). By
//! default the testkit's mock HyperSKU and Hike run on 127.0.0.1: their
//! consent pages play the providers' sign-in, no credentials needed. Tokens
//! and browser sessions (the sign-ins in progress) go to SQLite files in a
//! temporary directory (removed on exit), or to `--db PATH` and
//! `--sessions PATH`. Other port: `--port N` (`0` picks a free one).
//! Ctrl-C (or SIGTERM) stops: open requests finish, then the token manager
//! shuts down.
//!
//! Two instances serving the same sign-ins (as behind a load balancer at
//! `http://127.0.0.1:8080/`, which sends each request to either): the
//! second uses the first one's mocks, whose URLs the first prints along with
//! this exact command line:
//!
//! ```text
//! cargo run --example connect -- --port 3000 --public-url http://127.0.0.1:8080/ --db /tmp/connect-tokens.sqlite --sessions /tmp/connect-sessions.sqlite
//! cargo run --example connect -- --port 3001 --public-url http://127.0.0.1:8080/ --db /tmp/connect-tokens.sqlite --sessions /tmp/connect-sessions.sqlite --mocks-at <HyperSKU mock URL>,<Hike mock URL>
//! ```
//!
//! The app accepts its forms only from the public URL's origin, and makes
//! the session cookie `Secure` when that URL is `https://` (a TLS proxy in
//! front: `--public-url https://app.example/`).
//!
//! Against the real providers (register `http://127.0.0.1:3000/callback/hypersku`
//! and `http://127.0.0.1:3000/callback/hike` as redirect URIs):
//!
//! ```text
//! HYPERSKU_CLIENT_ID=<clientId> HYPERSKU_CLIENT_SECRET=<clientSecret> HIKE_CLIENT_ID=<App Id> HIKE_CLIENT_SECRET=<App Secret> cargo run --example connect -- --real
//! ```
//!
//! Either provider may be left out. Optional: `HYPERSKU_AUTHORIZE_URL`,
//! `HYPERSKU_API_BASE_URL`, `HIKE_BASE_URL`. `--help` lists the options.

use std::process::ExitCode;

use oauth2_adapters::testkit::MockServer;
use oauth2_adapters_examples::connect::{Command, ConnectApp, ProviderChoice, USAGE};
use oauth2_adapters_examples::BoxError;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("connect: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let options = match Command::parse(std::env::args().skip(1))? {
        Command::Help => {
            print!("{USAGE}");
            return Ok(());
        }
        Command::Run(options) => *options,
    };
    let real = options.providers == ProviderChoice::Real;
    let app = ConnectApp::start(options).await?;
    if let Some(mocks) = app.mocks() {
        println!(
            "Mock providers on 127.0.0.1: HyperSKU {} and Hike {}",
            mocks.hypersku.base_url(),
            mocks.hike.base_url()
        );
    } else if real {
        println!("Real providers; the redirect URIs to register:");
        for (name, uri) in app.redirect_uris() {
            println!("  {name}: {uri}");
        }
    } else {
        println!("Using the mock providers of another instance.");
    }
    println!("Tokens are kept in {}", app.db_path().display());
    println!("Sessions are kept in {}", app.sessions_path().display());
    if let Some(mocks) = app.mocks() {
        println!(
            "A second instance for the same sign-ins (while this one runs):\n  \
             cargo run --example connect -- --port <another port> --public-url {} --db {} \
             --sessions {} --mocks-at {},{}",
            app.url(),
            app.db_path().display(),
            app.sessions_path().display(),
            mocks.hypersku.base_url(),
            mocks.hike.base_url()
        );
    }
    println!(
        "\nOpen {} in your browser (this instance listens on {}). Ctrl-C stops.\n",
        app.url(),
        app.local_url()
    );
    stop_requested().await?;
    println!("Stopping.");
    app.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C (or, on Unix, SIGTERM), so the token manager shuts
/// down and the temporary files are removed either way.
async fn stop_requested() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
