//! Usage records leave the request path through a bounded queue; one writer task stores them in
//! batches (a batch gathers for 100 ms after its first record) and loses none:
//!
//! - while the database is unreachable, records wait in memory and the batch is retried with
//!   backoff;
//! - past a memory bound they are appended, in arrival order, to a local spill file (JSON lines),
//!   and once a spill file exists every new record goes behind them, so order is kept;
//! - when the database is back the spill file is replayed from its start, then removed;
//! - at shutdown everything queued is written, or, if the database is down, spilled, so the
//!   process exits promptly and the next start replays the file;
//! - inserts are idempotent by record id, so a batch retried after an unclear failure is not
//!   duplicated;
//! - a batch the database refuses for what it holds (a constraint, a value it cannot store) is
//!   written in halves until the refused records stand alone; those are set aside in
//!   `usage-refused.jsonl` beside the spill file, so one bad record never holds back the rest.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flo2_store::{Store, StoreError, UsageRecord};
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

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
    /// Records waiting in memory or on disk.
    pub pending: AtomicU64,
    /// Failed write attempts.
    pub write_errors: AtomicU64,
    /// Records the database refused, set aside in the refused file. Should stay 0.
    pub refused: AtomicU64,
    /// Duration of the last successful batch write, in microseconds.
    pub last_flush_micros: AtomicU64,
}

/// How usage is batched, and where and when it spills.
#[derive(Clone, Debug)]
pub struct SpillSettings {
    /// The spill file.
    pub path: PathBuf,
    /// Records held in memory before spilling starts.
    pub memory_records: usize,
    /// How long a batch gathers once its first record has arrived. Longer batches cost the
    /// database less in all, shorter ones spread its work into smaller bursts.
    pub gather: Duration,
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

/// `records` as JSON lines, the format of the spill and refused files.
fn json_lines<'r>(records: impl IntoIterator<Item = &'r UsageRecord>) -> std::io::Result<String> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    Ok(text)
}

/// Appends `records` to `path` as JSON lines and syncs them to disk.
async fn append_lines<'r>(
    path: &Path,
    records: impl IntoIterator<Item = &'r UsageRecord>,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let text = json_lines(records)?;
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    file.write_all(text.as_bytes()).await?;
    file.sync_data().await
}

/// Writes `batch`. When the database refuses it for what it holds, writes it in halves until
/// each refused record stands alone, and returns those with the reason; the rest are stored.
/// An outage is returned as an error: the caller retries the whole batch, which is safe because
/// inserts skip ids already stored.
async fn insert_isolating<'b>(
    store: &Store,
    batch: &'b [UsageRecord],
) -> Result<Vec<(&'b UsageRecord, StoreError)>, StoreError> {
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

/// Where refused records go: beside the spill file, never replayed (they would be refused
/// again), kept for an operator to inspect and, once the cause is fixed, load by hand.
fn refused_path(spill: &Path) -> PathBuf {
    spill.with_file_name("usage-refused.jsonl")
}

/// The spill file: appended at the end, replayed from `offset`.
struct SpillFile {
    settings: SpillSettings,
    /// Bytes of the file already replayed.
    offset: u64,
    /// Whether the file exists (new records must go behind it).
    active: bool,
}

impl SpillFile {
    async fn open(settings: SpillSettings) -> Self {
        let active = tokio::fs::metadata(&settings.path).await.is_ok();
        if active {
            tracing::info!(path = %settings.path.display(), "replaying usage spilled by an earlier run");
        }
        Self {
            settings,
            offset: 0,
            active,
        }
    }

    async fn append(&mut self, records: &[UsageRecord]) -> std::io::Result<()> {
        append_lines(&self.settings.path, records).await?;
        self.active = true;
        Ok(())
    }

    /// Saves records that are older than everything in the file: they go in front of the part not
    /// yet replayed (written to a new file, then renamed over the old one, so a crash leaves one
    /// complete file or the other).
    async fn save_before(&mut self, older: &[UsageRecord]) -> std::io::Result<()> {
        if !self.active {
            return self.append(older).await;
        }
        let mut rest = Vec::new();
        {
            let mut file = tokio::fs::File::open(&self.settings.path).await?;
            file.seek(std::io::SeekFrom::Start(self.offset)).await?;
            tokio::io::AsyncReadExt::read_to_end(&mut file, &mut rest).await?;
        }
        let text = json_lines(older)?;
        let tmp = self.settings.path.with_extension("tmp");
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(text.as_bytes()).await?;
        file.write_all(&rest).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, &self.settings.path).await?;
        self.offset = 0;
        Ok(())
    }

    /// Up to `max` records from the replay position, and the position after them.
    async fn read(&self, max: usize) -> std::io::Result<(Vec<UsageRecord>, u64)> {
        let mut file = tokio::fs::File::open(&self.settings.path).await?;
        file.seek(std::io::SeekFrom::Start(self.offset)).await?;
        let mut reader = BufReader::new(file);
        let mut out = Vec::new();
        let mut offset = self.offset;
        let mut line = String::new();
        while out.len() < max {
            line.clear();
            let n = reader.read_line(&mut line).await?;
            if n == 0 || !line.ends_with('\n') {
                break; // end, or a line still being written (never, single writer) / torn by a crash
            }
            offset += n as u64;
            match serde_json::from_str(line.trim_end()) {
                Ok(r) => out.push(r),
                Err(err) => {
                    tracing::error!(error = %err, "skipping an unreadable spilled usage line")
                }
            }
        }
        Ok((out, offset))
    }

    async fn finish_if_drained(&mut self) -> std::io::Result<()> {
        let len = tokio::fs::metadata(&self.settings.path).await?.len();
        if self.offset >= len {
            tokio::fs::remove_file(&self.settings.path).await?;
            self.offset = 0;
            self.active = false;
            tracing::info!("spilled usage fully replayed");
        }
        Ok(())
    }
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

    /// Writes until `cancel` fires and everything queued is stored or spilled.
    pub async fn run(mut self, store: Store, cancel: CancellationToken) {
        let stats = Arc::clone(&self.stats);
        let mut spill = SpillFile::open(self.spill.clone()).await;
        let mut memory: VecDeque<UsageRecord> = VecDeque::new();
        let mut backoff = FIRST_BACKOFF;
        let mut stopping = false;
        let mut incoming = Vec::with_capacity(BATCH);
        loop {
            // 1. Take what has arrived; when idle, wait for the next record or the stop signal.
            if memory.is_empty() && !spill.active && !stopping {
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
                    match spill.append(&incoming).await {
                        Ok(()) => {
                            stats
                                .spilled
                                .fetch_add(incoming.len() as u64, Ordering::Relaxed);
                            incoming.clear();
                        }
                        Err(err) => {
                            // The disk failed too: hold the records in memory rather than lose them.
                            tracing::error!(error = %err, "cannot spill usage to disk; holding it in memory");
                            memory.extend(incoming.drain(..));
                        }
                    }
                } else {
                    memory.extend(incoming.drain(..));
                }
            }
            // 3. Write the oldest records: memory first (it is older than the file), then the file.
            // Written from where they wait, not from copies: the batch borrows the queue.
            let read_back: Vec<UsageRecord>;
            let (batch, next_offset): (&[UsageRecord], _) = if !memory.is_empty() {
                let waiting = memory.make_contiguous();
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
            match insert_isolating(&store, batch).await {
                Ok(refused) => {
                    let stored = n - refused.len();
                    if !refused.is_empty() {
                        self.set_aside(&refused).await;
                    }
                    match next_offset {
                        Some(offset) => spill.offset = offset,
                        None => {
                            memory.drain(..n);
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
                    backoff = FIRST_BACKOFF;
                }
                Err(err) => {
                    stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    if stopping {
                        // Exit promptly: what is in memory goes to disk for the next start.
                        let held: Vec<UsageRecord> = memory.drain(..).collect();
                        if !held.is_empty() {
                            tracing::warn!(
                                records = held.len(),
                                "database unreachable at shutdown; spilling usage to disk"
                            );
                            if let Err(e) = spill.save_before(&held).await {
                                tracing::error!(error = %e, "cannot spill usage at shutdown; records are lost");
                            }
                        }
                        return;
                    }
                    tracing::warn!(error = %err, records = n, "cannot write usage; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = cancel.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
