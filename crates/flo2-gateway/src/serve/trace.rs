//! What happened on the way to an answer, one entry per failed or skipped attempt: the
//! structured record behind `x-flo2-attempt-errors` and a route's error message, written as
//! text only when a header or message is made.

use std::fmt;

use flo2_core::FailureKind;

use crate::serve::failure::Failure;

/// The attempts of one request.
#[derive(Debug, Default)]
pub struct Trace {
    /// Upstream attempts sent.
    pub attempts: u32,
    /// What failed or was skipped, in order.
    pub entries: Vec<TraceEntry>,
}

/// One thing that went wrong on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceEntry {
    /// An attempt at `target` failed.
    Failed {
        /// `provider/model`.
        target: String,
        /// The kind of failure.
        kind: FailureKind,
        /// Why, in a few words ([`Failure::reason`]).
        reason: String,
    },
    /// `target` was not tried.
    Skipped {
        /// `provider/model`.
        target: String,
        /// Why not.
        why: Skip,
    },
    /// The request's deadline passed before the next attempt.
    DeadlineReached,
    /// The replica's retry budget for the organization was spent.
    RetryBudgetSpent,
    /// The organization's hedge budget was spent.
    HedgeBudgetSpent,
}

/// Why a target was not tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Its breaker was open when the request was ordered.
    BreakerOpenAtStart,
    /// Its breaker was open (or gave its probe to another request) when its turn came.
    BreakerOpen,
    /// Every key of its pool is resting after a 429 or failing.
    KeysResting,
    /// Every key of a racer's pool is cooling down.
    KeysCoolingDown,
}

impl TraceEntry {
    /// The entry for a failed attempt.
    pub fn failed(f: &Failure) -> Self {
        TraceEntry::Failed {
            target: f.target.clone(),
            kind: f.kind,
            reason: f.reason().into_owned(),
        }
    }

    /// The entry for a target not tried.
    pub fn skipped(target: &str, why: Skip) -> Self {
        TraceEntry::Skipped {
            target: target.to_owned(),
            why,
        }
    }
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceEntry::Failed { target, reason, .. } => write!(f, "{target}: {reason}"),
            TraceEntry::Skipped { target, why } => {
                let why = match why {
                    Skip::BreakerOpenAtStart => "skipped, circuit breaker open",
                    Skip::BreakerOpen => "circuit breaker open",
                    Skip::KeysResting => "every key is resting or failing",
                    Skip::KeysCoolingDown => "every key is cooling down",
                };
                write!(f, "{target}: {why}")
            }
            TraceEntry::DeadlineReached => f.write_str("deadline reached"),
            TraceEntry::RetryBudgetSpent => f.write_str("retry budget spent"),
            TraceEntry::HedgeBudgetSpent => f.write_str("hedge budget spent"),
        }
    }
}

impl Trace {
    /// Whether anything failed or was skipped.
    pub fn is_clean(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, `; `-separated: the text of `x-flo2-attempt-errors`.
    pub fn joined(&self) -> String {
        let mut out = String::new();
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            use fmt::Write as _;
            let _ = write!(out, "{entry}");
        }
        out
    }

    /// Records `entry`.
    pub fn push(&mut self, entry: TraceEntry) {
        self.entries.push(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_as_the_header_always_did() {
        let mut trace = Trace::default();
        trace.push(TraceEntry::skipped("openai/a", Skip::BreakerOpenAtStart));
        trace.push(TraceEntry::Failed {
            target: "groq/b".into(),
            kind: FailureKind::UpstreamError,
            reason: "503".into(),
        });
        trace.push(TraceEntry::RetryBudgetSpent);
        assert_eq!(
            trace.joined(),
            "openai/a: skipped, circuit breaker open; groq/b: 503; retry budget spent"
        );
        assert!(!trace.is_clean());
    }
}
