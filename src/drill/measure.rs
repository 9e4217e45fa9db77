//! What the synthetic client's traffic says, without I/O: the outage clients saw (RTO), the
//! acknowledged writes the failover lost (RPO) and the writes the old primary acknowledged after the
//! promotion (split brain).
//!
//! - A write *survived* when it was acknowledged and is present in the database that is primary at
//!   the end. Every other attempt after the fault is part of the outage: refused, unanswered, or
//!   acknowledged and then lost.
//! - The outage starts at the first attempt at or after the fault that did not survive, and ends
//!   with the first surviving write after the last one that did not: a flap counts as still out.
//!   The RTO runs from the fault to that write's acknowledgement (0 when no attempt after the fault
//!   failed).
//! - Lost writes are acknowledged writes missing from the final primary. The RPO is the window of
//!   acknowledged data they span: from the last surviving write committed before the first lost one
//!   (else the first lost one) to the last lost one, by commit time.
//! - Split-brain writes are writes acknowledged by the old primary's region and committed after the
//!   promotion time the failover journaled.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

/// One client attempt, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The write's number (one per attempt, from 1).
    pub seq: u64,
    /// When the client started the attempt (resolution included).
    pub sent_at: SystemTime,
    /// When its answer (or error) came back.
    pub answered_at: SystemTime,
    /// The region the public name resolved to; `None` when resolution failed.
    pub region: Option<String>,
    /// Acknowledged with the database's commit time, or the error.
    pub result: Result<SystemTime, String>,
}

impl Attempt {
    /// The commit time, when acknowledged.
    pub fn committed_at(&self) -> Option<SystemTime> {
        self.result.as_ref().ok().copied()
    }
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Acknowledged and present in the final primary.
    Survived,
    /// Acknowledged, missing from the final primary.
    Lost,
    /// Acknowledged by the old primary after the promotion (missing or not).
    SplitBrain,
    /// Not acknowledged.
    Failed,
}

impl Fate {
    /// `survived`, `lost`, `split_brain`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Survived => "survived",
            Fate::Lost => "lost",
            Fate::SplitBrain => "split_brain",
            Fate::Failed => "failed",
        }
    }
}

/// What the measurement needs besides the traffic.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub fault_at: SystemTime,
    /// When the DR database was promoted (the promotion step's end in the failover journal).
    pub promoted_at: Option<SystemTime>,
    /// The region of the old primary.
    pub old_primary_region: &'a str,
    /// Sequence numbers present in the database that is primary at the end.
    pub present: &'a BTreeSet<u64>,
}

/// The measurements.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measured {
    pub attempts: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub outage_started_at: Option<SystemTime>,
    pub recovered_at: Option<SystemTime>,
    /// From the fault to `recovered_at`; 0 without an outage; `None` when clients never recovered.
    pub rto: Option<Duration>,
    /// Sequence numbers of acknowledged writes missing from the final primary.
    pub lost: Vec<u64>,
    pub lost_first_at: Option<SystemTime>,
    pub lost_last_at: Option<SystemTime>,
    /// The window of acknowledged data lost (0 when nothing was).
    pub rpo: Duration,
    /// Sequence numbers of split-brain writes.
    pub split_brain: Vec<u64>,
    /// Each attempt's fate, in the order given.
    pub fates: Vec<Fate>,
}

/// Measures `attempts` (in the order they were made) against `facts`.
pub fn measure(attempts: &[Attempt], facts: &Facts) -> Measured {
    let fates: Vec<Fate> = attempts.iter().map(|a| fate(a, facts)).collect();
    let acknowledged = attempts.iter().filter(|a| a.result.is_ok()).count() as u64;
    let bad = |i: usize| fates[i] != Fate::Survived;
    let after_fault = |i: usize| attempts[i].sent_at >= facts.fault_at;
    let first_bad = (0..attempts.len()).find(|&i| after_fault(i) && bad(i));
    let last_bad = (0..attempts.len()).rev().find(|&i| after_fault(i) && bad(i));
    let recovered = last_bad.and_then(|last| (last + 1..attempts.len()).find(|&i| !bad(i)));
    let recovered_at = recovered.map(|i| attempts[i].answered_at);
    let rto = match first_bad {
        None if attempts.iter().any(|a| a.sent_at >= facts.fault_at) => Some(Duration::ZERO),
        None => None,
        Some(_) => recovered_at.map(|at| at.duration_since(facts.fault_at).unwrap_or_default()),
    };

    let mut lost: Vec<&Attempt> =
        attempts.iter().filter(|a| a.result.is_ok() && !facts.present.contains(&a.seq)).collect();
    lost.sort_by_key(|a| a.committed_at());
    let (first, last) = (lost.first().and_then(|a| a.committed_at()), lost.last().and_then(|a| a.committed_at()));
    let rpo = match (first, last) {
        (Some(first), Some(last)) => {
            let before = attempts
                .iter()
                .zip(&fates)
                .filter(|(_, f)| **f == Fate::Survived)
                .filter_map(|(a, _)| a.committed_at())
                .filter(|at| *at < first)
                .max();
            last.duration_since(before.unwrap_or(first)).unwrap_or_default()
        }
        _ => Duration::ZERO,
    };
    Measured {
        attempts: attempts.len() as u64,
        acknowledged,
        failed: attempts.len() as u64 - acknowledged,
        outage_started_at: first_bad.map(|i| attempts[i].sent_at),
        recovered_at,
        rto,
        lost: lost.iter().map(|a| a.seq).collect(),
        lost_first_at: first,
        lost_last_at: last,
        rpo,
        split_brain: attempts.iter().zip(&fates).filter(|(_, f)| **f == Fate::SplitBrain).map(|(a, _)| a.seq).collect(),
        fates,
    }
}

fn fate(attempt: &Attempt, facts: &Facts) -> Fate {
    let Some(committed) = attempt.committed_at() else { return Fate::Failed };
    let old_primary = attempt.region.as_deref() == Some(facts.old_primary_region);
    if old_primary && facts.promoted_at.is_some_and(|promoted| committed > promoted) {
        return Fate::SplitBrain;
    }
    if facts.present.contains(&attempt.seq) { Fate::Survived } else { Fate::Lost }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// An attempt sent at `ms`, answered 5 ms later, committed at `ms + 2` when acknowledged.
    pub(crate) fn attempt(seq: u64, ms: u64, region: &str, acknowledged: bool) -> Attempt {
        Attempt {
            seq,
            sent_at: at(ms),
            answered_at: at(ms + 5),
            region: Some(region.into()),
            result: if acknowledged { Ok(at(ms + 2)) } else { Err("refused".into()) },
        }
    }

    fn facts<'a>(present: &'a BTreeSet<u64>, promoted_at: Option<u64>) -> Facts<'a> {
        Facts { fault_at: at(1000), promoted_at: promoted_at.map(at), old_primary_region: "us-east-1", present }
    }

    #[test]
    fn the_outage_runs_from_the_fault_to_the_first_write_after_the_last_failure() {
        // Writes every 100 ms; the primary dies at 1000; us-west-2 answers from 3000, with one flap
        // at 3200.
        let mut traffic = Vec::new();
        for (i, ms) in (0..50).map(|i| (i, i * 100)) {
            let region = if ms < 3000 { "us-east-1" } else { "us-west-2" };
            traffic.push(attempt(i + 1, ms, region, ms < 1000 || (ms >= 3000 && ms != 3200)));
        }
        let present: BTreeSet<u64> = traffic.iter().filter(|a| a.result.is_ok()).map(|a| a.seq).collect();
        let m = measure(&traffic, &facts(&present, Some(2000)));
        assert_eq!((m.attempts, m.acknowledged, m.failed), (50, 29, 21));
        assert_eq!(m.outage_started_at, Some(at(1000)));
        assert_eq!(m.recovered_at, Some(at(3305)), "the flap at 3200 keeps the outage open");
        assert_eq!(m.rto, Some(Duration::from_millis(2305)));
        assert!(m.lost.is_empty() && m.split_brain.is_empty());
        assert_eq!(m.rpo, Duration::ZERO);
    }

    #[test]
    fn lost_writes_are_acknowledged_writes_missing_from_the_final_primary() {
        // Replication stopped at 500: the writes acknowledged from 500 to 900 never reached the DR.
        let traffic: Vec<Attempt> = (0..20).map(|i| attempt(i + 1, i * 100, "us-east-1", i < 10)).collect();
        let present: BTreeSet<u64> = (1..=5).collect();
        let m = measure(&traffic, &facts(&present, None));
        assert_eq!(m.lost, [6, 7, 8, 9, 10]);
        assert_eq!((m.lost_first_at, m.lost_last_at), (Some(at(502)), Some(at(902))));
        assert_eq!(m.rpo, Duration::from_millis(500), "from the last surviving write (402) to the last lost one");
        assert_eq!(m.rto, None, "clients never recovered");
        assert_eq!(m.outage_started_at, Some(at(1000)));
    }

    #[test]
    fn writes_the_old_primary_acknowledged_after_the_promotion_are_split_brain() {
        // A partition at 1000: the old primary keeps acknowledging; the DR is promoted at 1500 and
        // clients reach it at 2500.
        let traffic: Vec<Attempt> =
            (0..30).map(|i| attempt(i + 1, i * 100, if i < 25 { "us-east-1" } else { "us-west-2" }, true)).collect();
        let present: BTreeSet<u64> = (1..=10).chain(26..=30).collect();
        let m = measure(&traffic, &facts(&present, Some(1500)));
        assert_eq!(m.split_brain, (16..=25).collect::<Vec<_>>(), "committed after 1500 on us-east-1");
        assert_eq!(m.lost, (11..=25).collect::<Vec<_>>(), "the partition's writes and the split brain");
        assert_eq!(m.fates[10], Fate::Lost);
        assert_eq!(m.fates[15], Fate::SplitBrain);
        assert_eq!(m.outage_started_at, Some(at(1000)), "acknowledged and lost is an outage too");
        assert_eq!(m.recovered_at, Some(at(2505)));
        assert_eq!(m.rpo, Duration::from_millis(1500), "from 902 (survived) to 2402");
    }

    #[test]
    fn traffic_the_fault_never_interrupted_has_an_rto_of_zero() {
        let traffic: Vec<Attempt> = (0..20).map(|i| attempt(i + 1, i * 100, "us-east-1", true)).collect();
        let present: BTreeSet<u64> = (1..=20).collect();
        let m = measure(&traffic, &facts(&present, None));
        assert_eq!((m.rto, m.outage_started_at, m.recovered_at), (Some(Duration::ZERO), None, None));
        let before_the_fault = &traffic[..5];
        assert_eq!(measure(before_the_fault, &facts(&present, None)).rto, None, "no attempt after the fault");
    }
}
