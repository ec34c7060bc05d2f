//! Cross-site request forgery: every request that can change something
//! (anything but `GET`, `HEAD` and `OPTIONS`) must come from one of the
//! app's own pages. Browsers say where a request comes from in two
//! headers, which a page on another site cannot set:
//!
//! * `Sec-Fetch-Site` (Fetch Metadata), when sent, must be `same-origin`;
//! * `Origin`, when sent, must be the app's public origin exactly
//!   (scheme, host and port; `null` is refused).
//!
//! A request with neither is refused too: every browser the app supports
//! sends at least one on a form `POST`. (The pages' `Referrer-Policy` is
//! `same-origin`: under `no-referrer` browsers send `Origin: null` even on
//! the app's own posts.) `SameSite=Lax` on the session
//! cookie already keeps it off cross-site POSTs; this check also stops a
//! cross-site form from *starting* a sign-in in a fresh session.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::pages;
use super::routes::AppState;

/// Why a request is refused, or `None` when it may go on.
pub(crate) fn refusal(method: &Method, headers: &HeaderMap, origin: &str) -> Option<&'static str> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let fetch_site = headers.get("sec-fetch-site");
    if let Some(site) = fetch_site {
        if site.as_bytes() != b"same-origin" {
            return Some("Sec-Fetch-Site is not same-origin");
        }
    }
    match headers.get(header::ORIGIN) {
        Some(sent) if sent.as_bytes() == origin.as_bytes() => None,
        Some(_) => Some("Origin is not the app's"),
        None if fetch_site.is_some() => None,
        None => Some("neither Origin nor Sec-Fetch-Site was sent"),
    }
}

/// The middleware: a refused request ends on a 403 page before it reaches
/// a handler (so no session is made for it).
pub(crate) async fn same_origin_only(
    State(app): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(reason) = refusal(request.method(), request.headers(), &app.origin) else {
        return next.run(request).await;
    };
    eprintln!(
        "connect: refused {} {}: {reason} (a cross-site request?)",
        request.method(),
        request.uri().path()
    );
    let message = format!(
        "This form can only be sent from this app's own pages ({}). Nothing was started; \
         open the home page and try again.",
        app.origin
    );
    let page = pages::problem(&app.app_name, "Request refused", &message, &app.served_by);
    (StatusCode::FORBIDDEN, Html(page)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:3000";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn same_origin_posts_pass_and_cross_site_ones_do_not() {
        let post = Method::POST;
        for ok in [
            headers(&[("origin", ORIGIN)]),
            headers(&[("origin", ORIGIN), ("sec-fetch-site", "same-origin")]),
            headers(&[("sec-fetch-site", "same-origin")]),
        ] {
            assert_eq!(refusal(&post, &ok, ORIGIN), None, "{ok:?}");
        }
        for refused in [
            headers(&[]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "http://127.0.0.1:3001")]),
            headers(&[("origin", "https://127.0.0.1:3000")]),
            headers(&[("origin", "http://evil.example")]),
            headers(&[("origin", ORIGIN), ("sec-fetch-site", "same-site")]),
            headers(&[("origin", ORIGIN), ("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "none")]),
        ] {
            assert!(refusal(&post, &refused, ORIGIN).is_some(), "{refused:?}");
        }
        assert_eq!(refusal(&Method::GET, &headers(&[]), ORIGIN), None);
        assert!(refusal(&Method::DELETE, &headers(&[]), ORIGIN).is_some());
    }
}
