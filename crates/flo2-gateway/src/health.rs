//! What this replica has learned about its upstreams, shared by all its requests: circuit
//! breakers per target (`provider/model`) and per credential, 429 cool-downs per credential,
//! latency per target (a decaying average for `fastest`, recent samples for hedging's p90), and
//! a retry budget that keeps fallback from turning an outage into a retry storm.
//!
//! Breakers open after `failures` consecutive failures, or when at least half of the last
//! `window` calls (and at least `min_calls`) failed; after `open_for` one probe is let through
//! (half-open): its success closes the breaker, its failure opens it again. A probe that never
//! reports (its request was cancelled) is replaced after another `open_for`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flo2_core::CredentialId;

use crate::org_cache::CredentialEntry;

/// Breaker and budget settings.
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
    /// Retries allowed per request on average (percent), on top of `retry_floor`.
    pub retry_percent: u64,
    /// Retries always allowed per second, however few requests there are.
    pub retry_floor_per_sec: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            failures: 5,
            open_for: Duration::from_secs(30),
            window: 20,
            min_calls: 10,
            error_percent: 50,
            retry_percent: 20,
            retry_floor_per_sec: 10,
        }
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

#[derive(Debug)]
struct Budget {
    /// Retries available, in thousandths.
    balance: u64,
    refilled: Instant,
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

/// The replica's shared health view.
#[derive(Debug)]
pub struct Health {
    settings: HealthSettings,
    targets: Mutex<HashMap<String, TargetHealth>>,
    credentials: Mutex<HashMap<CredentialId, CredentialHealth>>,
    budget: Mutex<Budget>,
    round_robin: std::sync::atomic::AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the maps inconsistent in a way that
    // matters (each update is one small assignment), so a poisoned lock is used as is.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const MILLI: u64 = 1_000;

impl Health {
    /// An empty view.
    pub fn new(settings: HealthSettings) -> Self {
        let start = settings.retry_floor_per_sec * MILLI;
        Self {
            settings,
            targets: Mutex::new(HashMap::new()),
            credentials: Mutex::new(HashMap::new()),
            budget: Mutex::new(Budget {
                balance: start,
                refilled: Instant::now(),
            }),
            round_robin: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Whether `target` would take a call now (no probe slot taken).
    pub fn target_available(&self, target: &str) -> bool {
        lock(&self.targets)
            .get(target)
            .is_none_or(|t| t.breaker.is_available(Instant::now(), &self.settings))
    }

    /// Takes permission to call `target` now; false while its breaker is open.
    pub fn acquire_target(&self, target: &str) -> bool {
        lock(&self.targets)
            .entry(target.to_owned())
            .or_default()
            .breaker
            .acquire(Instant::now(), &self.settings)
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
        let mut health = lock(&self.credentials);
        (0..pool.len())
            .map(|i| &pool[(start + i) % pool.len()])
            .find(|c| {
                let h = health.entry(c.id).or_default();
                h.cool_until.is_none_or(|t| now >= t) && h.breaker.acquire(now, &self.settings)
            })
    }

    /// Records how an attempt at `target` with `credential` went.
    pub fn record(&self, target: &str, credential: CredentialId, outcome: Outcome) {
        let now = Instant::now();
        let s = &self.settings;
        {
            let mut targets = lock(&self.targets);
            let t = targets.entry(target.to_owned()).or_default();
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
        let mut credentials = lock(&self.credentials);
        let c = credentials.entry(credential).or_default();
        match outcome {
            Outcome::Success(_) => c.breaker.success(s),
            Outcome::Failure(_) => c.breaker.failure(now, s),
            Outcome::RateLimited(after) => {
                c.cool_until = Some(now + after.unwrap_or(Duration::from_secs(1)));
            }
        }
    }

    /// The decaying average latency of `target`, if it has any history.
    pub fn average_latency(&self, target: &str) -> Option<f64> {
        lock(&self.targets).get(target).and_then(|t| t.average_ms)
    }

    /// The 90th percentile of `target`'s recent latencies, if it has history.
    pub fn p90(&self, target: &str) -> Option<Duration> {
        let targets = lock(&self.targets);
        let samples = &targets.get(target)?.samples;
        if samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<u64> = samples.iter().copied().collect();
        sorted.sort_unstable();
        let i = (sorted.len() * 9).div_ceil(10).saturating_sub(1);
        Some(Duration::from_millis(sorted[i]))
    }

    /// Counts a request into the retry budget.
    pub fn deposit(&self) {
        let mut b = lock(&self.budget);
        self.refill(&mut b);
        b.balance = (b.balance + self.settings.retry_percent * MILLI / 100).min(self.cap());
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn withdraw(&self) -> bool {
        let mut b = lock(&self.budget);
        self.refill(&mut b);
        if b.balance >= MILLI {
            b.balance -= MILLI;
            true
        } else {
            false
        }
    }

    fn cap(&self) -> u64 {
        (self.settings.retry_floor_per_sec * 10).max(100) * MILLI
    }

    fn refill(&self, b: &mut Budget) {
        let now = Instant::now();
        let elapsed_ms =
            u64::try_from(now.duration_since(b.refilled).as_millis()).unwrap_or(u64::MAX);
        if elapsed_ms > 0 {
            let add = elapsed_ms.saturating_mul(self.settings.retry_floor_per_sec);
            b.balance = b.balance.saturating_add(add).min(self.cap());
            b.refilled = now;
        }
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
    use flo2_core::{ProviderKind, Secret};

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
            secret: Secret::new("sk".into()),
        })
    }

    #[test]
    fn a_breaker_opens_probes_and_closes() {
        let h = Health::new(settings());
        let c = cred().id;
        let fail = Outcome::Failure(Duration::from_millis(1));
        for _ in 0..3 {
            assert!(h.acquire_target("t"));
            h.record("t", c, fail);
        }
        assert!(!h.acquire_target("t"), "open after three failures");
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.acquire_target("t"), "half-open: one probe");
        assert!(!h.acquire_target("t"), "only one probe at a time");
        h.record("t", c, fail);
        assert!(!h.acquire_target("t"), "a failed probe opens it again");
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.acquire_target("t"));
        h.record("t", c, Outcome::Success(Duration::from_millis(1)));
        assert!(
            h.acquire_target("t") && h.acquire_target("t"),
            "closed again"
        );
    }

    #[test]
    fn a_rate_limited_credential_cools_down_and_the_pool_moves_on() {
        let h = Health::new(settings());
        let pool = [cred(), cred()];
        h.record(
            "t",
            pool[0].id,
            Outcome::RateLimited(Some(Duration::from_secs(60))),
        );
        for _ in 0..4 {
            assert_eq!(h.pick_credential(&pool).unwrap().id, pool[1].id);
        }
        assert!(
            h.acquire_target("t"),
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
    fn the_retry_budget_runs_out_and_refills() {
        let h = Health::new(HealthSettings {
            retry_floor_per_sec: 2,
            retry_percent: 0,
            ..settings()
        });
        assert!(h.withdraw() && h.withdraw());
        assert!(!h.withdraw(), "spent");
        std::thread::sleep(Duration::from_millis(600));
        assert!(h.withdraw(), "refilled at the floor rate");
    }

    #[test]
    fn latency_average_follows_and_p90_is_high() {
        let h = Health::new(settings());
        let c = cred().id;
        for ms in [100, 100, 100, 100, 100, 100, 100, 100, 100, 1000] {
            h.record("t", c, Outcome::Success(Duration::from_millis(ms)));
        }
        assert!(h.average_latency("t").unwrap() > 300.0);
        assert_eq!(h.p90("t"), Some(Duration::from_millis(100)));
        h.record("t", c, Outcome::Success(Duration::from_millis(1000)));
        assert_eq!(h.p90("t"), Some(Duration::from_millis(1000)));
    }
}
