//! Races: one prompt at several targets. `first` starts `fanout` targets at once and keeps the
//! first success (for streams: the first target to emit a token); `hedged` starts the next
//! target only when the running ones have not answered within the hedge delay, each hedge
//! taking one unit of the organization's hedge budget; `best` waits for all (up to the
//! deadline) and keeps the best answer by the route's rule. Losers are dropped the moment the
//! race is decided, which closes their upstream connections; each participant is metered with
//! role `race`. ([`crate::serve::dispatch`] runs a race, then falls back if every racer failed.)

use std::time::Duration;

use flo2_core::route::{FallbackSettings, RaceMode, RacePick, RaceSettings};
use flo2_core::AttemptRole;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::time::Instant;

use crate::serve::attempt::{self, Request, Success};
use crate::serve::failure::Failure;
use crate::serve::routing::Candidate;
use crate::serve::trace::{Skip, Trace, TraceEntry};

/// The hedge delay for a target without history.
const DEFAULT_HEDGE_DELAY: Duration = Duration::from_millis(500);

pub(crate) async fn run_race(
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
                        trace.push(TraceEntry::skipped(candidate.label(), Skip::BreakerOpen));
                    }
                    continue;
                }
                let Some(credential) = health.pick_credential(&candidate.pool) else {
                    trace.push(TraceEntry::skipped(
                        candidate.label(),
                        Skip::KeysCoolingDown,
                    ));
                    continue;
                };
                let timeout =
                    attempt_timeout.min(deadline.saturating_duration_since(Instant::now()));
                running.push(attempt::run(
                    req,
                    candidate.target(credential),
                    &candidate.key,
                    AttemptRole::Race,
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
                    trace.push(TraceEntry::RetryBudgetSpent);
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
                    trace.push(TraceEntry::failed(&f));
                    last = Some(f);
                }
                None => break,
            },
            () = tokio::time::sleep_until(hedge_at), if hedging => {
                // A hedge is an extra call while one is still running: it needs the budget.
                if !health.withdraw_hedge(req.org) {
                    hedges_left = false;
                    trace.push(TraceEntry::HedgeBudgetSpent);
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
