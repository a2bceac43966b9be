//! flo2's data plane: the `/v1` endpoints apps call with a flo2 key.
//!
//! The folders are the path of a request, top to bottom; each folder's `mod.rs` says what it
//! owns and what it may call, and nothing calls upward:
//!
//! - `http/`: the inbound edge. Routes, handlers per inbound API, key authentication and
//!   admission as extractors, the caller's body, request ids.
//! - `pipeline/`: the stages an admitted request passes through, in order (read, select, the
//!   place new stages plug in, dispatch, respond).
//! - `serve/`: choosing and calling targets: needs, resolve, routing, dispatch with fallback
//!   and races, one attempt, typed failures and the attempt trace.
//! - `upstream/`: talking to providers: client, deadlines, request plans and bodies, one
//!   exchange, the stream relay.
//! - `metering/`: the per-attempt meter, the usage sink and its spill file, key last-used
//!   times, flo2's own-time histogram.
//! - `state/`: what the replica knows in memory: key and organization caches with their change
//!   watcher, targets, health with breakers and budgets, admission counts.
//!
//! Beside them: `gateway.rs` (the composition root every handler reaches), `settings.rs`,
//! `error.rs` (the caller-facing error in each API's shape), `caller.rs` (who is calling) and
//! `body/` (whole bodies under a size cap and an idle limit).
//!
//! A request never reads the database: keys and organization configurations come from memory,
//! kept current by the change watcher; usage and last-used times leave in batches.

mod body;
mod caller;
mod error;
mod gateway;
mod http;
mod metering;
mod pipeline;
mod serve;
mod settings;
mod state;
mod upstream;

pub use body::idle::{BodyStalled, IdleBody};
pub use error::{ApiFormat, ErrorKind, GatewayError};
pub use gateway::{Gateway, GatewayState};
pub use http::request_id::{RequestId, RequestIdLayer};
pub use http::router::{method_not_allowed, not_found, router};
pub use metering::usage_sink::SpillSettings;
pub use serve::key_test::{KeyTestError, KeyTestReport};
pub use settings::GatewaySettings;
pub use state::admission::AdmissionSettings;
pub use state::budget::BudgetRule;
pub use state::health::HealthSettings;
pub use state::org_cache::OrgCache;
pub use upstream::client::{UpstreamError, UpstreamSettings};

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
        let size = future_size(&crate::http::chat::chat_completions);
        assert!(size < 12_000, "the chat handler's future is {size} bytes");
    }
}
