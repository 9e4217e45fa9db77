//! Run and step states, and the one pure function that moves them: [`transition`]. A run's state
//! is the fold of its journal through it, which is how a crashed run is rebuilt for resuming.

use std::time::{Duration, SystemTime};

use crate::journal::{Entry, Record};
use crate::plan::Direction;
use crate::step::{Outputs, Receipt};

/// Where a step is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    /// Not started in this attempt of the run.
    Pending,
    /// An attempt is under way; `acting` once observation found the effect absent.
    Running {
        attempt: u32,
        acting: bool,
    },
    /// Waiting to retry after a retryable failure.
    Backoff {
        attempt: u32,
        error: String,
    },
    Succeeded {
        outputs: Outputs,
        /// Observation found the effect in place: the step would have changed something and found
        /// nothing to change.
        already_done: bool,
        /// A pure check passed.
        passed: bool,
    },
    Failed {
        error: String,
        /// The step's `on_failure` is `continue`: the run went on without it.
        continued: bool,
    },
    Skipped {
        reason: String,
    },
}

/// The label of a best-effort step (`required: false`) that could not reach its target and let the
/// run go on: neither "already done" nor "succeeded", since it changed nothing and found nothing.
pub const WENT_ON_UNREACHABLE: &str = "went on (unreachable)";

/// Whether a step's outputs say it could not reach its target and went on (`unreachable: true`,
/// the output of the best-effort fence step types).
pub fn went_on_unreachable(outputs: &Outputs) -> bool {
    outputs.get("unreachable").is_some_and(|v| v == "true")
}

impl StepState {
    /// A short name for displays and JSON: `pending`, `running`, `succeeded`...
    pub fn label(&self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running { acting: false, .. } => "observing",
            StepState::Running { acting: true, .. } => "acting",
            StepState::Backoff { .. } => "retrying",
            StepState::Succeeded { passed: true, .. } => "passed",
            StepState::Succeeded { outputs, .. } if went_on_unreachable(outputs) => WENT_ON_UNREACHABLE,
            StepState::Succeeded { already_done: true, .. } => "already done",
            StepState::Succeeded { .. } => "succeeded",
            StepState::Failed { .. } => "failed",
            StepState::Skipped { .. } => "skipped",
        }
    }

    /// The state in a sentence about the step: "step `a` has succeeded".
    pub fn phrase(&self) -> &'static str {
        match self {
            StepState::Succeeded { passed: true, .. } => "has passed",
            StepState::Succeeded { already_done: true, .. } => "was already done",
            StepState::Succeeded { .. } => "has succeeded",
            StepState::Failed { .. } => "has failed",
            StepState::Skipped { .. } => "was skipped",
            StepState::Pending => "has not started",
            StepState::Running { acting: false, .. } => "is observing",
            StepState::Running { acting: true, .. } => "is acting",
            StepState::Backoff { .. } => "is waiting to retry",
        }
    }

    /// Whether the steps after this one may run: it succeeded, or it failed with `on_failure: continue`.
    pub fn lets_dependants_run(&self) -> bool {
        matches!(self, StepState::Succeeded { .. } | StepState::Failed { continued: true, .. })
    }

    /// Whether the step has finished (for this attempt of the run).
    pub fn is_finished(&self) -> bool {
        matches!(self, StepState::Succeeded { .. } | StepState::Failed { .. } | StepState::Skipped { .. })
    }
}

/// Where a run is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Started and not finished: under way, or its process died (a crash looks like this).
    Running,
    Succeeded,
    Failed {
        message: String,
    },
    Interrupted {
        reason: String,
    },
    Abandoned,
}

impl RunState {
    /// Whether `drctl resume` can continue it.
    pub fn is_resumable(&self) -> bool {
        matches!(self, RunState::Running | RunState::Failed { .. } | RunState::Interrupted { .. })
    }

    /// The state in a sentence about the run: "run X has succeeded".
    pub fn phrase(&self) -> &'static str {
        match self {
            RunState::Running => "is running (or its process died)",
            RunState::Succeeded => "has succeeded",
            RunState::Failed { .. } => "has failed",
            RunState::Interrupted { .. } => "was interrupted",
            RunState::Abandoned => "was abandoned",
        }
    }

    /// A short name for displays and JSON.
    pub fn label(&self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed { .. } => "failed",
            RunState::Interrupted { .. } => "interrupted",
            RunState::Abandoned => "abandoned",
        }
    }
}

/// A record that does not fit the state it meets: a bug, or a journal edited by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal entry {seq}: {message}")]
pub struct InvalidTransition {
    pub seq: u64,
    pub message: String,
}

/// The next state of a step when `record` (about this step) happens, or `None` if it cannot.
pub fn transition(state: &StepState, record: &Record) -> Option<StepState> {
    use StepState as S;
    match (state, record) {
        (S::Pending | S::Backoff { .. }, Record::StepStarted { attempt, .. }) => {
            Some(S::Running { attempt: *attempt, acting: false })
        }
        (S::Running { attempt, acting: false }, Record::StepActing { attempt: a, .. }) if a == attempt => {
            Some(S::Running { attempt: *attempt, acting: true })
        }
        (
            S::Running { attempt, acting: true },
            Record::StepActed { attempt: a, .. } | Record::StepWaitError { attempt: a, .. },
        ) if a == attempt => Some(state.clone()),
        (S::Running { attempt, .. }, Record::StepRetrying { attempt: a, error, .. }) if a == attempt => {
            Some(S::Backoff { attempt: *attempt, error: error.clone() })
        }
        (S::Running { .. }, Record::StepSucceeded { outputs, already_done, passed, .. }) => {
            Some(S::Succeeded { outputs: outputs.clone(), already_done: *already_done, passed: *passed })
        }
        (S::Running { .. } | S::Backoff { .. }, Record::StepFailed { error, continued, .. }) => {
            Some(S::Failed { error: error.clone(), continued: *continued })
        }
        (S::Pending, Record::StepSkipped { reason, .. }) => Some(S::Skipped { reason: reason.clone() }),
        // Resuming retries everything that has not succeeded; a step cut off mid-attempt observes first.
        (S::Succeeded { .. }, Record::RunResumed { .. }) => Some(state.clone()),
        (_, Record::RunResumed { .. }) => Some(S::Pending),
        _ => None,
    }
}

/// The next state of a run when `record` happens, or `None` if it cannot.
pub fn run_transition(state: &RunState, record: &Record) -> Option<RunState> {
    use RunState as R;
    match (state, record) {
        (R::Running, Record::StepStarted { .. })
        | (R::Running, Record::StepActing { .. })
        | (R::Running, Record::StepActed { .. })
        | (R::Running, Record::StepWaitError { .. })
        | (R::Running, Record::StepRetrying { .. })
        | (R::Running, Record::StepSucceeded { .. })
        | (R::Running, Record::StepFailed { .. })
        | (R::Running, Record::StepSkipped { .. }) => Some(R::Running),
        (R::Running, Record::RunInterrupted { reason }) => Some(R::Interrupted { reason: reason.clone() }),
        (R::Running, Record::RunFinished { succeeded: true, .. }) => Some(R::Succeeded),
        (R::Running, Record::RunFinished { succeeded: false, message }) => Some(R::Failed { message: message.clone() }),
        (s, Record::RunResumed { .. }) if s.is_resumable() => Some(R::Running),
        (s, Record::RunAbandoned { .. }) if s.is_resumable() => Some(R::Abandoned),
        // A note about who holds the plan's lock: the run's state does not change.
        (s, Record::LockTakenOver { .. }) => Some(s.clone()),
        _ => None,
    }
}

/// One step as the journal tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepView {
    pub id: String,
    pub state: StepState,
    /// First start, across resumes.
    pub started_at: Option<SystemTime>,
    /// When it last succeeded or failed.
    pub finished_at: Option<SystemTime>,
    /// Attempts over the whole run.
    pub attempts: u32,
    /// What the step's `act` learned, once it acted (across attempts and resumes): its later
    /// phases get it back instead of acting again.
    pub receipt: Option<Receipt>,
}

/// A run as the journal tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunView {
    pub run_id: String,
    pub plan: String,
    pub plan_path: String,
    pub plan_digest: String,
    /// The plan's variables as the run started with them.
    pub vars: Vec<crate::plan::vars::ResolvedVar>,
    pub direction: Direction,
    pub state: RunState,
    pub started_at: SystemTime,
    pub incident_start: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub resumes: u32,
    /// In plan order.
    pub steps: Vec<StepView>,
}

impl RunView {
    /// Rebuilds a run from its journal.
    pub fn replay(entries: &[Entry]) -> Result<RunView, InvalidTransition> {
        let first = entries.first().ok_or_else(|| InvalidTransition {
            seq: 0,
            message: "the journal is empty: the run never started (no step can have acted)".into(),
        })?;
        let Record::RunStarted { run_id, plan, plan_path, plan_digest, direction, incident_start, steps, vars, .. } =
            &first.record
        else {
            return Err(invalid(first.seq, &first.record, "a journal must begin with run_started".into()));
        };
        let mut view = RunView {
            run_id: run_id.clone(),
            plan: plan.clone(),
            plan_path: plan_path.clone(),
            plan_digest: plan_digest.clone(),
            vars: vars.clone(),
            direction: *direction,
            state: RunState::Running,
            started_at: first.at,
            incident_start: *incident_start,
            finished_at: None,
            resumes: 0,
            steps: steps
                .iter()
                .map(|id| StepView {
                    id: id.clone(),
                    state: StepState::Pending,
                    started_at: None,
                    finished_at: None,
                    attempts: 0,
                    receipt: None,
                })
                .collect(),
        };
        for entry in &entries[1..] {
            view.apply(entry)?;
        }
        Ok(view)
    }

    /// Applies one journal entry.
    pub fn apply(&mut self, entry: &Entry) -> Result<(), InvalidTransition> {
        let record = &entry.record;
        self.state = run_transition(&self.state, record)
            .ok_or_else(|| invalid(entry.seq, record, format!("the run {}", self.state.phrase())))?;
        match record {
            Record::RunResumed { plan_digest, steps, .. } => {
                self.resumes += 1;
                self.plan_digest = plan_digest.clone();
                self.finished_at = None;
                if !steps.is_empty() {
                    self.adopt_steps(steps);
                }
                for step in &mut self.steps {
                    step.state = transition(&step.state, record).expect("every step state takes a resume");
                }
            }
            Record::RunFinished { .. } | Record::RunInterrupted { .. } | Record::RunAbandoned { .. } => {
                self.finished_at = Some(entry.at);
            }
            _ => {}
        }
        if let Some(id) = step_of(record) {
            let step = self
                .steps
                .iter_mut()
                .find(|s| s.id == id)
                .ok_or_else(|| invalid(entry.seq, record, format!("the run has no step `{id}`")))?;
            step.state = transition(&step.state, record)
                .ok_or_else(|| invalid(entry.seq, record, format!("step `{id}` {}", step.state.phrase())))?;
            match record {
                Record::StepStarted { .. } => {
                    step.started_at.get_or_insert(entry.at);
                    step.attempts += 1;
                }
                Record::StepActed { receipt, .. } => step.receipt = Some(receipt.clone()),
                Record::StepSucceeded { .. } | Record::StepFailed { .. } => step.finished_at = Some(entry.at),
                _ => {}
            }
        }
        Ok(())
    }

    /// Continues with a changed plan's steps, in its order: known steps keep their history, new
    /// ones start pending, removed ones are dropped.
    fn adopt_steps(&mut self, ids: &[String]) {
        let mut old: Vec<StepView> = std::mem::take(&mut self.steps);
        self.steps = ids
            .iter()
            .map(|id| match old.iter().position(|s| s.id == *id) {
                Some(i) => old.swap_remove(i),
                None => StepView {
                    id: id.clone(),
                    state: StepState::Pending,
                    started_at: None,
                    finished_at: None,
                    attempts: 0,
                    receipt: None,
                },
            })
            .collect();
    }

    /// The step called `id`.
    pub fn step(&self, id: &str) -> Option<&StepView> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// When the outage is counted from: the incident start if given, else the run's start.
    pub fn outage_start(&self) -> SystemTime {
        self.incident_start.unwrap_or(self.started_at)
    }

    /// The recovery time: from the outage start to the success of `recovery_step` (or, without one,
    /// of the whole run). `None` until recovery happened.
    pub fn rto(&self, recovery_step: Option<&str>) -> Option<Duration> {
        let recovered_at = match recovery_step {
            Some(id) => {
                let step = self.step(id)?;
                matches!(step.state, StepState::Succeeded { .. }).then_some(step.finished_at?)?
            }
            None => (self.state == RunState::Succeeded).then_some(self.finished_at?)?,
        };
        recovered_at.duration_since(self.outage_start()).ok()
    }
}

/// The step a record is about, if any.
pub fn step_of(record: &Record) -> Option<&str> {
    match record {
        Record::StepStarted { step, .. }
        | Record::StepActing { step, .. }
        | Record::StepActed { step, .. }
        | Record::StepWaitError { step, .. }
        | Record::StepRetrying { step, .. }
        | Record::StepSucceeded { step, .. }
        | Record::StepFailed { step, .. }
        | Record::StepSkipped { step, .. } => Some(step),
        _ => None,
    }
}

/// "journal entry 7: step_succeeded (step `a`) cannot happen here: the run has succeeded".
fn invalid(seq: u64, record: &Record, why: String) -> InvalidTransition {
    let about = step_of(record).map(|id| format!(" (step `{id}`)")).unwrap_or_default();
    InvalidTransition { seq, message: format!("{}{about} cannot happen here: {why}", record.event()) }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
