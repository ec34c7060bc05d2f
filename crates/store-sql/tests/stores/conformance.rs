//! The `TokenStore` contract, checked once for every store.
//!
//! Each check takes the store as `&dyn TokenStore` and uses keys of its own,
//! so checks may share a database and run in parallel.
//! `conformance_suite!(fixture)` turns them into tests, and
//! `conformance_suite!(fixture, leases)` the lease checks too; `fixture` is
//! a future of `Option<Fixture>` (`None`: the store is unavailable, skip).

use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oauth2_adapters_core::store::TokenRecord;
use oauth2_adapters_core::store::{CasOutcome, StoredToken, TokenKey, TokenStore};
use oauth2_adapters_core::{ProviderId, Token};
use secrecy::SecretString;

mod lease;

pub use lease::*;

/// A store under test, and whatever must live as long as it (a temp dir).
pub struct Fixture {
    pub store: Box<dyn TokenStore>,
    pub _guard: Option<Box<dyn std::any::Any + Send>>,
}

impl Fixture {
    pub fn new(store: impl TokenStore) -> Self {
        Self {
            store: Box::new(store),
            _guard: None,
        }
    }
}

/// Generates one test per check.
macro_rules! conformance_suite {
    ($fixture:expr) => {
        conformance_suite!(@tests $fixture;
            load_of_a_missing_key_is_none,
            cas_inserts_updates_and_reports_conflicts,
            versions_increase_by_one_per_write,
            delete_removes_the_token,
            keys_lists_the_stored_keys,
            load_page_reads_every_token_once,
            load_many_reads_the_stored_keys_asked_for,
            record_round_trip_keeps_every_field
        );
    };
    ($fixture:expr, leases) => {
        conformance_suite!($fixture);
        conformance_suite!(@tests $fixture;
            lease_is_exclusive_extendable_and_releasable,
            lease_is_taken_over_after_expiry,
            lease_is_per_key,
            delete_removes_the_lease,
            lease_returns_the_current_row,
            a_lapsed_lease_is_in_doubt_while_its_version_is_stored,
            a_lapsed_lease_is_taken_over_after_a_write,
            a_lapsed_lease_is_taken_over_after_the_grace,
            the_lapsed_holder_takes_its_lease_again,
            extending_a_lease_records_the_current_version,
            huge_durations_are_capped,
            cas_releasing_writes_and_frees_the_lease,
            cas_releasing_keeps_the_lease_on_a_conflict,
            a_lease_taken_after_a_releasing_write_sees_it
        );
    };
    (@tests $fixture:expr; $($check:ident),+) => {
        $(
            #[tokio::test]
            async fn $check() {
                if let Some(fixture) = $fixture.await {
                    crate::conformance::$check(&*fixture.store).await;
                }
            }
        )+
    };
}

/// A string no other test, process or run uses.
pub fn unique(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{label}-{}-{nanos}-{n}", process::id())
}

/// A key of its own, with scopes and characters that need escaping.
pub fn key(label: &str) -> TokenKey {
    TokenKey::with_scopes(
        &ProviderId::from_static("conformance"),
        &format!("{} a|b%c", unique(label)),
        ["write", "read", "orders:read"],
    )
}

/// A minimal record whose access token is `access`.
pub fn record(access: &str) -> TokenRecord {
    Token::new(
        ProviderId::from_static("conformance"),
        SecretString::from(access.to_owned()),
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    )
    .to_record()
}

/// A record using every field.
pub fn full_record() -> TokenRecord {
    let issued = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let mut token = Token::new(
        ProviderId::new("conformance"),
        SecretString::from("access \"quoted\" \\ é 🔑 \u{0} end"),
        issued,
    );
    token.refresh_token = Some(SecretString::from("refresh-token-value"));
    token.token_type = "MAC".into();
    token.expires_at = Some(issued + Duration::from_millis(3_600_456));
    token.refresh_expires_at = Some(issued + Duration::from_secs(30 * 86_400));
    token.scopes = vec!["read".into(), "write".into(), "orders:read".into()];
    token.subject = Some("store-42".into());
    let extra = serde_json::json!({
        "expires": 1_700_003_600_u64,
        "ratio": 0.1,
        "negative": -7,
        "big": u64::MAX,
        "flag": true,
        "nothing": null,
        "nested": {"list": [1, "two", {"three": 3.5}], "empty": {}},
        "unicode": "日本語 \u{1F600}",
    });
    token.extra = extra.as_object().unwrap().clone();
    token.to_record()
}

/// `load_page()` with small pages, from the first key: every stored token
/// once, no page over its limit, each token as stored.
pub async fn load_page_reads_every_token_once(store: &dyn TokenStore) {
    let base = unique("page");
    let keys: Vec<TokenKey> = (0..7)
        .map(|i| {
            TokenKey::new(
                &ProviderId::from_static("conformance"),
                &format!("{base}/{i}"),
            )
        })
        .collect();
    for (i, key) in keys.iter().enumerate() {
        store
            .compare_and_swap(key, None, &record(&format!("access-{i}")))
            .await
            .unwrap();
    }
    let mut seen = vec![0; keys.len()];
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .load_page(after.as_deref(), 3)
            .await
            .unwrap()
            .expect("this store pages");
        pages += 1;
        assert!(page.tokens.len() <= 3, "{} tokens", page.tokens.len());
        if page.tokens.len() < 3 {
            assert!(page.next.is_none(), "a short page is the last");
        }
        for (key, stored) in page.tokens {
            if let Some(i) = keys.iter().position(|k| *k == key) {
                seen[i] += 1;
                let stored = stored.unwrap();
                assert_eq!(access(&stored), format!("access-{i}"));
                assert_eq!(stored.version, 1);
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 100_000, "the pages never end");
    }
    assert_eq!(seen, vec![1; keys.len()], "every token once");
    // Limit zero is read as one (another test's row may be first).
    let page = store.load_page(None, 0).await.unwrap().unwrap();
    assert!(page.tokens.len() <= 1 && page.next.is_some());
    for key in &keys {
        store.delete(key).await.unwrap();
    }
}

/// `load_many()`: the stored tokens of the keys asked for, each once at its
/// version; keys with nothing stored left out; an empty batch is empty;
/// more keys than one statement binds (SQLite) still read in one call.
pub async fn load_many_reads_the_stored_keys_asked_for(store: &dyn TokenStore) {
    let base = unique("many");
    let keys: Vec<TokenKey> = (0..1_200)
        .map(|i| {
            TokenKey::new(
                &ProviderId::from_static("conformance"),
                &format!("{base}/{i}"),
            )
        })
        .collect();
    let stored: Vec<usize> = vec![0, 3, 4, 699, 1_199];
    for &i in &stored {
        let key = &keys[i];
        store
            .compare_and_swap(key, None, &record(&format!("access-{i}")))
            .await
            .unwrap();
        if i == 4 {
            store
                .compare_and_swap(key, Some(1), &record("access-4b"))
                .await
                .unwrap();
        }
    }
    let found = store
        .load_many(&keys)
        .await
        .unwrap()
        .expect("this store reads batches");
    let mut seen: Vec<(usize, String, u64)> = found
        .into_iter()
        .map(|(key, row)| {
            let i = keys
                .iter()
                .position(|k| *k == key)
                .expect("a key asked for");
            let row = row.unwrap();
            (i, access(&row).to_owned(), row.version)
        })
        .collect();
    seen.sort();
    let expected: Vec<(usize, String, u64)> = stored
        .iter()
        .map(|&i| match i {
            4 => (4, "access-4b".to_owned(), 2),
            i => (i, format!("access-{i}"), 1),
        })
        .collect();
    assert_eq!(seen, expected);
    assert!(store.load_many(&[]).await.unwrap().unwrap().is_empty());
    for &i in &stored {
        store.delete(&keys[i]).await.unwrap();
    }
}

fn version(outcome: CasOutcome) -> u64 {
    match outcome {
        CasOutcome::Written { version } => version,
        CasOutcome::Conflict { current } => panic!(
            "expected a write, got a conflict with version {:?}",
            current.map(|c| c.version)
        ),
    }
}

fn conflict(outcome: CasOutcome) -> Option<StoredToken> {
    match outcome {
        CasOutcome::Conflict { current } => current.map(|c| *c),
        CasOutcome::Written { version } => panic!("expected a conflict, wrote version {version}"),
    }
}

fn access(stored: &StoredToken) -> &str {
    &stored.record.access_token
}

pub async fn load_of_a_missing_key_is_none(store: &dyn TokenStore) {
    assert!(store.load(&key("missing")).await.unwrap().is_none());
}

pub async fn cas_inserts_updates_and_reports_conflicts(store: &dyn TokenStore) {
    let key = key("cas");
    assert!(conflict(
        store
            .compare_and_swap(&key, Some(1), &record("x"))
            .await
            .unwrap()
    )
    .is_none());
    assert!(
        store.load(&key).await.unwrap().is_none(),
        "a conflict wrote"
    );

    assert_eq!(
        version(
            store
                .compare_and_swap(&key, None, &record("a"))
                .await
                .unwrap()
        ),
        1
    );
    for expected in [None, Some(0), Some(2), Some(u64::MAX)] {
        let current = conflict(
            store
                .compare_and_swap(&key, expected, &record("x"))
                .await
                .unwrap(),
        )
        .expect("the conflict reports what is stored");
        assert_eq!(
            (current.version, access(&current)),
            (1, "a"),
            "{expected:?}"
        );
    }

    assert_eq!(
        version(
            store
                .compare_and_swap(&key, Some(1), &record("b"))
                .await
                .unwrap()
        ),
        2
    );
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!((stored.version, access(&stored)), (2, "b"));

    let current = conflict(
        store
            .compare_and_swap(&key, Some(1), &record("stale"))
            .await
            .unwrap(),
    )
    .expect("the conflict reports what is stored");
    assert_eq!((current.version, access(&current)), (2, "b"));
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, access(&stored)),
        (2, "b"),
        "a stale write landed"
    );
    store.delete(&key).await.unwrap();
}

pub async fn versions_increase_by_one_per_write(store: &dyn TokenStore) {
    let key = key("versions");
    let mut expected = None;
    for n in 1..=10_u64 {
        let written = version(
            store
                .compare_and_swap(&key, expected, &record(&n.to_string()))
                .await
                .unwrap(),
        );
        assert_eq!(written, n);
        expected = Some(written);
    }
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!((stored.version, access(&stored)), (10, "10"));
    store.delete(&key).await.unwrap();
}

pub async fn delete_removes_the_token(store: &dyn TokenStore) {
    let (key, other) = (key("delete"), self::key("delete-other"));
    store
        .compare_and_swap(&key, None, &record("a"))
        .await
        .unwrap();
    store
        .compare_and_swap(&other, None, &record("b"))
        .await
        .unwrap();
    store.delete(&key).await.unwrap();
    assert!(store.load(&key).await.unwrap().is_none());
    assert!(
        store.load(&other).await.unwrap().is_some(),
        "deleted another key"
    );
    store.delete(&key).await.unwrap();
    assert_eq!(
        version(
            store
                .compare_and_swap(&key, None, &record("c"))
                .await
                .unwrap()
        ),
        1,
        "a deleted key starts again at version 1"
    );
    store.delete(&key).await.unwrap();
    store.delete(&other).await.unwrap();
}

pub async fn keys_lists_the_stored_keys(store: &dyn TokenStore) {
    let keys: Vec<TokenKey> = (0..3).map(|i| key(&format!("keys-{i}"))).collect();
    for key in &keys {
        store
            .compare_and_swap(key, None, &record("a"))
            .await
            .unwrap();
    }
    store.delete(&keys[1]).await.unwrap();
    let listed = store.keys().await.unwrap();
    assert!(
        listed.contains(&keys[0]) && listed.contains(&keys[2]),
        "{listed:?}"
    );
    assert!(!listed.contains(&keys[1]), "{listed:?}");
    let back = listed.iter().find(|k| **k == keys[0]).unwrap();
    assert_eq!(back.scopes(), ["orders:read", "read", "write"]);
    assert_eq!(back.account(), keys[0].account());
    for key in &keys {
        store.delete(key).await.unwrap();
    }
}

pub async fn record_round_trip_keeps_every_field(store: &dyn TokenStore) {
    let key = key("round-trip");
    let full = full_record();
    store.compare_and_swap(&key, None, &full).await.unwrap();
    let stored = store.load(&key).await.unwrap().unwrap();
    assert!(stored.record == full, "the record changed in the store");
    let token = Token::from_record(stored.record);
    assert!(token.refresh_token.is_some() && token.subject.as_deref() == Some("store-42"));
    assert_eq!(token.extra["nested"]["list"][2]["three"], 3.5);
    assert_eq!(token.extra["big"], u64::MAX);

    let mut second = Token::from_record(full.clone());
    second.refresh_token = None;
    second.extra.clear();
    second.scopes.clear();
    let second = second.to_record();
    store
        .compare_and_swap(&key, Some(1), &second)
        .await
        .unwrap();
    assert!(store.load(&key).await.unwrap().unwrap().record == second);
    store.delete(&key).await.unwrap();
}
