//! Applies change notices to the caches: synchronously for changes made in this process, and by
//! polling the change log for changes made by other processes (the console, other replicas).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flo2_store::{Change, ChangeKind, Store};
use tokio_util::sync::CancellationToken;

use crate::state::key_cache::KeyCache;
use crate::state::org_cache::OrgCache;

/// How long a missing sequence number is waited for before it is taken for a rolled-back write.
const GAP_TIMEOUT: Duration = Duration::from_secs(10);
const BATCH: i64 = 1000;

/// The caches a change can touch.
#[derive(Clone)]
pub struct Caches {
    /// Gateway keys.
    pub keys: Arc<KeyCache>,
    /// Organization configurations.
    pub orgs: Arc<OrgCache>,
    /// Sequence numbers of notices applied as this process published them, which the poller
    /// then skips: without this, every change made through this process's console would be
    /// applied twice, and a burst of them (ten thousand keys created) would invalidate the
    /// caches a second time, seconds later, while traffic is warming them.
    applied_here: Arc<Mutex<Vec<i64>>>,
}

impl Caches {
    /// The caches to keep fresh.
    pub fn new(keys: Arc<KeyCache>, orgs: Arc<OrgCache>) -> Self {
        Self {
            keys,
            orgs,
            applied_here: Arc::default(),
        }
    }

    fn applied_here(&self) -> std::sync::MutexGuard<'_, Vec<i64>> {
        match self.applied_here.lock() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Notes that the notice `seq` was applied as this process published it.
    fn note_applied_here(&self, seq: i64) {
        let mut applied = self.applied_here();
        // Bounded in case nothing polls (the list is only an optimisation: a notice applied
        // twice is harmless).
        if applied.len() >= 100_000 {
            applied.clear();
        }
        applied.push(seq);
    }

    fn take_applied_here(&self) -> Vec<i64> {
        std::mem::take(&mut *self.applied_here())
    }

    fn apply(&self, change: &Change) {
        match change.kind {
            ChangeKind::GatewayKey => match decode_hash(&change.key) {
                Some(hash) => self.keys.invalidate(&hash),
                None => self.keys.invalidate_all(),
            },
            ChangeKind::OrgConfig => match change.org {
                Some(org) => self.orgs.invalidate(org),
                None => self.orgs.invalidate_all(),
            },
        }
    }

    fn invalidate_all(&self) {
        self.keys.invalidate_all();
        self.orgs.invalidate_all();
    }
}

fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Subscribes the caches to changes committed through `store` in this process.
pub fn subscribe(store: &Store, caches: &Caches) {
    let caches = caches.clone();
    store.subscribe(move |change| {
        caches.apply(change);
        if change.seq > 0 {
            caches.note_applied_here(change.seq);
        }
    });
}

/// Which sequence numbers have been applied. PostgreSQL sequence numbers can commit out of
/// order, so a number seen missing is remembered and looked for again until it shows up or
/// [`GAP_TIMEOUT`] passes (a rolled-back write leaves a permanent hole).
#[derive(Debug)]
struct Cursor {
    watermark: i64,
    seen_above: BTreeSet<i64>,
    gap: Option<(i64, Instant)>,
}

impl Cursor {
    fn new(watermark: i64) -> Self {
        Self {
            watermark,
            seen_above: BTreeSet::new(),
            gap: None,
        }
    }

    /// Records `seq` as applied; false when it already was.
    fn mark(&mut self, seq: i64) -> bool {
        seq > self.watermark && self.seen_above.insert(seq)
    }

    /// Moves the watermark over contiguous applied numbers. True when a gap was given up on,
    /// in which case a notice may have been missed.
    fn advance(&mut self, now: Instant) -> bool {
        let mut gave_up = false;
        loop {
            let next = self.watermark + 1;
            if self.seen_above.remove(&next) {
                self.watermark = next;
                continue;
            }
            if self.seen_above.is_empty() {
                self.gap = None;
                break;
            }
            match self.gap {
                Some((seq, since)) if seq == next && now.duration_since(since) >= GAP_TIMEOUT => {
                    self.watermark = next;
                    self.gap = None;
                    gave_up = true;
                }
                Some((seq, _)) if seq == next => break,
                _ => {
                    self.gap = Some((next, now));
                    break;
                }
            }
        }
        gave_up
    }
}

/// Polls the change log every `interval` until `cancel` fires.
pub async fn poll(store: Store, caches: Caches, interval: Duration, cancel: CancellationToken) {
    let mut cursor = loop {
        match store.latest_change_seq().await {
            Ok(seq) => break Cursor::new(seq),
            Err(err) => {
                tracing::warn!(error = %err, "change log unavailable; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                }
            }
        }
    };
    let mut failing = false;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        // Taken before the log is read: a notice published after this is applied again at
        // worst, never missed.
        for seq in caches.take_applied_here() {
            cursor.mark(seq);
        }
        match store.changes_since(cursor.watermark, BATCH).await {
            Ok(changes) => {
                if failing {
                    tracing::info!("change log reachable again");
                    failing = false;
                }
                for change in &changes {
                    if cursor.mark(change.seq) {
                        caches.apply(change);
                    }
                }
                if cursor.advance(Instant::now()) {
                    tracing::warn!("change log has a hole; dropping every cached entry to be safe");
                    caches.invalidate_all();
                }
            }
            Err(err) => {
                if !failing {
                    tracing::warn!(error = %err, "cannot read the change log; serving from cache");
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_waits_for_out_of_order_commits_then_gives_up() {
        let t0 = Instant::now();
        let mut c = Cursor::new(10);
        assert!(c.mark(12));
        assert!(!c.advance(t0));
        assert_eq!(c.watermark, 10, "11 is missing");
        assert!(c.mark(11));
        assert!(!c.advance(t0));
        assert_eq!(c.watermark, 12);
        assert!(!c.mark(12), "already applied");

        assert!(c.mark(14));
        assert!(!c.advance(t0));
        assert!(!c.advance(t0 + Duration::from_secs(1)));
        assert_eq!(c.watermark, 12);
        assert!(c.advance(t0 + GAP_TIMEOUT + Duration::from_secs(1)));
        assert_eq!(c.watermark, 14);
    }

    #[test]
    fn hashes_decode_from_hex() {
        let hex = "ab".repeat(32);
        assert_eq!(decode_hash(&hex), Some([0xab; 32]));
        assert_eq!(decode_hash("zz"), None);
        assert_eq!(decode_hash(&"g".repeat(64)), None);
    }
}
