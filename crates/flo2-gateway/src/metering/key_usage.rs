//! Last-used times of gateway keys, collected in memory and written in batches, so
//! authentication stays free of database writes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flo2_core::GatewayKeyId;
use flo2_store::Store;
use tokio_util::sync::CancellationToken;

/// Pending last-used times.
#[derive(Default)]
pub struct KeyUsage {
    pending: Mutex<HashMap<GatewayKeyId, DateTime<Utc>>>,
}

impl KeyUsage {
    /// Notes that `key` was used now.
    pub fn record(&self, key: GatewayKeyId) {
        let now = Utc::now();
        let mut pending = match self.pending.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        pending.insert(key, now);
    }

    fn take(&self) -> Vec<(GatewayKeyId, DateTime<Utc>)> {
        let mut pending = match self.pending.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        pending.drain().collect()
    }

    fn put_back(&self, uses: Vec<(GatewayKeyId, DateTime<Utc>)>) {
        let mut pending = match self.pending.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (key, at) in uses {
            let slot = pending.entry(key).or_insert(at);
            *slot = (*slot).max(at);
        }
    }

    /// Writes what is pending; on failure keeps it for the next attempt.
    pub async fn flush(&self, store: &Store) {
        let uses = self.take();
        if uses.is_empty() {
            return;
        }
        if let Err(err) = store.touch_gateway_keys(&uses).await {
            tracing::warn!(error = %err, keys = uses.len(), "cannot record key last-used times; will retry");
            self.put_back(uses);
        }
    }

    /// Flushes every `interval` until `cancel` fires, then once more.
    pub async fn run(&self, store: Store, interval: Duration, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(interval) => self.flush(&store).await,
            }
        }
        self.flush(&store).await;
    }
}
