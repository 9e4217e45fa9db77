//! Turning what a drill measured and what the runs' journals hold into a [`DrillReport`].

use std::time::{Duration, SystemTime};

use super::definition::DrillDefinition;
use super::measure::{Attempt, Measured};
use super::report::model::{
    ClientReport, ClientWrite, Measurement, Outcome, Provenance, RemediationItem, RunReport, RunStatus, StepReport,
    StepStatus,
};
use crate::engine::state::{RunView, StepState};
use crate::plan::StepSpec;
use crate::plan::graph::Graph;

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// One run as the report shows it: each step of `steps` (the plan's, for names, types and
/// dependencies) with its journaled state and times, and the measured critical path to recovery.
pub fn run_report(view: &RunView, steps: &[StepSpec]) -> RunReport {
    let recovery = steps.iter().find(|s| s.marks_recovery).map(|s| s.id.as_str());
    let step_reports: Vec<StepReport> = steps.iter().map(|spec| step_report(view, spec)).collect();
    let graph = Graph::of(steps);
    let critical_path = match graph.order() {
        Ok(order) => {
            let end = recovery.and_then(|id| steps.iter().position(|s| s.id == id));
            let took = |i: usize| step_reports[i].duration_s.map_or(Duration::ZERO, Duration::from_secs_f64);
            graph.critical_path(&order, end, took).0.into_iter().map(|i| steps[i].id.clone()).collect()
        }
        Err(_) => Vec::new(),
    };
    RunReport {
        direction: view.direction.to_string(),
        run_id: view.run_id.clone(),
        state: RunStatus::from(&view.state),
        started_at: rfc3339(view.started_at),
        finished_at: view.finished_at.map(rfc3339),
        rto_s: view.rto(recovery).map(seconds),
        critical_path,
        steps: step_reports,
    }
}

fn step_report(view: &RunView, spec: &StepSpec) -> StepReport {
    let step = view.step(&spec.id);
    let state = step.map_or(StepState::Pending, |s| s.state.clone());
    let (started, finished) = (step.and_then(|s| s.started_at), step.and_then(|s| s.finished_at));
    let duration = started.zip(finished).map(|(s, f)| f.duration_since(s).unwrap_or_default());
    let error = match &state {
        StepState::Failed { error, .. } => Some(error.clone()),
        StepState::Skipped { reason } => Some(reason.clone()),
        _ => None,
    };
    StepReport {
        id: spec.id.clone(),
        name: spec.title().to_string(),
        step_type: spec.step_type.clone(),
        state: StepStatus::from(&state),
        started_at: started.map(rfc3339),
        finished_at: finished.map(rfc3339),
        duration_s: duration.map(seconds),
        attempts: step.map_or(0, |s| s.attempts),
        already_done: matches!(state, StepState::Succeeded { already_done: true, .. }),
        error,
        continued: matches!(state, StepState::Failed { continued: true, .. }),
        approval: match &state {
            StepState::Succeeded { outputs, .. } => crate::steps::approval::approval_note(outputs),
            _ => None,
        },
        after: spec.after.clone(),
    }
}

/// The client's record as the report shows it: the counts, the outage, every attempt's fate.
pub fn client_report(
    m: &Measured,
    attempts: &[Attempt],
    drill: &DrillDefinition,
    dns_ttl: String,
    promoted_at: Option<SystemTime>,
    final_primary: Option<&str>,
) -> ClientReport {
    ClientReport {
        interval_ms: drill.client_interval().as_millis() as u64,
        dns_ttl,
        attempts: m.attempts,
        acknowledged: m.acknowledged,
        failed: m.failed,
        outage_started_at: m.outage_started_at.map(rfc3339),
        recovered_at: m.recovered_at.map(rfc3339),
        promoted_at: promoted_at.map(rfc3339),
        final_primary: final_primary.map(String::from),
        lost_writes: m.lost.len() as u64,
        lost_first_at: m.lost_first_at.map(rfc3339),
        lost_last_at: m.lost_last_at.map(rfc3339),
        split_brain_writes: m.split_brain.len() as u64,
        allow_split_brain: drill.allow_split_brain,
        writes: attempts
            .iter()
            .zip(&m.fates)
            .map(|(a, fate)| ClientWrite {
                seq: a.seq,
                at: rfc3339(a.sent_at),
                region: a.region.clone(),
                fate: fate.as_str().into(),
                error: a.result.as_ref().err().cloned(),
            })
            .collect(),
    }
}

/// How the run's approval was given: the approval step's journaled `method` (or `approved_by`)
/// when it records one, else `--yes`, which is how a drill runs its plans.
pub fn approval(view: &RunView, steps: &[StepSpec]) -> String {
    let recorded =
        steps.iter().filter(|s| s.step_type == "approval").find_map(|spec| match &view.step(&spec.id)?.state {
            StepState::Succeeded { outputs, .. } => {
                let method = crate::steps::approval::approval_note(outputs)?;
                let at = outputs.get("approved_at").map_or_else(String::new, |at| format!(" at {at}"));
                Some(format!("{method} (journaled by the `{}` step{at})", spec.id))
            }
            _ => None,
        });
    recorded.unwrap_or_else(|| "`--yes` on the command line: a drill runs its plan unattended".into())
}

/// What the drill did not do as a clean run would: steps retried, best-effort steps whose target
/// could not be reached (their `unreachable: true` output), steps that did not succeed.
pub fn deviations(runs: &[RunReport], unreachable: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for run in runs {
        for step in &run.steps {
            if step.attempts > 1 {
                found.push(format!("{} step `{}` took {} attempts", run.direction, step.id, step.attempts));
            }
            // A passing check is what a clean run does; anything else (failed, continued, skipped,
            // never started) is a deviation.
            // An unreachable best-effort step is listed below, with what it means.
            if !step.state.succeeded() {
                found.push(format!("{} step `{}` {}", run.direction, step.id, step.state));
            }
        }
    }
    for (direction, id) in unreachable {
        found.push(format!("{direction} step `{id}` could not reach its target and went on (required: false)"));
    }
    found
}

/// One remediation item per failure, owner and due left blank.
pub fn remediation(outcome: &Outcome) -> Vec<RemediationItem> {
    outcome
        .failures
        .iter()
        .map(|failure| RemediationItem { item: failure.clone(), owner: String::new(), due: String::new() })
        .collect()
}

/// Steps of a run whose outputs say `unreachable: true` (best-effort fences).
pub fn unreachable_steps(view: &RunView) -> Vec<(String, String)> {
    view.steps
        .iter()
        .filter(|s| matches!(&s.state, StepState::Succeeded { outputs, .. } if outputs.get("unreachable").is_some_and(|v| v == "true")))
        .map(|s| (view.direction.to_string(), s.id.clone()))
        .collect()
}

/// The provenance: who, which drctl, which files (with SHA-256), which environment inventory.
pub fn provenance(
    approval: String,
    plan: &crate::plan::Plan,
    drill_file: &std::path::Path,
    environment_file: &std::path::Path,
) -> Provenance {
    let drill_bytes = std::fs::read(drill_file).unwrap_or_default();
    let inventory = environment_file
        .parent()
        .map(|dir| dir.join("inventory.json"))
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| format!("uid {}", current_uid()));
    Provenance {
        user,
        approval,
        drctl_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: option_env!("DRCTL_GIT_COMMIT").map(String::from),
        plan_file: plan.path.display().to_string(),
        plan_sha256: plan.digest.clone(),
        drill_file: drill_file.display().to_string(),
        drill_sha256: sha256_hex(&drill_bytes),
        inventory,
    }
}

/// The user id, from `/proc/self` ownership (no unsafe call needed).
fn current_uid() -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or_else(|_| "unknown".into(), |m| m.uid().to_string())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// An objective judged: `measured` against `objective`, with how it was measured.
pub fn measurement(objective: Duration, measured: Option<Duration>, detail: String) -> Measurement {
    Measurement {
        objective_s: seconds(objective),
        measured_s: measured.map(seconds),
        met: measured.map(|m| m <= objective),
        detail,
    }
}

/// Why an objective failed the drill, if it did: "RPO missed: 2.300 s against an objective of 0 s
/// (2.300 s over)".
pub fn objective_failure(name: &str, m: &Measurement) -> Option<String> {
    match (m.measured_s, m.met) {
        (Some(measured), Some(false)) => Some(format!(
            "{name} missed: {measured:.3} s against an objective of {} s ({:.3} s over)",
            m.objective_s,
            measured - m.objective_s
        )),
        (None, _) => Some(format!("{name} not measured: {}", m.detail)),
        _ => None,
    }
}

/// The verdict from the objectives, the runs and the checks.
pub fn outcome(objectives: &[(&str, &Measurement)], runs: &[RunReport], checks: &[(String, bool, String)]) -> Outcome {
    let mut failures: Vec<String> = objectives.iter().filter_map(|(name, m)| objective_failure(name, m)).collect();
    for run in runs.iter().filter(|r| r.state != RunStatus::Succeeded) {
        let failed: Vec<String> = run
            .steps
            .iter()
            .filter(|s| s.state == StepStatus::Failed)
            .map(|s| format!("`{}`: {}", s.id, s.error.clone().unwrap_or_default()))
            .collect();
        failures.push(format!("the {} run {} {}: {}", run.direction, run.run_id, run.state, failed.join("; ")));
    }
    for (name, _, detail) in checks.iter().filter(|(_, passed, _)| !passed) {
        failures.push(format!("check `{name}` failed: {detail}"));
    }
    Outcome { passed: failures.is_empty(), failures }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_objective_says_by_how_much() {
        let m = measurement(Duration::ZERO, Some(Duration::from_millis(2300)), "heartbeats".into());
        assert_eq!(m.met, Some(false));
        assert_eq!(
            objective_failure("RPO", &m).unwrap(),
            "RPO missed: 2.300 s against an objective of 0 s (2.300 s over)"
        );
        let met = measurement(Duration::from_secs(60), Some(Duration::from_secs(12)), String::new());
        assert_eq!(objective_failure("RTO", &met), None);
        let unmeasured = measurement(Duration::from_secs(60), None, "the DR region never answered healthy".into());
        assert!(objective_failure("RTO", &unmeasured).unwrap().contains("never answered healthy"));
        let verdict =
            outcome(&[("RTO", &met), ("RPO", &m)], &[], &[("no-leftovers".into(), false, "table left".into())]);
        assert!(!verdict.passed);
        assert_eq!(verdict.failures.len(), 2, "{:?}", verdict.failures);
    }

    #[test]
    fn passing_checks_are_no_deviation_but_failures_retries_and_unreachable_targets_are() {
        let step = |id: &str, state: StepStatus, attempts: u32| StepReport {
            id: id.into(),
            name: id.into(),
            step_type: "http.check".into(),
            state,
            started_at: None,
            finished_at: None,
            duration_s: None,
            attempts,
            already_done: false,
            error: None,
            continued: false,
            approval: None,
            after: Vec::new(),
        };
        let run = RunReport {
            direction: "failover".into(),
            run_id: "r".into(),
            state: RunStatus::Succeeded,
            started_at: String::new(),
            finished_at: None,
            rto_s: None,
            critical_path: Vec::new(),
            steps: vec![
                step("probe", StepStatus::Passed, 1),
                step("change", StepStatus::Succeeded, 1),
                StepReport { already_done: true, ..step("found", StepStatus::Succeeded, 1) },
                step("flaky", StepStatus::Succeeded, 3),
                step("hook", StepStatus::Failed, 1),
                step("fence", StepStatus::Succeeded, 1),
            ],
        };
        let found = deviations(&[run], &[("failover".into(), "fence".into())]);
        assert_eq!(
            found,
            [
                "failover step `flaky` took 3 attempts",
                "failover step `hook` failed",
                "failover step `fence` could not reach its target and went on (required: false)",
            ]
        );
    }
}
