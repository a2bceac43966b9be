//! Usage records leave the request path through a bounded queue; one task writes them in
//! batches (at most every 200 ms), keeps a failed batch and retries it while the database is
//! down, and drains everything at shutdown.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flo2_store::{Store, UsageRecord};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How many records may wait in memory.
pub const QUEUE_CAPACITY: usize = 100_000;
const BATCH: usize = 1_000;
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Counters for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct UsageStats {
    /// Records written to the database.
    pub written: AtomicU64,
    /// Records that could not be queued (queue full). Must stay 0.
    pub dropped: AtomicU64,
}

/// The sending side, cloned into every request.
#[derive(Clone)]
pub struct UsageSink {
    tx: mpsc::Sender<UsageRecord>,
    stats: Arc<UsageStats>,
}

/// The writer side, run as a background task.
pub struct UsageWriter {
    rx: mpsc::Receiver<UsageRecord>,
    stats: Arc<UsageStats>,
}

/// A connected sink and writer.
pub fn channel() -> (UsageSink, UsageWriter) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let stats = Arc::new(UsageStats::default());
    (
        UsageSink {
            tx,
            stats: Arc::clone(&stats),
        },
        UsageWriter { rx, stats },
    )
}

impl UsageSink {
    /// Queues a record without waiting (callable from `Drop`).
    pub fn record(&self, record: UsageRecord) {
        if let Err(err) = self.tx.try_send(record) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %err, "usage queue full or closed; a usage record was lost");
        }
    }

    /// The counters.
    pub fn stats(&self) -> &UsageStats {
        &self.stats
    }
}

impl UsageWriter {
    /// Writes batches until `cancel` fires and every queued record is written.
    pub async fn run(mut self, store: Store, cancel: CancellationToken) {
        let mut batch: Vec<UsageRecord> = Vec::with_capacity(BATCH);
        let mut backoff = FLUSH_EVERY;
        loop {
            let stopping = cancel.is_cancelled();
            if batch.is_empty() {
                tokio::select! {
                    got = self.rx.recv_many(&mut batch, BATCH) => {
                        if got == 0 {
                            return; // every sender is gone and the queue is empty
                        }
                    }
                    () = cancel.cancelled(), if !stopping => {
                        // Stop accepting new waits; drain what is queued below.
                        self.rx.close();
                        continue;
                    }
                }
                // Gather what arrives within the flush window into the same batch.
                if !stopping && batch.len() < BATCH {
                    tokio::time::sleep(FLUSH_EVERY.min(Duration::from_millis(50))).await;
                }
                let room = BATCH.saturating_sub(batch.len());
                if room > 0 {
                    while let Ok(r) = self.rx.try_recv() {
                        batch.push(r);
                        if batch.len() >= BATCH {
                            break;
                        }
                    }
                }
            }
            match store.insert_usage(&batch).await {
                Ok(()) => {
                    self.stats
                        .written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    batch.clear();
                    backoff = FLUSH_EVERY;
                }
                Err(err) => {
                    tracing::warn!(error = %err, records = batch.len(), "cannot write usage; keeping the batch and retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
