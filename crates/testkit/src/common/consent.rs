//! The authorize endpoint's pages and redirects, and the non-browser
//! approval used by `approve` / `deny`.

use axum::response::{Html, IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use url::Url;

use super::grants::PkceChallenge;
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
    /// The PKCE challenge the code is bound to, when the mock checks PKCE.
    pub(crate) pkce: Option<&'a PkceChallenge>,
}

/// Answers a validated authorization request: the consent page without a
/// `decision`, a redirect with a fresh code for `allow`, a redirect with
/// `error=access_denied` for `deny`.
pub(crate) fn decide(shared: &Shared, params: &Params, request: AuthorizeRequest<'_>) -> Response {
    match params.get("decision") {
        None => consent_page(shared, params, &request),
        Some("allow") => {
            let now = shared.now();
            let code = shared.lock().grants.issue_code(
                request.client_id,
                request.redirect_uri,
                request.scope,
                request.pkce.cloned(),
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

/// The consent page: the application's name, the provider's, the requested
/// scopes, and Allow / Deny buttons (`id="allow"`, `id="deny"`) in a GET form
/// that resubmits the same parameters plus `decision`. Every interpolated
/// value is HTML-escaped.
fn consent_page(shared: &Shared, params: &Params, request: &AuthorizeRequest<'_>) -> Response {
    let hidden: String = params
        .without_decision()
        .map(|(name, value)| {
            format!(
                "      <input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                attr(name),
                attr(value)
            )
        })
        .collect();
    let scopes: String = request
        .scope
        .split(' ')
        .filter(|scope| !scope.is_empty())
        .map(|scope| format!("      <li><code>{}</code></li>\n", text(scope)))
        .collect();
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  \
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n  \
         <title>{provider}: authorize {app}</title>\n  <style>{STYLE}</style>\n</head>\n<body>\n  \
         <main>\n    \
         <p class=\"provider\" id=\"provider\">{provider} <span>test provider</span></p>\n    \
         <h1><span id=\"app-name\">{app}</span> wants to access your {provider} account</h1>\n    \
         <p>If you allow it, {app} will be able to:</p>\n    \
         <ul id=\"scopes\">\n{scopes}    </ul>\n    \
         <p class=\"fine\">Client id <code>{client_id}</code>. You will be sent back to \
         <code>{redirect_uri}</code>.</p>\n    \
         <form method=\"get\" action=\"{action}\">\n{hidden}      \
         <button id=\"deny\" type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n      \
         <button id=\"allow\" type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n    \
         </form>\n  </main>\n</body>\n</html>\n",
        provider = text(request.provider),
        app = text(&shared.config.app_name),
        client_id = text(request.client_id),
        redirect_uri = text(request.redirect_uri),
        action = attr(request.path),
    );
    (PAGE_HEADERS, Html(page)).into_response()
}

/// The consent page's look: one centred card, two buttons.
const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f3f4f6;margin:0}\
main{max-width:28rem;margin:4rem auto;background:#fff;border-radius:12px;padding:2rem;\
box-shadow:0 2px 12px rgba(0,0,0,.12)}\
.provider{font-weight:700;color:#374151;margin:0}\
.provider span{font-weight:400;font-size:.8rem;color:#6b7280;border:1px solid #d1d5db;\
border-radius:4px;padding:0 .3rem;margin-left:.3rem}\
h1{font-size:1.35rem;margin:1rem 0}ul{padding-left:1.2rem}\
.fine{font-size:.8rem;color:#6b7280;word-break:break-all}\
form{display:flex;gap:.75rem;justify-content:flex-end;margin-top:1.5rem}\
button{font-size:1rem;padding:.55rem 1.4rem;border-radius:8px;border:1px solid #d1d5db;\
background:#fff;cursor:pointer}\
#allow{background:#2563eb;border-color:#2563eb;color:#fff}";

/// Headers of the HTML pages: never cached, never framed (no clickjacking
/// of the Allow button), no referrer carrying the authorize URL onwards.
const PAGE_HEADERS: [(header::HeaderName, &str); 4] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    ),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// A `400 Bad Request` HTML page: invalid authorization requests are shown
/// to the user, never redirected (RFC 6749 §4.1.2.1).
pub(crate) fn error_page(provider: &str, message: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  \
         <title>{provider}: invalid authorization request</title>\n</head>\n<body>\n  \
         <h1>Invalid authorization request</h1>\n  <p id=\"error\">{message}</p>\n</body>\n</html>\n",
        provider = text(provider),
        message = text(message),
    );
    (StatusCode::BAD_REQUEST, PAGE_HEADERS, Html(page)).into_response()
}

/// `value` escaped for HTML text.
fn text(value: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_text(value)
}

/// `value` escaped for a double-quoted HTML attribute.
fn attr(value: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_double_quoted_attribute(value)
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

#[cfg(test)]
mod tests {
    use crate::{HikeMock, MockConfig};

    #[tokio::test]
    async fn the_consent_page_names_app_provider_and_scopes_escaped() {
        let config = MockConfig::default().with_app_name("Shop <b> & \"Co\"");
        let mock = HikeMock::start(config).await.expect("the mock starts");
        let url = mock.build_authorize_url(Some("s<"));
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client")
            .get(url)
            .send()
            .await
            .expect("the page");
        assert_eq!(response.status().as_u16(), 200);
        let headers = response.headers();
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["cache-control"], "no-store");
        let page = response.text().await.expect("a body");
        assert!(page.contains("<span id=\"app-name\">Shop &lt;b&gt; &amp; \"Co\"</span>"));
        assert!(page.contains("id=\"provider\">Hike "));
        assert!(page.contains("<ul id=\"scopes\">\n      <li><code>all</code></li>\n    </ul>"));
        assert!(page.contains("id=\"allow\"") && page.contains("id=\"deny\""));
        assert!(page.contains("name=\"state\" value=\"s&lt;\""));
        assert!(!page.contains("<b>"));
    }
}
