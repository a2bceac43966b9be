//! flo2's data plane: the `/v1` endpoints apps call with a flo2 key.
//!
//! A request never reads the database: keys and organization configurations come from
//! [`key_cache`] and [`org_cache`], kept current by [`change_watcher`]; last-used times leave
//! through [`key_usage`] in batches.

pub mod auth;
pub mod change_watcher;
pub mod error;
pub mod key_cache;
pub mod key_usage;
mod models;
pub mod org_cache;
pub mod request_id;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use flo2_store::Store;
use flo2_vault::MasterKeyring;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use change_watcher::Caches;
use key_cache::KeyCache;
use key_usage::KeyUsage;
use org_cache::OrgCache;

/// Data-plane settings from the operator's configuration.
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// How often to poll the change log for other processes' changes.
    pub change_poll_interval: Duration,
    /// How often to write gateway-key last-used times.
    pub key_touch_interval: Duration,
    /// Most gateway keys held in memory.
    pub key_cache_capacity: u64,
    /// Most organizations held in memory.
    pub org_cache_capacity: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            change_poll_interval: Duration::from_secs(1),
            key_touch_interval: Duration::from_secs(10),
            key_cache_capacity: 100_000,
            org_cache_capacity: 10_000,
        }
    }
}

/// What every data-plane handler can reach.
#[derive(Clone)]
pub struct GatewayState {
    /// The database, for background work only.
    pub store: Store,
    /// Gateway keys by hash.
    pub keys: Arc<KeyCache>,
    /// Organization configurations.
    pub orgs: Arc<OrgCache>,
    /// Pending last-used times.
    pub key_usage: Arc<KeyUsage>,
    /// Settings.
    pub settings: Arc<GatewaySettings>,
}

impl GatewayState {
    /// Builds the caches and subscribes them to this process's changes.
    pub fn new(store: Store, keyring: Arc<MasterKeyring>, settings: GatewaySettings) -> Self {
        let keys = Arc::new(KeyCache::new(store.clone(), settings.key_cache_capacity));
        let orgs = Arc::new(OrgCache::new(
            store.clone(),
            keyring,
            settings.org_cache_capacity,
        ));
        change_watcher::subscribe(
            &store,
            &Caches {
                keys: Arc::clone(&keys),
                orgs: Arc::clone(&orgs),
            },
        );
        Self {
            store,
            keys,
            orgs,
            key_usage: Arc::default(),
            settings: Arc::new(settings),
        }
    }

    /// Starts the background work (change polling, last-used batching) on `tracker`; it stops
    /// when `cancel` fires, after a final flush.
    pub fn spawn_background(&self, tracker: &TaskTracker, cancel: &CancellationToken) {
        let caches = Caches {
            keys: Arc::clone(&self.keys),
            orgs: Arc::clone(&self.orgs),
        };
        tracker.spawn(change_watcher::poll(
            self.store.clone(),
            caches,
            self.settings.change_poll_interval,
            cancel.clone(),
        ));
        let usage = Arc::clone(&self.key_usage);
        let store = self.store.clone();
        let interval = self.settings.key_touch_interval;
        let cancel = cancel.clone();
        tracker.spawn(async move { usage.run(store, interval, cancel).await });
    }
}

/// The data plane's routes.
pub fn router(state: GatewayState) -> Router {
    Router::new()
        .route("/v1/models", get(models::list))
        .with_state(state)
}

/// The `/v1` answer for a path that does not exist, in the caller's shape.
pub fn not_found(path: &str, headers: &axum::http::HeaderMap) -> error::GatewayError {
    error::GatewayError::new(
        error::ApiFormat::detect(path, headers),
        error::ErrorKind::NotFound,
        format!("unknown endpoint {path}"),
    )
}

/// The `/v1` answer for a known path called with the wrong method, in the caller's shape.
pub fn method_not_allowed(path: &str, headers: &axum::http::HeaderMap) -> error::GatewayError {
    error::GatewayError::new(
        error::ApiFormat::detect(path, headers),
        error::ErrorKind::MethodNotAllowed,
        format!("{path} does not accept this method"),
    )
}
