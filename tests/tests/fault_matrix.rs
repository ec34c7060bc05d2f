//! The fault matrix: the token manager under every fault it promises to
//! survive, for Hike and HyperSKU (rotating refresh tokens; the mocks
//! revoke the whole grant family on a reuse, RFC 9700 §4.14.2, so one
//! refresh token sent twice is fatal) and the partner (client credentials,
//! re-acquired), through their real adapters against the testkit mocks.
//!
//! Each `#[tokio::test]` is one row (a fault); it runs its cell for every
//! provider concurrently and fails naming each failing cell
//! (`[row × Provider]`). Every cell ends with the same invariants
//! (`Rig::assert_invariants`):
//!
//! * **no refresh token lost**: the refresh token stored at the end is the
//!   live one at the mock, and the manager serves an access token the
//!   mock's API accepts (the partner: the latter);
//! * **none sent twice**: `refresh_token_reuses() == 0`;
//! * **no false re-authorization**: no `ReauthorizationRequired` event, and
//!   no `get` returns one (`Rig::get` checks every call);
//! * **callers bounded**: every `get` answers within `SERVED_BOUND` (2 s)
//!   when a valid token is cached, `REFRESH_BOUND` (20 s) when it waits for
//!   a refresh; each row within `ROW_BOUND` (75 s). Generous bounds, to
//!   catch hangs, not to measure speed.
//!
//! | row | fault | also asserted |
//! |---|---|---|
//! | 1a `write_fails_wrapper` | CAS fails (wrapper on `MemoryStore`) after the provider rotated | token served at once, 1 pending write, `StoreWriteFailed`; 20 gets, no request; falls due while failing → refreshed from the pending token; heals → `StoreWriteRecovered`, newest token stored |
//! | 1a' `write_answer_lost_then_refreshed_twice` | a CAS that commits but answers an error (the reply lost), then the pending token refreshed twice more while its retries fail | the newest token is what is stored at the end (found by row 3; fixed in a6f3857) |
//! | 1b `write_fails_sqlite_locked` | SQLite `BEGIN EXCLUSIVE` by another connection past a 300 ms busy timeout | same; falls due while locked → an error (not re-auth), nothing sent |
//! | 1b' `write_fails_sqlite_locked_default_busy_timeout` | the same with `SqliteStore::open` (5 s), locked 6 s | served, pending, lands |
//! | 1c `write_fails_postgres_cut` | PostgreSQL reset and refused (proxy `Reset`) between the provider's commit and our CAS | as 1b |
//! | 2 `store_unreachable_10s_refused` | 3 keys due; 2 refreshes committed at the provider, then PostgreSQL down 10 s (`reset_all` + `Refuse`) | every get served at once during the outage (2 new tokens pending, the 3rd old and valid, no request); 2 `StoreWriteFailed`; afterwards both land (`StoreWriteRecovered`), the stored token is the served one, the 3rd is refreshed |
//! | 2' `store_unreachable_10s_blackholed` | the same with a partition (`Blackhole`: connections hang; pool acquire timeout 2 s) | same |
//! | 2'' `store_partitioned_mid_statement` | the partition (10 s) starts while our lease statement waits in the server for a row lock; the answer is lost | the waiting get answers within 15 s |
//! | 3 `postgres_restarted` | `reset_all` between refreshes, during one (after the provider's commit), and at random instants (10–120 ms apart) through 3 s of refreshes | between: every get succeeds, one request per key; during: served and stored; random: every key refreshed eventually, no write left pending |
//! | 4 `provider_slower_than_lease` | two managers (own PostgreSQL pools), 2 s lease, the provider answers after 3.2 s (it declares a 2 s timeout; the adapter's real one is 10 s); the second asks after 2.3 s | the builder refuses the 2 s lease for the adapter as it is; one request, both get the same token |
//! | 5 `shutdown_during_background_refresh` | `shutdown(10 s)` while the background refresher waits for a held answer; then `shutdown(200 ms)` against a 1.5 s one | clean report, rotated tokens stored, later expired gets `RefreshDeferred{ShuttingDown}` with no request, a restart warms and refreshes; the short one lists the key in `abandoned_refreshes` |
//! | 6 `panicking_hook` | an `on_event` hook panicking on every event through refreshes, a failed write and its recovery | every get works, the other hook and a subscriber get every event |
//! | 6' `panicking_store` | the store's CAS panics after the provider rotated | `Error::Internal` (or the token, kept pending), then the key works |
//! | 7 `two_managers_one_{memory_store,sqlite_file,postgres}` | two managers, one store (shared `MemoryStore`; two pools on one SQLite file; two PostgreSQL pools), 3 keys × 2 managers × 10 callers, 300 ms refreshes | one request (one rotation) per key, every caller of a key gets the same token |
//! | 7' `pending_write_keeps_the_lease` | two managers, one `MemoryStore`; the first one's writes fail for longer than the 2 s lease and a 1 s in-doubt grace | the second, its key expired, sends nothing (`RefreshDeferred`) and then gets the first one's token once it lands |
//! | 8 `failing_refresh_is_paced` | expired key, provider answers 503 in 8 rounds | per round, 200 concurrent + 50 sequential gets → 1 request; `RefreshDeferred{Backoff{503}}` with `retry_after`; then one request renews |
//! | 9 `bearer_auth_against_a_refusing_api` | `BearerAuth`, an API answering 401 to everything | 20 sequential + 20 concurrent requests → one forced refresh; 41 API hits (one retry) |
//! | 10 `untrusted_keys` | 50,000 gets on unknown keys (partner: 1,000 while its token endpoint answers 401) | at once, no request (partner: one each), `len()` stays 1 (partner: back to 1 once the refresher runs) |
//! | 10' `warm_with_an_unreadable_row` | SQLite rows under a key id the ring lacks | `WarmReport { loaded: 3, unreadable: [that key] }`, one `StoredTokenUnreadable`, a get on it fails with `Error::Store` and sends nothing, its token stays live |
//! | 11 `enc_looking_token_values` | the mock issues every token as `enc:…` (the SQL stores' ciphertext prefix) | through memory, SQLite and PostgreSQL, each without and with keys: stored, read back byte for byte by a restarted manager, refreshed with the stored `enc:…` refresh token |
//! | 12 `retry_after_http_date` | a refresh answered `503` with `Retry-After: <HTTP-date>` 2 min ahead | the first get's error has `retry_after()` ≈ 2 min; 80 gets over the next 100 s answer `RefreshDeferred` at once and send nothing; one request after the date |
//!
//! Three rows found library bugs, fixed since: 6' (a panicking store write
//! dropped the rotated token: store calls now run under `catch_unwind` in
//! the manager's guarded store, a panic is a write error and the token is
//! kept pending), 8 (a flight failing between a caller's backoff check and
//! its join let it start a second request: `join_flight` re-checks the
//! backoff under the flight lock), 2'' (a store call whose answer was lost
//! waited forever: every store call is bounded by
//! `TokenManagerBuilder::store_timeout`, 10 s by default, and a write that
//! timed out is kept pending and recognised as ours if it landed).
//!
//! Run: `cargo test -p oauth2-adapters-tests --test fault_matrix` (PostgreSQL
//! at `DATABASE_URL`; its rows are skipped when it is unreachable, except
//! under `CI=true`, where they fail).

mod fault_matrix {
    pub mod edges;
    pub mod lifecycle;
    pub mod outages;
    pub mod rig;
    pub mod sharing;
    pub mod stores;
    pub mod values;
    pub mod write_faults;
}

use fault_matrix::rig::{run_row, ALL};
use fault_matrix::*;

/// One `#[tokio::test]` per row: `row_name => providers, case;`.
macro_rules! matrix {
    ($($row:ident => $providers:expr, $case:path;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $row() {
                run_row(stringify!($row), &$providers, $case).await;
            }
        )*
    };
}

matrix! {
    write_fails_wrapper => ALL, write_faults::wrapper;
    write_answer_lost_then_refreshed_twice => ALL, write_faults::answer_lost_then_refreshed_twice;
    write_fails_sqlite_locked => ALL, write_faults::sqlite_locked;
    write_fails_sqlite_locked_default_busy_timeout => ALL, write_faults::sqlite_locked_default_busy_timeout;
    write_fails_postgres_cut => ALL, write_faults::postgres_cut;
    store_unreachable_10s_refused => ALL, outages::refused;
    store_unreachable_10s_blackholed => ALL, outages::blackholed;
    store_partitioned_mid_statement => ALL, outages::partitioned_mid_statement;
    postgres_restarted => ALL, outages::restarted;
    provider_slower_than_lease => ALL, sharing::provider_slower_than_lease;
    shutdown_during_background_refresh => ALL, lifecycle::shutdown_during_background_refresh;
    panicking_hook => ALL, lifecycle::panicking_hook;
    panicking_store => ALL, lifecycle::panicking_store;
    two_managers_one_memory_store => ALL, sharing::two_managers_memory;
    two_managers_one_sqlite_file => ALL, sharing::two_managers_sqlite_file;
    two_managers_one_postgres => ALL, sharing::two_managers_postgres;
    pending_write_keeps_the_lease => ALL, sharing::pending_write_keeps_the_lease;
    failing_refresh_is_paced => ALL, lifecycle::failing_refresh_is_paced;
    bearer_auth_against_a_refusing_api => ALL, edges::bearer_auth_against_a_refusing_api;
    untrusted_keys => ALL, edges::untrusted_keys;
    warm_with_an_unreadable_row => ALL, edges::warm_with_an_unreadable_row;
    enc_looking_token_values => ALL, values::enc_looking_token_values;
    retry_after_http_date => ALL, values::retry_after_http_date;
}
