//! The overload row: ten times the sustainable rate against a slow upstream.
//!
//! A flo2 of its own runs with `FLO2_MAX_INFLIGHT` = [`MAX_INFLIGHT`], against the fake told to
//! answer after [`DELAY_MS`] (the `[[delay:MS]]` prompt marker), so it can sustain
//! `MAX_INFLIGHT / DELAY` requests per second. The row first measures accepted latency at
//! three quarters of that (nothing refused), then sends ten times that rate, and reports
//! accepted-request p99 at both, the share refused, the time to refuse and peak RSS. Targets:
//! refusals answered in under 1 ms at p99, accepted p99 within 10 % of the baseline's, and
//! RSS growth bounded by the in-flight cap (not by the offered load).

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::load::{fixed_rate, Load, Percentiles};
use crate::setup::{start_flo2, SAME_FORMAT_MODEL};

/// Requests in flight the overload flo2 admits.
pub const MAX_INFLIGHT: u32 = 64;
/// How long the slow upstream takes per answer.
pub const DELAY_MS: u64 = 500;
/// Bytes of RSS one admitted request may cost (the issue measured about 60 kB).
const PER_REQUEST_BYTES: f64 = 64.0 * 1024.0;
/// Connections, buffers and allocator slack, on top of the admitted requests.
const SLACK_MIB: f64 = 16.0;

/// The overload row's figures.
pub struct OverloadReport {
    /// What the gateway sustains: `MAX_INFLIGHT / DELAY`.
    pub sustainable_rate: u64,
    pub baseline_rate: u64,
    pub overload_rate: u64,
    /// Accepted requests' latency below the cap and at overload.
    pub baseline: Percentiles,
    pub accepted: Percentiles,
    pub sent: u64,
    pub accepted_n: u64,
    pub refused_n: u64,
    /// Failures that were neither answers nor refusals (should be 0).
    pub other_errors: u64,
    /// Time to a refusal's whole answer.
    pub refusal: Percentiles,
    /// Peak RSS after the baseline and after the overload, MiB.
    pub rss_baseline_mib: f64,
    pub rss_peak_mib: f64,
}

/// A 1 KB chat request the fake answers after [`DELAY_MS`].
fn slow_body() -> Bytes {
    let filler = "benchmark ".repeat(90);
    let v = json!({"model": SAME_FORMAT_MODEL, "max_tokens": 64, "stream": false,
        "messages": [{"role": "user", "content": format!("[[delay:{DELAY_MS}]] {filler}")}]});
    Bytes::from(serde_json::to_vec(&v).unwrap())
}

/// Runs the row: a fresh flo2 on SQLite (admission does not touch the database), `secs` per
/// measurement.
pub async fn run(http: &reqwest::Client, flo2_bin: &str, fake: &str, secs: u64) -> OverloadReport {
    let env = [
        ("FLO2_MAX_INFLIGHT", MAX_INFLIGHT.to_string()),
        // One tenant: its share is the whole gateway.
        ("FLO2_MAX_INFLIGHT_PER_ORG_PERCENT", "100".to_owned()),
    ];
    let f = start_flo2(http, flo2_bin, fake, None, 1, 0, &env).await;
    let load = Load::one(
        format!("{}/v1/chat/completions", f.base),
        Some(&f.keys[0]),
        slow_body(),
    );
    let sustainable_rate = u64::from(MAX_INFLIGHT) * 1000 / DELAY_MS;
    let baseline_rate = sustainable_rate * 3 / 4;
    let overload_rate = sustainable_rate * 10;
    let length = Duration::from_secs(secs);
    let baseline = fixed_rate(http, &load, baseline_rate, length, false).await;
    let rss_baseline_mib = f.proc.stats().0 as f64 / 1024.0;
    eprintln!(
        "overload baseline {baseline_rate}/s: accepted p99 {:.0}µs, {} errors; peak RSS {rss_baseline_mib:.1} MiB",
        baseline.latency.p99, baseline.errors
    );
    let over = fixed_rate(http, &load, overload_rate, length, false).await;
    let rss_peak_mib = f.proc.stats().0 as f64 / 1024.0;
    let accepted_n = over.sent - over.errors;
    let report = OverloadReport {
        sustainable_rate,
        baseline_rate,
        overload_rate,
        baseline: baseline.latency,
        accepted: over.latency,
        sent: over.sent,
        accepted_n,
        refused_n: over.refused,
        other_errors: over.errors - over.refused,
        refusal: over.refused_latency,
        rss_baseline_mib,
        rss_peak_mib,
    };
    eprintln!("overload {}", report.summary());
    report
}

impl OverloadReport {
    /// The share of requests refused, in percent.
    pub fn refused_percent(&self) -> f64 {
        100.0 * self.refused_n as f64 / self.sent.max(1) as f64
    }

    /// The RSS the row may reach: the baseline's plus the in-flight cap's worth, plus slack.
    fn rss_bound_mib(&self) -> f64 {
        self.rss_baseline_mib + f64::from(MAX_INFLIGHT) * PER_REQUEST_BYTES / 1048576.0 + SLACK_MIB
    }

    /// One line for the log: the overload rate's table row, with the baseline's p99.
    pub fn summary(&self) -> String {
        format!(
            "(baseline p99 {:.0} µs at {}/s) {}",
            self.baseline.p99,
            self.baseline_rate,
            self.overload_cells()
        )
    }

    /// The overload rate's row of the table.
    fn overload_cells(&self) -> String {
        format!(
            "| {}/s | {:.0} µs | {:.0} µs | {:.1} % ({} of {}) | {:.0} µs | {:.0} µs | {} | {:.1} MiB |",
            self.overload_rate,
            self.accepted.p50,
            self.accepted.p99,
            self.refused_percent(),
            self.refused_n,
            self.sent,
            self.refusal.p50,
            self.refusal.p99,
            self.other_errors,
            self.rss_peak_mib
        )
    }

    /// Every figure, for `benchmarks.json`.
    pub fn json(&self) -> Value {
        let pct =
            |p: Percentiles| json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "p99.9": p.p999});
        json!({"max_inflight": MAX_INFLIGHT, "upstream_delay_ms": DELAY_MS,
            "sustainable_rate": self.sustainable_rate, "baseline_rate": self.baseline_rate,
            "overload_rate": self.overload_rate, "baseline_accepted_us": pct(self.baseline),
            "accepted_us": pct(self.accepted), "sent": self.sent, "accepted": self.accepted_n,
            "refused": self.refused_n, "refused_percent": self.refused_percent(),
            "other_errors": self.other_errors, "refusal_us": pct(self.refusal),
            "peak_rss_mib_baseline": self.rss_baseline_mib, "peak_rss_mib": self.rss_peak_mib})
    }

    /// The row's section of `benchmarks.md`.
    pub fn md(&self) -> String {
        format!(
            "\n## Overload: 10× the sustainable rate against a slow upstream\n\n\
flo2 (SQLite) with `FLO2_MAX_INFLIGHT={MAX_INFLIGHT}` against a fake upstream answering after \
{DELAY_MS} ms sustains {} req/s. Accepted latency is measured at {} req/s first (nothing refused), \
then {} req/s are sent (open loop); refusals are 503 with `Retry-After`, timed to their whole answer.\n\n\
| rate | accepted p50 | accepted p99 | refused | refusal p50 | refusal p99 | other errors | peak RSS |\n|---|---|---|---|---|---|---|---|\n\
| {}/s (baseline) | {:.0} µs | {:.0} µs | 0 % | | | | {:.1} MiB |\n{}\n",
            self.sustainable_rate,
            self.baseline_rate,
            self.overload_rate,
            self.baseline_rate,
            self.baseline.p50,
            self.baseline.p99,
            self.rss_baseline_mib,
            self.overload_cells()
        )
    }

    /// The row's targets: (target, figure, met).
    pub fn targets(&self) -> [(String, String, bool); 3] {
        let stable = self.accepted.p99 <= self.baseline.p99 * 1.1;
        let bound = self.rss_bound_mib();
        [
            (
                "overload: refusals answered in < 1 ms at p99".to_owned(),
                format!("{:.0} µs ({} refused)", self.refusal.p99, self.refused_n),
                self.refused_n > 0 && self.refusal.p99 < 1000.0,
            ),
            (
                "overload: accepted p99 within 10 % of the baseline's".to_owned(),
                format!("{:.0} µs vs {:.0} µs", self.accepted.p99, self.baseline.p99),
                self.accepted_n > 0 && stable,
            ),
            (
                format!(
                    "overload: peak RSS ≤ baseline + {MAX_INFLIGHT} × 64 KiB + {SLACK_MIB:.0} MiB"
                ),
                format!("{:.1} MiB (bound {bound:.1} MiB)", self.rss_peak_mib),
                self.rss_peak_mib <= bound,
            ),
        ]
    }
}
