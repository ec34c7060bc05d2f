//! `tokens list`: the status of every kind of row, the filters, JSON, and
//! no secret anywhere in the output.

use std::time::{Duration, SystemTime};

use oauth2_adapters::{ProviderId, TokenKey};
use serde_json::Value;

use crate::harness::{
    cli, on_both_stores, plant, secrets_of, token, with_db, Db, OLD_KEYS, ONLY_NEW_KEYS,
};

fn key(provider: &str, account: &str) -> TokenKey {
    TokenKey::with_scopes(
        &ProviderId::new(provider.to_owned()),
        account,
        ["read", "write"],
    )
}

fn refresh_token() -> String {
    format!("refresh-{:016x}", fastrand::u64(..))
}

/// The `status` (and `reason`) of each key in a `--json` listing.
fn statuses(listing: &Value) -> Vec<(String, String, Option<String>)> {
    listing
        .as_array()
        .expect("an array")
        .iter()
        .map(|row| {
            (
                row["key"].as_str().unwrap().to_owned(),
                row["status"].as_str().unwrap().to_owned(),
                row["reason"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

async fn every_status_is_recognized_and_no_secret_is_shown(db: &Db) {
    let store = db.store(Some(ONLY_NEW_KEYS)).await;
    let mut secrets = Vec::new();
    let mut rows = Vec::new();
    let mut add = |key: TokenKey, token: oauth2_adapters::Token, status: &str| {
        secrets.extend(secrets_of(&token));
        rows.push((key, token, status.to_owned()));
    };
    add(
        key("hike", "fresh"),
        token("hike", 3000, Some(&refresh_token())),
        "fresh",
    );
    add(
        key("hike", "due"),
        token("hike", 30, Some(&refresh_token())),
        "due",
    );
    add(
        key("hike", "expired-refreshable"),
        token("hike", -600, Some(&refresh_token())),
        "due",
    );
    add(
        key("hypersku", "expired-no-refresh"),
        token("hypersku", -600, None),
        "reauth",
    );
    let mut spent = token("hike", 3000, Some(&refresh_token()));
    spent.refresh_expires_at = Some(SystemTime::now() - Duration::from_secs(600));
    add(key("hike", "refresh-expired"), spent, "reauth");
    add(
        key("partner", "client-credentials"),
        token("partner", -60, None),
        "due",
    );
    let mut long = token("hike", 3000, Some(&refresh_token()));
    long.refresh_expires_at = Some(SystemTime::now() + Duration::from_secs(30 * 86_400));
    add(key("hike", "refresh-known"), long, "fresh");
    for (key, token, _) in &rows {
        plant(&*store, key, token).await;
    }
    // Under a key the listing will not have.
    let old = db.store(Some(OLD_KEYS)).await;
    let lost = token("hike", 3000, Some(&refresh_token()));
    secrets.extend(secrets_of(&lost));
    let lost_key = key("hike", "under-old-key");
    plant(&*old, &lost_key, &lost).await;
    db.plant_garbage_key("not a key").await;

    let env = [("TOKEN_KEYS", ONLY_NEW_KEYS)];
    let run = cli(&with_db(db, &["--json", "tokens", "list"]), &env, None).await;
    run.expect_code(0).assert_no_secret(&secrets);
    let listing = run.json();
    let found = statuses(&listing);
    assert_eq!(found.len(), rows.len() + 2, "{found:?}");
    for (key, _, status) in &rows {
        let row = found
            .iter()
            .find(|(k, ..)| k == key.as_str())
            .expect("listed");
        assert_eq!(&row.1, status, "{}", key);
        assert_eq!(row.2, None);
    }
    let lost_row = found.iter().find(|(k, ..)| k == lost_key.as_str()).unwrap();
    assert_eq!(lost_row.1, "unreadable");
    let reason = lost_row.2.as_deref().unwrap();
    assert!(
        reason.contains("key id `old`") && reason.contains("not in the store's key ring"),
        "{reason}"
    );
    let garbage = found.iter().find(|(k, ..)| k == "not a key").unwrap();
    assert_eq!(garbage.1, "unreadable");
    assert!(garbage
        .2
        .as_deref()
        .unwrap()
        .contains("provider|account|scopes"));
    // The fields of one row.
    let fresh = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "hike|refresh-known|read write")
        .unwrap();
    assert_eq!(fresh["provider"], "hike");
    assert_eq!(fresh["account"], "refresh-known");
    assert_eq!(fresh["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(fresh["has_refresh_token"], true);
    assert_eq!(fresh["version"], 1);
    let left = fresh["expires_in_secs"].as_i64().unwrap();
    assert!((2990..=3000).contains(&left), "{left}");
    let refresh_left = fresh["refresh_expires_in_secs"].as_i64().unwrap();
    assert!(refresh_left > 29 * 86_400, "{refresh_left}");
    assert!(fresh["expires_at"].as_str().unwrap().ends_with('Z'));
    // The unreadable row still shows its (clear-text) expiry.
    let lost_json = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == lost_key.as_str())
        .unwrap();
    assert!(lost_json["expires_in_secs"].as_i64().is_some());
    assert_eq!(lost_json["has_refresh_token"], Value::Null);

    // The table: one line per row, the status first, a summary at the end.
    let run = cli(&with_db(db, &["tokens", "list"]), &env, None).await;
    run.expect_code(0).assert_no_secret(&secrets);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("STATUS") && lines[0].contains("REFRESH TOKEN"),
        "{}",
        run.stdout
    );
    let line = |key: &TokenKey| {
        *lines
            .iter()
            .find(|l| l.contains(key.as_str()))
            .unwrap_or_else(|| panic!("{key} listed:\n{}", run.stdout))
    };
    for (key, _, status) in &rows {
        assert!(
            line(key).starts_with(&format!("{status} ")),
            "{}",
            line(key)
        );
    }
    assert!(
        line(&key("hike", "fresh")).contains("(in 50 min)"),
        "{}",
        run.stdout
    );
    assert!(line(&key("hike", "expired-refreshable")).contains("(expired 10 min ago)"));
    assert!(line(&key("hike", "refresh-expired")).contains("(expired 10 min ago)"));
    assert!(line(&key("hypersku", "expired-no-refresh")).contains("none"));
    assert!(
        run.stdout.contains(&format!("unreadable {}: ", lost_key)),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("9 tokens: 2 fresh, 3 due, 2 need re-authorization, 2 unreadable"),
        "{}",
        run.stdout
    );

    // Filters.
    let run = cli(
        &with_db(db, &["--json", "tokens", "list", "--status", "reauth"]),
        &env,
        None,
    )
    .await;
    let mut reauth: Vec<String> = statuses(&run.expect_code(0).json())
        .into_iter()
        .map(|r| r.0)
        .collect();
    reauth.sort();
    assert_eq!(
        reauth,
        [
            "hike|refresh-expired|read write",
            "hypersku|expired-no-refresh|read write"
        ]
    );
    let run = cli(
        &with_db(db, &["--json", "tokens", "list", "--provider", "partner"]),
        &env,
        None,
    )
    .await;
    let partner = statuses(&run.expect_code(0).json());
    assert_eq!(partner.len(), 1);
    assert_eq!(partner[0].1, "due");
    let run = cli(
        &with_db(db, &["tokens", "list", "--provider", "nobody"]),
        &env,
        None,
    )
    .await;
    assert_eq!(run.expect_code(0).stdout, "no stored token matches\n");

    // Without keys, every encrypted row is unreadable, and says why.
    let run = cli(&with_db(db, &["--json", "tokens", "list"]), &[], None).await;
    run.expect_code(0).assert_no_secret(&secrets);
    for (key, status, reason) in statuses(&run.json()) {
        assert_eq!(status, "unreadable", "{key}");
        let reason = reason.unwrap();
        assert!(
            key == "not a key" || reason.contains("(no --keys were given)"),
            "{reason}"
        );
    }
}

async fn an_empty_store_says_so(db: &Db) {
    let run = cli(&with_db(db, &["tokens", "list"]), &[], None).await;
    assert_eq!(run.expect_code(0).stdout, "no tokens are stored\n");
    let run = cli(&with_db(db, &["tokens", "list", "--json"]), &[], None).await;
    assert_eq!(run.expect_code(0).json(), serde_json::json!([]));
}

async fn control_characters_in_keys_are_escaped(db: &Db) {
    let store = db.store(None).await;
    let key = key("hike", "evil\u{1b}[2Jaccount");
    let token = token("hike", 3000, None);
    plant(&*store, &key, &token).await;
    let run = cli(&with_db(db, &["tokens", "list"]), &[], None).await;
    run.expect_code(0).assert_no_secret(&secrets_of(&token));
    assert!(!run.stdout.contains('\u{1b}'), "{:?}", run.stdout);
    assert!(
        run.stdout.contains("evil\\u{1b}[2Jaccount"),
        "{}",
        run.stdout
    );
}

on_both_stores!(
    every_status_is_recognized_and_no_secret_is_shown,
    an_empty_store_says_so,
    control_characters_in_keys_are_escaped,
);
