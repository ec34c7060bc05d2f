//! The fast path of reading a token response: a flat token object (the
//! common answer) read in one pass, without building a JSON tree.
//!
//! It applies only when every field the token is made from has a plain
//! name (no `a.b` path, no `a|b` alternatives), there is no envelope, and
//! the status and content type are ones the general reader would accept.
//! The mapped fields are kept as values (their strings moved into the
//! token, never copied), the others become the token's extras as they are
//! read. Anything unusual (an `error` member, a repeated key, no access
//! token, a body that is not one JSON object) gives up, and the general
//! reader reads the body again, so every error is exactly its error.

use serde_json::{Map, Value};

use super::response::{is_plain, mapped_paths, TokenFields};
use super::ResponseSpec;
use crate::flat_object::FlatObject;
use crate::json_response::JsonResponse;

/// The fields of a flat token object, named by the spec's
/// [`mapped_paths`], or `None` when the general reader must read the body.
pub(super) fn read<'s>(
    json: &JsonResponse<'_>,
    spec: &'s ResponseSpec,
) -> Option<FlatObject<'s, 7>> {
    if spec.envelope.is_some() {
        return None;
    }
    let status = json.status();
    if !(200..300).contains(&status)
        || (spec.status_200_only && status != 200)
        || (spec.json_content_type_only && !json.is_json_content_type())
    {
        return None;
    }
    let plain = |path: &str| !path.is_empty() && is_plain(path);
    let mut names = [""; 7];
    for (name, path) in names.iter_mut().zip(mapped_paths(spec)) {
        if let Some(path) = path {
            if !plain(path) {
                return None;
            }
            *name = path;
        }
    }
    if spec.expires_at.as_deref().is_some_and(|path| !plain(path)) {
        return None;
    }
    let object = FlatObject::read(json.body(), names)?;
    // No access token: the general reader says what is missing.
    object.get(names[0])?;
    Some(object)
}

impl TokenFields for FlatObject<'_, 7> {
    fn get(&self, path: &str) -> Option<&Value> {
        FlatObject::get(self, path)
    }
    fn name<'p>(&self, path: &'p str) -> &'p str {
        path
    }
    fn take_string(&mut self, path: &str) -> String {
        FlatObject::take_string(self, path).unwrap_or_default()
    }
    fn into_extra(self, _spec: &ResponseSpec) -> Map<String, Value> {
        FlatObject::into_extra(self)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use bytes::Bytes;

    use super::super::response::{read_general, read_token};
    use super::super::{ExpiryPrecedence, ResponseSpec};
    use crate::http::HttpResponse;
    use crate::json_response::JsonResponse;
    use crate::token::ProviderId;

    static P: ProviderId = ProviderId::from_static("p");

    fn specs() -> Vec<ResponseSpec> {
        let hike_like = ResponseSpec {
            expires_at: Some("expires".into()),
            expiry_precedence: ExpiryPrecedence::Earliest,
            subject: Some("user_id".into()),
            refresh_expires_in: Some("refresh_expires_in".into()),
            ..ResponseSpec::default()
        };
        let strict = ResponseSpec {
            token_type_required: true,
            status_200_only: true,
            json_content_type_only: true,
            scope_separator: Some(",".into()),
            bearer_token_types: vec!["bearer".into(), "user".into()],
            ..ResponseSpec::default()
        };
        let camel = ResponseSpec {
            access_token: "accessToken".into(),
            refresh_token: "refreshToken".into(),
            expires_in: "expiresIn".into(),
            expires_at: Some("expiresAt".into()),
            expiry_precedence: ExpiryPrecedence::Absolute,
            ..ResponseSpec::default()
        };
        // Not flat: the general reader reads these (the test still holds).
        let dotted = ResponseSpec {
            access_token: "data.access_token|access_token".into(),
            ..ResponseSpec::default()
        };
        let shared_name = ResponseSpec {
            subject: Some("scope".into()),
            ..ResponseSpec::default()
        };
        vec![
            ResponseSpec::default(),
            hike_like,
            strict,
            camel,
            dotted,
            shared_name,
        ]
    }

    const BODIES: &[&str] = &[
        r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1","scope":"a b","expires":1800003600,"user_id":42}"#,
        r#"{"access_token":"at-1","token_type":"bearer","expires_in":"3600","scope":["a","b"],"extra":{"k":[1,2,{"z":null}]}}"#,
        r#"{"access_token":"at-1"}"#,
        r#"{"accessToken":"at-1","refreshToken":"rt","expiresIn":60,"expiresAt":1800000030,"tokenType":"Bearer"}"#,
        r#"{"access_token":"at-1","token_type":"mac"}"#,
        r#"{"access_token":"at-1","token_type":"user","scope":"a,b, c"}"#,
        r#"{"access_token":"","token_type":"Bearer"}"#,
        r#"{"access_token":null}"#,
        r#"{"access_token":7}"#,
        r#"{"access_token":"at-1","refresh_token":7}"#,
        r#"{"access_token":"at-1","refresh_token":""}"#,
        r#"{"access_token":"at-1","expires_in":"soon"}"#,
        r#"{"access_token":"at-1","expires_in":-5}"#,
        r#"{"access_token":"at-1","expires_in":1e300}"#,
        r#"{"access_token":"at-1","user_id":{"no":1}}"#,
        r#"{"access_token":"at-1","scope":42}"#,
        r#"{"access_token":"at-1","refresh_expires_in":"x"}"#,
        r#"{"access_token":"a","access_token":"b"}"#,
        r#"{"access_token":"at-1","x":1,"x":2}"#,
        r#"{"access_token":"at-1","x":{"y":1,"y":2}}"#,
        r#"{"error":"invalid_grant","error_description":"spent"}"#,
        r#"{"access_token":"at-1","error":"invalid_grant"}"#,
        r#"{"access_token":"at-1","error":""}"#,
        r#"{"acc\u0065ss_token":"escaped-key","tok\ten":1}"#,
        r#"{"data":{"access_token":"nested"}}"#,
        r#"{"token":"none here"}"#,
        r#"{"access_token":"at-1"} trailing"#,
        r#"{"access_token":"at-1""#,
        r#"["access_token"]"#,
        r#""access_token""#,
        "",
        "<html>oops</html>",
    ];

    /// The fast path answers exactly as the general reader: the same token
    /// (record and all) or the same error, for every spec, body, status
    /// and content type here.
    #[test]
    fn the_flat_path_reads_exactly_as_the_general_reader() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut flat_answers = 0;
        for spec in specs() {
            for body in BODIES {
                for status in [200, 201, 400, 302] {
                    for content_type in [Some("application/json"), Some("text/plain"), None] {
                        let mut headers = http::HeaderMap::new();
                        if let Some(value) = content_type {
                            headers.insert(http::header::CONTENT_TYPE, value.parse().unwrap());
                        }
                        let response = HttpResponse {
                            status,
                            headers,
                            body: Bytes::from(body.to_string()),
                        };
                        let json = JsonResponse::new(&P, &response, &["rt-1"]);
                        if super::read(&json, &spec).is_some() {
                            flat_answers += 1;
                        }
                        let fast = read_token(&P, &json, &spec, now);
                        let general = read_general(&P, &json, &spec, now);
                        let what = format!("{body} (HTTP {status}, {content_type:?})");
                        match (fast, general) {
                            (Ok(fast), Ok(general)) => {
                                assert!(fast.to_record() == general.to_record(), "{what}")
                            }
                            (Err(fast), Err(general)) => {
                                assert_eq!(fast.to_string(), general.to_string(), "{what}");
                                assert_eq!(format!("{fast:?}"), format!("{general:?}"), "{what}");
                            }
                            (fast, general) => {
                                panic!("{what}: {:?} vs {:?}", fast.is_ok(), general.is_ok())
                            }
                        }
                    }
                }
            }
        }
        // The fast path was taken often enough for the comparison to mean something.
        assert!(flat_answers > 100, "{flat_answers}");
    }
}
