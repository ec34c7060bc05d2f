//! `check SPEC`: every example spec checks; the requests shown are the
//! engine's, with the spec's field names and body format; secrets (the
//! placeholders and a real-looking one from the environment) never show;
//! bad specs, files and options exit 2 naming what is wrong.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use url::{form_urlencoded, Url};

use crate::harness::{cli, Run};

/// A secret as a real one looks, with characters that form encoding and
/// JSON change.
const REAL_SECRET: &str = "Zq9xW2vL7pK4mN8rT1yB+s3cr3t/é=%&\"end";
/// The API key given to HyperSKU's `token.secret_headers`.
const REAL_API_KEY: &str = "hsk_live_9f8e7d6c5b4a39281706f5e4";

/// The workspace's `examples/providers`.
fn providers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/providers")
        .canonicalize()
        .expect("examples/providers exists")
}

fn spec(name: &str) -> String {
    providers().join(name).display().to_string()
}

async fn check(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut argv = vec!["check".to_owned()];
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    cli(&argv, env, None).await
}

/// The shapes a secret could leak in: as is, form-encoded, JSON-escaped,
/// and in Basic credentials (raw or form-encoded parts, RFC 6749 §2.3.1).
fn shapes_of(secret: &str) -> Vec<String> {
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json = serde_json::to_string(secret).unwrap();
    let id = "your-client-id";
    vec![
        secret.to_owned(),
        form.clone(),
        json.trim_matches('"').to_owned(),
        STANDARD.encode(format!("{id}:{secret}")),
        STANDARD.encode(format!("{id}:{form}")),
    ]
}

/// The request of `grant` in `--json` output.
fn request<'a>(json: &'a Value, grant: &str) -> &'a Value {
    json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["grant"] == grant)
        .unwrap_or_else(|| panic!("no {grant} request in {json:#}"))
}

fn grants(json: &Value) -> Vec<&str> {
    json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["grant"].as_str().unwrap())
        .collect()
}

/// A spec file of the test's own.
fn spec_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn every_example_spec_checks() {
    let mut names: Vec<String> = std::fs::read_dir(providers())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    assert!(names.iter().any(|n| n == "hypersku.toml"), "{names:?}");
    for name in &names {
        let path = spec(name);
        let run = check(&[&path], &[]).await;
        run.expect_code(0);
        assert!(
            run.stdout
                .contains(&format!("{path}: a valid provider spec")),
            "{name}: {}",
            run.stdout
        );
        assert!(run.stdout.contains("Nothing was sent"), "{name}");
        // The placeholders stand in for secrets: only their labels show.
        assert!(!run.stdout.contains("check-placeholder"), "{}", run.stdout);
        assert!(run.stderr.is_empty(), "{name}: {}", run.stderr);

        let run = cli(&["--json".into(), "check".into(), path.clone()], &[], None).await;
        run.expect_code(0);
        let json = run.json();
        assert_eq!(json["valid"], true, "{name}");
        assert!(!json["requests"].as_array().unwrap().is_empty(), "{name}");
        assert!(!run.stdout.contains("check-placeholder"), "{}", run.stdout);
    }
}

#[tokio::test]
async fn hypersku_shows_its_camel_case_json_body_and_masks_its_api_key() {
    let run = check(&[&spec("hypersku.toml")], &[]).await;
    run.expect_code(0);
    let out = &run.stdout;
    for expected in [
        "Code exchange\n  POST https://api.hypersku.com/api/auth/admin/token/access_token\n",
        "Refresh\n  POST https://api.hypersku.com/api/auth/admin/token/refresh_token\n",
        "  content-type: application/json\n",
        "  host: api.hypersku.com\n",
        // The secret header, masked.
        "  authorization: [secret api_key]\n",
        r#"  {"clientId":"your-client-id","clientSecret":"****","code":"[code]","grantType":"authorization_code","redirectUri":"https://app.example/callback"}"#,
        r#"  {"clientId":"your-client-id","clientSecret":"****","grantType":"refresh_token","refreshToken":"[refresh_token]"}"#,
        "GET https://app.hypersku.com/application/auth?clientId=your-client-id&scope=oms&redirectUri=",
    ] {
        assert!(out.contains(expected), "{expected:?} not in:\n{out}");
    }
    assert!(!out.contains("content-length:"), "{out}");
    assert!(!out.contains("grant_type"), "snake_case sent: {out}");

    // With the real API key (and client secret) from the environment.
    let env = [("HS_SECRET", REAL_SECRET), ("HS_API_KEY", REAL_API_KEY)];
    let options = [
        "--client-secret-env",
        "HS_SECRET",
        "--secret-env",
        "api_key=HS_API_KEY",
    ];
    let path = spec("hypersku.toml");
    let mut args = vec![path.as_str()];
    args.extend(options);
    let run = check(&args, &env).await;
    run.expect_code(0);
    assert!(run.stdout.contains("  authorization: [secret api_key]\n"));
    let mut secrets = shapes_of(REAL_SECRET);
    secrets.extend(shapes_of(REAL_API_KEY));
    run.assert_no_secret(&secrets);

    let mut argv: Vec<String> = vec!["--json".into(), "check".into()];
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    let run = cli(&argv, &env, None).await;
    run.expect_code(0);
    run.assert_no_secret(&secrets);
    let json = run.json();
    let exchange = request(&json, "authorization_code");
    assert_eq!(exchange["body_format"], "json");
    assert_eq!(
        exchange["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == "authorization")
            .unwrap()["value"],
        "[secret api_key]"
    );
    let fields = exchange["fields"].as_array().unwrap();
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no field {name}: {exchange:#}"))["value"]
            .clone()
    };
    assert_eq!(field("clientSecret"), "****");
    assert_eq!(field("grantType"), "authorization_code");
    assert_eq!(field("code"), "[code]");
}

#[tokio::test]
async fn client_secret_basic_shows_basic_masked() {
    let run = check(&[&spec("dropbox.toml")], &[]).await;
    run.expect_code(0);
    let out = &run.stdout;
    assert!(
        out.contains("  authorization: Basic [your-client-id:****]\n"),
        "{out}"
    );
    assert!(
        out.contains("  content-type: application/x-www-form-urlencoded\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "  grant_type=authorization_code&code=[code]&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&code_verifier=[code_verifier]\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("  grant_type=refresh_token&refresh_token=[refresh_token]\n"),
        "{out}"
    );
    // Basic: neither the secret nor the client id in the bodies.
    let bodies: Vec<&str> = out
        .lines()
        .filter(|line| line.starts_with("  grant_type="))
        .collect();
    assert_eq!(bodies.len(), 2, "{out}");
    for body in bodies {
        assert!(!body.contains("client_secret"), "{body}");
        assert!(!body.contains("client_id"), "{body}");
    }
}

#[tokio::test]
async fn a_secret_from_the_environment_never_shows() {
    let env = [("MY_CLIENT_SECRET", REAL_SECRET)];
    let secrets = shapes_of(REAL_SECRET);
    // Basic (dropbox, zoom), form body (google, with revocation), JSON
    // body (hypersku), client credentials (paypal).
    for name in [
        "dropbox.toml",
        "zoom.toml",
        "google.toml",
        "hypersku.toml",
        "paypal.toml",
    ] {
        let path = spec(name);
        for json in [false, true] {
            let mut argv: Vec<String> = Vec::new();
            if json {
                argv.push("--json".into());
            }
            argv.extend(
                ["check", &path, "--client-secret-env", "MY_CLIENT_SECRET"]
                    .iter()
                    .map(|s| (*s).to_owned()),
            );
            let run = cli(&argv, &env, None).await;
            run.expect_code(0);
            run.assert_no_secret(&secrets);
            assert!(run.stdout.contains("****"), "{name}: {}", run.stdout);
        }
    }

    // The secret is the one sent: in Basic form, masked where it was.
    let run = check(
        &[
            &spec("dropbox.toml"),
            "--client-secret-env",
            "MY_CLIENT_SECRET",
        ],
        &env,
    )
    .await;
    run.expect_code(0);
    assert!(run.stdout.contains("Basic [your-client-id:****]"));

    // An unset variable, or the secret typed in the variable's place:
    // exit 2, and the value is not quoted.
    let run = check(
        &[&spec("google.toml"), "--client-secret-env", "NOT_SET_HERE"],
        &[],
    )
    .await;
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("`NOT_SET_HERE` (--client-secret-env) is not set"),
        "{}",
        run.stderr
    );
    let run = check(
        &[&spec("google.toml"), "--client-secret-env", REAL_SECRET],
        &[],
    )
    .await;
    run.expect_code(2);
    assert!(
        run.stderr.contains("the name of an environment variable"),
        "{}",
        run.stderr
    );
    run.assert_no_secret(&secrets);
}

#[tokio::test]
async fn json_output_has_the_requests_grants_formats_and_urls() {
    let run = cli(
        &["--json".into(), "check".into(), spec("hypersku.toml")],
        &[],
        None,
    )
    .await;
    run.expect_code(0);
    let json = run.json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["id"], "hypersku");
    assert_eq!(json["renewal"], "refresh_token");
    assert_eq!(grants(&json), ["authorization_code", "refresh_token"]);
    let exchange = request(&json, "authorization_code");
    assert_eq!(exchange["method"], "POST");
    assert_eq!(
        exchange["url"],
        "https://api.hypersku.com/api/auth/admin/token/access_token"
    );
    assert_eq!(exchange["body_format"], "json");
    let body: Value = serde_json::from_str(exchange["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["clientSecret"], "****");
    assert_eq!(
        request(&json, "refresh_token")["url"],
        "https://api.hypersku.com/api/auth/admin/token/refresh_token"
    );
    let authorize = Url::parse(json["authorize"]["url"].as_str().unwrap()).unwrap();
    assert_eq!(authorize.host_str(), Some("app.hypersku.com"));
    assert_eq!(json["authorize"]["scopes"], serde_json::json!(["oms"]));
    assert_eq!(json["authorize"]["pkce"], false);
    assert!(json["masks"]["****"].is_string(), "{json:#}");
    assert!(json["masks"]["[secret api_key]"].is_string(), "{json:#}");
    assert!(json["resolved"].is_object());

    // Google: a form body, and a revocation.
    let run = cli(
        &["--json".into(), "check".into(), spec("google.toml")],
        &[],
        None,
    )
    .await;
    run.expect_code(0);
    let json = run.json();
    assert_eq!(
        grants(&json),
        ["authorization_code", "refresh_token", "revocation"]
    );
    assert_eq!(request(&json, "authorization_code")["body_format"], "form");
    assert_eq!(
        request(&json, "revocation")["url"],
        "https://oauth2.googleapis.com/revoke"
    );
    assert_eq!(json["authorize"]["pkce"], true);

    // PayPal: client credentials only, no authorization.
    let run = cli(
        &["--json".into(), "check".into(), spec("paypal.toml")],
        &[],
        None,
    )
    .await;
    run.expect_code(0);
    let json = run.json();
    assert_eq!(grants(&json), ["client_credentials"]);
    assert!(json["authorize"].is_null());
    let body = request(&json, "client_credentials")["body"]
        .as_str()
        .unwrap();
    assert!(body.contains("grant_type=client_credentials"), "{body}");
}

#[tokio::test]
async fn params_scopes_and_pkce_reach_the_authorize_url() {
    let run = cli(
        &[
            "--json".into(),
            "check".into(),
            spec("github.toml"),
            "--param".into(),
            "access_type=offline".into(),
            "--scope".into(),
            "repo".into(),
            "--pkce".into(),
            "off".into(),
        ],
        &[],
        None,
    )
    .await;
    run.expect_code(0);
    let json = run.json();
    let url = Url::parse(json["authorize"]["url"].as_str().unwrap()).unwrap();
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let has = |name: &str, value: &str| query.iter().any(|(n, v)| n == name && v == value);
    assert!(has("access_type", "offline"), "{url}");
    assert!(has("scope", "repo"), "{url}");
    assert!(!query.iter().any(|(n, _)| n == "code_challenge"), "{url}");
    assert_eq!(json["authorize"]["pkce"], false);

    // The text output shows the same URL.
    let run = check(
        &[&spec("github.toml"), "--param", "access_type=offline"],
        &[],
    )
    .await;
    run.expect_code(0);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("  GET "))
        .unwrap();
    assert!(line.contains("access_type=offline"), "{line}");
    assert!(line.contains("code_challenge_method=S256"), "{line}");

    // Turned on where the spec has it off.
    let run = check(&[&spec("hypersku.toml"), "--pkce", "on"], &[]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("code_challenge="), "{}", run.stdout);
    assert!(
        run.stdout.contains(r#""codeVerifier":"[code_verifier]""#),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn pkce_off_where_the_spec_requires_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = spec_file(
        &dir,
        "required.toml",
        "id = \"p\"\n[authorize]\nurl = \"https://p.example/a\"\npkce = \"required\"\n\
         [token]\nurl = \"https://p.example/t\"\n",
    );
    let run = check(&[&path], &[]).await;
    run.expect_code(0);
    assert!(
        run.stdout.contains("required: S256 on every authorization"),
        "{}",
        run.stdout
    );
    let run = check(&[&path, "--pkce", "off"], &[]).await;
    assert_ne!(run.code, Some(0), "{}", run.stdout);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("requires PKCE: it cannot be turned off"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[tokio::test]
async fn bad_specs_exit_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "no-token.toml",
            "id = \"p\"\nname = \"P\"\n",
            "provider spec: line 1: missing field `token`",
            "line 1",
            "missing field `token`",
        ),
        (
            "ftp.toml",
            "id = \"p\"\n[token]\nurl = \"ftp://p.example/t\"\n",
            "provider spec: `token.url`: must be an http(s) URL with a host",
            "token.url",
            "must be an http(s) URL",
        ),
        (
            "unknown.toml",
            "id = \"p\"\ncolour = \"blue\"\n[token]\nurl = \"https://p.example/t\"\n",
            "provider spec: line 2: unknown field `colour`",
            "line 2",
            "unknown field `colour`",
        ),
        (
            "bad.json",
            r#"{"id":"p","token":{"url":"https://p.example/t","client_auth":"magic"}}"#,
            "provider spec: line 1, column ",
            "line 1, column ",
            "unknown variant `magic`",
        ),
    ];
    for (name, text, message, field, reason) in cases {
        let path = spec_file(&dir, name, text);
        let run = check(&[&path], &[]).await;
        run.expect_code(2);
        assert!(
            run.stderr.contains(&format!("error: {path}: {message}")),
            "{name}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("`line"), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);

        let run = cli(&["--json".into(), "check".into(), path.clone()], &[], None).await;
        run.expect_code(2);
        let json = run.json();
        assert_eq!(json["valid"], false, "{name}");
        let got = json["error"]["field"].as_str().unwrap();
        assert!(got.starts_with(field), "{name}: {got}");
        // The message without its place, which is the field.
        let shown = json["error"]["message"].as_str().unwrap();
        assert!(
            shown.starts_with(reason),
            "{name}: {shown:?} does not start with {reason:?}"
        );
    }

    let missing = dir.path().join("typo.toml").display().to_string();
    let run = check(&[&missing], &[]).await;
    run.expect_code(2);
    assert!(
        run.stderr.contains(&format!("error: {missing}: ")),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}
