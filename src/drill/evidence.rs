//! Turning what a drill measured and what the runs' journals hold into a [`DrillReport`].

use std::time::{Duration, SystemTime};

use super::definition::DrillDefinition;
use super::measure::{Attempt, Measured};
use super::report::model::{ClientReport, ClientWrite, Measurement, Outcome, RunReport, StepReport};
use crate::engine::state::{RunState, RunView, StepState};
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
        state: view.state.label().to_string(),
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
        StepState::Failed { error } => Some(error.clone()),
        StepState::Skipped { reason } => Some(reason.clone()),
        _ => None,
    };
    StepReport {
        id: spec.id.clone(),
        name: spec.title().to_string(),
        step_type: spec.step_type.clone(),
        state: match state {
            StepState::Succeeded { .. } => "succeeded".into(),
            ref other => other.label().to_string(),
        },
        started_at: started.map(rfc3339),
        finished_at: finished.map(rfc3339),
        duration_s: duration.map(seconds),
        attempts: step.map_or(0, |s| s.attempts),
        already_done: matches!(state, StepState::Succeeded { already_done: true, .. }),
        error,
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
    for run in runs.iter().filter(|r| r.state != RunState::Succeeded.label()) {
        let failed: Vec<String> = run
            .steps
            .iter()
            .filter(|s| s.state == "failed")
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
}
