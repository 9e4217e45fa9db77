//! One drill, start to finish: the safety fence, heartbeats on the primary database, the fault, the
//! failover (with the RTO probe running), the RPO from the heartbeats, the failback, the checks, and
//! the evidence.
//!
//! The plan's runs are `drctl failover` and `drctl failback` child processes with the environment's
//! variables, so a drill exercises exactly what an operator runs, and each run has its own journal
//! in the state directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::process::Command;

use super::definition::{self, DrillDefinition};
use super::environment::Environment;
use super::evidence::{self, rfc3339};
use super::heartbeat::{self, Writer};
use super::probe::Probe;
use super::report::model::{
    CheckReport, DrillReport, FaultReport, HeartbeatReport, ObjectivesReport, RunReport, SCHEMA_VERSION,
};
use super::{fence, report, targets};
use crate::engine::lifecycle::load_run;
use crate::journal::StateDir;
use crate::journal::hostname;
use crate::plan::{Direction, Plan, StepSpec};

/// How long the heartbeats run before the fault, so the primary is under write load when it fails.
const WARM_UP: Duration = Duration::from_secs(1);

/// Where a drill reads and writes.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    pub state_dir: PathBuf,
    pub plans_dir: PathBuf,
    /// Reports go to `<reports_dir>/<drill>/<started>/`.
    pub reports_dir: PathBuf,
    /// Endpoints (by the environment's names, `aws`, `kubernetes.dr`...) allowed to be non-local.
    pub allow_live: Vec<String>,
    /// The environment's `env.json`, instead of the drill's `environment`.
    pub environment: Option<PathBuf>,
    /// The drctl binary that runs the plan.
    pub drctl: PathBuf,
}

/// Why a drill could not run at all (as opposed to a drill that ran and failed).
#[derive(Debug)]
pub enum DrillError {
    /// The definition, the plan or the environment is wrong.
    Invalid(String),
    /// The safety fence refused: these endpoints are not local emulators.
    Fenced(Vec<String>),
    /// Something broke halfway; the environment may need `localstack/env/down` and `up`.
    Broken(String),
}

/// A finished drill: its report and where the evidence went.
pub struct Finished {
    pub report: DrillReport,
    pub files: Vec<PathBuf>,
}

/// Runs the drill at `path`.
pub async fn run(path: &Path, options: &DrillOptions) -> Result<Finished, DrillError> {
    let drill = definition::load(path).map_err(DrillError::Invalid)?;
    let plan_path = crate::plan::resolve_path(&drill.plan, &options.plans_dir);
    let registry = crate::steps::builtin(&crate::steps::Services::for_checking());
    let plan = crate::plan::load(&plan_path, &registry).map_err(|e| DrillError::Invalid(e.to_string()))?;
    let environment_path = options.environment.clone().unwrap_or_else(|| PathBuf::from(&drill.environment));
    let environment = Environment::load(&environment_path).map_err(DrillError::Invalid)?;
    let endpoints = targets::endpoints(&plan, &environment).map_err(DrillError::Invalid)?;
    fence::check(&endpoints, &options.allow_live).map_err(DrillError::Fenced)?;
    let inject = environment.actions.inject.get(drill.fault.as_str()).ok_or_else(|| {
        DrillError::Invalid(format!("the environment `{}` cannot inject `{}`", environment.name, drill.fault.as_str()))
    })?;
    let primary_dsn = environment.variable("PRIMARY_DATABASE_DSN").map_err(DrillError::Invalid)?.to_string();
    let dr_dsn = environment.variable("DR_DATABASE_DSN").map_err(DrillError::Invalid)?.to_string();
    let dr_health = environment.variable("DR_HEALTH_URL").map_err(DrillError::Invalid)?.to_string();

    let started_at = SystemTime::now();
    say(&format!(
        "drill {}: plan {}, fault {}, environment {}",
        drill.name,
        plan.name,
        drill.fault.as_str(),
        environment.name
    ));
    let writer = Writer::start(&primary_dsn, drill.heartbeat_interval()).await.map_err(DrillError::Broken)?;
    tokio::time::sleep(WARM_UP).await;
    if let Some(lag) = drill.replica_lag {
        say(&format!("cutting the DR database off from the primary {lag} before the fault"));
        heartbeat::cut_replication(&dr_dsn).await.map_err(DrillError::Broken)?;
        tokio::time::sleep(lag.0).await;
    }

    let injected_at = SystemTime::now();
    say(&format!("injecting the fault: {}", drill.fault.describe()));
    action(inject, &environment).await.map_err(DrillError::Broken)?;
    // The application in the primary region is down from here on: no more writes to lose.
    let written = writer.stop();
    let probe = Probe::start(crate::steps::http_client(), dr_health.clone());
    let failover = run_plan(&plan_path, Direction::Failover, Some(injected_at), &environment, options).await?;

    let present = heartbeat::last_present(&dr_dsn).await.map_err(DrillError::Broken)?;
    let healthy_at = probe.stop();
    let rto = healthy_at.map(|t| t.duration_since(injected_at).unwrap_or_default());
    let (lost, rpo) = heartbeat::loss(written.last, present);

    let mut runs = vec![run_report(&options.state_dir, &failover, &plan.failover)?];
    let failover_ok = runs[0].state == "succeeded";
    if drill.failback && failover_ok {
        say("repairing the primary region");
        action(&environment.actions.repair, &environment).await.map_err(DrillError::Broken)?;
        let failback = run_plan(&plan_path, Direction::Failback, None, &environment, options).await?;
        runs.push(run_report(&options.state_dir, &failback, &plan.failback)?);
        if runs[1].state == "succeeded" {
            say("restoring the environment");
            action(&environment.actions.restore, &environment).await.map_err(DrillError::Broken)?;
        }
    }
    let back_on_primary = runs.len() == 2 && runs[1].state == "succeeded";
    let cleanup = heartbeat::drop_table(if back_on_primary { &primary_dsn } else { &dr_dsn }).await;
    let checks = checks(&drill, &environment, cleanup).await;

    let (rto_objective, rpo_objective) = objectives(&drill, &plan);
    let rto_detail = match healthy_at {
        Some(_) => format!("from the fault to the first healthy answer of {dr_health} (probed every 50 ms)"),
        None => format!("the DR region never answered healthy at {dr_health}"),
    };
    let rpo_detail = match rpo {
        Some(_) => format!(
            "{lost} of {} committed heartbeats (one every {} ms) missing on the new primary",
            written.committed,
            drill.heartbeat_interval().as_millis()
        ),
        None => "no heartbeat reached the new primary".to_string(),
    };
    let objectives = ObjectivesReport {
        rto: evidence::measurement(rto_objective, rto, rto_detail),
        rpo: evidence::measurement(rpo_objective, rpo, rpo_detail),
    };
    let check_triples: Vec<_> = checks.iter().map(|c| (c.name.clone(), c.passed, c.detail.clone())).collect();
    let outcome = evidence::outcome(&[("RTO", &objectives.rto), ("RPO", &objectives.rpo)], &runs, &check_triples);
    let report = DrillReport {
        schema_version: SCHEMA_VERSION,
        drill: drill.name.clone(),
        plan: plan.name.clone(),
        environment: environment.name.clone(),
        host: hostname(),
        started_at: rfc3339(started_at),
        finished_at: rfc3339(SystemTime::now()),
        fault: FaultReport {
            kind: drill.fault.as_str().into(),
            description: drill.fault.describe().into(),
            injected_at: rfc3339(injected_at),
        },
        objectives,
        heartbeats: HeartbeatReport {
            interval_ms: drill.heartbeat_interval().as_millis() as u64,
            committed: written.committed,
            last_committed_seq: written.last.map(|b| b.seq),
            last_committed_at: written.last.map(|b| rfc3339(b.at)),
            last_present_seq: present.map(|b| b.seq),
            last_present_at: present.map(|b| rfc3339(b.at)),
            lost,
        },
        runs,
        checks,
        outcome,
    };
    let stamp: String = humantime::format_rfc3339_seconds(started_at).to_string().replace([':', '-'], "");
    let dir = options.reports_dir.join(&drill.name).join(stamp);
    let files = report::write_all(&report, &dir)
        .map_err(|e| DrillError::Broken(format!("cannot write the reports to {}: {e}", dir.display())))?;
    Ok(Finished { report, files })
}

/// The objectives the drill is judged by: its own, else the plan's.
fn objectives(drill: &DrillDefinition, plan: &Plan) -> (Duration, Duration) {
    let own = drill.objectives.as_ref();
    let rto = own.and_then(|o| o.rto).map_or(plan.objectives.rto, |d| d.0);
    let rpo = own.and_then(|o| o.rpo).map_or(plan.objectives.rpo, |d| d.0);
    (rto, rpo)
}

fn say(line: &str) {
    crate::errln!("{} == {line}", humantime::format_rfc3339_seconds(SystemTime::now()));
}

/// Runs one of the environment's commands; its output goes to the drill's standard error.
async fn action(argv: &[String], environment: &Environment) -> Result<String, String> {
    let Some((program, args)) = argv.split_first() else { return Err("an empty command in env.json".into()) };
    let output = Command::new(program)
        .args(args)
        .envs(&environment.variables)
        .output()
        .await
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    match output.status.success() {
        true => Ok(stdout),
        false => Err(format!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            output.status,
            if stderr.is_empty() { &stdout } else { &stderr }
        )),
    }
}

/// `drctl failover|failback --plan PATH --yes` with the environment's variables; returns the run id.
async fn run_plan(
    plan_path: &Path,
    direction: Direction,
    incident_start: Option<SystemTime>,
    environment: &Environment,
    options: &DrillOptions,
) -> Result<String, DrillError> {
    say(&format!("{direction} of {}", plan_path.display()));
    let state = StateDir::new(&options.state_dir);
    let before: Vec<String> = state.runs().into_iter().map(|r| r.run_id).collect();
    let mut command = Command::new(&options.drctl);
    command.arg("--state-dir").arg(&options.state_dir).arg("--plans-dir").arg(&options.plans_dir);
    command.arg(direction.to_string()).arg("--plan").arg(plan_path).arg("--yes");
    // Each drill is a run of its own, even when the last drill's run of this direction succeeded.
    command.arg("--new-run");
    if let Some(start) = incident_start {
        command.arg("--incident-start").arg(rfc3339(start));
    }
    command.envs(&environment.variables).stdin(std::process::Stdio::null());
    let status = command.status().await.map_err(|e| DrillError::Broken(format!("cannot run drctl: {e}")))?;
    let run = state.runs().into_iter().map(|r| r.run_id).find(|id| !before.contains(id));
    run.ok_or_else(|| DrillError::Broken(format!("the {direction} started no run ({status})")))
}

fn run_report(state_dir: &Path, run_id: &str, steps: &[StepSpec]) -> Result<RunReport, DrillError> {
    let view = load_run(&StateDir::new(state_dir), run_id).map_err(|e| DrillError::Broken(e.to_string()))?;
    Ok(evidence::run_report(&view, steps))
}

/// The drill's own cleanup, then the environment's checks the drill asks for.
async fn checks(drill: &DrillDefinition, environment: &Environment, cleanup: Result<(), String>) -> Vec<CheckReport> {
    let mut reports = vec![CheckReport {
        name: "heartbeat-table-dropped".into(),
        passed: cleanup.is_ok(),
        detail: cleanup.err().unwrap_or_else(|| format!("dropped {}", heartbeat::TABLE)),
    }];
    let wanted: Vec<String> =
        drill.checks.clone().unwrap_or_else(|| environment.actions.checks.keys().cloned().collect());
    for name in wanted {
        let (passed, detail) = match environment.actions.checks.get(&name) {
            None => (false, format!("the environment `{}` has no check `{name}`", environment.name)),
            Some(argv) => match action(argv, environment).await {
                Ok(detail) => (true, detail),
                Err(error) => (false, error),
            },
        };
        reports.push(CheckReport { name, passed, detail });
    }
    reports
}
