//! Usage records leave the request path through a bounded queue; one writer task stores them in
//! batches (a batch gathers for 100 ms after its first record) and loses none:
//!
//! - while the database is up, records wait in memory only (no disk write per record);
//! - while a write is still running after one gather interval (the database is busy, or stalls:
//!   a lock, a partition, a connect timeout), the records in memory and every record that
//!   arrives are copied to a local journal (JSON lines, mode 0600) within one gather interval;
//!   they stay in memory and are written from there, and once all are stored the journal is
//!   removed unread, so a busy database costs one append per interval, not a round trip
//!   through the disk;
//! - once a write fails, the journal becomes the spill file: what of memory it lacks is
//!   appended, every record that arrives goes behind it within one gather interval (also while
//!   the writer backs off), and the file is what gets retried. So a crash (SIGKILL, power loss)
//!   at any time loses at most what arrived in the last gather interval, plus, when the
//!   database stalls mid-write, the batch of the interval before it (the gather interval that
//!   write has been running);
//! - past a memory bound records are spilled too, and once a spill file exists every new record
//!   goes behind them, so order is kept;
//! - when the database is back the spill file is replayed from its start, then removed;
//! - at shutdown everything queued is written, or, if the database is down, spilled, so the
//!   process exits promptly and the next start replays the file;
//! - inserts are idempotent by record id, so a batch retried after an unclear failure is not
//!   duplicated;
//! - a batch the database refuses for what it holds (a constraint, a value it cannot store) is
//!   written in halves until the refused records stand alone; those are set aside in
//!   `usage-refused.jsonl` beside the spill file, so one bad record never holds back the rest.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flo2_store::{Store, StoreError, UsageRecord};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::metering::usage_spill::SpillSettings;
use crate::metering::usage_spill::{append_lines, refused_path, SpillFile};

/// How many records may wait in the queue between requests and the writer.
pub const QUEUE_CAPACITY: usize = 100_000;
const BATCH: usize = 1_000;
/// The default of [`SpillSettings::gather`]: a row per write would cost the database a
/// transaction per request, and each statement of a batch is a round trip to the database (on
/// SQLite, to its connection's thread, with four context switches). At 1,000 requests per second
/// flo2 made 3.0 context switches per request with 50 ms, 2.7–2.9 with 100 ms and 2.6 with
/// 250 ms (benchmark, 2026-12-01). 250 ms batches reach the 256-row SQLite statement, which every
/// pooled connection then keeps prepared: 14 MiB more RSS. 20 ms did not shorten PostgreSQL's
/// tail either (p99 added 481 µs against 434 µs at 100 ms, 2026-12-03) and took SQLite to 4.2.
pub const GATHER: Duration = Duration::from_millis(100);
/// The first retry delay after a failed write; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Counters for `/metrics` and tests.
#[derive(Debug, Default)]
pub struct UsageStats {
    /// Records written to the database.
    pub written: AtomicU64,
    /// Records that could not be queued (queue full or closed). Must stay 0.
    pub dropped: AtomicU64,
    /// Records appended to the spill file.
    pub spilled: AtomicU64,
    /// Records copied to the journal while a write ran longer than one gather interval (kept in
    /// memory and written from there; the journal is removed once they are stored).
    pub journaled: AtomicU64,
    /// Records waiting in memory or on disk.
    pub pending: AtomicU64,
    /// Failed write attempts.
    pub write_errors: AtomicU64,
    /// Records the database refused, set aside in the refused file. Should stay 0.
    pub refused: AtomicU64,
    /// Duration of the last successful batch write, in microseconds.
    pub last_flush_micros: AtomicU64,
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
    spill: SpillSettings,
}

/// A connected sink and writer.
pub fn channel(spill: SpillSettings) -> (UsageSink, UsageWriter) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let stats = Arc::new(UsageStats::default());
    (
        UsageSink {
            tx,
            stats: Arc::clone(&stats),
        },
        UsageWriter { rx, stats, spill },
    )
}

impl UsageSink {
    /// Queues a record without waiting (callable from `Drop`).
    pub fn record(&self, record: UsageRecord) {
        match self.tx.try_send(record) {
            Ok(()) => {
                self.stats.pending.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %err, "usage queue full or closed; a usage record was lost");
            }
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<UsageStats> {
        &self.stats
    }
}

/// Records of a batch the database refused, each with the reason.
type Refused<'b> = Vec<(&'b UsageRecord, StoreError)>;

/// Writes `batch`. When the database refuses it for what it holds, writes it in halves until
/// each refused record stands alone, and returns those with the reason; the rest are stored.
/// An outage is returned as an error: the caller retries the whole batch, which is safe because
/// inserts skip ids already stored.
async fn insert_isolating<'b>(
    store: &Store,
    batch: &'b [UsageRecord],
) -> Result<Refused<'b>, StoreError> {
    let mut parts = vec![batch];
    let mut refused = Vec::new();
    while let Some(part) = parts.pop() {
        match store.insert_usage(part).await {
            Ok(()) => {}
            Err(err) if err.is_refusal() => match part {
                [one] => refused.push((one, err)),
                _ => {
                    let (front, back) = part.split_at(part.len() / 2);
                    parts.push(back);
                    parts.push(front);
                }
            },
            Err(err) => return Err(err),
        }
    }
    Ok(refused)
}

impl UsageWriter {
    /// Keeps records the database refused in the refused file, and says so loudly.
    async fn set_aside(&self, refused: &[(&UsageRecord, StoreError)]) {
        let path = refused_path(&self.spill.path);
        for (record, err) in refused {
            tracing::error!(
                record = %record.id, error = %err, path = %path.display(),
                "the database refused a usage record; set aside"
            );
        }
        self.stats
            .refused
            .fetch_add(refused.len() as u64, Ordering::Relaxed);
        if let Err(err) = append_lines(&path, refused.iter().map(|(r, _)| *r)).await {
            // The last place left is the log: a usage record holds no secret.
            for (r, _) in refused {
                let line = serde_json::to_string(r).unwrap_or_default();
                tracing::error!(error = %err, record = %line, "cannot set aside a refused usage record");
            }
        }
    }

    /// Appends what has arrived in the queue to the spill file (records already taken out of the
    /// queue but not yet stored, in `incoming`, go first). If the disk fails, they stay in
    /// `incoming` for the next attempt.
    async fn spill_arrivals(&mut self, spill: &mut SpillFile, incoming: &mut Vec<UsageRecord>) {
        while let Ok(r) = self.rx.try_recv() {
            incoming.push(r);
        }
        if incoming.is_empty() {
            return;
        }
        match spill.append(incoming).await {
            Ok(()) => {
                self.stats
                    .spilled
                    .fetch_add(incoming.len() as u64, Ordering::Relaxed);
                incoming.clear();
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot spill usage to disk; holding it in memory");
            }
        }
    }

    /// Makes the journal the spill file after a failed write: appends what of `memory` it lacks,
    /// drops from `incoming` what it already holds, and marks the file as the records' place.
    async fn adopt_journal(
        &self,
        spill: &mut SpillFile,
        memory: &[UsageRecord],
        journaled: usize,
        incoming: &mut Vec<UsageRecord>,
    ) -> bool {
        let rest = memory.get(journaled..).unwrap_or_default();
        match spill.append(rest).await {
            Ok(()) => {
                let already = journaled.saturating_sub(memory.len()).min(incoming.len());
                incoming.drain(..already);
                self.stats
                    .spilled
                    .fetch_add(memory.len() as u64, Ordering::Relaxed);
                true
            }
            Err(err) => {
                tracing::error!(error = %err, records = rest.len(), "cannot spill usage to disk; holding it in memory");
                false
            }
        }
    }

    /// Copies `memory` (older than anything in the spill file) in front of the file.
    async fn spill_memory(&self, spill: &mut SpillFile, memory: &[UsageRecord]) -> bool {
        match spill.save_before(memory).await {
            Ok(()) => {
                self.stats
                    .spilled
                    .fetch_add(memory.len() as u64, Ordering::Relaxed);
                true
            }
            Err(err) => {
                tracing::error!(error = %err, records = memory.len(), "cannot spill usage to disk; holding it in memory");
                false
            }
        }
    }

    /// Writes `batch`. A write still running after one gather interval may be a stalled
    /// database (a lock held, a partition, a connect timeout) or only a busy one: either way,
    /// from then on every gather interval copies what waits in memory and what has arrived to
    /// the spill file as a journal, so a crash during the wait loses no more than one interval.
    /// The records stay in memory and are written from there; once they are all stored the
    /// journal is removed unread ([`SpillFile::drop_journal`]). `journaled` counts the records,
    /// in memory order followed by `incoming`, already in the journal. (While the spill file is
    /// the records' place, memory is copied in front of it instead, and the result says whether
    /// it was: its records are then all in the file, some perhaps stored as well, which is
    /// harmless since inserts skip ids already stored.)
    async fn write_durably<'b>(
        &mut self,
        store: &Store,
        batch: &'b [UsageRecord],
        memory: &[UsageRecord],
        journaled: &mut usize,
        spill: &mut SpillFile,
        incoming: &mut Vec<UsageRecord>,
    ) -> (Result<Refused<'b>, StoreError>, bool) {
        let gather = self.spill.gather;
        let insert = insert_isolating(store, batch);
        tokio::pin!(insert);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + gather, gather);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut copied = false;
        loop {
            tokio::select! {
                biased;
                result = &mut insert => return (result, copied),
                _ = tick.tick() => {
                    if spill.active {
                        // The file is already where records wait (memory, older, goes in front
                        // of it once), and arrivals go behind it.
                        if !copied && !memory.is_empty() {
                            copied = self.spill_memory(spill, memory).await;
                        }
                        self.spill_arrivals(spill, incoming).await;
                    } else {
                        self.journal(spill, memory, journaled, incoming).await;
                    }
                }
            }
        }
    }

    /// Copies the records of `memory` and `incoming` not yet in the journal to it, taking what
    /// has arrived in the queue into `incoming` first. If the disk fails they are only in
    /// memory, as before the write stalled.
    async fn journal(
        &mut self,
        spill: &mut SpillFile,
        memory: &[UsageRecord],
        journaled: &mut usize,
        incoming: &mut Vec<UsageRecord>,
    ) {
        while let Ok(r) = self.rx.try_recv() {
            incoming.push(r);
        }
        let from_memory = memory.get(*journaled..).unwrap_or_default();
        let from_incoming = incoming
            .get(journaled.saturating_sub(memory.len())..)
            .unwrap_or_default();
        let n = from_memory.len() + from_incoming.len();
        if n == 0 {
            return;
        }
        match spill
            .append_journal(from_memory.iter().chain(from_incoming))
            .await
        {
            Ok(()) => {
                *journaled += n;
                self.stats.journaled.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot journal usage to disk; holding it in memory");
            }
        }
    }

    /// Waits `delay` before retrying a failed write, spilling arrivals every gather interval
    /// meanwhile (they would otherwise wait in the queue, lost if the process dies).
    async fn wait_spilling(
        &mut self,
        delay: Duration,
        cancel: &CancellationToken,
        spill: &mut SpillFile,
        incoming: &mut Vec<UsageRecord>,
    ) {
        let gather = self.spill.gather;
        let deadline = tokio::time::sleep(delay);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + gather, gather);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut deadline => return,
                () = cancel.cancelled() => return,
                _ = tick.tick() => self.spill_arrivals(spill, incoming).await,
            }
        }
    }

    /// Writes until `cancel` fires and everything queued is stored or spilled.
    pub async fn run(mut self, store: Store, cancel: CancellationToken) {
        let stats = Arc::clone(&self.stats);
        let mut spill = SpillFile::open(self.spill.clone()).await;
        let mut memory: VecDeque<UsageRecord> = VecDeque::new();
        let mut backoff = FIRST_BACKOFF;
        let mut stopping = false;
        let mut incoming = Vec::with_capacity(BATCH);
        // Records at the front of `memory` (then `incoming`) copied to the journal.
        let mut journaled = 0usize;
        loop {
            if spill.active {
                // The file holds everything in order now; a journal it was is part of it.
                journaled = 0;
            }
            // 1. Take what has arrived; when idle, wait for the next record or the stop signal.
            // (Records journaled during the last write may wait in `incoming`.)
            if memory.is_empty() && incoming.is_empty() && !spill.active && !stopping {
                tokio::select! {
                    n = self.rx.recv_many(&mut incoming, BATCH) => {
                        if n == 0 { stopping = true; }
                        tokio::time::sleep(self.spill.gather).await;
                    }
                    () = cancel.cancelled() => { stopping = true; }
                }
            }
            // The stop signal must also be noticed while a backlog is being retried.
            if !stopping && cancel.is_cancelled() {
                stopping = true;
            }
            if stopping {
                self.rx.close();
            }
            while let Ok(r) = self.rx.try_recv() {
                incoming.push(r);
            }
            // 2. Keep order: behind an active spill file, or past the memory bound, go to disk.
            if !incoming.is_empty() {
                if spill.active || memory.len() + incoming.len() > self.spill.memory_records {
                    self.spill_arrivals(&mut spill, &mut incoming).await;
                }
                // What could not be spilled (the disk failed too) is held in memory.
                memory.extend(incoming.drain(..));
            }
            // 3. Write the oldest records: memory first (it is older than the file), then the file.
            // Written from where they wait, not from copies: the batch borrows the queue.
            memory.make_contiguous();
            let read_back: Vec<UsageRecord>;
            let waiting = memory.as_slices().0;
            let (batch, next_offset): (&[UsageRecord], _) = if !waiting.is_empty() {
                (&waiting[..waiting.len().min(BATCH)], None)
            } else if spill.active {
                match spill.read(BATCH).await {
                    Ok((records, offset)) => {
                        read_back = records;
                        (&read_back, Some(offset))
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "cannot read the usage spill file");
                        (&[], None)
                    }
                }
            } else if stopping {
                return;
            } else {
                continue;
            };
            if batch.is_empty() {
                if let Some(offset) = next_offset {
                    spill.offset = offset;
                }
                if spill.active {
                    if let Err(err) = spill.finish_if_drained().await {
                        tracing::error!(error = %err, "cannot finish the usage spill file");
                    }
                }
                if stopping && memory.is_empty() && !spill.active {
                    return;
                }
                continue;
            }
            let started = Instant::now();
            let n = batch.len();
            let (result, copied) = self
                .write_durably(
                    &store,
                    batch,
                    waiting,
                    &mut journaled,
                    &mut spill,
                    &mut incoming,
                )
                .await;
            let failure = match result {
                // Everything in memory is in the spill file too: its replay stores and counts it.
                Ok(_) if copied => None,
                Ok(refused) => {
                    let stored = n - refused.len();
                    if !refused.is_empty() {
                        self.set_aside(&refused).await;
                    }
                    match next_offset {
                        Some(offset) => spill.offset = offset,
                        None => {
                            memory.drain(..n);
                            journaled = journaled.saturating_sub(n);
                            if journaled == 0 {
                                // Everything the journal held is stored: it is not read back.
                                if let Err(err) = spill.drop_journal().await {
                                    tracing::error!(error = %err, "cannot remove the usage journal");
                                }
                            }
                        }
                    }
                    stats.written.fetch_add(stored as u64, Ordering::Relaxed);
                    stats.pending.fetch_sub(
                        (n as u64).min(stats.pending.load(Ordering::Relaxed)),
                        Ordering::Relaxed,
                    );
                    stats.last_flush_micros.store(
                        u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                        Ordering::Relaxed,
                    );
                    None
                }
                Err(err) => Some(err),
            };
            if copied {
                memory.clear();
            }
            let Some(err) = failure else {
                backoff = FIRST_BACKOFF;
                continue;
            };
            stats.write_errors.fetch_add(1, Ordering::Relaxed);
            // The database is away for an unknown time: what waits in memory goes to disk now,
            // and the file is what gets retried.
            if !memory.is_empty() || journaled > 0 {
                memory.make_contiguous();
                let moved = if spill.active {
                    self.spill_memory(&mut spill, memory.as_slices().0).await
                } else {
                    // A journal already holds the front of memory (and perhaps of `incoming`):
                    // the rest goes behind it, and the file becomes the records' place.
                    self.adopt_journal(&mut spill, memory.as_slices().0, journaled, &mut incoming)
                        .await
                };
                if moved {
                    memory.clear();
                    journaled = 0;
                } else if stopping {
                    tracing::error!(
                        records = memory.len(),
                        "cannot spill usage at shutdown; records are lost"
                    );
                }
            }
            if stopping {
                // Exit promptly: the next start replays the file.
                tracing::warn!("database unreachable at shutdown; usage left in the spill file");
                return;
            }
            tracing::warn!(error = %err, records = n, "cannot write usage; retrying");
            self.wait_spilling(backoff, &cancel, &mut spill, &mut incoming)
                .await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
