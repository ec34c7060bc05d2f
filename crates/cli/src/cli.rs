//! The command line: global options, and one subcommand per concern:
//! `tokens …` (stored tokens) and `check SPEC` (a provider spec file).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use oauth2_adapters::{ProviderId, SecretString, TokenKey};

use crate::error::CliError;

/// An operator's tool for the oauth2-adapters SQL token stores.
///
/// The database is `--sqlite PATH` or `--postgres URL`; without either,
/// the URL in `OAUTH2_ADAPTERS_DATABASE`, else in `DATABASE_URL`
/// (`postgres://…`, `postgresql://…` or `sqlite:PATH`). Prefer the
/// environment for a URL with a password: the command line is visible to
/// other users of the machine.
#[derive(Parser)]
#[command(name = "oauth2-adapters-cli", version, about, long_about)]
pub struct Cli {
    /// Where the tokens are.
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Encryption keys, in the store-sql format `id:base64,id:base64` (the
    /// first is the current key). Needed to read encrypted rows and for
    /// `tokens reencrypt`. Prefer the `TOKEN_KEYS` environment variable: the
    /// command line is visible to other users of the machine.
    #[arg(
        long,
        global = true,
        env = "TOKEN_KEYS",
        hide_env_values = true,
        value_name = "KEYS"
    )]
    pub keys: Option<SecretArg>,

    /// Machine-readable output: one JSON document on stdout, no progress bar.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--sqlite PATH` or `--postgres URL`.
#[derive(Args)]
pub struct DatabaseArgs {
    /// A SQLite database file (it must exist: the tool never creates one).
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "postgres")]
    pub sqlite: Option<PathBuf>,

    /// A PostgreSQL URL, e.g. `postgres://app@db.example.com/app?sslmode=verify-full`.
    #[arg(long, global = true, value_name = "URL")]
    pub postgres: Option<SecretArg>,
}

/// The subcommand groups. A new concern is a new variant (with its own
/// subcommand enum when it has several commands).
#[derive(Subcommand)]
pub enum Command {
    /// Stored tokens: list, refresh, delete, re-encrypt.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Loads and checks a provider spec file, then shows the authorize URL
    /// and the exact token requests the engine would send with it, secrets
    /// masked. Sends nothing; needs no database and no credentials.
    Check(CheckArgs),
}

/// `check SPEC`.
#[derive(Args)]
pub struct CheckArgs {
    /// The spec file: TOML, or JSON when its name ends in `.json`.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// The redirect URI of the example authorization.
    #[arg(
        long,
        value_name = "URI",
        default_value = "https://app.example/callback"
    )]
    pub redirect_uri: String,
    /// The client id the requests carry.
    #[arg(long, value_name = "ID", default_value = "your-client-id")]
    pub client_id: String,
    /// A scope (repeatable): asked for in the authorization (default: the
    /// spec's `default_scopes`) and in the client credentials request.
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// An extra authorize parameter (repeatable), as an application adds
    /// with `AuthorizeRequest::with_param`.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = name_value)]
    pub params: Vec<(String, String)>,
    /// Turns PKCE on or off, as `SpecProviderBuilder::pkce` does (a spec
    /// saying `required` refuses `off`). Default: the spec's.
    #[arg(long, value_enum, value_name = "ON_OFF")]
    pub pkce: Option<OnOff>,
    /// The environment variable holding a client secret to build the
    /// requests with (it is masked like the placeholder used without it).
    #[arg(long, value_name = "VAR")]
    pub client_secret_env: Option<String>,
    /// `NAME=VAR`: the secret `NAME` of the spec's `token.secret_headers`,
    /// from the environment variable `VAR` (repeatable; default: a
    /// placeholder for each, masked).
    #[arg(long = "secret-env", value_name = "NAME=VAR", value_parser = name_value)]
    pub secret_envs: Vec<(String, String)>,
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

/// `NAME=VALUE`, split at the first `=`; the name must not be empty.
fn name_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err("expected NAME=VALUE".to_owned()),
    }
}

/// `tokens …`.
#[derive(Subcommand)]
pub enum TokensCommand {
    /// One row per stored token: key, expiry, refresh-token expiry, status.
    /// Never shows a token.
    List(ListArgs),
    /// Refreshes one token now, with the provider described by
    /// `--provider-config`, and stores the new one.
    Refresh(RefreshArgs),
    /// Deletes one token (and its refresh lease). Asks first unless `--yes`.
    Delete(DeleteArgs),
    /// Rewrites every row not under the current key of `--keys` (rows in
    /// clear text and under old keys) under the current key.
    Reencrypt(ReencryptArgs),
}

/// `tokens list`.
#[derive(Args)]
pub struct ListArgs {
    /// Only this provider's tokens.
    #[arg(long, value_name = "P")]
    pub provider: Option<String>,
    /// Only tokens with this status.
    #[arg(long, value_enum)]
    pub status: Option<Status>,
}

/// `tokens refresh`.
#[derive(Args)]
pub struct RefreshArgs {
    /// Which token.
    #[command(flatten)]
    pub key: KeyArgs,
    /// The provider: a TOML file naming its kind, endpoint, client id and
    /// the environment variable that holds the client secret.
    #[arg(long, value_name = "FILE")]
    pub provider_config: PathBuf,
}

/// `tokens delete`.
#[derive(Args)]
pub struct DeleteArgs {
    /// Which token.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Deletes without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `tokens reencrypt`.
#[derive(Args)]
pub struct ReencryptArgs {
    /// Then removes the superseded row versions from the database's pages
    /// (PostgreSQL: `VACUUM (FULL)`, which locks the table while it runs).
    /// SQLite always does it.
    #[arg(long)]
    pub purge: bool,
}

/// A token key: `provider|account|scopes`, or `--provider`, `--account`
/// and `--scope`.
#[derive(Args)]
pub struct KeyArgs {
    /// The key in its stored form, `provider|account|scopes` (scopes
    /// space-separated, e.g. `hike|store-42|`), as `tokens list` shows it.
    #[arg(value_name = "KEY", required_unless_present = "account", conflicts_with_all = ["provider", "account", "scope"])]
    pub key: Option<String>,
    /// The key's provider (with `--account`).
    #[arg(long, value_name = "P", requires = "account")]
    pub provider: Option<String>,
    /// The key's account (with `--provider`).
    #[arg(long, value_name = "A", requires = "provider")]
    pub account: Option<String>,
    /// A scope of the key; repeat for several.
    #[arg(long, value_name = "S", requires = "account")]
    pub scope: Vec<String>,
}

impl KeyArgs {
    /// The key named, or why it is not one.
    pub fn token_key(&self) -> Result<TokenKey, CliError> {
        match (&self.key, &self.provider, &self.account) {
            (Some(text), _, _) => TokenKey::parse(text).ok_or(CliError::BadKey),
            (None, Some(provider), Some(account)) if !provider.is_empty() => Ok(
                TokenKey::with_scopes(&ProviderId::new(provider.clone()), account, &self.scope),
            ),
            _ => Err(CliError::BadKey),
        }
    }
}

/// What `tokens list` says of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Valid, and not yet due for refresh.
    Fresh,
    /// In the refresh window (or expired, and renewable without the user).
    Due,
    /// Needs a new sign-in: expired with no refresh token, or the refresh
    /// token's known expiry has passed.
    Reauth,
    /// The row cannot be decoded (e.g. encrypted under a key not given).
    Unreadable,
}

impl Status {
    /// The word shown in the table (and taken by `--status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Due => "due",
            Self::Reauth => "reauth",
            Self::Unreadable => "unreadable",
        }
    }
}

/// A secret argument (encryption keys, a database URL that may hold a
/// password): never shown, not even by `Debug`.
#[derive(Clone)]
pub struct SecretArg(pub SecretString);

impl FromStr for SecretArg {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(SecretString::from(text.to_owned())))
    }
}

impl fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn key_of(args: &[&str]) -> Result<TokenKey, CliError> {
        let mut argv = vec!["oauth2-adapters-cli", "tokens", "delete"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).expect("parses");
        let Command::Tokens(TokensCommand::Delete(delete)) = cli.command else {
            panic!("delete");
        };
        delete.key.token_key()
    }

    #[test]
    fn keys_by_text_or_by_parts_are_the_same() {
        let text = key_of(&["hike|store-1|b a"]).unwrap();
        let parts = key_of(&[
            "--provider",
            "hike",
            "--account",
            "store-1",
            "--scope",
            "a",
            "--scope",
            "b",
        ])
        .unwrap();
        assert_eq!(text, parts);
        assert_eq!(text.as_str(), "hike|store-1|a b");
        assert!(matches!(key_of(&["no separators"]), Err(CliError::BadKey)));
        assert!(matches!(key_of(&["|account|"]), Err(CliError::BadKey)));
    }

    #[test]
    fn a_key_and_its_parts_conflict_and_one_is_required() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["oauth2-adapters-cli", "tokens", "delete"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).map(|_| ())
        };
        assert!(parse(&[]).is_err());
        assert!(parse(&["hike|a|", "--provider", "hike", "--account", "a"]).is_err());
        assert!(parse(&["--provider", "hike"]).is_err());
        assert!(parse(&["--sqlite", "a.db", "--postgres", "postgres://x", "hike|a|"]).is_err());
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let arg: SecretArg = "k1:c2VjcmV0".parse().unwrap();
        assert_eq!(format!("{arg:?}"), "[redacted]");
    }
}
