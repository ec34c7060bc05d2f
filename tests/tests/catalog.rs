//! The provider catalog (`examples/providers/*.toml`): every file loads,
//! states its provider's documented quirks, and speaks its dialect against
//! the testkit's `SpecMock` through a `SpecProvider` (authorize URL, token
//! requests and client authentication, the response mapping, refresh or
//! client credentials, revocation).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oauth2_adapters::testkit::spec::SUBJECT;
use oauth2_adapters::testkit::{MockConfig, MockServer, RecordedRequest, SpecMock};
use oauth2_adapters::{
    AuthorizationCodeProvider, AuthorizeRequest, BodyFormat, CallbackParams, ClientAuthMethod,
    ClientCredentialsProvider, ExposeSecret, ManualClock, Pkce, Provider, ProviderSpec,
    RefreshTokenProvider, RenewalKind, SpecProvider, Token,
};
use serde_json::{json, Map, Value};
use url::Url;

const START: u64 = 1_800_000_000;
const REDIRECT: &str = "http://127.0.0.1:8976/callback";
const SCOPES: [&str; 2] = ["scope.one", "scope.two"];
/// How many spec files the catalog holds at least (the seeds included).
const AT_LEAST: usize = 15;

type Check = Result<(), String>;

fn catalog_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/providers")
}

/// Every spec file of the catalog, `(file stem, path)`, sorted.
fn catalog() -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(catalog_dir())
        .expect("examples/providers/ is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml" || e == "json"))
        .map(|path| {
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (stem, path)
        })
        .collect();
    files.sort();
    files
}

fn load(name: &str, path: &Path) -> ProviderSpec {
    ProviderSpec::load(path).unwrap_or_else(|e| panic!("{name} ({}): {e}", path.display()))
}

#[test]
fn every_provider_file_loads() {
    let files = catalog();
    assert!(
        files.len() >= AT_LEAST,
        "examples/providers/ holds {} spec files, expected at least {AT_LEAST}",
        files.len()
    );
    for (name, path) in &files {
        let spec = load(name, path);
        assert_eq!(&spec.id, name, "{name}: the id must be the file's name");
        assert!(!spec.docs.is_empty(), "{name}: names no documentation page");
        for page in &spec.docs {
            let url = page.split_whitespace().next().unwrap_or_default();
            assert!(
                url.starts_with("https://"),
                "{name}: {page:?} is not an https page"
            );
        }
        spec.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// What each provider's documentation says and its file must state.
fn stated_quirks(name: &str, spec: &ProviderSpec) -> Option<Vec<(&'static str, bool)>> {
    let authorize = spec.authorize.as_ref();
    let extra = |param: &str, value: &str| {
        authorize.is_some_and(|a| a.extra_params.get(param).map(String::as_str) == Some(value))
    };
    let scope =
        |scope: &str| authorize.is_some_and(|a| a.default_scopes.iter().any(|s| s == scope));
    let auth = spec.token.client_auth;
    let basic = auth == ClientAuthMethod::ClientSecretBasic;
    let post = auth == ClientAuthMethod::ClientSecretPost;
    let json = spec.token.body == BodyFormat::Json;
    let revocation = spec.revocation.is_some();
    let rotates = spec.rotates_refresh_tokens;
    let refreshes = spec.renewal_kind() == RenewalKind::RefreshToken;
    Some(match name {
        "github" => vec![
            (
                "tokens never expire (renewal never)",
                spec.renewal_kind() == RenewalKind::Never,
            ),
            (
                "Accept: application/json",
                spec.token
                    .headers
                    .get("Accept")
                    .is_some_and(|v| v == "application/json"),
            ),
            (
                "granted scopes comma-separated",
                spec.response.scope_separator.as_deref() == Some(","),
            ),
            ("credentials in the body", post),
        ],
        "google" => vec![
            ("access_type=offline", extra("access_type", "offline")),
            ("prompt=consent", extra("prompt", "consent")),
            ("refresh tokens not rotated", refreshes && !rotates),
            ("RFC 7009 revocation", revocation),
            ("credentials in the body", post),
        ],
        "microsoft-entra" => vec![
            (
                "{tenant} = common",
                authorize.is_some_and(|a| a.url.contains("/common/"))
                    && spec.token.url.contains("/common/"),
            ),
            ("offline_access scope", scope("offline_access")),
            ("refresh tokens rotated", refreshes && rotates),
        ],
        "slack" => vec![
            (
                "comma scope separator",
                authorize.is_some_and(|a| a.scope_separator == ","),
            ),
            (
                "authed_user token",
                spec.response
                    .access_token
                    .contains("authed_user.access_token"),
            ),
            (
                "bot tokens are Bearer",
                spec.response.bearer_token_types.iter().any(|t| t == "bot"),
            ),
            ("Basic auth", basic),
        ],
        "salesforce" => vec![
            ("refresh_token scope", scope("refresh_token")),
            (
                "identity URL as subject",
                spec.response.subject.as_deref() == Some("id"),
            ),
            ("RFC 7009 revocation", revocation),
        ],
        "dropbox" => vec![
            (
                "token_access_type=offline",
                extra("token_access_type", "offline"),
            ),
            ("Basic auth", basic),
            ("refresh tokens not rotated", refreshes && !rotates),
        ],
        "atlassian" => vec![
            (
                "audience=api.atlassian.com",
                extra("audience", "api.atlassian.com"),
            ),
            ("prompt=consent", extra("prompt", "consent")),
            ("offline_access scope", scope("offline_access")),
            ("JSON bodies", json),
            ("rotating refresh tokens", refreshes && rotates),
        ],
        "zoom" => vec![
            ("Basic auth", basic),
            ("rotating refresh tokens", refreshes && rotates),
            ("RFC 7009-style revocation", revocation),
        ],
        "notion" => vec![
            ("Basic auth", basic),
            ("JSON bodies", json),
            (
                "Notion-Version header",
                spec.token.headers.contains_key("Notion-Version"),
            ),
            ("owner=user", extra("owner", "user")),
        ],
        "linkedin" => vec![
            ("credentials in the body", post),
            ("refresh tokens not rotated", refreshes && !rotates),
        ],
        "xero" => vec![
            ("Basic auth", basic),
            ("offline_access scope", scope("offline_access")),
            ("rotating refresh tokens", refreshes && rotates),
            ("RFC 7009 revocation", revocation),
        ],
        "quickbooks" => vec![
            ("Basic auth", basic),
            (
                "x_refresh_token_expires_in",
                spec.response.refresh_expires_in.as_deref() == Some("x_refresh_token_expires_in"),
            ),
            (
                "JSON revocation",
                spec.revocation
                    .as_ref()
                    .is_some_and(|r| r.body == BodyFormat::Json),
            ),
        ],
        "paypal" => vec![
            (
                "client credentials only",
                spec.authorize.is_none() && spec.renewal_kind() == RenewalKind::Reacquire,
            ),
            ("Basic auth", basic),
        ],
        "hypersku" | "hike" => vec![],
        _ => return None,
    })
}

#[test]
fn each_file_states_its_providers_documented_quirks() {
    let mut failures = Vec::new();
    for (name, path) in catalog() {
        let spec = load(&name, &path);
        match stated_quirks(&name, &spec) {
            None => failures.push(format!("{name}: no quirks listed in this test")),
            Some(quirks) => failures.extend(
                quirks
                    .into_iter()
                    .filter(|(_, stated)| !stated)
                    .map(|(quirk, _)| format!("{name}: the file does not state {quirk}")),
            ),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Fields the mock adds to every answer, which must come back in
/// `Token::extra`: one for every provider, and what the provider documents.
fn response_extras(name: &str) -> Map<String, Value> {
    let mut extras = json!({"catalog_provider": name});
    let documented = match name {
        "salesforce" => {
            json!({"instance_url": "https://acme.my.salesforce.com", "issued_at": "1800000000000"})
        }
        "slack" => json!({"app_id": "A0KRD7HC3", "bot_user_id": "U0KRQLJ9H"}),
        "notion" => json!({"workspace_id": "w-1", "workspace_name": "Acme"}),
        "google" | "microsoft-entra" | "xero" => json!({"id_token": "header.claims.signature"}),
        "dropbox" => json!({"uid": "12345"}),
        "zoom" => json!({"api_url": "https://api.zoom.us"}),
        "paypal" => json!({"app_id": "APP-80W284485P519543T", "nonce": "n"}),
        _ => json!({}),
    };
    if let (Some(all), Value::Object(more)) = (extras.as_object_mut(), documented) {
        all.extend(more);
    }
    extras.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn every_provider_speaks_its_dialect_against_the_spec_mock() {
    let mut failures = Vec::new();
    for (name, path) in catalog() {
        let spec = load(&name, &path);
        if let Err(failure) = exercise(&name, spec).await {
            failures.push(format!("{name}: {failure}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A check that names what failed.
fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn at(secs: u64) -> Option<SystemTime> {
    Some(UNIX_EPOCH + Duration::from_secs(START + secs))
}

async fn exercise(name: &str, spec: ProviderSpec) -> Check {
    let clock = ManualClock::at_unix(START);
    let config = MockConfig::default()
        .with_redirect_uri(REDIRECT)
        .with_clock(Arc::new(clock.clone()));
    let mock = SpecMock::start(spec.clone(), config)
        .await
        .map_err(|e| format!("the mock does not start: {e}"))?;
    mock.set_response_fields(response_extras(name));
    let settings = mock.provider_settings().map_err(|e| e.to_string())?;
    let provider = SpecProvider::builder(spec.clone(), mock.credentials())
        .base_url(mock.base_url().as_str())
        .settings(settings)
        .build()
        .map_err(|e| format!("the provider does not build: {e}"))?;
    let ctx = Ctx {
        name,
        spec: &spec,
        mock: &mock,
        provider: &provider,
        clock: &clock,
    };
    let token = match spec.authorize {
        Some(_) => ctx.code_flow().await?,
        None => ctx.client_credentials().await?,
    };
    if spec.revocation.is_some() {
        ctx.revocation(&token).await?;
    }
    mock.shutdown().await;
    Ok(())
}

struct Ctx<'a> {
    name: &'a str,
    spec: &'a ProviderSpec,
    mock: &'a SpecMock,
    provider: &'a SpecProvider,
    clock: &'a ManualClock,
}

impl Ctx<'_> {
    /// Sign in, check every step, then refresh when the spec refreshes.
    /// Returns the last token.
    async fn code_flow(&self) -> Result<Token, String> {
        let request = AuthorizeRequest::new(REDIRECT)
            .map_err(|e| e.to_string())?
            .with_scopes(SCOPES);
        let (url, pending) = self
            .provider
            .authorize(request)
            .map_err(|e| format!("authorize: {e}"))?;
        self.check_authorize_url(&url)?;
        let callback = self
            .mock
            .approve(&url)
            .await
            .map_err(|e| format!("the mock refuses the authorize URL: {e}"))?;
        self.check_authorize_extras()?;
        let callback = CallbackParams::from_url(&callback).map_err(|e| e.to_string())?;
        let token = self
            .provider
            .handle_callback(callback, pending)
            .await
            .map_err(|e| format!("the code exchange fails: {e}"))?;
        let exchange = self.last_token_request()?;
        let pkce = self
            .spec
            .authorize
            .as_ref()
            .is_some_and(|a| a.pkce != Pkce::Off);
        let fields = &self.spec.token.fields;
        let mut expected = vec![fields.code.as_str(), fields.redirect_uri.as_str()];
        if pkce {
            expected.push(&fields.code_verifier);
        }
        self.check_token_request(
            &exchange,
            &self.spec.token.url,
            "authorization_code",
            &expected,
        )?;
        self.check_token(&token, 0, "the exchanged token")?;
        match self.spec.renewal_kind() {
            RenewalKind::RefreshToken => self.refresh(token).await,
            RenewalKind::Never | RenewalKind::Reacquire => {
                ensure(token.refresh_token.is_none(), || {
                    "a refresh token without refresh renewal".into()
                })?;
                Ok(token)
            }
        }
    }

    fn check_authorize_url(&self, url: &Url) -> Check {
        let authorize = self.spec.authorize.as_ref().ok_or("no [authorize]")?;
        let spec_url = Url::parse(&authorize.url).map_err(|e| e.to_string())?;
        ensure(url.path() == spec_url.path(), || {
            format!("authorize path {} (spec {})", url.path(), spec_url.path())
        })?;
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let names = &authorize.params;
        let config = self.mock.config();
        ensure(
            get(&names.client_id) == Some(config.client_id.as_str()),
            || format!("no {} in {url}", names.client_id),
        )?;
        ensure(get(&names.redirect_uri) == Some(REDIRECT), || {
            format!("no {} in {url}", names.redirect_uri)
        })?;
        let scope = SCOPES.join(&authorize.scope_separator);
        ensure(get(&names.scope) == Some(scope.as_str()), || {
            format!("{} is not {scope:?} in {url}", names.scope)
        })?;
        ensure(get(&names.state).is_some_and(|s| !s.is_empty()), || {
            format!("no {} in {url}", names.state)
        })?;
        let response_type = get(&names.response_type);
        ensure(
            response_type == authorize.send_response_type.then_some("code"),
            || {
                format!(
                    "{} is {response_type:?} with send_response_type = {}",
                    names.response_type, authorize.send_response_type
                )
            },
        )?;
        let challenge = get(&names.code_challenge);
        match authorize.pkce {
            Pkce::Off => ensure(challenge.is_none(), || {
                format!("a PKCE challenge with pkce = off: {url}")
            })?,
            Pkce::On | Pkce::Required => {
                ensure(challenge.is_some(), || {
                    format!("no {} in {url}", names.code_challenge)
                })?;
                ensure(get(&names.code_challenge_method) == Some("S256"), || {
                    format!("the PKCE method is not S256: {url}")
                })?;
            }
        }
        for (param, value) in &authorize.extra_params {
            ensure(get(param) == Some(value.as_str()), || {
                format!("no {param}={value} in {url}")
            })?;
        }
        for (i, (k, _)) in pairs.iter().enumerate() {
            ensure(!pairs[..i].iter().any(|(p, _)| p == k), || {
                format!("{k} repeated in {url}")
            })?;
        }
        Ok(())
    }

    /// The mock saw exactly the spec's extra parameters beside the named ones.
    fn check_authorize_extras(&self) -> Check {
        let authorize = self.spec.authorize.as_ref().ok_or("no [authorize]")?;
        let seen = self.mock.authorize_extra_params().pop().unwrap_or_default();
        let expected: Vec<(String, String)> = authorize
            .extra_params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        ensure(seen == expected, || {
            format!("extra authorize parameters {seen:?}, expected {expected:?}")
        })
    }

    fn last_token_request(&self) -> Result<RecordedRequest, String> {
        self.mock
            .token_requests()
            .pop()
            .ok_or_else(|| "no token request recorded".into())
    }

    /// The body's fields, in the spec's format.
    fn body_fields(
        &self,
        request: &RecordedRequest,
        format: BodyFormat,
    ) -> Result<Vec<(String, String)>, String> {
        let media = match format {
            BodyFormat::Form => "application/x-www-form-urlencoded",
            BodyFormat::Json => "application/json",
        };
        let sent = request.header("content-type").unwrap_or_default();
        ensure(sent.starts_with(media), || {
            format!("{} sent as {sent:?}, not {media}", request.path)
        })?;
        Ok(match format {
            BodyFormat::Form => request.form_body(),
            BodyFormat::Json => match request.json_body() {
                Some(Value::Object(object)) => object
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                    .collect(),
                _ => return Err(format!("{} has no JSON object body", request.path)),
            },
        })
    }

    /// The client authentication the spec names, and nothing else.
    fn check_client_auth(&self, request: &RecordedRequest, body: &[(String, String)]) -> Check {
        let fields = &self.spec.token.fields;
        let config = self.mock.config();
        let get = |name: &str| {
            body.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let basic = request
            .header("authorization")
            .is_some_and(|h| h.starts_with("Basic "));
        let (id, secret) = (get(&fields.client_id), get(&fields.client_secret));
        let ok = match self.spec.token.client_auth {
            ClientAuthMethod::ClientSecretBasic => basic && id.is_none() && secret.is_none(),
            ClientAuthMethod::ClientSecretPost => {
                !basic
                    && id == Some(config.client_id.as_str())
                    && secret == Some(config.client_secret.as_str())
            }
            ClientAuthMethod::None => {
                !basic && id == Some(config.client_id.as_str()) && secret.is_none()
            }
        };
        ensure(ok, || {
            format!(
                "{}: client authentication is not {:?} (Basic header: {basic}, body id: {}, body secret: {})",
                request.path,
                self.spec.token.client_auth,
                id.is_some(),
                secret.is_some()
            )
        })
    }

    fn check_token_request(
        &self,
        request: &RecordedRequest,
        spec_url: &str,
        grant: &str,
        expected: &[&str],
    ) -> Check {
        let path = Url::parse(spec_url)
            .map_err(|e| e.to_string())?
            .path()
            .to_owned();
        ensure(request.path == path, || {
            format!("the {grant} request went to {}, not {path}", request.path)
        })?;
        let body = self.body_fields(request, self.spec.token.body)?;
        let get = |name: &str| {
            body.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let grant_field = &self.spec.token.fields.grant_type;
        if !grant_field.is_empty() {
            ensure(get(grant_field) == Some(grant), || {
                format!("{grant_field} is not {grant}: {}", request.body)
            })?;
        }
        for field in expected {
            ensure(get(field).is_some(), || {
                format!("the {grant} request has no {field}: {body:?}")
            })?;
        }
        for (param, value) in &self.spec.token.extra_params {
            ensure(get(param) == Some(value.as_str()), || {
                format!("no {param}={value} in the {grant} request")
            })?;
        }
        if let Some(accept) = self.spec.token.headers.get("Accept") {
            ensure(request.header("accept") == Some(accept.as_str()), || {
                format!("Accept is {:?}, not {accept:?}", request.header("accept"))
            })?;
        }
        self.check_client_auth(request, &body)
    }

    /// The response mapping, `offset` seconds after the start.
    fn check_token(&self, token: &Token, offset: u64, what: &str) -> Check {
        let lifetime = self.mock.config().access_token_lifetime.as_secs();
        ensure(token.expires_at == at(offset + lifetime), || {
            format!(
                "{what} expires at {:?}, expected {:?}",
                token.expires_at,
                at(offset + lifetime)
            )
        })?;
        ensure(token.scopes == SCOPES, || {
            format!("{what} has scopes {:?}", token.scopes)
        })?;
        let subject = self.spec.response.subject.as_ref().map(|_| SUBJECT);
        ensure(token.subject.as_deref() == subject, || {
            format!("{what} has subject {:?}", token.subject)
        })?;
        for (field, value) in response_extras(self.name) {
            ensure(token.extra.get(&field) == Some(&value), || {
                format!("{what} lost {field} from Token::extra")
            })?;
        }
        let refreshes = self.spec.renewal_kind() == RenewalKind::RefreshToken;
        ensure(token.refresh_token.is_some() == refreshes, || {
            format!(
                "{what}: refresh token present: {}",
                token.refresh_token.is_some()
            )
        })?;
        if refreshes && self.spec.response.refresh_expires_in.is_some() {
            let refresh_lifetime = self.mock.config().refresh_token_lifetime.as_secs();
            // A refresh token that is not rotated keeps its first expiry
            // (LinkedIn: the time to live counts from the first sign-in).
            let issued = if self.spec.rotates_refresh_tokens {
                offset
            } else {
                0
            };
            ensure(
                token.refresh_expires_at == at(issued + refresh_lifetime),
                || {
                    format!(
                        "{what}'s refresh token expires at {:?}",
                        token.refresh_expires_at
                    )
                },
            )?;
        }
        ensure(
            self.mock
                .is_access_token_valid(token.access_token.expose_secret()),
            || format!("{what} is not accepted by the protected API"),
        )
    }

    async fn refresh(&self, token: Token) -> Result<Token, String> {
        let old = token.refresh_token.clone().ok_or("no refresh token")?;
        self.clock.advance(Duration::from_secs(3000));
        let refreshed = self
            .provider
            .refresh(&token)
            .await
            .map_err(|e| format!("the refresh fails: {e}"))?;
        let request = self.last_token_request()?;
        let url = self
            .spec
            .token
            .refresh_url
            .as_deref()
            .unwrap_or(&self.spec.token.url);
        self.check_token_request(
            &request,
            url,
            "refresh_token",
            &[&self.spec.token.fields.refresh_token],
        )?;
        self.check_token(&refreshed, 3000, "the refreshed token")?;
        let new = refreshed
            .refresh_token
            .clone()
            .ok_or("the refresh lost the refresh token")?;
        let (old, new) = (old.expose_secret(), new.expose_secret());
        if self.spec.rotates_refresh_tokens {
            ensure(old != new, || {
                "rotates_refresh_tokens, but the refresh token did not change".into()
            })?;
            ensure(!self.mock.is_refresh_token_valid(old), || {
                "the rotated-away refresh token still works".into()
            })?;
            let reuse = self.provider.refresh(&token).await;
            ensure(
                reuse.as_ref().is_err_and(|e| e.requires_reauthorization()),
                || format!("reusing the spent refresh token: {reuse:?}"),
            )?;
            ensure(self.mock.refresh_token_reuses() == 1, || {
                "the reuse was not counted".into()
            })?;
        } else {
            ensure(old == new, || {
                "no rotation, but the refresh token changed".into()
            })?;
            ensure(self.mock.is_refresh_token_valid(old), || {
                "the kept refresh token stopped working".into()
            })?;
        }
        ensure(self.mock.is_refresh_token_valid(new), || {
            "the current refresh token does not work".into()
        })?;
        Ok(refreshed)
    }

    /// Client credentials, twice: a new token each time (re-acquired).
    async fn client_credentials(&self) -> Result<Token, String> {
        let scopes: Vec<String> = SCOPES.iter().map(|s| (*s).to_owned()).collect();
        let token = self
            .provider
            .client_credentials(&scopes)
            .await
            .map_err(|e| format!("client credentials fail: {e}"))?;
        let request = self.last_token_request()?;
        let scope = &self.spec.token.fields.scope;
        self.check_token_request(
            &request,
            &self.spec.token.url,
            "client_credentials",
            &[scope],
        )?;
        let body = self.body_fields(&request, self.spec.token.body)?;
        let joined = SCOPES.join(&self.spec.token.scope_separator);
        ensure(body.contains(&(scope.clone(), joined.clone())), || {
            format!("{scope} is not {joined:?}: {body:?}")
        })?;
        self.check_token(&token, 0, "the client credentials token")?;
        let again = self
            .provider
            .client_credentials(&scopes)
            .await
            .map_err(|e| format!("re-acquiring fails: {e}"))?;
        ensure(
            again.access_token.expose_secret() != token.access_token.expose_secret(),
            || "re-acquiring returned the same token".into(),
        )?;
        Ok(again)
    }

    async fn revocation(&self, token: &Token) -> Check {
        let revocation = self.spec.revocation.as_ref().ok_or("no [revocation]")?;
        let revoked = self
            .provider
            .revoke(token)
            .await
            .map_err(|e| format!("revocation fails: {e}"))?;
        ensure(revoked, || {
            "revoke() says the spec has no revocation endpoint".into()
        })?;
        let path = Url::parse(&revocation.url)
            .map_err(|e| e.to_string())?
            .path()
            .to_owned();
        let request = self
            .mock
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.path == path)
            .ok_or_else(|| format!("no revocation request at {path}"))?;
        let body = self.body_fields(&request, revocation.body)?;
        let get = |name: &str| {
            body.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let by_refresh = revocation.revoke_refresh_token && token.refresh_token.is_some();
        let revoked_token = match (&token.refresh_token, by_refresh) {
            (Some(refresh), true) => refresh.expose_secret(),
            _ => token.access_token.expose_secret(),
        };
        ensure(get(&revocation.token_field) == Some(revoked_token), || {
            format!(
                "the revocation's {} is not the token",
                revocation.token_field
            )
        })?;
        ensure(
            get("token_type_hint").is_some() == revocation.send_token_type_hint,
            || format!("token_type_hint sent: {}", get("token_type_hint").is_some()),
        )?;
        self.check_client_auth(&request, &body)?;
        if by_refresh {
            ensure(!self.mock.is_refresh_token_valid(revoked_token), || {
                "the revoked refresh token still works".into()
            })?;
        }
        ensure(
            !self
                .mock
                .is_access_token_valid(token.access_token.expose_secret()),
            || "the access token still works after the revocation".into(),
        )
    }
}
