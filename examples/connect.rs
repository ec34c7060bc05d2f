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
//! go to a SQLite file in a temporary directory (removed on exit), or to
//! `--db PATH`. Other port: `--port N` (`0` picks a free one). Ctrl-C (or
//! SIGTERM) stops.
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
use oauth2_adapters_examples::connect::{Command, ConnectApp, USAGE};
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
        Command::Run(options) => options,
    };
    let app = ConnectApp::start(options).await?;
    match app.mocks() {
        Some(mocks) => println!(
            "Mock providers on 127.0.0.1: HyperSKU {} and Hike {}",
            mocks.hypersku.base_url(),
            mocks.hike.base_url()
        ),
        None => {
            println!("Real providers; the redirect URIs to register:");
            for (name, uri) in app.redirect_uris() {
                println!("  {name}: {uri}");
            }
        }
    }
    println!("Tokens are kept in {}", app.db_path().display());
    println!("\nOpen {} in your browser. Ctrl-C stops.\n", app.url());
    stop_requested().await?;
    println!("Stopping.");
    app.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C (or, on Unix, SIGTERM), so the temporary database is
/// removed either way.
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
