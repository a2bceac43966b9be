//! The data plane's settings, from the operator's configuration (`flo2.toml` and `FLO2_*`; the
//! binary reads them, this crate only takes them).

use std::time::Duration;

use crate::metering::usage_sink;
use crate::state::{admission, health};
use crate::upstream::client::UpstreamSettings;

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
    /// Requests in flight, per process and per organization.
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
