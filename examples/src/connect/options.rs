//! The connect app's settings and their command line.

use std::path::PathBuf;

use crate::BoxError;

/// The port the app listens on unless `--port` says otherwise.
pub const DEFAULT_PORT: u16 = 3000;

/// The environment variables whose presence selects the real providers.
pub(crate) const CLIENT_ID_VARS: [&str; 2] = ["HYPERSKU_CLIENT_ID", "HIKE_CLIENT_ID"];

/// How the connect app is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// The port on 127.0.0.1 to listen on; 0 picks a free one.
    pub port: u16,
    /// The SQLite database file; `None` makes a new one in a temporary
    /// directory that is removed when the app stops.
    pub db: Option<PathBuf>,
    /// Use the real HyperSKU and Hike (credentials from the environment)
    /// instead of starting the testkit's mocks.
    pub real: bool,
    /// The application name the mocks' consent pages show.
    pub app_name: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            db: None,
            real: false,
            app_name: "Example App".to_owned(),
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the app with these options.
    Run(Options),
    /// Print [`USAGE`] and exit.
    Help,
}

/// The `--help` text.
pub const USAGE: &str = "\
usage: cargo run --example connect [-- OPTIONS]

  --port N     listen on 127.0.0.1:N (default 3000; 0 picks a free port)
  --db PATH    keep the tokens in this SQLite file (default: a new file in a
               temporary directory, removed on exit)
  --real       use the real HyperSKU and Hike instead of the local mocks; also
               chosen when HYPERSKU_CLIENT_ID or HIKE_CLIENT_ID is set. Reads
               HYPERSKU_CLIENT_ID, HYPERSKU_CLIENT_SECRET (optional
               HYPERSKU_AUTHORIZE_URL, HYPERSKU_API_BASE_URL) and HIKE_CLIENT_ID,
               HIKE_CLIENT_SECRET (optional HIKE_BASE_URL)
  --help       show this text
";

impl Command {
    /// Parses the arguments (without the program name). `--real` is implied
    /// when one of the providers' client id variables is set.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, BoxError> {
        let mut options = Options {
            real: CLIENT_ID_VARS
                .iter()
                .any(|name| std::env::var_os(name).is_some()),
            ..Options::default()
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| format!("{arg} needs a value (see --help)"))
            };
            match arg.as_str() {
                "--port" => {
                    let text = value()?;
                    options.port = text
                        .parse()
                        .map_err(|_| format!("--port {text:?} is not a port number"))?;
                }
                "--db" => options.db = Some(PathBuf::from(value()?)),
                "--real" => options.real = true,
                "--help" | "-h" => return Ok(Self::Help),
                other => return Err(format!("unknown option {other:?} (see --help)").into()),
            }
        }
        Ok(Self::Run(options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, BoxError> {
        Command::parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn options_are_parsed_and_bad_ones_named() {
        let Ok(Command::Run(options)) = parse(&["--port", "0", "--db", "/tmp/x.sqlite"]) else {
            panic!("expected options");
        };
        assert_eq!(options.port, 0);
        assert_eq!(options.db, Some(PathBuf::from("/tmp/x.sqlite")));
        assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
        let err = parse(&["--port", "http"]).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("--port \"http\" is not a port number"));
        let err = parse(&["--db"]).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("--db needs a value (see --help)"));
        assert!(parse(&["--frobnicate"]).is_err());
    }
}
