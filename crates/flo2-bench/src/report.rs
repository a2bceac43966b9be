//! The results and how they are written: `docs/benchmarks.json` (every figure) and
//! `docs/benchmarks.md` (tables, and each target with whether this run met it).

use serde_json::{json, Value};

use crate::load::Percentiles;
use crate::rounds::{median, median_of, Measured};

/// What the fake upstream does alone and behind the bare proxy (the same for every database).
#[derive(Default)]
pub struct Floor {
    /// The fake's own latency at each rate.
    pub direct: Vec<(u64, Percentiles)>,
    /// Latency behind the bare proxy at each rate.
    pub proxy: Vec<ProxyRow>,
    pub stream_direct: Percentiles,
    pub stream_proxy: Percentiles,
    pub fake_rps: f64,
    pub proxy_rps: f64,
    /// The bare proxy's CPU time per request over its runs.
    pub proxy_cpu_us_per_request: f64,
}

impl Floor {
    pub fn direct_at(&self, rate: u64) -> Percentiles {
        self.direct
            .iter()
            .find(|(r, _)| *r == rate)
            .map(|(_, p)| *p)
            .unwrap_or_default()
    }
}

/// The bare proxy at one rate.
pub struct ProxyRow {
    pub rate: u64,
    pub latency: Percentiles,
    pub errors: u64,
    /// The proxy's context switches per request.
    pub switches: f64,
    /// µs per request the proxy's threads spent woken but waiting for a CPU.
    pub waited_us: f64,
    /// The percentage of the machine's CPU time the hypervisor took meanwhile.
    pub stolen: f64,
}

/// One fixed-rate row through flo2, measured in rounds (see `rounds`).
pub struct LatencyRow {
    pub rate: u64,
    pub path: String,
    /// The fake alone, per percentile the median over the rounds.
    pub direct: Percentiles,
    /// Added latency, per percentile the median over the rounds.
    pub added: Percentiles,
    /// Added latency in each round.
    pub added_rounds: Vec<Percentiles>,
    /// The bare proxy's added latency in the same rounds, medians.
    pub proxy_added: Percentiles,
    /// µs per request the bare proxy's threads waited for a CPU in the same rounds.
    pub proxy_waited_us: f64,
    /// flo2's own time per request (its overhead histogram): mean and interpolated p50, p99.
    pub own_mean_us: f64,
    pub own_p50_us: f64,
    pub own_p99_us: f64,
    pub errors: u64,
    /// flo2's context switches per request over the row.
    pub switches: f64,
    /// µs per request flo2's threads spent woken but waiting for a CPU.
    pub waited_us: f64,
    /// The percentage of the machine's CPU time the hypervisor took during the row.
    pub stolen: f64,
}

impl LatencyRow {
    /// One row per flo2 path of `measured`.
    pub fn from_rounds(rate: u64, measured: &Measured) -> Vec<Self> {
        measured
            .paths
            .iter()
            .map(|p| Self {
                rate,
                path: p.label.clone(),
                direct: median_of(&p.direct_rounds),
                added: median_of(&p.added_rounds),
                added_rounds: p.added_rounds.clone(),
                proxy_added: median_of(&measured.proxy_rounds),
                proxy_waited_us: measured.proxy_waited_us,
                own_mean_us: p.own.mean_us(),
                own_p50_us: p.own.quantile_us(0.5),
                own_p99_us: p.own.quantile_us(0.99),
                errors: p.errors,
                switches: p.switches,
                waited_us: p.waited_us,
                stolen: p.stolen,
            })
            .collect()
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        format!(
            "{}/s {}: added p50 {:.0}µs p99 {:.0}µs (rounds' p50: {}), bare proxy p50 {:.0}µs; flo2's own time mean {:.0}µs p50 {:.0}µs; errors {}, {:.2} context switches and {:.0}µs waiting for a CPU per request (bare proxy {:.0}µs), {:.1} % CPU stolen",
            self.rate,
            self.path,
            self.added.p50,
            self.added.p99,
            listed(&self.added_rounds.iter().map(|p| p.p50).collect::<Vec<_>>()),
            self.proxy_added.p50,
            self.own_mean_us,
            self.own_p50_us,
            self.errors,
            self.switches,
            self.waited_us,
            self.proxy_waited_us,
            self.stolen
        )
    }

    fn json(&self) -> Value {
        json!({"rate": self.rate, "path": self.path, "errors": self.errors, "direct_us": pct(self.direct),
            "added_us": pct(self.added), "added_us_per_round": self.added_rounds.iter().map(|p| pct(*p)).collect::<Vec<_>>(),
            "bare_proxy_added_us_same_rounds": pct(self.proxy_added),
            "flo2_own_time_us": {"mean": self.own_mean_us, "p50": self.own_p50_us, "p99": self.own_p99_us},
            "context_switches_per_request": self.switches, "waited_for_cpu_us_per_request": self.waited_us,
            "bare_proxy_waited_for_cpu_us_per_request_same_rounds": self.proxy_waited_us, "cpu_stolen_percent": self.stolen})
    }

    fn md(&self) -> String {
        let a = self.added;
        format!(
            "| {}/s | {} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} / {:.0} µs | {} | {:.1} | {:.0} µs ({:.0} µs) | {:.1} % |\n",
            self.rate,
            self.path,
            a.p50,
            a.p90,
            a.p99,
            a.p999,
            self.proxy_added.p50,
            self.own_mean_us,
            self.own_p50_us,
            self.errors,
            self.switches,
            self.waited_us,
            self.proxy_waited_us,
            self.stolen
        )
    }
}

/// Everything measured through flo2 on one database.
#[derive(Default)]
pub struct DbReport {
    pub database: String,
    pub scale: Option<LatencyRow>,
    pub latency: Vec<LatencyRow>,
    /// Streaming time to first byte.
    pub stream: Option<LatencyRow>,
    /// Maximum throughput through flo2 and through the bare proxy, one figure per round; the
    /// rounds alternate (proxy, then flo2), so both see the machine in the same state.
    pub flo2_rounds: Vec<f64>,
    pub proxy_rounds: Vec<f64>,
    /// Peak RSS from start through the scale run (configuration, warm-up, 1,000 req/s).
    pub peak_rss_scale_mib: f64,
    /// Peak RSS over the whole run, maximum throughput included.
    pub peak_rss_mib: f64,
    pub cpu_us_per_request: f64,
    pub requests_sent: u64,
    pub usage_rows: u64,
    /// Chat requests flo2 itself handled (the count of its own-time histogram): every one of
    /// them must have its usage row. Requests sent but never handled failed on the way (a
    /// keep-alive connection closed as the client reused it) and have nothing to record.
    pub requests_handled: u64,
    /// Usage records the writer copied to its local spill file: it does so only when a database
    /// write fails or stalls, so a non-zero figure means the store fell behind under this load.
    pub usage_spilled: u64,
    /// Usage records copied to the journal while a write ran longer than one gather interval
    /// (they stayed in memory; a busy store, not a failed one).
    pub usage_journaled: u64,
}

impl DbReport {
    /// flo2's median throughput over the bare proxy's median in the same rounds.
    pub fn throughput_ratio(&self) -> f64 {
        median(&self.flo2_rounds) / median(&self.proxy_rounds).max(1.0)
    }
}

fn pct(p: Percentiles) -> Value {
    json!({"p50": p.p50, "p90": p.p90, "p99": p.p99, "p99.9": p.p999})
}

fn listed(figures: &[f64]) -> String {
    figures
        .iter()
        .map(|f| format!("{f:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**not met**"
    }
}

/// `stolen`: the percentage of the machine's CPU time the hypervisor took over the whole run.
/// `secs`: each measurement's length, split over `rounds`.
pub fn write(
    floor: &Floor,
    reports: &[DbReport],
    overload: &crate::overload::OverloadReport,
    (secs, rounds): (u64, usize),
    stolen: f64,
) {
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

    let floor_json = json!({
        "direct_us": floor.direct.iter().map(|(r, p)| json!({"rate": r, "latency": pct(*p)})).collect::<Vec<_>>(),
        "bare_proxy_added_us": floor.proxy.iter().map(|p| json!({"rate": p.rate, "added": pct(p.latency.minus(floor.direct_at(p.rate))), "errors": p.errors, "context_switches_per_request": p.switches, "waited_for_cpu_us_per_request": p.waited_us, "cpu_stolen_percent": p.stolen})).collect::<Vec<_>>(),
        "stream_ttfb_direct_us": pct(floor.stream_direct),
        "bare_proxy_stream_ttfb_added_us": pct(floor.stream_proxy.minus(floor.stream_direct)),
        "max_throughput_rps": {"fake_alone": floor.fake_rps, "bare_proxy": floor.proxy_rps},
        "bare_proxy_cpu_us_per_request": floor.proxy_cpu_us_per_request,
    });
    let results: Vec<Value> = reports.iter().map(|r| json!({
        "database": r.database,
        "scale_run": r.scale.as_ref().map(LatencyRow::json),
        "latency": r.latency.iter().map(LatencyRow::json).collect::<Vec<_>>(),
        "streaming_ttfb": r.stream.as_ref().map(LatencyRow::json),
        "max_throughput_rps": {"through_flo2": median(&r.flo2_rounds), "bare_proxy_same_rounds": median(&r.proxy_rounds),
            "ratio_to_bare_proxy": r.throughput_ratio(), "flo2_rounds": r.flo2_rounds, "bare_proxy_rounds": r.proxy_rounds},
        "peak_rss_mib_through_scale_run": r.peak_rss_scale_mib,
        "peak_rss_mib": r.peak_rss_mib,
        "cpu_us_per_request": r.cpu_us_per_request,
        "requests_sent": r.requests_sent,
        "usage_rows": r.usage_rows,
        "requests_handled_by_flo2": r.requests_handled,
        "usage_spilled_to_disk": r.usage_spilled,
        "usage_journaled": r.usage_journaled,
    })).collect();
    let doc = json!({"date": date, "machine": {"cpus": cpus, "cpu": cpu_model, "cpu_stolen_percent_over_run": stolen}, "seconds_per_measurement": secs, "rounds_per_row": rounds,
        "floor": floor_json, "results": results, "overload": overload.json()});
    std::fs::write(
        "docs/benchmarks.json",
        serde_json::to_string_pretty(&doc).unwrap(),
    )
    .unwrap();

    let mut md = format!(
        "# Benchmarks\n\n{date} · {cpus} CPUs ({cpu_model}) · {secs} s per measurement · load generator, \
fake upstream, bare proxy and flo2 on the same machine, sharing its cores (release builds). Produced by \
`bash bench/run.sh`; every figure is also in `benchmarks.json`.\n\n\
Added latency is a percentile through flo2 minus the fake upstream's own percentile at the same rate \
(open-loop arrivals, 1 KB bodies, non-streaming unless marked). Each flo2 row is measured in {rounds} rounds of \
{:.1} s; every round runs the fake alone, then the bare proxy, then each flo2 path of the row, back to back, and \
gives its own added figures. A row shows, percentile by percentile, the median over its rounds, and the bare \
proxy's median from the same rounds: what the extra network hop alone cost at those moments. \
Percentiles do not subtract exactly, so a tail figure can come out below a lower one, or negative, when the \
difference is within the noise.\n\n\
flo2's own time is read from its `flo2_gateway_overhead_seconds` histogram over each row's flo2 segments: \
the time from a request's arrival in flo2's router to its answer's head, minus the time spent waiting on the \
upstream (mean / p50, the p50 interpolated inside the histogram's buckets). The rest of the added latency \
is the extra hop, which the bare proxy pays too.\n\n\
flo2 runs with one tenant holding 10,000 gateway keys and 1,000 routes; the caches are warmed with one \
request per key first. The fixed-rate rows use one key and a provider/model name; the scale row spreads \
its requests over every key and route.\n\n\
CPU stolen is the share of the machine's CPU time the hypervisor gave to other guests during a \
measurement (steal time, `/proc/stat`); over this whole run it was {stolen:.1} %. A row measured while \
much was stolen, or whose baseline was, is less reliable than the others.\n\n\
Waiting for a CPU is the time a process's threads spent woken but not yet running, per request (the \
kernel's run delay, `/proc/<pid>/task/*/schedstat`). On a VM, a thread woken on an idle virtual CPU waits \
for the hypervisor to run that CPU; each hop of a request pays it, and flo2 and the bare proxy each add \
the same two hops (client to gateway, gateway to upstream). The bare proxy's figure is from the same rounds.\n",
        secs as f64 / rounds as f64
    );
    md.push_str("\n## Floor: a bare hyper reverse proxy\n\n| rate | added p50 | p90 | p99 | p99.9 | errors | context switches per request | waiting for a CPU per request | CPU stolen |\n|---|---|---|---|---|---|---|---|---|\n");
    for p in &floor.proxy {
        let a = p.latency.minus(floor.direct_at(p.rate));
        md.push_str(&format!(
            "| {}/s | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {} | {:.1} | {:.0} µs | {:.1} % |\n",
            p.rate, a.p50, a.p90, a.p99, a.p999, p.errors, p.switches, p.waited_us, p.stolen
        ));
    }
    let sp = floor.stream_proxy.minus(floor.stream_direct);
    md.push_str(&format!(
        "\n- streaming time-to-first-byte added: p50 {:.0} µs, p99 {:.0} µs ({} req/s)\n- maximum throughput, 64 connections: {:.0} req/s behind the proxy, {:.0} req/s from the fake alone\n- proxy CPU {:.0} µs per request\n",
        sp.p50, sp.p99, crate::STREAM_RATE, floor.proxy_rps, floor.fake_rps, floor.proxy_cpu_us_per_request
    ));
    for r in reports {
        md.push_str(&format!("\n## flo2 on {}\n\n| rate | path | added p50 | p90 | p99 | p99.9 | bare proxy p50, same rounds | flo2's own time, mean / p50 | errors | context switches per request | waiting for a CPU per request (bare proxy, same rounds) | CPU stolen |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n", r.database));
        for row in r.scale.iter().chain(&r.latency).chain(&r.stream) {
            md.push_str(&row.md());
        }
        md.push_str(&format!(
            "\n- maximum throughput, 64 connections: {:.0} req/s, {:.0} % of the bare proxy's {:.0} req/s (medians of {} alternating rounds: flo2 {}; proxy {})\n\
- peak RSS {:.1} MiB through configuration, warm-up and the scale run; {:.1} MiB over the whole run\n\
- CPU {:.0} µs per request (flo2's user and system time over the measured runs)\n\
- usage rows {} for {} requests sent, {} of them handled by flo2; {} records spilled to disk while a write failed, {} journaled while one ran long\n",
            median(&r.flo2_rounds), 100.0 * r.throughput_ratio(), median(&r.proxy_rounds),
            r.flo2_rounds.len(), listed(&r.flo2_rounds), listed(&r.proxy_rounds),
            r.peak_rss_scale_mib, r.peak_rss_mib, r.cpu_us_per_request, r.usage_rows, r.requests_sent,
            r.requests_handled, r.usage_spilled, r.usage_journaled
        ));
    }
    md.push_str(&overload.md());
    md.push_str("\n## Targets\n\n| target | database | this run | |\n|---|---|---|---|\n");
    for r in reports {
        let db = &r.database;
        let at_1000: Vec<&LatencyRow> = r
            .scale
            .iter()
            .chain(&r.latency)
            .filter(|row| row.rate == crate::SCALE_RATE)
            .collect();
        let worst_p50 = at_1000
            .iter()
            .map(|row| row.added.p50)
            .fold(f64::MIN, f64::max);
        let worst_p99 = at_1000
            .iter()
            .map(|row| row.added.p99)
            .fold(f64::MIN, f64::max);
        let ratio = r.throughput_ratio();
        let stream_p99 = r.stream.as_ref().map_or(f64::NAN, |row| row.added.p99);
        for (target, figure, ok) in [
            (
                "added p50 ≤ 150 µs at 1,000 req/s (worst row)",
                format!("{worst_p50:.0} µs"),
                worst_p50 <= 150.0,
            ),
            (
                "added p99 ≤ 1 ms at 1,000 req/s (worst row)",
                format!("{worst_p99:.0} µs"),
                worst_p99 <= 1000.0,
            ),
            (
                "throughput ≥ 70 % of the bare proxy's",
                format!("{:.0} %", ratio * 100.0),
                ratio >= 0.7,
            ),
            (
                "peak RSS ≤ 64 MiB at 1,000 req/s, 10,000 keys, 1,000 routes",
                format!("{:.1} MiB", r.peak_rss_scale_mib),
                r.peak_rss_scale_mib <= 64.0,
            ),
            (
                "streaming TTFB overhead ≤ 1 ms at p99",
                format!("{stream_p99:.0} µs"),
                stream_p99 <= 1000.0,
            ),
            (
                "usage rows = requests handled (of requests sent)",
                format!(
                    "{} / {} ({} sent)",
                    r.usage_rows, r.requests_handled, r.requests_sent
                ),
                r.usage_rows == r.requests_handled,
            ),
        ] {
            md.push_str(&format!("| {target} | {db} | {figure} | {} |\n", met(ok)));
        }
    }
    for (target, figure, ok) in overload.targets() {
        md.push_str(&format!("| {target} | SQLite | {figure} | {} |\n", met(ok)));
    }
    std::fs::write("docs/benchmarks.md", md).unwrap();
    eprintln!("wrote docs/benchmarks.md and docs/benchmarks.json");
}
