//! A [`Report`] as Prometheus gauges (text exposition format 0.0.4), for node_exporter's textfile
//! collector (`--metrics-file`) or `/metrics` (`--serve`).
//!
//! | Gauge | Labels | Value |
//! | --- | --- | --- |
//! | `drctl_check_ok` | `plan`, `direction` (`failover`, `failback`, `any`), `step` (a step id or `plan`), `check` | 1 when the check passed or only warned, 0 on a problem |
//! | `drctl_check_warning` | same | 1 when the check warned |
//! | `drctl_check_ready` | `plan`, `direction` | 1 when the direction has no problem |
//! | `drctl_replica_lag_seconds` | `plan`, `step` | the replica lag a promotion step measured |
//! | `drctl_last_drill_timestamp_seconds` | `plan`, `drill` | when the drill's last passing run started |
//! | `drctl_check_duration_seconds` | `plan` | the wall time of the check |
//! | `drctl_check_timestamp_seconds` | `plan` | when the check finished |
//!
//! A step with several findings of one check (RBAC for several verbs) gets one series: the worst.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use super::Report;
use crate::step::Severity;

/// Escapes a label value (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    format!("{{{}}}", inner.join(","))
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// The report's gauges in Prometheus' text format.
pub fn render(report: &Report) -> String {
    let plan = report.plan.as_str();
    let mut worst: BTreeMap<(&str, &str, &str), Severity> = BTreeMap::new();
    for item in &report.items {
        let key = (item.direction.as_str(), item.step.as_str(), item.finding.check.as_str());
        let entry = worst.entry(key).or_insert(item.finding.severity);
        *entry = (*entry).max(item.finding.severity);
    }
    let mut out = String::new();
    header(&mut out, "drctl_check_ok", "1 when a readiness check passed (or only warned), 0 when it found a problem.");
    for ((direction, step, check), severity) in &worst {
        let l = labels(&[("plan", plan), ("direction", direction), ("step", step), ("check", check)]);
        let _ = writeln!(out, "drctl_check_ok{l} {}", u8::from(*severity != Severity::Problem));
    }
    header(&mut out, "drctl_check_warning", "1 when a readiness check warned.");
    for ((direction, step, check), severity) in &worst {
        let l = labels(&[("plan", plan), ("direction", direction), ("step", step), ("check", check)]);
        let _ = writeln!(out, "drctl_check_warning{l} {}", u8::from(*severity == Severity::Warning));
    }
    header(&mut out, "drctl_check_ready", "1 when the plan is ready to run in this direction (no problem found).");
    for direction in &report.directions {
        let d = direction.to_string();
        let _ = writeln!(
            out,
            "drctl_check_ready{} {}",
            labels(&[("plan", plan), ("direction", &d)]),
            u8::from(report.ready_in(*direction, false))
        );
    }
    header(
        &mut out,
        "drctl_replica_lag_seconds",
        "The replication lag a promotion step would lose, as its preflight measured it.",
    );
    let mut lags: BTreeMap<&str, f64> = BTreeMap::new();
    for item in &report.items {
        if let Some(lag) = item.finding.lag_seconds {
            lags.insert(item.step.as_str(), lag);
        }
    }
    for (step, lag) in lags {
        let _ = writeln!(out, "drctl_replica_lag_seconds{} {lag}", labels(&[("plan", plan), ("step", step)]));
    }
    header(
        &mut out,
        "drctl_last_drill_timestamp_seconds",
        "When the last passing drill of the plan started (Unix time).",
    );
    for drill in &report.last_drills {
        let l = labels(&[("plan", plan), ("drill", &drill.drill)]);
        let _ = writeln!(out, "drctl_last_drill_timestamp_seconds{l} {}", drill.started_at_s);
    }
    header(&mut out, "drctl_check_duration_seconds", "Wall time of the readiness check.");
    let _ = writeln!(out, "drctl_check_duration_seconds{} {}", labels(&[("plan", plan)]), report.duration_s);
    header(&mut out, "drctl_check_timestamp_seconds", "When the readiness check finished (Unix time).");
    let _ = writeln!(out, "drctl_check_timestamp_seconds{} {}", labels(&[("plan", plan)]), report.checked_at_s);
    out
}

/// Writes `text` to `path` atomically (a temporary file beside it, then a rename), as the textfile
/// collector requires: it must never read a half-written file.
pub fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "metrics".into());
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}
