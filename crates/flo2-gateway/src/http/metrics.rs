//! `GET /metrics`: the data plane's counters in Prometheus text exposition.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::gateway::GatewayState;

impl GatewayState {
    /// Prometheus text exposition of the data plane's counters.
    pub fn metrics(&self) -> String {
        use std::fmt::Write as _;
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.usage.stats();
        // (name, type, help, value)
        let metrics = [
            (
                "flo2_usage_queue_depth",
                "gauge",
                "Usage records not yet written (in memory or spilled).",
                &s.pending,
            ),
            (
                "flo2_usage_records_written_total",
                "counter",
                "Usage records written to the database.",
                &s.written,
            ),
            (
                "flo2_usage_records_dropped_total",
                "counter",
                "Usage records lost because the queue was full. Must stay 0.",
                &s.dropped,
            ),
            (
                "flo2_usage_records_spilled_total",
                "counter",
                "Usage records spilled to disk during a database outage.",
                &s.spilled,
            ),
            (
                "flo2_usage_records_journaled_total",
                "counter",
                "Usage records copied to the on-disk journal while a write ran long (kept in memory; the journal is removed once they are stored).",
                &s.journaled,
            ),
            (
                "flo2_usage_write_errors_total",
                "counter",
                "Failed usage batch writes (each retried).",
                &s.write_errors,
            ),
            (
                "flo2_usage_records_refused_total",
                "counter",
                "Usage records the database refused, set aside in usage-refused.jsonl. Should stay 0.",
                &s.refused,
            ),
            (
                "flo2_usage_last_flush_microseconds",
                "gauge",
                "Duration of the last successful usage batch write.",
                &s.last_flush_micros,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in metrics {
            let value = value.load(Relaxed);
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        }
        let _ = write!(
            out,
            "# HELP flo2_requests_in_flight Requests admitted and not yet finished (streams included).\n# TYPE flo2_requests_in_flight gauge\nflo2_requests_in_flight {}\n# HELP flo2_requests_refused_total Requests refused at once because the process or the organization had its bound in flight.\n# TYPE flo2_requests_refused_total counter\nflo2_requests_refused_total {}\n",
            self.admission.inflight(),
            self.admission.refused()
        );
        self.overhead.render(
            &mut out,
            "flo2_gateway_overhead_seconds",
            "flo2's own time per chat request: arrival in the router to the answer's head, minus upstream waits.",
        );
        out
    }
}

/// The `/metrics` handler.
pub async fn metrics(State(state): State<GatewayState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics(),
    )
}
