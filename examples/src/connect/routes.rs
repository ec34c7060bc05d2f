//! The app's routes:
//!
//! | route | what it does |
//! |---|---|
//! | `GET /` | the home page: Connect buttons and the connected accounts |
//! | `POST /connect/{provider}` | `authorize()`, keep the pending authorization in the session (new session id), 303 to the provider |
//! | `GET /callback/{provider}` | read the pending authorization; take it out only if the state is its own; `handle_callback`, store the token, 303 home |
//! | `GET /error/{provider}/{problem}` | the message page of a sign-in that did not complete |
//!
//! Every request but `GET`/`HEAD` must come from the app's own origin
//! ([`guard`](super::guard)).

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use oauth2_adapters::manager::TokenManager;
use oauth2_adapters::{AuthorizeRequest, CallbackParams, TokenStore};
use tower_sessions::Session;
use tower_sessions_sqlx_store::SqliteStore;

use super::pages::{self, Button};
use super::problems::Problem;
use super::providers::Connectable;
use super::{accounts, guard, session};

/// What the handlers share.
pub(crate) struct AppState {
    /// Shown as the home page's heading.
    pub(crate) app_name: String,
    /// The providers behind the Connect buttons, in button order.
    pub(crate) providers: Vec<Connectable>,
    /// Stores new tokens (and would renew them).
    pub(crate) manager: TokenManager,
    /// The store the manager writes to, read for the account list.
    pub(crate) store: Arc<dyn TokenStore>,
    /// The app's public origin (`http://127.0.0.1:3000`): the only one
    /// its forms are accepted from.
    pub(crate) origin: String,
    /// This instance, as its pages' footer names it (`127.0.0.1:3000`).
    pub(crate) served_by: String,
}

impl AppState {
    fn provider(&self, slug: &str) -> Option<&Connectable> {
        self.providers.iter().find(|p| p.slug == slug)
    }
}

/// The app's router: the routes in the session middleware (`Secure`
/// cookies when `secure_cookies`), behind the same-origin check, every
/// response with [`page_headers`].
pub(crate) fn router(state: Arc<AppState>, sessions: SqliteStore, secure_cookies: bool) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/connect/{provider}", post(connect))
        .route("/callback/{provider}", get(callback))
        .route("/error/{provider}/{problem}", get(problem))
        .fallback(not_found)
        .layer(session::layer(sessions, secure_cookies))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::same_origin_only,
        ))
        .layer(axum::middleware::map_response(page_headers))
        .with_state(state)
}

/// Every response: never cached, never framed, a referrer only to the app
/// itself (`same-origin`: no page URL reaches another site; and unlike
/// `no-referrer`, browsers still send the real `Origin` on the app's own
/// form posts, which [`guard`] checks), nothing loaded but the inline style.
async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
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
                &app.served_by,
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
        &app.served_by,
    );
    Html(page).into_response()
}

async fn connect(
    State(app): State<Arc<AppState>>,
    Path(slug): Path<String>,
    session: Session,
) -> Response {
    let Some(provider) = app.provider(&slug) else {
        return not_found_page(&app);
    };
    let started = AuthorizeRequest::new(provider.redirect_uri.as_str())
        .and_then(|request| provider.adapter.authorize(request));
    let (url, pending) = match started {
        Ok(started) => started,
        Err(err) => {
            eprintln!(
                "connect: could not start the {} sign-in: {err}",
                provider.name
            );
            return problem_redirect(provider, Problem::StartFailed);
        }
    };
    if let Err(err) = session::start(&session, provider.slug, &pending).await {
        eprintln!(
            "connect: could not keep the {} sign-in in the session: {err}",
            provider.name
        );
        return problem_redirect(provider, Problem::SessionFailed);
    }
    Redirect::to(url.as_str()).into_response()
}

async fn callback(
    State(app): State<Arc<AppState>>,
    Path(slug): Path<String>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(provider) = app.provider(&slug) else {
        return not_found_page(&app);
    };
    let params = match CallbackParams::from_query(query.as_deref().unwrap_or_default()) {
        Ok(params) => params,
        Err(err) => {
            eprintln!("connect: {} callback rejected: {err}", provider.name);
            return problem_redirect(provider, Problem::InvalidLink);
        }
    };
    let pending = match session::peek(&session, provider.slug).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return problem_redirect(provider, Problem::NotInProgress),
        Err(err) => {
            eprintln!("connect: could not read the session: {err}");
            return problem_redirect(provider, Problem::SessionFailed);
        }
    };
    // Only a callback that carries the sign-in's own state uses it up. Any
    // other (a forged or altered link, a denial without state) is answered
    // from a copy and leaves the stored sign-in usable: a cross-site link
    // cannot cancel it. `handle_callback` sends nothing for those.
    if pending.state_matches(&params) {
        if let Err(err) = session::consume(&session, provider.slug).await {
            eprintln!("connect: could not update the session: {err}");
            return problem_redirect(provider, Problem::SessionFailed);
        }
    }
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
                "connect: {} account {} connected (served by {})",
                provider.name,
                key.account(),
                app.served_by
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
        &app.served_by,
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
        &app.served_by,
    );
    (StatusCode::NOT_FOUND, Html(page)).into_response()
}

/// `303 See Other` to the message page of `problem`.
fn problem_redirect(provider: &Connectable, problem: Problem) -> Response {
    Redirect::to(&format!("/error/{}/{}", provider.slug, problem.slug())).into_response()
}
