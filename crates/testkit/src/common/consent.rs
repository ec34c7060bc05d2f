//! The authorize endpoint's pages and redirects, and the non-browser
//! approval used by `approve` / `deny`.

use axum::response::{Html, IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use url::Url;

use super::http::Params;
use super::server::{MockCore, Shared};
use super::MockError;

/// A syntactically valid authorization request, ready for a decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthorizeRequest<'a> {
    /// Shown on the pages, e.g. `"HyperSKU"`.
    pub(crate) provider: &'a str,
    /// The authorize path, target of the consent form.
    pub(crate) path: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) scope: &'a str,
    pub(crate) state: Option<&'a str>,
}

/// Answers a validated authorization request: the consent page without a
/// `decision`, a redirect with a fresh code for `allow`, a redirect with
/// `error=access_denied` for `deny`.
pub(crate) fn decide(shared: &Shared, params: &Params, request: AuthorizeRequest<'_>) -> Response {
    match params.get("decision") {
        None => consent_page(params, &request),
        Some("allow") => {
            let now = shared.now();
            let code = shared.lock().grants.issue_code(
                request.client_id,
                request.redirect_uri,
                request.scope,
                now,
            );
            redirect_to_client(&request, &[("code", &code)])
        }
        Some("deny") => redirect_to_client(&request, &[("error", "access_denied")]),
        Some(other) => error_page(
            request.provider,
            &format!("unknown decision {other:?} (expected \"allow\" or \"deny\")"),
        ),
    }
}

/// `302 Found` to the redirect URI with `pairs`, then `state` if one was sent.
fn redirect_to_client(request: &AuthorizeRequest<'_>, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut location) = Url::parse(request.redirect_uri) else {
        return error_page(
            request.provider,
            &format!(
                "the registered redirect URI {:?} is not a URL",
                request.redirect_uri
            ),
        );
    };
    {
        let mut query = location.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
        if let Some(state) = request.state {
            query.append_pair("state", state);
        }
    }
    redirect(location.as_str())
}

/// `302 Found` to `location`.
pub(crate) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The consent page: app name, requested scope, and Allow / Deny buttons
/// in a GET form that resubmits the same parameters plus `decision`.
fn consent_page(params: &Params, request: &AuthorizeRequest<'_>) -> Response {
    let hidden: String = params
        .without_decision()
        .map(|(name, value)| {
            format!(
                "      <input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                escape(name),
                escape(value)
            )
        })
        .collect();
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  \
         <title>{provider}: authorize {app}</title>\n</head>\n<body>\n  \
         <h1>{provider} (mock)</h1>\n  \
         <p>The application <strong>{app}</strong> asks for access with scope \
         <code>{scope}</code>.</p>\n  \
         <form method=\"get\" action=\"{action}\">\n{hidden}      \
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n      \
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n  \
         </form>\n</body>\n</html>\n",
        provider = escape(request.provider),
        app = escape(request.client_id),
        scope = escape(request.scope),
        action = escape(request.path),
    );
    Html(page).into_response()
}

/// A `400 Bad Request` HTML page: invalid authorization requests are shown
/// to the user, never redirected (RFC 6749 §4.1.2.1).
pub(crate) fn error_page(provider: &str, message: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  \
         <title>{provider}: invalid authorization request</title>\n</head>\n<body>\n  \
         <h1>Invalid authorization request</h1>\n  <p>{message}</p>\n</body>\n</html>\n",
        provider = escape(provider),
        message = escape(message),
    );
    (StatusCode::BAD_REQUEST, Html(page)).into_response()
}

/// Minimal HTML escaping for text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The non-browser approval: GETs this mock's authorize endpoint with the
/// query of `authorize_url` plus `decision`, without following redirects,
/// and returns the `Location`.
///
/// `authorize_url` must point at this mock's authorize endpoint (same
/// origin, path `path`), so an adapter that built its URL for another
/// host or path is caught.
pub(crate) async fn submit_decision(
    core: &MockCore,
    path: &str,
    authorize_url: &Url,
    decision: &str,
) -> Result<Url, MockError> {
    let expected = core.url(path);
    if authorize_url.origin() != expected.origin() || authorize_url.path() != path {
        return Err(MockError::WrongEndpoint {
            expected: expected.to_string(),
            got: authorize_url.to_string(),
        });
    }
    let mut query: Vec<&str> = authorize_url
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|part| !part.is_empty() && *part != "decision" && !part.starts_with("decision="))
        .collect();
    let decision_pair = format!("decision={decision}");
    query.push(&decision_pair);
    let mut target = expected;
    target.set_query(Some(&query.join("&")));

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| MockError::Http(e.to_string()))?;
    let response = client
        .get(target)
        .send()
        .await
        .map_err(|e| MockError::Http(e.to_string()))?;
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match location {
        Some(location) if status.is_redirection() => {
            Url::parse(&location).map_err(|e| MockError::BadLocation(format!("{location}: {e}")))
        }
        _ => {
            let body = response.text().await.unwrap_or_default();
            Err(MockError::NoRedirect {
                status: status.as_u16(),
                body,
            })
        }
    }
}
