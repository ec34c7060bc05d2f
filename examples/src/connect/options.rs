//! The connect app's settings and their command line.

use std::path::PathBuf;

use url::Url;

use crate::BoxError;

/// The port the app listens on unless `--port` says otherwise.
pub const DEFAULT_PORT: u16 = 3000;

/// The environment variables whose presence selects the real providers.
pub(crate) const CLIENT_ID_VARS: [&str; 2] = ["HYPERSKU_CLIENT_ID", "HIKE_CLIENT_ID"];

/// Which HyperSKU and Hike the app connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderChoice {
    /// Start the testkit's mock HyperSKU and Hike on 127.0.0.1 (the default).
    StartMocks,
    /// Use mocks another instance of the app started (the URLs it printed),
    /// so two instances serve the same sign-ins.
    MocksAt {
        /// The mock HyperSKU's base URL.
        hypersku: Url,
        /// The mock Hike's base URL.
        hike: Url,
    },
    /// The real providers, credentials from the environment.
    Real,
}

/// How the connect app is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// The port on 127.0.0.1 to listen on; 0 picks a free one.
    pub port: u16,
    /// The address browsers use to reach the app (a load balancer's, a
    /// TLS proxy's), where the providers send them back; `None` is
    /// `http://127.0.0.1:<port>/`. Its origin is the only one the app's
    /// forms are accepted from, and an `https` one makes the session cookie
    /// `Secure`.
    pub public_url: Option<Url>,
    /// The SQLite file the tokens are kept in; `None` makes one in a
    /// temporary directory that is removed when the app stops.
    pub db: Option<PathBuf>,
    /// The SQLite file the browser sessions (the sign-ins in progress) are
    /// kept in; `None` makes one in the temporary directory.
    pub sessions: Option<PathBuf>,
    /// Which providers to connect to.
    pub providers: ProviderChoice,
    /// The application name the mocks' consent pages show.
    pub app_name: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            public_url: None,
            db: None,
            sessions: None,
            providers: ProviderChoice::StartMocks,
            app_name: "Example App".to_owned(),
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the app with these options.
    Run(Box<Options>),
    /// Print [`USAGE`] and exit.
    Help,
}

/// The `--help` text.
pub const USAGE: &str = "\
usage: cargo run --example connect [-- OPTIONS]

  --port N              listen on 127.0.0.1:N (default 3000; 0 picks a free port)
  --public-url URL      the address browsers use (a load balancer's, an https
                        proxy's); default http://127.0.0.1:PORT/. Forms are
                        accepted from its origin only; https makes the session
                        cookie Secure
  --db PATH             keep the tokens in this SQLite file (default: a new file
                        in a temporary directory, removed on exit)
  --sessions PATH       keep the browser sessions (sign-ins in progress) in this
                        SQLite file (default: beside the temporary token file)
  --mocks-at HS,HIKE    use the mock HyperSKU and Hike another instance started
                        (the two URLs it printed, comma-separated) instead of
                        starting new ones
  --real                use the real HyperSKU and Hike instead of the local mocks; also
                        chosen when HYPERSKU_CLIENT_ID or HIKE_CLIENT_ID is set. Reads
                        HYPERSKU_CLIENT_ID, HYPERSKU_CLIENT_SECRET (optional
                        HYPERSKU_AUTHORIZE_URL, HYPERSKU_API_BASE_URL) and HIKE_CLIENT_ID,
                        HIKE_CLIENT_SECRET (optional HIKE_BASE_URL)
  --help                show this text

Two instances behind one address share sign-ins when they share --public-url,
--db, --sessions and the providers (--mocks-at the first one's mocks).
";

impl Command {
    /// Parses the arguments (without the program name). `--real` is implied
    /// when one of the providers' client id variables is set and neither
    /// `--mocks-at` is given.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, BoxError> {
        let mut options = Options::default();
        let real_from_env = CLIENT_ID_VARS
            .iter()
            .any(|name| std::env::var_os(name).is_some());
        let mut real = false;
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
                "--public-url" => options.public_url = Some(public_url(&value()?)?),
                "--db" => options.db = Some(PathBuf::from(value()?)),
                "--sessions" => options.sessions = Some(PathBuf::from(value()?)),
                "--mocks-at" => options.providers = mocks_at(&value()?)?,
                "--real" => real = true,
                "--help" | "-h" => return Ok(Self::Help),
                other => return Err(format!("unknown option {other:?} (see --help)").into()),
            }
        }
        let mocks_at_given = options.providers != ProviderChoice::StartMocks;
        if real && mocks_at_given {
            return Err("--real and --mocks-at exclude each other".into());
        }
        if real || (real_from_env && !mocks_at_given) {
            options.providers = ProviderChoice::Real;
        }
        Ok(Self::Run(Box::new(options)))
    }
}

/// `--public-url`: an http(s) URL; a missing final `/` is added, so the
/// callback paths are joined under it.
fn public_url(text: &str) -> Result<Url, String> {
    let mut url =
        Url::parse(text).map_err(|e| format!("--public-url {text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("--public-url {text:?} is not an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "--public-url {text:?} must not have a query or fragment"
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `--mocks-at HYPERSKU_URL,HIKE_URL`.
fn mocks_at(text: &str) -> Result<ProviderChoice, String> {
    let parse = |part: &str| {
        Url::parse(part.trim()).map_err(|e| format!("--mocks-at: {part:?} is not a URL: {e}"))
    };
    match text.split(',').collect::<Vec<_>>().as_slice() {
        [hypersku, hike] => Ok(ProviderChoice::MocksAt {
            hypersku: parse(hypersku)?,
            hike: parse(hike)?,
        }),
        _ => Err(format!(
            "--mocks-at {text:?}: expected two URLs, HyperSKU's then Hike's, comma-separated"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, BoxError> {
        Command::parse(args.iter().map(|a| (*a).to_owned()))
    }

    fn run(args: &[&str]) -> Options {
        match parse(args) {
            Ok(Command::Run(options)) => *options,
            other => panic!("expected options from {args:?}, got {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        parse(args).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn options_are_parsed_and_bad_ones_named() {
        let options = run(&[
            "--port",
            "0",
            "--db",
            "/tmp/x.sqlite",
            "--sessions",
            "/tmp/s.sqlite",
        ]);
        assert_eq!(options.port, 0);
        assert_eq!(options.db, Some(PathBuf::from("/tmp/x.sqlite")));
        assert_eq!(options.sessions, Some(PathBuf::from("/tmp/s.sqlite")));
        assert!(matches!(parse(&["--help"]), Ok(Command::Help)));
        assert_eq!(
            error(&["--port", "http"]),
            "--port \"http\" is not a port number"
        );
        assert_eq!(error(&["--db"]), "--db needs a value (see --help)");
        assert!(parse(&["--frobnicate"]).is_err());
    }

    #[test]
    fn public_url_and_mocks_at() {
        let options = run(&[
            "--public-url",
            "https://app.example/connect",
            "--mocks-at",
            "http://127.0.0.1:1/, http://127.0.0.1:2/",
        ]);
        assert_eq!(
            options.public_url.map(String::from).as_deref(),
            Some("https://app.example/connect/")
        );
        let ProviderChoice::MocksAt { hypersku, hike } = options.providers else {
            panic!("expected --mocks-at");
        };
        assert_eq!((hypersku.port(), hike.port()), (Some(1), Some(2)));
        assert!(error(&["--public-url", "ftp://x/"]).contains("not an http(s) URL"));
        assert!(error(&["--public-url", "https://x/?a"]).contains("query"));
        assert!(error(&["--mocks-at", "http://127.0.0.1:1/"]).contains("two URLs"));
        assert!(error(&["--mocks-at", "a,b"]).contains("not a URL"));
        assert!(error(&["--mocks-at", "http://h:1/,http://h:2/", "--real"]).contains("exclude"));
    }
}
