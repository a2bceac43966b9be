//! The data plane's shared parts, built once at start and reached by every handler through
//! [`GatewayState`]: the composition root. It holds the parts (caches, health, upstream client,
//! usage sink) and starts their background work; the parts never reach back into it, except
//! that stages read it to find them.

use std::sync::Arc;

use flo2_store::Store;
use flo2_vault::MasterKeyring;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metering::key_usage::KeyUsage;
use crate::metering::overhead;
use crate::metering::usage_sink::{self, UsageSink, UsageWriter};
use crate::settings::GatewaySettings;
use crate::state::change_watcher::{self, Caches};
use crate::state::key_cache::KeyCache;
use crate::state::org_cache::OrgCache;
use crate::state::{admission, health};
use crate::upstream::client::{self as upstream, Upstream};

/// What every data-plane handler can reach: one shared allocation, so the per-request clones
/// axum makes of its state cost one reference count instead of one per field.
#[derive(Clone)]
pub struct GatewayState(Arc<Gateway>);

impl std::ops::Deref for GatewayState {
    type Target = Gateway;
    fn deref(&self) -> &Gateway {
        &self.0
    }
}

/// The data plane's shared parts (reached through [`GatewayState`]).
pub struct Gateway {
    /// The database, for background work only.
    pub(crate) store: Store,
    /// Gateway keys by hash.
    pub(crate) keys: Arc<KeyCache>,
    /// Organization configurations.
    pub(crate) orgs: Arc<OrgCache>,
    /// Pending last-used times.
    pub(crate) key_usage: Arc<KeyUsage>,
    /// The upstream HTTP client.
    pub(crate) upstream: Upstream,
    /// Where usage records go.
    pub(crate) usage: UsageSink,
    usage_writer: Arc<std::sync::Mutex<Option<UsageWriter>>>,
    caches: Caches,
    /// What this replica knows of its upstreams' health and speed.
    pub(crate) health: Arc<health::Health>,
    /// Requests in flight ([`admission`]).
    pub(crate) admission: Arc<admission::Admission>,
    /// Settings.
    pub(crate) settings: Arc<GatewaySettings>,
    /// flo2's own time per chat request ([`overhead`]).
    pub(crate) overhead: overhead::Histogram,
}

impl GatewayState {
    /// Builds the caches, subscribes them to this process's changes, and builds the upstream
    /// client.
    pub fn new(
        store: Store,
        keyring: Arc<MasterKeyring>,
        settings: GatewaySettings,
    ) -> Result<Self, upstream::UpstreamError> {
        let keys = Arc::new(KeyCache::new(store.clone(), settings.key_cache_capacity));
        let orgs = Arc::new(OrgCache::new(
            store.clone(),
            keyring,
            settings.org_cache_capacity,
        ));
        let caches = Caches::new(Arc::clone(&keys), Arc::clone(&orgs));
        change_watcher::subscribe(&store, &caches);
        let (usage, writer) = usage_sink::channel(settings.usage_spill.clone());
        Ok(Self(Arc::new(Gateway {
            store,
            keys,
            orgs,
            key_usage: Arc::default(),
            upstream: Upstream::new(&settings.upstream)?,
            usage,
            usage_writer: Arc::new(std::sync::Mutex::new(Some(writer))),
            caches,
            health: Arc::new(health::Health::new(settings.health.clone())),
            admission: admission::Admission::new(settings.admission),
            settings: Arc::new(settings),
            overhead: overhead::Histogram::default(),
        })))
    }

    /// Starts the background work (change polling, last-used batching) on `tracker`; it stops
    /// when `cancel` fires, after a final flush.
    pub fn spawn_background(&self, tracker: &TaskTracker, cancel: &CancellationToken) {
        tracker.spawn(change_watcher::poll(
            self.store.clone(),
            self.caches.clone(),
            self.settings.change_poll_interval,
            cancel.clone(),
        ));
        let writer = match self.usage_writer.lock() {
            Ok(mut w) => w.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(writer) = writer {
            tracker.spawn(writer.run(self.store.clone(), cancel.clone()));
        }
        let usage = Arc::clone(&self.key_usage);
        let store = self.store.clone();
        let interval = self.settings.key_touch_interval;
        let cancel = cancel.clone();
        tracker.spawn(async move { usage.run(store, interval, cancel).await });
    }
}
