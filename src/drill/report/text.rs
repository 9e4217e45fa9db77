//! What every report format shares: seconds and times as people read them, the objectives' verdicts
//! in words, and escaping for XML and HTML.

use std::time::SystemTime;

use super::model::{DrillReport, Measurement, RunReport, StepReport, StepStatus};

/// Parses an RFC 3339 time of the report; `None` when absent or malformed.
pub fn time(at: Option<&str>) -> Option<SystemTime> {
    humantime::parse_rfc3339(at?).ok()
}

/// Seconds from `from` to `at` (negative when `at` is earlier).
pub fn offset(from: SystemTime, at: SystemTime) -> f64 {
    match at.duration_since(from) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Seconds after the fault that `at` happened, when both parse.
pub fn since_fault(report: &DrillReport, at: Option<&str>) -> Option<f64> {
    Some(offset(time(Some(&report.fault.injected_at))?, time(at)?))
}

/// A number of seconds, short: `12.3`, `0`, `0.04`, `300`.
pub fn secs(value: f64) -> String {
    let text = if value.abs() >= 1.0 || value == 0.0 { format!("{value:.1}") } else { format!("{value:.3}") };
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
    if text == "-0" { "0".into() } else { text }
}

/// Seconds in a table column: always two decimals (`0.98`, `12.30`).
pub fn column(value: f64) -> String {
    format!("{value:.2}")
}

/// A duration for people: `12.3 s`, `2 min 5 s`, `1 h 2 min`.
pub fn human(value: f64) -> String {
    let whole = value.round() as u64;
    match value {
        v if v < 60.0 => format!("{} s", secs(v)),
        _ if whole < 3600 => format!("{} min {} s", whole / 60, whole % 60),
        _ => format!("{} h {} min", whole / 3600, whole % 3600 / 60),
    }
}

/// `YYYY-MM-DD` of an RFC 3339 time, or the text itself when it does not parse.
pub fn date(at: &str) -> String {
    stamp(at).map_or_else(|| at.to_string(), |s| s[..10].to_string())
}

/// `HH:MM:SS` (UTC) of an RFC 3339 time.
pub fn clock(at: &str) -> String {
    stamp(at).map_or_else(|| at.to_string(), |s| s[11..19].to_string())
}

/// `HH:MM:SS.mmm` (UTC) of an RFC 3339 time: heartbeats a second apart need the milliseconds.
pub fn clock_ms(at: &str) -> String {
    time(Some(at))
        .map_or_else(|| at.to_string(), |t| humantime::format_rfc3339_millis(t).to_string()[11..23].to_string())
}

fn stamp(at: &str) -> Option<String> {
    Some(humantime::format_rfc3339_seconds(time(Some(at))?).to_string())
}

/// `PASSED` or `FAILED`.
pub fn verdict(report: &DrillReport) -> &'static str {
    if report.outcome.passed { "PASSED" } else { "FAILED" }
}

/// An objective in one sentence: `RPO 2.3 s against 0 s: missed by 2.3 s`.
pub fn judged(name: &str, m: &Measurement) -> String {
    match m.measured_s {
        None => format!("{name} not measured (objective {} s)", secs(m.objective_s)),
        Some(measured) => {
            let (objective, by) = (secs(m.objective_s), secs((measured - m.objective_s).abs()));
            match m.met {
                Some(false) => format!("{name} {} s against {objective} s: missed by {by} s", secs(measured)),
                _ => format!("{name} {} s against {objective} s: met with {by} s to spare", secs(measured)),
            }
        }
    }
}

/// The step's state as shown: `already done` for a success that changed nothing.
pub fn step_state(step: &StepReport) -> &str {
    if step.already_done && step.state == StepStatus::Succeeded { "already done" } else { step.state.as_str() }
}

/// `Failover` or `Failback` (the direction, capitalized).
pub fn run_title(run: &RunReport) -> String {
    let mut chars = run.direction.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// Escapes text for XML and HTML, in content and in quoted attributes alike; drops the control
/// characters XML 1.0 forbids.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_read_short() {
        assert_eq!(secs(12.3), "12.3");
        assert_eq!(secs(0.0), "0");
        assert_eq!(secs(300.0), "300");
        assert_eq!(secs(0.042), "0.042");
        assert_eq!(secs(2.2999999), "2.3");
        assert_eq!(human(125.0), "2 min 5 s");
        assert_eq!(human(3720.0), "1 h 2 min");
    }

    #[test]
    fn objectives_say_by_how_much() {
        let missed = Measurement { objective_s: 0.0, measured_s: Some(2.3), met: Some(false), detail: String::new() };
        assert_eq!(judged("RPO", &missed), "RPO 2.3 s against 0 s: missed by 2.3 s");
        let met = Measurement { objective_s: 120.0, measured_s: Some(12.3), met: Some(true), detail: String::new() };
        assert_eq!(judged("RTO", &met), "RTO 12.3 s against 120 s: met with 107.7 s to spare");
        let none = Measurement { measured_s: None, met: None, ..met };
        assert_eq!(judged("RTO", &none), "RTO not measured (objective 120 s)");
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(escape("<a href=\"x\">&'\u{1}"), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
        assert_eq!(clock("2026-11-22T07:12:04.120Z"), "07:12:04");
        assert_eq!(clock_ms("2026-11-22T07:12:04.120Z"), "07:12:04.120");
        assert_eq!(date("2026-11-22T07:12:04.120Z"), "2026-11-22");
    }
}
