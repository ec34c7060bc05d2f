//! Bad input: a clear message, a non-zero exit code, no panic, and no
//! secret echoed back.

use crate::harness::{cli, Db};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[track_caller]
fn assert_absent(text: &str, secret: &str) {
    assert!(!text.contains(secret), "{secret} echoed: {text}");
}

#[tokio::test]
async fn no_database_or_an_unknown_one() {
    let run = cli(&args(&["tokens", "list"]), &[], None).await;
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("error: no database: pass --sqlite PATH or --postgres URL"),
        "{}",
        run.stderr
    );

    let env = [("DATABASE_URL", "mysql://app:hunter2-password@db/app")];
    let run = cli(&args(&["tokens", "list"]), &env, None).await;
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("DATABASE_URL is not a database URL this tool knows"),
        "{}",
        run.stderr
    );
    assert_absent(&run.stderr, "hunter2");

    let missing = tempfile::tempdir().unwrap();
    let path = missing.path().join("typo.db");
    let run = cli(
        &args(&["--sqlite", path.to_str().unwrap(), "tokens", "list"]),
        &[],
        None,
    )
    .await;
    run.expect_code(2);
    assert!(
        run.stderr.contains("no SQLite database at"),
        "{}",
        run.stderr
    );
    assert!(!path.exists(), "the tool never creates a database");

    let garbage = missing.path().join("garbage.db");
    std::fs::write(
        &garbage,
        "this is not a database, and it is long enough to be read",
    )
    .unwrap();
    let run = cli(
        &args(&["--sqlite", garbage.to_str().unwrap(), "tokens", "list"]),
        &[],
        None,
    )
    .await;
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("garbage.db: token store: opening the SQLite database"),
        "{}",
        run.stderr
    );

    let run = cli(
        &args(&[
            "--sqlite",
            "a.db",
            "--postgres",
            "postgres://x",
            "tokens",
            "list",
        ]),
        &[],
        None,
    )
    .await;
    run.expect_code(2);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
}

#[tokio::test]
async fn the_environment_names_the_database() {
    let db = Db::sqlite().await;
    let Db::Sqlite { path, .. } = &db else {
        unreachable!()
    };
    let url = format!("sqlite:{}", path.display());
    // OAUTH2_ADAPTERS_DATABASE wins over DATABASE_URL.
    let env = [
        ("OAUTH2_ADAPTERS_DATABASE", url.as_str()),
        ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
    ];
    let run = cli(&args(&["tokens", "list"]), &env, None).await;
    assert_eq!(run.expect_code(0).stdout, "no tokens are stored\n");
}

#[tokio::test]
async fn bad_postgres_urls_quote_no_password() {
    for (url, code, expected) in [
        (
            "postgres://app:hunter2-password@127.0.0.1:notaport/db",
            2,
            "error: configuration error: the PostgreSQL URL is unusable: ",
        ),
        (
            "postgres://app:hunter2-password@127.0.0.1/db?sslmode=sideways",
            2,
            "the PostgreSQL URL is unusable: ",
        ),
        (
            "postgres://app:hunter2-password@127.0.0.1:1/db",
            1,
            "error: token store: connecting to PostgreSQL\n  caused by: error communicating with database",
        ),
    ] {
        let started = std::time::Instant::now();
        let run = cli(&args(&["--postgres", url, "tokens", "list"]), &[], None).await;
        run.expect_code(code);
        assert!(run.stderr.contains(expected), "{url}: {}", run.stderr);
        let elapsed = started.elapsed();
        assert!(elapsed.as_secs() < 10, "reported at once, not after {elapsed:?}");
        assert_absent(&run.stderr, "hunter2");
        assert_absent(&run.stdout, "hunter2");
    }
}

#[tokio::test]
async fn bad_keys_are_refused_without_being_quoted() {
    let db = Db::sqlite().await;
    let sqlite = db.args();
    for (keys, expected) in [
        ("mysecretkeymaterial", "is not `key_id:key`"),
        ("k1:mysecretkeymaterial", "is neither 64 hex digits nor base64"),
        ("k1:bXlzZWNyZXRrZXltYXRlcmlhbA==", "is 19 bytes long"),
        (
            "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
            "two encryption keys have the id `k1`",
        ),
        ("mysecretkeymaterial!:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", "invalid encryption key id"),
    ] {
        for by_env in [false, true] {
            let mut argv = sqlite.clone();
            argv.extend(args(&["tokens", "list"]));
            let env = if by_env {
                vec![("TOKEN_KEYS", keys)]
            } else {
                argv.extend(args(&["--keys", keys]));
                vec![]
            };
            let run = cli(&argv, &env, None).await;
            run.expect_code(2);
            assert!(run.stderr.contains("the encryption keys (--keys / TOKEN_KEYS) are unusable"), "{}", run.stderr);
            assert!(run.stderr.contains(expected), "{keys}: {}", run.stderr);
            for text in [&run.stdout, &run.stderr] {
                assert_absent(text, "mysecretkeymaterial");
                assert_absent(text, "bXlzZWNyZXRrZXltYXRlcmlhbA");
                assert_absent(text, "AQEBAQEBAQEBAQEB");
            }
        }
    }
    // --help does not show TOKEN_KEYS' value.
    let run = cli(
        &args(&["--help"]),
        &[("TOKEN_KEYS", "k1:mysecretkeymaterial")],
        None,
    )
    .await;
    run.expect_code(0);
    assert_absent(&run.stdout, "mysecretkeymaterial");
}

#[tokio::test]
async fn bad_keys_and_arguments() {
    let db = Db::sqlite().await;
    for (rest, expected) in [
        (
            &["tokens", "delete", "--yes", "no separators"][..],
            "not a token key",
        ),
        (
            &["tokens", "delete", "--yes", "|account|"][..],
            "not a token key",
        ),
        (&["tokens", "delete", "--provider", "hike"][..], "required"),
        (
            &["tokens", "list", "--status", "stale"][..],
            "invalid value 'stale'",
        ),
        (&["tokens", "frobnicate"][..], "unrecognized subcommand"),
        (&["tokens", "refresh", "hike|a|"][..], "--provider-config"),
    ] {
        let mut argv = db.args();
        argv.extend(args(rest));
        let run = cli(&argv, &[], None).await;
        run.expect_code(2);
        assert!(run.stderr.contains(expected), "{rest:?}: {}", run.stderr);
    }
}
