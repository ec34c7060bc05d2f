//! `tokens refresh`: against the testkit's mocks, started in this process;
//! the client secret reaches the binary only through the variable the
//! provider file names.

use std::path::PathBuf;

use oauth2_adapters::hike::Hike;
use oauth2_adapters::prelude::*;
use oauth2_adapters::testkit::{HikeMock, MockConfig, MockServer, PartnerMock};
use oauth2_adapters::ProviderId;

use crate::harness::{cli, on_both_stores, plant, secrets_of, token, with_db, Db, ONLY_NEW_KEYS};

const SECRET_VAR: &str = "CLI_TEST_CLIENT_SECRET";

/// A provider file in a temporary directory.
fn provider_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("provider.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn hike_file(dir: &tempfile::TempDir, mock: &HikeMock) -> PathBuf {
    provider_file(
        dir,
        &format!(
            "kind = \"hike\"\nbase_url = \"{}\"\nclient_id = \"{}\"\nclient_secret_env = \"{SECRET_VAR}\"\n",
            mock.base_url(),
            mock.config().client_id
        ),
    )
}

/// Signs in at the mock, as the application would have.
async fn sign_in(mock: &HikeMock) -> Token {
    let hike = Hike::builder(mock.credentials())
        .base_url(mock.base_url().as_str())
        .settings(mock.provider_settings().unwrap())
        .build()
        .unwrap();
    let (url, pending) = hike
        .authorize(AuthorizeRequest::new(&mock.config().redirect_uri).unwrap())
        .unwrap();
    let callback = mock.approve(&url).await.unwrap();
    hike.handle_callback(CallbackParams::from_url(&callback).unwrap(), pending)
        .await
        .unwrap()
}

async fn a_rotating_refresh_lands_in_the_store(db: &Db) {
    let mock = HikeMock::start(MockConfig::default()).await.unwrap();
    let store = db.store(Some(ONLY_NEW_KEYS)).await;
    let signed_in = sign_in(&mock).await;
    let key = TokenKey::new(&ProviderId::from_static("hike"), "store-42");
    store
        .compare_and_swap(&key, None, &signed_in.to_record())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = hike_file(&dir, &mock);
    let secret = mock.config().client_secret.clone();
    let env = [(SECRET_VAR, secret.as_str()), ("TOKEN_KEYS", ONLY_NEW_KEYS)];

    let args = with_db(
        db,
        &[
            "--json",
            "tokens",
            "refresh",
            key.as_str(),
            "--provider-config",
        ],
    );
    let mut args = args;
    args.push(file.display().to_string());
    let run = cli(&args, &env, None).await;
    run.expect_code(0);

    let stored = store.load(&key).await.unwrap().expect("still stored");
    let new = Token::from_record(stored.record);
    let mut secrets = secrets_of(&signed_in);
    secrets.extend(secrets_of(&new));
    secrets.push(secret.clone());
    run.assert_no_secret(&secrets);
    // Rotated: new access and refresh tokens, the old refresh token spent.
    assert_ne!(new.expose_access_token(), signed_in.expose_access_token());
    assert_ne!(new.expose_refresh_token(), signed_in.expose_refresh_token());
    assert_eq!(mock.rotations().len(), 1);
    assert!(mock.is_refresh_token_valid(new.expose_refresh_token().unwrap()));
    assert!(!mock.is_refresh_token_valid(signed_in.expose_refresh_token().unwrap()));
    assert_eq!(stored.version, 2);
    let report = run.json();
    assert_eq!(report["key"], key.as_str());
    assert_eq!(report["previous_version"], 1);
    assert_eq!(report["version"], 2);
    let left = report["expires_in_secs"].as_i64().unwrap();
    assert!((3590..=3600).contains(&left), "{left}");
    assert!(report["refresh_expires_at"].is_string() || report["refresh_expires_at"].is_null());
    // The new row is encrypted like the old one.
    assert!(db
        .column(&key)
        .await
        .contains("\"access_token\":\"enc:v1:new:"));

    // Again, in words, with the key given by its parts: one more rotation.
    let mut args = with_db(
        db,
        &[
            "tokens",
            "refresh",
            "--provider",
            "hike",
            "--account",
            "store-42",
        ],
    );
    args.extend(["--provider-config".to_owned(), file.display().to_string()]);
    let run = cli(&args, &env, None).await;
    run.expect_code(0).assert_no_secret(&secrets);
    assert!(
        run.stdout
            .starts_with("refreshed hike|store-42|: version 2 -> 3, expires "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("(in 60 min)"), "{}", run.stdout);
    assert_eq!(mock.rotations().len(), 2);
    let latest = Token::from_record(store.load(&key).await.unwrap().unwrap().record);
    secrets.extend(secrets_of(&latest));
    run.assert_no_secret(&secrets);

    // A refresh token the provider no longer accepts: a clear error, the
    // stored token left as it is.
    let mut stale = latest.clone();
    stale.refresh_token = signed_in.refresh_token.clone();
    let stored = store.load(&key).await.unwrap().unwrap();
    store
        .compare_and_swap(&key, Some(stored.version), &stale.to_record())
        .await
        .unwrap();
    let run = cli(&args, &env, None).await;
    run.expect_code(1).assert_no_secret(&secrets);
    assert!(
        run.stderr.contains("error: refreshing hike|store-42|: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("re-authorization required"),
        "{}",
        run.stderr
    );
    mock.shutdown().await;
}

async fn client_credentials_are_reacquired(db: &Db) {
    let mock = PartnerMock::start(MockConfig::default()).await.unwrap();
    let store = db.store(None).await;
    let key = TokenKey::new(&ProviderId::from_static("partner"), "main");
    let old = token("partner", 600, None);
    plant(&*store, &key, &old).await;
    let dir = tempfile::tempdir().unwrap();
    let file = provider_file(
        &dir,
        &format!(
            "kind = 'partner'\nbase_url = '{}'\nclient_id = '{}'\nclient_secret_env = '{SECRET_VAR}'\n",
            mock.base_url(),
            mock.config().client_id
        ),
    );
    let secret = mock.config().client_secret.clone();
    let mut args = with_db(
        db,
        &["tokens", "refresh", key.as_str(), "--provider-config"],
    );
    args.push(file.display().to_string());
    let run = cli(&args, &[(SECRET_VAR, &secret)], None).await;
    run.expect_code(0);
    let new = Token::from_record(store.load(&key).await.unwrap().unwrap().record);
    let mut secrets = secrets_of(&old);
    secrets.extend(secrets_of(&new));
    secrets.push(secret);
    run.assert_no_secret(&secrets);
    assert_ne!(new.expose_access_token(), old.expose_access_token());
    assert_eq!(mock.issued_access_tokens(), 1);
    assert!(run.stdout.contains("version 1 -> 2"), "{}", run.stdout);
    mock.shutdown().await;
}

async fn refresh_refuses_bad_input_clearly(db: &Db) {
    let mock = HikeMock::start(MockConfig::default()).await.unwrap();
    let store = db.store(None).await;
    let signed_in = sign_in(&mock).await;
    let key = TokenKey::new(&ProviderId::from_static("hike"), "acct");
    store
        .compare_and_swap(&key, None, &signed_in.to_record())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = hike_file(&dir, &mock).display().to_string();
    let secret = mock.config().client_secret.clone();
    let mut secrets = secrets_of(&signed_in);
    secrets.push(secret.clone());
    let refresh =
        |key: &str, file: &str| with_db(db, &["tokens", "refresh", key, "--provider-config", file]);

    // The secret's variable is not set.
    let run = cli(&refresh(key.as_str(), &file), &[], None).await;
    run.expect_code(2).assert_no_secret(&secrets);
    assert!(
        run.stderr.contains(&format!(
            "the environment variable `{SECRET_VAR}` (named by `client_secret_env`) is not set"
        )),
        "{}",
        run.stderr
    );
    // Nothing stored under the key.
    let run = cli(
        &refresh("hike|nobody|", &file),
        &[(SECRET_VAR, &secret)],
        None,
    )
    .await;
    run.expect_code(3).assert_no_secret(&secrets);
    assert!(
        run.stderr.contains("no token is stored for hike|nobody|"),
        "{}",
        run.stderr
    );
    // A key of another provider.
    let run = cli(
        &refresh("partner|acct|", &file),
        &[(SECRET_VAR, &secret)],
        None,
    )
    .await;
    run.expect_code(2);
    assert!(
        run.stderr.contains("belongs to provider `partner`"),
        "{}",
        run.stderr
    );
    // Not a key.
    let run = cli(&refresh("acct", &file), &[(SECRET_VAR, &secret)], None).await;
    run.expect_code(2);
    assert!(run.stderr.contains("not a token key"), "{}", run.stderr);
    // A missing file, a bad base URL, a secret written into the file.
    let run = cli(
        &refresh(key.as_str(), "/nonexistent/p.toml"),
        &[(SECRET_VAR, &secret)],
        None,
    )
    .await;
    run.expect_code(2);
    assert!(
        run.stderr.contains("/nonexistent/p.toml: cannot be read"),
        "{}",
        run.stderr
    );
    let bad_url = provider_file(
        &dir,
        &format!("kind = 'hike'\nbase_url = 'ftp://[::1'\nclient_id = 'a'\nclient_secret_env = '{SECRET_VAR}'\n"),
    );
    let run = cli(
        &refresh(key.as_str(), &bad_url.display().to_string()),
        &[(SECRET_VAR, &secret)],
        None,
    )
    .await;
    run.expect_code(2).assert_no_secret(&secrets);
    assert!(
        run.stderr
            .contains("building the hike provider: configuration error"),
        "{}",
        run.stderr
    );
    let inline = provider_file(
        &dir,
        &format!("kind = 'hike'\nclient_id = 'a'\nclient_secret = '{secret}'\n"),
    );
    let run = cli(
        &refresh(key.as_str(), &inline.display().to_string()),
        &[],
        None,
    )
    .await;
    run.expect_code(2).assert_no_secret(&secrets);
    assert!(
        run.stderr.contains("never read from the file"),
        "{}",
        run.stderr
    );
    // The mock saw no refresh; the token is untouched.
    assert!(mock.rotations().is_empty());
    assert_eq!(store.load(&key).await.unwrap().unwrap().version, 1);
    mock.shutdown().await;
}

on_both_stores!(
    a_rotating_refresh_lands_in_the_store,
    client_credentials_are_reacquired,
    refresh_refuses_bad_input_clearly,
);
