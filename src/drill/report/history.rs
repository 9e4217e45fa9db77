//! `drctl drill history`: past drills' RTO and RPO from their `report.json` files, oldest first,
//! with a trend per drill.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::model::{DrillReport, Measurement};
use super::text::{clock, date, secs, time};
use crate::journal::StateStore;

/// Where drill reports are read from: a directory (`--reports-dir`, or the local state's
/// `drills/`), or the `drills/` of a state store on S3.
#[derive(Debug, Clone)]
pub enum Reports {
    Dir(PathBuf),
    Store(StateStore),
}

impl Reports {
    /// Where they are, for messages.
    pub fn describe(&self) -> String {
        match self {
            Reports::Dir(dir) => dir.display().to_string(),
            Reports::Store(store) => format!("{}/drills", store.describe().location.trim_end_matches('/')),
        }
    }

    /// The reports (only `drill`'s when given), oldest first; see [`load`].
    pub fn load(&self, drill: Option<&str>) -> Result<Found, String> {
        match self {
            Reports::Dir(dir) => load(dir, drill).map_err(|e| e.to_string()),
            Reports::Store(store) => load_store(store, drill).map_err(|e| e.to_string()),
        }
    }

    /// The history table of [`history`].
    pub fn history(&self, drill: Option<&str>) -> Result<String, String> {
        Ok(render(&self.load(drill)?, &self.describe()))
    }
}

/// The reports found under a reports root, oldest first, and those that could not be read.
#[derive(Debug, Default)]
pub struct Found {
    pub reports: Vec<(PathBuf, DrillReport)>,
    /// `PATH: why`, one per report that could not be read.
    pub skipped: Vec<String>,
}

/// Reads every `<reports_root>/<drill>/<started>/report.json` (only `drill`'s when given), sorted by
/// `started_at`. A missing root is no reports; an unreadable report is listed in `skipped`.
pub fn load(reports_root: &Path, drill: Option<&str>) -> std::io::Result<Found> {
    let mut found = Found::default();
    let drill_dirs = match drill {
        Some(name) => vec![reports_root.join(name)],
        None => match std::fs::read_dir(reports_root) {
            Ok(entries) => entries.map(|e| e.map(|e| e.path())).collect::<Result<Vec<_>, _>>()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e),
        },
    };
    for dir in drill_dirs.into_iter().filter(|d| d.is_dir()) {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path().join("report.json");
            if !path.is_file() {
                continue;
            }
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| serde_json::from_str::<DrillReport>(&text).map_err(|e| e.to_string()));
            match parsed {
                Ok(report) if drill.is_none_or(|d| d == report.drill) => found.reports.push((path, report)),
                Ok(_) => {}
                Err(e) => found.skipped.push(format!("{}: {e}", path.display())),
            }
        }
    }
    Ok(sorted(found))
}

/// Reads every `drills/<drill>/<started>/report.json` of `store` (only `drill`'s when given), as
/// [`load`] does a directory.
pub fn load_store(store: &StateStore, drill: Option<&str>) -> Result<Found, crate::journal::StateError> {
    let mut found = Found::default();
    let base = format!("{}/drills", store.describe().location.trim_end_matches('/'));
    for path in store.drill_files()? {
        let mut parts = path.split('/');
        let (Some(name), Some(_), Some("report.json")) = (parts.next(), parts.next(), parts.next()) else { continue };
        if drill.is_some_and(|d| d != name) {
            continue;
        }
        let location = PathBuf::from(format!("{base}/{path}"));
        let parsed = store
            .read_drill_file(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| bytes.ok_or_else(|| "gone while reading".to_string()))
            .and_then(|bytes| serde_json::from_slice::<DrillReport>(&bytes).map_err(|e| e.to_string()));
        match parsed {
            Ok(report) if drill.is_none_or(|d| d == report.drill) => found.reports.push((location, report)),
            Ok(_) => {}
            Err(e) => found.skipped.push(format!("{}: {e}", location.display())),
        }
    }
    Ok(sorted(found))
}

/// Oldest first (by `started_at`, then path); skipped reports sorted.
fn sorted(mut found: Found) -> Found {
    found.reports.sort_by(|(pa, a), (pb, b)| {
        let key = |r: &DrillReport| time(Some(&r.started_at));
        key(a).cmp(&key(b)).then_with(|| a.started_at.cmp(&b.started_at)).then_with(|| pa.cmp(pb))
    });
    found.skipped.sort();
    found
}

/// The latest report of each drill (only `drill`'s when given), by drill name.
pub fn latest_reports(reports_root: &Path, drill: Option<&str>) -> std::io::Result<Vec<(PathBuf, DrillReport)>> {
    let mut latest: BTreeMap<String, (PathBuf, DrillReport)> = BTreeMap::new();
    for (path, report) in load(reports_root, drill)?.reports {
        latest.insert(report.drill.clone(), (path, report));
    }
    Ok(latest.into_values().collect())
}

/// The history table: when it started (UTC, to the second), drill, RTO and RPO measured against their objectives, the verdict, and
/// per drill a sparkline of its RTOs so far with the change since its previous drill.
pub fn history(reports_root: &Path, drill: Option<&str>) -> std::io::Result<String> {
    Ok(render(&load(reports_root, drill)?, &reports_root.display().to_string()))
}

/// The history table of `found`, read from `location`.
pub fn render(found: &Found, location: &str) -> String {
    let mut out = String::new();
    if found.reports.is_empty() {
        let _ = writeln!(out, "no drill reports in {location}");
    } else {
        let mut max: BTreeMap<&str, f64> = BTreeMap::new();
        for (_, r) in &found.reports {
            let m = max.entry(&r.drill).or_insert(0.0);
            *m = m.max(r.objectives.rto.measured_s.unwrap_or(0.0));
        }
        let mut series: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
        let header =
            ["started (UTC)", "drill", "RTO (objective)", "RPO (objective)", "verdict", "RTO trend"].map(String::from);
        let mut rows = vec![header.to_vec()];
        for (_, r) in &found.reports {
            let rto = r.objectives.rto.measured_s;
            let previous = series.get(r.drill.as_str()).and_then(|s| s.iter().rev().flatten().next().copied());
            let line = series.entry(&r.drill).or_default();
            line.push(rto);
            let change = match (rto, previous) {
                (Some(now), Some(before)) if now > before => {
                    format!("RTO ↑ {} s since the previous drill", secs(now - before))
                }
                (Some(now), Some(before)) if now < before => {
                    format!("RTO ↓ {} s since the previous drill", secs(before - now))
                }
                (Some(_), Some(_)) => "RTO unchanged since the previous drill".into(),
                (None, _) => "RTO not measured".into(),
                (Some(_), None) => "first measured drill".into(),
            };
            rows.push(vec![
                format!("{} {}", date(&r.started_at), clock(&r.started_at)),
                r.drill.clone(),
                measure(&r.objectives.rto),
                measure(&r.objectives.rpo),
                if r.outcome.passed { "PASSED" } else { "FAILED" }.into(),
                format!("{} {change}", sparkline(line, max[r.drill.as_str()])),
            ]);
        }
        let widths: Vec<usize> =
            (0..rows[0].len()).map(|c| rows.iter().map(|row| row[c].chars().count()).max().unwrap_or(0)).collect();
        for row in &rows {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
    }
    for skipped in &found.skipped {
        let _ = writeln!(out, "note: skipped {skipped}");
    }
    out
}

fn measure(m: &Measurement) -> String {
    let measured = m.measured_s.map_or_else(|| "—".into(), |v| format!("{} s", secs(v)));
    format!("{measured} ({} s)", secs(m.objective_s))
}

/// `▁▂▃▄▅▆▇█` scaled to `max`; `·` for a drill whose RTO was not measured.
fn sparkline(values: &[Option<f64>], max: f64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|v| match v {
            Some(v) if max > 0.0 => BARS[((v / max * 7.0).round() as usize).min(7)],
            Some(_) => BARS[0],
            None => '·',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::report::{sample, sample_failed};

    fn root(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("drctl-history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn put(root: &Path, report: &DrillReport, stamp: &str) {
        let dir = root.join(&report.drill).join(stamp);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(report).unwrap()).unwrap();
    }

    fn drill_at(mut report: DrillReport, started: &str, rto: f64) -> DrillReport {
        report.started_at = started.into();
        report.objectives.rto.measured_s = Some(rto);
        report
    }

    #[test]
    fn a_table_sorted_by_time_with_a_trend_per_drill() {
        let root = root("table");
        put(&root, &drill_at(sample(), "2026-10-22T07:00:00.000Z", 20.0), "b");
        put(&root, &drill_at(sample(), "2026-09-22T07:00:00.000Z", 10.0), "a");
        put(&root, &drill_at(sample(), "2026-11-22T07:00:00.000Z", 12.3), "c");
        put(&root, &drill_at(sample_failed(), "2026-11-01T13:45:07.250Z", 12.3), "d");
        std::fs::create_dir_all(root.join("us-west-2-monthly/broken")).unwrap();
        std::fs::write(root.join("us-west-2-monthly/broken/report.json"), "{\"drill\": 1}").unwrap();
        let text = history(&root, None).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("started (UTC)        drill"), "{text}");
        assert!(lines[1].starts_with("2026-09-22 07:00:00  us-west-2-monthly   10 s (120 s)"), "{text}");
        assert!(lines[1].ends_with("PASSED   ▅ first measured drill"), "{text}");
        assert!(lines[2].ends_with("▅█ RTO ↑ 10 s since the previous drill"), "{text}");
        assert!(lines[3].starts_with("2026-11-01 13:45:07  us-west-2-zero-rpo "), "{text}");
        assert!(
            lines[3].contains("us-west-2-zero-rpo") && lines[3].contains("2.3 s (0 s)") && lines[3].contains("FAILED"),
            "{text}"
        );
        assert!(lines[4].ends_with("▅█▅ RTO ↓ 7.7 s since the previous drill"), "{text}");
        assert!(lines[5].starts_with("note: skipped ") && lines[5].contains("broken"), "{text}");

        let only = history(&root, Some("us-west-2-zero-rpo")).unwrap();
        assert_eq!(only.lines().count(), 2, "{only}");
        let latest = latest_reports(&root, None).unwrap();
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[0].1.started_at, "2026-11-22T07:00:00.000Z");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn no_reports_is_said_not_an_error() {
        let root = root("none");
        assert!(history(&root, None).unwrap().starts_with("no drill reports in "));
        assert!(history(&root, Some("x")).unwrap().starts_with("no drill reports in "));
        assert_eq!(sparkline(&[Some(0.0), None, Some(4.0), Some(8.0)], 8.0), "▁·▅█");
    }
}
