//! `junit.xml`: the drill as one JUnit test suite for CI: the two objectives, each run and each
//! check as test cases, with failure messages that say what was measured against what.

use std::fmt::Write;

use super::model::{DrillReport, Measurement, RunReport, RunStatus, StepStatus};
use super::text::{escape, judged, offset, run_title, time};

struct Case {
    name: String,
    time_s: f64,
    /// `(message, body)` of a failure.
    failure: Option<(String, String)>,
    skipped: Option<String>,
}

/// The JUnit XML. Deterministic: the same report gives the same text.
pub fn render(report: &DrillReport) -> String {
    let mut cases = vec![objective("RTO", &report.objectives.rto), objective("RPO", &report.objectives.rpo)];
    cases.extend(report.runs.iter().map(run));
    cases.extend(report.checks.iter().map(|check| Case {
        name: format!("check {}", check.name),
        time_s: 0.0,
        failure: (!check.passed).then(|| (format!("check failed: {}", check.detail), check.detail.clone())),
        skipped: None,
    }));
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let skipped = cases.iter().filter(|c| c.skipped.is_some()).count();
    let total = match (time(Some(&report.started_at)), time(Some(&report.finished_at))) {
        (Some(start), Some(end)) => offset(start, end).max(0.0),
        _ => 0.0,
    };
    let suite = format!("drill {}", report.drill);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!("tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\"", cases.len());
    let _ = writeln!(out, "<testsuites name=\"{}\" {counts} time=\"{}\">", escape(&suite), seconds(total));
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" {counts} time=\"{}\" timestamp=\"{}\" hostname=\"{}\">",
        escape(&suite),
        seconds(total),
        escape(report.started_at.trim_end_matches('Z')),
        escape(&report.host)
    );
    let _ = writeln!(out, "    <properties>");
    for (name, value) in [
        ("plan", report.plan.as_str()),
        ("environment", &report.environment),
        ("fault", &report.fault.kind),
        ("fault.injected_at", &report.fault.injected_at),
        ("verdict", if report.outcome.passed { "passed" } else { "failed" }),
    ] {
        let _ = writeln!(out, "      <property name=\"{name}\" value=\"{}\"/>", escape(value));
    }
    let _ = writeln!(out, "    </properties>");
    let classname = escape(&format!("drill.{}", report.drill));
    for case in &cases {
        let open = format!(
            "    <testcase classname=\"{classname}\" name=\"{}\" time=\"{}\"",
            escape(&case.name),
            seconds(case.time_s)
        );
        match (&case.failure, &case.skipped) {
            (Some((message, body)), _) => {
                let _ = writeln!(out, "{open}>");
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"drill\">{}</failure>",
                    escape(message),
                    escape(body)
                );
                let _ = writeln!(out, "    </testcase>");
            }
            (None, Some(message)) => {
                let _ = writeln!(out, "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>", escape(message));
            }
            (None, None) => {
                let _ = writeln!(out, "{open}/>");
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn seconds(value: f64) -> String {
    format!("{:.3}", value.max(0.0))
}

fn objective(name: &str, m: &Measurement) -> Case {
    let judged = judged(name, m);
    Case {
        name: format!("objective {name}"),
        time_s: m.measured_s.unwrap_or(0.0),
        failure: (m.met == Some(false)).then(|| (judged.clone(), format!("{judged}\n{}", m.detail))),
        skipped: m.measured_s.is_none().then(|| format!("{judged}: {}", m.detail)),
    }
}

fn run(run: &RunReport) -> Case {
    let duration = match (time(Some(&run.started_at)), time(run.finished_at.as_deref())) {
        (Some(start), Some(end)) => offset(start, end),
        _ => 0.0,
    };
    let failure = (run.state != RunStatus::Succeeded).then(|| {
        let failed: Vec<String> = run
            .steps
            .iter()
            .filter(|s| s.state == StepStatus::Failed)
            .map(|s| format!("step {} ({}): {}", s.id, s.step_type, s.error.as_deref().unwrap_or("no error recorded")))
            .collect();
        let message = match failed.first() {
            Some(first) => format!("the {} run {} {}: {first}", run.direction, run.run_id, run.state),
            None => format!("the {} run {} {}", run.direction, run.run_id, run.state),
        };
        (message, failed.join("\n"))
    });
    Case { name: format!("{} run", run_title(run).to_lowercase()), time_s: duration, failure, skipped: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::report::{sample, sample_failed};

    /// A small well-formedness check: tags balance, attribute values are quoted, and every `&` and
    /// `<` in text or attributes is markup or an entity.
    fn assert_well_formed(xml: &str) {
        let body = xml.strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n").expect("XML declaration");
        let mut stack: Vec<String> = Vec::new();
        let mut rest = body;
        while let Some(open) = rest.find('<') {
            check_text(&rest[..open]);
            let close = rest[open..].find('>').expect("unclosed tag") + open;
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
            let quotes = tag.matches('"').count();
            assert_eq!(quotes % 2, 0, "unbalanced quotes: {tag}");
            for value in tag.split('"').skip(1).step_by(2) {
                check_text(value);
            }
            let name = tag.trim_start_matches('/').split([' ', '/']).next().unwrap().to_string();
            if tag.starts_with('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                stack.push(name);
            }
            rest = &rest[close + 1..];
        }
        check_text(rest);
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    fn check_text(text: &str) {
        assert!(!text.contains('>') || text.trim().is_empty(), "raw '>' in {text:?}");
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|e| entity.starts_with(e)),
                "raw '&' in {text:?}"
            );
        }
    }

    #[test]
    fn a_passed_drill_is_a_green_suite() {
        let xml = render(&sample());
        assert_well_formed(&xml);
        assert!(xml.contains("<testsuite name=\"drill us-west-2-monthly\" tests=\"6\" failures=\"0\" errors=\"0\" skipped=\"0\" time=\"60.000\""));
        assert!(xml.contains("name=\"objective RTO\" time=\"12.300\"/>"));
        assert!(xml.contains("name=\"failover run\" time=\"12.000\"/>"));
        assert!(!xml.contains("<failure"));
    }

    #[test]
    fn failures_say_what_was_measured_and_escape_the_errors() {
        let xml = render(&sample_failed());
        assert_well_formed(&xml);
        assert!(xml.contains("failures=\"3\""), "{xml}");
        assert!(xml.contains("<failure message=\"RPO 2.3 s against 0 s: missed by 2.3 s\""), "{xml}");
        assert!(xml.contains("name=\"failback run\""));
        assert!(xml.contains("step notify (notify.webhook): POST https://hooks.example/x?a=1&amp;b=2 answered 500: &lt;error code=&quot;E1&quot;&gt; &amp; &apos;retry&apos;"), "{xml}");
        assert!(xml.contains("name=\"check nothing left behind\""));
        assert!(!xml.contains("<&>"));
    }

    #[test]
    fn an_objective_not_measured_is_skipped() {
        let mut report = sample();
        report.objectives.rto.measured_s = None;
        report.objectives.rto.met = None;
        report.host = "h\"<&>'".into();
        let xml = render(&report);
        assert_well_formed(&xml);
        assert!(xml.contains("<skipped message=\"RTO not measured (objective 120 s): from the fault"), "{xml}");
        assert!(xml.contains("skipped=\"1\""));
        assert!(xml.contains("hostname=\"h&quot;&lt;&amp;&gt;&apos;\""));
    }
}
