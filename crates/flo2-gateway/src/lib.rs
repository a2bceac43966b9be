//! flo2's data plane: the `/v1` endpoints apps call with a flo2 key.
//!
//! A request never reads the database: keys and organization configurations come from
//! [`key_cache`] and [`org_cache`], kept current by [`change_watcher`]; last-used times leave
//! through [`key_usage`] in batches.

pub mod admission;
pub mod attempt;
pub mod auth;
pub mod budget;
mod caller_body;
pub mod change_watcher;
mod chat;
pub mod deadline;
pub mod dispatch;
mod embeddings;
pub mod error;
mod exact_json;
pub mod fresh_cache;
pub mod health;
pub mod idle_body;
pub mod key_cache;
pub mod key_test;
pub mod key_usage;
pub mod meter;
mod models;
pub mod needs;
pub mod org_cache;
pub mod overhead;
mod passthrough_body;
pub mod plan;
pub mod relay;
pub mod request_id;
pub mod resolve;
pub mod routing;
mod steering_fields;
pub mod upstream;
pub mod usage_sink;
mod usage_spill;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use flo2_store::Store;
use flo2_vault::MasterKeyring;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use change_watcher::Caches;
use key_cache::KeyCache;
use key_usage::KeyUsage;
use org_cache::OrgCache;
use upstream::{Upstream, UpstreamSettings};
use usage_sink::{UsageSink, UsageWriter};

/// Data-plane settings from the operator's configuration.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// How often to poll the change log for other processes' changes.
    pub change_poll_interval: Duration,
    /// How often to write gateway-key last-used times.
    pub key_touch_interval: Duration,
    /// Most gateway keys held in memory.
    pub key_cache_capacity: u64,
    /// Most organizations held in memory.
    pub org_cache_capacity: u64,
    /// Upstream HTTP client settings.
    pub upstream: UpstreamSettings,
    /// Largest accepted `/v1` request body (images make these large).
    pub max_body_bytes: usize,
    /// Where usage goes while the database is unreachable.
    pub usage_spill: usage_sink::SpillSettings,
    /// Circuit breakers and the retry budget.
    pub health: health::HealthSettings,
    /// Requests in flight, per process and per organization ([`admission`]).
    pub admission: admission::AdmissionSettings,
    /// How long a stream may go without an event after its first token before flo2 ends it
    /// with an error event (metered 504).
    pub stream_idle_timeout: Duration,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            change_poll_interval: Duration::from_secs(1),
            key_touch_interval: Duration::from_secs(60),
            key_cache_capacity: 100_000,
            org_cache_capacity: 10_000,
            upstream: UpstreamSettings::default(),
            max_body_bytes: 32 * 1024 * 1024,
            usage_spill: usage_sink::SpillSettings {
                path: std::path::PathBuf::from("data/usage-spill.jsonl"),
                memory_records: 50_000,
                gather: usage_sink::GATHER,
            },
            health: health::HealthSettings::default(),
            admission: admission::AdmissionSettings::default(),
            stream_idle_timeout: Duration::from_secs(120),
        }
    }
}

/// What every data-plane handler can reach: one shared allocation, so the per-request clones
/// axum makes of its state cost one reference count instead of one per field.
#[derive(Clone)]
pub struct GatewayState(Arc<Gateway>);

impl std::ops::Deref for GatewayState {
    type Target = Gateway;
    fn deref(&self) -> &Gateway {
        &self.0
    }
}

/// The data plane's shared parts (reached through [`GatewayState`]).
pub struct Gateway {
    /// The database, for background work only.
    pub store: Store,
    /// Gateway keys by hash.
    pub keys: Arc<KeyCache>,
    /// Organization configurations.
    pub orgs: Arc<OrgCache>,
    /// Pending last-used times.
    pub key_usage: Arc<KeyUsage>,
    /// The upstream HTTP client.
    pub upstream: Upstream,
    /// Where usage records go.
    pub usage: UsageSink,
    usage_writer: Arc<std::sync::Mutex<Option<UsageWriter>>>,
    caches: Caches,
    /// What this replica knows of its upstreams' health and speed.
    pub health: Arc<health::Health>,
    /// Requests in flight ([`admission`]).
    pub admission: Arc<admission::Admission>,
    /// Settings.
    pub settings: Arc<GatewaySettings>,
    /// flo2's own time per chat request ([`overhead`]).
    pub overhead: overhead::Histogram,
}

impl GatewayState {
    /// Builds the caches, subscribes them to this process's changes, and builds the upstream client.
    pub fn new(
        store: Store,
        keyring: Arc<MasterKeyring>,
        settings: GatewaySettings,
    ) -> Result<Self, upstream::UpstreamError> {
        let keys = Arc::new(KeyCache::new(store.clone(), settings.key_cache_capacity));
        let orgs = Arc::new(OrgCache::new(
            store.clone(),
            keyring,
            settings.org_cache_capacity,
        ));
        let caches = Caches::new(Arc::clone(&keys), Arc::clone(&orgs));
        change_watcher::subscribe(&store, &caches);
        let (usage, writer) = usage_sink::channel(settings.usage_spill.clone());
        Ok(Self(Arc::new(Gateway {
            store,
            keys,
            orgs,
            key_usage: Arc::default(),
            upstream: Upstream::new(&settings.upstream)?,
            usage,
            usage_writer: Arc::new(std::sync::Mutex::new(Some(writer))),
            caches,
            health: Arc::new(health::Health::new(settings.health.clone())),
            admission: admission::Admission::new(settings.admission),
            settings: Arc::new(settings),
            overhead: overhead::Histogram::default(),
        })))
    }

    /// Starts the background work (change polling, last-used batching) on `tracker`; it stops
    /// when `cancel` fires, after a final flush.
    pub fn spawn_background(&self, tracker: &TaskTracker, cancel: &CancellationToken) {
        tracker.spawn(change_watcher::poll(
            self.store.clone(),
            self.caches.clone(),
            self.settings.change_poll_interval,
            cancel.clone(),
        ));
        let writer = match self.usage_writer.lock() {
            Ok(mut w) => w.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(writer) = writer {
            tracker.spawn(writer.run(self.store.clone(), cancel.clone()));
        }
        let usage = Arc::clone(&self.key_usage);
        let store = self.store.clone();
        let interval = self.settings.key_touch_interval;
        let cancel = cancel.clone();
        tracker.spawn(async move { usage.run(store, interval, cancel).await });
    }
}

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

/// The data plane's routes.
pub fn router(state: GatewayState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/models", get(models::list))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/messages", post(chat::messages))
        .route("/v1/messages/count_tokens", post(embeddings::count_tokens))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .with_state(state)
}

/// The `/v1` answer for a path that does not exist, in the caller's shape.
pub fn not_found(path: &str, headers: &axum::http::HeaderMap) -> error::GatewayError {
    error::GatewayError::new(
        error::ApiFormat::detect(path, headers),
        error::ErrorKind::NotFound,
        format!("unknown endpoint {path}"),
    )
}

/// The `/v1` answer for a known path called with the wrong method, in the caller's shape.
pub fn method_not_allowed(path: &str, headers: &axum::http::HeaderMap) -> error::GatewayError {
    error::GatewayError::new(
        error::ApiFormat::detect(path, headers),
        error::ErrorKind::MethodNotAllowed,
        format!("{path} does not accept this method"),
    )
}

async fn metrics(
    axum::extract::State(state): axum::extract::State<GatewayState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics(),
    )
}

#[cfg(test)]
mod tests {
    /// The size of the future a four-argument async handler returns, without calling it.
    fn future_size<A, B, C, D, Fut, F: Fn(A, B, C, D) -> Fut>(_: &F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// axum allocates and moves each request's handler future; its size is what every request
    /// pays for, whether or not it takes the paths (cache misses, races) that need the room.
    /// Inline database reads, an inline race and `async fn` wrappers taking futures by value
    /// had made it 24 KB in test builds and over 80 KB in release builds; with those boxed or
    /// written as combinators it is 5 KB and 8 KB.
    #[test]
    fn the_chat_handler_future_stays_small() {
        let size = future_size(&super::chat::chat_completions);
        assert!(size < 12_000, "the chat handler's future is {size} bytes");
    }
}
