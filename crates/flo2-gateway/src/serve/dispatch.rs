//! Serving a request from an ordered list of candidates: fallback chains and races.
//!
//! **Fallback.** Candidates are tried in order. A retryable failure (connect error, timeout,
//! 408, 429, 5xx, 529, an overloaded error, a stream that failed before its first token) is
//! retried on the same target up to `retries_per_target` times with jittered exponential backoff
//! (or the upstream's `retry-after`, when that fits in the deadline), then the next target gets
//! it. A 429 rests its key for its `retry-after` and moves to the next key of the pool at once
//! (also for a directly addressed model, which has no other target). A failure caused by
//! the request itself (400, 401, 404, 413, 422, ...) returns at once. Every retry takes one unit of
//! the replica's retry budget, so an outage cannot multiply traffic; the whole request has one
//! deadline. Targets behind an open breaker are skipped without an attempt, and named in the
//! trace as skipped.
//!
//! **Races** ([`crate::serve::race`]) start several targets at once (or hedge); if every racer
//! fails, the remaining candidates are tried as a fallback chain.
//!
//! The trace counts only attempts actually sent upstream: a target that cannot express the
//! request, or a racer dropped before it sent anything, is no attempt.

use std::time::Duration;

use flo2_core::route::{FallbackSettings, RaceSettings};
use tokio::time::Instant;

use flo2_core::AttemptRole;

use crate::error::{ErrorKind, GatewayError};
use crate::serve::attempt::{self, Request, Success};
use crate::serve::failure::Failure;
use crate::serve::race::run_race;
use crate::serve::routing::Candidate;
use crate::serve::trace::{Skip, Trace, TraceEntry};

/// How a request is served.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Fallback settings.
    pub fallback: FallbackSettings,
    /// Race settings, when the route races.
    pub race: Option<RaceSettings>,
    /// Skip targets behind an open breaker. A directly addressed model has nowhere else to go,
    /// so it is always tried (its outcomes still teach the breakers routes use).
    pub breakers: bool,
}

/// Backoff before the first retry of a target; doubles per retry, capped, fully jittered.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// Serves `req` from `candidates` under `policy`.
pub async fn serve(
    req: &Request<'_>,
    mut candidates: Vec<Candidate>,
    policy: &Policy,
) -> Result<(Success, Trace), (GatewayError, Trace)> {
    let mut trace = Trace::default();
    let served = serve_traced(req, &mut candidates, policy, &mut trace).await;
    trace.attempts = req.attempts_sent();
    match served {
        Ok(success) => Ok((success, trace)),
        Err(last) => Err((finish_error(req, last, &trace), trace)),
    }
}

async fn serve_traced(
    req: &Request<'_>,
    candidates: &mut [Candidate],
    policy: &Policy,
    trace: &mut Trace,
) -> Result<Success, Option<Failure>> {
    req.state.health.deposit(req.org);
    // Targets behind an open breaker go last (a race's slots go to live targets) and are named
    // as skipped; when their turn comes they are tried only if the breaker is ready for a probe
    // by then. The sort is stable and asks the health view once per candidate.
    if policy.breakers {
        for c in candidates.iter_mut() {
            c.breaker_open = !req.state.health.target_available(&c.key);
            if c.breaker_open {
                trace.push(TraceEntry::skipped(c.label(), Skip::BreakerOpenAtStart));
            }
        }
        candidates.sort_by_key(|c| c.breaker_open);
    }
    let candidates = &candidates[..];
    let deadline = Instant::now() + Duration::from_millis(policy.fallback.deadline_ms);
    let mut rest = candidates;
    let mut last: Option<Failure> = None;
    if let Some(race) = &policy.race {
        let fanout = (race.fanout as usize).min(candidates.len());
        let (racers, after) = candidates.split_at(fanout);
        rest = after;
        // Boxed: a race's future is large, and inline it would grow every request's future,
        // raced or not, by its size.
        let race = Box::pin(run_race(
            req,
            racers,
            race,
            &policy.fallback,
            deadline,
            trace,
        ));
        match race.await {
            Ok(success) => return Ok(success),
            Err(f) => {
                if f.as_ref()
                    .is_some_and(|f| !f.retryable() && !f.unsupported())
                {
                    return Err(f);
                }
                last = f;
            }
        }
        if !policy.fallback.enabled {
            rest = &[];
        }
    }
    fallback(req, rest, policy, deadline, trace, last).await
}

/// The error the caller gets: for a direct model, the upstream's own error; for a route, the
/// last error's status with every attempt's reason.
fn finish_error(req: &Request<'_>, last: Option<Failure>, trace: &Trace) -> GatewayError {
    let format = req.format();
    let Some(last) = last else {
        let why = if trace.is_clean() {
            "no target was available".to_owned()
        } else {
            trace.joined()
        };
        let what = match req.route {
            Some((name, _)) => format!("route {name}"),
            None => req.requested.to_owned(),
        };
        return GatewayError::new(
            format,
            ErrorKind::Unavailable,
            format!("{what}: no target is available: {why}"),
        );
    };
    match req.route {
        Some((name, _)) if !trace.is_clean() && (last.retryable() || last.unsupported()) => {
            let status = last.error.status();
            GatewayError::with_status(
                format,
                status,
                format!(
                    "route {name}: every target failed ({} attempts): {}",
                    req.attempts_sent(),
                    trace.joined()
                ),
            )
        }
        _ => last.error,
    }
}

async fn fallback(
    req: &Request<'_>,
    candidates: &[Candidate],
    policy: &Policy,
    deadline: Instant,
    trace: &mut Trace,
    mut last: Option<Failure>,
) -> Result<Success, Option<Failure>> {
    let health = &req.state.health;
    let (settings, breakers) = (&policy.fallback, policy.breakers);
    for (i, candidate) in candidates.iter().enumerate() {
        if i > 0 && !settings.enabled {
            break;
        }
        let mut tries = 0u32;
        let mut key_switches = 0usize;
        loop {
            if Instant::now() >= deadline {
                trace.push(TraceEntry::DeadlineReached);
                return Err(last);
            }
            if req.attempts_sent() > 0 && !health.withdraw(req.org) {
                trace.push(TraceEntry::RetryBudgetSpent);
                return Err(last);
            }
            if breakers && !health.acquire_target(&candidate.key) {
                // Already named when the request was ordered, if its breaker was open then.
                if !candidate.breaker_open {
                    trace.push(TraceEntry::skipped(candidate.label(), Skip::BreakerOpen));
                }
                break;
            }
            // A direct model has nowhere else to go: with every key resting, it still tries one
            // (the caller then sees the upstream's own 429 rather than a flo2 refusal).
            let picked = health.pick_credential(&candidate.pool).or_else(|| {
                (!breakers)
                    .then(|| {
                        candidate
                            .pool
                            .get(req.attempts_sent() as usize % candidate.pool.len().max(1))
                    })
                    .flatten()
            });
            let Some(credential) = picked else {
                trace.push(TraceEntry::skipped(candidate.label(), Skip::KeysResting));
                break;
            };
            let role = if req.attempts_sent() == 0 {
                AttemptRole::Primary
            } else {
                AttemptRole::Fallback
            };
            let timeout = Duration::from_millis(settings.attempt_timeout_ms)
                .min(deadline.saturating_duration_since(Instant::now()));
            let target = candidate.target(credential);
            match attempt::run(req, target, &candidate.key, role, timeout).await {
                Ok(success) => return Ok(success),
                Err(f) => {
                    let entry = TraceEntry::failed(&f);
                    tracing::info!(attempt = req.attempts_sent(), failure = %entry, "attempt failed");
                    trace.push(entry);
                    let (retryable, unsupported, rate_limited) =
                        (f.retryable(), f.unsupported(), f.rate_limited());
                    let retry_after = f.retry_after;
                    last = Some(f);
                    if unsupported {
                        break;
                    }
                    if !retryable {
                        return Err(last);
                    }
                    if rate_limited {
                        // The key rests for its retry-after; every other key of the pool may be
                        // tried at once (that is what a pool is for), then the next target.
                        if key_switches + 1 < candidate.pool.len() {
                            key_switches += 1;
                            continue;
                        }
                        break;
                    }
                    tries += 1;
                    if tries > settings.retries_per_target {
                        break;
                    }
                    let wait = retry_after.unwrap_or_else(|| backoff(tries));
                    if Instant::now() + wait >= deadline || wait > BACKOFF_CAP {
                        break; // better spent on the next target
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
    Err(last)
}

/// Full jitter: a random wait up to `base × 2^(n-1)`, capped.
fn backoff(n: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << n.saturating_sub(1).min(10))
        .min(BACKOFF_CAP);
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(fastrand::u64(ms / 2..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_and_capped() {
        for n in 1..20 {
            let b = backoff(n);
            assert!(b <= BACKOFF_CAP, "{b:?}");
            assert!(b >= Duration::from_millis(50), "{b:?}");
        }
    }
}
