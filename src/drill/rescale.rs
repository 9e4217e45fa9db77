//! Rescaling a drill's RTO to real time. A drill under a latency profile runs the emulated cloud
//! operations `time_scale` times as fast as the profile says (0.02: a 60 s Route53 change takes
//! 1.2 s). Only what the environment emulated is stretched back: the time inside the logged
//! delays (their union, clipped to the RTO window) is divided by the scale; everything else —
//! drctl itself, the real PostgreSQL promotion, the client's DNS cache and write interval — stays
//! as measured.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::report::model::DelayReport;

/// One line of the environment's delays log.
#[derive(Debug, Clone, Deserialize)]
pub struct LoggedDelay {
    pub operation: String,
    #[serde(default)]
    pub resource: Option<String>,
    /// RFC 3339 with milliseconds.
    pub start: String,
    pub end: String,
    pub delay_s: f64,
    #[serde(default)]
    pub profile_s: Option<f64>,
}

/// Reads the delays log; a line that is not a delay is an error naming the line.
pub fn read_log(path: &Path) -> Result<Vec<LoggedDelay>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the environment's delays log {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("{}:{}: not a delay record: {e}", path.display(), i + 1))
        })
        .collect()
}

/// A delay as a time interval.
fn interval(d: &LoggedDelay) -> Option<(SystemTime, SystemTime)> {
    let start = humantime::parse_rfc3339_weak(d.start.trim_end_matches('Z')).ok()?;
    let end = humantime::parse_rfc3339_weak(d.end.trim_end_matches('Z')).ok()?;
    (end >= start).then_some((start, end))
}

/// How long within `[from, to]` at least one delay was running (the union of the intervals).
pub fn emulated_within(delays: &[LoggedDelay], from: SystemTime, to: SystemTime) -> Duration {
    let mut clipped: Vec<(SystemTime, SystemTime)> =
        delays.iter().filter_map(interval).map(|(s, e)| (s.max(from), e.min(to))).filter(|(s, e)| s < e).collect();
    clipped.sort();
    let mut total = Duration::ZERO;
    let mut current: Option<(SystemTime, SystemTime)> = None;
    for (s, e) in clipped {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce.duration_since(cs).unwrap_or_default();
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        total += ce.duration_since(cs).unwrap_or_default();
    }
    total
}

/// The measured RTO with its emulated part stretched by `1 / scale`.
pub fn rescale(measured: Duration, emulated: Duration, scale: f64) -> Duration {
    let emulated = emulated.min(measured);
    (measured - emulated) + emulated.div_f64(scale)
}

/// The delays that overlap `[from, to]`, for the report.
pub fn overlapping(delays: &[LoggedDelay], from: SystemTime, to: SystemTime) -> Vec<DelayReport> {
    delays
        .iter()
        .filter(|d| interval(d).is_some_and(|(s, e)| s < to && e > from))
        .map(|d| DelayReport {
            operation: d.operation.clone(),
            resource: d.resource.clone(),
            start: d.start.clone(),
            end: d.end.clone(),
            delay_s: d.delay_s,
            profile_s: d.profile_s,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    fn delay(start: &str, end: &str) -> LoggedDelay {
        LoggedDelay {
            operation: "route53.change".into(),
            resource: None,
            start: start.into(),
            end: end.into(),
            delay_s: 0.0,
            profile_s: None,
        }
    }

    #[test]
    fn overlapping_delays_count_once_and_are_clipped_to_the_window() {
        let delays = vec![
            delay("2026-11-30T05:00:01.000Z", "2026-11-30T05:00:07.000Z"), // promotion, 6 s
            delay("2026-11-30T05:00:02.000Z", "2026-11-30T05:00:02.300Z"), // pod ready, inside it
            delay("2026-11-30T05:00:09.000Z", "2026-11-30T05:00:10.200Z"), // route53, 1.2 s
            delay("2026-11-30T05:00:19.000Z", "2026-11-30T05:00:30.000Z"), // failback: half outside
            delay("2026-11-30T04:59:00.000Z", "2026-11-30T04:59:01.000Z"), // an earlier drill
        ];
        let e = emulated_within(&delays, at("2026-11-30T05:00:00Z"), at("2026-11-30T05:00:20Z"));
        assert_eq!(e, Duration::from_millis(6000 + 1200 + 1000));
        assert_eq!(overlapping(&delays, at("2026-11-30T05:00:00Z"), at("2026-11-30T05:00:20Z")).len(), 4);
    }

    #[test]
    fn only_the_emulated_part_is_stretched() {
        // 15 s measured, 7.2 s of it emulated at 0.02: 7.8 s as measured + 360 s.
        let r = rescale(Duration::from_millis(15_000), Duration::from_millis(7_200), 0.02);
        assert_eq!(r, Duration::from_millis(367_800));
        assert_eq!(rescale(Duration::from_secs(10), Duration::ZERO, 0.02), Duration::from_secs(10));
        // Never more emulated time than was measured.
        assert_eq!(rescale(Duration::from_secs(1), Duration::from_secs(5), 0.5), Duration::from_secs(2));
    }
}
