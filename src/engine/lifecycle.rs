//! Beginning, resuming and abandoning runs: the plan lock, the journal's first records, and the
//! checks that keep a resumed run honest (same plan, resumable state).

use std::time::SystemTime;

use super::runs::{Catalog, DamagedRun, examine_one};
use super::state::{InvalidTransition, RunView};
use crate::clock::Clock;
use crate::journal::{
    Ending, Journal, JournalError, LockError, LockHolder, LockPolicy, PlanLock, Record, StateDir, StateError,
    StateStore,
};
use crate::plan::{Direction, Plan};

/// How to begin or resume.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// When the outage began; RTO is measured from it instead of the run's start.
    pub incident_start: Option<SystemTime>,
    /// Take the plan lock from a holder that cannot be proven alive (another host, an unreadable lock).
    pub break_lock: bool,
    /// With `break_lock`, take the lock even from a live process of this host.
    pub force: bool,
    /// Resume even though the plan file changed since the run started.
    pub allow_plan_change: bool,
    /// Start a new run even though the newest run of the plan already succeeded in this direction.
    pub new_run: bool,
}

impl RunOptions {
    fn lock_policy(&self) -> LockPolicy {
        LockPolicy { break_lock: self.break_lock, force: self.force }
    }
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
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{}", damaged_message(.0))]
    Damaged(Box<DamagedRun>),
    #[error("no run `{0}` in the state directory; `drctl status` lists the runs")]
    UnknownRun(String),
    #[error("run {run_id} {state}; only a crashed, interrupted or failed run can be resumed or abandoned")]
    NotResumable { run_id: String, state: &'static str },
    #[error(
        "the plan {path} changed since run {run_id} started (digest {was} → {now}); resuming could mix two plans. \
         Restore the plan, or pass --allow-plan-change if the change is intended"
    )]
    PlanChanged { run_id: String, path: String, was: String, now: String },
    #[error(
        "run {run_id} started with other values of the plan's variables: {changes}. A run keeps the values it \
         started with: resume without --var/--vars (the journaled values are used), or abandon it and start anew"
    )]
    VarsChanged { run_id: String, changes: String },
    #[error(
        "run {run_id} ({direction}) of plan `{plan}` is unfinished; resume it with `drctl resume {run_id}` or give it up with `drctl abandon {run_id}`"
    )]
    OtherRunUnfinished { run_id: String, plan: String, direction: Direction },
    #[error("run {run_id} is for plan `{run_plan}`, not `{plan}`")]
    WrongPlan { run_id: String, run_plan: String, plan: String },
    #[error(
        "the {direction} of plan `{plan}` already succeeded: run {run_id} finished at {at}, and no run of the plan \
         came after it. Nothing is left to do; to run the {direction} again anyway (a new run, announced again), \
         pass --new-run"
    )]
    AlreadySucceeded { plan: String, direction: Direction, run_id: String, at: String },
}

fn damaged_message(run: &DamagedRun) -> String {
    let id = &run.run_id;
    let what_now = match run.ending {
        Ending::Open => format!(
            "Run {id} may be unfinished, and its journal cannot tell. Repair the line if you know what it held, or \
             give the run up with `drctl abandon {id}` (it records the abandonment; the plan can then run afresh)"
        ),
        Ending::Succeeded => format!("Run {id} succeeded, so nothing is left to resume; repair or remove that line"),
        Ending::Abandoned => format!("Run {id} was abandoned, so nothing is left to resume"),
        Ending::Empty => format!("No step ran under run {id}; remove its directory"),
    };
    format!("{}\n{what_now}", run.problem)
}

/// Begins a run of `plan` in `direction`, or continues the unfinished one of that direction. The
/// plan lock is taken first, so what is found in the state directory cannot change before the
/// decision is journaled.
pub fn begin(
    state: &(impl Into<StateStore> + Clone),
    plan: &Plan,
    direction: Direction,
    clock: &dyn Clock,
    options: &RunOptions,
) -> Result<ActiveRun, RunError> {
    let state: &StateStore = &state.clone().into();
    let now = clock.now();
    // The lock names a new run; if the run turns out to be a resume, the lock is made to name it.
    // (Reading the runs first, to name the likely one, would cost a listing of S3 on every start.)
    let candidate = StateDir::new_run_id(&plan.name, direction, now);
    let holder = LockHolder::this_process(&candidate, now);
    let mut lock = state.lock(&plan.name, holder, options.lock_policy())?;
    let catalog = Catalog::load(state)?;
    if let Some(unfinished) = catalog.unfinished(&plan.name) {
        for damaged in catalog.damaged.iter().filter(|d| d.concerns(&plan.name)) {
            tracing::warn!("{}", damaged.problem);
        }
        if unfinished.direction != direction {
            return Err(RunError::OtherRunUnfinished {
                run_id: unfinished.run_id.clone(),
                plan: plan.name.clone(),
                direction: unfinished.direction,
            });
        }
        if lock.holder().run_id != unfinished.run_id {
            lock.retarget(&unfinished.run_id)?;
        }
        return resume_locked(state, &unfinished.run_id, plan, clock, options, lock);
    }
    if let Some(damaged) = catalog.blocking(&plan.name) {
        return Err(RunError::Damaged(Box::new(damaged.clone())));
    }
    for damaged in catalog.settled_damage(&plan.name) {
        tracing::warn!("{} (it does not stop a new run)", damaged.problem);
    }
    if !options.new_run
        && let Some((run_id, at)) = catalog.latest_success(&plan.name, direction)
    {
        let at = crate::clock::rfc3339(at);
        return Err(RunError::AlreadySucceeded { plan: plan.name.clone(), direction, run_id, at });
    }
    let mut run_id = lock.holder().run_id.clone();
    if state.run_exists(&run_id) {
        run_id = StateDir::new_run_id(&plan.name, direction, now);
        lock.retarget(&run_id)?;
    }
    let holder = LockHolder::this_process(&run_id, now);
    let record = Record::RunStarted {
        run_id: run_id.clone(),
        plan: plan.name.clone(),
        plan_path: absolute(&plan.path),
        plan_digest: plan.digest.clone(),
        direction,
        incident_start: options.incident_start,
        host: holder.host,
        pid: holder.pid,
        drctl_version: env!("CARGO_PKG_VERSION").to_string(),
        steps: plan.steps(direction).iter().map(|s| s.id.clone()).collect(),
        vars: plan.vars.clone(),
    };
    let (mut journal, entries) = state.create_journal(&run_id, now, record)?;
    let mut view = RunView::replay(&entries)?;
    journal_takeover(&mut journal, &mut view, &mut lock, now)?;
    Ok(ActiveRun { journal, view, lock })
}

/// The plan path as journaled: absolute and canonical, so a resume from any directory finds it.
fn absolute(path: &std::path::Path) -> String {
    let absolute = std::fs::canonicalize(path).or_else(|_| std::path::absolute(path)).unwrap_or(path.to_path_buf());
    absolute.display().to_string()
}

/// Continues run `run_id` with `plan` after checking that the plan is the one it started with.
pub fn resume(
    state: &(impl Into<StateStore> + Clone),
    run_id: &str,
    plan: &Plan,
    clock: &dyn Clock,
    options: &RunOptions,
) -> Result<ActiveRun, RunError> {
    let state: &StateStore = &state.clone().into();
    if examine_one(state, run_id).is_none() {
        return Err(RunError::UnknownRun(run_id.to_string()));
    }
    let holder = LockHolder::this_process(run_id, clock.now());
    let lock = state.lock(&plan.name, holder, options.lock_policy())?;
    resume_locked(state, run_id, plan, clock, options, lock)
}

/// [`resume`] once the plan lock is held.
fn resume_locked(
    state: &StateStore,
    run_id: &str,
    plan: &Plan,
    clock: &dyn Clock,
    options: &RunOptions,
    mut lock: PlanLock,
) -> Result<ActiveRun, RunError> {
    let now = clock.now();
    match examine_one(state, run_id) {
        None => return Err(RunError::UnknownRun(run_id.to_string())),
        Some(Err(damaged)) => return Err(RunError::Damaged(Box::new(damaged))),
        Some(Ok(_)) => {}
    }
    let (mut journal, entries) = state.open_journal(run_id)?;
    let mut view = RunView::replay(&entries)?;
    if view.plan != plan.name {
        return Err(RunError::WrongPlan { run_id: run_id.into(), run_plan: view.plan, plan: plan.name.clone() });
    }
    if !view.state.is_resumable() {
        return Err(RunError::NotResumable { run_id: run_id.into(), state: view.state.phrase() });
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
    let changed = crate::plan::vars::differences(&view.vars, &plan.vars);
    if !changed.is_empty() {
        return Err(RunError::VarsChanged { run_id: run_id.into(), changes: changed.join("; ") });
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
    journal_takeover(&mut journal, &mut view, &mut lock, now)?;
    Ok(ActiveRun { journal, view, lock })
}

/// Journals `lock_taken_over` when this process took the plan's lock from another holder, so the
/// run's history says who ran it before and why that one was displaced.
fn journal_takeover(
    journal: &mut Journal,
    view: &mut RunView,
    lock: &mut PlanLock,
    now: SystemTime,
) -> Result<(), RunError> {
    if let Some(note) = lock.take_over_note() {
        let record = Record::LockTakenOver { previous: note.previous.describe(), reason: note.reason };
        for entry in journal.append(now, vec![record])? {
            view.apply(&entry)?;
        }
    }
    Ok(())
}

/// A run given up by [`abandon`].
#[derive(Debug, Clone)]
pub struct Abandoned {
    pub run_id: String,
    pub plan: String,
    /// The journal's damaged lines, recorded with the abandonment (empty for a sound journal).
    pub damaged_lines: Vec<usize>,
}

/// Gives up on an unfinished run so the plan can run afresh. A run whose journal is damaged (so
/// that it may be unfinished) can be given up too: `run_abandoned` is appended after the damage,
/// naming the damaged lines, and the run no longer blocks its plan.
pub fn abandon(
    state: &(impl Into<StateStore> + Clone),
    run_id: &str,
    clock: &dyn Clock,
    by: &str,
    policy: LockPolicy,
) -> Result<Abandoned, RunError> {
    let state: &StateStore = &state.clone().into();
    let found = examine_one(state, run_id).ok_or_else(|| RunError::UnknownRun(run_id.to_string()))?;
    let plan = match &found {
        Ok(view) => view.plan.clone(),
        Err(damaged) => match damaged.plans.first() {
            Some(plan) => plan.clone(),
            None => return Err(RunError::Damaged(Box::new(damaged.clone()))),
        },
    };
    let holder = LockHolder::this_process(run_id, clock.now());
    let _lock = state.lock(&plan, holder, policy)?;
    // Read again under the lock: the run may have moved on meanwhile.
    let record = |damaged_lines| Record::RunAbandoned { by: by.to_string(), damaged_lines };
    match examine_one(state, run_id).ok_or_else(|| RunError::UnknownRun(run_id.to_string()))? {
        Ok(_) => {
            let (mut journal, entries) = state.open_journal(run_id)?;
            let mut view = RunView::replay(&entries)?;
            if !view.state.is_resumable() {
                return Err(RunError::NotResumable { run_id: run_id.into(), state: view.state.phrase() });
            }
            for entry in journal.append(clock.now(), vec![record(Vec::new())])? {
                view.apply(&entry)?;
            }
            Ok(Abandoned { run_id: run_id.into(), plan, damaged_lines: Vec::new() })
        }
        Err(damaged) if matches!(damaged.ending, Ending::Open | Ending::Empty) => {
            let (mut journal, scan) = state.open_damaged_journal(run_id)?;
            let lines: Vec<usize> = scan.damage.iter().map(|d| d.line).collect();
            journal.append(clock.now(), vec![record(lines.clone())])?;
            Ok(Abandoned { run_id: run_id.into(), plan, damaged_lines: lines })
        }
        Err(damaged) => Err(RunError::Damaged(Box::new(damaged))),
    }
}

/// Loads the state of run `run_id`, checked as [`crate::engine::runs::examine`] does.
pub fn load_run(state: &(impl Into<StateStore> + Clone), run_id: &str) -> Result<RunView, RunError> {
    let state: &StateStore = &state.clone().into();
    match examine_one(state, run_id) {
        None => Err(RunError::UnknownRun(run_id.to_string())),
        Some(Err(damaged)) => Err(RunError::Damaged(Box::new(damaged))),
        Some(Ok(view)) => Ok(view),
    }
}

impl RunError {
    /// Whether the state directory is at fault (exit 5) rather than drctl refusing (exit 4).
    pub fn is_state_error(&self) -> bool {
        matches!(
            self,
            RunError::Journal(_)
                | RunError::Invalid(_)
                | RunError::State(_)
                | RunError::Damaged(_)
                | RunError::Lock(LockError::Io { .. } | LockError::Remote { .. })
        )
    }
}

fn short(digest: &str) -> String {
    digest.chars().take(12).collect()
}
