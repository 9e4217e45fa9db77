//! `report.md`: the drill for people and auditors, in plain Markdown: verdict, objectives with by
//! how much they were met or missed, the fault, the client's writes, each run's steps, checks, failures.

use std::fmt::Write;

use super::model::{ClientReport, DrillReport, Measurement, RunReport, StepStatus};
use super::text::{clock, clock_ms, column, date, judged, run_title, secs, since_fault, step_state, verdict};

/// The Markdown report. Deterministic: the same report gives the same text.
pub fn render(report: &DrillReport) -> String {
    let mut out = String::new();
    let r = report;
    let _ = writeln!(out, "# DR drill {}: {}\n", cell(&r.drill), verdict(r));
    let _ = writeln!(out, "| | |\n| --- | --- |");
    let _ = writeln!(out, "| Drill | {} |", cell(&r.drill));
    let _ = writeln!(out, "| Plan | {} |", cell(&r.plan));
    let _ = writeln!(out, "| Environment | {} |", cell(&r.environment));
    let _ = writeln!(out, "| Host | {} |", cell(&r.host));
    let _ =
        writeln!(out, "| Date | {} ({} to {} UTC) |", date(&r.started_at), clock(&r.started_at), clock(&r.finished_at));
    let p = &r.provenance;
    let _ = writeln!(out, "| Run by | {} on {} |", cell(&p.user), cell(&r.host));
    let _ = writeln!(out, "| Approval | {} |", cell(&p.approval));
    let commit = p.git_commit.as_deref().map_or_else(String::new, |c| format!(", commit {c}"));
    let _ = writeln!(out, "| drctl | {}{commit} |", cell(&p.drctl_version));
    let _ = writeln!(out, "| Plan file | {} (SHA-256 {}) |", cell(&p.plan_file), p.plan_sha256);
    let _ = writeln!(out, "| Drill definition | {} (SHA-256 {}) |", cell(&p.drill_file), p.drill_sha256);
    let _ = writeln!(out, "| Scenario | `{}`: {} |", r.fault.kind, cell(&r.fault.description));
    let _ = writeln!(out, "| Verdict | **{}** |\n", verdict(r));

    let _ = writeln!(out, "## Objectives\n");
    let _ = writeln!(out, "| Objective | Target | Measured | Met | By how much |\n| --- | --- | --- | --- | --- |");
    for (name, m) in [("RTO", &r.objectives.rto), ("RPO", &r.objectives.rpo)] {
        let measured = m.measured_s.map_or_else(|| "not measured".into(), |v| format!("{} s", secs(v)));
        let _ = writeln!(out, "| {name} | {} s | {measured} | {} | {} |", secs(m.objective_s), met(m), judged(name, m));
    }
    let _ = writeln!(out, "\n- RTO: {}\n- RPO: {}", line(&r.objectives.rto.detail), line(&r.objectives.rpo.detail));
    let _ = writeln!(out, "- {}\n", dr_ready(r));
    if let Some(t) = &r.timing {
        out.push_str(&super::timing::markdown(t));
        out.push('\n');
    }

    let _ = writeln!(out, "## Fault\n");
    let _ = writeln!(
        out,
        "`{}` injected at {} UTC: {}.\n",
        r.fault.kind,
        clock(&r.fault.injected_at),
        line(&r.fault.description)
    );

    client(&mut out, &r.client);
    for run in &r.runs {
        run_section(&mut out, r, run);
    }

    let _ = writeln!(out, "## Checks\n");
    if r.checks.is_empty() {
        let _ = writeln!(out, "No checks were made.\n");
    } else {
        let _ = writeln!(out, "| Check | Result | Detail |\n| --- | --- | --- |");
        for check in &r.checks {
            let result = if check.passed { "✅ passed" } else { "❌ failed" };
            let _ = writeln!(out, "| {} | {result} | {} |", cell(&check.name), cell(&check.detail));
        }
        out.push('\n');
    }

    evidence(&mut out, r);

    let _ = writeln!(out, "## Failures\n");
    if r.outcome.failures.is_empty() {
        let _ = writeln!(out, "None: every objective was met, both runs succeeded and every check passed.");
    }
    for failure in &r.outcome.failures {
        let _ = writeln!(out, "- {}", line(failure));
    }
    out
}

/// The inventory, deviations, remediation list and sign-off lines.
fn evidence(out: &mut String, r: &DrillReport) {
    let _ = writeln!(out, "## Environment inventory\n");
    if r.provenance.inventory.is_empty() {
        let _ = writeln!(out, "No inventory was recorded.\n");
    }
    for (kind, objects) in &r.provenance.inventory {
        let _ = writeln!(out, "- {}: {}", line(kind), line(&objects.join(", ")));
    }
    let _ = writeln!(out, "\n## Deviations\n");
    if r.deviations.is_empty() {
        let _ = writeln!(out, "None: every step succeeded at its first attempt.");
    }
    for deviation in &r.deviations {
        let _ = writeln!(out, "- {}", line(deviation));
    }
    let _ = writeln!(out, "\n## Remediation\n");
    if r.remediation.is_empty() {
        let _ = writeln!(out, "Nothing to remediate.\n");
    } else {
        let _ = writeln!(out, "| Item | Owner | Due |\n| --- | --- | --- |");
        for item in &r.remediation {
            let _ = writeln!(out, "| {} | {} | {} |", cell(&item.item), cell(&item.owner), cell(&item.due));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Sign-off\n");
    for role in ["Drill lead", "Service owner", "Auditor"] {
        let _ = writeln!(out, "- {role}: ______________________  Date: __________");
    }
    out.push('\n');
}

fn met(m: &Measurement) -> &'static str {
    match m.met {
        Some(true) => "✅",
        Some(false) => "❌",
        None => "—",
    }
}

fn client(out: &mut String, c: &ClientReport) {
    let when = |at: &Option<String>| at.as_deref().map_or_else(|| "—".into(), |at| format!("{} UTC", clock_ms(at)));
    let _ = writeln!(
        out,
        "## Client writes through the public name
"
    );
    let _ = writeln!(
        out,
        "- One write every {} ms, DNS cached for {}: {} attempts, {} acknowledged, {} failed",
        c.interval_ms, c.dns_ttl, c.attempts, c.acknowledged, c.failed
    );
    let _ = writeln!(out, "- Outage: from {} to {}", when(&c.outage_started_at), when(&c.recovered_at));
    let _ = writeln!(out, "- DR database promoted at {}", when(&c.promoted_at));
    let _ = writeln!(
        out,
        "- Lost (acknowledged, missing from the final primary {}): {}, committed from {} to {}",
        c.final_primary.as_deref().unwrap_or("—"),
        c.lost_writes,
        when(&c.lost_first_at),
        when(&c.lost_last_at)
    );
    let allowed = if c.allow_split_brain { " (allowed by the drill)" } else { "" };
    let _ = writeln!(
        out,
        "- Split brain (acknowledged by the old primary after the promotion): {}{allowed}\n",
        c.split_brain_writes
    );
}

/// "DR ready after X s", the secondary figure.
pub(crate) fn dr_ready(r: &DrillReport) -> String {
    match r.objectives.dr_ready_s {
        Some(s) => format!(
            "DR ready after {} s (secondary: the DR region's own health endpoint, which clients do not reach before DNS \
             points there)",
            secs(s)
        ),
        None => "DR ready: the DR region's health endpoint never answered healthy during the failover".into(),
    }
}

fn run_section(out: &mut String, r: &DrillReport, run: &RunReport) {
    let _ = writeln!(out, "## {} run `{}`: {}\n", run_title(run), run.run_id, run.state);
    let finished =
        run.finished_at.as_deref().map_or_else(|| "not finished".into(), |f| format!("finished {} UTC", clock(f)));
    let rto = run.rto_s.map_or_else(String::new, |v| format!("; drctl run time to recovery step: {} s", secs(v)));
    let _ = writeln!(out, "Started {} UTC, {finished}{rto}.\n", clock(&run.started_at));
    let _ = writeln!(
        out,
        "| Step | Type | State | Start (s after fault) | Duration (s) | Attempts | Note |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for step in &run.steps {
        let critical = if run.critical_path.contains(&step.id) { " ◆" } else { "" };
        let start = since_fault(r, step.started_at.as_deref()).map_or_else(|| "—".into(), column);
        let duration = step.duration_s.map_or_else(|| "—".into(), column);
        let mut notes = Vec::new();
        if step.already_done {
            notes.push("already done: nothing changed".to_string());
        }
        if let Some(error) = &step.error {
            let label = match step.state {
                StepStatus::Failed if step.continued => "warning (the run went on)",
                StepStatus::Failed => "error",
                _ => "reason",
            };
            notes.push(format!("{label}: {error}"));
        }
        if let Some(approval) = &step.approval {
            notes.push(format!("approved: {approval}"));
        }
        let _ = writeln!(
            out,
            "| {}{critical} | `{}` | {} | {start} | {duration} | {} | {} |",
            cell(&step.name),
            step.step_type,
            step_state(step),
            step.attempts,
            cell(&notes.join("; "))
        );
    }
    if !run.critical_path.is_empty() {
        let _ = writeln!(out, "\n◆ critical path: {}", cell(&run.critical_path.join(" → ")));
    }
    out.push('\n');
}

/// Text inside a table cell: one line, no column breaks, no HTML.
fn cell(text: &str) -> String {
    line(text).replace('|', "\\|")
}

/// Text on one line, with `<` escaped so Markdown renderers do not take it for HTML.
fn line(text: &str) -> String {
    text.split(['\n', '\r']).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ").replace('<', "\\<")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::report::{sample, sample_failed};

    #[test]
    fn a_passed_drill_reads_passed_with_its_objectives() {
        let text = render(&sample());
        assert!(text.starts_with("# DR drill us-west-2-monthly: PASSED\n"), "{text}");
        assert!(
            text.contains("| RTO | 120 s | 12.3 s | ✅ | RTO 12.3 s against 120 s: met with 107.7 s to spare |"),
            "{text}"
        );
        assert!(text.contains("| Date | 2026-11-22 (07:12:00 to 07:13:00 UTC) |"));
        assert!(text.contains("None: every objective was met"));
        assert_eq!(text, render(&sample()), "deterministic");
    }

    #[test]
    fn a_failed_drill_says_what_and_by_how_much() {
        let text = render(&sample_failed());
        assert!(text.starts_with("# DR drill us-west-2-zero-rpo: FAILED\n"));
        assert!(text.contains("| RPO | 0 s | 2.3 s | ❌ | RPO 2.3 s against 0 s: missed by 2.3 s |"), "{text}");
        assert!(
            text.contains("- Lost (acknowledged, missing from the final primary us-west-2): 23, committed from 07:12:03.300 UTC to 07:12:04.100 UTC"),
            "{text}"
        );
        assert!(text.contains("- Split brain (acknowledged by the old primary after the promotion): 3\n"));
        assert!(text.contains("- DR ready after 6.8 s (secondary"));
        assert!(text.contains("; drctl run time to recovery step: 11.4 s."), "{text}");
        assert!(text.contains("## Failback run `us-west-2-failback-20261122T071240Z-9c2e`: failed"));
        // Offsets from the fault at 07:12:04.120; the failed step's error, escaped for a table.
        assert!(text.contains("| Promote the DR database ◆ | `pg.promote` | succeeded | 2.28 | 4.50 | 2 |"), "{text}");
        assert!(
            text.contains("error: POST https://hooks.example/x?a=1&b=2 answered 500: \\<error code=\"E1\"> & 'retry'")
        );
        assert!(text.contains(
            "| Primary region healthy ◆ | `http.check` | skipped | — | — | 0 | reason: a step it depends on failed |"
        ));
        assert!(
            text.contains("| Check replica lag | `pg.check` | passed |"),
            "a passing check is passed, not already done"
        );
        assert!(text.contains("| nothing left behind | ❌ failed |"));
        assert!(text.contains("- RPO missed: 2.3 s of writes lost"));
    }
}
