//! The commands, one module each; `run` dispatches.

mod check;
mod delete;
mod list;
mod reencrypt;
mod refresh;

use oauth2_adapters::store_sql::EncryptionKeys;

use oauth2_adapters::TokenKey;

use crate::cli::{Cli, Command, ListArgs, ReencryptArgs, TokensCommand};
use crate::database::{key_ring, Database, Location};
use crate::error::{CliError, CliResult};
use crate::provider_config::ProviderConfig;

/// What every `tokens` command works with.
pub struct Context {
    /// The open store.
    pub db: Database,
    /// The key ring, if `--keys` / `TOKEN_KEYS` gave one.
    pub keys: Option<EncryptionKeys>,
    /// `--json`.
    pub json: bool,
}

/// Runs the command.
pub async fn run(cli: Cli) -> CliResult {
    match cli.command {
        // A spec file: no database, no keys.
        Command::Check(args) => check::run(&args, cli.json).await,
        Command::Tokens(command) => {
            // Everything that can be checked without a connection, first.
            let keys = key_ring(cli.keys.as_ref())?;
            let command = Tokens::prepare(command)?;
            if matches!(command, Tokens::Reencrypt(_)) && keys.is_none() {
                return Err(CliError::KeysRequired("tokens reencrypt"));
            }
            let location = Location::resolve(&cli.database)?;
            let ctx = Context {
                db: Database::open(location, keys.clone()).await?,
                keys,
                json: cli.json,
            };
            match command {
                Tokens::List(args) => list::run(&ctx, &args).await,
                Tokens::Refresh(key, config) => refresh::run(&ctx, &key, &config).await,
                Tokens::Delete(key, yes) => delete::run(&ctx, &key, yes).await,
                Tokens::Reencrypt(args) => reencrypt::run(&ctx, &args).await,
            }
        }
    }
}

/// A `tokens` command with its key parsed and its provider file read.
enum Tokens {
    List(ListArgs),
    Refresh(TokenKey, ProviderConfig),
    Delete(TokenKey, bool),
    Reencrypt(ReencryptArgs),
}

impl Tokens {
    fn prepare(command: TokensCommand) -> CliResult<Self> {
        Ok(match command {
            TokensCommand::List(args) => Self::List(args),
            TokensCommand::Refresh(args) => Self::Refresh(
                args.key.token_key()?,
                ProviderConfig::load(&args.provider_config)?,
            ),
            TokensCommand::Delete(args) => Self::Delete(args.key.token_key()?, args.yes),
            TokensCommand::Reencrypt(args) => Self::Reencrypt(args),
        })
    }
}
