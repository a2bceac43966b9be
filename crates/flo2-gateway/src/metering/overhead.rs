//! flo2's own time per chat request: from the request's arrival in the router to its answer's
//! head, minus the time spent waiting on upstreams (their answer heads, complete bodies, and a
//! stream's first token).
//!
//! End-to-end latency through a gateway mixes three things: the upstream's own time, the extra
//! network hop (which any proxy pays; the benchmark's bare proxy measures it), and the gateway's
//! own work (authentication, routing, translation, cost, metering). This histogram isolates the
//! last, so operators and the benchmark can read it without the other two. It excludes hyper's
//! reading of the request and writing of the answer, which the bare proxy pays as well.
//!
//! Waits are tracked per request in a task-local, as the union of intervals in which at least one
//! upstream call is outstanding: racers waiting side by side count once, not once each.

use std::cell::Cell;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;

/// Upper bounds of the histogram's buckets, in microseconds (Prometheus adds `+Inf`).
const BOUNDS_US: [u64; 16] = [
    5, 10, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1_000, 2_500, 5_000, 10_000,
];

/// The upstream waits of one request.
#[derive(Default)]
struct Waits {
    /// Upstream calls outstanding right now.
    outstanding: Cell<u32>,
    /// When the current stretch of waiting began (while `outstanding > 0`).
    since: Cell<Option<Instant>>,
    /// Waiting finished so far.
    total: Cell<Duration>,
}

impl Waits {
    fn begin(&self) {
        let n = self.outstanding.get();
        if n == 0 {
            self.since.set(Some(Instant::now()));
        }
        self.outstanding.set(n + 1);
    }

    fn end(&self) {
        let n = self.outstanding.get().saturating_sub(1);
        self.outstanding.set(n);
        if n == 0 {
            if let Some(since) = self.since.take() {
                self.total.set(self.total.get() + since.elapsed());
            }
        }
    }
}

tokio::task_local! {
    static WAITS: Waits;
}

/// Ends a wait when dropped, so a racer cancelled mid-wait still closes its interval.
struct WaitGuard;

impl WaitGuard {
    /// Begins a wait, or `None` outside a [`measured`] request (background work, tests).
    fn begin() -> Option<Self> {
        WAITS.try_with(Waits::begin).ok().map(|()| Self)
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        let _ = WAITS.try_with(Waits::end);
    }
}

// `waiting` and `measured` are combinators, not `async fn`s: an `async fn` that takes a future
// by value keeps a slot for the argument beside the awaited state that holds it again, so each
// layer doubled the size of every request's future (the chat handler's had grown past 80 KB,
// allocated and copied per request).

/// `upstream_call`, its time counted as waiting on an upstream from now until it completes or
/// is dropped. Call it where the call is awaited.
pub fn waiting<F: Future>(upstream_call: F) -> impl Future<Output = F::Output> {
    let guard = WaitGuard::begin();
    upstream_call.map(move |output| {
        drop(guard);
        output
    })
}

/// A request's handling, giving its result with the time it spent waiting on upstreams.
pub fn measured<F: Future>(handling: F) -> impl Future<Output = (F::Output, Duration)> {
    WAITS.scope(
        Waits::default(),
        handling.map(|output| (output, WAITS.with(|w| w.total.get()))),
    )
}

/// A Prometheus histogram of durations, lock-free.
pub struct Histogram {
    /// Observations at or below each bound (not cumulative; summed when rendered).
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one observation.
    pub fn record(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        // In nanoseconds: an observation belongs to the first bucket whose bound it does not
        // exceed (40.5 µs is above the 40 µs bound, though it truncates to 40 whole µs).
        let bucket = BOUNDS_US.partition_point(|&bound| bound.saturating_mul(1_000) < nanos);
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.sum_nanos.fetch_add(nanos, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Appends the Prometheus text exposition, in seconds.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} histogram\n");
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Relaxed);
            match BOUNDS_US.get(i) {
                Some(bound) => {
                    let le = Duration::from_micros(*bound).as_secs_f64();
                    let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = Duration::from_nanos(self.sum_nanos.load(Relaxed)).as_secs_f64();
        let _ = write!(
            out,
            "{name}_sum {sum}\n{name}_count {}\n",
            self.count.load(Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overlapping_waits_count_once_and_work_counts_not_at_all() {
        let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
        let ((), waited) = measured(async {
            // Two racers side by side: 60 ms of waiting, not 100.
            futures_util::future::join(waiting(pause(60)), waiting(pause(40))).await;
            // Work, not an upstream call: not counted.
            pause(150).await;
            waiting(pause(10)).await;
        })
        .await;
        assert!(waited >= Duration::from_millis(70), "{waited:?}");
        assert!(waited < Duration::from_millis(150), "{waited:?}");
    }

    #[tokio::test]
    async fn a_racer_dropped_mid_wait_closes_its_interval() {
        let ((), waited) = measured(async {
            let slow = waiting(tokio::time::sleep(Duration::from_secs(60)));
            let fast = waiting(tokio::time::sleep(Duration::from_millis(20)));
            tokio::select! {
                () = slow => unreachable!("the slow racer loses"),
                () = fast => {}
            }
            // The loser is dropped: no wait is outstanding now, and work is not counted.
            tokio::time::sleep(Duration::from_millis(50)).await;
        })
        .await;
        assert!(waited >= Duration::from_millis(20), "{waited:?}");
        assert!(waited < Duration::from_millis(50), "{waited:?}");
    }

    #[tokio::test]
    async fn waiting_outside_a_request_just_runs() {
        assert_eq!(waiting(async { 7 }).await, 7);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_in_seconds() {
        let h = Histogram::default();
        h.record(Duration::from_micros(3));
        h.record(Duration::from_micros(40));
        h.record(Duration::from_nanos(40_500));
        h.record(Duration::from_secs(1));
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("# TYPE x histogram\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.000005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.00004\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.00005\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.01\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_sum 1.0000835\n"), "{out}");
        assert!(out.contains("x_count 4\n"), "{out}");
    }
}
