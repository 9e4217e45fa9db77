//! `drctl failover`, `failback`, `resume` and `abandon`.

use std::sync::Arc;
use std::time::SystemTime;

use clap::Args;

use super::approver::TerminalApprover;
use super::vars_args::VarArgs;
use super::{Global, Output, interactive, parse_incident_start};
use crate::aws::Aws;
use crate::clock::{Clock, SystemClock};
use crate::engine::events::Reporter;
use crate::engine::lifecycle::{self, ActiveRun, RunError, RunOptions};
use crate::engine::retry::RetryPolicy;
use crate::engine::state::RunState;
use crate::engine::{Engine, dry_run};
use crate::exit_code;
use crate::plan::{self, Direction, Plan};
use crate::report::json::{JsonLines, print_json_line};
use crate::report::progress::Progress;
use crate::report::summary::RunSummary;
use crate::step::Registry;
use crate::steps::{self, Approver, AutoApprove, RefuseWithoutTerminal, Services};

/// Options of `failover` and `failback`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plan: a name in the plans directory (`us-west-2` → plans/us-west-2.yaml) or a path.
    #[arg(long)]
    plan: String,
    /// Print what each step would do, in execution order, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// When the outage began (RFC 3339, or a time ago such as `20m`); RTO is measured from it.
    #[arg(long, value_name = "TIME", value_parser = parse_incident_start)]
    incident_start: Option<SystemTime>,
    /// Start a new run even though the newest run of the plan already succeeded in this direction.
    #[arg(long)]
    new_run: bool,
    #[command(flatten)]
    common: CommonRunArgs,
}

/// Options shared by every command that runs steps.
#[derive(Debug, Args)]
pub struct CommonRunArgs {
    /// Approve `approval` steps without asking (for automation; without a terminal they are refused).
    #[arg(short, long)]
    yes: bool,
    /// Take over the plan's lock from a holder on another host (whose machine died) or from an
    /// unreadable lock file. A holder proven dead on this host is taken over without it.
    #[arg(long)]
    break_lock: bool,
    /// With --break-lock: take the lock even from a live process of this host.
    #[arg(long, requires = "break_lock")]
    force: bool,
    /// Resume even though the plan file changed since the run started.
    #[arg(long)]
    allow_plan_change: bool,
    /// Send every AWS call to this endpoint (moto, LocalStack); overrides the plan's
    /// `aws.endpoint_url` and AWS_ENDPOINT_URL.
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Accept losing up to this much data (as time, such as `10m`) when a database promotion
    /// would lose more than the plan's RPO; the accepted loss is journaled.
    #[arg(long, value_name = "DURATION", value_parser = crate::plan::parse_duration)]
    accept_data_loss: Option<std::time::Duration>,
    #[command(flatten)]
    vars: VarArgs,
}

/// Options of `resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run to continue (`drctl status` lists them).
    run_id: String,
    /// The plan file, if not where the run found it.
    #[arg(long)]
    plan: Option<String>,
    #[command(flatten)]
    common: CommonRunArgs,
}

/// Options of `abandon`.
#[derive(Debug, Args)]
pub struct AbandonArgs {
    /// The run to give up on.
    run_id: String,
    /// Take over the plan's lock from a holder on another host or an unreadable lock file.
    #[arg(long)]
    break_lock: bool,
    /// With --break-lock: take the lock even from a live process of this host.
    #[arg(long, requires = "break_lock")]
    force: bool,
}

/// Runs `direction` of the plan, or continues its unfinished run.
pub async fn run(global: &Global, args: RunArgs, direction: Direction) -> u8 {
    let path = plan::resolve_path(&args.plan, &global.plans_dir);
    let reporting = Reporting::new(global.output);
    let registry = steps::builtin(&reporting.services(&args.common));
    let plan = match args.common.vars.load_plan(&path, &registry) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    if args.dry_run {
        let code = print_dry_run(&plan, direction, &registry, global.output);
        let ready =
            super::check_cmd::dry_run_preflight(global, &plan, direction, &registry, args.common.endpoint_url.clone())
                .await;
        return if ready { code } else { exit_code::RUN_FAILED };
    }
    let options = RunOptions {
        incident_start: args.incident_start,
        break_lock: args.common.break_lock,
        force: args.common.force,
        allow_plan_change: args.common.allow_plan_change,
        new_run: args.new_run,
    };
    let state = match super::state_cmd::open_or_exit(global, Some(&plan)) {
        Ok(state) => state,
        Err(code) => return code,
    };
    if direction == Direction::Failover {
        super::state_cmd::warn_if_state_in_primary(&state, &plan);
    }
    match lifecycle::begin(&state, &plan, direction, &SystemClock, &options) {
        Ok(active) => execute(&plan, active, registry, reporting).await,
        Err(e) => refuse(&e),
    }
}

/// Continues a run from its journal.
pub async fn resume(global: &Global, args: ResumeArgs) -> u8 {
    let state = match super::state_cmd::open_or_exit(global, None) {
        Ok(state) => state,
        Err(code) => return code,
    };
    let view = match lifecycle::load_run(&state, &args.run_id) {
        Ok(view) => view,
        Err(e) => return refuse(&e),
    };
    let path = match &args.plan {
        Some(p) => plan::resolve_path(p, &global.plans_dir),
        None => view.plan_path.clone().into(),
    };
    if args.plan.is_none() && !path.exists() {
        crate::errln!(
            "error: the plan file {} that run {} started with is not there (moved, deleted, or the run started in \
             another directory); pass --plan PATH to point at it",
            path.display(),
            args.run_id
        );
        return exit_code::PLAN_INVALID;
    }
    let reporting = Reporting::new(global.output);
    let registry = steps::builtin(&reporting.services(&args.common));
    // A run keeps the values it started with: the journaled ones, unless the operator gives
    // others (then refused below if they differ).
    let overrides = match args.common.vars.given() {
        false => plan::vars::Overrides::journaled(&view.vars),
        true => match args.common.vars.overrides() {
            Ok(overrides) => overrides,
            Err(e) => {
                crate::errln!("error: {e}");
                return exit_code::PLAN_INVALID;
            }
        },
    };
    let plan = match plan::load_with(&path, &registry, &overrides) {
        Ok(plan) => plan,
        Err(errors) => {
            crate::errln!("{errors}");
            return exit_code::PLAN_INVALID;
        }
    };
    let options = RunOptions {
        incident_start: None,
        break_lock: args.common.break_lock,
        force: args.common.force,
        allow_plan_change: args.common.allow_plan_change,
        new_run: false,
    };
    match lifecycle::resume(&state, &args.run_id, &plan, &SystemClock, &options) {
        Ok(active) => execute(&plan, active, registry, reporting).await,
        Err(e) => refuse(&e),
    }
}

/// Marks a run abandoned.
pub fn abandon(global: &Global, args: AbandonArgs) -> u8 {
    let state = match super::state_cmd::open_or_exit(global, None) {
        Ok(state) => state,
        Err(code) => return code,
    };
    let by = format!("{}@{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()), crate::journal::hostname());
    let policy = crate::journal::LockPolicy { break_lock: args.break_lock, force: args.force };
    match lifecycle::abandon(&state, &args.run_id, &SystemClock, &by, policy) {
        Ok(done) => {
            if !done.damaged_lines.is_empty() {
                let lines: Vec<String> = done.damaged_lines.iter().map(usize::to_string).collect();
                crate::outln!("the abandonment was recorded after the damaged journal lines {}", lines.join(", "));
            }
            crate::outln!("run {} abandoned; plan `{}` can run afresh", done.run_id, done.plan);
            exit_code::OK
        }
        Err(e) => refuse(&e),
    }
}

/// The reporters of one command: progress or JSON lines.
struct Reporting {
    output: Output,
    progress: Option<Arc<Progress>>,
}

impl Reporting {
    fn new(output: Output) -> Self {
        let progress = (output == Output::Human).then(|| Arc::new(Progress::new(interactive())));
        Reporting { output, progress }
    }

    /// Services for the step types; approvals go to the terminal when there is one (the word to
    /// type is the plan's name, which the approval step takes from the loaded plan).
    fn services(&self, common: &CommonRunArgs) -> Services {
        let approver: Arc<dyn Approver> = if common.yes {
            Arc::new(AutoApprove)
        } else if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            let bars = self.progress.as_ref().and_then(|p| p.multi_progress());
            Arc::new(TerminalApprover::new(bars))
        } else {
            Arc::new(RefuseWithoutTerminal)
        };
        Services {
            http: steps::http_client(),
            approver,
            aws: Arc::new(Aws::new(common.endpoint_url.clone())),
            kube: Arc::default(),
            accept_data_loss: common.accept_data_loss,
        }
    }

    fn reporter(&self) -> Arc<dyn Reporter> {
        match &self.progress {
            Some(progress) => progress.clone(),
            None => Arc::new(JsonLines),
        }
    }
}

async fn execute(plan: &Plan, mut active: ActiveRun, registry: Registry, reporting: Reporting) -> u8 {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = Engine {
        registry,
        clock,
        reporter: reporting.reporter(),
        retry: RetryPolicy::default(),
        wait: Default::default(),
    };
    let mut interrupt = std::pin::pin!(interrupted());
    let result = engine.execute(plan, &mut active.journal, &mut active.view, interrupt.as_mut()).await;
    let state = match result {
        Ok(state) => state,
        Err(e @ crate::engine::EngineError::Journal(crate::journal::JournalError::Fenced { .. })) => {
            crate::errln!("error: {e}");
            return exit_code::REFUSED;
        }
        Err(e) => {
            crate::errln!(
                "error: {e}\nThe run stopped; its journal holds everything up to this point. Fix the state directory and `drctl resume {}`.",
                active.view.run_id
            );
            return exit_code::STATE_ERROR;
        }
    };
    let summary = RunSummary::new(&active.view, Some(plan));
    match reporting.output {
        Output::Json => print_json_line(&serde_json::json!({ "event": "run_summary", "summary": summary })),
        Output::Human => {
            crate::out!("{}", summary.render());
            let run_id = &active.view.run_id;
            match &state {
                RunState::Failed { .. } => crate::outln!(
                    "Fix the cause, then continue with `drctl resume {run_id}` (steps that succeeded are not repeated)."
                ),
                RunState::Interrupted { .. } => crate::outln!("Continue with `drctl resume {run_id}`."),
                _ => {}
            }
        }
    }
    match state {
        RunState::Succeeded => exit_code::OK,
        RunState::Interrupted { .. } => exit_code::INTERRUPTED,
        _ => exit_code::RUN_FAILED,
    }
}

/// Completes on Ctrl-C or SIGTERM, with which one.
async fn interrupted() -> String {
    let sigterm = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => term.recv().await,
            Err(_) => std::future::pending().await,
        }
    };
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = ctrl_c => "Ctrl-C (SIGINT)".to_string(),
        _ = sigterm => "SIGTERM".to_string(),
    }
}

fn print_dry_run(plan: &Plan, direction: Direction, registry: &Registry, output: Output) -> u8 {
    let steps = dry_run(plan, direction, registry);
    match output {
        Output::Json => {
            if !plan.vars.is_empty() {
                print_json_line(&serde_json::json!({ "vars": plan.vars }));
            }
            for step in &steps {
                print_json_line(step);
            }
        }
        Output::Human => {
            crate::outln!(
                "dry run: {direction} of plan {} ({} → {}); nothing will be changed",
                plan.name,
                plan.regions.primary,
                plan.regions.secondary
            );
            crate::out!("{}", plan::vars::render(&plan.vars));
            let mut wave = usize::MAX;
            for step in &steps {
                if step.wave != wave {
                    wave = step.wave;
                    crate::outln!("wave {}:", wave + 1);
                }
                let unset = super::check_cmd::unset_variables(plan, direction, &step.id);
                let action = if unset.is_empty() { step.action.clone() } else { format!("ERROR: {unset}") };
                crate::outln!("  {:24} {action}", step.id);
            }
        }
    }
    exit_code::OK
}

fn refuse(error: &RunError) -> u8 {
    crate::errln!("error: {error}");
    if error.is_state_error() { exit_code::STATE_ERROR } else { exit_code::REFUSED }
}
