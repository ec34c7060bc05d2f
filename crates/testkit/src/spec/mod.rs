//! A mock provider that speaks any [`ProviderSpec`]'s dialect.
//!
//! [`SpecMock`] serves the spec's endpoints at the paths of its URLs (a
//! test points a [`SpecProvider`](oauth2_adapters_core::SpecProvider) at it
//! with `SpecProviderBuilder::base_url(mock.base_url())`, which keeps the
//! paths), with the spec's parameter and field names, body format, client
//! authentication, envelope and units, and the grant state of the other
//! mocks (single-use codes valid 10 minutes, refresh-token families,
//! reuse counting, [`MockConfig::revoke_on_reuse`]).
//!
//! | endpoint | where | what it checks |
//! |---|---|---|
//! | authorize | `GET` the path of `authorize.url` | the spec's names; `response_type=code` when `send_response_type`; the client id; the redirect URI byte for byte; a scope when `scope_required`, joined with `scope_separator`; every `authorize.extra_params` with its value; PKCE (below) |
//! | token | `POST` the path of `token.url` | the body format; `token.headers` and the secret headers set with [`SpecMock::set_secret`]; client authentication (below); `token.extra_params`, `code_params` and `refresh_params`; the grant |
//! | refresh | `POST` the path of `token.refresh_url`, when the spec has one | as the token endpoint, refreshes only (the token endpoint then refuses them) |
//! | revocation | `POST` the path of `revocation.url`, when the spec has one | RFC 7009: the body format, client authentication, `token.headers`, `revocation.token_field` |
//! | protected API | `GET /api/v1/me`, `POST /api/v1/echo` | as the other mocks (subject [`SUBJECT`]) |
//!
//! **PKCE** is checked unless the spec says `pkce = "off"` (then the
//! challenge parameters are mere extra parameters): `S256` or `plain`
//! (RFC 7636 §4.3: `plain` when no method is sent), a challenge of 43 to
//! 128 unreserved characters, required when the spec says `required` or
//! the client is public (`client_auth = "none"`). A code issued with a
//! challenge needs the verifier that answers it: a missing or wrong one is
//! `invalid_grant`, and the code stays usable (as after a redirect URI
//! mismatch).
//!
//! **Client authentication**, exactly as the spec says (RFC 6749 §2.3
//! allows one method per request):
//! - `client_secret_basic`: an `Authorization: Basic` header whose parts
//!   are form-decoded (RFC 6749 §2.3.1); a client id or secret **in the
//!   body is refused** (`400 invalid_request`), even beside a good header;
//!   a missing or wrong header is `401 invalid_client` with
//!   `WWW-Authenticate: Basic`;
//! - `client_secret_post`: the client id and secret in the body; a Basic
//!   header is refused (`400 invalid_request`), a missing or wrong secret is
//!   `401 invalid_client`;
//! - `none`: the client id in the body, no secret anywhere (a secret or a
//!   Basic header is `400 invalid_request`), and PKCE on every code.
//!
//! **Grants.** Codes and refreshes as the spec's `renewal` says: refresh
//! tokens are issued only for `refresh_token` renewal; with
//! `rotates_refresh_tokens` each refresh spends the token and returns a new
//! one (a spent one presented again is refused and counted in
//! [`MockServer::refresh_token_reuses`](crate::MockServer::refresh_token_reuses)),
//! without it the same refresh token keeps working and refresh answers
//! carry none (the client keeps its own). The client credentials grant is
//! served only when the renewal is `reacquire`. Revoking a refresh token
//! ends its whole family (RFC 7009 §2.1), an access token only itself; an
//! unknown token is answered 200 too (§2.2).
//!
//! **Answers** follow the spec's `[response]`: the first path of each
//! field's alternatives (nested objects for dotted paths), `Bearer` (or the
//! spec's first `bearer_token_types`), the lifetime in `expires_in_unit`,
//! the absolute expiry when the spec names `expires_at`, the refresh
//! token's lifetime when it names `refresh_expires_in`, the scope joined
//! with the spec's separator (a space by default), [`SUBJECT`] at
//! `subject`, plus the fields set with [`SpecMock::set_response_fields`];
//! in the envelope (`code` = the first success code, the first message
//! path = `"success"`, the token at `data`) when the spec has one. Errors
//! are RFC 6749 objects (`{"error","error_description"}`, 400, or 401 for
//! `invalid_client`, 415 for a wrong content type) whose `error` is the
//! first provider code the spec maps to that OAuth error, if any; with an
//! envelope and a numeric code mapped, an envelope
//! (`{"code": <that code>, "msg": .., "data": null}`) instead.
//! [`ResponseStyle`](crate::ResponseStyle)'s `string_numbers` and
//! `omit_expires_in` apply; its `envelope` does not (the spec decides).
//!
//! ```
//! use oauth2_adapters::testkit::{MockConfig, MockServer, SpecMock};
//! use oauth2_adapters::ProviderSpec;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let spec = ProviderSpec::from_toml(r#"
//!     id = "acme"
//!     [authorize]
//!     url = "https://acme.example/oauth/authorize"
//!     pkce = "off"
//!     [token]
//!     url = "https://acme.example/oauth/token"
//! "#)?;
//! let mock = SpecMock::start(spec, MockConfig::default()).await?;
//! let callback = mock.approve(&mock.build_authorize_url("xyz", None)?).await?;
//! assert!(callback.as_str().ends_with("&state=xyz"));
//! assert_eq!(mock.token_url().path(), "/oauth/token");
//! # Ok(())
//! # }
//! ```

mod authorize;
mod token;
mod wire;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::Router;
use http::{HeaderMap, Method, StatusCode, Uri};
use oauth2_adapters_core::{Pkce, ProviderSpec};
use serde_json::{Map, Value};
use url::Url;

use crate::common::api::{self, ApiProfile};
use crate::common::consent;
use crate::common::server::{MockCore, Shared};
use crate::common::{impl_mock_provider, MockConfig, MockError};

/// The subject of every token (the spec's `response.subject`, and the
/// protected API's `subject`).
pub const SUBJECT: &str = "spec-user-1";

/// The prefix of issued tokens (`spec_at_1_…`, `spec_rt_1_…`).
const TOKEN_PREFIX: &str = "spec";

/// A running mock of the provider a [`ProviderSpec`] describes. Cheap to
/// clone; the server stops when the last clone is dropped or on
/// [`SpecMock::shutdown`]. See the [module docs](self) for its rules.
#[derive(Clone)]
pub struct SpecMock {
    core: Arc<MockCore>,
    spec: Arc<SpecShared>,
}

impl fmt::Debug for SpecMock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpecMock")
            .field("id", &self.spec.spec.id)
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl_mock_provider!(SpecMock);

/// The paths of the spec's endpoints on the mock.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub(crate) authorize: Option<String>,
    pub(crate) token: String,
    /// Only when it differs from the token path.
    pub(crate) refresh: Option<String>,
    pub(crate) revocation: Option<String>,
}

/// What the spec's handlers share.
pub(crate) struct SpecShared {
    pub(crate) shared: Arc<Shared>,
    pub(crate) spec: ProviderSpec,
    pub(crate) paths: Paths,
    state: Mutex<SpecState>,
}

/// The spec mock's own mutable state (never held across `.await`).
#[derive(Default)]
pub(crate) struct SpecState {
    /// The parameters of each authorize request the spec does not name.
    pub(crate) authorize_extras: Vec<Vec<(String, String)>>,
    /// Values the spec's secret headers must carry, by secret name.
    pub(crate) secrets: BTreeMap<String, String>,
    /// Fields added to every token answer.
    pub(crate) response_fields: Map<String, Value>,
}

impl SpecShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SpecState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn config(&self) -> &MockConfig {
        &self.shared.config
    }

    /// Whether PKCE is checked at all (the spec does not say `off`, or the
    /// client is public).
    pub(crate) fn checks_pkce(&self) -> bool {
        let public = self.spec.token.client_auth == oauth2_adapters_core::ClientAuthMethod::None;
        public
            || self
                .spec
                .authorize
                .as_ref()
                .is_some_and(|a| a.pkce != Pkce::Off)
    }

    /// Whether an authorization without a PKCE challenge is refused.
    pub(crate) fn requires_pkce(&self) -> bool {
        let public = self.spec.token.client_auth == oauth2_adapters_core::ClientAuthMethod::None;
        public
            || self
                .spec
                .authorize
                .as_ref()
                .is_some_and(|a| a.pkce == Pkce::Required)
    }
}

impl SpecMock {
    /// Starts a mock of `spec` on `127.0.0.1` (a free port) on the current
    /// tokio runtime, with the client, redirect URI, lifetimes and clock of
    /// `config`. Fails with [`MockError::InvalidSpec`] when the spec does
    /// not validate or two of its endpoints share a method and path (or
    /// one takes the protected API's path).
    pub async fn start(spec: ProviderSpec, config: MockConfig) -> Result<Self, MockError> {
        spec.validate()
            .map_err(|e| MockError::InvalidSpec(e.to_string()))?;
        let paths = paths(&spec)?;
        let mut token_paths = vec![paths.token.as_str()];
        token_paths.extend(paths.refresh.as_deref());
        let mut handlers = None;
        let realm: Arc<str> = spec.display_name().into();
        let core = MockCore::start(config, &token_paths, |shared| {
            let spec_shared = Arc::new(SpecShared {
                shared: Arc::clone(&shared),
                spec: spec.clone(),
                paths: paths.clone(),
                state: Mutex::new(SpecState::default()),
            });
            handlers = Some(Arc::clone(&spec_shared));
            let profile = ApiProfile {
                realm,
                subject: SUBJECT.into(),
            };
            Router::new()
                .fallback(dispatch)
                .with_state(spec_shared)
                .merge(api::routes(profile).with_state(shared))
        })
        .await?;
        let spec = handlers.ok_or_else(|| MockError::InvalidSpec("no handlers".into()))?;
        Ok(Self { core, spec })
    }

    /// The spec it speaks.
    pub fn spec(&self) -> &ProviderSpec {
        &self.spec.spec
    }

    /// The authorize endpoint on the mock (with the spec URL's own query),
    /// if the spec has one.
    pub fn authorize_url(&self) -> Option<Url> {
        let authorize = self.spec.spec.authorize.as_ref()?;
        let mut url = self.core.url(self.spec.paths.authorize.as_deref()?);
        url.set_query(Url::parse(&authorize.url).ok()?.query());
        Some(url)
    }

    /// The token endpoint on the mock.
    pub fn token_url(&self) -> Url {
        self.core.url(&self.spec.paths.token)
    }

    /// The refresh endpoint on the mock (the token endpoint unless the
    /// spec names another).
    pub fn refresh_url(&self) -> Url {
        self.core.url(
            self.spec
                .paths
                .refresh
                .as_ref()
                .unwrap_or(&self.spec.paths.token),
        )
    }

    /// The revocation endpoint on the mock, if the spec has one.
    pub fn revocation_url(&self) -> Option<Url> {
        Some(self.core.url(self.spec.paths.revocation.as_deref()?))
    }

    /// A valid authorize URL in the spec's dialect for the configured
    /// client and redirect URI, the spec's default scopes and extra
    /// parameters, this `state` and, if given, a PKCE `(challenge,
    /// method)` (for tests without a `SpecProvider`). Fails with
    /// [`MockError::InvalidSpec`] when the spec has no authorize endpoint.
    pub fn build_authorize_url(
        &self,
        state: &str,
        pkce: Option<(&str, &str)>,
    ) -> Result<Url, MockError> {
        let (Some(authorize), Some(mut url)) = (&self.spec.spec.authorize, self.authorize_url())
        else {
            return Err(no_authorize());
        };
        let config = self.core.config();
        let names = &authorize.params;
        {
            let mut query = url.query_pairs_mut();
            if authorize.send_response_type {
                query.append_pair(&names.response_type, "code");
            }
            query.append_pair(&names.client_id, &config.client_id);
            if !authorize.default_scopes.is_empty() {
                let scope = authorize.default_scopes.join(&authorize.scope_separator);
                query.append_pair(&names.scope, &scope);
            }
            query.append_pair(&names.redirect_uri, &config.redirect_uri);
            query.append_pair(&names.state, state);
            if let Some((challenge, method)) = pkce {
                query.append_pair(&names.code_challenge, challenge);
                query.append_pair(&names.code_challenge_method, method);
            }
            for (name, value) in &authorize.extra_params {
                query.append_pair(name, value);
            }
        }
        Ok(url)
    }

    /// Approves `authorize_url` as a user clicking "Allow" would, and
    /// returns the callback URL `{redirect_uri}?code=..[&state=..]`.
    ///
    /// Fails with [`MockError::NoRedirect`] when the request is invalid
    /// (the mock answers its 400 page, whose body says why) and
    /// [`MockError::WrongEndpoint`] when the URL does not point at this
    /// mock's authorize endpoint.
    pub async fn approve(&self, authorize_url: &Url) -> Result<Url, MockError> {
        let path = self
            .spec
            .paths
            .authorize
            .as_deref()
            .ok_or_else(no_authorize)?;
        consent::submit_decision(&self.core, path, authorize_url, "allow").await
    }

    /// Denies `authorize_url`, returning
    /// `{redirect_uri}?error=access_denied[&state=..]`.
    pub async fn deny(&self, authorize_url: &Url) -> Result<Url, MockError> {
        let path = self
            .spec
            .paths
            .authorize
            .as_deref()
            .ok_or_else(no_authorize)?;
        consent::submit_decision(&self.core, path, authorize_url, "deny").await
    }

    /// The parameters of each authorize request received, in order, that
    /// the spec does not name: its `extra_params`, a request's own
    /// (`AuthorizeRequest::with_param`), and the PKCE parameters when the
    /// spec says `pkce = "off"`. Approvals and denials count once each.
    pub fn authorize_extra_params(&self) -> Vec<Vec<(String, String)>> {
        self.spec.lock().authorize_extras.clone()
    }

    /// From now on, token requests (exchange, refresh, client credentials;
    /// not revocation, where the engine does not send secret headers) must
    /// carry the header the spec's `token.secret_headers` sends for the
    /// secret `name`, with
    /// `value` (a wrong or missing one is `401 invalid_client`). Until a
    /// secret is set, its header is not checked.
    pub fn set_secret(&self, name: impl Into<String>, value: impl Into<String>) {
        self.spec.lock().secrets.insert(name.into(), value.into());
    }

    /// Adds these fields to the token object of every token answer
    /// (e.g. Salesforce's `instance_url`), for tests of `Token::extra`.
    /// The spec's own fields win over them.
    pub fn set_response_fields(&self, fields: Map<String, Value>) {
        self.spec.lock().response_fields = fields;
    }

    /// Stops the server (for every clone) and waits for open connections.
    pub async fn shutdown(self) {
        self.core.shutdown().await;
    }
}

fn no_authorize() -> MockError {
    MockError::InvalidSpec("the spec has no authorize endpoint".into())
}

/// The path of each endpoint, refusing two that would share one.
fn paths(spec: &ProviderSpec) -> Result<Paths, MockError> {
    let path = |field: &str, url: &str| {
        Url::parse(url)
            .map(|url| url.path().to_owned())
            .map_err(|e| MockError::InvalidSpec(format!("{field}: {e}")))
    };
    let token = path("token.url", &spec.token.url)?;
    let refresh = match &spec.token.refresh_url {
        Some(url) => Some(path("token.refresh_url", url)?).filter(|p| *p != token),
        None => None,
    };
    let paths = Paths {
        authorize: spec
            .authorize
            .as_ref()
            .map(|a| path("authorize.url", &a.url))
            .transpose()?,
        revocation: spec
            .revocation
            .as_ref()
            .map(|r| path("revocation.url", &r.url))
            .transpose()?,
        token,
        refresh,
    };
    let mut posts: Vec<(&str, &str)> = vec![("token.url", &paths.token)];
    posts.extend(paths.refresh.as_deref().map(|p| ("token.refresh_url", p)));
    posts.extend(paths.revocation.as_deref().map(|p| ("revocation.url", p)));
    for (i, (field, path)) in posts.iter().enumerate() {
        if let Some((other, _)) = posts[..i].iter().find(|(_, p)| p == path) {
            return Err(MockError::InvalidSpec(format!(
                "{field} and {other} share the path {path}"
            )));
        }
    }
    let authorize = paths.authorize.as_deref().map(|p| ("authorize.url", p));
    for (field, path) in posts.iter().chain(authorize.iter()) {
        if [api::ME_PATH, api::ECHO_PATH].contains(path) {
            return Err(MockError::InvalidSpec(format!(
                "{field} takes the protected API's path {path}"
            )));
        }
    }
    Ok(paths)
}

/// Routes a request to the spec's endpoint by method and path.
async fn dispatch(
    State(spec): State<Arc<SpecShared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let paths = &spec.paths;
    if method == Method::GET && paths.authorize.as_deref() == Some(path) {
        return authorize::authorize(&spec, uri.query().unwrap_or(""));
    }
    if method == Method::POST {
        if path == paths.token {
            return token::token(&spec, token::Endpoint::Token, &headers, &body).await;
        }
        if paths.refresh.as_deref() == Some(path) {
            return token::token(&spec, token::Endpoint::Refresh, &headers, &body).await;
        }
        if paths.revocation.as_deref() == Some(path) {
            return token::revoke(&spec, &headers, &body);
        }
    }
    wire::error(
        &spec.spec,
        StatusCode::NOT_FOUND,
        "invalid_request",
        &format!("no {method} endpoint at {path}"),
    )
}
