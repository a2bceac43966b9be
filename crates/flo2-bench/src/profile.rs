//! `flo2-bench profile [N]`: a steady, sequential workload for profilers, one phase per request
//! path, so each path's cost per request can be read off a profile without the host's noise.
//!
//! Timed figures on a shared 2-core VM swing with the neighbours' load (a fifth of the CPU was
//! stolen in some runs); an instruction count does not. Run flo2 under callgrind through
//! `FLO2_BENCH_FLO2` (a wrapper script that `exec`s `valgrind --tool=callgrind … flo2 "$@"`) and
//! set `FLO2_BENCH_PROFILE_HOOK` to a shell command run after each phase with `FLO2_PHASE` and
//! `FLO2_PID` in its environment, e.g. `callgrind_control --dump="$FLO2_PHASE" "$FLO2_PID"`:
//! each measured phase then has its own dump, whose total divided by N is that path's
//! instructions per request, usage writing included (a phase ends once the usage queue is
//! empty). `bench/profile.sh` does all of this. Without a hook, the phases' CPU time per request
//! is printed.

use std::process::Command;
use std::time::Instant;

use bytes::Bytes;

use crate::setup::{start_fake, start_flo2, Flo2, CROSS_FORMAT_MODEL, SAME_FORMAT_MODEL};
use crate::{body, env};

/// Requests per path before its measured phase: connections opened, caches filled, statements
/// prepared.
const WARM_UP: u64 = 50;

pub async fn run(requests: u64) {
    let flo2_bin = env("FLO2_BENCH_FLO2", "target/release/flo2");
    let fake_bin = env("FLO2_BENCH_FAKE", "target/release/flo2-fake-upstream");
    let hook = std::env::var("FLO2_BENCH_PROFILE_HOOK").ok();
    let http = reqwest::Client::new();
    let (_fake_proc, fake_port) = start_fake(&http, &fake_bin).await;
    let fake = format!("http://127.0.0.1:{fake_port}");
    let flo2 = start_flo2(&http, &flo2_bin, &fake, None, 10, 10, &[]).await;
    let url = format!("{}/v1/chat/completions", flo2.base);
    // route-1 is a `priority` route whose first target is OpenAI: routing, then same-format.
    let paths = [
        ("same-format", body(SAME_FORMAT_MODEL, false)),
        ("cross-format", body(CROSS_FORMAT_MODEL, false)),
        ("streaming", body(SAME_FORMAT_MODEL, true)),
        ("route", body("route-1", false)),
    ];
    println!("phase\trequests\tflo2 CPU µs/request\twall µs/request");
    for (name, request) in paths {
        phase(&http, &flo2, &url, &request, WARM_UP).await;
        flo2.usage_drained(&http).await;
        after_phase(hook.as_deref(), &format!("warm-{name}"), &flo2);
        let (_, cpu_before) = flo2.proc.stats();
        let started = Instant::now();
        phase(&http, &flo2, &url, &request, requests).await;
        let wall = started.elapsed();
        flo2.usage_drained(&http).await;
        let (_, cpu_after) = flo2.proc.stats();
        after_phase(hook.as_deref(), name, &flo2);
        println!(
            "{name}\t{requests}\t{:.0}\t{:.0}",
            (cpu_after - cpu_before) * 1e6 / requests as f64,
            wall.as_secs_f64() * 1e6 / requests as f64
        );
    }
}

/// `n` requests one after another, each read to its end.
async fn phase(http: &reqwest::Client, flo2: &Flo2, url: &str, request: &Bytes, n: u64) {
    for _ in 0..n {
        let resp = http
            .post(url)
            .bearer_auth(&flo2.keys[0])
            .header("content-type", "application/json")
            .body(request.clone())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let answer = resp.bytes().await.unwrap();
        assert!(
            status.is_success(),
            "{status} {}",
            String::from_utf8_lossy(&answer)
        );
    }
}

fn after_phase(hook: Option<&str>, phase: &str, flo2: &Flo2) {
    let Some(hook) = hook else { return };
    let status = Command::new("sh")
        .arg("-c")
        .arg(hook)
        .env("FLO2_PHASE", phase)
        .env("FLO2_PID", flo2.proc.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "the profile hook failed after {phase}");
}
