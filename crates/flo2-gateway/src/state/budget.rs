//! Budgets that keep extra upstream calls in proportion to real traffic: retries (fallback)
//! and hedges (a hedged race's extra racers). Each request deposits a share of one call into
//! each; each retry or hedge withdraws a whole call. A per-second floor lets a quiet
//! organization still retry or hedge now and then.
//!
//! Budgets are per replica and per organization: one tenant's outage or slow provider spends its
//! own budget, never another's.

use std::time::Instant;

/// How one budget fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetRule {
    /// Calls earned per request, in percent of one call.
    pub percent: u64,
    /// Calls always earned per second, however few requests there are.
    pub floor_per_sec: u64,
}

impl BudgetRule {
    /// The most that can be saved up: ten seconds of floor, and at least 100 calls, so a burst
    /// after a quiet spell cannot draw on an unbounded reserve.
    fn cap(self) -> u64 {
        self.floor_per_sec
            .saturating_mul(10)
            .max(100)
            .saturating_mul(MILLI)
    }
}

/// Budgets are kept in thousandths of a call, so a 20 % share is exact.
const MILLI: u64 = 1_000;

/// One budget's balance.
#[derive(Debug)]
pub struct Budget {
    /// Calls available, in thousandths.
    balance: u64,
    refilled: Instant,
}

impl Budget {
    /// A budget that starts with one second of floor.
    pub fn new(rule: BudgetRule, now: Instant) -> Self {
        Self {
            balance: rule.floor_per_sec.saturating_mul(MILLI).min(rule.cap()),
            refilled: now,
        }
    }

    /// Counts one request in.
    pub fn deposit(&mut self, rule: BudgetRule, now: Instant) {
        self.refill(rule, now);
        self.balance = self
            .balance
            .saturating_add(rule.percent.saturating_mul(MILLI) / 100)
            .min(rule.cap());
    }

    /// Takes one call; false when the budget is spent.
    pub fn withdraw(&mut self, rule: BudgetRule, now: Instant) -> bool {
        self.refill(rule, now);
        if self.balance >= MILLI {
            self.balance -= MILLI;
            true
        } else {
            false
        }
    }

    fn refill(&mut self, rule: BudgetRule, now: Instant) {
        let elapsed_ms = u64::try_from(now.saturating_duration_since(self.refilled).as_millis())
            .unwrap_or(u64::MAX);
        if elapsed_ms > 0 {
            // floor_per_sec calls per 1,000 ms is floor_per_sec thousandths per ms.
            let add = elapsed_ms.saturating_mul(rule.floor_per_sec);
            self.balance = self.balance.saturating_add(add).min(rule.cap());
            self.refilled = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_budget_earns_its_share_per_request_and_its_floor_per_second() {
        let rule = BudgetRule {
            percent: 10,
            floor_per_sec: 0,
        };
        let t = Instant::now();
        let mut b = Budget::new(rule, t);
        assert!(!b.withdraw(rule, t), "nothing earned yet");
        for _ in 0..10 {
            b.deposit(rule, t);
        }
        assert!(b.withdraw(rule, t), "ten requests earn one call at 10 %");
        assert!(!b.withdraw(rule, t));

        let floor = BudgetRule {
            percent: 0,
            floor_per_sec: 2,
        };
        let mut b = Budget::new(floor, t);
        assert!(b.withdraw(floor, t) && b.withdraw(floor, t));
        assert!(!b.withdraw(floor, t), "spent");
        assert!(
            b.withdraw(floor, t + Duration::from_millis(600)),
            "refilled"
        );
    }

    #[test]
    fn balances_are_capped_and_never_wrap() {
        let rule = BudgetRule {
            percent: u64::MAX,
            floor_per_sec: u64::MAX,
        };
        let t = Instant::now();
        let mut b = Budget::new(rule, t);
        b.deposit(rule, t + Duration::from_secs(86_400 * 365));
        assert!(b.balance <= rule.cap());
        assert!(b.withdraw(rule, t + Duration::from_secs(86_400 * 366)));
    }
}
