//! The counts behind the pipeline stage "admit" ([`crate::http::admission`]): a bound on
//! requests in flight, per process and per organization, so that an overload is refused at once
//! instead of queued.
//!
//! Without it, every request a client sends waits for the upstream, holding its memory (about
//! 60 kB each) and its connection, and nobody is told to back off: 6,000 connections against a
//! slow upstream made 374 MB and no refusals. With it, a request beyond the bound is answered at
//! once with 503 (Anthropic's `/v1/messages`: 529 `overloaded_error`) and `Retry-After`, in the
//! caller's shape, before its body is read.
//!
//! **The rule.** At most `max` requests are in flight in the process (`FLO2_MAX_INFLIGHT`), and
//! at most `share` of them for any one organization, `share` being
//! `FLO2_MAX_INFLIGHT_PER_ORG_PERCENT` of `max` (at least 1). One tenant flooding the gateway
//! therefore holds at most its share, and the rest stays free for the others.
//!
//! **Lock-free, bounded.** The process count is one atomic. Organizations are counted in a
//! count-min sketch: two tables of atomic counters, each organization hashed to one slot in
//! each, its count read as the smaller of the two. A slot shared with another organization
//! can only over-count, so an organization is never admitted past its share; being refused
//! early needs both of its slots shared with busy organizations, which 4,096 slots per table
//! make rare. Memory is fixed (32 kB) whatever the callers do, and no request touches the
//! database or a lock.
//!
//! The [`Permit`] is held for the whole request: the handler keeps it while it waits for the
//! upstream, and a streamed answer carries it in its body, so it is released when the stream
//! ends or the caller hangs up (the body is dropped).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use flo2_core::OrgId;

/// Slots per table of the organization sketch (a power of two).
const SLOTS: usize = 4096;

/// How many requests may be in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionSettings {
    /// Most requests in flight in the process.
    pub max_inflight: u32,
    /// Most requests in flight for one organization, in percent of `max_inflight`.
    pub per_org_percent: u32,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            max_inflight: 2048,
            per_org_percent: 50,
        }
    }
}

/// The counters of requests in flight.
pub struct Admission {
    max: u32,
    share: u32,
    inflight: AtomicU32,
    first: Box<[AtomicU32]>,
    second: Box<[AtomicU32]>,
    refused: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("max", &self.max)
            .field("share", &self.share)
            .field("inflight", &self.inflight)
            .finish_non_exhaustive()
    }
}

/// Why a request was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The process has `max_inflight` requests in flight.
    #[error("flo2 is at capacity ({0} requests in flight); retry shortly")]
    Process(u32),
    /// The organization has its share in flight.
    #[error("your organization has {0} requests in flight, its share of this flo2; retry shortly")]
    Organization(u32),
}

/// One admitted request; releases its place when dropped.
#[must_use = "the request is admitted only while its permit lives"]
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    slots: (u16, u16),
}

impl Drop for Permit {
    fn drop(&mut self) {
        let a = &self.admission;
        a.first[usize::from(self.slots.0)].fetch_sub(1, Ordering::Release);
        a.second[usize::from(self.slots.1)].fetch_sub(1, Ordering::Release);
        a.inflight.fetch_sub(1, Ordering::Release);
    }
}

fn counters() -> Box<[AtomicU32]> {
    (0..SLOTS).map(|_| AtomicU32::new(0)).collect()
}

/// The organization's slot in each table: two independent mixes of its 128-bit id (ids are
/// UUIDv7, whose high bits are a timestamp, so both halves are mixed in).
fn slots(org: OrgId) -> (u16, u16) {
    let id = org.as_uuid().as_u128();
    let (high, low) = ((id >> 64) as u64, id as u64);
    let mix = |x: u64, k: u64| {
        let x = (x ^ (x >> 33)).wrapping_mul(k);
        x ^ (x >> 29)
    };
    let a = mix(
        low ^ mix(high, 0xff51_afd7_ed55_8ccd),
        0xc4ce_b9fe_1a85_ec53,
    );
    let b = mix(
        high ^ mix(low, 0x9e37_79b9_7f4a_7c15),
        0xbf58_476d_1ce4_e5b9,
    );
    let mask = (SLOTS - 1) as u64;
    // Masked to 12 bits, so these fit.
    ((a & mask) as u16, (b & mask) as u16)
}

impl Admission {
    /// Counters for `settings`.
    pub fn new(settings: AdmissionSettings) -> Arc<Self> {
        let max = settings.max_inflight.max(1);
        let share =
            u32::try_from(u64::from(max) * u64::from(settings.per_org_percent.min(100)) / 100)
                .unwrap_or(max)
                .max(1);
        Arc::new(Self {
            max,
            share,
            inflight: AtomicU32::new(0),
            first: counters(),
            second: counters(),
            refused: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The most one organization may have in flight.
    #[cfg(test)]
    pub fn share(&self) -> u32 {
        self.share
    }

    /// Requests in flight now.
    pub fn inflight(&self) -> u32 {
        self.inflight.load(Ordering::Relaxed)
    }

    /// Requests refused since the start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Admits one request of `org`, or says why not. Each count is raised first and lowered
    /// again on refusal, so two requests racing for the last place cannot both get it.
    pub fn admit(self: &Arc<Self>, org: OrgId) -> Result<Permit, Refusal> {
        let before = self.inflight.fetch_add(1, Ordering::AcqRel);
        if before >= self.max {
            self.inflight.fetch_sub(1, Ordering::Release);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Process(self.max));
        }
        let (a, b) = slots(org);
        // From here on the permit undoes all three counts, admitted or not.
        let permit = Permit {
            admission: Arc::clone(self),
            slots: (a, b),
        };
        let in_a = self.first[usize::from(a)].fetch_add(1, Ordering::AcqRel);
        let in_b = self.second[usize::from(b)].fetch_add(1, Ordering::AcqRel);
        if in_a.min(in_b) >= self.share {
            drop(permit);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Organization(self.share));
        }
        Ok(permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max: u32, percent: u32) -> Arc<Admission> {
        Admission::new(AdmissionSettings {
            max_inflight: max,
            per_org_percent: percent,
        })
    }

    #[test]
    fn one_organization_gets_its_share_and_no_more() {
        let a = admission(10, 50);
        let org = OrgId::new();
        let held: Vec<Permit> = (0..5).map(|_| a.admit(org).unwrap()).collect();
        assert_eq!(a.admit(org).unwrap_err(), Refusal::Organization(5));
        // Another organization still gets in.
        let other = a.admit(OrgId::new()).unwrap();
        assert_eq!(a.inflight(), 6, "the refusal left no count behind");
        drop(held);
        drop(other);
        assert_eq!(a.inflight(), 0);
        let again: Vec<Permit> = (0..5).map(|_| a.admit(org).unwrap()).collect();
        assert_eq!(again.len(), 5, "released places are reusable");
        assert_eq!(a.refused(), 1);
    }

    #[test]
    fn the_process_bound_holds_across_organizations() {
        let a = admission(4, 100);
        let held: Vec<Permit> = (0..4).map(|_| a.admit(OrgId::new()).unwrap()).collect();
        assert_eq!(a.admit(OrgId::new()).unwrap_err(), Refusal::Process(4));
        drop(held);
        assert!(a.admit(OrgId::new()).is_ok());
    }

    #[test]
    fn the_share_is_at_least_one_and_at_most_the_whole() {
        assert_eq!(admission(10, 0).share(), 1);
        assert_eq!(admission(10, 500).share(), 10);
        assert_eq!(admission(0, 50).share(), 1, "a zero bound still admits one");
    }

    #[test]
    fn organizations_spread_over_the_slots() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            seen.insert(slots(OrgId::new()));
        }
        assert!(seen.len() > 990, "{} distinct slot pairs", seen.len());
    }

    #[test]
    fn racing_admissions_never_exceed_the_bound() {
        let a = admission(64, 100);
        let org = OrgId::new();
        // Counts permits actually held: `inflight()` is incremented before the bound is
        // checked, so it can read above the bound for the moment a refusal takes to undo it.
        let (held_now, peak) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (a, held_now, peak) =
                    (Arc::clone(&a), Arc::clone(&held_now), Arc::clone(&peak));
                s.spawn(move || {
                    for _ in 0..5_000 {
                        let held: Vec<Permit> = (0..20).filter_map(|_| a.admit(org).ok()).collect();
                        let n = u32::try_from(held.len()).unwrap();
                        peak.fetch_max(
                            held_now.fetch_add(n, Ordering::AcqRel) + n,
                            Ordering::AcqRel,
                        );
                        held_now.fetch_sub(n, Ordering::AcqRel);
                        drop(held);
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 64);
        assert_eq!(a.inflight(), 0);
    }
}
