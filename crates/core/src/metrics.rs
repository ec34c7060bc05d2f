//! The counters and histograms the library reports through the
//! [`metrics`](https://docs.rs/metrics) facade.
//!
//! Nothing is recorded unless the application installs a recorder (for
//! example `metrics-exporter-prometheus`). Install it before building a
//! [`TokenManager`](crate::manager::TokenManager): the manager registers
//! its cache-hit counter once, when it is built, so the hot path only
//! increments a handle.
//!
//! | name | kind | labels | counts |
//! |---|---|---|---|
//! | `oauth2_adapters_token_requests_total` | counter | `provider`, `grant`, `outcome` | every attempt at a token endpoint |
//! | `oauth2_adapters_token_request_duration_seconds` | histogram | `provider`, `grant` | each attempt's duration |
//! | `oauth2_adapters_token_request_retries_total` | counter | `provider`, `grant` | retries after a failed attempt |
//! | `oauth2_adapters_manager_cache_hits_total` | counter | — | reads served from the cache |
//! | `oauth2_adapters_manager_refreshes_total` | counter | `provider`, `outcome` | refreshes run by the manager |
//! | `oauth2_adapters_manager_coalesced_waiters_total` | counter | `provider` | callers that joined a refresh already in flight |
//! | `oauth2_adapters_manager_persist_duration_seconds` | histogram | `provider` | from a refreshed token's arrival to its durable commit (the window a crash can lose it in) |
//! | `oauth2_adapters_manager_pending_writes` | gauge | — | refreshed tokens held in memory because the store did not take them yet |
//! | `oauth2_adapters_manager_hook_panics_total` | counter | — | `on_event` hooks that panicked (and were isolated) |
//!
//! `outcome` of a token request is one of `success`, `provider_error`,
//! `http_status`, `transport`, `invalid_response`,
//! `reauthorization_required`, `other_error`; of a manager refresh one of
//! `refreshed`, `loaded_from_store`, `reauthorization_required`, `failed`.
//! No label ever holds a secret or an account name.

use std::time::Duration;

use crate::retry::Grant;
use crate::token::ProviderId;

/// Attempts at a token endpoint.
pub const TOKEN_REQUESTS_TOTAL: &str = "oauth2_adapters_token_requests_total";
/// Each attempt's duration, in seconds.
pub const TOKEN_REQUEST_DURATION_SECONDS: &str = "oauth2_adapters_token_request_duration_seconds";
/// Retries after a failed attempt.
pub const TOKEN_REQUEST_RETRIES_TOTAL: &str = "oauth2_adapters_token_request_retries_total";
/// Reads served from the manager's cache.
pub const MANAGER_CACHE_HITS_TOTAL: &str = "oauth2_adapters_manager_cache_hits_total";
/// Refreshes run by the manager.
pub const MANAGER_REFRESHES_TOTAL: &str = "oauth2_adapters_manager_refreshes_total";
/// Callers that joined a refresh already in flight.
pub const MANAGER_COALESCED_WAITERS_TOTAL: &str = "oauth2_adapters_manager_coalesced_waiters_total";

/// From a refreshed token's arrival to its durable commit, in seconds.
pub const MANAGER_PERSIST_DURATION_SECONDS: &str =
    "oauth2_adapters_manager_persist_duration_seconds";
/// Refreshed tokens held in memory because the store did not take them yet.
pub const MANAGER_PENDING_WRITES: &str = "oauth2_adapters_manager_pending_writes";
/// `on_event` hooks that panicked.
pub const MANAGER_HOOK_PANICS_TOTAL: &str = "oauth2_adapters_manager_hook_panics_total";

pub(crate) fn persist_duration(provider: &ProviderId, duration: Duration) {
    metrics::histogram!(
        MANAGER_PERSIST_DURATION_SECONDS,
        "provider" => provider_label(provider),
    )
    .record(duration.as_secs_f64());
}

pub(crate) fn pending_writes(count: usize) {
    metrics::gauge!(MANAGER_PENDING_WRITES).set(count as f64);
}

pub(crate) fn hook_panic() {
    metrics::counter!(MANAGER_HOOK_PANICS_TOTAL).increment(1);
}

/// The provider label: a static id (the built-in adapters') is borrowed,
/// not copied, on every token request.
fn provider_label(provider: &ProviderId) -> metrics::SharedString {
    metrics::SharedString::from(provider.as_cow().clone())
}

pub(crate) fn token_request(
    provider: &ProviderId,
    grant: Grant,
    outcome: &'static str,
    duration: Duration,
) {
    metrics::counter!(
        TOKEN_REQUESTS_TOTAL,
        "provider" => provider_label(provider),
        "grant" => grant.as_str(),
        "outcome" => outcome,
    )
    .increment(1);
    metrics::histogram!(
        TOKEN_REQUEST_DURATION_SECONDS,
        "provider" => provider_label(provider),
        "grant" => grant.as_str(),
    )
    .record(duration.as_secs_f64());
}

pub(crate) fn token_request_retry(provider: &ProviderId, grant: Grant) {
    metrics::counter!(
        TOKEN_REQUEST_RETRIES_TOTAL,
        "provider" => provider_label(provider),
        "grant" => grant.as_str(),
    )
    .increment(1);
}

pub(crate) fn manager_refresh(provider: &ProviderId, outcome: &'static str) {
    metrics::counter!(
        MANAGER_REFRESHES_TOTAL,
        "provider" => provider_label(provider),
        "outcome" => outcome,
    )
    .increment(1);
}

pub(crate) fn coalesced_waiter(provider: &ProviderId) {
    metrics::counter!(
        MANAGER_COALESCED_WAITERS_TOTAL,
        "provider" => provider_label(provider),
    )
    .increment(1);
}

/// The cache-hit counter, registered once (see the module docs).
pub(crate) fn cache_hits() -> metrics::Counter {
    metrics::counter!(MANAGER_CACHE_HITS_TOTAL)
}
