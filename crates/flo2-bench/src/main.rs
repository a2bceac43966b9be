//! flo2's benchmark (see `bench/run.sh`). It starts the fake upstream, a bare hyper reverse proxy
//! (the floor) and flo2 (release builds) on SQLite, and on PostgreSQL when
//! `FLO2_BENCH_DATABASE_URL` is set, with a tenant of 10,000 gateway keys and 1,000 routes, then
//! measures for the full request path (key auth, resolution, translation, cost, usage record):
//!
//! - added latency p50/p90/p99/p99.9 versus calling the fake directly, at fixed request rates
//!   (open loop), same-format and cross-format, each row in alternating rounds with the fake and
//!   the bare proxy measured in the same rounds (see `rounds`), and flo2's own time per request
//!   from its overhead histogram;
//! - the same at 1,000 req/s spread over every key and route;
//! - streaming time-to-first-byte overhead, in rounds too;
//! - maximum throughput with 64 connections: fake alone, bare proxy, flo2;
//! - flo2's peak RSS and CPU time per request (from /proc);
//! - usage rows written versus requests flo2 handled (and sent);
//! - overload: ten times the sustainable rate against a slow upstream (see `overload`).
//!
//! `FLO2_BENCH_ONLY=overload` runs the overload row alone and prints it, leaving `docs/`
//! untouched.
//!
//! It writes `docs/benchmarks.md` and `docs/benchmarks.json`. A benchmark, not a test: it
//! reports figures and never fails on them.
//!
//! `flo2-bench proxy LISTEN UPSTREAM` runs the bare proxy alone (the benchmark spawns itself so).
//! `flo2-bench profile [N]` runs a sequential workload for profilers (see `profile`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod load;
mod overload;
mod profile;
mod proxy;
mod report;
mod rounds;
mod setup;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use load::{fixed_rate, max_throughput, Call, Load};
use report::{DbReport, Floor, LatencyRow};
use rounds::{OwnTime, Path, Rig};
use setup::{
    free_port, start_fake, start_flo2, wait_ready, CpuTicks, FreshPostgres, Proc,
    CROSS_FORMAT_MODEL, SAME_FORMAT_MODEL,
};

/// The rate the scale run exercises every key and route at.
const SCALE_RATE: u64 = 1_000;
const STREAM_RATE: u64 = 200;
const CONNECTIONS: u64 = 64;
/// Maximum-throughput rounds per database, each the bare proxy then flo2: the proxy's own
/// figure swings by a third between minutes on a shared VM, so flo2 is read against the proxy
/// measured beside it, as medians.
const THROUGHPUT_ROUNDS: usize = 3;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// A 1 KB chat request.
fn body(model: &str, stream: bool) -> Bytes {
    let filler = "benchmark ".repeat(90);
    let v = json!({"model": model, "max_tokens": 64, "stream": stream,
        "messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": filler}]});
    Bytes::from(serde_json::to_vec(&v).unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("proxy") {
        // The floor runs with as many worker threads as flo2 does (the same variable).
        let mut rt = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = std::env::var("FLO2_WORKER_THREADS")
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0)
        {
            rt.worker_threads(n);
        }
        let listen = args[2].parse().expect("proxy LISTEN UPSTREAM");
        rt.enable_all()
            .build()
            .unwrap()
            .block_on(proxy::run(listen, args[3].clone()));
    } else if args.get(1).map(String::as_str) == Some("profile") {
        let requests = args
            .get(2)
            .map_or(2_000, |n| n.parse().expect("profile [N]"));
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(profile::run(requests));
    } else {
        tokio::runtime::Runtime::new().unwrap().block_on(bench());
    }
}

async fn bench() {
    let run_started = CpuTicks::now();
    let flo2_bin = env("FLO2_BENCH_FLO2", "target/release/flo2");
    let fake_bin = env("FLO2_BENCH_FAKE", "target/release/flo2-fake-upstream");
    let secs: u64 = env("FLO2_BENCH_SECS", "10").parse().unwrap();
    let rounds: usize = env("FLO2_BENCH_ROUNDS", "3")
        .parse::<usize>()
        .unwrap()
        .max(1);
    // A row's measurement is split over its rounds, so the run's length does not grow with them.
    let segment = Duration::from_millis(secs * 1000 / rounds as u64);
    let rates: Vec<u64> = env("FLO2_BENCH_RATES", "500,1000,2000")
        .split(',')
        .map(|r| r.trim().parse().unwrap())
        .collect();
    // The scale the targets name: 10,000 gateway keys and 1,000 routes in one tenant.
    let keys: usize = env("FLO2_BENCH_KEYS", "10000").parse().unwrap();
    let routes: usize = env("FLO2_BENCH_ROUTES", "1000").parse().unwrap();
    let mut databases = vec![("SQLite".to_owned(), None)];
    if let Ok(url) = std::env::var("FLO2_BENCH_DATABASE_URL") {
        databases.push(("PostgreSQL".to_owned(), Some(url)));
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();

    let (_fake_proc, fake_port) = start_fake(&http, &fake_bin).await;
    let fake = format!("http://127.0.0.1:{fake_port}");
    if std::env::var("FLO2_BENCH_ONLY").as_deref() == Ok("overload") {
        let row = overload::run(&http, &flo2_bin, &fake, secs).await;
        println!("{}", row.md());
        for (target, figure, ok) in row.targets() {
            println!(
                "- {target}: {figure} ({})",
                if ok { "met" } else { "not met" }
            );
        }
        return;
    }
    let proxy_port = free_port();
    let mut proxy_proc = Proc::spawn(
        Command::new(std::env::current_exe().unwrap())
            .arg("proxy")
            .arg(format!("127.0.0.1:{proxy_port}"))
            .arg(format!("127.0.0.1:{fake_port}")),
    );
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    wait_ready(&http, &format!("{proxy}/v1/models"), &mut proxy_proc).await;

    // The floor: the fake alone and behind the bare proxy.
    eprintln!("== floor: fake upstream alone and behind a bare hyper proxy");
    let direct_url = format!("{fake}/v1/chat/completions");
    let proxy_url = format!("{proxy}/v1/chat/completions");
    let plain = body("gpt-4o-mini", false);
    let mut floor = Floor::default();
    let _ = fixed_rate(
        &http,
        &Load::one(proxy_url.clone(), None, plain.clone()),
        500,
        Duration::from_secs(2),
        false,
    )
    .await;
    let (_, proxy_cpu_start) = proxy_proc.stats();
    let mut proxy_sent = 0;
    for &rate in rates.iter().chain([SCALE_RATE].iter()) {
        if floor.direct.iter().any(|(r, _)| *r == rate) {
            continue;
        }
        let direct = fixed_rate(
            &http,
            &Load::one(direct_url.clone(), None, plain.clone()),
            rate,
            Duration::from_secs(secs),
            false,
        )
        .await;
        let (sched, cpu) = (proxy_proc.sched(), CpuTicks::now());
        let behind = fixed_rate(
            &http,
            &Load::one(proxy_url.clone(), None, plain.clone()),
            rate,
            Duration::from_secs(secs),
            false,
        )
        .await;
        let stolen = CpuTicks::now().stolen_since(cpu);
        let (switches, waited_us) = proxy_proc.sched().since(sched).per_request(behind.sent);
        eprintln!(
            "{rate}/s: direct p50 {:.0}µs p99 {:.0}µs; bare proxy adds p50 {:.0}µs p99 {:.0}µs, {switches:.2} context switches and {waited_us:.0}µs waiting for a CPU per request, {stolen:.1} % CPU stolen",
            direct.latency.p50,
            direct.latency.p99,
            behind.latency.p50 - direct.latency.p50,
            behind.latency.p99 - direct.latency.p99
        );
        floor.direct.push((rate, direct.latency));
        proxy_sent += behind.sent;
        floor.proxy.push(report::ProxyRow {
            rate,
            latency: behind.latency,
            errors: behind.errors,
            switches,
            waited_us,
            stolen,
        });
    }
    let streamed = body("gpt-4o-mini", true);
    floor.stream_direct = fixed_rate(
        &http,
        &Load::one(direct_url.clone(), None, streamed.clone()),
        STREAM_RATE,
        Duration::from_secs(secs),
        true,
    )
    .await
    .latency;
    let stream_proxy = fixed_rate(
        &http,
        &Load::one(proxy_url.clone(), None, streamed.clone()),
        STREAM_RATE,
        Duration::from_secs(secs),
        true,
    )
    .await;
    proxy_sent += stream_proxy.sent;
    floor.stream_proxy = stream_proxy.latency;
    floor.fake_rps = max_throughput(
        &http,
        &Load::one(direct_url.clone(), None, plain.clone()),
        CONNECTIONS,
        secs,
    )
    .await
    .0;
    let (proxy_rps, n) = max_throughput(
        &http,
        &Load::one(proxy_url.clone(), None, plain.clone()),
        CONNECTIONS,
        secs,
    )
    .await;
    floor.proxy_rps = proxy_rps;
    proxy_sent += n;
    floor.proxy_cpu_us_per_request =
        (proxy_proc.stats().1 - proxy_cpu_start) * 1e6 / proxy_sent.max(1) as f64;
    eprintln!(
        "max throughput: fake alone {:.0}/s, bare proxy {:.0}/s; bare proxy CPU {:.0} µs/request",
        floor.fake_rps, floor.proxy_rps, floor.proxy_cpu_us_per_request
    );

    let mut reports = Vec::new();
    for (db, url) in &databases {
        eprintln!("== {db}: configuring {keys} keys and {routes} routes");
        let postgres = match url {
            Some(base) => Some(FreshPostgres::create(base).await),
            None => None,
        };
        let f = start_flo2(
            &http,
            &flo2_bin,
            &fake,
            postgres.as_ref().map(|p| p.url.as_str()),
            keys,
            routes,
            &[],
        )
        .await;
        let gateway = format!("{}/v1/chat/completions", f.base);
        let mut sent = 0u64;
        let mut r = DbReport {
            database: db.clone(),
            ..DbReport::default()
        };

        // Request i uses key i and route i (cyclically): every key and route, evenly.
        let scale = Load {
            url: gateway.clone(),
            calls: std::sync::Arc::new(
                (0..keys.max(routes))
                    .map(|i| Call {
                        key: Some(f.keys[i % f.keys.len()].clone()),
                        body: body(&f.routes[i % f.routes.len()], false),
                    })
                    .collect(),
            ),
        };
        // Warm-up: each key once, at the scale run's rate, so the caches hold what a
        // long-running replica's would.
        let warm = fixed_rate(
            &http,
            &scale,
            SCALE_RATE,
            Duration::from_secs((keys as u64).div_ceil(SCALE_RATE)),
            false,
        )
        .await;
        sent += warm.sent;
        eprintln!(
            "{db} warm-up: {} errors, p99 {:.0}µs; peak RSS so far {:.1} MiB",
            warm.errors,
            warm.latency.p99,
            f.proc.stats().0 as f64 / 1024.0
        );
        let (_, cpu_start) = f.proc.stats();
        let measured_from = sent;

        // Each row is measured in rounds, every round reading flo2 against the fake and the
        // bare proxy measured just before it (see `rounds`).
        let (direct_plain, proxy_plain) = (
            Load::one(direct_url.clone(), None, plain.clone()),
            Load::one(proxy_url.clone(), None, plain.clone()),
        );
        let rig = Rig {
            http: &http,
            direct: &direct_plain,
            proxy: &proxy_plain,
            proxy_proc: &proxy_proc,
            flo2: &f,
            rounds,
            segment,
        };
        let scale_path = Path {
            label: format!("{keys} keys × {routes} routes"),
            load: scale.clone(),
        };
        let measured = rig.measure(SCALE_RATE, &[scale_path], false).await;
        sent += measured.sent();
        r.scale = LatencyRow::from_rounds(SCALE_RATE, &measured).pop();
        r.peak_rss_scale_mib = f.proc.stats().0 as f64 / 1024.0;
        if let Some(row) = &r.scale {
            eprintln!(
                "{db} {}; peak RSS so far {:.1} MiB",
                row.summary(),
                r.peak_rss_scale_mib
            );
        }

        for &rate in &rates {
            let paths: Vec<Path> = [
                ("same-format (OpenAI→OpenAI)", SAME_FORMAT_MODEL),
                ("cross-format (OpenAI→Anthropic)", CROSS_FORMAT_MODEL),
            ]
            .into_iter()
            .map(|(label, model)| Path {
                label: label.to_owned(),
                load: Load::one(gateway.clone(), Some(&f.keys[0]), body(model, false)),
            })
            .collect();
            let measured = rig.measure(rate, &paths, false).await;
            sent += measured.sent();
            for row in LatencyRow::from_rounds(rate, &measured) {
                eprintln!("{db} {}", row.summary());
                r.latency.push(row);
            }
        }
        let (direct_stream, proxy_stream) = (
            Load::one(direct_url.clone(), None, streamed.clone()),
            Load::one(proxy_url.clone(), None, streamed.clone()),
        );
        let stream_rig = Rig {
            direct: &direct_stream,
            proxy: &proxy_stream,
            ..rig
        };
        let stream_path = Path {
            label: "streaming, time to first byte (OpenAI→OpenAI)".to_owned(),
            load: Load::one(
                gateway.clone(),
                Some(&f.keys[0]),
                body(SAME_FORMAT_MODEL, true),
            ),
        };
        let measured = stream_rig.measure(STREAM_RATE, &[stream_path], true).await;
        sent += measured.sent();
        r.stream = LatencyRow::from_rounds(STREAM_RATE, &measured).pop();
        if let Some(row) = &r.stream {
            eprintln!("{db} {}", row.summary());
        }
        let through_flo2 = Load::one(
            gateway.clone(),
            Some(&f.keys[0]),
            body(SAME_FORMAT_MODEL, false),
        );
        let through_proxy = Load::one(proxy_url.clone(), None, plain.clone());
        for round in 1..=THROUGHPUT_ROUNDS {
            f.usage_drained(&http).await;
            let (proxy_rps, _) = max_throughput(&http, &through_proxy, CONNECTIONS, secs).await;
            let (rps, n) = max_throughput(&http, &through_flo2, CONNECTIONS, secs).await;
            sent += n;
            eprintln!(
                "{db} max throughput, round {round}: bare proxy {proxy_rps:.0}/s, flo2 {rps:.0}/s ({:.0} %)",
                100.0 * rps / proxy_rps
            );
            r.proxy_rounds.push(proxy_rps);
            r.flo2_rounds.push(rps);
        }
        let (rss, cpu_end) = f.proc.stats();
        r.peak_rss_mib = rss as f64 / 1024.0;
        r.cpu_us_per_request = (cpu_end - cpu_start) * 1e6 / (sent - measured_from) as f64;
        r.requests_sent = sent;
        r.requests_handled = OwnTime::parse(&f.metrics(&http).await).count();
        r.usage_rows = f.usage_rows(&http, r.requests_handled).await;
        (r.usage_spilled, r.usage_journaled) = f.usage_on_disk(&http).await;
        eprintln!(
            "{db} usage rows {} for {sent} requests, {} handled by flo2 ({} spilled to disk, {} journaled); peak RSS {:.1} MiB; CPU {:.0} µs/request",
            r.usage_rows, r.requests_handled, r.usage_spilled, r.usage_journaled, r.peak_rss_mib, r.cpu_us_per_request
        );
        reports.push(r);
        drop(f);
        if let Some(postgres) = postgres {
            postgres.remove().await;
        }
    }
    drop(proxy_proc);
    let overload = overload::run(&http, &flo2_bin, &fake, secs).await;
    report::write(
        &floor,
        &reports,
        &overload,
        (secs, rounds),
        CpuTicks::now().stolen_since(run_started),
    );
}
