//! A [`Report`] for people (a table), for programs (JSON) and for CI (JUnit XML).

use std::fmt::Write;

use super::Report;
use crate::step::Severity;

fn label(severity: Severity) -> &'static str {
    match severity {
        Severity::Ok => "ok",
        Severity::Warning => "WARNING",
        Severity::Problem => "PROBLEM",
    }
}

/// The verdict line: `READY` or `NOT READY`, with the counts.
pub fn verdict(report: &Report, strict: bool) -> String {
    let (problems, warnings) = (report.count(Severity::Problem), report.count(Severity::Warning));
    let word = if report.ready(strict) { "READY" } else { "NOT READY" };
    let directions: Vec<String> = report.directions.iter().map(|d| d.to_string()).collect();
    format!(
        "{word}: plan {} ({}): {problems} problem(s), {warnings} warning(s), {} check(s) in {:.2}s",
        report.plan,
        directions.join(" and "),
        report.items.len(),
        report.duration_s
    )
}

/// One line per finding (with `all`, ok ones too), the fix under each problem and warning, then
/// the verdict.
pub fn table(report: &Report, strict: bool, all: bool) -> String {
    let shown: Vec<_> = report.items.iter().filter(|i| all || i.finding.severity != Severity::Ok).collect();
    let width = |f: &dyn Fn(&super::Item) -> usize| shown.iter().map(|i| f(i)).max().unwrap_or(0);
    let (wd, ws, wc) = (width(&|i| i.direction.len()), width(&|i| i.step.len()), width(&|i| i.finding.check.len()));
    let mut out = String::new();
    for item in &shown {
        let f = &item.finding;
        let _ = writeln!(
            out,
            "{:7}  {:wd$}  {:ws$}  {:wc$}  {}",
            label(f.severity),
            item.direction,
            item.step,
            f.check,
            f.message
        );
        if !f.fix.is_empty() {
            let _ = writeln!(out, "{:7}  {:wd$}  {:ws$}  {:wc$}  fix: {}", "", "", "", "", f.fix);
        }
    }
    let _ = writeln!(out, "{}", verdict(report, strict));
    out
}

/// The whole report as one JSON object, with `ready`.
pub fn json(report: &Report, strict: bool) -> serde_json::Value {
    let mut value = serde_json::to_value(report).unwrap_or_default();
    value["ready"] = serde_json::Value::Bool(report.ready(strict));
    value
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// JUnit XML: one test case per finding, named `direction/step/check`; a problem is a failure (a
/// warning too with `strict`), a warning otherwise only says so in `system-out`.
pub fn junit(report: &Report, strict: bool) -> String {
    let failing = |s: Severity| s == Severity::Problem || (strict && s == Severity::Warning);
    let failures = report.items.iter().filter(|i| failing(i.finding.severity)).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"drctl check\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">",
        report.items.len(),
        report.duration_s
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">",
        xml(&report.plan),
        report.items.len(),
        report.duration_s
    );
    for item in &report.items {
        let f = &item.finding;
        let classname = format!("{}.{}.{}", report.plan, item.direction, item.step);
        let _ = write!(out, "    <testcase classname=\"{}\" name=\"{}\"", xml(&classname), xml(&f.check));
        if failing(f.severity) {
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\">{}\nfix: {}</failure>\n    </testcase>",
                xml(&f.message),
                xml(&f.message),
                xml(&f.fix)
            );
        } else if f.severity == Severity::Warning {
            let _ = writeln!(
                out,
                ">\n      <system-out>warning: {}\nfix: {}</system-out>\n    </testcase>",
                xml(&f.message),
                xml(&f.fix)
            );
        } else {
            out.push_str("/>\n");
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
