//! `tokens delete`: asks, deletes, and says so when there is nothing.

use oauth2_adapters::{ProviderId, TokenKey};

use crate::harness::{
    cli, on_both_stores, plant, secrets_of, token, with_db, Db, OLD_KEYS, ONLY_NEW_KEYS,
};

async fn delete_asks_removes_and_reports_missing_keys(db: &Db) {
    let store = db.store(None).await;
    let key = TokenKey::with_scopes(&ProviderId::from_static("hike"), "store-7", ["all"]);
    let other = TokenKey::new(&ProviderId::from_static("hike"), "store-8");
    let token = token("hike", 3000, Some("refresh-delete-test-0001"));
    plant(&*store, &key, &token).await;
    plant(&*store, &other, &token).await;
    let secrets = secrets_of(&token);
    let args = with_db(db, &["tokens", "delete", key.as_str()]);

    // "n", and end of input, keep it.
    for answer in ["n\n", ""] {
        let run = cli(&args, &[], Some(answer)).await;
        run.expect_code(4).assert_no_secret(&secrets);
        assert!(
            run.stderr
                .contains("Delete the token for hike|store-7|all? "),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("not deleted"), "{}", run.stderr);
        assert!(store.load(&key).await.unwrap().is_some());
    }
    // "y" deletes it, and only it.
    let run = cli(&args, &[], Some("y\n")).await;
    run.expect_code(0).assert_no_secret(&secrets);
    assert_eq!(run.stdout, "deleted hike|store-7|all\n");
    assert!(store.load(&key).await.unwrap().is_none());
    assert!(store.load(&other).await.unwrap().is_some());
    // Gone: a clear error, exit 3.
    let run = cli(&args, &[], Some("y\n")).await;
    run.expect_code(3);
    assert!(
        run.stderr
            .contains("error: no token is stored for hike|store-7|all"),
        "{}",
        run.stderr
    );
    // --yes, by parts, JSON.
    let run = cli(
        &with_db(
            db,
            &[
                "--json",
                "tokens",
                "delete",
                "--yes",
                "--provider",
                "hike",
                "--account",
                "store-8",
            ],
        ),
        &[],
        None,
    )
    .await;
    run.expect_code(0);
    assert_eq!(
        run.json(),
        serde_json::json!({ "deleted": "hike|store-8|" })
    );
    assert!(store.load(&other).await.unwrap().is_none());
}

async fn a_row_no_key_opens_can_still_be_deleted(db: &Db) {
    let old = db.store(Some(OLD_KEYS)).await;
    let key = TokenKey::new(&ProviderId::from_static("hike"), "lost");
    let token = token("hike", 3000, None);
    plant(&*old, &key, &token).await;
    let run = cli(
        &with_db(db, &["tokens", "delete", "--yes", key.as_str()]),
        &[("TOKEN_KEYS", ONLY_NEW_KEYS)],
        None,
    )
    .await;
    run.expect_code(0).assert_no_secret(&secrets_of(&token));
    assert!(old.load(&key).await.unwrap().is_none());
}

on_both_stores!(
    delete_asks_removes_and_reports_missing_keys,
    a_row_no_key_opens_can_still_be_deleted,
);
