//! `check SPEC`: loads and validates a provider spec, then shows what the
//! engine does with it: the authorize URL (`SpecProvider::authorize`) and
//! the token requests of a code exchange, a refresh, client credentials
//! and a revocation, as far as the spec has them.
//!
//! The requests are the engine's own: a second `SpecProvider` of the same
//! spec, pointed at a capturing server on 127.0.0.1 (`capture`), makes
//! the real calls (`handle_callback`, `refresh`, `client_credentials`,
//! `revoke`), and what reaches the server is shown with the spec's host,
//! secrets masked (`mask`). Nothing is sent anywhere else.

mod capture;
mod mask;
mod render;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use oauth2_adapters::prelude::*;
use oauth2_adapters::{
    HttpConfig, ProviderId, ProviderSettings, ProviderSpec, RenewalKind, RetryPolicy, SecretString,
    SpecProvider,
};
use url::Url;

use self::capture::Capture;
use self::mask::{Masks, Shown};
use crate::cli::{CheckArgs, OnOff};
use crate::error::{CliError, CliResult};
use crate::output::{print, print_json};

/// Stand-ins for the secrets the requests carry; each is masked.
const CLIENT_SECRET: &str = "check-placeholder-client-secret";
const CODE: &str = "check-placeholder-authorization-code";
const REFRESH_TOKEN: &str = "check-placeholder-refresh-token";
const ACCESS_TOKEN: &str = "check-placeholder-access-token";

/// Which request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// The code exchange.
    AuthorizationCode,
    /// A refresh.
    RefreshToken,
    /// A client credentials request.
    ClientCredentials,
    /// An RFC 7009 revocation.
    Revocation,
}

impl Grant {
    /// Its name in the JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::Revocation => "revocation",
        }
    }

    /// Its title in the text output.
    pub fn title(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "Code exchange",
            Self::RefreshToken => "Refresh",
            Self::ClientCredentials => "Client credentials",
            Self::Revocation => "Revocation",
        }
    }
}

/// The example authorization.
pub struct Authorization {
    /// The URL the user would be sent to.
    pub url: Url,
    /// The scopes asked for.
    pub scopes: Vec<String>,
}

/// What `check` found.
pub struct Report {
    /// The client id used.
    pub client_id: String,
    /// The redirect URI used.
    pub redirect_uri: String,
    /// Whether the authorization sends PKCE (the spec's, or `--pkce`).
    pub pkce: bool,
    /// The example authorization, when the spec has `[authorize]`.
    pub authorize: Option<Authorization>,
    /// The requests, in the order made.
    pub requests: Vec<(Grant, Shown)>,
    /// The secrets' labels, and what they stand for.
    pub labels: Vec<(String, String)>,
    masks: Masks,
}

/// Runs `check`.
pub async fn run(args: &CheckArgs, json: bool) -> CliResult {
    let spec = match ProviderSpec::load(&args.spec) {
        Ok(spec) => spec,
        Err(source) => {
            if json {
                print_json(&render::invalid_json(&args.spec, &source))?;
            }
            return Err(CliError::Spec {
                path: args.spec.clone(),
                source,
            });
        }
    };
    let report = inspect(&spec, args).await?;
    let text = if json {
        let value = render::json(&args.spec, &spec, &report);
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    } else {
        render::text(&args.spec, &spec, &report)
    };
    if let Some(label) = report.masks.leaked(&text) {
        return Err(CliError::Capture(format!(
            "nothing shown: the output would hold a secret (the one masked as {label})"
        )));
    }
    print(&text)
}

/// Builds the providers and makes every call the spec has.
async fn inspect(spec: &ProviderSpec, args: &CheckArgs) -> CliResult<Report> {
    let mut masks = Masks::default();
    let mut labels = Vec::new();
    let mut label = |masks: &mut Masks, value: &str, label: &str, meaning: &str| {
        masks.add(value, label);
        if !labels.iter().any(|(l, _)| l == label) {
            labels.push((label.to_owned(), meaning.to_owned()));
        }
    };
    let client_secret = match &args.client_secret_env {
        Some(variable) => from_env(variable, "--client-secret-env")?,
        None => CLIENT_SECRET.to_owned(),
    };
    label(
        &mut masks,
        &client_secret,
        mask::CLIENT_SECRET,
        "the client secret",
    );
    let secrets = header_secrets(spec, args)?;
    for (header, name) in &spec.token.secret_headers {
        masks.add_secret_header(header, name);
    }
    for (name, value) in &secrets {
        label(
            &mut masks,
            value,
            &format!("[secret {name}]"),
            &format!(
                "the secret `{name}` of token.secret_headers (sent only when the application \
                 gives it to SpecProviderBuilder::secret)"
            ),
        );
    }

    let capture = Capture::start().await?;
    let build = |base_url: Option<String>| -> CliResult<SpecProvider> {
        let context = format!("building a provider from {}", args.spec.display());
        let http = HttpConfig::default()
            .without_proxy()
            .with_timeout(Duration::from_secs(10));
        let settings = ProviderSettings::with_http_config(&http)
            .map_err(CliError::library(context.clone()))?
            .with_retry_policy(RetryPolicy::never());
        let credentials = ClientCredentials::new(args.client_id.clone(), client_secret.clone());
        let mut builder = SpecProvider::builder(spec.clone(), credentials).settings(settings);
        if let Some(on) = args.pkce {
            builder = builder.pkce(on == OnOff::On);
        }
        for (name, value) in &secrets {
            builder = builder.secret(name.clone(), value.clone());
        }
        if let Some(url) = base_url {
            builder = builder.base_url(url);
        }
        builder.build().map_err(CliError::library(context))
    };
    // `real` knows the spec's endpoints; `captor` makes the same calls to
    // the capturing server.
    let real = build(None)?;
    let captor = build(Some(capture.base_url()))?;
    let mut requests = Vec::new();
    let token_format = spec.token.body;
    let shown = |masks: &Masks, captured, url: &Url, format| {
        masks.show(&captured, &url.origin().ascii_serialization(), format)
    };

    let mut authorize = None;
    if spec.authorize.is_some() {
        let mut request = AuthorizeRequest::new(&args.redirect_uri)
            .map_err(CliError::library("--redirect-uri"))?;
        if !args.scopes.is_empty() {
            request = request.with_scopes(args.scopes.iter().cloned());
        }
        for (name, value) in &args.params {
            request = request.with_param(name.clone(), value.clone());
        }
        let (url, pending) = real
            .authorize(request)
            .map_err(CliError::library("building the authorize URL"))?;
        if let Some(verifier) = pending.pkce_verifier() {
            let meaning = "the PKCE verifier (its challenge is in the authorize URL)";
            label(
                &mut masks,
                verifier.expose_secret(),
                "[code_verifier]",
                meaning,
            );
        }
        label(&mut masks, CODE, "[code]", "the authorization code");
        authorize = Some(Authorization {
            url,
            scopes: pending.scopes().to_vec(),
        });
        let callback = CallbackParams {
            code: Some(SecretString::from(CODE)),
            state: Some(pending.state().expose_secret().to_owned()),
            ..CallbackParams::default()
        };
        let captured = capture
            .one(captor.handle_callback(callback, pending))
            .await
            .map_err(CliError::library("building the code exchange"))?;
        let exchange = shown(&masks, captured, real.token_url(), token_format);
        requests.push((Grant::AuthorizationCode, exchange));
    }

    let renewal = spec.renewal_kind();
    let mut token = Token::new(
        ProviderId::new(spec.id.clone()),
        SecretString::from(ACCESS_TOKEN),
        SystemTime::now(),
    );
    if renewal == RenewalKind::RefreshToken {
        label(
            &mut masks,
            REFRESH_TOKEN,
            "[refresh_token]",
            "the refresh token",
        );
        token.refresh_token = Some(SecretString::from(REFRESH_TOKEN));
        let captured = capture
            .one(captor.refresh(&token))
            .await
            .map_err(CliError::library("building the refresh"))?;
        let refresh = shown(&masks, captured, real.refresh_url(), token_format);
        requests.push((Grant::RefreshToken, refresh));
    }
    if spec.authorize.is_none() || renewal == RenewalKind::Reacquire {
        let captured = capture
            .one(captor.client_credentials(&args.scopes))
            .await
            .map_err(CliError::library("building the client credentials request"))?;
        let request = shown(&masks, captured, real.token_url(), token_format);
        requests.push((Grant::ClientCredentials, request));
    }
    if let (Some(revocation), Some(url)) = (&spec.revocation, real.revocation_url()) {
        label(
            &mut masks,
            ACCESS_TOKEN,
            "[access_token]",
            "the access token",
        );
        let captured = capture
            .one(captor.revoke(&token))
            .await
            .map_err(CliError::library("building the revocation"))?;
        let request = shown(&masks, captured, url, revocation.body);
        requests.push((Grant::Revocation, request));
    }
    Ok(Report {
        client_id: args.client_id.clone(),
        redirect_uri: args.redirect_uri.clone(),
        pkce: real.uses_pkce(),
        authorize,
        requests,
        labels,
        masks,
    })
}

/// The secrets of the spec's `token.secret_headers`: from `--secret-env`,
/// else a placeholder each.
fn header_secrets(spec: &ProviderSpec, args: &CheckArgs) -> CliResult<BTreeMap<String, String>> {
    let mut secrets = BTreeMap::new();
    for (name, variable) in &args.secret_envs {
        if !spec.token.secret_headers.values().any(|s| s == name) {
            return Err(CliError::CheckInput(format!(
                "--secret-env {name}=…: the spec's token.secret_headers send no secret `{name}`"
            )));
        }
        secrets.insert(name.clone(), from_env(variable, "--secret-env")?);
    }
    for name in spec.token.secret_headers.values() {
        secrets
            .entry(name.clone())
            .or_insert_with(|| format!("check-placeholder-secret-{name}"));
    }
    Ok(secrets)
}

/// A secret from the environment variable `variable` (its value never
/// quoted; nor the name, unless it looks like one: it may be a secret
/// typed in the wrong place).
fn from_env(variable: &str, option: &str) -> CliResult<String> {
    if !crate::provider_config::is_variable_name(variable) {
        return Err(CliError::CheckInput(format!(
            "{option} takes the name of an environment variable (A-Z, 0-9 and _, not starting \
             with a digit), not the secret itself"
        )));
    }
    let why = match std::env::var(variable) {
        Ok(value) if !value.is_empty() => return Ok(value),
        Ok(_) => "is empty",
        Err(std::env::VarError::NotPresent) => "is not set",
        Err(std::env::VarError::NotUnicode(_)) => "is not valid UTF-8",
    };
    Err(CliError::CheckInput(format!(
        "the environment variable `{variable}` ({option}) {why}"
    )))
}
