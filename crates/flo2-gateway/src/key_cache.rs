//! Gateway-key lookups from memory.
//!
//! Found keys are cached until a change notice says otherwise; unknown hashes are cached
//! briefly, so a flood of made-up (but well-formed) keys costs one database read each per
//! minute at most. The change feed invalidates both, and an epoch counter stops a lookup that
//! raced with an invalidation from caching what it read before the change.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flo2_core::{GatewayKeyId, OrgId, TeamId};
use flo2_store::{Store, StoreError};
use flo2_vault::gateway_key::KeyHash;
use moka::sync::Cache;

/// What the data plane needs to know about an authenticated key.
#[derive(Clone, Debug)]
pub struct KeyEntry {
    /// The key.
    pub id: GatewayKeyId,
    /// Its organization: the tenant every later step is scoped to.
    pub org: OrgId,
    /// Its team.
    pub team: TeamId,
    /// Revoked keys are cached too, so they are refused without a database read.
    pub revoked: bool,
}

/// The key cache.
pub struct KeyCache {
    store: Store,
    found: Cache<[u8; 32], Arc<KeyEntry>>,
    unknown: Cache<[u8; 32], ()>,
    epoch: AtomicU64,
}

impl KeyCache {
    /// A cache in front of `store` holding up to `capacity` keys.
    pub fn new(store: Store, capacity: u64) -> Self {
        Self {
            store,
            found: Cache::new(capacity),
            unknown: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(Duration::from_secs(60))
                .build(),
            epoch: AtomicU64::new(0),
        }
    }

    /// The key with this hash; `None` when no such key exists.
    pub async fn lookup(&self, hash: &KeyHash) -> Result<Option<Arc<KeyEntry>>, StoreError> {
        if let Some(entry) = self.found.get(&hash.0) {
            return Ok(Some(entry));
        }
        if self.unknown.contains_key(&hash.0) {
            return Ok(None);
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let result = match self.store.gateway_key_by_hash(&hash.0).await {
            Ok(key) => Some(Arc::new(KeyEntry {
                id: key.id,
                org: key.org_id,
                team: key.team_id,
                revoked: key.revoked_at.is_some(),
            })),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e),
        };
        // Cache only if no invalidation happened while we read; otherwise the next request reads again.
        if self.epoch.load(Ordering::Acquire) == epoch {
            match &result {
                Some(entry) => self.found.insert(hash.0, Arc::clone(entry)),
                None => self.unknown.insert(hash.0, ()),
            }
        }
        Ok(result)
    }

    /// Forgets what is known about one key hash.
    pub fn invalidate(&self, hash: &[u8; 32]) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.found.invalidate(hash);
        self.unknown.invalidate(hash);
    }

    /// Forgets everything (used when change notices may have been missed).
    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.found.invalidate_all();
        self.unknown.invalidate_all();
    }
}
