//! Starting the processes under test and configuring a tenant the size the targets name.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

/// A child process, killed when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// Spawns `cmd` with stdout discarded.
    pub fn spawn(cmd: &mut Command) -> Self {
        Self(cmd.stdout(Stdio::null()).spawn().expect("spawn"))
    }

    /// (peak RSS in KiB, CPU seconds used so far), from /proc.
    pub fn stats(&self) -> (u64, f64) {
        let pid = self.0.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // After the command name: state is field 0, utime 11, stime 12; the clock ticks 100 Hz.
        (hwm, (ticks(11) + ticks(12)) / 100.0)
    }

    /// The scheduler's counters so far, summed over the process's live threads. A thread that
    /// exits takes its counts with it, so a later reading can be lower than an earlier one.
    pub fn sched(&self) -> Sched {
        let pid = self.0.id();
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Sched::default();
        };
        let mut total = Sched::default();
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            total.switches += status
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
                .sum::<u64>();
            // `schedstat`: time on a CPU, time runnable but waiting for one, timeslices (ns).
            let schedstat =
                std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total.waited_ns += schedstat
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
        total
    }
}

/// A process's scheduler counters at one moment.
///
/// Every context switch is a sleep and a wake-up, and on a VM the wake-up is the costliest part
/// of a request: a woken thread waits for the hypervisor to run an idle virtual CPU (or for a
/// busy one) before it runs. `waited_ns` is that wait, summed (the kernel's run delay).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sched {
    pub switches: u64,
    pub waited_ns: u64,
}

impl Sched {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            switches: self.switches.saturating_sub(earlier.switches),
            waited_ns: self.waited_ns.saturating_sub(earlier.waited_ns),
        }
    }

    /// Adds `other`'s counts (segments of one row).
    pub fn add(&mut self, other: Self) {
        self.switches += other.switches;
        self.waited_ns += other.waited_ns;
    }

    /// Per request: (context switches, µs spent waiting for a CPU).
    pub fn per_request(self, requests: u64) -> (f64, f64) {
        let n = requests.max(1) as f64;
        (
            self.switches as f64 / n,
            self.waited_ns as f64 / n / 1_000.0,
        )
    }
}

/// The machine's CPU time so far, from `/proc/stat`: ticks stolen by the hypervisor (a shared
/// VM's neighbours running on its cores), and all ticks.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTicks {
    stolen: u64,
    all: u64,
}

impl CpuTicks {
    pub fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        // cpu user nice system idle iowait irq softirq steal (guest time is inside user).
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|v| v.parse().ok())
            .collect();
        Self {
            stolen: fields.get(7).copied().unwrap_or(0),
            all: fields.iter().sum(),
        }
    }

    /// The percentage of the machine's CPU time stolen since `earlier`.
    pub fn stolen_since(self, earlier: Self) -> f64 {
        let all = self.all.saturating_sub(earlier.all);
        if all == 0 {
            return 0.0;
        }
        100.0 * self.stolen.saturating_sub(earlier.stolen) as f64 / all as f64
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the fake upstream on a free port (without recording requests) and waits until it
/// answers; returns it and its port.
pub async fn start_fake(http: &reqwest::Client, bin: &str) -> (Proc, u16) {
    let port = free_port();
    let mut proc = Proc::spawn(
        Command::new(bin)
            .arg(format!("127.0.0.1:{port}"))
            .arg("--no-record"),
    );
    wait_ready(
        http,
        &format!("http://127.0.0.1:{port}/v1/models"),
        &mut proc,
    )
    .await;
    (proc, port)
}

/// Waits until `url` answers 2xx, or panics when `proc` exits first.
pub async fn wait_ready(http: &reqwest::Client, url: &str, proc: &mut Proc) {
    for _ in 0..300 {
        if http
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success() || r.status().is_client_error())
        {
            return;
        }
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!("{url}: the process exited during start ({status})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never became ready");
}

async fn send(req: reqwest::RequestBuilder, token: Option<&str>, body: Value) -> Value {
    let mut req = req.json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status} {v}");
    v
}

/// A PostgreSQL database of the run's own. flo2 refuses a database whose secrets are encrypted
/// under another master key, and every run generates a fresh key, so a reused database would
/// stop the second run.
pub struct FreshPostgres {
    base: String,
    name: String,
    /// Where flo2 connects.
    pub url: String,
}

impl FreshPostgres {
    pub async fn create(base: &str) -> Self {
        use sqlx::Connection as _;
        let name = format!(
            "flo2_bench_{}_{}",
            std::process::id(),
            chrono::Utc::now().timestamp()
        );
        let mut admin = sqlx::PgConnection::connect(base)
            .await
            .expect("FLO2_BENCH_DATABASE_URL: PostgreSQL is unreachable");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let _ = admin.close().await;
        Self {
            url: flo2_testkit::postgres::with_database(base, &name),
            base: base.to_owned(),
            name,
        }
    }

    /// Drops the database (after flo2 has stopped).
    pub async fn remove(self) {
        use sqlx::Connection as _;
        if let Ok(mut admin) = sqlx::PgConnection::connect(&self.base).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await;
            let _ = admin.close().await;
        }
    }
}

/// flo2 under test, with one tenant configured.
pub struct Flo2 {
    pub proc: Proc,
    pub base: String,
    /// The dashboard session token (reads usage at the end).
    pub token: String,
    /// Its gateway keys; the first is the one the single-key runs use.
    pub keys: Vec<Arc<str>>,
    /// Its route names.
    pub routes: Vec<String>,
}

/// The models every run calls: one per wire family.
pub const SAME_FORMAT_MODEL: &str = "openai/gpt-4o-mini";
pub const CROSS_FORMAT_MODEL: &str = "anthropic/claude-haiku-4-5";

/// Starts flo2 on `database_url` (SQLite in a fresh data directory when `None`) and configures a
/// tenant with provider keys pointing at `fake`, `keys` gateway keys and `routes` routes.
pub async fn start_flo2(
    http: &reqwest::Client,
    bin: &str,
    fake: &str,
    database_url: Option<&str>,
    keys: usize,
    routes: usize,
    env: &[(&str, String)],
) -> Flo2 {
    let data = std::env::temp_dir().join(format!("flo2-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg("serve")
        .env("FLO2_LISTEN", format!("127.0.0.1:{port}"))
        .env("FLO2_DATA_DIR", &data)
        .env("FLO2_ALLOW_PRIVATE_UPSTREAMS", "true")
        .env("FLO2_LOG", "error")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    if let Some(url) = database_url {
        // A shared store needs an explicit master key; a fresh one per run.
        let key = Command::new(bin)
            .args(["master-key", "generate"])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        cmd.env("FLO2_DATABASE_URL", url).env(
            "FLO2_MASTER_KEY",
            String::from_utf8_lossy(&key.stdout).trim(),
        );
    }
    let mut proc = Proc::spawn(&mut cmd);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(http, &format!("{base}/readyz"), &mut proc).await;
    let email = format!(
        "bench-{}@example.com",
        chrono::Utc::now().timestamp_micros()
    );
    let signup = send(
        http.post(format!("{base}/api/v1/signup")),
        None,
        json!({"email": email, "password": "a long benchmark passphrase", "organization": "Bench"}),
    )
    .await;
    let token = signup["token"].as_str().unwrap().to_owned();
    for provider in ["openai", "anthropic"] {
        send(http.post(format!("{base}/api/v1/provider-keys")), Some(&token),
            json!({"provider": provider, "name": provider, "api_key": "sk-bench-0123456789", "base_url": format!("{fake}/v1")})).await;
    }
    let team = send(
        http.post(format!("{base}/api/v1/teams")),
        Some(&token),
        json!({"name": "bench"}),
    )
    .await;
    let team_id = team["id"].clone();

    // Keys and routes through the management API, eight at a time.
    let mut workers = tokio::task::JoinSet::new();
    const WORKERS: usize = 8;
    for w in 0..WORKERS {
        let (http, base, token, team_id) =
            (http.clone(), base.clone(), token.clone(), team_id.clone());
        workers.spawn(async move {
            let mut made = Vec::new();
            for i in (w..keys).step_by(WORKERS) {
                let key = send(
                    http.post(format!("{base}/api/v1/api-keys")),
                    Some(&token),
                    json!({"name": format!("bench-{i}"), "team_id": team_id}),
                )
                .await;
                made.push((i, Arc::<str>::from(key["key"].as_str().unwrap())));
            }
            for i in (w..routes).step_by(WORKERS) {
                // Every strategy that makes one upstream call per request, alternately.
                let strategy = ["cheapest", "priority", "fastest", "weighted"][i % 4];
                let targets = json!([
                    {"provider": "openai", "model": "gpt-4o-mini"},
                    {"provider": "anthropic", "model": "claude-haiku-4-5"}
                ]);
                send(
                    http.put(format!("{base}/api/v1/routes/route-{i}")),
                    Some(&token),
                    json!({"strategy": strategy, "targets": targets}),
                )
                .await;
            }
            made
        });
    }
    let mut made = Vec::with_capacity(keys);
    while let Some(batch) = workers.join_next().await {
        made.extend(batch.unwrap());
    }
    made.sort_by_key(|(i, _)| *i);
    Flo2 {
        proc,
        base,
        token,
        keys: made.into_iter().map(|(_, k)| k).collect(),
        routes: (0..routes).map(|i| format!("route-{i}")).collect(),
    }
}

impl Flo2 {
    /// Waits (up to 30 s) until flo2 has written every queued usage record, so its background
    /// writes do not slow the next measurement of something else.
    pub async fn usage_drained(&self, http: &reqwest::Client) {
        for _ in 0..300 {
            let depth = metric(&self.metrics(http).await, "flo2_usage_queue_depth");
            if depth == Some(0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Usage records spilled to disk, and journaled while a write ran long, so far (0 if
    /// /metrics cannot be read).
    pub async fn usage_on_disk(&self, http: &reqwest::Client) -> (u64, u64) {
        let metrics = self.metrics(http).await;
        let counter = |name| metric(&metrics, name).unwrap_or(0);
        (
            counter("flo2_usage_records_spilled_total"),
            counter("flo2_usage_records_journaled_total"),
        )
    }

    /// flo2's `/metrics` text (empty if it cannot be read).
    pub async fn metrics(&self, http: &reqwest::Client) -> String {
        match http.get(format!("{}/metrics", self.base)).send().await {
            Ok(resp) => resp.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Usage rows recorded so far, waiting up to 20 s for the pipeline to reach `expected`.
    pub async fn usage_rows(&self, http: &reqwest::Client, expected: u64) -> u64 {
        let mut calls = 0;
        for _ in 0..100 {
            let usage: Value = http
                .get(format!("{}/api/v1/usage?group_by=provider", self.base))
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            calls = usage["totals"]["calls"].as_u64().unwrap_or(0);
            if calls >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        calls
    }
}

/// An unlabelled metric's value in Prometheus text (`None` if absent or unreadable).
fn metric(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
