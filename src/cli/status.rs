//! `drctl status [RUN_ID]`: the runs in the state directory, or one run's steps with their times.
//! Anything that cannot be read is listed as damaged (exit 5), never left out.

use std::time::Duration;

use clap::Args;

use super::{Global, Output};
use crate::clock::{human_duration, rfc3339};
use crate::engine::lifecycle::load_run;
use crate::engine::runs::{Catalog, DamagedRun};
use crate::engine::state::{RunState, RunView};
use crate::exit_code;
use crate::journal::StateStore;
use crate::report::json::print_json_line;
use crate::report::summary::RunSummary;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show this run's steps; without it, list every run.
    run_id: Option<String>,
}

pub fn status(global: &Global, args: StatusArgs) -> u8 {
    let state = match super::state_cmd::open_or_exit(global, None) {
        Ok(state) => state,
        Err(code) => return code,
    };
    match args.run_id {
        Some(run_id) => one(global, &state, &run_id),
        None => list(global, &state),
    }
}

fn one(global: &Global, state: &StateStore, run_id: &str) -> u8 {
    match load_run(state, run_id) {
        Ok(view) => {
            let mut summary = RunSummary::new(&view, plan_of(&view).as_ref());
            if is_crashed(state, &view) {
                summary.state = CRASHED;
            }
            match global.output {
                Output::Human => crate::out!("{}", summary.render()),
                Output::Json => print_json_line(&summary),
            }
            exit_code::OK
        }
        Err(e) => {
            crate::errln!("error: {e}");
            if e.is_state_error() { exit_code::STATE_ERROR } else { exit_code::REFUSED }
        }
    }
}

const CRASHED: &str = "crashed (resumable)";

/// Whether a run journaled as running has no live process holding its plan's lock.
fn is_crashed(state: &StateStore, view: &RunView) -> bool {
    view.state == RunState::Running && live_holder(state, view).is_none()
}

/// The holder of the run's plan lock, if it is this run and not proven dead.
fn live_holder(state: &StateStore, view: &RunView) -> Option<crate::journal::LockHolder> {
    state.lock_holder(&view.plan).filter(|h| h.run_id == view.run_id && state.holder_live(h))
}

/// The run's plan, if it is still where the run found it, for the RTO objective.
fn plan_of(view: &RunView) -> Option<crate::plan::Plan> {
    // With the values the run started with: a variable without a production value is no error here.
    let overrides = crate::plan::vars::Overrides::journaled(&view.vars);
    crate::plan::load_with(std::path::Path::new(&view.plan_path), &super::checking_registry(), &overrides)
        .ok()
        .filter(|p| p.name == view.plan)
}

/// One row of the listing.
struct Row {
    run_id: String,
    direction: String,
    state: String,
    steps: String,
    rto: String,
    started: String,
}

fn list(global: &Global, state: &StateStore) -> u8 {
    let catalog = match Catalog::load(state) {
        Ok(catalog) => catalog,
        Err(e) => {
            crate::errln!("error: {e}");
            return exit_code::STATE_ERROR;
        }
    };
    if catalog.runs.is_empty() && catalog.damaged.is_empty() {
        if global.output == Output::Human {
            crate::outln!("no runs in {}", state.describe().location);
        }
        return exit_code::OK;
    }
    let mut rows = Vec::new();
    for view in &catalog.runs {
        rows.push(run_row(global, state, view));
    }
    let mut code = exit_code::OK;
    for damaged in &catalog.damaged {
        if !damaged.acknowledged {
            code = exit_code::STATE_ERROR;
        }
        crate::errln!("{}: {}", damaged.run_id, damaged.problem);
        rows.push(damaged_row(global, damaged));
    }
    if global.output == Output::Human {
        let width = rows.iter().map(|r| r.run_id.len()).max().unwrap_or(0).max(3);
        crate::outln!("{:width$}  {:9}  {:22}  {:>7}  {:>9}  STARTED", "RUN", "DIRECTION", "STATE", "STEPS", "RTO");
        for r in &rows {
            crate::outln!(
                "{:width$}  {:9}  {:22}  {:>7}  {:>9}  {}",
                r.run_id,
                r.direction,
                r.state,
                r.steps,
                r.rto,
                r.started
            );
        }
    }
    code
}

fn run_row(global: &Global, state: &StateStore, view: &RunView) -> Row {
    let done =
        view.steps.iter().filter(|s| matches!(s.state, crate::engine::state::StepState::Succeeded { .. })).count();
    let state_label = match (&view.state, live_holder(state, view)) {
        (RunState::Running, None) => CRASHED.to_string(),
        (RunState::Running, Some(h)) => format!("running (pid {} on {})", h.pid, h.host),
        (other, _) => other.label().to_string(),
    };
    let summary = RunSummary::new(view, plan_of(view).as_ref());
    let rto = summary.rto.as_ref();
    let measured = rto.and_then(|o| o.measured_ms);
    let rto_text = match (measured, rto.and_then(|o| o.met)) {
        (Some(ms), Some(false)) => format!("{} (missed)", human_duration(Duration::from_millis(ms))),
        (Some(ms), _) => human_duration(Duration::from_millis(ms)),
        (None, _) => "-".to_string(),
    };
    if global.output == Output::Json {
        print_json_line(&serde_json::json!({
            "run_id": view.run_id, "plan": view.plan, "direction": view.direction, "state": state_label,
            "steps_done": done, "steps": view.steps.len(), "started_at": rfc3339(view.started_at),
            "rto_ms": measured, "rto_objective_ms": rto.map(|o| o.objective_ms),
        }));
    }
    Row {
        run_id: view.run_id.clone(),
        direction: view.direction.to_string(),
        state: state_label,
        steps: format!("{done}/{}", view.steps.len()),
        rto: rto_text,
        started: rfc3339(view.started_at),
    }
}

fn damaged_row(global: &Global, damaged: &DamagedRun) -> Row {
    let label = if damaged.acknowledged { "abandoned (damaged)" } else { "damaged" };
    if global.output == Output::Json {
        print_json_line(&serde_json::json!({
            "run_id": damaged.run_id, "plan": damaged.plans.first(), "direction": damaged.direction,
            "state": label, "problem": damaged.problem, "acknowledged": damaged.acknowledged,
            "started_at": damaged.started_at.map(rfc3339),
        }));
    }
    Row {
        run_id: damaged.run_id.clone(),
        direction: damaged.direction.map_or("-".to_string(), |d| d.to_string()),
        state: label.to_string(),
        steps: "-".into(),
        rto: "-".into(),
        started: damaged.started_at.map_or("-".to_string(), rfc3339),
    }
}
