//! The authorize endpoint, in the spec's dialect.

use axum::response::Response;

use super::SpecShared;
use crate::common::consent::{self, AuthorizeRequest};
use crate::common::grants::PkceChallenge;
use crate::common::http::Params;

/// Answers `GET <authorize path>?<query>`: the consent page, a redirect
/// with a code or `access_denied` (with `decision`), or a 400 page saying
/// what is wrong.
pub(super) fn authorize(s: &SpecShared, query: &str) -> Response {
    let provider = s.spec.display_name();
    let (Some(authorize), Some(path)) = (&s.spec.authorize, s.paths.authorize.as_deref()) else {
        return consent::error_page(provider, "this provider has no authorize endpoint");
    };
    let fail = |message: String| consent::error_page(provider, &message);
    let params = Params::parse(query);
    let names = &authorize.params;
    let checks_pkce = s.checks_pkce();
    let mut known = vec![
        names.client_id.as_str(),
        names.redirect_uri.as_str(),
        names.scope.as_str(),
        names.state.as_str(),
        "decision",
    ];
    if authorize.send_response_type {
        known.push(&names.response_type);
    }
    if checks_pkce {
        known.extend([
            names.code_challenge.as_str(),
            names.code_challenge_method.as_str(),
        ]);
    }
    let extras = params
        .pairs()
        .iter()
        .filter(|(name, _)| !known.contains(&name.as_str()))
        .cloned()
        .collect();
    s.lock().authorize_extras.push(extras);

    if let Some(name) = params.repeated() {
        return fail(format!("parameter {name} is repeated"));
    }
    if authorize.send_response_type {
        match params.get(&names.response_type) {
            Some("code") => {}
            None => {
                return fail(format!(
                    "missing required parameter {}",
                    names.response_type
                ))
            }
            Some(other) => {
                return fail(format!(
                    "unsupported {} {other:?} (expected \"code\")",
                    names.response_type
                ))
            }
        }
    }
    let config = s.config();
    let Some(client_id) = params.get(&names.client_id) else {
        return fail(format!("missing required parameter {}", names.client_id));
    };
    if client_id != config.client_id {
        return fail(format!("unknown {} {client_id:?}", names.client_id));
    }
    let Some(redirect_uri) = params.get(&names.redirect_uri) else {
        return fail(format!("missing required parameter {}", names.redirect_uri));
    };
    if redirect_uri != config.redirect_uri {
        return fail(format!(
            "{} {redirect_uri:?} is not the registered redirect URI (compared byte for byte)",
            names.redirect_uri
        ));
    }
    let scope = match params.get(&names.scope) {
        None if authorize.scope_required => {
            return fail(format!("missing required parameter {}", names.scope))
        }
        None => String::new(),
        Some(scope) => {
            let separator = authorize.scope_separator.as_str();
            let scopes: Vec<&str> = scope.split(separator).filter(|s| !s.is_empty()).collect();
            if let Some(bad) = scopes.iter().find(|s| s.contains(char::is_whitespace)) {
                return fail(format!(
                    "scope {bad:?} has whitespace: this provider joins scopes with {separator:?}"
                ));
            }
            scopes.join(" ")
        }
    };
    for (name, value) in &authorize.extra_params {
        if params.get(name) != Some(value.as_str()) {
            return fail(format!("this provider needs the parameter {name}={value}"));
        }
    }
    let pkce = if checks_pkce {
        match pkce_challenge(s, &params) {
            Ok(pkce) => pkce,
            Err(message) => return fail(message),
        }
    } else {
        None
    };
    let request = AuthorizeRequest {
        provider,
        path,
        client_id,
        redirect_uri,
        scope: &scope,
        state: params.get(&names.state),
        pkce: pkce.as_ref(),
    };
    consent::decide(&s.shared, &params, request)
}

/// The request's PKCE challenge (RFC 7636 §4.3), or why it is refused.
fn pkce_challenge(s: &SpecShared, params: &Params) -> Result<Option<PkceChallenge>, String> {
    let Some(authorize) = &s.spec.authorize else {
        return Ok(None);
    };
    let names = &authorize.params;
    let challenge = params.get(&names.code_challenge);
    if challenge.is_none() && s.requires_pkce() {
        return Err(format!(
            "PKCE is required: missing parameter {}",
            names.code_challenge
        ));
    }
    PkceChallenge::parse(
        challenge,
        params.get(&names.code_challenge_method),
        &names.code_challenge,
        &names.code_challenge_method,
    )
}
