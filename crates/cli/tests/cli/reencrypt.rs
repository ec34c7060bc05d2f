//! `tokens reencrypt`: rows in clear text and under the old key end up
//! under the new one (the column text says so), the report counts them,
//! and the progress bar never reaches `--json` output.

use std::process::Command;

use oauth2_adapters::{ProviderId, Token, TokenKey};

use crate::harness::{
    cli, on_both_stores, plant, secrets_of, token, with_db, Db, NEW_KEYS, OLD_KEYS,
};

/// Three rows: one in clear text, one under `old`, one already under `new`.
async fn plant_mixed(db: &Db) -> (Vec<(TokenKey, Token)>, Vec<String>) {
    let hike = ProviderId::from_static("hike");
    let rows: Vec<(TokenKey, Token)> = ["clear", "old", "new"]
        .iter()
        .map(|account| {
            let refresh = format!("refresh-{account}-{:016x}", fastrand::u64(..));
            (
                TokenKey::new(&hike, account),
                token("hike", 3000, Some(&refresh)),
            )
        })
        .collect();
    plant(&*db.store(None).await, &rows[0].0, &rows[0].1).await;
    plant(&*db.store(Some(OLD_KEYS)).await, &rows[1].0, &rows[1].1).await;
    plant(&*db.store(Some(NEW_KEYS)).await, &rows[2].0, &rows[2].1).await;
    let secrets = rows.iter().flat_map(|(_, t)| secrets_of(t)).collect();
    (rows, secrets)
}

async fn rows_are_rewritten_under_the_new_key(db: &Db) {
    let (rows, secrets) = plant_mixed(db).await;
    let before: Vec<String> = columns(db, &rows).await;
    assert!(
        before[0].contains(rows[0].1.expose_access_token()),
        "clear text before"
    );
    assert!(before[1].contains("\"access_token\":\"enc:v1:old:"));
    assert!(before[2].contains("\"access_token\":\"enc:v1:new:"));

    let run = cli(
        &with_db(db, &["--json", "tokens", "reencrypt"]),
        &[("TOKEN_KEYS", NEW_KEYS)],
        None,
    )
    .await;
    run.expect_code(0).assert_no_secret(&secrets);
    let report = run.json();
    assert_eq!(report["rewritten"], 2);
    assert_eq!(report["rows"], 3);
    assert_eq!(report["current_key_id"], "new");
    let sqlite = matches!(db, Db::Sqlite { .. });
    assert_eq!(report["purged"], sqlite);

    let after = columns(db, &rows).await;
    for (column, (_, token)) in after.iter().zip(&rows) {
        assert!(
            column.contains("\"access_token\":\"enc:v1:new:"),
            "{column}"
        );
        assert!(
            column.contains("\"refresh_token\":\"enc:v1:new:"),
            "{column}"
        );
        for secret in secrets_of(token) {
            assert!(!column.contains(&secret));
        }
    }
    assert_eq!(
        after[2], before[2],
        "a row already under the new key is left alone"
    );
    // The tokens read back as they were, versions unchanged.
    let store = db.store(Some(NEW_KEYS)).await;
    for (key, token) in &rows {
        let stored = store.load(key).await.unwrap().unwrap();
        assert_eq!(stored.record.access_token, token.expose_access_token());
        assert_eq!(stored.version, 1);
    }

    // Nothing left; in words, with the purge named.
    let mut args = with_db(db, &["tokens", "reencrypt"]);
    if !sqlite {
        args.push("--purge".into());
    }
    let run = cli(&args, &[("TOKEN_KEYS", NEW_KEYS)], None).await;
    run.expect_code(0).assert_no_secret(&secrets);
    assert!(
        run.stdout
            .starts_with("nothing to re-encrypt: every row (3) is under key `new`\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("purge_superseded_rows"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("run again with --purge"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.is_empty(),
        "no progress bar without a terminal: {:?}",
        run.stderr
    );
}

async fn postgres_mentions_the_purge_until_asked(db: &Db) {
    if matches!(db, Db::Sqlite { .. }) {
        return;
    }
    let (_, secrets) = plant_mixed(db).await;
    let run = cli(
        &with_db(db, &["tokens", "reencrypt"]),
        &[("TOKEN_KEYS", NEW_KEYS)],
        None,
    )
    .await;
    run.expect_code(0).assert_no_secret(&secrets);
    assert!(
        run.stdout
            .starts_with("re-encrypted 2 of 3 rows under key `new`\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("run again with --purge"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("What stays on disk"), "{}", run.stdout);
}

async fn an_unreadable_row_stops_it_with_a_clear_error(db: &Db) {
    let (rows, secrets) = plant_mixed(db).await;
    // A ring without `old`: the row under it cannot be rewritten.
    let only_new = "new:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    let run = cli(
        &with_db(db, &["tokens", "reencrypt"]),
        &[("TOKEN_KEYS", only_new)],
        None,
    )
    .await;
    run.expect_code(1).assert_no_secret(&secrets);
    assert!(
        run.stderr
            .contains("error: re-encrypting: token store: stored record for hike|old|"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("key id `old`"), "{}", run.stderr);
    // The row is as it was.
    assert!(db.column(&rows[1].0).await.contains("enc:v1:old:"));
    // No keys at all: refused before connecting.
    let run = cli(&with_db(db, &["tokens", "reencrypt"]), &[], None).await;
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("tokens reencrypt needs encryption keys"),
        "{}",
        run.stderr
    );
}

/// Under a terminal (`script` gives the binary one), the bar is drawn
/// on stderr without `--json`, and not at all with it: the terminal then
/// shows exactly one JSON document.
async fn the_progress_bar_shows_only_on_a_terminal_and_never_with_json(db: &Db) {
    if Command::new("script").arg("--version").output().is_err() {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("`script` (util-linux) is required under CI=true");
        }
        eprintln!("skipped: no `script` to run the binary on a terminal");
        return;
    }
    let (_, secrets) = plant_mixed(db).await;
    let args = db.args();
    let json = tokio::task::spawn_blocking(move || in_terminal(args, true))
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(json.trim())
        .unwrap_or_else(|err| panic!("the terminal shows only JSON ({err}): {json:?}"));
    assert_eq!(report["rewritten"], 2);

    // Three more rows to rewrite, then without --json: the bar appears.
    let (_, more) = plant_mixed_again(db).await;
    let args = db.args();
    let text = tokio::task::spawn_blocking(move || in_terminal(args, false))
        .await
        .unwrap();
    if std::env::var_os("CLI_TEST_SHOW").is_some() {
        eprintln!("{json:?}\n{text:?}");
    }
    assert!(
        text.contains("rows under key `new`"),
        "the bar is drawn: {text:?}"
    );
    assert!(
        text.contains("re-encrypted 2 of 6 rows under key `new`"),
        "{text:?}"
    );
    for secret in secrets.iter().chain(&more) {
        assert!(!json.contains(secret.as_str()) && !text.contains(secret.as_str()));
    }
}

/// Runs `reencrypt` on a pseudo-terminal; what the terminal showed.
fn in_terminal(db_args: Vec<String>, json: bool) -> String {
    let mut argv = vec![env!("CARGO_BIN_EXE_oauth2-adapters-cli").to_owned()];
    argv.extend(db_args);
    if json {
        argv.push("--json".into());
    }
    argv.extend(["tokens".into(), "reencrypt".into()]);
    let line = argv
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("TOKEN_KEYS", NEW_KEYS)
        .env("TERM", "xterm")
        .env_remove("DATABASE_URL")
        .env_remove("OAUTH2_ADAPTERS_DATABASE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n")
}

/// Three more mixed rows (other accounts).
async fn plant_mixed_again(db: &Db) -> (Vec<(TokenKey, Token)>, Vec<String>) {
    let hike = ProviderId::from_static("hike");
    let rows: Vec<(TokenKey, Token)> = ["clear-2", "old-2", "new-2"]
        .iter()
        .map(|account| (TokenKey::new(&hike, account), token("hike", 3000, None)))
        .collect();
    plant(&*db.store(None).await, &rows[0].0, &rows[0].1).await;
    plant(&*db.store(Some(OLD_KEYS)).await, &rows[1].0, &rows[1].1).await;
    plant(&*db.store(Some(NEW_KEYS)).await, &rows[2].0, &rows[2].1).await;
    let secrets = rows.iter().flat_map(|(_, t)| secrets_of(t)).collect();
    (rows, secrets)
}

/// The `record` column of each row.
async fn columns(db: &Db, rows: &[(TokenKey, Token)]) -> Vec<String> {
    let mut columns = Vec::new();
    for (key, _) in rows {
        columns.push(db.column(key).await);
    }
    columns
}

on_both_stores!(
    rows_are_rewritten_under_the_new_key,
    postgres_mentions_the_purge_until_asked,
    an_unreadable_row_stops_it_with_a_clear_error,
    the_progress_bar_shows_only_on_a_terminal_and_never_with_json,
);
