//! Rows 9 and 10: `BearerAuth` in front of an API that refuses every
//! token, keys from untrusted input, and a warm start with a row the
//! store cannot read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oauth2_adapters::manager::{TokenEvent, TokenManager};
use oauth2_adapters::middleware::BearerAuth;
use oauth2_adapters::store_sql::EncryptionKeys;
use oauth2_adapters::testkit::Fault;
use oauth2_adapters::{Error, MemoryStore, TokenStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::rig::{eventually, Rig, Row, REFRESH_BOUND, SERVED_BOUND};
use super::stores::SqliteFile;

/// An HTTP server on 127.0.0.1 that answers every request `401` with
/// `WWW-Authenticate: Bearer error="invalid_token"`, and counts them.
struct RefusingApi {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl RefusingApi {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/orders", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buffer[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 401 Unauthorized\r\n\
                              WWW-Authenticate: Bearer error=\"invalid_token\"\r\n\
                              Content-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { url, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// `BearerAuth` in front of an API that answers 401 to every token (a
/// revoked permission, say): 20 sequential and then 20 concurrent requests
/// cause one forced refresh (one rotation) in all; the first request is
/// retried once with the new token, every other 401 is handed back as is.
pub async fn bearer_auth_against_a_refusing_api(row: Row) {
    let rig = Rig::start(row).await;
    let store = Arc::new(MemoryStore::new());
    let manager = rig.manager(store.clone());
    let key = rig.seed(&manager, "a").await;
    let api = RefusingApi::start().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(http)
        .with(
            BearerAuth::new(manager.clone(), key.clone())
                .with_forced_refresh_interval(Duration::from_secs(60)),
        )
        .build();
    let requests = rig.token_requests();
    for i in 0..20 {
        let response = tokio::time::timeout(REFRESH_BOUND, client.get(&api.url).send())
            .await
            .unwrap_or_else(|_| panic!("{row} request {i} hung"))
            .unwrap_or_else(|e| panic!("{row} request {i} failed: {e}"));
        assert_eq!(
            response.status(),
            401,
            "{row} the API's answer is handed back"
        );
    }
    assert_eq!(
        rig.token_requests(),
        requests + 1,
        "{row} 20 requests, one forced refresh"
    );
    assert_eq!(
        api.hits(),
        21,
        "{row} the first request was retried once, no other"
    );
    let concurrent: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (client.clone(), api.url.clone());
            tokio::spawn(async move {
                tokio::time::timeout(REFRESH_BOUND, client.get(&url).send()).await
            })
        })
        .collect();
    for request in concurrent {
        let response = request.await.unwrap().expect("bounded").expect("answered");
        assert_eq!(response.status(), 401, "{row}");
    }
    assert_eq!(
        rig.token_requests(),
        requests + 1,
        "{row} still one forced refresh"
    );
    assert_eq!(api.hits(), 41, "{row}");
    rig.assert_invariants(&manager, store.as_ref(), &[key])
        .await;
}

/// Keys from untrusted input. For Hike and HyperSKU, 50,000 `get`s on
/// unknown keys: each answers at once that the account is not authorized
/// (true: nothing is stored), no request is sent, and the manager keeps no
/// slot for them. The partner acquires a token for any key, so its keys
/// are cheap only when the acquisition fails: 1,000 unknown keys while the
/// token endpoint refuses (401) keep a slot while they back off, and the
/// background refresher drops every one after.
pub async fn untrusted_keys(row: Row) {
    let rig = Rig::start(row).await;
    let store = Arc::new(MemoryStore::new());
    // The background refresher drops the slots of tokenless keys once
    // their backoff is over (partner, below).
    let manager = rig
        .builder(store.clone())
        .refresh_in_background(Duration::from_millis(20), 16)
        .build()
        .unwrap();
    let known = rig.seed(&manager, "known").await;
    let requests = rig.token_requests();
    let count = if rig.rotates() { 50_000 } else { 1_000 };
    if !rig.rotates() {
        for _ in 0..count {
            rig.mock().push_fault(Fault::Status(401));
        }
    }
    let prefix = row.account_prefix();
    for batch in 0..count / 500 {
        let mut callers = tokio::task::JoinSet::new();
        for i in 0..500 {
            let (manager, key) = (manager.clone(), rig.key(&format!("{prefix}{batch}-{i}")));
            callers.spawn(async move {
                tokio::time::timeout(SERVED_BOUND * 5, manager.get(&key)).await
            });
        }
        while let Some(answer) = callers.join_next().await {
            let error = answer
                .unwrap()
                .unwrap_or_else(|_| panic!("{row} a get on an unknown key hung"))
                .expect_err("an unknown key has no token");
            if rig.rotates() {
                assert!(error.requires_reauthorization(), "{row} {error:?}");
            } else {
                assert!(!error.requires_reauthorization(), "{row} {error:?}");
            }
        }
    }
    if rig.rotates() {
        assert_eq!(
            rig.token_requests(),
            requests,
            "{row} nothing sent for unknown keys"
        );
        assert_eq!(manager.len(), 1, "{row} only the known key has a slot");
    } else {
        assert_eq!(
            rig.token_requests(),
            requests + count,
            "{row} one acquisition per key"
        );
        assert!(manager.len() <= count + 1, "{row} {}", manager.len());
        rig.clock.advance(Duration::from_secs(6)); // past every backoff
        eventually(
            row,
            "the failed keys' slots are dropped",
            Duration::from_secs(10),
            || manager.len() == 1,
        )
        .await;
    }
    rig.assert_invariants(&manager, store.as_ref(), &[known])
        .await;
}

/// `warm()` on a SQLite file with one row encrypted under a key id the
/// store's ring does not have: the other rows load, the unreadable one is
/// reported (result and event) and left as it is; a get on it fails with
/// the store's error (no re-authorization, no request), and its refresh
/// token stays live.
pub async fn warm_with_an_unreadable_row(row: Row) {
    let rig = Rig::start(row).await;
    let file = SqliteFile::new();
    let ring = EncryptionKeys::new("2026-01", &[7; 32]).unwrap();
    let elsewhere = EncryptionKeys::new("another-ring", &[9; 32]).unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(file.open().await.with_encryption(ring));
    let foreign: Arc<dyn TokenStore> = Arc::new(file.open().await.with_encryption(elsewhere));
    let keys = rig.seed_many(&rig.manager(store.clone()), "k", 3).await;
    let odd = rig
        .seed(&rig.manager(foreign.clone()), "written-elsewhere")
        .await;

    let manager: TokenManager = rig.manager(store.clone());
    let report = manager.warm().await.unwrap();
    assert_eq!(report.loaded, keys.len(), "{row} {report:?}");
    assert_eq!(report.unreadable.len(), 1, "{row} {report:?}");
    assert_eq!(report.unreadable[0].key, odd, "{row}");
    let unreadable = rig
        .events
        .count(|e| matches!(e, TokenEvent::StoredTokenUnreadable { .. }));
    assert_eq!(unreadable, 1, "{row}");
    for key in &keys {
        assert!(manager.try_get(key).is_some(), "{row} {key} is cached");
    }
    let requests = rig.token_requests();
    let error = rig
        .get(&manager, &odd, REFRESH_BOUND)
        .await
        .expect_err("unreadable");
    assert!(matches!(error, Error::Store { .. }), "{row} {error:?}");
    assert_eq!(
        rig.token_requests(),
        requests,
        "{row} nothing sent for an unreadable row"
    );
    rig.expire();
    for key in &keys {
        rig.get_ok(&manager, key, REFRESH_BOUND).await;
    }
    rig.assert_invariants(&manager, store.as_ref(), &keys).await;
    let reader = rig.manager(foreign.clone());
    rig.assert_invariants(&reader, foreign.as_ref(), &[odd])
        .await;
}
