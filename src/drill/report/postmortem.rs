//! `postmortem.md`: a postmortem draft in the runbooks' template, filled from the report, for the
//! team to finish (the lessons are theirs to write).

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use super::model::{DrillReport, StepStatus};
use super::text::{clock_ms, date, human, run_title, secs, since_fault, time};

/// The draft. Deterministic: the same report gives the same text.
pub fn render(report: &DrillReport) -> String {
    let r = report;
    let mut out = String::new();
    let _ = writeln!(out, "# Postmortem: DR drill {} (plan {})\n", r.drill, r.plan);
    let _ = writeln!(out, "**Date**: {}\n", date(&r.fault.injected_at));
    let _ = writeln!(out, "**Duration**: {}\n", duration(r));
    let _ = writeln!(out, "**Severity**: P3 (drill)\n");
    let rto = r.objectives.rto.measured_s.map_or_else(|| "not measured".into(), |v| format!("{} s", secs(v)));
    let rpo = r.objectives.rpo.measured_s.map_or_else(|| "not measured".into(), |v| format!("{} s", secs(v)));
    let _ = writeln!(
        out,
        "**Impact**: RTO {rto} (objective {} s), RPO {rpo} (objective {} s); {} of {} acknowledged client writes \
         lost, {} of them split brain.\n",
        secs(r.objectives.rto.objective_s),
        secs(r.objectives.rpo.objective_s),
        r.client.lost_writes,
        r.client.acknowledged,
        r.client.split_brain_writes
    );

    let _ = writeln!(out, "## Summary\n");
    let verdict = if r.outcome.passed { "passed" } else { "failed" };
    let runs: Vec<String> = r.runs.iter().map(|run| format!("the {} {}", run.direction, run.state)).collect();
    let _ = writeln!(
        out,
        "A DR drill of plan {} on the {} environment injected a fault ({}), and {}. The drill {verdict}{}.\n",
        r.plan,
        r.environment,
        r.fault.kind,
        if runs.is_empty() { "no run was made".into() } else { runs.join(", then ") },
        if r.outcome.failures.is_empty() {
            String::new()
        } else {
            format!(" with {} failure(s), listed under Action Items", r.outcome.failures.len())
        }
    );

    let _ = writeln!(out, "## Timeline\n");
    let _ = writeln!(out, "All times UTC.\n");
    for (_, line) in timeline(r) {
        let _ = writeln!(out, "- {}", line.replace('<', "\\<"));
    }

    let _ = writeln!(out, "\n## Root Cause\n");
    let _ = writeln!(
        out,
        "The fault was injected on purpose: this was a drill. `{}`: {}.\n",
        r.fault.kind, r.fault.description
    );

    let _ = writeln!(out, "## Resolution\n");
    for run in &r.runs {
        let finished = run
            .finished_at
            .as_deref()
            .map_or_else(|| "did not finish".into(), |f| format!("finished at {}", clock_ms(f)));
        let failed: Vec<&str> =
            run.steps.iter().filter(|s| s.state == StepStatus::Failed).map(|s| s.id.as_str()).collect();
        let failed = if failed.is_empty() { String::new() } else { format!("; failed steps: {}", failed.join(", ")) };
        let _ = writeln!(
            out,
            "- {} run `{}` started at {}, {finished}: {}{failed}.",
            run_title(run),
            run.run_id,
            clock_ms(&run.started_at),
            run.state
        );
    }
    if r.runs.is_empty() {
        let _ = writeln!(out, "- No run was made.");
    }

    let p = &r.provenance;
    let _ = writeln!(out, "\n## Evidence\n");
    let _ = writeln!(out, "- Run by {} on {}; approval: {}", p.user, r.host, p.approval);
    let commit = p.git_commit.as_deref().map_or_else(String::new, |c| format!(", commit {c}"));
    let _ = writeln!(out, "- drctl {}{commit}", p.drctl_version);
    let _ = writeln!(
        out,
        "- Plan {} (SHA-256 {}); drill {} (SHA-256 {})",
        p.plan_file, p.plan_sha256, p.drill_file, p.drill_sha256
    );
    let _ = writeln!(out, "- RTO: {}", r.objectives.rto.detail);
    let _ = writeln!(out, "- RPO: {}", r.objectives.rpo.detail);
    for deviation in &r.deviations {
        let _ = writeln!(out, "- Deviation: {deviation}");
    }

    let _ = writeln!(out, "\n## Action Items\n");
    for item in &r.remediation {
        let _ = writeln!(
            out,
            "- [ ] {} (owner: {}, due: {})",
            item.item.replace('\n', " ").replace('<', "\\<"),
            if item.owner.is_empty() { "____" } else { &item.owner },
            if item.due.is_empty() { "____" } else { &item.due }
        );
    }
    let _ = writeln!(out, "- [ ] Review this drill's report (report.html, report.md) with the team");

    let _ = writeln!(out, "\n## Lessons Learned\n");
    let _ = writeln!(out, "TODO (the team): what went well, what went badly, where we got lucky.");
    let _ = writeln!(out, "\n## Sign-off\n");
    for role in ["Drill lead", "Service owner", "Auditor"] {
        let _ = writeln!(out, "- {role}: ______________________  Date: __________");
    }
    out
}

/// The headline RTO (clients' outage), else from the fault to the end of the failover.
fn duration(r: &DrillReport) -> String {
    if let Some(rto) = r.objectives.rto.measured_s {
        return format!("{} (from the fault to the first acknowledged client write after the outage)", human(rto));
    }
    let failover = r.runs.iter().find(|run| run.direction == "failover");
    match failover.and_then(|run| since_fault(r, run.finished_at.as_deref())) {
        Some(end) => {
            format!("{} (from the fault to the end of the failover; the DR region never answered healthy)", human(end))
        }
        None => "unknown: the DR region never answered healthy and the failover did not finish".into(),
    }
}

/// `(when, "HH:MM:SS - event")`, in order of time (ties in the order they happened in the report).
fn timeline(r: &DrillReport) -> Vec<(SystemTime, String)> {
    let mut events: Vec<(SystemTime, String)> = Vec::new();
    let mut add = |at: Option<&str>, what: String| {
        if let (Some(when), Some(text)) = (time(at), at) {
            events.push((when, format!("{} - {what}", clock_ms(text))));
        }
    };
    add(Some(&r.fault.injected_at), format!("Fault injected: {}", r.fault.description));
    for run in &r.runs {
        let title = run_title(run);
        add(Some(&run.started_at), format!("{title} run {} started", run.run_id));
        for step in &run.steps {
            add(step.started_at.as_deref(), format!("{title} step {} ({}) started", step.id, step.name));
            let end = match (step.state, step.already_done) {
                (StepStatus::Failed, _) if step.continued => format!(
                    "failed (warning, the run went on): {}",
                    step.error.as_deref().unwrap_or("no error recorded").replace('\n', " ")
                ),
                (StepStatus::Failed, _) => {
                    format!("failed: {}", step.error.as_deref().unwrap_or("no error recorded").replace('\n', " "))
                }
                (_, true) => "found already done".into(),
                (state, false) => state.to_string(),
            };
            add(step.finished_at.as_deref(), format!("{title} step {} {end}", step.id));
        }
        if run.direction == "failover"
            && let (Some(rto), Some(fault)) = (r.objectives.rto.measured_s, time(Some(&r.fault.injected_at)))
        {
            let healthy = humantime::format_rfc3339_millis(fault + Duration::from_secs_f64(rto.max(0.0))).to_string();
            add(Some(&healthy), format!("Clients served again through the public name (RTO {} s)", secs(rto)));
        }
        add(run.finished_at.as_deref(), format!("{title} run finished: {}", run.state));
    }
    events.sort_by_key(|(when, _)| *when);
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::report::{sample, sample_failed};

    #[test]
    fn the_draft_has_the_template_sections_in_order() {
        let text = render(&sample_failed());
        let sections = [
            "# Postmortem: DR drill us-west-2-zero-rpo (plan us-west-2)\n",
            "**Date**: 2026-11-22\n",
            "**Duration**: 12.3 s (from the fault",
            "**Severity**: P3 (drill)\n",
            "**Impact**: RTO 12.3 s (objective 120 s), RPO 2.3 s (objective 0 s); 23 of 27 acknowledged client writes lost, 3 of them split brain.",
            "## Summary\n",
            "## Timeline\n",
            "## Root Cause\n",
            "## Resolution\n",
            "## Evidence\n",
            "- Run by oncall on drill-runner-1; approval: `--yes`",
            "## Action Items\n",
            "- [ ] RPO missed: 2.3 s of writes lost against an objective of 0 s (2.3 s over) (owner: ____, due: ____)",
            "## Lessons Learned\n",
            "## Sign-off\n",
            "- Auditor: ______________________  Date: __________",
        ];
        let mut from = 0;
        for section in sections {
            let at =
                text[from..].find(section).unwrap_or_else(|| panic!("{section:?} missing or out of order:\n{text}"));
            from += at + section.len();
        }
        assert!(text.contains("- [ ] RPO missed: 2.3 s of writes lost"));
        assert!(text.contains("- [ ] Review this drill's report"));
        assert!(text.contains("TODO"));
        assert!(text.contains("this was a drill"));
    }

    #[test]
    fn the_timeline_is_in_order_from_the_fault() {
        let text = render(&sample_failed());
        let lines: Vec<&str> =
            text.lines().filter(|l| l.starts_with("- ") && l.as_bytes().get(4) == Some(&b':')).collect();
        assert!(lines[0].starts_with("- 07:12:04.120 - Fault injected: the primary database"), "{lines:#?}");
        let served = "- 07:12:16.420 - Clients served again through the public name (RTO 12.3 s)";
        assert!(lines.contains(&served), "{lines:#?}");
        assert!(lines.iter().any(|l| l.starts_with("- 07:12:54.400 - Failback step notify failed: POST")));
        assert!(lines.contains(&"- 07:12:57.200 - Failback run finished: failed"));
        let clocks: Vec<&str> = lines.iter().map(|l| &l[2..14]).collect();
        assert!(clocks.windows(2).all(|w| w[0] <= w[1]), "{clocks:?}");
        assert!(render(&sample()).contains("The drill passed."));
    }
}
