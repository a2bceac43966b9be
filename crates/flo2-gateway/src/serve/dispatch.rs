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
//! **Races.** `first` starts `fanout` targets at once and keeps the first success (for streams:
//! the first target to emit a token); `hedged` starts the next target only when the running ones
//! have not answered within the hedge delay, and each such hedge takes one unit of the
//! organization's hedge budget (a slow provider cannot multiply traffic by the fanout); `best`
//! waits for all (up to the deadline) and keeps the best answer by the route's rule. Losers are
//! dropped the moment the race is decided, which closes their upstream connections; each
//! participant is metered with role `race`. If every racer fails, the remaining candidates are
//! tried as a fallback chain.
//!
//! The trace counts only attempts actually sent upstream: a target that cannot express the
//! request, or a racer dropped before it sent anything, is no attempt.

use std::time::Duration;

use flo2_core::route::{FallbackSettings, RaceMode, RacePick, RaceSettings};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::attempt::{self, Failure, Request, Success};
use crate::error::{ErrorKind, GatewayError};
use crate::routing::Candidate;

/// What happened on the way to an answer, for `x-flo2-attempts` and the error message.
#[derive(Debug, Default)]
pub struct Trace {
    /// Upstream attempts sent.
    pub attempts: u32,
    /// One line per failed or skipped attempt.
    pub failures: Vec<String>,
}

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

/// The hedge delay for a target without history.
const DEFAULT_HEDGE_DELAY: Duration = Duration::from_millis(500);

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
                trace
                    .failures
                    .push(format!("{}: skipped, circuit breaker open", c.label()));
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
                if f.as_ref().is_some_and(|f| !f.retryable && !f.unsupported) {
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
        let why = if trace.failures.is_empty() {
            "no target was available".to_owned()
        } else {
            trace.failures.join("; ")
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
        Some((name, _)) if !trace.failures.is_empty() && (last.retryable || last.unsupported) => {
            let status = last.error.status();
            GatewayError::with_status(
                format,
                status,
                format!(
                    "route {name}: every target failed ({} attempts): {}",
                    req.attempts_sent(),
                    trace.failures.join("; ")
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
                trace.failures.push("deadline reached".into());
                return Err(last);
            }
            if req.attempts_sent() > 0 && !health.withdraw(req.org) {
                trace.failures.push("retry budget spent".into());
                return Err(last);
            }
            if breakers && !health.acquire_target(&candidate.key) {
                // Already named when the request was ordered, if its breaker was open then.
                if !candidate.breaker_open {
                    trace
                        .failures
                        .push(format!("{}: circuit breaker open", candidate.label()));
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
                trace.failures.push(format!(
                    "{}: every key is resting or failing",
                    candidate.label()
                ));
                break;
            };
            let role = if req.attempts_sent() == 0 {
                "primary"
            } else {
                "fallback"
            };
            let timeout = Duration::from_millis(settings.attempt_timeout_ms)
                .min(deadline.saturating_duration_since(Instant::now()));
            let target = candidate.target(credential);
            match attempt::run(req, target, &candidate.key, role, timeout).await {
                Ok(success) => return Ok(success),
                Err(f) => {
                    trace.failures.push(f.summary.clone());
                    tracing::info!(attempt = req.attempts_sent(), failure = %f.summary, "attempt failed");
                    let (retryable, unsupported, rate_limited) =
                        (f.retryable, f.unsupported, f.rate_limited);
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

async fn run_race(
    req: &Request<'_>,
    racers: &[Candidate],
    race: &RaceSettings,
    settings: &FallbackSettings,
    deadline: Instant,
    trace: &mut Trace,
) -> Result<Success, Option<Failure>> {
    let health = &req.state.health;
    let attempt_timeout = Duration::from_millis(settings.attempt_timeout_ms);
    let mut running = FuturesUnordered::new();
    let mut next = 0usize;
    let mut last: Option<Failure> = None;
    let mut finished: Vec<Success> = Vec::new();
    // Starts the next racer that can go; its index, or `None` when none is left.
    let start =
        |running: &mut FuturesUnordered<_>, next: &mut usize, trace: &mut Trace| -> Option<usize> {
            while *next < racers.len() {
                let index = *next;
                let candidate = &racers[index];
                *next += 1;
                if !health.acquire_target(&candidate.key) {
                    if !candidate.breaker_open {
                        trace
                            .failures
                            .push(format!("{}: circuit breaker open", candidate.label()));
                    }
                    continue;
                }
                let Some(credential) = health.pick_credential(&candidate.pool) else {
                    trace
                        .failures
                        .push(format!("{}: every key is cooling down", candidate.label()));
                    continue;
                };
                let timeout =
                    attempt_timeout.min(deadline.saturating_duration_since(Instant::now()));
                running.push(attempt::run(
                    req,
                    candidate.target(credential),
                    &candidate.key,
                    "race",
                    timeout,
                ));
                return Some(index);
            }
            None
        };
    let hedge_delay = |i: usize| {
        race.hedge_delay_ms
            .map(Duration::from_millis)
            .or_else(|| racers.get(i).and_then(|c| health.p90(&c.key)))
            .unwrap_or(DEFAULT_HEDGE_DELAY)
    };
    match race.mode {
        RaceMode::First | RaceMode::Best => {
            while start(&mut running, &mut next, trace).is_some() {}
        }
        RaceMode::Hedged => {
            start(&mut running, &mut next, trace);
        }
    }
    let mut hedge_at = Instant::now() + hedge_delay(0);
    let mut hedges_left = true;
    loop {
        if running.is_empty() {
            // A hedged racer failed outright: the next one goes now rather than after the
            // delay. It replaces a failed call, so it is a retry and draws on that budget.
            if race.mode == RaceMode::Hedged && next < racers.len() {
                if !health.withdraw(req.org) {
                    trace.failures.push("retry budget spent".into());
                    break;
                }
                if let Some(i) = start(&mut running, &mut next, trace) {
                    hedge_at = Instant::now() + hedge_delay(i);
                    continue;
                }
            }
            break;
        }
        let hedging = race.mode == RaceMode::Hedged && next < racers.len() && hedges_left;
        tokio::select! {
            result = running.next() => match result {
                Some(Ok(success)) => {
                    if race.mode == RaceMode::Best {
                        finished.push(success);
                    } else {
                        // Dropping `running` cancels every other racer now.
                        return Ok(success);
                    }
                }
                Some(Err(f)) => {
                    trace.failures.push(f.summary.clone());
                    last = Some(f);
                }
                None => break,
            },
            () = tokio::time::sleep_until(hedge_at), if hedging => {
                // A hedge is an extra call while one is still running: it needs the budget.
                if !health.withdraw_hedge(req.org) {
                    hedges_left = false;
                    trace.failures.push("hedge budget spent".into());
                    continue;
                }
                if let Some(i) = start(&mut running, &mut next, trace) {
                    hedge_at = Instant::now() + hedge_delay(i);
                }
            }
            () = tokio::time::sleep_until(deadline), if race.mode == RaceMode::Best && !finished.is_empty() => break,
        }
    }
    drop(running);
    match pick(finished, race.pick) {
        Some(best) => Ok(best),
        None => Err(last),
    }
}

/// The best complete answer by `rule`; ties go to the earliest.
fn pick(answers: Vec<Success>, rule: RacePick) -> Option<Success> {
    let score = |s: &Success| -> (bool, i64) {
        let t = s.answer.text();
        let len = i64::try_from(t.chars().count()).unwrap_or(i64::MAX);
        match rule {
            RacePick::LongestJson => (
                serde_json::from_str::<serde_json::Value>(t.trim()).is_ok(),
                len,
            ),
            RacePick::Longest => (true, len),
            RacePick::Shortest => (true, -len),
        }
    };
    let mut best: Option<((bool, i64), Success)> = None;
    for s in answers {
        let sc = score(&s);
        if best.as_ref().is_none_or(|(b, _)| sc > *b) {
            best = Some((sc, s));
        }
    }
    best.map(|(_, s)| s)
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
