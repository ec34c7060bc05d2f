//! The tool's errors and exit codes. No message quotes a secret: not a
//! token, a client secret, an encryption key or a database password.

use std::path::PathBuf;
use std::process::ExitCode;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// No database was named.
    #[error(
        "no database: pass --sqlite PATH or --postgres URL, or set OAUTH2_ADAPTERS_DATABASE \
         or DATABASE_URL"
    )]
    NoDatabase,
    /// The database URL from the environment has an unknown scheme.
    #[error(
        "{variable} is not a database URL this tool knows: it must begin with postgres://, \
         postgresql:// or sqlite:"
    )]
    UnknownDatabaseUrl {
        /// The environment variable it came from.
        variable: &'static str,
    },
    /// The SQLite file does not exist.
    #[error("no SQLite database at {}: this tool never creates one", .0.display())]
    NoSqliteFile(PathBuf),
    /// The encryption keys do not parse (the text is not quoted).
    #[error("the encryption keys (--keys / TOKEN_KEYS) are unusable: {0}")]
    BadKeys(#[source] oauth2_adapters::store_sql::EncryptionKeyError),
    /// A command that needs encryption keys got none.
    #[error("{0} needs encryption keys: pass --keys or set TOKEN_KEYS")]
    KeysRequired(&'static str),
    /// A token key that does not parse.
    #[error(
        "not a token key: give `provider|account|scopes` (as `tokens list` shows it), or \
         --provider P --account A [--scope S]..."
    )]
    BadKey,
    /// Nothing is stored under the key.
    #[error("no token is stored for {0}")]
    NotFound(String),
    /// A provider configuration file that cannot be used.
    #[error("{}: {reason}", path.display())]
    ProviderConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong (never a value read from it).
        reason: String,
    },
    /// The key belongs to another provider than the configured one.
    #[error("the key {key} belongs to provider `{key_provider}`, but {} configures `{configured}`", path.display())]
    ProviderMismatch {
        /// The key.
        key: String,
        /// Its provider.
        key_provider: String,
        /// The configured provider's id.
        configured: String,
        /// The provider configuration file.
        path: PathBuf,
    },
    /// The refreshed token could not be stored before the tool exited.
    #[error(
        "the refreshed token for {0} was not stored (the store kept failing) and is lost; at \
         providers that rotate refresh tokens the user must sign in again"
    )]
    NotPersisted(String),
    /// A provider spec that does not load or validate (`check`).
    #[error("{}: {}", path.display(), spec_message(path, source))]
    Spec {
        /// The spec file.
        path: PathBuf,
        /// The field at fault and why (specs hold no secret).
        source: oauth2_adapters::SpecError,
    },
    /// An argument of `check` that cannot be used (an unset variable, a
    /// secret the spec does not name). Never quotes a secret.
    #[error("{0}")]
    CheckInput(String),
    /// `check` could not watch the engine's request (it never got one, or
    /// its output would have shown a secret).
    #[error("{0}")]
    Capture(String),
    /// The user did not confirm.
    #[error("not deleted: the deletion was not confirmed (pass --yes to skip the question)")]
    NotConfirmed,
    /// An error of the library (store, provider, configuration).
    #[error("{}{source}", if context.is_empty() { String::new() } else { format!("{context}: ") })]
    Library {
        /// What the tool was doing.
        context: String,
        /// The library's error (its messages never quote a secret).
        source: Box<oauth2_adapters::Error>,
    },
    /// Writing the output or reading the confirmation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the tool was doing.
        context: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl CliError {
    /// Wraps a library error with what the tool was doing (empty: the
    /// library's message says it all).
    pub fn library(context: impl Into<String>) -> impl FnOnce(oauth2_adapters::Error) -> Self {
        let context = context.into();
        move |source| Self::Library {
            context,
            source: Box::new(source),
        }
    }

    /// The process exit code: 2 for bad input (as for bad arguments), 3
    /// when the key is not stored, 4 when a deletion was not confirmed, 1
    /// for everything else.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::NoDatabase
            | Self::UnknownDatabaseUrl { .. }
            | Self::NoSqliteFile(_)
            | Self::BadKeys(_)
            | Self::KeysRequired(_)
            | Self::BadKey
            | Self::ProviderConfig { .. }
            | Self::ProviderMismatch { .. }
            | Self::Spec { .. }
            | Self::CheckInput(_) => 2,
            Self::Library { source, .. }
                if matches!(**source, oauth2_adapters::Error::Configuration { .. }) =>
            {
                2
            }
            Self::NotFound(_) => 3,
            Self::NotConfirmed => 4,
            Self::Library { .. } | Self::NotPersisted(_) | Self::Io { .. } | Self::Capture(_) => 1,
        })
    }

    /// The causes below the message, outermost first (the library error's
    /// sources; each is free of secrets by the library's rules).
    pub fn causes(&self) -> Vec<String> {
        let mut causes = Vec::new();
        let mut next = std::error::Error::source(self);
        // The library error's own message is already part of ours.
        if let Self::Library { .. } | Self::BadKeys(_) | Self::Io { .. } | Self::Spec { .. } = self
        {
            next = next.and_then(std::error::Error::source);
        }
        while let Some(cause) = next {
            let text = cause.to_string();
            // sqlx's messages repeat their source's: show each text once.
            if !causes
                .last()
                .is_some_and(|last: &String| last.contains(&text))
            {
                causes.push(text);
            }
            next = cause.source();
        }
        causes
    }
}

/// A spec error without the file's name twice (a file that cannot be read
/// names it as its field).
fn spec_message(path: &std::path::Path, error: &oauth2_adapters::SpecError) -> String {
    if error.field == path.display().to_string() {
        error.message.clone()
    } else {
        error.to_string()
    }
}

/// The result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;
