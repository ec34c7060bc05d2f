//! `check`'s output: text for people, one JSON document for programs.
//! Text from the spec file has its control characters escaped.

use std::fmt::Write as _;
use std::path::Path;

use oauth2_adapters::{
    BodyFormat, ClientAuthMethod, Pkce, ProviderSpec, RenewalKind, ResponseSpec, SpecError,
};
use serde_json::{json, Value};

use super::{Grant, Report};
use crate::output::printable;

/// The label column's width.
const LABEL: usize = 13;

/// The text report.
pub fn text(path: &Path, spec: &ProviderSpec, report: &Report) -> String {
    let mut out = format!("{}: a valid provider spec\n\n", path.display());
    let mut row = |label: &str, lines: Vec<String>| {
        for (i, line) in lines.iter().enumerate() {
            let label = if i == 0 { label } else { "" };
            let _ = writeln!(out, "{label:<LABEL$}{}", printable(line));
        }
    };
    let name = match &spec.name {
        Some(name) => format!("{} ({name})", spec.id),
        None => spec.id.clone(),
    };
    row("provider", vec![name]);
    if !spec.docs.is_empty() {
        row("docs", spec.docs.clone());
    }
    row("renewal", vec![renewal(spec)]);
    if let Some(authorize) = &spec.authorize {
        let pkce = match (authorize.pkce, report.pkce) {
            (Pkce::Required, _) => "required: S256 on every authorization",
            (_, true) => "S256 (the application may turn it off)",
            (_, false) => "not sent",
        };
        row("PKCE", vec![pkce.to_owned()]);
    }
    row("client auth", vec![client_auth(spec.token.client_auth)]);
    row("response", response(&spec.response));
    if let Some(envelope) = &spec.response.envelope {
        let success: Vec<String> = envelope.success.iter().map(i64::to_string).collect();
        row(
            "envelope",
            vec![format!(
                "code at `{}` (success: {}), the token object at `{}`, message at {}",
                envelope.code,
                success.join(", "),
                envelope.data,
                quoted(&envelope.message)
            )],
        );
    }
    if !spec.response.error_codes.is_empty() {
        let codes: Vec<String> = spec
            .response
            .error_codes
            .iter()
            .map(|(code, oauth)| format!("{code} = {oauth}"))
            .collect();
        row("error codes", vec![codes.join(", ")]);
    }

    if let Some(authorization) = &report.authorize {
        let scopes = if authorization.scopes.is_empty() {
            "no scope".to_owned()
        } else {
            format!("scopes {}", authorization.scopes.join(" "))
        };
        let _ = writeln!(
            out,
            "\nAuthorization (client id `{}`, redirect URI `{}`, {scopes})\n  GET {}",
            printable(&report.client_id),
            printable(&report.redirect_uri),
            authorization.url
        );
    } else {
        out.push_str(
            "\nAuthorization: none (the spec has no [authorize]: client credentials only)\n",
        );
    }
    for grant in [
        Grant::AuthorizationCode,
        Grant::RefreshToken,
        Grant::ClientCredentials,
        Grant::Revocation,
    ] {
        match report.requests.iter().find(|(g, _)| *g == grant) {
            Some((_, request)) => {
                let _ = writeln!(
                    out,
                    "\n{}\n  {} {}",
                    grant.title(),
                    request.method,
                    request.url
                );
                for (name, value) in &request.headers {
                    let _ = writeln!(out, "  {name}: {}", printable(value));
                }
                let _ = writeln!(out, "\n  {}", printable(&request.body));
            }
            None if grant == Grant::AuthorizationCode => {}
            None => {
                let _ = writeln!(out, "\n{}: {}", grant.title(), not_sent(grant, spec));
            }
        }
    }
    out.push_str(
        "\nNothing was sent: the engine made these requests to a capturing server on 127.0.0.1; \
         they are shown with the spec's host, without content-length.\n",
    );
    let labels: Vec<String> = report
        .labels
        .iter()
        .map(|(label, meaning)| format!("  {label}  {meaning}"))
        .collect();
    let _ = writeln!(out, "Masked:\n{}", labels.join("\n"));
    out
}

fn renewal(spec: &ProviderSpec) -> String {
    let kind = spec.renewal_kind();
    let default = if spec.renewal.is_none() {
        " (the default)"
    } else {
        ""
    };
    match kind {
        RenewalKind::RefreshToken if spec.rotates_refresh_tokens => format!(
            "refresh_token{default}: refresh tokens rotate (each refresh answers a new one that \
             replaces the old; a refresh is retried only when it never reached the server)"
        ),
        RenewalKind::RefreshToken => format!(
            "refresh_token{default}: refresh tokens do not rotate (the same one keeps working)"
        ),
        RenewalKind::Reacquire => {
            format!("reacquire{default}: a new token with client credentials when one expires")
        }
        RenewalKind::Never => format!("never{default}: an expired token needs a new sign-in"),
    }
}

fn client_auth(method: ClientAuthMethod) -> String {
    match method {
        ClientAuthMethod::ClientSecretBasic => {
            "client_secret_basic: HTTP Basic with the client id and secret"
        }
        ClientAuthMethod::ClientSecretPost => {
            "client_secret_post: the client id and secret in the body"
        }
        ClientAuthMethod::None => "none: the client id in the body, no secret",
    }
    .to_owned()
}

fn response(r: &ResponseSpec) -> Vec<String> {
    let unit = |u: oauth2_adapters::TimeUnit| {
        serde_json::to_value(u)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let mut lines = vec![format!(
        "access token `{}`, token type `{}`{}, refresh token `{}`",
        r.access_token,
        r.token_type,
        if r.bearer_token_types.is_empty() {
            String::new()
        } else {
            format!(" (Bearer, {})", r.bearer_token_types.join(", "))
        },
        r.refresh_token
    )];
    let mut expiry = format!(
        "expires in `{}` ({})",
        r.expires_in,
        unit(r.expires_in_unit)
    );
    if let Some(at) = &r.expires_at {
        let precedence = serde_json::to_value(r.expiry_precedence)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = write!(
            expiry,
            ", expires at `{at}` (epoch {}; precedence {precedence})",
            unit(r.expires_at_unit)
        );
    }
    if let Some(refresh) = &r.refresh_expires_in {
        let _ = write!(expiry, ", refresh token expires in `{refresh}`");
    }
    lines.push(expiry);
    let mut rest = format!("scope `{}`", r.scope);
    if let Some(separator) = &r.scope_separator {
        let _ = write!(rest, " (separated by {separator:?})");
    }
    if let Some(subject) = &r.subject {
        let _ = write!(rest, ", subject `{subject}`");
    }
    if r.status_200_only {
        rest.push_str("; HTTP 200 only");
    }
    if r.json_content_type_only {
        rest.push_str("; application/json only");
    }
    lines.push(rest);
    lines
}

fn quoted(paths: &[String]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| format!("`{p}`")).collect();
    quoted.join(" or ")
}

fn not_sent(grant: Grant, spec: &ProviderSpec) -> String {
    match grant {
        Grant::RefreshToken => format!("none (renewal is {})", spec.renewal_kind()),
        Grant::ClientCredentials => format!(
            "not used (renewal is {}, and tokens come from the authorization)",
            spec.renewal_kind()
        ),
        Grant::Revocation => "none (the spec has no [revocation])".to_owned(),
        Grant::AuthorizationCode => String::new(),
    }
}

/// The JSON report.
pub fn json(path: &Path, spec: &ProviderSpec, report: &Report) -> Value {
    let pairs = |list: &[(String, String)]| -> Vec<Value> {
        list.iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect()
    };
    let requests: Vec<Value> = report
        .requests
        .iter()
        .map(|(grant, request)| {
            json!({
                "grant": grant.name(),
                "method": request.method,
                "url": request.url,
                "headers": pairs(&request.headers),
                "body_format": match request.format {
                    BodyFormat::Json => "json",
                    BodyFormat::Form => "form",
                },
                "body": request.body,
                "fields": pairs(&request.fields),
            })
        })
        .collect();
    let authorize = report.authorize.as_ref().map(|authorization| {
        json!({
            "url": authorization.url.as_str(),
            "client_id": report.client_id,
            "redirect_uri": report.redirect_uri,
            "scopes": authorization.scopes,
            "pkce": report.pkce,
        })
    });
    let masks: serde_json::Map<String, Value> = report
        .labels
        .iter()
        .map(|(label, meaning)| (label.clone(), Value::from(meaning.as_str())))
        .collect();
    json!({
        "spec": path.display().to_string(),
        "valid": true,
        "id": spec.id,
        "name": spec.display_name(),
        "docs": spec.docs,
        "renewal": spec.renewal_kind().to_string(),
        "rotates_refresh_tokens": spec.rotates_refresh_tokens,
        "authorize": authorize,
        "requests": requests,
        "masks": masks,
        "resolved": serde_json::to_value(spec).unwrap_or(Value::Null),
    })
}

/// The JSON document of a spec that does not load.
pub fn invalid_json(path: &Path, error: &SpecError) -> Value {
    json!({
        "spec": path.display().to_string(),
        "valid": false,
        "error": { "field": error.field, "message": error.message },
    })
}
