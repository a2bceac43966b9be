//! Each organization's gateway configuration, decrypted once and held in memory: the data plane
//! reads provider keys from here, never from the database on a request.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use flo2_core::{CredentialId, ModelPrice, OrgId, ProviderKind, RoutePolicy, Secret};
use flo2_store::{NewAuditEntry, PriceOverride, SkippedEntry, Store, StoreError};
use flo2_vault::MasterKeyring;
use moka::sync::Cache;

use crate::state::fresh_cache::FreshCache;

/// One usable provider credential, decrypted.
#[derive(Clone, Debug)]
pub struct CredentialEntry {
    /// Its id.
    pub id: CredentialId,
    /// Its provider.
    pub provider: ProviderKind,
    /// Its name.
    pub name: String,
    /// Base URL override.
    pub base_url: Option<String>,
    /// The provider key; prints as `*****`.
    pub secret: Secret<String>,
}

/// A model's limits and features; `None` where nothing is known (such a target is not skipped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Context window in tokens.
    pub context_window: Option<u64>,
    /// Tool calling.
    pub tools: Option<bool>,
    /// Image input.
    pub vision: Option<bool>,
    /// JSON mode / structured output.
    pub json: Option<bool>,
}

/// What the data plane knows about an organization.
#[derive(Debug, Default)]
pub struct OrgConfig {
    /// Its credentials, by name.
    pub credentials: Vec<Arc<CredentialEntry>>,
    /// Its price overrides (all of them: which applies depends on the time of the call).
    pub prices: Vec<PriceOverride>,
    /// Its routes by name.
    pub routes: HashMap<String, Arc<RoutePolicy>>,
}

impl OrgConfig {
    /// The price of `provider/model` for a call starting at `at`: the newest override already in
    /// effect, else the catalog's list price; `None` for a model with neither.
    pub fn price_at(
        &self,
        provider: ProviderKind,
        model: &str,
        at: DateTime<Utc>,
    ) -> Option<ModelPrice> {
        self.prices
            .iter()
            .filter(|p| p.provider == provider && p.model == model && p.effective_from <= at)
            .max_by_key(|p| p.effective_from)
            .map(|p| p.price.clone())
            .or_else(|| flo2_llm::catalog::find(provider, model).map(|m| m.price.clone()))
    }

    /// What `provider/model` can do, as the organization states it in its newest price in effect,
    /// else as the catalog says; `None` where neither knows.
    pub fn capabilities(
        &self,
        provider: ProviderKind,
        model: &str,
        at: DateTime<Utc>,
    ) -> Capabilities {
        let stated = self
            .prices
            .iter()
            .filter(|p| p.provider == provider && p.model == model && p.effective_from <= at)
            .max_by_key(|p| p.effective_from);
        let catalog = flo2_llm::catalog::find(provider, model);
        Capabilities {
            context_window: stated
                .and_then(|p| p.context_window)
                .and_then(|w| u64::try_from(w).ok())
                .or(catalog.map(|m| m.context_window)),
            tools: stated.and_then(|p| p.tools).or(catalog.map(|m| m.tools)),
            vision: stated.and_then(|p| p.vision).or(catalog.map(|m| m.vision)),
            json: stated.and_then(|p| p.json).or(catalog.map(|m| m.json)),
        }
    }

    /// The providers this organization holds at least one key for, in catalog order.
    pub fn providers(&self) -> Vec<ProviderKind> {
        ProviderKind::ALL
            .into_iter()
            .filter(|p| self.credentials.iter().any(|c| c.provider == *p))
            .collect()
    }
}

/// How long a failed load answers for the requests behind it before the database is tried again.
const RETRY_LOAD_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the last load of an organization failed, and when.
struct LoadFailure {
    at: std::time::Instant,
    reason: String,
}

/// The organization cache.
pub struct OrgCache {
    store: Store,
    keyring: Arc<MasterKeyring>,
    configs: FreshCache<OrgId, Arc<OrgConfig>>,
    /// One load at a time per organization: when a busy organization's entry is invalidated,
    /// the requests that miss wait for one load (of possibly thousands of routes) instead of
    /// each reading and decrypting it again. The gate holds the last load's failure, so while
    /// the database is down the waiters fail at once with it instead of each waiting out the
    /// database in turn.
    loading: Cache<OrgId, Arc<tokio::sync::Mutex<Option<LoadFailure>>>>,
    /// Entries already reported as skipped, so every reload (each change notice) does not add
    /// another audit entry for the same bad row.
    reported: Cache<(OrgId, &'static str, Option<String>), ()>,
}

impl OrgCache {
    /// A cache in front of `store` for up to `capacity` organizations.
    pub fn new(store: Store, keyring: Arc<MasterKeyring>, capacity: u64) -> Self {
        Self {
            store,
            keyring,
            configs: FreshCache::new(Cache::new(capacity)),
            loading: Cache::builder()
                .time_to_idle(std::time::Duration::from_secs(60))
                .build(),
            reported: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(std::time::Duration::from_secs(3600))
                .build(),
        }
    }

    /// `org`'s configuration, loading and decrypting it on first use.
    pub async fn get(&self, org: OrgId) -> Result<Arc<OrgConfig>, StoreError> {
        if let Some(config) = self.configs.get(&org) {
            return Ok(config);
        }
        // Boxed: the load's futures (database reads, the gate) are large, and every request's
        // future embeds this one, so inline they would make each request carry that size.
        Box::pin(self.get_missed(org)).await
    }

    /// A get that missed the cache: one load at a time per organization.
    async fn get_missed(&self, org: OrgId) -> Result<Arc<OrgConfig>, StoreError> {
        let gate = self.loading.get_with(org, Arc::default);
        let mut last_failure = gate.lock().await;
        if let Some(config) = self.configs.get(&org) {
            return Ok(config);
        }
        if let Some(failed) = last_failure
            .as_ref()
            .filter(|f| f.at.elapsed() < RETRY_LOAD_AFTER)
        {
            return Err(StoreError::Unavailable(failed.reason.clone()));
        }
        let ticket = self.configs.ticket();
        match self.load(org).await {
            Ok(config) => {
                *last_failure = None;
                let config = Arc::new(config);
                self.configs.insert(org, Arc::clone(&config), ticket);
                Ok(config)
            }
            Err(err) => {
                *last_failure = Some(LoadFailure {
                    at: std::time::Instant::now(),
                    reason: err.to_string(),
                });
                Err(err)
            }
        }
    }

    /// Logs an entry of `org`'s configuration that cannot be loaded and records it in the
    /// organization's audit log (`config.entry_skipped`), once per entry and hour.
    async fn skipped(&self, org: OrgId, entry: SkippedEntry) {
        tracing::error!(%org, table = entry.table, id = ?entry.id, reason = %entry.reason,
            "a stored configuration entry cannot be loaded; serving the organization without it");
        let key = (org, entry.table, entry.id.clone());
        if self.reported.contains_key(&key) {
            return;
        }
        self.reported.insert(key, ());
        let target_type = match entry.table {
            "prices" => "price",
            "routes" => "route",
            _ => "provider_key",
        };
        let audit = NewAuditEntry {
            actor: None,
            action: "config.entry_skipped".to_owned(),
            target_type: target_type.to_owned(),
            target_id: entry.id,
            client_address: None,
            details: serde_json::json!({"table": entry.table, "reason": entry.reason}),
        };
        if let Err(err) = self.store.record_audit(org, &audit).await {
            tracing::error!(%org, error = %err, "cannot record the skipped entry in the audit log");
        }
    }

    async fn load(&self, org: OrgId) -> Result<OrgConfig, StoreError> {
        let prices = self.store.prices_loaded(org).await?;
        let routes = self.store.routes_loaded(org).await?;
        let stored = self.store.credentials_loaded(org).await?;
        for entry in prices
            .skipped
            .into_iter()
            .chain(routes.skipped)
            .chain(stored.skipped)
        {
            self.skipped(org, entry).await;
        }
        let prices = prices.entries;
        let routes = routes
            .entries
            .into_iter()
            .map(|r| (r.name, Arc::new(r.policy)))
            .collect();
        let stored = stored.entries;
        if stored.is_empty() {
            return Ok(OrgConfig {
                credentials: Vec::new(),
                prices,
                routes,
            });
        }
        let data_key = self.store.data_key(org).await?;
        let dek = match self
            .keyring
            .unwrap_stored(org, &data_key.key_id, data_key.wrapped)
        {
            Ok(dek) => dek,
            Err(err) => {
                // Serve the organization without keys rather than fail every request; the error
                // says which organization needs attention, never any key material.
                tracing::error!(%org, error = %err, "cannot unwrap the organization's data key");
                return Ok(OrgConfig {
                    credentials: Vec::new(),
                    prices,
                    routes,
                });
            }
        };
        let mut credentials = Vec::with_capacity(stored.len());
        for c in stored {
            match dek.open_credential(org, c.id, &c.ciphertext) {
                Ok(secret) => credentials.push(Arc::new(CredentialEntry {
                    id: c.id,
                    provider: c.provider,
                    name: c.name,
                    base_url: c.base_url,
                    secret,
                })),
                Err(err) => {
                    let entry = SkippedEntry {
                        table: "provider_credentials",
                        id: Some(c.id.to_string()),
                        reason: format!("cannot decrypt the provider key: {err}"),
                    };
                    self.skipped(org, entry).await;
                }
            }
        }
        Ok(OrgConfig {
            credentials,
            prices,
            routes,
        })
    }

    /// Forgets `org`'s configuration.
    pub fn invalidate(&self, org: OrgId) {
        self.configs.invalidate(&org);
    }

    /// Forgets every organization's configuration.
    pub fn invalidate_all(&self) {
        self.configs.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flo2_store::PoolOptions;
    use flo2_vault::{MasterKey, MasterKeyring};

    /// A database that fails every load: an in-memory SQLite with no tables.
    async fn broken_cache() -> OrgCache {
        let store = Store::connect("sqlite::memory:", &PoolOptions::default())
            .await
            .unwrap();
        OrgCache::new(
            store,
            Arc::new(MasterKeyring::new(MasterKey::generate())),
            10,
        )
    }

    #[tokio::test]
    async fn requests_behind_a_failed_load_fail_at_once_with_its_reason() {
        let cache = broken_cache().await;
        let org = OrgId::new();
        let first = cache.get(org).await.err().unwrap();
        assert!(matches!(first, StoreError::Database(_)), "{first}");
        // Within RETRY_LOAD_AFTER the database is not asked again: the failure is shared.
        let second = cache.get(org).await.err().unwrap();
        assert!(
            matches!(&second, StoreError::Unavailable(reason) if *reason == first.to_string()),
            "{second}"
        );
        // Another organization is not held back by it.
        let other = cache.get(OrgId::new()).await.err().unwrap();
        assert!(matches!(other, StoreError::Database(_)), "{other}");
        // After it, the database is tried again.
        tokio::time::sleep(RETRY_LOAD_AFTER + std::time::Duration::from_millis(50)).await;
        let later = cache.get(org).await.err().unwrap();
        assert!(matches!(later, StoreError::Database(_)), "{later}");
    }
}
