//! What this replica has learned about its upstreams, shared by all its requests: circuit
//! breakers per target and per credential, 429 cool-downs per credential, latency per target (a
//! decaying average for `fastest`, recent samples for hedging's p90), and the retry and hedge
//! budgets that keep fallback and hedging from turning an outage into a traffic storm.
//!
//! Everything is tenant-scoped. A target is an organization's `provider/model` ([`TargetKey`]),
//! a credential belongs to one organization, and budgets are kept per organization: a tenant
//! with 50 ms attempt timeouts opens its own breakers and spends its own budgets, never another
//! tenant's. The maps are bounded (an entry count and an idle expiry), so model names a caller
//! makes up cannot grow them; an evicted entry only forgets history, which is harmless.
//!
//! Breakers open after `failures` consecutive failures, or when at least half of the last
//! `window` calls (and at least `min_calls`) failed; after `open_for` one probe is let through
//! (half-open): its success closes the breaker, its failure opens it again. A probe that never
//! reports (its request was cancelled) is replaced after another `open_for`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flo2_core::{CredentialId, OrgId, ProviderKind};
use moka::sync::Cache;

use crate::state::budget::{Budget, BudgetRule};
use crate::state::org_cache::CredentialEntry;

/// Breaker, budget and bound settings.
#[derive(Clone, Debug)]
pub struct HealthSettings {
    /// Consecutive failures that open a breaker.
    pub failures: u32,
    /// How long a breaker stays open before a probe.
    pub open_for: Duration,
    /// Calls in the error-rate window.
    pub window: usize,
    /// Calls needed before the error rate counts.
    pub min_calls: usize,
    /// Error rate (percent) that opens a breaker.
    pub error_percent: usize,
    /// Retries (fallback and retry attempts) per organization.
    pub retry: BudgetRule,
    /// Hedges (a hedged race's extra racers) per organization.
    pub hedge: BudgetRule,
    /// Most entries in each map (targets, credentials, organizations' budgets).
    pub capacity: u64,
    /// An entry unused this long is forgotten.
    pub idle: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            open_for: Duration::from_secs(30),
            window: 20,
            min_calls: 10,
            error_percent: 50,
            retry: BudgetRule {
                percent: 20,
                floor_per_sec: 10,
            },
            hedge: BudgetRule {
                percent: 10,
                floor_per_sec: 1,
            },
            capacity: 100_000,
            idle: Duration::from_secs(3_600),
        }
    }
}

/// One organization's target: its `provider/model` as routes and direct calls name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TargetKey {
    org: OrgId,
    label: String,
}

impl TargetKey {
    /// `org`'s target `provider/model`.
    pub fn new(org: OrgId, provider: ProviderKind, model: &str) -> Self {
        Self {
            org,
            label: format!("{provider}/{model}"),
        }
    }

    /// `provider/model`, for headers and logs.
    pub fn label(&self) -> &str {
        &self.label
    }
}

#[derive(Debug)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probe_since: Instant },
}

#[derive(Debug)]
struct Breaker {
    state: State,
    consecutive: u32,
    recent: VecDeque<bool>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: State::Closed,
            consecutive: 0,
            recent: VecDeque::new(),
        }
    }
}

impl Breaker {
    /// Whether a call may go now (taking the probe slot when half-open).
    fn acquire(&mut self, now: Instant, s: &HealthSettings) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until } if now < until => false,
            State::HalfOpen { probe_since } if now < probe_since + s.open_for => false,
            _ => {
                self.state = State::HalfOpen { probe_since: now };
                true
            }
        }
    }

    /// Whether a call could go now, without taking anything.
    fn is_available(&self, now: Instant, s: &HealthSettings) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until } => now >= until,
            State::HalfOpen { probe_since } => now >= probe_since + s.open_for,
        }
    }

    fn success(&mut self, s: &HealthSettings) {
        self.state = State::Closed;
        self.consecutive = 0;
        self.push(true, s);
    }

    fn failure(&mut self, now: Instant, s: &HealthSettings) {
        self.consecutive += 1;
        self.push(false, s);
        let failed = self.recent.iter().filter(|ok| !**ok).count();
        let rate_tripped =
            self.recent.len() >= s.min_calls && failed * 100 >= s.error_percent * self.recent.len();
        let trip = matches!(self.state, State::HalfOpen { .. })
            || self.consecutive >= s.failures
            || rate_tripped;
        if trip {
            self.state = State::Open {
                until: now + s.open_for,
            };
            self.recent.clear();
        }
    }

    fn push(&mut self, ok: bool, s: &HealthSettings) {
        self.recent.push_back(ok);
        while self.recent.len() > s.window {
            self.recent.pop_front();
        }
    }
}

/// Latency samples kept per target for percentiles.
const SAMPLES: usize = 64;
/// Weight of the newest sample in the decaying average.
const ALPHA: f64 = 0.3;

#[derive(Debug, Default)]
struct TargetHealth {
    breaker: Breaker,
    /// Decaying average latency, milliseconds.
    average_ms: Option<f64>,
    samples: VecDeque<u64>,
}

#[derive(Debug, Default)]
struct CredentialHealth {
    breaker: Breaker,
    cool_until: Option<Instant>,
}

/// How an attempt went, for the breakers.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    /// Answered (streams: first token), after this long.
    Success(Duration),
    /// A retryable failure (connect error, timeout, 5xx, overload), after this long.
    Failure(Duration),
    /// 429: the credential cools down for `retry_after` (default 1 s); the target is fine.
    RateLimited(Option<Duration>),
}

/// An organization's retry and hedge budgets.
#[derive(Debug)]
struct Budgets {
    retry: Budget,
    hedge: Budget,
}

/// The replica's shared health view.
pub struct Health {
    settings: HealthSettings,
    targets: Cache<TargetKey, Arc<Mutex<TargetHealth>>>,
    credentials: Cache<CredentialId, Arc<Mutex<CredentialHealth>>>,
    budgets: Cache<OrgId, Arc<Mutex<Budgets>>>,
    round_robin: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("targets", &self.targets.entry_count())
            .field("credentials", &self.credentials.entry_count())
            .field("budgets", &self.budgets.entry_count())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the maps inconsistent in a way that
    // matters (each update is one small assignment), so a poisoned lock is used as is.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A bounded map of shared entries, each created on first use.
fn bounded<K, V>(s: &HealthSettings) -> Cache<K, Arc<Mutex<V>>>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Send + 'static,
{
    Cache::builder()
        .max_capacity(s.capacity)
        .time_to_idle(s.idle)
        .build()
}

/// The entry for `key`, created if missing. Looked up by reference first, so the common case
/// (the entry exists) clones no key.
fn entry<K, V>(map: &Cache<K, Arc<Mutex<V>>>, key: &K) -> Arc<Mutex<V>>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Default + Send + 'static,
{
    entry_with(map, key, V::default)
}

/// [`entry`] for values with no `Default`: `init` makes a missing one.
fn entry_with<K, V>(
    map: &Cache<K, Arc<Mutex<V>>>,
    key: &K,
    init: impl FnOnce() -> V,
) -> Arc<Mutex<V>>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Send + 'static,
{
    map.get(key).unwrap_or_else(|| {
        map.entry(key.clone())
            .or_insert_with(|| Arc::new(Mutex::new(init())))
            .into_value()
    })
}

impl Health {
    /// An empty view.
    pub fn new(settings: HealthSettings) -> Self {
        Self {
            targets: bounded(&settings),
            credentials: bounded(&settings),
            budgets: bounded(&settings),
            settings,
            round_robin: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Whether `target` would take a call now (no probe slot taken).
    pub fn target_available(&self, target: &TargetKey) -> bool {
        self.targets.get(target).is_none_or(|t| {
            lock(&t)
                .breaker
                .is_available(Instant::now(), &self.settings)
        })
    }

    /// Takes permission to call `target` now; false while its breaker is open.
    pub fn acquire_target(&self, target: &TargetKey) -> bool {
        let t = entry(&self.targets, target);
        let acquired = lock(&t).breaker.acquire(Instant::now(), &self.settings);
        acquired
    }

    /// The next credential of the pool to use: round robin over those neither cooling down after
    /// a 429 nor behind an open breaker. `None` when all are unavailable.
    pub fn pick_credential<'a>(
        &self,
        pool: &'a [Arc<CredentialEntry>],
    ) -> Option<&'a Arc<CredentialEntry>> {
        if pool.is_empty() {
            return None;
        }
        let now = Instant::now();
        let start = self
            .round_robin
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (0..pool.len())
            .map(|i| &pool[(start + i) % pool.len()])
            .find(|c| {
                let h = entry(&self.credentials, &c.id);
                let mut h = lock(&h);
                h.cool_until.is_none_or(|t| now >= t) && h.breaker.acquire(now, &self.settings)
            })
    }

    /// Records how an attempt at `target` with `credential` went.
    pub fn record(&self, target: &TargetKey, credential: CredentialId, outcome: Outcome) {
        let now = Instant::now();
        let s = &self.settings;
        {
            let t = entry(&self.targets, target);
            let mut t = lock(&t);
            match outcome {
                Outcome::Success(latency) => {
                    t.breaker.success(s);
                    t.observe(latency);
                }
                Outcome::Failure(latency) => {
                    t.breaker.failure(now, s);
                    // A failure is at least as slow as the time it took: `fastest` moves away.
                    t.observe(latency);
                }
                Outcome::RateLimited(_) => {}
            }
        }
        let c = entry(&self.credentials, &credential);
        let mut c = lock(&c);
        match outcome {
            Outcome::Success(_) => c.breaker.success(s),
            Outcome::Failure(_) => c.breaker.failure(now, s),
            Outcome::RateLimited(after) => {
                c.cool_until = Some(now + after.unwrap_or(Duration::from_secs(1)));
            }
        }
    }

    /// The decaying average latency of `target`, if it has any history.
    pub fn average_latency(&self, target: &TargetKey) -> Option<f64> {
        self.targets.get(target).and_then(|t| lock(&t).average_ms)
    }

    /// The 90th percentile of `target`'s recent latencies, if it has history.
    pub fn p90(&self, target: &TargetKey) -> Option<Duration> {
        let t = self.targets.get(target)?;
        let t = lock(&t);
        if t.samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<u64> = t.samples.iter().copied().collect();
        sorted.sort_unstable();
        let i = (sorted.len() * 9).div_ceil(10).saturating_sub(1);
        Some(Duration::from_millis(sorted[i]))
    }

    fn budgets(&self, org: OrgId) -> Arc<Mutex<Budgets>> {
        entry_with(&self.budgets, &org, || {
            let now = Instant::now();
            Budgets {
                retry: Budget::new(self.settings.retry, now),
                hedge: Budget::new(self.settings.hedge, now),
            }
        })
    }

    /// Counts a request of `org` into its retry and hedge budgets.
    pub fn deposit(&self, org: OrgId) {
        let now = Instant::now();
        let b = self.budgets(org);
        let mut b = lock(&b);
        b.retry.deposit(self.settings.retry, now);
        b.hedge.deposit(self.settings.hedge, now);
    }

    /// Takes one retry from `org`'s budget; false when it is spent.
    pub fn withdraw(&self, org: OrgId) -> bool {
        let b = self.budgets(org);
        let ok = lock(&b).retry.withdraw(self.settings.retry, Instant::now());
        ok
    }

    /// Takes one hedge from `org`'s budget; false when it is spent.
    pub fn withdraw_hedge(&self, org: OrgId) -> bool {
        let b = self.budgets(org);
        let ok = lock(&b).hedge.withdraw(self.settings.hedge, Instant::now());
        ok
    }

    /// Entries held (targets, credentials, organizations): the maps stay bounded.
    #[cfg(test)]
    pub fn entries(&self) -> (u64, u64, u64) {
        self.targets.run_pending_tasks();
        self.credentials.run_pending_tasks();
        self.budgets.run_pending_tasks();
        (
            self.targets.entry_count(),
            self.credentials.entry_count(),
            self.budgets.entry_count(),
        )
    }
}

impl TargetHealth {
    fn observe(&mut self, latency: Duration) {
        let ms = latency.as_secs_f64() * 1000.0;
        self.average_ms = Some(match self.average_ms {
            Some(avg) => avg + ALPHA * (ms - avg),
            None => ms,
        });
        self.samples
            .push_back(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX));
        while self.samples.len() > SAMPLES {
            self.samples.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings() -> HealthSettings {
        HealthSettings {
            failures: 3,
            open_for: Duration::from_millis(50),
            ..HealthSettings::default()
        }
    }

    fn cred() -> Arc<CredentialEntry> {
        Arc::new(CredentialEntry {
            id: CredentialId::new(),
            provider: ProviderKind::OpenAi,
            name: "k".into(),
            base_url: None,
            secret: flo2_core::Secret::new("sk".into()),
        })
    }

    fn key(org: OrgId) -> TargetKey {
        TargetKey::new(org, ProviderKind::OpenAi, "gpt-4o")
    }

    #[test]
    fn a_breaker_opens_probes_and_closes() {
        let h = Health::new(settings());
        let (c, t) = (cred().id, key(OrgId::new()));
        let fail = Outcome::Failure(Duration::from_millis(1));
        for _ in 0..3 {
            assert!(h.acquire_target(&t));
            h.record(&t, c, fail);
        }
        assert!(!h.acquire_target(&t), "open after three failures");
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.acquire_target(&t), "half-open: one probe");
        assert!(!h.acquire_target(&t), "only one probe at a time");
        h.record(&t, c, fail);
        assert!(!h.acquire_target(&t), "a failed probe opens it again");
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.acquire_target(&t));
        h.record(&t, c, Outcome::Success(Duration::from_millis(1)));
        assert!(h.acquire_target(&t) && h.acquire_target(&t), "closed again");
    }

    #[test]
    fn one_organization_cannot_open_anothers_breaker_or_move_its_latency() {
        let h = Health::new(settings());
        let (mine, theirs) = (key(OrgId::new()), key(OrgId::new()));
        let c = cred().id;
        for _ in 0..10 {
            h.record(&mine, c, Outcome::Failure(Duration::from_secs(9)));
        }
        assert!(!h.target_available(&mine));
        assert!(
            h.target_available(&theirs),
            "same provider/model, other tenant"
        );
        assert!(h.acquire_target(&theirs));
        assert_eq!(h.average_latency(&theirs), None);
        assert_eq!(h.p90(&theirs), None);
    }

    #[test]
    fn budgets_are_per_organization() {
        let h = Health::new(HealthSettings {
            retry: BudgetRule {
                percent: 0,
                floor_per_sec: 1,
            },
            hedge: BudgetRule {
                percent: 0,
                floor_per_sec: 1,
            },
            ..settings()
        });
        let (a, b) = (OrgId::new(), OrgId::new());
        assert!(h.withdraw(a) && !h.withdraw(a), "a spends its one retry");
        assert!(h.withdraw(b), "b still has its own");
        assert!(h.withdraw_hedge(a) && !h.withdraw_hedge(a));
        assert!(h.withdraw_hedge(b));
    }

    #[test]
    fn the_maps_stay_within_their_capacity_whatever_names_callers_invent() {
        let h = Health::new(HealthSettings {
            capacity: 100,
            ..settings()
        });
        let org = OrgId::new();
        let c = cred().id;
        for i in 0..5_000 {
            let t = TargetKey::new(org, ProviderKind::OpenAi, &format!("invented-{i}"));
            h.record(&t, c, Outcome::Success(Duration::from_millis(1)));
            h.deposit(OrgId::new());
        }
        let (targets, credentials, budgets) = h.entries();
        assert!(targets <= 100, "{targets} targets");
        assert!(
            credentials <= 100 && budgets <= 100,
            "{credentials} {budgets}"
        );
    }

    #[test]
    fn idle_entries_expire() {
        let h = Health::new(HealthSettings {
            idle: Duration::from_millis(50),
            ..settings()
        });
        let t = key(OrgId::new());
        h.record(&t, cred().id, Outcome::Success(Duration::from_millis(1)));
        assert_eq!(h.entries().0, 1);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(h.entries().0, 0, "forgotten after its idle time");
    }

    #[test]
    fn a_rate_limited_credential_cools_down_and_the_pool_moves_on() {
        let h = Health::new(settings());
        let pool = [cred(), cred()];
        let t = key(OrgId::new());
        h.record(
            &t,
            pool[0].id,
            Outcome::RateLimited(Some(Duration::from_secs(60))),
        );
        for _ in 0..4 {
            assert_eq!(h.pick_credential(&pool).unwrap().id, pool[1].id);
        }
        assert!(
            h.acquire_target(&t),
            "a 429 says nothing against the target"
        );
    }

    #[test]
    fn the_pool_is_balanced() {
        let h = Health::new(settings());
        let pool = [cred(), cred(), cred()];
        let mut counts = HashMap::new();
        for _ in 0..30 {
            *counts
                .entry(h.pick_credential(&pool).unwrap().id)
                .or_insert(0) += 1;
        }
        assert!(counts.values().all(|n| *n == 10), "{counts:?}");
    }

    #[test]
    fn latency_average_follows_and_p90_is_high() {
        let h = Health::new(settings());
        let (c, t) = (cred().id, key(OrgId::new()));
        for ms in [100, 100, 100, 100, 100, 100, 100, 100, 100, 1000] {
            h.record(&t, c, Outcome::Success(Duration::from_millis(ms)));
        }
        assert!(h.average_latency(&t).unwrap() > 300.0);
        assert_eq!(h.p90(&t), Some(Duration::from_millis(100)));
        h.record(&t, c, Outcome::Success(Duration::from_millis(1000)));
        assert_eq!(h.p90(&t), Some(Duration::from_millis(1000)));
    }
}
