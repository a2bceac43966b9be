//! Nothing is lost: usage survives a database outage under load, a graceful shutdown under
//! load, and a shutdown during an outage (spilled to disk, replayed at the next start).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Outage, TestDb};
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
    let spilled: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("flo2_usage_records_spilled_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        spilled > 0,
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
