//! A run's summary: every step with its times, and the RTO against the objective. Built from the
//! journal alone, so it is the same after a crash, on another machine, or in `drctl status`.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::clock::{human_duration, rfc3339};
use crate::engine::state::{RunState, RunView, StepState};
use crate::plan::Plan;

/// The summary of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub plan: String,
    pub direction: String,
    pub state: &'static str,
    pub message: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Incident start if given, else the run's start.
    pub outage_start: String,
    pub resumes: u32,
    pub rto: Option<Objective>,
    pub steps: Vec<StepSummary>,
    /// Steps that failed with `on_failure: continue`: the run went on without them.
    pub warnings: Vec<String>,
}

/// A measured time against its objective.
#[derive(Debug, Clone, Serialize)]
pub struct Objective {
    pub measured_ms: Option<u64>,
    pub objective_ms: u64,
    /// `None` until measured.
    pub met: Option<bool>,
    /// What the measurement runs to.
    pub until: String,
}

/// One step in a summary.
#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    pub id: String,
    pub state: &'static str,
    pub attempts: u32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    /// The step failed with `on_failure: continue`: a warning, not the run's failure.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub continued: bool,
    /// How an approval step was given ("typed by alice on /dev/pts/3", "--yes").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

impl RunSummary {
    /// Summarizes `view`; with the run's `plan`, also the RTO against its objective.
    pub fn new(view: &RunView, plan: Option<&Plan>) -> Self {
        let steps = view
            .steps
            .iter()
            .map(|s| StepSummary {
                id: s.id.clone(),
                state: s.state.label(),
                attempts: s.attempts,
                started_at: s.started_at.map(rfc3339),
                finished_at: s.finished_at.map(rfc3339),
                duration_ms: s.started_at.zip(s.finished_at).and_then(|(a, b)| ms(a, b)),
                error: match &s.state {
                    StepState::Failed { error, .. } => Some(error.clone()),
                    StepState::Skipped { reason } => Some(reason.clone()),
                    _ => None,
                },
                continued: matches!(s.state, StepState::Failed { continued: true, .. }),
                approval: match &s.state {
                    StepState::Succeeded { outputs, .. } => crate::steps::approval::approval_note(outputs),
                    _ => None,
                },
            })
            .collect::<Vec<StepSummary>>();
        let warnings = steps
            .iter()
            .filter(|s| s.continued)
            .map(|s| {
                let error = s.error.as_deref().unwrap_or("no error recorded");
                format!("step `{}` failed and the run went on (on_failure: continue): {error}", s.id)
            })
            .collect();
        let rto = plan.map(|plan| {
            let recovery = plan.steps(view.direction).iter().rev().find(|s| s.marks_recovery).map(|s| s.id.as_str());
            let measured = view.rto(recovery);
            Objective {
                measured_ms: measured.map(|d| d.as_millis() as u64),
                objective_ms: plan.objectives.rto.as_millis() as u64,
                met: measured.map(|d| d <= plan.objectives.rto),
                until: match recovery {
                    Some(id) => format!("success of step `{id}`"),
                    None => "the end of the run".to_string(),
                },
            }
        });
        let message = match &view.state {
            RunState::Failed { message } => Some(message.clone()),
            RunState::Interrupted { reason } => Some(format!("interrupted: {reason}")),
            _ => None,
        };
        RunSummary {
            run_id: view.run_id.clone(),
            plan: view.plan.clone(),
            direction: view.direction.to_string(),
            state: view.state.label(),
            message,
            started_at: rfc3339(view.started_at),
            finished_at: view.finished_at.map(rfc3339),
            outage_start: rfc3339(view.outage_start()),
            resumes: view.resumes,
            rto,
            steps,
            warnings,
        }
    }

    /// The summary as a table for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "run {} ({} of plan {}): {}", self.run_id, self.direction, self.plan, self.state);
        if let Some(message) = &self.message {
            let _ = writeln!(out, "  {message}");
        }
        let width = self.steps.iter().map(|s| s.id.len()).max().unwrap_or(4).max(4);
        let _ = writeln!(out, "  {:width$}  {:14}  {:>9}  {:>8}  started", "step", "state", "took", "attempts");
        for s in &self.steps {
            let took = s.duration_ms.map(|d| human_duration(Duration::from_millis(d))).unwrap_or_default();
            let started = s.started_at.as_deref().unwrap_or("");
            let _ = writeln!(out, "  {:width$}  {:14}  {:>9}  {:>8}  {started}", s.id, s.state, took, s.attempts);
            if let Some(error) = &s.error {
                let mark = if s.continued { "⚠ " } else { "" };
                let _ = writeln!(out, "  {:width$}  └ {mark}{error}", "");
            }
            if let Some(approval) = &s.approval {
                let _ = writeln!(out, "  {:width$}  └ approved: {approval}", "");
            }
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "⚠ warning: {warning}");
        }
        if self.resumes > 0 {
            let _ = writeln!(out, "  resumed {} time(s); times count the whole incident", self.resumes);
        }
        if let Some(rto) = &self.rto {
            let objective = human_duration(Duration::from_millis(rto.objective_ms));
            let line = match (rto.measured_ms, rto.met) {
                (Some(m), Some(met)) => {
                    let verdict = if met { "met" } else { "MISSED" };
                    format!(
                        "RTO {} (objective {objective}: {verdict}), from {} to {}",
                        human_duration(Duration::from_millis(m)),
                        self.outage_start,
                        rto.until
                    )
                }
                _ => format!("RTO not reached yet (objective {objective}); measured to {}", rto.until),
            };
            let _ = writeln!(out, "{line}");
        }
        out
    }
}

fn ms(from: SystemTime, to: SystemTime) -> Option<u64> {
    to.duration_since(from).ok().map(|d| d.as_millis() as u64)
}
