//! flo2's benchmark (see `bench/run.sh`): starts the fake upstream and flo2 (release builds) on
//! SQLite, and on PostgreSQL when `FLO2_BENCH_DATABASE_URL` is set, then measures for the full
//! request path (key auth, resolution, translation, cost, usage record):
//!
//! - added latency p50/p90/p99/p99.9 versus calling the fake directly, at fixed request rates
//!   (open loop, so a slow server cannot slow the arrivals), same-format and cross-format;
//! - streaming time-to-first-byte overhead;
//! - maximum throughput with 64 connections (closed loop), flo2 and the fake alone;
//! - flo2's peak RSS and CPU time per request (from /proc);
//! - usage rows written versus requests sent.
//!
//! It writes `docs/benchmarks.md` and `docs/benchmarks.json`. A benchmark, not a test: it
//! reports figures and never fails on them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A 1 KB chat request.
fn body(model: &str, stream: bool) -> Value {
    let filler = "benchmark ".repeat(90);
    json!({"model": model, "max_tokens": 64, "stream": stream,
        "messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": filler}]})
}

#[derive(Clone, Copy, Debug)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
}

fn percentiles(mut micros: Vec<u64>) -> Percentiles {
    micros.sort_unstable();
    let at = |q: f64| {
        if micros.is_empty() {
            return 0.0;
        }
        let i = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
        micros[i] as f64
    };
    Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
    }
}

/// Sends `rate` requests per second for `secs` seconds (open loop); returns latencies in µs
/// (to the whole answer, or to the first body byte when `first_byte`) and the error count.
async fn fixed_rate(
    http: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    payload: &Value,
    rate: u64,
    secs: u64,
    first_byte: bool,
) -> (Vec<u64>, u64) {
    let lat = Arc::new(Mutex::new(Vec::with_capacity((rate * secs) as usize)));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity((rate * secs) as usize);
    let payload = Arc::new(serde_json::to_vec(payload).unwrap());
    for _ in 0..rate * secs {
        tick.tick().await;
        let (http, url, key, payload, lat, errors) = (
            http.clone(),
            url.to_owned(),
            key.map(str::to_owned),
            Arc::clone(&payload),
            Arc::clone(&lat),
            Arc::clone(&errors),
        );
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut req = http
                .post(&url)
                .header("content-type", "application/json")
                .body((*payload).clone());
            if let Some(k) = key {
                req = req.bearer_auth(k);
            }
            match req.send().await {
                Ok(mut resp) if resp.status().is_success() => {
                    let mut first = None;
                    while let Ok(Some(_)) = resp.chunk().await {
                        first.get_or_insert_with(|| started.elapsed());
                    }
                    let took = if first_byte {
                        first.unwrap_or_else(|| started.elapsed())
                    } else {
                        started.elapsed()
                    };
                    lat.lock().unwrap().push(took.as_micros() as u64);
                }
                _ => {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let v = std::mem::take(&mut *lat.lock().unwrap());
    (v, errors.load(std::sync::atomic::Ordering::Relaxed))
}

/// Closed loop with `conns` workers for `secs`: completed requests per second.
async fn max_throughput(
    http: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    payload: &Value,
    conns: usize,
    secs: u64,
) -> (f64, u64) {
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let payload = Arc::new(serde_json::to_vec(payload).unwrap());
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            let (http, url, key, payload, done) = (
                http.clone(),
                url.to_owned(),
                key.map(str::to_owned),
                Arc::clone(&payload),
                Arc::clone(&done),
            );
            tokio::spawn(async move {
                while Instant::now() < until {
                    let mut req = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .body((*payload).clone());
                    if let Some(k) = &key {
                        req = req.bearer_auth(k);
                    }
                    if let Ok(resp) = req.send().await {
                        if resp.status().is_success() && resp.bytes().await.is_ok() {
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let n = done.load(std::sync::atomic::Ordering::Relaxed);
    (n as f64 / secs as f64, n)
}

/// (peak RSS in KiB, CPU seconds) of a process, from /proc.
fn proc_stats(pid: u32) -> (u64, f64) {
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
    // After the command name: state is field 0, utime 11, stime 12; the clock ticks 100 Hz on Linux.
    (hwm, (ticks(11) + ticks(12)) / 100.0)
}

async fn post(http: &reqwest::Client, url: &str, token: Option<&str>, body: Value) -> Value {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {v}");
    v
}

struct Flo2 {
    proc: Proc,
    base: String,
    key: String,
    token: String,
}

async fn start_flo2(
    http: &reqwest::Client,
    bin: &str,
    fake: &str,
    database_url: Option<&str>,
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
        .stdout(Stdio::null());
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
    let mut proc = Proc(cmd.spawn().unwrap());
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..300 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!("flo2 exited during start ({status})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let email = format!(
        "bench-{}@example.com",
        chrono::Utc::now().timestamp_micros()
    );
    let signup = post(
        http,
        &format!("{base}/api/v1/signup"),
        None,
        json!({"email": email, "password": "a long benchmark passphrase", "organization": "Bench"}),
    )
    .await;
    let token = signup["token"].as_str().unwrap().to_owned();
    for provider in ["openai", "anthropic"] {
        post(http, &format!("{base}/api/v1/provider-keys"), Some(&token), json!({"provider": provider, "name": provider, "api_key": "sk-bench-0123456789", "base_url": format!("{fake}/v1")})).await;
    }
    let team = post(
        http,
        &format!("{base}/api/v1/teams"),
        Some(&token),
        json!({"name": "bench"}),
    )
    .await;
    let key = post(
        http,
        &format!("{base}/api/v1/api-keys"),
        Some(&token),
        json!({"name": "bench", "team_id": team["id"]}),
    )
    .await;
    Flo2 {
        proc,
        base,
        key: key["key"].as_str().unwrap().to_owned(),
        token,
    }
}

fn added(flo2: Percentiles, direct: Percentiles) -> Percentiles {
    Percentiles {
        p50: flo2.p50 - direct.p50,
        p90: flo2.p90 - direct.p90,
        p99: flo2.p99 - direct.p99,
        p999: flo2.p999 - direct.p999,
    }
}

#[tokio::main]
async fn main() {
    let flo2_bin = env("FLO2_BENCH_FLO2", "target/release/flo2");
    let fake_bin = env("FLO2_BENCH_FAKE", "target/release/flo2-fake-upstream");
    let secs: u64 = env("FLO2_BENCH_SECS", "10").parse().unwrap();
    let rates: Vec<u64> = env("FLO2_BENCH_RATES", "500,2000")
        .split(',')
        .map(|r| r.trim().parse().unwrap())
        .collect();
    let mut databases = vec![("SQLite".to_owned(), None)];
    if let Ok(url) = std::env::var("FLO2_BENCH_DATABASE_URL") {
        databases.push(("PostgreSQL".to_owned(), Some(url)));
    }
    let mut fake_cmd = Command::new(&fake_bin);
    let fake_port = free_port();
    fake_cmd
        .arg(format!("127.0.0.1:{fake_port}"))
        .stdout(Stdio::null());
    let _fake = Proc(fake_cmd.spawn().unwrap());
    let fake = format!("http://127.0.0.1:{fake_port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut report = Vec::new();
    for (db, url) in &databases {
        eprintln!("== {db}");
        let f = start_flo2(&http, &flo2_bin, &fake, url.as_deref()).await;
        let mut sent = 0u64;
        let mut rows = Vec::new();
        // Warm up connections and caches.
        let _ = fixed_rate(
            &http,
            &format!("{}/v1/chat/completions", f.base),
            Some(&f.key),
            &body("openai/gpt-4o-mini", false),
            200,
            2,
            false,
        )
        .await;
        sent += 400;
        for &rate in &rates {
            let direct = fixed_rate(
                &http,
                &format!("{fake}/v1/chat/completions"),
                None,
                &body("gpt-4o-mini", false),
                rate,
                secs,
                false,
            )
            .await;
            for (label, model) in [
                ("same-format (OpenAI→OpenAI)", "openai/gpt-4o-mini"),
                (
                    "cross-format (OpenAI→Anthropic)",
                    "anthropic/claude-haiku-4-5",
                ),
            ] {
                let (lat, errors) = fixed_rate(
                    &http,
                    &format!("{}/v1/chat/completions", f.base),
                    Some(&f.key),
                    &body(model, false),
                    rate,
                    secs,
                    false,
                )
                .await;
                sent += rate * secs;
                let (p_flo2, p_direct) = (percentiles(lat), percentiles(direct.0.clone()));
                eprintln!(
                    "{db} {rate}/s {label}: added p50 {:.0}µs p99 {:.0}µs, errors {errors}",
                    p_flo2.p50 - p_direct.p50,
                    p_flo2.p99 - p_direct.p99
                );
                rows.push(json!({"rate": rate, "path": label, "errors": errors, "direct_us": pct(p_direct), "flo2_us": pct(p_flo2), "added_us": pct(added(p_flo2, p_direct))}));
            }
        }
        // Streaming: time to first byte, flo2 versus direct, at 200/s.
        let direct = fixed_rate(
            &http,
            &format!("{fake}/v1/chat/completions"),
            None,
            &body("gpt-4o-mini", true),
            200,
            secs,
            true,
        )
        .await;
        let (lat, errors) = fixed_rate(
            &http,
            &format!("{}/v1/chat/completions", f.base),
            Some(&f.key),
            &body("openai/gpt-4o-mini", true),
            200,
            secs,
            true,
        )
        .await;
        sent += 200 * secs;
        let ttfb = added(percentiles(lat), percentiles(direct.0));
        eprintln!(
            "{db} streaming TTFB added p50 {:.0}µs p99 {:.0}µs, errors {errors}",
            ttfb.p50, ttfb.p99
        );
        // Maximum throughput with 64 connections.
        let (direct_rps, _) = max_throughput(
            &http,
            &format!("{fake}/v1/chat/completions"),
            None,
            &body("gpt-4o-mini", false),
            64,
            secs,
        )
        .await;
        let (flo2_rps, n) = max_throughput(
            &http,
            &format!("{}/v1/chat/completions", f.base),
            Some(&f.key),
            &body("openai/gpt-4o-mini", false),
            64,
            secs,
        )
        .await;
        sent += n;
        eprintln!(
            "{db} max throughput: fake alone {direct_rps:.0}/s, through flo2 {flo2_rps:.0}/s"
        );
        let (rss_kib, cpu_secs) = proc_stats(f.proc.0.id());
        // Usage rows versus requests: wait for the pipeline to flush.
        let mut calls = 0;
        for _ in 0..100 {
            let usage: Value = http
                .get(format!("{}/api/v1/usage?group_by=provider", f.base))
                .bearer_auth(&f.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            calls = usage["totals"]["calls"].as_u64().unwrap_or(0);
            if calls >= sent {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "{db} usage rows {calls} for {sent} requests; peak RSS {} MiB; CPU {:.1} µs/request",
            rss_kib / 1024,
            cpu_secs * 1e6 / sent as f64
        );
        report.push(json!({"database": db, "latency": rows, "streaming_ttfb_added_us": pct(ttfb), "streaming_errors": errors,
            "max_throughput_rps": {"fake_alone": direct_rps, "through_flo2": flo2_rps, "ratio": flo2_rps / direct_rps},
            "peak_rss_mib": rss_kib as f64 / 1024.0, "cpu_us_per_request": cpu_secs * 1e6 / sent as f64,
            "requests_sent": sent, "usage_rows": calls}));
    }
    write_report(&report, secs);
}

fn pct(p: Percentiles) -> Value {
    json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "p99.9": p.p999})
}

fn write_report(report: &[Value], secs: u64) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let doc = json!({"date": date, "machine": {"cpus": cpus, "cpu": cpu_model}, "seconds_per_run": secs, "results": report});
    std::fs::write(
        "docs/benchmarks.json",
        serde_json::to_string_pretty(&doc).unwrap(),
    )
    .unwrap();
    let mut md = format!("# Benchmarks\n\n{date} · {cpus} CPUs ({cpu_model}) · {secs} s per measurement · load generator, fake upstream and flo2 on the same machine (release builds). Produced by `bash bench/run.sh`; the raw figures are in `benchmarks.json`.\n\nAdded latency is flo2's percentile minus the fake upstream's own at the same rate (open-loop arrivals, 1 KB bodies, non-streaming). Negative values are noise.\n");
    for r in report {
        md.push_str(&format!("\n## {}\n\n| rate | path | added p50 | p90 | p99 | p99.9 | errors |\n|---|---|---|---|---|---|---|\n", r["database"].as_str().unwrap_or("")));
        for row in r["latency"].as_array().into_iter().flatten() {
            let a = &row["added_us"];
            md.push_str(&format!(
                "| {}/s | {} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {} |\n",
                row["rate"],
                row["path"].as_str().unwrap_or(""),
                a["p50"].as_f64().unwrap_or(0.0),
                a["p90"].as_f64().unwrap_or(0.0),
                a["p99"].as_f64().unwrap_or(0.0),
                a["p99.9"].as_f64().unwrap_or(0.0),
                row["errors"]
            ));
        }
        let t = &r["streaming_ttfb_added_us"];
        let m = &r["max_throughput_rps"];
        md.push_str(&format!(
            "\n- streaming time-to-first-byte added: p50 {:.0} µs, p99 {:.0} µs (200/s)\n- maximum throughput, 64 connections: {:.0} req/s through flo2, {:.0} req/s from the fake alone ({:.0} %)\n- flo2 peak RSS {:.1} MiB; CPU {:.0} µs per request\n- usage rows {} for {} requests sent\n",
            t["p50"].as_f64().unwrap_or(0.0), t["p99"].as_f64().unwrap_or(0.0), m["through_flo2"].as_f64().unwrap_or(0.0), m["fake_alone"].as_f64().unwrap_or(0.0), m["ratio"].as_f64().unwrap_or(0.0) * 100.0,
            r["peak_rss_mib"].as_f64().unwrap_or(0.0), r["cpu_us_per_request"].as_f64().unwrap_or(0.0), r["usage_rows"], r["requests_sent"]
        ));
    }
    std::fs::write("docs/benchmarks.md", md).unwrap();
    eprintln!("wrote docs/benchmarks.md and docs/benchmarks.json");
}
