//! `oauth2-adapters-cli`: an operator's command line for the
//! oauth2-adapters SQL token stores (`SqliteStore`, `PostgresStore`).
//!
//! ```sh
//! cargo run -p oauth2-adapters-cli -- --sqlite tokens.db tokens list
//! cargo run -p oauth2-adapters-cli -- --postgres "$DATABASE_URL" tokens list --status due --json
//! cargo run -p oauth2-adapters-cli -- --sqlite tokens.db tokens refresh 'hike|store-42|' --provider-config hike.toml
//! cargo run -p oauth2-adapters-cli -- --sqlite tokens.db tokens delete --provider hike --account store-42 --yes
//! TOKEN_KEYS="2025-12:<base64>,2025-06:<base64>" cargo run -p oauth2-adapters-cli -- --sqlite tokens.db tokens reencrypt
//! ```
//!
//! Commands are grouped: `tokens …` works on stored tokens; another group
//! (e.g. `check` for provider files) is one more variant of
//! [`cli::Command`] and one more module under `commands`.
//!
//! The tool never prints a secret: no access or refresh token (not even a
//! prefix), client secret, encryption key or database password, in its
//! output, its errors or its logs. Exit codes: 0 success, 1 failure (store,
//! provider, network), 2 bad input (arguments, keys, provider file), 3 the
//! key is not stored, 4 a deletion was not confirmed.
#![deny(missing_docs)]

mod cli;
mod commands;
mod database;
mod error;
mod output;
mod provider_config;
mod status;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Usage errors (exit 2), and --help / --version (exit 0).
        Err(err) => err.exit(),
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.causes() {
                eprintln!("  caused by: {cause}");
            }
            err.exit_code()
        }
    }
}

/// Warnings of the library (e.g. a database file others may read) to
/// stderr; nothing else. The library's log lines carry no secret.
fn init_logging() {
    let filter = Targets::new()
        .with_target("oauth2_adapters", LevelFilter::WARN)
        .with_default(LevelFilter::OFF);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .with(filter)
        .try_init();
}
