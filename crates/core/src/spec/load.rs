//! Loading a spec and refusing a bad one, naming the field.

use std::fmt;
use std::path::Path;

use url::Url;

use super::{ProviderSpec, RenewalKind};

/// A spec that cannot be used: which field, and why. Specs hold no secret
/// (those are given to the builder), so the message may quote the spec.
///
/// Shown as ``provider spec: `token.url`: …`` for a field, and as
/// `provider spec: line 4: …` where parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider spec: {}: {message}", self.place())]
pub struct SpecError {
    /// The field at fault (`token.url`, `response.envelope.success`, …),
    /// or where parsing stopped (`line 4`, `line 1, column 9`,
    /// `(document)`), or the file that could not be read.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl SpecError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field quoted as code; a position as it is (no field name is
    /// `(…)` or `line N…`: they are the spec's dotted keys).
    fn place(&self) -> String {
        let position = self.field == "(document)"
            || self
                .field
                .strip_prefix("line ")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
        if position {
            self.field.clone()
        } else {
            format!("`{}`", self.field)
        }
    }
}

impl From<SpecError> for crate::Error {
    fn from(error: SpecError) -> Self {
        crate::Error::configuration(error.to_string())
    }
}

impl ProviderSpec {
    /// Reads and checks a spec written in TOML.
    pub fn from_toml(text: &str) -> Result<Self, SpecError> {
        let spec: Self = toml::from_str(text).map_err(|error| {
            let field = error
                .span()
                .map(|span| format!("line {}", line_of(text, span.start)))
                .unwrap_or_else(|| "(document)".into());
            SpecError::new(field, error.message().to_owned())
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Reads and checks a spec written in JSON.
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        let spec: Self = serde_json::from_str(text).map_err(|error| {
            let (line, column) = (error.line(), error.column());
            // serde_json's message ends with the position: said once.
            let message = error.to_string();
            let suffix = format!(" at line {line} column {column}");
            let message = message.strip_suffix(&suffix).unwrap_or(&message);
            SpecError::new(format!("line {line}, column {column}"), message)
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Reads and checks a spec file: TOML, or JSON when its name ends in
    /// `.json`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, SpecError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|error| SpecError::new(path.display().to_string(), error.to_string()))?;
        if path.extension().is_some_and(|e| e == "json") {
            Self::from_json(&text)
        } else {
            Self::from_toml(&text)
        }
    }

    /// Checks everything a spec can get wrong on its own (URLs, names,
    /// paths, header names and values, codes). Endpoints must be `https`
    /// (or `http` on a loopback address) when a provider is built.
    pub fn validate(&self) -> Result<(), SpecError> {
        let id_ok = !self.id.is_empty()
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !id_ok {
            return Err(SpecError::new(
                "id",
                "must be non-empty lowercase letters, digits, `-`, `_` or `.`",
            ));
        }
        if let Some(authorize) = &self.authorize {
            url_field("authorize.url", &authorize.url)?;
            let p = &authorize.params;
            for (field, name) in [
                ("client_id", &p.client_id),
                ("redirect_uri", &p.redirect_uri),
                ("scope", &p.scope),
                ("state", &p.state),
                ("response_type", &p.response_type),
                ("code_challenge", &p.code_challenge),
                ("code_challenge_method", &p.code_challenge_method),
            ] {
                name_field(&format!("authorize.params.{field}"), name)?;
            }
            non_empty("authorize.scope_separator", &authorize.scope_separator)?;
            for name in authorize.extra_params.keys() {
                name_field("authorize.extra_params", name)?;
            }
        } else if self.renewal == Some(RenewalKind::RefreshToken) {
            return Err(SpecError::new(
                "renewal",
                "`refresh_token` needs an `[authorize]` endpoint to sign in with",
            ));
        }
        let token = &self.token;
        url_field("token.url", &token.url)?;
        if let Some(url) = &token.refresh_url {
            url_field("token.refresh_url", url)?;
        }
        let f = &token.fields;
        for (field, name) in [
            ("client_id", &f.client_id),
            ("client_secret", &f.client_secret),
            ("code", &f.code),
            ("redirect_uri", &f.redirect_uri),
            ("refresh_token", &f.refresh_token),
            ("code_verifier", &f.code_verifier),
            ("scope", &f.scope),
        ] {
            name_field(&format!("token.fields.{field}"), name)?;
        }
        non_empty("token.scope_separator", &token.scope_separator)?;
        for (name, value) in &token.headers {
            header_field("token.headers", name, Some(value))?;
        }
        for (name, secret) in &token.secret_headers {
            header_field("token.secret_headers", name, None)?;
            name_field("token.secret_headers", secret)?;
        }
        for (table, params) in [
            ("token.extra_params", &token.extra_params),
            ("token.code_params", &token.code_params),
            ("token.refresh_params", &token.refresh_params),
        ] {
            for name in params.keys() {
                name_field(table, name)?;
            }
        }
        self.validate_response()?;
        if let Some(revocation) = &self.revocation {
            url_field("revocation.url", &revocation.url)?;
            name_field("revocation.token_field", &revocation.token_field)?;
        }
        Ok(())
    }

    fn validate_response(&self) -> Result<(), SpecError> {
        let r = &self.response;
        for (field, path) in [
            ("access_token", Some(&r.access_token)),
            ("token_type", Some(&r.token_type)),
            ("refresh_token", Some(&r.refresh_token)),
            ("expires_in", Some(&r.expires_in)),
            ("scope", Some(&r.scope)),
            ("expires_at", r.expires_at.as_ref()),
            ("refresh_expires_in", r.refresh_expires_in.as_ref()),
            ("subject", r.subject.as_ref()),
        ] {
            if let Some(path) = path {
                path_field(&format!("response.{field}"), path)?;
            }
        }
        for kind in &r.bearer_token_types {
            name_field("response.bearer_token_types", kind)?;
        }
        if let Some(separator) = &r.scope_separator {
            non_empty("response.scope_separator", separator)?;
        }
        if let Some(envelope) = &r.envelope {
            path_field("response.envelope.code", &envelope.code)?;
            path_field("response.envelope.data", &envelope.data)?;
            if envelope.success.is_empty() {
                return Err(SpecError::new(
                    "response.envelope.success",
                    "lists no success code",
                ));
            }
            for path in &envelope.message {
                path_field("response.envelope.message", path)?;
            }
        }
        for (code, oauth) in &r.error_codes {
            non_empty("response.error_codes", code)?;
            name_field(&format!("response.error_codes.{code}"), oauth)?;
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

fn non_empty(field: &str, value: &str) -> Result<(), SpecError> {
    if value.is_empty() {
        return Err(SpecError::new(field, "must not be empty"));
    }
    Ok(())
}

fn url_field(field: &str, value: &str) -> Result<(), SpecError> {
    let url = Url::parse(value).map_err(|e| SpecError::new(field, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(SpecError::new(field, "must be an http(s) URL with a host"));
    }
    Ok(())
}

/// A parameter or field name: printable ASCII, no spaces.
fn name_field(field: &str, value: &str) -> Result<(), SpecError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SpecError::new(
            field,
            format!("{value:?} is not a usable name (printable ASCII without spaces)"),
        ));
    }
    Ok(())
}

fn path_field(field: &str, value: &str) -> Result<(), SpecError> {
    if value
        .split('|')
        .any(|alternative| alternative.split('.').any(str::is_empty))
    {
        return Err(SpecError::new(
            field,
            format!("{value:?} is not a path (dot-separated names; `|` between alternatives)"),
        ));
    }
    Ok(())
}

fn header_field(field: &str, name: &str, value: Option<&str>) -> Result<(), SpecError> {
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| SpecError::new(field, format!("{name:?} is not a header name")))?;
    if let Some(value) = value {
        http::HeaderValue::from_str(value)
            .map_err(|_| SpecError::new(format!("{field}.{name}"), "not a header value"))?;
    }
    Ok(())
}

impl fmt::Display for RenewalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RefreshToken => "refresh_token",
            Self::Reacquire => "reacquire",
            Self::Never => "never",
        })
    }
}
