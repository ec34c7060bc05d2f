//! The documented spans and metrics (`docs/observability.md`) are emitted
//! with the documented names, fields and labels.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use oauth2_adapters::manager::TokenManager;
use oauth2_adapters::metrics::{
    MANAGER_CACHE_HITS_TOTAL, MANAGER_COALESCED_WAITERS_TOTAL, MANAGER_REFRESHES_TOTAL,
    TOKEN_REQUESTS_TOTAL, TOKEN_REQUEST_DURATION_SECONDS, TOKEN_REQUEST_RETRIES_TOTAL,
};
use oauth2_adapters::testkit::{Fault, MockServer};
use oauth2_adapters::{Provider, RetryPolicy, TokenKey};
use oauth2_adapters_tests::trace_capture::TraceCapture;

type Snapshot = Vec<(
    CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// The counters named `name`, by their labels (`k=v,k=v`).
fn counters(snapshot: &Snapshot, name: &str) -> BTreeMap<String, u64> {
    snapshot
        .iter()
        .filter(|(key, ..)| key.kind() == MetricKind::Counter && key.key().name() == name)
        .map(|(key, _, _, value)| {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let DebugValue::Counter(n) = value else {
                unreachable!()
            };
            (labels.join(","), *n)
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn token_requests_and_manager_refreshes_are_counted_and_traced() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let capture = TraceCapture::start();

    let retries =
        RetryPolicy::default().with_backoff(Duration::from_millis(5), Duration::from_millis(10));
    let fx = oauth2_adapters_tests::partner_with_retries(retries).await;
    let manager = TokenManager::builder()
        .clock(Arc::new(fx.clock.clone()))
        .provider(Arc::new(fx.provider.clone()))
        .build()
        .unwrap();
    let key = TokenKey::new(fx.provider.id(), "app");

    fx.mock.push_fault(Fault::Status(503));
    let (a, b) = tokio::join!(manager.get(&key), manager.get(&key));
    a.unwrap();
    b.unwrap();
    manager.get(&key).await.unwrap();
    manager.read_authorization_header(&key, |_| ()).unwrap();

    let snapshot = snapshotter.snapshot().into_vec();
    let requests = counters(&snapshot, TOKEN_REQUESTS_TOTAL);
    assert_eq!(
        requests,
        BTreeMap::from([
            (
                "provider=partner,grant=client_credentials,outcome=provider_error".into(),
                1
            ),
            (
                "provider=partner,grant=client_credentials,outcome=success".into(),
                1
            ),
        ])
    );
    assert_eq!(
        counters(&snapshot, TOKEN_REQUEST_RETRIES_TOTAL),
        BTreeMap::from([("provider=partner,grant=client_credentials".into(), 1)])
    );
    assert!(snapshot
        .iter()
        .any(|(key, ..)| key.kind() == MetricKind::Histogram
            && key.key().name() == TOKEN_REQUEST_DURATION_SECONDS));
    assert_eq!(
        counters(&snapshot, MANAGER_REFRESHES_TOTAL),
        BTreeMap::from([("provider=partner,outcome=refreshed".into(), 1)])
    );
    assert_eq!(
        counters(&snapshot, MANAGER_COALESCED_WAITERS_TOTAL),
        BTreeMap::from([("provider=partner".into(), 1)])
    );
    assert_eq!(counters(&snapshot, MANAGER_CACHE_HITS_TOTAL)[""], 2);

    let attempts = capture.spans("oauth2_adapters.token_request");
    assert_eq!(attempts.len(), 2);
    for (span, (attempt, outcome, status)) in attempts
        .iter()
        .zip([("1", "provider_error", Some("503")), ("2", "success", None)])
    {
        assert_eq!(span.field("provider"), Some("partner"));
        assert_eq!(span.field("grant"), Some("client_credentials"));
        assert_eq!(span.field("attempt"), Some(attempt));
        assert_eq!(span.field("outcome"), Some(outcome));
        assert!(span.field("duration_ms").is_some());
        if let Some(status) = status {
            assert_eq!(span.field("http.status"), Some(status));
        }
    }
    assert_eq!(
        attempts[1].field("http.status"),
        Some("200"),
        "recorded by the HTTP client"
    );
    let refreshes = capture.spans("oauth2_adapters.refresh");
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].field("token.key"), Some("partner|app|"));
    assert_eq!(refreshes[0].field("outcome"), Some("refreshed"));
    assert_eq!(refreshes[0].field("coalesced_waiters"), Some("1"));
    assert_eq!(refreshes[0].field("forced"), Some("false"));
}
