//! `drctl status [RUN_ID]`: the runs in the state directory, or one run's steps with their times.

use clap::Args;

use super::{Global, Output};
use crate::engine::lifecycle::load_run;
use crate::engine::state::RunView;
use crate::exit_code;
use crate::journal::{self, PlanLock, StateDir};
use crate::report::json::print_json_line;
use crate::report::summary::RunSummary;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show this run's steps; without it, list every run.
    run_id: Option<String>,
}

pub fn status(global: &Global, args: StatusArgs) -> u8 {
    let state = StateDir::new(&global.state_dir);
    match args.run_id {
        Some(run_id) => match load_run(&state, &run_id) {
            Ok(view) => {
                let summary = RunSummary::new(&view, plan_of(&view).as_ref());
                match global.output {
                    Output::Human => print!("{}", summary.render()),
                    Output::Json => print_json_line(&summary),
                }
                exit_code::OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit_code::REFUSED
            }
        },
        None => list(global, &state),
    }
}

/// The run's plan, if it is still where the run found it, for the RTO objective.
fn plan_of(view: &RunView) -> Option<crate::plan::Plan> {
    crate::plan::load(std::path::Path::new(&view.plan_path), &super::checking_registry())
        .ok()
        .filter(|p| p.name == view.plan)
}

fn list(global: &Global, state: &StateDir) -> u8 {
    let runs = state.runs();
    if runs.is_empty() && global.output == Output::Human {
        println!("no runs in {}", state.root().display());
    }
    let mut code = exit_code::OK;
    for run in runs {
        let view = match journal::read(&run.journal)
            .map_err(|e| e.to_string())
            .and_then(|e| RunView::replay(&e).map_err(|e| e.to_string()))
        {
            Ok(view) => view,
            Err(e) => {
                eprintln!("{}: {e}", run.run_id);
                code = exit_code::STATE_ERROR;
                continue;
            }
        };
        let done =
            view.steps.iter().filter(|s| s.state.label() == "succeeded" || s.state.label() == "already done").count();
        let done = done + view.steps.iter().filter(|s| s.state.label() == "passed").count(); // checks that passed
        let holder = PlanLock::holder_of(&state.lock_path(&view.plan)).filter(|h| h.run_id == view.run_id);
        let state_label = match (&holder, view.state.label()) {
            (None, "running") => "crashed (resumable)".to_string(),
            (Some(h), "running") if h.is_dead() => "crashed (resumable)".to_string(),
            (Some(h), "running") => format!("running (pid {} on {})", h.pid, h.host),
            (_, label) => label.to_string(),
        };
        match global.output {
            Output::Human => println!(
                "{:48} {:9} {:22} {:>3}/{:<3} started {}",
                view.run_id,
                view.direction.to_string(),
                state_label,
                done,
                view.steps.len(),
                crate::clock::rfc3339(view.started_at)
            ),
            Output::Json => print_json_line(&serde_json::json!({
                "run_id": view.run_id, "plan": view.plan, "direction": view.direction, "state": state_label,
                "steps_done": done, "steps": view.steps.len(), "started_at": crate::clock::rfc3339(view.started_at),
            })),
        }
    }
    code
}
