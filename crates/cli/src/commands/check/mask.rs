//! Showing a captured request without its secrets: each secret the
//! request carries (the client secret, the code, the refresh token, the
//! PKCE verifier, the access token, the secret headers' values) is
//! replaced by a label, wherever it is: a body field, the `Basic`
//! credentials, a header. A last check refuses output that still holds one.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use oauth2_adapters::{BodyFormat, ExposeSecret, SecretString};
use serde_json::Value;
use url::form_urlencoded;

use super::capture::Captured;

/// The label of the client secret.
pub const CLIENT_SECRET: &str = "****";

/// A secret the requests may carry, and the label shown instead.
struct Masked {
    value: SecretString,
    label: String,
}

/// The secrets of one `check` run.
#[derive(Default)]
pub struct Masks {
    secrets: Vec<Masked>,
    /// Header name (lowercase) → the secret name it carries.
    secret_headers: BTreeMap<String, String>,
}

/// A request as shown: URL, headers and body, secrets masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// `POST`.
    pub method: String,
    /// The endpoint's URL (the spec's host, the captured path and query).
    pub url: String,
    /// The headers in the order sent, without `content-length` (the masked
    /// body is not the length sent) and with the spec's `host`.
    pub headers: Vec<(String, String)>,
    /// The body's format.
    pub format: BodyFormat,
    /// The body as sent, secrets masked.
    pub body: String,
    /// The body's fields, decoded, in order, secrets masked.
    pub fields: Vec<(String, String)>,
}

impl Masks {
    /// Masks `value` as `label` (an empty value is not a secret to find).
    pub fn add(&mut self, value: &str, label: &str) {
        if !value.is_empty() {
            self.secrets.push(Masked {
                value: SecretString::from(value.to_owned()),
                label: label.to_owned(),
            });
        }
    }

    /// The header `name` carries the secret `secret` (`token.secret_headers`).
    pub fn add_secret_header(&mut self, name: &str, secret: &str) {
        self.secret_headers
            .insert(name.to_ascii_lowercase(), secret.to_owned());
    }

    fn label_of(&self, value: &str) -> Option<&str> {
        self.secrets
            .iter()
            .find(|s| s.value.expose_secret() == value)
            .map(|s| s.label.as_str())
    }

    /// `request` as shown at `origin` (`https://host[:port]`, the spec's),
    /// its body read as `format`.
    pub fn show(&self, request: &Captured, origin: &str, format: BodyFormat) -> Shown {
        let host = origin.split_once("://").map_or(origin, |(_, host)| host);
        let headers = request
            .headers
            .iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
            .map(|(name, value)| {
                let value = if name.eq_ignore_ascii_case("host") {
                    host.to_owned()
                } else {
                    self.header(name, value)
                };
                (name.clone(), value)
            })
            .collect();
        let raw = String::from_utf8_lossy(&request.body);
        let (body, fields) = match format {
            BodyFormat::Form => self.form(&raw),
            BodyFormat::Json => self.json(&raw),
        };
        Shown {
            method: request.method.clone(),
            url: format!("{origin}{}", request.target),
            headers,
            format,
            body,
            fields,
        }
    }

    fn header(&self, name: &str, value: &str) -> String {
        let lower = name.to_ascii_lowercase();
        if lower == "authorization" {
            if let Some(credentials) = value
                .strip_prefix("Basic ")
                .or_else(|| value.strip_prefix("basic "))
            {
                return format!("Basic [{}]", self.basic(credentials));
            }
        }
        if let Some(secret) = self.secret_headers.get(&lower) {
            return format!("[secret {secret}]");
        }
        self.label_of(value).unwrap_or(value).to_owned()
    }

    /// `id:secret` from Basic credentials (each part form-encoded, RFC
    /// 6749 §2.3.1), the id decoded and the secret masked.
    fn basic(&self, credentials: &str) -> String {
        let decoded = STANDARD
            .decode(credentials.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            return "unreadable credentials".to_owned();
        };
        let id = form_decode(id);
        let secret = self
            .label_of(&form_decode(secret))
            .unwrap_or(CLIENT_SECRET)
            .to_owned();
        format!("{id}:{secret}")
    }

    fn form(&self, raw: &str) -> (String, Vec<(String, String)>) {
        let mut body = Vec::new();
        let mut fields = Vec::new();
        for piece in raw.split('&').filter(|piece| !piece.is_empty()) {
            let (name, value) = form_urlencoded::parse(piece.as_bytes())
                .next()
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .unwrap_or_default();
            match self.label_of(&value) {
                Some(label) => {
                    let raw_name = piece.split_once('=').map_or(piece, |(n, _)| n);
                    body.push(format!("{raw_name}={label}"));
                    fields.push((name, label.to_owned()));
                }
                None => {
                    body.push(piece.to_owned());
                    fields.push((name, value));
                }
            }
        }
        (body.join("&"), fields)
    }

    fn json(&self, raw: &str) -> (String, Vec<(String, String)>) {
        let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(raw) else {
            return ("[not a JSON object: not shown]".to_owned(), Vec::new());
        };
        let mut fields = Vec::new();
        for (name, value) in object.iter_mut() {
            if let Value::String(text) = value {
                if let Some(label) = self.label_of(text) {
                    *text = label.to_owned();
                }
                fields.push((name.clone(), text.clone()));
            } else {
                fields.push((name.clone(), value.to_string()));
            }
        }
        let body = serde_json::to_string(&object).unwrap_or_default();
        (body, fields)
    }

    /// The label of the first secret `text` still shows (as sent, form-
    /// or JSON-encoded), if any: a last check before anything is printed.
    pub fn leaked(&self, text: &str) -> Option<&str> {
        self.secrets.iter().find_map(|secret| {
            let value = secret.value.expose_secret();
            // A secret this short would be found in ordinary words: the
            // structural masking above is what hides it.
            if value.chars().count() < 6 {
                return None;
            }
            let form: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            let json = serde_json::to_string(value).unwrap_or_default();
            let json = json.trim_matches('"');
            [value, form.as_str(), json]
                .iter()
                .any(|shape| text.contains(shape))
                .then_some(secret.label.as_str())
        })
    }
}

fn form_decode(text: &str) -> String {
    form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masks() -> Masks {
        let mut masks = Masks::default();
        masks.add("s3cret p@ss+é", CLIENT_SECRET);
        masks.add("the-code-123", "[code]");
        masks.add_secret_header("Authorization", "api_key");
        masks
    }

    fn captured(headers: &[(&str, &str)], body: &str) -> Captured {
        Captured {
            method: "POST".into(),
            target: "/oauth/token".into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn form_fields_are_masked_in_place() {
        let body = "grant_type=authorization_code&code=the-code-123&client_id=a%20b\
                    &client_secret=s3cret+p%40ss%2B%C3%A9";
        let shown = masks().show(
            &captured(&[("host", "127.0.0.1:9"), ("content-length", "9")], body),
            "https://p.example",
            BodyFormat::Form,
        );
        assert_eq!(
            shown.body,
            "grant_type=authorization_code&code=[code]&client_id=a%20b&client_secret=****"
        );
        assert_eq!(shown.fields[2], ("client_id".into(), "a b".into()));
        assert_eq!(shown.headers, [("host".into(), "p.example".into())]);
        assert_eq!(shown.url, "https://p.example/oauth/token");
        assert_eq!(masks().leaked(&format!("{shown:?}")), None);
        assert_eq!(masks().leaked(body), Some(CLIENT_SECRET));
    }

    #[test]
    fn json_fields_basic_and_secret_headers_are_masked() {
        let m = masks();
        let basic = STANDARD.encode("my%20id:s3cret+p%40ss%2B%C3%A9");
        let request = captured(
            &[("authorization", &format!("Basic {basic}"))],
            r#"{"code":"the-code-123","n":1}"#,
        );
        let shown = m.show(&request, "https://p.example", BodyFormat::Json);
        assert_eq!(shown.headers[0].1, "Basic [my id:****]");
        assert_eq!(shown.body, r#"{"code":"[code]","n":1}"#);
        let request = captured(&[("authorization", "the api key")], "{}");
        let shown = m.show(&request, "https://p.example", BodyFormat::Json);
        assert_eq!(shown.headers[0].1, "[secret api_key]");
    }
}
