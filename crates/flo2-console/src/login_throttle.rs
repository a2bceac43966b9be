//! Login throttling that slows password guessing without letting anyone lock the real user out.
//!
//! Login attempts are counted per (account, client address) and per client address over a
//! 15-minute window that starts at the first counted attempt (in memory, per replica). Past
//! [`ACCOUNT_ADDRESS_ATTEMPTS`] for one account from one address, or [`ADDRESS_ATTEMPTS`] from one
//! address whatever the accounts, logins from that address (for that account, or at all) are
//! refused with 429 and the seconds left in the window, before any password is checked. Nothing
//! is counted per account alone, so failures from other addresses never stop a correct password
//! from an address that has not been failing. The client address is the one
//! [`crate::client_address`] finds, and an IPv6 client is counted by its /64.
//!
//! Each attempt is counted before its password is checked, and a correct password takes its own
//! attempt back (and clears its account's count from that address), so a burst of concurrent
//! guesses cannot all slip in before the first failure is recorded. An attempt whose password
//! could not be checked (the database was unreachable) is taken back as well, so retrying
//! through an outage locks nobody out.
//!
//! The counters are bounded: at most [`CAPACITY`] entries (the least used are evicted first, so an
//! attacker's flood of new keys does not push out counters being hit), each gone a window after
//! its last change.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use moka::sync::Cache;
use sha2::{Digest, Sha256};

use crate::client_address::throttle_key;

/// Login attempts allowed for one account from one client address in the window.
pub const ACCOUNT_ADDRESS_ATTEMPTS: u32 = 5;
/// Login attempts allowed from one client address in the window, whatever the accounts.
pub const ADDRESS_ATTEMPTS: u32 = 30;
/// The throttling window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Most counters kept.
pub const CAPACITY: u64 = 100_000;

#[derive(Clone, Copy)]
struct Count {
    attempts: u32,
    since: Instant,
}

/// The login counters.
pub struct LoginThrottle {
    // Keys are hashes, so every entry has the same small size whatever the email's length.
    counts: Cache<[u8; 16], Count>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginThrottle { .. }")
    }
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new()
    }
}

fn key(parts: &[&str]) -> [u8; 16] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

impl LoginThrottle {
    /// Empty counters.
    pub fn new() -> Self {
        Self {
            counts: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(WINDOW)
                .build(),
        }
    }

    fn keys(account: &str, client: IpAddr) -> ([u8; 16], [u8; 16]) {
        let client = throttle_key(client);
        (
            key(&["account", account, &client]),
            key(&["address", &client]),
        )
    }

    /// Counts one attempt; `Err(retry_after)` when the pair or the address is over its limit.
    fn count(&self, key: [u8; 16], limit: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let entry = self.counts.entry(key).and_upsert_with(|old| match old {
            Some(e) if now.duration_since(e.value().since) < WINDOW => Count {
                attempts: e.value().attempts.saturating_add(1),
                since: e.value().since,
            },
            _ => Count {
                attempts: 1,
                since: now,
            },
        });
        let count = entry.into_value();
        if count.attempts <= limit {
            return Ok(());
        }
        let left = WINDOW.saturating_sub(now.duration_since(count.since));
        Err(left.max(Duration::from_secs(1)))
    }

    /// Counts a login attempt for `account` from `client`. `Err` carries how long until the
    /// attempt could be allowed; the password must then not be checked.
    pub fn attempt(&self, account: &str, client: IpAddr) -> Result<(), Duration> {
        let (pair, address) = Self::keys(account, client);
        let pair = self.count(pair, ACCOUNT_ADDRESS_ATTEMPTS);
        let address = self.count(address, ADDRESS_ATTEMPTS);
        match (pair, address) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(a), Err(b)) => Err(a.max(b)),
            (Err(a), Ok(())) | (Ok(()), Err(a)) => Err(a),
        }
    }

    /// A correct password: the account's attempts from that client are forgotten, and the
    /// attempt no longer counts against the address.
    pub fn succeeded(&self, account: &str, client: IpAddr) {
        let (pair, address) = Self::keys(account, client);
        self.counts.invalidate(&pair);
        self.take_back(address);
    }

    /// An attempt whose password was never checked (the database was unreachable): it counts
    /// against neither the account's nor the address's limit.
    pub fn forgive(&self, account: &str, client: IpAddr) {
        let (pair, address) = Self::keys(account, client);
        self.take_back(pair);
        self.take_back(address);
    }

    fn take_back(&self, key: [u8; 16]) {
        use moka::ops::compute::Op;
        let _ = self.counts.entry(key).and_compute_with(|old| match old {
            Some(e) if e.value().attempts > 1 => Op::Put(Count {
                attempts: e.value().attempts - 1,
                since: e.value().since,
            }),
            Some(_) => Op::Remove,
            None => Op::Nop,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_from_one_address_do_not_lock_out_another() {
        let t = LoginThrottle::new();
        for _ in 0..ACCOUNT_ADDRESS_ATTEMPTS {
            assert!(t.attempt("ada@x", ip("203.0.113.5")).is_ok());
        }
        let wait = t.attempt("ada@x", ip("203.0.113.5")).unwrap_err();
        assert!(wait > Duration::from_secs(14 * 60) && wait <= WINDOW);
        // The real user, elsewhere, still logs in; another account from the attacker may try.
        assert!(t.attempt("ada@x", ip("198.51.100.7")).is_ok());
        t.succeeded("ada@x", ip("198.51.100.7"));
        assert!(t.attempt("bob@x", ip("203.0.113.5")).is_ok());
    }

    #[test]
    fn one_address_spraying_many_accounts_is_stopped() {
        let t = LoginThrottle::new();
        for i in 0..ADDRESS_ATTEMPTS {
            assert!(t.attempt(&format!("u{i}@x"), ip("203.0.113.5")).is_ok());
        }
        assert!(t.attempt("fresh@x", ip("203.0.113.5")).is_err());
        assert!(t.attempt("fresh@x", ip("198.51.100.7")).is_ok());
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_count() {
        let t = LoginThrottle::new();
        for i in 0..ACCOUNT_ADDRESS_ATTEMPTS {
            assert!(t.attempt("ada@x", ip(&format!("2001:db8::{i}"))).is_ok());
        }
        assert!(t.attempt("ada@x", ip("2001:db8::ffff")).is_err());
        assert!(t.attempt("ada@x", ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn attempts_never_checked_do_not_count() {
        let t = LoginThrottle::new();
        for _ in 0..ADDRESS_ATTEMPTS * 2 {
            assert!(t.attempt("ada@x", ip("192.0.2.1")).is_ok());
            t.forgive("ada@x", ip("192.0.2.1"));
        }
        for _ in 0..ACCOUNT_ADDRESS_ATTEMPTS {
            assert!(t.attempt("ada@x", ip("192.0.2.1")).is_ok());
        }
        assert!(t.attempt("ada@x", ip("192.0.2.1")).is_err());
    }

    #[test]
    fn success_takes_its_attempt_back() {
        let t = LoginThrottle::new();
        for _ in 0..ADDRESS_ATTEMPTS * 2 {
            assert!(t.attempt("ada@x", ip("192.0.2.1")).is_ok());
            t.succeeded("ada@x", ip("192.0.2.1"));
        }
    }
}
