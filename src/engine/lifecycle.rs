//! Beginning, resuming and abandoning runs: the plan lock, the journal's first records, and the
//! checks that keep a resumed run honest (same plan, resumable state).

use std::time::SystemTime;

use super::state::{InvalidTransition, RunView};
use crate::clock::Clock;
use crate::journal::{self, Journal, JournalError, LockError, LockHolder, PlanLock, Record, StateDir};
use crate::plan::{Direction, Plan};

/// How to begin or resume.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// When the outage began; RTO is measured from it instead of the run's start.
    pub incident_start: Option<SystemTime>,
    /// Take the plan lock even though another process holds it.
    pub break_lock: bool,
    /// Resume even though the plan file changed since the run started.
    pub allow_plan_change: bool,
}

/// A run ready for the engine: its journal open for appending, its state, and the plan lock.
pub struct ActiveRun {
    pub journal: Journal,
    pub view: RunView,
    pub lock: PlanLock,
}

/// Why a run cannot begin or resume.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Invalid(#[from] InvalidTransition),
    #[error("no run `{0}` in the state directory; `drctl status` lists the runs")]
    UnknownRun(String),
    #[error("run {run_id} is {state}; only a running, interrupted or failed run can be resumed")]
    NotResumable { run_id: String, state: &'static str },
    #[error(
        "the plan {path} changed since run {run_id} started (digest {was} → {now}); resuming could mix two plans. \
         Restore the plan, or pass --allow-plan-change if the change is intended"
    )]
    PlanChanged { run_id: String, path: String, was: String, now: String },
    #[error(
        "run {run_id} ({direction}) of plan `{plan}` is unfinished; resume it with `drctl resume {run_id}` or give it up with `drctl abandon {run_id}`"
    )]
    OtherRunUnfinished { run_id: String, plan: String, direction: Direction },
    #[error("run {run_id} is for plan `{run_plan}`, not `{plan}`")]
    WrongPlan { run_id: String, run_plan: String, plan: String },
}

/// The newest unfinished run of `plan`, if any. A journal that cannot be read stops the search
/// only when it belongs to `plan` (by its run id): another plan's damage must not block this one.
pub fn unfinished_run(state: &StateDir, plan: &str) -> Result<Option<RunView>, RunError> {
    let ours = |run_id: &str| {
        [Direction::Failover, Direction::Failback].iter().any(|d| run_id.starts_with(&format!("{plan}-{d}-")))
    };
    for summary in state.runs().into_iter().rev() {
        let replayed =
            journal::read(&summary.journal).map_err(RunError::from).and_then(|entries| Ok(RunView::replay(&entries)?));
        match replayed {
            Ok(view) if view.plan == plan && view.state.is_resumable() => return Ok(Some(view)),
            Ok(_) => {}
            Err(e) if ours(&summary.run_id) => return Err(e),
            Err(e) => tracing::warn!(run = %summary.run_id, "skipping a run whose journal cannot be read: {e}"),
        }
    }
    Ok(None)
}

/// Begins a run of `plan` in `direction`, or continues the unfinished one of that direction.
pub fn begin(
    state: &StateDir,
    plan: &Plan,
    direction: Direction,
    clock: &dyn Clock,
    options: &RunOptions,
) -> Result<ActiveRun, RunError> {
    if let Some(unfinished) = unfinished_run(state, &plan.name)? {
        if unfinished.direction != direction {
            return Err(RunError::OtherRunUnfinished {
                run_id: unfinished.run_id,
                plan: plan.name.clone(),
                direction: unfinished.direction,
            });
        }
        return resume(state, &unfinished.run_id, plan, clock, options);
    }
    let now = clock.now();
    let run_id = StateDir::new_run_id(&plan.name, direction, now);
    let lock = PlanLock::acquire(
        &state.lock_path(&plan.name),
        &plan.name,
        LockHolder::this_process(&run_id, now),
        options.break_lock,
    )?;
    let holder = LockHolder::this_process(&run_id, now);
    let record = Record::RunStarted {
        run_id: run_id.clone(),
        plan: plan.name.clone(),
        plan_path: plan.path.display().to_string(),
        plan_digest: plan.digest.clone(),
        direction,
        incident_start: options.incident_start,
        host: holder.host,
        pid: holder.pid,
        drctl_version: env!("CARGO_PKG_VERSION").to_string(),
        steps: plan.steps(direction).iter().map(|s| s.id.clone()).collect(),
    };
    let (journal, entries) = Journal::create(&state.journal_path(&run_id), now, record)?;
    let view = RunView::replay(&entries)?;
    Ok(ActiveRun { journal, view, lock })
}

/// Continues run `run_id` with `plan` after checking that the plan is the one it started with.
pub fn resume(
    state: &StateDir,
    run_id: &str,
    plan: &Plan,
    clock: &dyn Clock,
    options: &RunOptions,
) -> Result<ActiveRun, RunError> {
    let path = state.journal_path(run_id);
    if !path.exists() {
        return Err(RunError::UnknownRun(run_id.to_string()));
    }
    let now = clock.now();
    let lock = PlanLock::acquire(
        &state.lock_path(&plan.name),
        &plan.name,
        LockHolder::this_process(run_id, now),
        options.break_lock,
    )?;
    let (mut journal, entries) = Journal::open(&path)?;
    let mut view = RunView::replay(&entries)?;
    if view.plan != plan.name {
        return Err(RunError::WrongPlan { run_id: run_id.into(), run_plan: view.plan, plan: plan.name.clone() });
    }
    if !view.state.is_resumable() {
        return Err(RunError::NotResumable { run_id: run_id.into(), state: view.state.label() });
    }
    let plan_changed = view.plan_digest != plan.digest;
    if plan_changed && !options.allow_plan_change {
        return Err(RunError::PlanChanged {
            run_id: run_id.into(),
            path: plan.path.display().to_string(),
            was: short(&view.plan_digest),
            now: short(&plan.digest),
        });
    }
    let holder = LockHolder::this_process(run_id, now);
    let record = Record::RunResumed {
        host: holder.host,
        pid: holder.pid,
        plan_digest: plan.digest.clone(),
        plan_changed,
        steps: if plan_changed {
            plan.steps(view.direction).iter().map(|s| s.id.clone()).collect()
        } else {
            Vec::new()
        },
    };
    for entry in journal.append(now, vec![record])? {
        view.apply(&entry)?;
    }
    Ok(ActiveRun { journal, view, lock })
}

/// Gives up on an unfinished run so the plan can run afresh.
pub fn abandon(
    state: &StateDir,
    run_id: &str,
    clock: &dyn Clock,
    by: &str,
    break_lock: bool,
) -> Result<RunView, RunError> {
    let path = state.journal_path(run_id);
    if !path.exists() {
        return Err(RunError::UnknownRun(run_id.to_string()));
    }
    let (mut journal, entries) = Journal::open(&path)?;
    let mut view = RunView::replay(&entries)?;
    if !view.state.is_resumable() {
        return Err(RunError::NotResumable { run_id: run_id.into(), state: view.state.label() });
    }
    let _lock = PlanLock::acquire(
        &state.lock_path(&view.plan),
        &view.plan,
        LockHolder::this_process(run_id, clock.now()),
        break_lock,
    )?;
    for entry in journal.append(clock.now(), vec![Record::RunAbandoned { by: by.to_string() }])? {
        view.apply(&entry)?;
    }
    Ok(view)
}

/// Loads the state of run `run_id`.
pub fn load_run(state: &StateDir, run_id: &str) -> Result<RunView, RunError> {
    let path = state.journal_path(run_id);
    if !path.exists() {
        return Err(RunError::UnknownRun(run_id.to_string()));
    }
    Ok(RunView::replay(&journal::read(&path)?)?)
}

fn short(digest: &str) -> String {
    digest.chars().take(12).collect()
}
