//! A moka cache that a load racing with an invalidation cannot fill with stale data.
//!
//! A cache miss reads the database and then inserts what it read. If a change commits (and its
//! notice invalidates the entry) between that read and the insert, a plain cache would keep the
//! pre-change value until the next notice, which may never come. So a reader takes a
//! [`Ticket`] before it reads, and its insert is dropped when the same entry (or everything)
//! was invalidated after the ticket was taken.
//!
//! Invalidations are tracked per entry, not globally: a stream of notices about other keys or
//! organizations (a console creating ten thousand keys, a replica catching up on the change log)
//! never stops unrelated entries from being cached.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

/// How long an entry's invalidation is remembered: far longer than any database read may take
/// (reads time out after a few seconds).
const REMEMBER_INVALIDATIONS: Duration = Duration::from_secs(120);

/// Taken before reading the source of an entry; see the module docs.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

/// The cache.
pub struct FreshCache<K, V> {
    values: Cache<K, V>,
    /// The epoch of each entry's latest invalidation.
    invalidated: Cache<K, u64>,
    /// The epoch of the latest invalidation of everything.
    all_invalidated: AtomicU64,
    epoch: AtomicU64,
}

impl<K, V> FreshCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Wraps `values` (sized and timed by the caller).
    pub fn new(values: Cache<K, V>) -> Self {
        Self {
            invalidated: Cache::builder()
                .time_to_live(REMEMBER_INVALIDATIONS)
                .build(),
            values,
            all_invalidated: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    /// The cached value.
    pub fn get(&self, key: &K) -> Option<V> {
        self.values.get(key)
    }

    /// Whether `key` is cached.
    pub fn contains(&self, key: &K) -> bool {
        self.values.contains_key(key)
    }

    /// Take this before reading the source of an entry.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.epoch.load(Ordering::Acquire))
    }

    /// Caches `value`, read after `ticket` was taken, unless `key` has been invalidated since.
    pub fn insert(&self, key: K, value: V, ticket: Ticket) {
        if self.stale(&key, ticket) {
            return;
        }
        self.values.insert(key.clone(), value);
        // An invalidation between the check and the insert recorded its epoch before it removed
        // the entry, so one of the two sees the other: look again and undo if needed.
        if self.stale(&key, ticket) {
            self.values.invalidate(&key);
        }
    }

    fn stale(&self, key: &K, ticket: Ticket) -> bool {
        self.all_invalidated.load(Ordering::Acquire) > ticket.0
            || self.invalidated.get(key).is_some_and(|at| at > ticket.0)
    }

    fn next_epoch(&self) -> u64 {
        self.epoch.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Forgets `key`, and refuses inserts read before now.
    pub fn invalidate(&self, key: &K) {
        let at = self.next_epoch();
        self.invalidated.insert(key.clone(), at);
        self.values.invalidate(key);
    }

    /// Forgets everything, and refuses inserts read before now.
    pub fn invalidate_all(&self) {
        let at = self.next_epoch();
        self.all_invalidated.fetch_max(at, Ordering::AcqRel);
        self.values.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> FreshCache<u32, &'static str> {
        FreshCache::new(Cache::new(100))
    }

    #[test]
    fn a_read_that_raced_with_its_own_invalidation_is_not_cached() {
        let c = cache();
        let ticket = c.ticket();
        c.invalidate(&1);
        c.insert(1, "old", ticket);
        assert_eq!(c.get(&1), None);
        let ticket = c.ticket();
        c.insert(1, "new", ticket);
        assert_eq!(c.get(&1), Some("new"));
    }

    #[test]
    fn invalidating_other_entries_does_not_stop_caching() {
        let c = cache();
        let ticket = c.ticket();
        for other in 2..50 {
            c.invalidate(&other);
        }
        c.insert(1, "v", ticket);
        assert_eq!(c.get(&1), Some("v"));
    }

    #[test]
    fn invalidating_everything_refuses_every_earlier_read() {
        let c = cache();
        let ticket = c.ticket();
        c.insert(1, "v", ticket);
        c.invalidate_all();
        assert_eq!(c.get(&1), None);
        c.insert(2, "old", ticket);
        assert_eq!(c.get(&2), None);
        c.insert(2, "new", c.ticket());
        assert!(c.contains(&2));
    }
}
