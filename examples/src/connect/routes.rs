//! The app's routes:
//!
//! | route | what it does |
//! |---|---|
//! | `GET /` | the home page: Connect buttons and the connected accounts |
//! | `POST /connect/{provider}` | `authorize()`, keep the pending authorization in the session, 303 to the provider |
//! | `GET /callback/{provider}` | take the pending authorization out, `handle_callback`, store the token, 303 home |
//! | `GET /error/{provider}/{problem}` | the message page of a sign-in that did not complete |

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use oauth2_adapters::manager::TokenManager;
use oauth2_adapters::{AuthorizeRequest, CallbackParams, TokenStore};

use super::accounts;
use super::pages::{self, Button};
use super::problems::Problem;
use super::providers::Connectable;
use super::session::{PendingSignIns, SessionId};

/// What the handlers share.
pub(crate) struct AppState {
    /// Shown as the home page's heading.
    pub(crate) app_name: String,
    /// The providers behind the Connect buttons, in button order.
    pub(crate) providers: Vec<Connectable>,
    /// The sign-ins in progress.
    pub(crate) sessions: PendingSignIns,
    /// Stores new tokens (and would renew them).
    pub(crate) manager: TokenManager,
    /// The store the manager writes to, read for the account list.
    pub(crate) store: Arc<dyn TokenStore>,
    /// Whether the session cookie is `Secure` (the app is served over https).
    pub(crate) secure_cookies: bool,
}

impl AppState {
    fn provider(&self, slug: &str) -> Option<&Connectable> {
        self.providers.iter().find(|p| p.slug == slug)
    }
}

/// The app's router.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/connect/{provider}", post(connect))
        .route("/callback/{provider}", get(callback))
        .route("/error/{provider}/{problem}", get(problem))
        .fallback(not_found)
        .layer(axum::middleware::map_response(page_headers))
        .with_state(state)
}

/// Every response: never cached, never framed, no referrer (the callback
/// URL carries a code), nothing loaded but the inline style.
async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
             frame-ancestors 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn home(State(app): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let connected = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "connected")
        .and_then(|(_, slug)| {
            app.provider(&slug)
                .map(|p| format!("{} connected.", p.name))
        });
    let accounts = match accounts::list(app.store.as_ref()).await {
        Ok(accounts) => accounts,
        Err(err) => {
            eprintln!("connect: could not list the accounts: {err}");
            let page = pages::problem(
                &app.app_name,
                "Accounts unavailable",
                "The connected accounts could not be read from the token store.",
            );
            return (StatusCode::INTERNAL_SERVER_ERROR, Html(page)).into_response();
        }
    };
    let buttons: Vec<Button<'_>> = app
        .providers
        .iter()
        .map(|p| Button {
            slug: p.slug,
            name: p.name,
        })
        .collect();
    let page = pages::home(
        &app.app_name,
        &buttons,
        &accounts,
        connected.as_deref(),
        SystemTime::now(),
    );
    Html(page).into_response()
}

async fn connect(
    State(app): State<Arc<AppState>>,
    Path(slug): Path<String>,
    jar: CookieJar,
) -> Response {
    let Some(provider) = app.provider(&slug) else {
        return not_found_page(&app);
    };
    let session = match SessionId::from_jar(&jar) {
        Some(session) => session,
        None => match SessionId::random() {
            Ok(session) => session,
            Err(err) => {
                eprintln!("connect: no randomness for a session id: {err}");
                return problem_redirect(provider, Problem::StartFailed);
            }
        },
    };
    let started = AuthorizeRequest::new(provider.redirect_uri.as_str())
        .and_then(|request| provider.adapter.authorize(request));
    match started {
        Ok((url, pending)) => {
            app.sessions.put(&session, provider.slug, pending);
            let jar = jar.add(session.cookie(app.secure_cookies));
            (jar, Redirect::to(url.as_str())).into_response()
        }
        Err(err) => {
            eprintln!(
                "connect: could not start the {} sign-in: {err}",
                provider.name
            );
            problem_redirect(provider, Problem::StartFailed)
        }
    }
}

async fn callback(
    State(app): State<Arc<AppState>>,
    Path(slug): Path<String>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(provider) = app.provider(&slug) else {
        return not_found_page(&app);
    };
    let pending =
        SessionId::from_jar(&jar).and_then(|session| app.sessions.take(&session, provider.slug));
    let Some(pending) = pending else {
        return problem_redirect(provider, Problem::NotInProgress);
    };
    let params = match CallbackParams::from_query(query.as_deref().unwrap_or_default()) {
        Ok(params) => params,
        Err(err) => {
            eprintln!("connect: {} callback rejected: {err}", provider.name);
            return problem_redirect(provider, Problem::InvalidLink);
        }
    };
    let token = match provider.adapter.handle_callback(params, pending).await {
        Ok(token) => token,
        Err(err) => {
            eprintln!("connect: {} sign-in did not complete: {err}", provider.name);
            return problem_redirect(provider, Problem::from_error(&err));
        }
    };
    match accounts::save(&app.manager, token).await {
        Ok(key) => {
            println!(
                "connect: {} account {} connected",
                provider.name,
                key.account()
            );
            Redirect::to(&format!("/?connected={}", provider.slug)).into_response()
        }
        Err(err) => {
            eprintln!("connect: could not save the {} token: {err}", provider.name);
            problem_redirect(provider, Problem::SaveFailed)
        }
    }
}

async fn problem(
    State(app): State<Arc<AppState>>,
    Path((slug, problem)): Path<(String, String)>,
) -> Response {
    let (Some(provider), Some(problem)) = (app.provider(&slug), Problem::from_slug(&problem))
    else {
        return not_found_page(&app);
    };
    let page = pages::problem(
        &app.app_name,
        problem.title(),
        &problem.message(provider.name),
    );
    (problem.status(), Html(page)).into_response()
}

async fn not_found(State(app): State<Arc<AppState>>) -> Response {
    not_found_page(&app)
}

fn not_found_page(app: &AppState) -> Response {
    let page = pages::problem(
        &app.app_name,
        "Page not found",
        "There is no such page here.",
    );
    (StatusCode::NOT_FOUND, Html(page)).into_response()
}

/// `303 See Other` to the message page of `problem`.
fn problem_redirect(provider: &Connectable, problem: Problem) -> Response {
    Redirect::to(&format!("/error/{}/{}", provider.slug, problem.slug())).into_response()
}
