//! Crash safety: worker processes (the `token_manager` example on one
//! SQLite file) refresh rotating Hike tokens, two at a time, and are killed
//! with SIGKILL at random moments, 20 times, each replaced by a fresh one.
//!
//! With strict rotation one loss cannot be prevented by any client: a kill
//! after the provider rotated a refresh token and before the new one
//! reached the store loses the account. The mock holds every refresh answer
//! for [`HOLD`] after its rotation, so kills often land in that window, and
//! each worker runs one refresh at a time (`--refresher-only
//! --max-concurrent 1`), so one kill loses at most one account.
//!
//! Each account's chain of refresh tokens is rebuilt from the mock's
//! rotation log (old → new, when). The store must hold its last link
//! (live) or the one before: then the last rotation is *orphaned*, its new
//! refresh token never reached the store. Asserted:
//! * the lost accounts (the mock refuses the stored refresh token) are
//!   exactly the orphaned ones, and each is explained by a kill of its
//!   own: a refresh of it died holding its lease (left behind, taken for
//!   the stored version, by a holder that lost no other account), and a
//!   killed worker was running when that lease was last renewed and when
//!   the mock rotated, and died before it could have stored the answer
//!   ([`explains`]);
//! * no refresh token was sent twice (the mock counts reuses and, with
//!   `revoke_on_reuse`, would revoke the account): the lapsed lease keeps
//!   a refresh token in doubt, and nobody resends it;
//! * every rotation the store took is one write (the version counts them),
//!   no account vanished, the file passes SQLite's integrity check;
//! * enough refreshes ran, and at least one kill landed in the window (or
//!   the test proves nothing);
//! * afterwards a clean worker refreshes without resending anything or
//!   losing an account, and once the grace is over (`--in-doubt-grace-ms
//!   0`) every live account refreshes and only the lost ones are refused.
//!
//! The worker binary is built by `cargo build --example token_manager` (or
//! `cargo test --workspace`); see [`token_manager_binary`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oauth2_adapters::hike::Hike;
use oauth2_adapters::manager::TokenManager;
use oauth2_adapters::store_sql::{sqlx, SqliteStore};
use oauth2_adapters::testkit::{HikeMock, MockConfig, MockServer, Rotation};
use oauth2_adapters::{ClientCredentials, ManualClock, Provider, TokenKey, TokenStore};
use oauth2_adapters_tests::code_flow::sign_in;
use oauth2_adapters_tests::external::token_manager_binary;
use oauth2_adapters_tests::{Fixture, REDIRECT_URI};

const ACCOUNTS: usize = 24;
const KILLS: usize = 20;
/// Workers alive at once: they compete for the same accounts' leases.
const WORKERS_AT_ONCE: usize = 2;
/// How long the mock holds each refresh answer after its rotation.
const HOLD: Duration = Duration::from_millis(200);
/// The workers' HTTP timeout (no retries), and their lease: the shortest
/// the builder accepts with that timeout.
const HTTP_TIMEOUT_MS: u64 = 1000;
const LEASE_MS: u64 = 1000;
/// The workers' in-doubt grace: longer than the test.
const GRACE_MS: u64 = 600_000;
/// A kill explains an orphaned rotation the mock committed up to this long
/// after it (a request sent just before the kill, processed after it)…
const IN_TRANSIT: Duration = Duration::from_millis(250);
/// …or up to this long before it: by then the worker had either stored the
/// answer or given up on it (its HTTP timeout), with two seconds to spare
/// for the write (a slow `fsync` on a busy machine).
const ANSWER_BY: Duration = Duration::from_millis(HTTP_TIMEOUT_MS + 2000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_exactly_the_accounts_killed_between_rotation_and_commit() {
    let Some(binary) = token_manager_binary() else {
        return;
    };
    let start = SystemTime::now();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    let mock = HikeMock::start(
        MockConfig::default()
            .with_redirect_uri(REDIRECT_URI)
            .with_access_token_lifetime(Duration::from_secs(1))
            .with_refresh_delay_after_commit(HOLD)
            .with_revoke_on_reuse(true),
    )
    .await
    .unwrap();
    let config = mock.config().clone();
    let hike = Hike::builder(ClientCredentials::new(
        config.client_id.clone(),
        config.client_secret.clone(),
    ))
    .base_url(mock.base_url().as_str())
    .build()
    .unwrap();
    let fx = Fixture {
        provider: hike,
        mock,
        clock: ManualClock::at_unix(0),
    };

    // Sign every account in; its first refresh token starts its chain.
    let seed = TokenManager::builder()
        .store(Arc::new(store.clone()))
        .build()
        .unwrap();
    let mut chains = Chains::default();
    for i in 0..ACCOUNTS {
        let key = TokenKey::new(fx.provider.id(), &format!("crash-{i}"));
        seed.insert(key.clone(), sign_in(&fx).await.unwrap())
            .await
            .unwrap();
        let stored = store.load(&key).await.unwrap().unwrap();
        chains.start(key, stored.record.refresh_token.unwrap());
    }
    drop(seed);

    let mut workers = Workers {
        binary,
        dir: dir.path().to_owned(),
        args: [
            "--sqlite",
            path.to_str().unwrap(),
            "--hike-url",
            fx.mock.base_url().as_str(),
            "--client-id",
            &config.client_id,
            "--client-secret",
            &config.client_secret,
            "--accounts",
            "0",
            "--prefix",
            "crash-",
            "--quiet",
            "--lease-ms",
            &LEASE_MS.to_string(),
            "--http-timeout-ms",
            &HTTP_TIMEOUT_MS.to_string(),
        ]
        .map(str::to_owned)
        .to_vec(),
        spawned: 0,
    };
    let grace = GRACE_MS.to_string();
    let doomed = [
        "--seconds",
        "600",
        "--refresher-only",
        "--max-concurrent",
        "1",
        "--in-doubt-grace-ms",
        &grace,
    ];

    // Every 300..1300 ms, SIGKILL one of the running workers at random and
    // start a fresh one, until KILLS have died.
    let mut alive: Vec<Worker> = (0..WORKERS_AT_ONCE)
        .map(|_| workers.spawn(&doomed))
        .collect();
    let mut kills = Vec::new();
    for i in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(300..1300))).await;
        let worker = alive.swap_remove(fastrand::usize(..alive.len()));
        kills.push(worker.kill());
        if i + WORKERS_AT_ONCE < KILLS {
            alive.push(workers.spawn(&doomed));
        }
    }
    assert!(alive.is_empty());

    // What the kills left.
    chains.extend(&fx.mock.rotations());
    let refreshes = chains.seen;
    assert_eq!(
        fx.mock.refresh_token_reuses(),
        0,
        "a refresh token was sent twice (a refresh in doubt repeated, or two at once)"
    );
    assert!(
        refreshes >= KILLS,
        "the workers refreshed while being killed ({refreshes} refreshes)"
    );
    let after_kills = verdict(&chains, &store, &fx.mock).await;
    assert_eq!(
        after_kills.lost, after_kills.orphaned,
        "the lost accounts are exactly those whose last rotation never reached the store"
    );
    let leases = leases_left(&store).await;
    let mut holders = HashSet::new();
    let orphans: Vec<Orphan> = after_kills
        .orphaned
        .iter()
        .map(|&i| {
            let chain = &chains.chains[i];
            let key = &chain.key;
            let lease = leases.get(key.as_str()).unwrap_or_else(|| {
                panic!("{key} is lost, but no refresh of it died: no lease was left on it")
            });
            assert_eq!(
                lease.version,
                Some(chain.rotations() as i64),
                "{key} is lost; the lease left on it was taken for the stored version"
            );
            assert!(
                holders.insert(lease.holder.clone()),
                "{key}: one worker lost two accounts, with one refresh at a time"
            );
            Orphan {
                rotated: *chain.rotated_at.last().unwrap(),
                lease_renewed: lease.renewed,
            }
        })
        .collect();
    let matched = match_kills(&orphans, &kills).unwrap_or_else(|unexplained| {
        let i = after_kills.orphaned.iter().nth(unexplained).unwrap();
        let orphan = &orphans[unexplained];
        panic!(
            "{}: lost by its rotation at {} ms (its lease last taken at {} ms), which no kill \
             of its own explains; kills (pid, started, killed; ms): {:?}",
            chains.chains[*i].key,
            ms_since(start, orphan.rotated),
            ms_since(start, orphan.lease_renewed),
            kills
                .iter()
                .map(|k| (k.pid, ms_since(start, k.started), ms_since(start, k.killed)))
                .collect::<Vec<_>>()
        )
    });
    let gaps: Vec<i128> = matched
        .iter()
        .zip(&orphans)
        .map(|(&k, orphan)| ms_since(orphan.rotated, kills[k].killed))
        .collect();
    assert!(
        !gaps.is_empty(),
        "no kill landed between a rotation and its commit: the test proved nothing \
         ({refreshes} refreshes)"
    );

    // A clean worker with the same settings: it refreshes what is not in
    // doubt, resends nothing, loses nothing.
    let after_kill_rotations = chains.rotations();
    let clean = workers.run(&["--seconds", "2", "--in-doubt-grace-ms", &grace]);
    chains.extend(&fx.mock.rotations());
    let refreshed_clean = chains.seen - refreshes;
    assert_eq!(
        fx.mock.refresh_token_reuses(),
        0,
        "the clean run resent a refresh token in doubt"
    );
    assert!(
        refreshed_clean > 0,
        "the clean run refreshed nothing: {clean}"
    );
    assert_eq!(
        verdict(&chains, &store, &fx.mock).await,
        after_kills,
        "the clean run lost nothing"
    );
    let after_clean_rotations = chains.rotations();
    // Live, but left in doubt by a kill before its refresh token was sent.
    let in_doubt = (0..ACCOUNTS)
        .filter(|&i| {
            !after_kills.lost.contains(&i) && after_clean_rotations[i] == after_kill_rotations[i]
        })
        .count();

    // Once the grace is over, every live account refreshes; each lost one
    // has its spent refresh token refused (it needs a new sign-in).
    let (rotations_before, requests_before) = (chains.seen, fx.mock.token_requests().len());
    let late = workers.run(&["--seconds", "2", "--in-doubt-grace-ms", "0"]);
    let log = fx.mock.rotations();
    chains.extend(&log);
    assert_eq!(
        verdict(&chains, &store, &fx.mock).await,
        after_kills,
        "after the grace, no account was lost: {late}"
    );
    for (i, &before) in after_clean_rotations.iter().enumerate() {
        if !after_kills.lost.contains(&i) {
            assert!(
                chains.chains[i].rotations() > before,
                "{}: live, but not refreshed after the grace: {late}",
                chains.chains[i].key
            );
        }
    }
    let rotated: HashSet<&str> = log[rotations_before..]
        .iter()
        .map(|r| r.old_refresh_token.as_str())
        .collect();
    let refused: BTreeSet<usize> = fx.mock.token_requests()[requests_before..]
        .iter()
        .filter_map(|r| {
            r.form_body()
                .into_iter()
                .find(|(name, _)| name == "refresh_token")
                .map(|(_, token)| token)
        })
        .filter(|token| !rotated.contains(token.as_str()))
        .map(|token| chains.owner[&token])
        .collect();
    assert_eq!(
        refused, after_kills.lost,
        "after the grace, the refused refresh tokens are exactly the lost accounts' ones"
    );

    let (integrity,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    eprintln!(
        "crash safety: {KILLS} kills, {} between a rotation and its commit (kill - rotation, \
         ms: {gaps:?}); {refreshes} refreshes under kills; {} of {ACCOUNTS} accounts lost, \
         {in_doubt} live but in doubt; clean run: {refreshed_clean} refreshes ({clean}); \
         after the grace: {late}; {:.1} s",
        gaps.len(),
        after_kills.lost.len(),
        start.elapsed().unwrap().as_secs_f32()
    );
}

/// One account's refresh tokens, in the order the mock issued them.
struct Chain {
    key: TokenKey,
    tokens: Vec<String>,
    /// When the mock rotated `tokens[i]` into `tokens[i + 1]`.
    rotated_at: Vec<SystemTime>,
}

impl Chain {
    fn rotations(&self) -> usize {
        self.rotated_at.len()
    }
}

/// Every account's chain, and which account each refresh token is of.
#[derive(Default)]
struct Chains {
    chains: Vec<Chain>,
    owner: HashMap<String, usize>,
    /// How many rotations of the mock's log are in the chains.
    seen: usize,
}

impl Chains {
    fn start(&mut self, key: TokenKey, first: String) {
        self.owner.insert(first.clone(), self.chains.len());
        self.chains.push(Chain {
            key,
            tokens: vec![first],
            rotated_at: Vec::new(),
        });
    }

    /// Adds the rotations of `log` (the mock's whole log) not seen yet.
    fn extend(&mut self, log: &[Rotation]) {
        for rotation in &log[self.seen..] {
            let &i = self
                .owner
                .get(&rotation.old_refresh_token)
                .expect("the mock rotated a refresh token no account was given");
            let chain = &mut self.chains[i];
            assert_eq!(
                chain.tokens.last(),
                Some(&rotation.old_refresh_token),
                "{}: a refresh token was rotated twice",
                chain.key
            );
            chain.tokens.push(rotation.new_refresh_token.clone());
            chain.rotated_at.push(rotation.committed_at);
            self.owner.insert(rotation.new_refresh_token.clone(), i);
        }
        self.seen = log.len();
    }

    fn rotations(&self) -> Vec<usize> {
        self.chains.iter().map(Chain::rotations).collect()
    }
}

/// The accounts (by index) as the store and the mock see them.
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    /// The mock refuses the stored refresh token.
    lost: BTreeSet<usize>,
    /// The last rotation's new refresh token is not the stored one.
    orphaned: BTreeSet<usize>,
}

/// Reads every account back; panics when the store holds anything but the
/// last or the second-to-last link of its chain, or a version that is not
/// one write per rotation taken.
async fn verdict(chains: &Chains, store: &SqliteStore, mock: &HikeMock) -> Verdict {
    let mut verdict = Verdict {
        lost: BTreeSet::new(),
        orphaned: BTreeSet::new(),
    };
    for (i, chain) in chains.chains.iter().enumerate() {
        let key = &chain.key;
        let stored = store
            .load(key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key} vanished from the store"));
        let refresh = stored
            .record
            .refresh_token
            .unwrap_or_else(|| panic!("{key}: the stored token has no refresh token"));
        let at = chain
            .tokens
            .iter()
            .position(|t| *t == refresh)
            .unwrap_or_else(|| {
                panic!("{key}: the store holds a refresh token the mock never issued for it")
            });
        assert!(
            at + 1 >= chain.rotations(),
            "{key}: the store went back to refresh token {at} of {}",
            chain.rotations()
        );
        assert_eq!(
            stored.version,
            at as u64 + 1,
            "{key}: one write for the sign-in and one for each rotation the store took"
        );
        if at < chain.rotations() {
            verdict.orphaned.insert(i);
        }
        if !mock.is_refresh_token_valid(&refresh) {
            verdict.lost.insert(i);
        }
    }
    verdict
}

/// A refresh lease left in the store.
struct Lease {
    holder: String,
    /// The token version it was taken for.
    version: Option<i64>,
    /// When its holder last took or extended it.
    renewed: SystemTime,
}

/// The SQLite store's refresh leases, by key. With every worker dead, each
/// was left by a refresh that died.
async fn leases_left(store: &SqliteStore) -> HashMap<String, Lease> {
    let rows: Vec<(String, String, i64, Option<i64>)> =
        sqlx::query_as("SELECT key, holder, expires_at_ms, version FROM oauth2_adapters_leases")
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.into_iter()
        .map(|(key, holder, expires_at_ms, version)| {
            let expires = UNIX_EPOCH + Duration::from_millis(expires_at_ms as u64);
            let renewed = expires - Duration::from_millis(LEASE_MS);
            (
                key,
                Lease {
                    holder,
                    version,
                    renewed,
                },
            )
        })
        .collect()
}

/// An account's rotation whose new refresh token never reached the store.
struct Orphan {
    /// When the mock rotated.
    rotated: SystemTime,
    /// When the refresh lease left on the account was last taken or extended.
    lease_renewed: SystemTime,
}

/// A worker that was killed: its pid, when it started and when it died.
#[derive(Debug)]
struct Killed {
    pid: u32,
    started: SystemTime,
    killed: SystemTime,
}

/// Whether `kill` can explain `orphan`: the worker was running when the
/// lease left on the account was last renewed and when the mock rotated
/// (or had sent the request just before it died), and died before it could
/// have stored the answer.
fn explains(kill: &Killed, orphan: &Orphan) -> bool {
    kill.started < orphan.lease_renewed
        && orphan.lease_renewed <= kill.killed
        && kill.started < orphan.rotated
        && orphan.rotated <= kill.killed + IN_TRANSIT
        && kill.killed <= orphan.rotated + ANSWER_BY
}

/// Gives each orphaned rotation a kill of its own that explains it
/// (augmenting paths; a kill after the rotation is tried first): the kill
/// of each, or the index of a rotation no matching can explain.
fn match_kills(orphans: &[Orphan], kills: &[Killed]) -> Result<Vec<usize>, usize> {
    fn augment(
        r: usize,
        candidates: &[Vec<usize>],
        owner: &mut [Option<usize>],
        visited: &mut [bool],
    ) -> bool {
        for &k in &candidates[r] {
            if !std::mem::replace(&mut visited[k], true)
                && owner[k].is_none_or(|other| augment(other, candidates, owner, visited))
            {
                owner[k] = Some(r);
                return true;
            }
        }
        false
    }
    let candidates: Vec<Vec<usize>> = orphans
        .iter()
        .map(|orphan| {
            let mut ks: Vec<usize> = (0..kills.len())
                .filter(|&k| explains(&kills[k], orphan))
                .collect();
            let at = orphan.rotated;
            ks.sort_by_key(|&k| (kills[k].killed < at, ms_since(at, kills[k].killed).abs()));
            ks
        })
        .collect();
    let mut owner = vec![None; kills.len()];
    for r in 0..orphans.len() {
        if !augment(r, &candidates, &mut owner, &mut vec![false; kills.len()]) {
            return Err(r);
        }
    }
    let mut matched = vec![0; orphans.len()];
    for (k, r) in owner.iter().enumerate() {
        if let Some(r) = r {
            matched[*r] = k;
        }
    }
    Ok(matched)
}

/// Starts workers with the common arguments; their stdout and stderr go to
/// files in the test's directory.
struct Workers {
    binary: PathBuf,
    dir: PathBuf,
    args: Vec<String>,
    spawned: usize,
}

/// A running worker; killed if the test ends first.
struct Worker {
    child: Child,
    log: PathBuf,
    started: SystemTime,
}

impl Workers {
    fn spawn(&mut self, extra: &[&str]) -> Worker {
        self.spawned += 1;
        let log = self.dir.join(format!("worker-{}", self.spawned));
        let out = std::fs::File::create(log.with_extension("out")).unwrap();
        let err = std::fs::File::create(log.with_extension("err")).unwrap();
        let started = SystemTime::now();
        let child = Command::new(&self.binary)
            .args(&self.args)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("the worker starts");
        Worker {
            child,
            log,
            started,
        }
    }

    /// Runs a worker to its end; returns its summary line.
    fn run(&mut self, extra: &[&str]) -> String {
        let mut worker = self.spawn(extra);
        tokio::task::block_in_place(|| worker.child.wait()).unwrap();
        let out = read(&worker.log.with_extension("out"));
        out.lines()
            .find(|line| line.starts_with("summary:"))
            .unwrap_or_else(|| {
                panic!(
                    "the worker printed no summary: {out}{}",
                    read(&worker.log.with_extension("err"))
                )
            })
            .to_owned()
    }
}

impl Worker {
    /// SIGKILL; panics if the worker had already exited by itself.
    fn kill(mut self) -> Killed {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "a worker exited by itself ({status}) before its kill: {}",
                read(&self.log.with_extension("err"))
            );
        }
        let killed = SystemTime::now();
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
        Killed {
            pid: self.child.id(),
            started: self.started,
            killed,
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `t - start` in milliseconds (negative when `t` is earlier).
fn ms_since(start: SystemTime, t: SystemTime) -> i128 {
    match t.duration_since(start) {
        Ok(d) => d.as_millis() as i128,
        Err(e) => -(e.duration().as_millis() as i128),
    }
}
