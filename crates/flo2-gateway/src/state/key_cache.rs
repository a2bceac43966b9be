//! Gateway-key lookups from memory.
//!
//! Found keys are cached until a change notice says otherwise; unknown hashes are cached
//! briefly, so a flood of made-up (but well-formed) keys costs one database read each per
//! minute at most. The change feed invalidates both, and [`FreshCache`] stops a lookup that
//! raced with an invalidation of the same key from caching what it read before the change.

use std::sync::Arc;
use std::time::Duration;

use flo2_core::{GatewayKeyId, OrgId, TeamId};
use flo2_store::{Store, StoreError};
use flo2_vault::gateway_key::KeyHash;
use moka::sync::Cache;

use crate::state::fresh_cache::FreshCache;

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
    found: FreshCache<[u8; 32], Arc<KeyEntry>>,
    unknown: FreshCache<[u8; 32], ()>,
}

impl KeyCache {
    /// A cache in front of `store` holding up to `capacity` keys.
    pub fn new(store: Store, capacity: u64) -> Self {
        Self {
            store,
            found: FreshCache::new(Cache::new(capacity)),
            unknown: FreshCache::new(
                Cache::builder()
                    .max_capacity(capacity)
                    .time_to_live(Duration::from_secs(60))
                    .build(),
            ),
        }
    }

    /// The key with this hash; `None` when no such key exists.
    pub async fn lookup(&self, hash: &KeyHash) -> Result<Option<Arc<KeyEntry>>, StoreError> {
        if let Some(entry) = self.found.get(&hash.0) {
            return Ok(Some(entry));
        }
        if self.unknown.contains(&hash.0) {
            return Ok(None);
        }
        // Boxed: the database read's future is large, and every request's future embeds this
        // one, so inline it would make each request carry (and move) that size for a miss.
        Box::pin(self.load(hash)).await
    }

    /// A lookup that missed the cache: reads the key and caches what it found.
    async fn load(&self, hash: &KeyHash) -> Result<Option<Arc<KeyEntry>>, StoreError> {
        let (found_ticket, unknown_ticket) = (self.found.ticket(), self.unknown.ticket());
        match self.store.gateway_key_by_hash(&hash.0).await {
            Ok(key) => {
                let entry = Arc::new(KeyEntry {
                    id: key.id,
                    org: key.org_id,
                    team: key.team_id,
                    revoked: key.revoked_at.is_some(),
                });
                self.found.insert(hash.0, Arc::clone(&entry), found_ticket);
                Ok(Some(entry))
            }
            Err(StoreError::NotFound) => {
                self.unknown.insert(hash.0, (), unknown_ticket);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Forgets what is known about one key hash.
    pub fn invalidate(&self, hash: &[u8; 32]) {
        self.found.invalidate(hash);
        self.unknown.invalidate(hash);
    }

    /// Forgets everything (used when change notices may have been missed).
    pub fn invalidate_all(&self) {
        self.found.invalidate_all();
        self.unknown.invalidate_all();
    }
}
