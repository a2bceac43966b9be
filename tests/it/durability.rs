//! Nothing is lost: usage survives a database outage under load, a graceful shutdown under
//! load, and a shutdown during an outage (spilled to disk, replayed at the next start).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{self, Outage, TestDb};
use flo2::{Config, Mode, RunningServer};
use flo2_testkit::{FakeUpstream, Scenario};
use serde_json::{json, Value};

/// Calls made by `stack` before the test's own load.
const WARM_UP_CALLS: u64 = 2;

struct Stack {
    server: RunningServer,
    fake: FakeUpstream,
    base: String,
    key: String,
    org: flo2_core::OrgId,
}

fn config(db: &TestDb, key: &str) -> Config {
    let mut c = common::config(db, key);
    // A small memory bound, so an outage under load really spills to disk.
    c.usage_memory_records = 100;
    c.shutdown_grace = Duration::from_secs(10);
    c
}

async fn stack(db: &TestDb, master: &str) -> Stack {
    let server = flo2::start(&config(db, master), Mode::Serve).await.unwrap();
    let base = format!("http://{}", server.addr);
    let fake = FakeUpstream::start().await;
    fake.set_default(Scenario::text("ok").usage(10, 5));
    let http = reqwest::Client::new();
    let signup: Value = http
        .post(format!("{base}/api/v1/signup"))
        .json(&json!({"email": "load@example.com", "password": common::PASSWORD, "organization": "Load"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signup["token"].as_str().unwrap().to_owned();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    post("/api/v1/provider-keys", json!({"provider": "openai", "name": "o", "api_key": "sk-0123456789abcdef", "base_url": format!("{}/v1", fake.base_url())})).await.unwrap();
    let team: Value = post("/api/v1/teams", json!({"name": "t"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key: Value = post(
        "/api/v1/api-keys",
        json!({"name": "k", "team_id": team["id"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    // Calls before any outage, as in production: keys and configuration in use are in the
    // gateway's caches, which is what lets it keep serving while the database is away. The pause
    // lets the change watcher see the setup's own changes first (it drops cached entries they
    // touch), so the second call leaves the caches warm.
    for _ in 0..WARM_UP_CALLS {
        let warm = http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(warm.status(), 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Stack {
        server,
        fake,
        base,
        key,
        org: signup["organization"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    }
}

/// Clients calling the gateway until `stop`; returns how many calls were answered 200.
fn load(
    base: &str,
    key: &str,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> (Arc<AtomicU64>, Vec<tokio::task::JoinHandle<()>>) {
    let served = Arc::new(AtomicU64::new(0));
    let handles = (0..workers)
        .map(|_| {
            let (served, stop, url, key) = (Arc::clone(&served), Arc::clone(&stop), format!("{base}/v1/chat/completions"), key.to_owned());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                // Bounded in count and time: stops on the flag or after 20,000 calls.
                for _ in 0..20_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let sent = http.post(&url).bearer_auth(&key).json(&json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})).send().await;
                    if let Ok(resp) = sent {
                        if resp.status() == 200 {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    (served, handles)
}

async fn rows(db: &TestDb, org: flo2_core::OrgId) -> usize {
    let store = db.raw().await;
    let n = store.usage_records(org, 10_000_000).await.unwrap().len();
    store.close().await;
    n
}

async fn wait_for_rows(db: &TestDb, org: flo2_core::OrgId, want: usize) -> usize {
    let mut got = 0;
    for _ in 0..300 {
        got = rows(db, org).await;
        if got >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_second_database_outage_under_load_loses_no_usage() {
    let db = TestDb::new().await;
    let master = common::master_key();
    let s = stack(&db, &master).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (served, workers) = load(&s.base, &s.key, 4, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = served.load(Ordering::Relaxed);
    let outage = Outage::start(&db).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let served_during = served.load(Ordering::Relaxed) - before;
    outage.end().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let served = served.load(Ordering::Relaxed) + WARM_UP_CALLS;
    assert!(
        served_during > 100,
        "the gateway kept serving during the outage ({served_during} calls)"
    );
    let metrics = reqwest::get(format!("{}/metrics", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let got = wait_for_rows(&db, s.org, served as usize).await;
    eprintln!("served {served} calls; {got} usage rows; metrics:\n{metrics}");
    assert_eq!(got as u64, served, "rows = requests served");
    assert!(metrics.contains("flo2_usage_records_dropped_total 0"));
    assert!(
        metric(&metrics, "flo2_usage_records_spilled_total") > 0,
        "the outage outlasted the memory bound and spilled to disk"
    );
    assert_eq!(s.fake.request_count() as u64, served);
    s.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_under_load_loses_no_usage() {
    let db = TestDb::new().await;
    let master = common::master_key();
    let s = stack(&db, &master).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (served, workers) = load(&s.base, &s.key, 4, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.server.shutdown().await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let served = served.load(Ordering::Relaxed) + WARM_UP_CALLS;
    assert!(served > 50, "{served}");
    // The writer drained before shutdown returned: no waiting needed.
    assert_eq!(
        rows(&db, s.org).await as u64,
        served,
        "rows = requests served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_held_at_shutdown_during_an_outage_is_replayed_at_the_next_start() {
    let db = TestDb::new().await;
    let master = common::master_key();
    let s = stack(&db, &master).await;
    let stop = Arc::new(AtomicBool::new(false));
    let outage = Outage::start(&db).await;
    let (served, workers) = load(&s.base, &s.key, 2, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let served = served.load(Ordering::Relaxed) + WARM_UP_CALLS;
    assert!(
        served > 20,
        "the gateway kept serving during the outage ({served} calls)"
    );
    s.server.shutdown().await;
    assert!(
        db.data_dir().join("usage-spill.jsonl").exists(),
        "usage was spilled, not lost"
    );
    outage.end().await;
    // Only the warm-up calls, written before the outage, are in the database so far.
    assert_eq!(rows(&db, s.org).await as u64, WARM_UP_CALLS);

    let again = flo2::start(&config(&db, &master), Mode::Serve)
        .await
        .unwrap();
    let got = wait_for_rows(&db, s.org, served as usize).await;
    assert_eq!(got as u64, served, "rows = requests served, after replay");
    again.shutdown().await;
    assert!(
        !db.data_dir().join("usage-spill.jsonl").exists(),
        "the spill file is removed once replayed"
    );
}

/// The database's files and the spill file are readable by flo2's user only.
fn assert_private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "{} must be private", path.display());
}

/// The real binary on `db`, as a child process that can be killed without warning. Its log
/// goes to a file: a pipe nobody reads would fill up and stall it.
/// A flo2 child process, killed when dropped: a test that fails before its own kill must not
/// leave a server running (orphans kept polling and skewed a later benchmark on this machine).
struct ChildFlo2(std::process::Child);

impl ChildFlo2 {
    /// SIGKILL, as a crash.
    fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for ChildFlo2 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_flo2(db: &TestDb, master: &str, port: u16) -> ChildFlo2 {
    let log = std::fs::File::create(db.data_dir().join("flo2-child.log")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_flo2"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FLO2_LISTEN", format!("127.0.0.1:{port}"))
        .env("FLO2_DATA_DIR", db.data_dir())
        .env("FLO2_DATABASE_URL", &db.url)
        .env("FLO2_MASTER_KEY", master)
        .env("FLO2_DB_MAX_CONNECTIONS", "4")
        .env("FLO2_CHANGE_POLL_MS", "50")
        .env("FLO2_KEY_TOUCH_INTERVAL_MS", "50")
        .env("FLO2_ALLOW_PRIVATE_UPSTREAMS", "true")
        // A small gather interval: a crash may lose what arrived in the last one only.
        .env("FLO2_USAGE_GATHER_MS", "20")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    ChildFlo2(child)
}

async fn chat(http: &reqwest::Client, base: &str, key: &str) -> reqwest::StatusCode {
    http.post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
}

/// The gateway key and organization a child process serves, and the upstream it calls.
struct Tenant {
    key: String,
    org: flo2_core::OrgId,
    /// Kept alive: the child calls it.
    _fake: FakeUpstream,
}

/// Accounts and keys through an in-process server, then the real binary on the same data, up
/// and with warm caches: the tenant, the child process and its base URL.
async fn child_stack(db: &TestDb, master: &str) -> (Tenant, ChildFlo2, String) {
    let Stack {
        server,
        key,
        org,
        fake,
        ..
    } = stack(db, master).await;
    server.shutdown().await;
    let s = Tenant {
        key,
        org,
        _fake: fake,
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let child = spawn_flo2(db, master, port);
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..300 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            ready = r.status() == 200;
            if ready {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the binary came up");
    // Warm the child's caches, as `stack` does for the in-process server.
    for _ in 0..WARM_UP_CALLS {
        assert_eq!(chat(&http, &base, &s.key).await, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let before = wait_for_rows(db, s.org, 2 * WARM_UP_CALLS as usize).await;
    assert_eq!(before as u64, 2 * WARM_UP_CALLS);
    (s, child, base)
}

/// SIGKILL during a database outage: every call that was answered before the kill is in the
/// database once it is back and flo2 has started again. Before, records that arrived while
/// the writer backed off waited in memory (the memory bound here is the default 10,000) and
/// the kill lost them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_database_outage_loses_no_answered_usage() {
    let db = TestDb::new().await;
    let master = common::master_key();
    let (s, mut child, base) = child_stack(&db, &master).await;
    let http = reqwest::Client::new();
    if !db.is_postgres() {
        let file = db.url.strip_prefix("sqlite:").unwrap().to_owned();
        for path in [file.clone(), format!("{file}-wal"), format!("{file}-shm")] {
            assert_private(std::path::Path::new(&path));
        }
    }

    let outage = Outage::start(&db).await;
    const CALLS: u64 = 300;
    for i in 0..CALLS {
        assert_eq!(chat(&http, &base, &s.key).await, 200, "call {i}");
        if i % 50 == 0 {
            // Spread over several backoff periods of the writer.
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
    // Far more than one gather interval (20 ms) for the last answered records to reach disk.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spill = db.data_dir().join("usage-spill.jsonl");
    assert_private(&spill);
    child.kill();
    outage.end().await;
    assert_eq!(
        rows(&db, s.org).await as u64,
        2 * WARM_UP_CALLS,
        "nothing was written during the outage"
    );

    let again = flo2::start(&config(&db, &master), Mode::Serve)
        .await
        .unwrap();
    let want = 2 * WARM_UP_CALLS + CALLS;
    let got = wait_for_rows(&db, s.org, want as usize).await;
    let log = std::fs::read_to_string(db.data_dir().join("flo2-child.log")).unwrap_or_default();
    assert_eq!(
        got as u64, want,
        "every answered call has its usage row after the crash; child log:\n{log}"
    );
    again.shutdown().await;
    assert!(!spill.exists(), "the spill file is removed once replayed");
}

/// A metric's value from `/metrics` text (0 if absent).
fn metric(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Holds the usage table locked for a while, so writes wait (on SQLite well within its busy
/// timeout) and then succeed: a busy database, not an outage.
async fn lock_usage_for(url: String, postgres: bool, hold: Duration) {
    use sqlx::Connection as _;
    if postgres {
        let conn = sqlx::PgConnection::connect(&url).await.unwrap();
        hold_lock(
            conn,
            "BEGIN; LOCK TABLE usage_records IN ACCESS EXCLUSIVE MODE",
            hold,
        )
        .await;
    } else {
        let conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        hold_lock(conn, "BEGIN EXCLUSIVE", hold).await;
    }
}

/// Runs `begin` on `conn`, waits `hold`, commits.
async fn hold_lock<C>(mut conn: C, begin: &str, hold: Duration)
where
    for<'c> &'c mut C: sqlx::Executor<'c>,
{
    sqlx::raw_sql(begin).execute(&mut conn).await.unwrap();
    tokio::time::sleep(hold).await;
    sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
}

/// A write that waits far longer than one gather interval, then succeeds: what arrives meanwhile
/// is journaled to disk (a crash would lose at most one interval) but stays in memory and is
/// written from there, and the journal is removed unread once everything is stored. Nothing is
/// spilled: a busy database costs an append per interval, not a round trip through the disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_write_journals_what_arrives_and_removes_the_journal_once_stored() {
    let db = TestDb::new().await;
    let master = common::master_key();
    let s = stack(&db, &master).await;
    let journal = db.data_dir().join("usage-spill.jsonl");
    let http = reqwest::Client::new();
    const CALLS: u64 = 30;
    let calls = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut seen_journal = false;
        for i in 0..CALLS {
            assert_eq!(chat(&http, &s.base, &s.key).await, 200, "call {i}");
            tokio::time::sleep(Duration::from_millis(20)).await;
            seen_journal |= journal.exists();
        }
        seen_journal
    };
    let ((), seen_journal) = tokio::join!(
        lock_usage_for(
            db.url.clone(),
            db.is_postgres(),
            Duration::from_millis(1500)
        ),
        calls
    );
    assert!(
        seen_journal,
        "the journal was written while the write waited"
    );
    let want = WARM_UP_CALLS + CALLS;
    let got = wait_for_rows(&db, s.org, want as usize).await as u64;
    let metrics = reqwest::get(format!("{}/metrics", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(got, want, "{metrics}");
    assert!(
        metric(&metrics, "flo2_usage_records_journaled_total") > 0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "flo2_usage_records_spilled_total"),
        0,
        "nothing went through the disk"
    );
    for _ in 0..50 {
        if !journal.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !journal.exists(),
        "the journal is removed once all it held is stored"
    );
    s.server.shutdown().await;
}

/// SIGKILL while a write waits on a locked table (the database is busy, not down): what was
/// answered is in the journal, and the next start stores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_a_stalled_write_loses_no_answered_usage() {
    let db = TestDb::new().await;
    let master = common::master_key();
    let (s, mut child, base) = child_stack(&db, &master).await;
    let http = reqwest::Client::new();
    let before = 2 * WARM_UP_CALLS;
    const CALLS: u64 = 40;
    let calls = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for i in 0..CALLS {
            assert_eq!(chat(&http, &base, &s.key).await, 200, "call {i}");
        }
        // Far more than one gather interval (20 ms) for the last answers to be journaled.
        tokio::time::sleep(Duration::from_millis(300)).await;
        child.kill();
    };
    tokio::join!(
        lock_usage_for(
            db.url.clone(),
            db.is_postgres(),
            Duration::from_millis(2500)
        ),
        calls
    );
    let again = flo2::start(&config(&db, &master), Mode::Serve)
        .await
        .unwrap();
    let want = before + CALLS;
    let got = wait_for_rows(&db, s.org, want as usize).await as u64;
    assert_eq!(
        got, want,
        "every answered call has its usage row after the crash"
    );
    again.shutdown().await;
}
