//! Fixed-rate rows measured in alternating rounds.
//!
//! On a shared 2-core VM the machine's speed drifts by tens of microseconds between minutes, and
//! one measurement of each path, minutes apart, puts that drift into the difference. So a row is
//! measured in rounds: each round runs the fake alone, then the bare proxy, then each flo2 path,
//! back to back, and every round gives its own added latency (flo2 minus the fake of the same
//! round). A row reports, percentile by percentile, the median over its rounds, with the bare
//! proxy's median from the same rounds beside it: the floor at the same moments.
//!
//! Each flo2 segment also reads flo2's own time per request from its
//! `flo2_gateway_overhead_seconds` histogram (time in flo2 minus upstream waits), so the row
//! says how much of the added latency is flo2's work and how much is the extra hop.

use std::time::Duration;

use crate::load::{fixed_rate, Load, Percentiles, RateRun};
use crate::setup::{CpuTicks, Flo2, Proc, Sched};

/// One flo2 path of a row.
pub struct Path {
    pub label: String,
    pub load: Load,
}

/// What the rounds measured for one flo2 path.
#[derive(Default)]
pub struct PathResult {
    pub label: String,
    /// Added latency (flo2 minus the fake), one per round.
    pub added_rounds: Vec<Percentiles>,
    /// The fake alone, one per round.
    pub direct_rounds: Vec<Percentiles>,
    pub sent: u64,
    pub errors: u64,
    /// flo2's context switches per request over its segments.
    pub switches: f64,
    /// µs per request flo2's threads spent woken but waiting for a CPU, over its segments.
    pub waited_us: f64,
    /// The percentage of CPU time stolen during its segments.
    pub stolen: f64,
    /// flo2's own time per request over its segments.
    pub own: OwnTime,
}

/// A row's rounds: each flo2 path, and the bare proxy's added latency per round.
pub struct Measured {
    pub proxy_rounds: Vec<Percentiles>,
    /// µs per request the proxy's threads spent woken but waiting for a CPU, over its segments.
    pub proxy_waited_us: f64,
    pub paths: Vec<PathResult>,
}

/// The setup a row is measured in.
pub struct Rig<'a> {
    pub http: &'a reqwest::Client,
    pub direct: &'a Load,
    pub proxy: &'a Load,
    pub proxy_proc: &'a Proc,
    pub flo2: &'a Flo2,
    pub rounds: usize,
    /// Each segment's length: the measurement's length split over the rounds.
    pub segment: Duration,
}

impl Rig<'_> {
    /// Measures `paths` at `rate` (latency to the first body byte when `first_byte`).
    pub async fn measure(&self, rate: u64, paths: &[Path], first_byte: bool) -> Measured {
        let mut out = Measured {
            proxy_rounds: Vec::new(),
            proxy_waited_us: 0.0, // set from the rounds' totals below
            paths: paths
                .iter()
                .map(|p| PathResult {
                    label: p.label.clone(),
                    ..PathResult::default()
                })
                .collect(),
        };
        let mut sched = vec![Sched::default(); paths.len()];
        let (mut proxy_sched, mut proxy_sent) = (Sched::default(), 0);
        for _ in 0..self.rounds {
            let direct = self.run(self.direct, rate, first_byte).await.latency;
            let proxy_before = self.proxy_proc.sched();
            let behind = self.run(self.proxy, rate, first_byte).await;
            proxy_sched.add(self.proxy_proc.sched().since(proxy_before));
            proxy_sent += behind.sent;
            out.proxy_rounds.push(behind.latency.minus(direct));
            for (i, path) in paths.iter().enumerate() {
                let (before, own_before, cpu) = (
                    self.flo2.proc.sched(),
                    OwnTime::parse(&self.flo2.metrics(self.http).await),
                    CpuTicks::now(),
                );
                let through = self.run(&path.load, rate, first_byte).await;
                let stolen = CpuTicks::now().stolen_since(cpu);
                let own = OwnTime::parse(&self.flo2.metrics(self.http).await).minus(&own_before);
                let r = &mut out.paths[i];
                sched[i].add(self.flo2.proc.sched().since(before));
                r.added_rounds.push(through.latency.minus(direct));
                r.direct_rounds.push(direct);
                r.sent += through.sent;
                r.errors += through.errors;
                r.stolen += stolen / self.rounds as f64;
                r.own.add(&own);
            }
        }
        (_, out.proxy_waited_us) = proxy_sched.per_request(proxy_sent);
        for (r, during) in out.paths.iter_mut().zip(sched) {
            (r.switches, r.waited_us) = during.per_request(r.sent);
        }
        out
    }

    async fn run(&self, load: &Load, rate: u64, first_byte: bool) -> RateRun {
        fixed_rate(self.http, load, rate, self.segment, first_byte).await
    }
}

impl Measured {
    /// Requests sent through flo2.
    pub fn sent(&self) -> u64 {
        self.paths.iter().map(|p| p.sent).sum()
    }
}

/// The median of a few figures (0 for none).
pub fn median(figures: &[f64]) -> f64 {
    let mut v = figures.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Percentile by percentile, the median over rounds.
pub fn median_of(rounds: &[Percentiles]) -> Percentiles {
    let pick = |f: fn(&Percentiles) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    Percentiles {
        p50: pick(|p| p.p50),
        p90: pick(|p| p.p90),
        p99: pick(|p| p.p99),
        p999: pick(|p| p.p999),
    }
}

/// A reading of flo2's `flo2_gateway_overhead_seconds` histogram (or the difference of two).
#[derive(Clone, Debug, Default)]
pub struct OwnTime {
    /// (upper bound in µs, cumulative count); the last bound is infinite.
    buckets: Vec<(f64, u64)>,
    sum_us: f64,
    count: u64,
}

impl OwnTime {
    /// Parses the histogram from a Prometheus text exposition.
    pub fn parse(metrics: &str) -> Self {
        const NAME: &str = "flo2_gateway_overhead_seconds";
        let mut own = Self::default();
        for line in metrics.lines() {
            let Some(rest) = line.strip_prefix(NAME) else {
                continue;
            };
            let Some((key, value)) = rest.rsplit_once(' ') else {
                continue;
            };
            if let Some(le) = key
                .strip_prefix("_bucket{le=\"")
                .and_then(|k| k.strip_suffix("\"}"))
            {
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse::<f64>().unwrap_or(f64::INFINITY) * 1e6
                };
                own.buckets.push((bound, value.parse().unwrap_or(0)));
            } else if key == "_sum" {
                own.sum_us = value.parse::<f64>().unwrap_or(0.0) * 1e6;
            } else if key == "_count" {
                own.count = value.parse().unwrap_or(0);
            }
        }
        own
    }

    /// Requests observed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// What was observed since `earlier`.
    pub fn minus(&self, earlier: &Self) -> Self {
        Self {
            buckets: self
                .buckets
                .iter()
                .map(|&(bound, n)| {
                    let before = earlier
                        .buckets
                        .iter()
                        .find(|(b, _)| *b == bound)
                        .map_or(0, |(_, n)| *n);
                    (bound, n.saturating_sub(before))
                })
                .collect(),
            sum_us: self.sum_us - earlier.sum_us,
            count: self.count.saturating_sub(earlier.count),
        }
    }

    /// Adds another interval's observations.
    pub fn add(&mut self, other: &Self) {
        if self.buckets.is_empty() {
            self.buckets = other.buckets.iter().map(|&(b, _)| (b, 0)).collect();
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            mine.1 += theirs.1;
        }
        self.sum_us += other.sum_us;
        self.count += other.count;
    }

    /// Mean µs per request (0 for none).
    pub fn mean_us(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_us / self.count as f64
        }
    }

    /// The `q` quantile in µs, interpolated linearly inside its bucket (as Prometheus's
    /// `histogram_quantile` does); 0 for no observations.
    pub fn quantile_us(&self, q: f64) -> f64 {
        let Some(&(_, total)) = self.buckets.last() else {
            return 0.0;
        };
        if total == 0 {
            return 0.0;
        }
        let rank = q * total as f64;
        let mut lower = (0.0, 0u64);
        for &(bound, cumulative) in &self.buckets {
            if cumulative as f64 >= rank {
                if bound.is_infinite() {
                    return lower.0;
                }
                let inside = (cumulative - lower.1) as f64;
                let share = if inside == 0.0 {
                    0.0
                } else {
                    (rank - lower.1 as f64) / inside
                };
                return lower.0 + (bound - lower.0) * share;
            }
            lower = (bound, cumulative);
        }
        lower.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: &str = "flo2_usage_queue_depth 0\n\
# TYPE flo2_gateway_overhead_seconds histogram\n\
flo2_gateway_overhead_seconds_bucket{le=\"0.00001\"} 0\n\
flo2_gateway_overhead_seconds_bucket{le=\"0.00002\"} 4\n\
flo2_gateway_overhead_seconds_bucket{le=\"0.00004\"} 12\n\
flo2_gateway_overhead_seconds_bucket{le=\"+Inf\"} 12\n\
flo2_gateway_overhead_seconds_sum 0.00036\n\
flo2_gateway_overhead_seconds_count 12\n";

    #[test]
    fn the_histogram_reads_back_with_mean_and_interpolated_quantiles() {
        let own = OwnTime::parse(AFTER);
        assert_eq!(own.count, 12);
        assert!((own.mean_us() - 30.0).abs() < 1e-9);
        // Rank 6 of 12 falls a quarter into the 20–40 µs bucket.
        assert!((own.quantile_us(0.5) - 25.0).abs() < 1e-9);
        let earlier = OwnTime::parse(
            &AFTER
                .replace("} 12", "} 4")
                .replace("count 12", "count 4")
                .replace("sum 0.00036", "sum 0.00012"),
        );
        let since = own.minus(&earlier);
        assert_eq!(since.count, 8);
        assert!((since.mean_us() - 30.0).abs() < 1e-6);
        // Rank 4 of the 8 new ones falls halfway into the 20–40 µs bucket.
        assert!((since.quantile_us(0.5) - 30.0).abs() < 1e-9);
        let mut both = OwnTime::default();
        both.add(&own);
        both.add(&own);
        assert_eq!(both.count, 24);
        assert!((both.quantile_us(0.5) - 25.0).abs() < 1e-9);
        assert_eq!(OwnTime::default().quantile_us(0.5), 0.0);
    }

    #[test]
    fn medians_are_taken_percentile_by_percentile() {
        let p = |p50, p99| Percentiles {
            p50,
            p90: p50,
            p99,
            p999: p99,
        };
        let m = median_of(&[p(100.0, 900.0), p(300.0, 400.0), p(200.0, 500.0)]);
        assert_eq!((m.p50, m.p99), (200.0, 500.0));
    }
}
