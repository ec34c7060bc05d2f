//! The provider a `tokens refresh` talks to, from a small TOML file: which
//! adapter, where, the client id, and the name of the environment variable
//! holding the client secret. The secret is never in the file nor on the
//! command line.
//!
//! ```toml
//! kind = "hike"                         # hike | hypersku | partner | standard
//! client_id = "my-app"
//! client_secret_env = "HIKE_CLIENT_SECRET"
//! base_url = "https://api.hikeup.com"   # optional for hike and hypersku
//! ```
//!
//! | field | kinds | meaning |
//! |---|---|---|
//! | `kind` | all | the adapter: `hike`, `hypersku`, `partner`, or `standard` (any RFC 6749 provider) |
//! | `client_id` | all | the application's client id |
//! | `client_secret_env` | all | the environment variable holding the client secret |
//! | `base_url` | hike, hypersku, partner | the provider's host (required for partner; default: the adapter's) |
//! | `api_key_env` | hypersku | the environment variable holding the API key sent as `Authorization`, if used |
//! | `token_path` | partner | the token path (default `/api/oauth/token`) |
//! | `id` | standard | the provider id in the tokens' keys |
//! | `token_url` | standard | the token endpoint |
//! | `client_auth` | standard | `client_secret_basic` (default) or `client_secret_post` |
//! | `renewal` | standard | `refresh_token` (default) or `client_credentials` |
//!
//! Errors name the file, the field and what is wrong, and never quote a
//! value read from the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oauth2_adapters::hike::Hike;
use oauth2_adapters::hypersku::HyperSku;
use oauth2_adapters::partner::Partner;
use oauth2_adapters::{
    ClientAuth, ClientCredentials, Provider, ProviderId, RenewalKind, StandardProvider,
};

use crate::error::{CliError, CliResult};

/// Which adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `oauth2_adapters::hike::Hike`.
    Hike,
    /// `oauth2_adapters::hypersku::HyperSku`.
    HyperSku,
    /// `oauth2_adapters::partner::Partner`.
    Partner,
    /// `oauth2_adapters::StandardProvider`.
    Standard,
}

impl Kind {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "hike" => Self::Hike,
            "hypersku" => Self::HyperSku,
            "partner" => Self::Partner,
            "standard" => Self::Standard,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Hike => "hike",
            Self::HyperSku => "hypersku",
            Self::Partner => "partner",
            Self::Standard => "standard",
        }
    }

    /// The fields a file of this kind may have, besides the common ones.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Hike => &["base_url"],
            Self::HyperSku => &["base_url", "api_key_env"],
            Self::Partner => &["base_url", "token_path"],
            Self::Standard => &["id", "token_url", "client_auth", "renewal"],
        }
    }
}

/// The fields every kind has.
const COMMON: &[&str] = &["kind", "client_id", "client_secret_env"];

/// A provider configuration file, read and checked (no secret in it).
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    path: PathBuf,
    table: toml::Table,
    kind: Kind,
}

impl ProviderConfig {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> CliResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|err| CliError::ProviderConfig {
            path: path.to_owned(),
            reason: format!("cannot be read: {}", err.kind()),
        })?;
        Self::parse(path, &text)
    }

    /// Checks `text`, the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> CliResult<Self> {
        let fail = |reason: String| CliError::ProviderConfig {
            path: path.to_owned(),
            reason,
        };
        let table: toml::Table = toml::from_str(text).map_err(|err| {
            // The parser's message only, never its snippet of the file.
            let at = err
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!(" at line {line}, column {column}")
                })
                .unwrap_or_default();
            fail(format!("not valid TOML{at}: {}", err.message().trim()))
        })?;
        if table.contains_key("client_secret") {
            return Err(fail(
                "the client secret is never read from the file: put it in an environment \
                 variable and name that variable in `client_secret_env`"
                    .into(),
            ));
        }
        let kind_text = string_field(&table, "kind")
            .map_err(fail)?
            .ok_or_else(|| fail("`kind` is missing: hike, hypersku, partner or standard".into()))?;
        let kind = Kind::parse(kind_text)
            .ok_or_else(|| fail("`kind` must be hike, hypersku, partner or standard".into()))?;
        for name in table.keys() {
            if !COMMON.contains(&name.as_str()) && !kind.fields().contains(&name.as_str()) {
                return Err(fail(format!(
                    "{} is not a field of a `{}` provider (its fields: {})",
                    field_name(name),
                    kind.name(),
                    COMMON
                        .iter()
                        .chain(kind.fields())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let config = Self {
            path: path.to_owned(),
            table,
            kind,
        };
        for name in COMMON.iter().chain(kind.fields()) {
            config.string(name)?;
        }
        for name in ["client_id", "client_secret_env"] {
            config.required(name)?;
        }
        for name in ["client_secret_env", "api_key_env"] {
            if let Some(variable) = config.string(name)? {
                if !is_variable_name(variable) {
                    return Err(config.fail(format!(
                        "`{name}` must be the name of an environment variable (A-Z, 0-9 and _, \
                         e.g. HIKE_CLIENT_SECRET), not the secret itself; its value is not shown"
                    )));
                }
            }
        }
        match kind {
            Kind::Partner => {
                config.required("base_url")?;
            }
            Kind::Standard => {
                config.required("id")?;
                config.required("token_url")?;
                config.client_auth()?;
                config.renewal_kind()?;
            }
            Kind::Hike | Kind::HyperSku => {}
        }
        Ok(config)
    }

    /// The id of the provider's tokens (in their keys).
    pub fn provider_id(&self) -> ProviderId {
        match self.kind {
            Kind::Hike => oauth2_adapters::hike::PROVIDER_ID.clone(),
            Kind::HyperSku => oauth2_adapters::hypersku::PROVIDER_ID.clone(),
            Kind::Partner => oauth2_adapters::partner::PROVIDER_ID.clone(),
            Kind::Standard => ProviderId::new(self.string("id").ok().flatten().unwrap_or_default()),
        }
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Builds the adapter, reading the client secret (and a HyperSKU API
    /// key) from the environment.
    pub fn build(&self) -> CliResult<Arc<dyn Provider>> {
        let client_id = self.required("client_id")?;
        let secret = self.secret_from_env("client_secret_env")?;
        let credentials = ClientCredentials::new(client_id, secret);
        let base_url = self.string("base_url")?;
        let built = |what: &str| {
            CliError::library(format!(
                "{}: building the {what} provider",
                self.path.display()
            ))
        };
        Ok(match self.kind {
            Kind::Hike => {
                let mut builder = Hike::builder(credentials);
                if let Some(url) = base_url {
                    builder = builder.base_url(url);
                }
                Arc::new(builder.build().map_err(built("hike"))?)
            }
            Kind::HyperSku => {
                let mut builder = HyperSku::builder(credentials);
                if let Some(url) = base_url {
                    builder = builder.base_url(url);
                }
                if self.string("api_key_env")?.is_some() {
                    builder = builder.api_key(self.secret_from_env("api_key_env")?);
                }
                Arc::new(builder.build().map_err(built("hypersku"))?)
            }
            Kind::Partner => {
                let mut builder =
                    Partner::builder(credentials).base_url(self.required("base_url")?);
                if let Some(path) = self.string("token_path")? {
                    builder = builder.token_path(path);
                }
                Arc::new(builder.build().map_err(built("partner"))?)
            }
            Kind::Standard => Arc::new(
                StandardProvider::builder(self.required("id")?.to_owned())
                    .token_url(self.required("token_url")?)
                    .client_auth(self.client_auth()?)
                    .renewal_kind(self.renewal_kind()?)
                    .build(credentials)
                    .map_err(built("standard"))?,
            ),
        })
    }

    fn fail(&self, reason: String) -> CliError {
        CliError::ProviderConfig {
            path: self.path.clone(),
            reason,
        }
    }

    fn string(&self, name: &str) -> CliResult<Option<&str>> {
        string_field(&self.table, name).map_err(|reason| self.fail(reason))
    }

    fn required(&self, name: &str) -> CliResult<&str> {
        match self.string(name)? {
            Some(value) if !value.trim().is_empty() => Ok(value),
            Some(_) => Err(self.fail(format!("`{name}` is empty"))),
            None => Err(self.fail(format!(
                "`{name}` is missing (a `{}` provider needs it)",
                self.kind.name()
            ))),
        }
    }

    fn client_auth(&self) -> CliResult<ClientAuth> {
        match self.string("client_auth")? {
            None | Some("client_secret_basic") => Ok(ClientAuth::BasicAuth),
            Some("client_secret_post") => Ok(ClientAuth::RequestBody),
            Some(_) => {
                Err(self
                    .fail("`client_auth` must be client_secret_basic or client_secret_post".into()))
            }
        }
    }

    fn renewal_kind(&self) -> CliResult<RenewalKind> {
        match self.string("renewal")? {
            None | Some("refresh_token") => Ok(RenewalKind::RefreshToken),
            Some("client_credentials") => Ok(RenewalKind::Reacquire),
            Some(_) => {
                Err(self.fail("`renewal` must be refresh_token or client_credentials".into()))
            }
        }
    }

    /// The value of the environment variable named by the field `name`.
    fn secret_from_env(&self, name: &str) -> CliResult<String> {
        let variable = self.required(name)?;
        match std::env::var(variable) {
            Ok(value) if !value.is_empty() => Ok(value),
            Ok(_) => Err(self.fail(format!(
                "the environment variable `{}` (named by `{name}`) is empty",
                variable
            ))),
            Err(std::env::VarError::NotPresent) => Err(self.fail(format!(
                "the environment variable `{}` (named by `{name}`) is not set",
                variable
            ))),
            Err(std::env::VarError::NotUnicode(_)) => Err(self.fail(format!(
                "the environment variable `{}` (named by `{name}`) is not valid UTF-8",
                variable
            ))),
        }
    }
}

/// The string field `name` of `table`, if present; an error (quoting no
/// value) if it is not a string.
fn string_field<'a>(table: &'a toml::Table, name: &str) -> Result<Option<&'a str>, String> {
    match table.get(name) {
        None => Ok(None),
        Some(toml::Value::String(value)) => Ok(Some(value)),
        Some(other) => Err(format!(
            "`{name}` must be a string, not {}",
            other.type_str()
        )),
    }
}

/// `NAME_LIKE_THIS`: what `*_env` fields hold.
pub(crate) fn is_variable_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// An unknown field's name as shown: quoted when it looks like a field
/// name (lowercase letters and `_`), else not shown (it may be a secret
/// pasted in the wrong place).
fn field_name(name: &str) -> String {
    let plain =
        (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if plain {
        format!("`{name}`")
    } else {
        "a field whose name is not shown (it does not look like a field name)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> CliResult<ProviderConfig> {
        ProviderConfig::parse(Path::new("p.toml"), text)
    }

    fn reason(text: &str) -> String {
        parse(text).expect_err("refused").to_string()
    }

    #[test]
    fn each_kind_takes_its_fields() {
        let hike = parse("kind = 'hike'\nclient_id = 'a'\nclient_secret_env = 'S'").unwrap();
        assert_eq!(hike.provider_id().as_str(), "hike");
        let standard = parse(
            "kind = 'standard'\nid = 'acme'\ntoken_url = 'https://acme.example/token'\n\
             client_id = 'a'\nclient_secret_env = 'S'\nclient_auth = 'client_secret_post'\n\
             renewal = 'client_credentials'",
        )
        .unwrap();
        assert_eq!(standard.provider_id().as_str(), "acme");
        assert_eq!(standard.renewal_kind().unwrap(), RenewalKind::Reacquire);
        assert!(
            reason("kind = 'partner'\nclient_id = 'a'\nclient_secret_env = 'S'")
                .contains("`base_url` is missing")
        );
        assert!(
            reason("kind = 'hike'\nclient_id = 'a'\nclient_secret_env = 'S'\ntoken_url = 'x'")
                .contains("`token_url` is not a field of a `hike` provider")
        );
        assert!(reason("kind = 'nope'").contains("`kind` must be"));
        assert!(reason("client_id = 'a'").contains("`kind` is missing"));
        assert!(
            reason("kind = 'hike'\nclient_id = 5\nclient_secret_env = 'S'")
                .contains("`client_id` must be a string, not integer")
        );
    }

    #[test]
    fn no_error_quotes_the_file() {
        let secret = "sk_live_0123456789abcdef";
        for text in [
            format!("kind = 'hike'\nclient_id = 'a'\nclient_secret = '{secret}'"),
            format!("kind = 'hike'\nclient_id = 'a'\nclient_secret_env = {secret}"),
            format!("kind = 'hike'\nclient_id = 'a'\nclient_secret_env = '{secret}'"),
            format!("kind = 'hypersku'\nclient_id = 'a'\nclient_secret_env = 'S'\napi_key_env = '{secret}'"),
            format!("kind = 'hike'\nclient_id = 'a'\nclient_secret_env = 'S'\n{secret} = 1"),
            format!("kind = 'hike'\nclient_id = '{secret}"),
            format!("kind = 'hike'\nclient_id = ['{secret}']\nclient_secret_env = 'S'"),
            format!("kind = 'standard'\nid = 'x'\ntoken_url = 'u'\nclient_id = 'a'\nclient_secret_env = 'S'\nclient_auth = '{secret}'"),
        ] {
            let reason = reason(&text);
            assert!(!reason.contains("0123456789abcdef"), "{reason}");
            assert!(reason.starts_with("p.toml: "), "{reason}");
        }
        assert!(
            reason("kind = 'hike'\nclient_id = 'a'\nclient_secret = 'x'")
                .contains("client_secret_env")
        );
        assert!(reason("kind = 'hike'\n\nclient_id = 'a").contains("line 3"));
    }

    #[test]
    fn a_missing_secret_variable_is_named() {
        let config = parse(
            "kind = 'hike'\nclient_id = 'a'\nclient_secret_env = 'OAUTH2_ADAPTERS_CLI_TEST_UNSET_VARIABLE'",
        )
        .unwrap();
        let err = config.build().err().expect("refused").to_string();
        assert!(err.contains("`OAUTH2_ADAPTERS_CLI_TEST_UNSET_VARIABLE` (named by `client_secret_env`) is not set"), "{err}");
    }
}
