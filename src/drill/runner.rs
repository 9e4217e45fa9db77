//! One drill, start to finish: the safety fence, the synthetic client writing through the public
//! name, the fault, the failover (with the DR-readiness probe running), a grace period, the RTO, RPO
//! and split brain from the client's record, the failback, the checks, and the evidence.
//!
//! The plan's runs are `drctl failover` and `drctl failback` child processes with the environment's
//! variables, so a drill exercises exactly what an operator runs, and each run has its own journal
//! in the state directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::process::Command;

use super::client::{self, Client, ClientSettings};
use super::definition::{self, DrillDefinition};
use super::environment::Environment;
use super::evidence::{self, rfc3339};
use super::heartbeat;
use super::measure::{self, Facts, Measured};
use super::probe::Probe;
use super::report::model::{
    CheckReport, DrillReport, FaultReport, ObjectivesReport, RunReport, RunStatus, SCHEMA_VERSION, StepStatus,
};
use super::{fence, latency, report, targets};
use crate::clock::{Clock, SystemClock};
use crate::engine::lifecycle::load_run;
use crate::journal::StateDir;
use crate::journal::hostname;
use crate::plan::vars::Overrides;
use crate::plan::{Direction, Plan, StepSpec};

/// How long the client writes before the fault, so the primary is under write load when it fails.
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
    /// `--var`/`--vars` of `drctl drill run`, passed on to the plan's runs (after the
    /// environment's and the drill's vars, so they win).
    pub overrides: Overrides,
    /// The same, as the arguments the plan's runs get.
    pub var_args: Vec<String>,
    /// `--profile`, `--time-scale`, `--seed`: instead of the drill's own.
    pub latency: LatencyArgs,
}

/// A latency profile asked for on the command line, and where profiles are found by name.
#[derive(Debug, Clone, Default)]
pub struct LatencyArgs {
    pub profile: Option<String>,
    pub time_scale: Option<f64>,
    pub seed: Option<u64>,
    pub profiles_dir: PathBuf,
}

/// The latency a drill asks for: the command line's, else the definition's.
pub fn wanted_latency(drill: &DrillDefinition, args: &LatencyArgs) -> Result<Option<latency::Latency>, String> {
    let profile = args.profile.as_deref().or(drill.profile.as_deref());
    let time_scale = args.time_scale.or(drill.time_scale);
    let seed = args.seed.or(drill.seed);
    latency::wanted(profile, time_scale, seed, &args.profiles_dir)
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
    let environment_path = options.environment.clone().unwrap_or_else(|| PathBuf::from(&drill.environment));
    let environment = Environment::load(&environment_path).map_err(DrillError::Invalid)?;
    // The plan as its runs will resolve it: the environment's vars, then the operator's.
    let mut overrides = Overrides::default();
    overrides.environment(&environment_path, &environment.vars).map_err(DrillError::Invalid)?;
    let drill_vars: Vec<String> = drill.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
    overrides.command_line(&drill_vars).map_err(|e| DrillError::Invalid(format!("{}: vars: {e}", path.display())))?;
    overrides.0.extend(options.overrides.0.iter().cloned());
    let mut var_args: Vec<String> = drill_vars.iter().flat_map(|v| ["--var".to_string(), v.clone()]).collect();
    var_args.extend(options.var_args.iter().cloned());
    let plan =
        crate::plan::load_with(&plan_path, &registry, &overrides).map_err(|e| DrillError::Invalid(e.to_string()))?;
    let endpoints = targets::endpoints(&plan, &environment).map_err(DrillError::Invalid)?;
    fence::check(&endpoints, &options.allow_live).map_err(DrillError::Fenced)?;
    let inject = environment.actions.inject.get(drill.fault.as_str()).ok_or_else(|| {
        DrillError::Invalid(format!("the environment `{}` cannot inject `{}`", environment.name, drill.fault.as_str()))
    })?;
    let wanted = wanted_latency(&drill, &options.latency).map_err(DrillError::Invalid)?;
    let latency = latency::applied(wanted.as_ref(), &environment, &environment_path).map_err(DrillError::Invalid)?;
    let primary_dsn = environment.variable("PRIMARY_DATABASE_DSN").map_err(DrillError::Invalid)?.to_string();
    let dr_dsn = environment.variable("DR_DATABASE_DSN").map_err(DrillError::Invalid)?.to_string();
    let dr_health = environment.variable("DR_HEALTH_URL").map_err(DrillError::Invalid)?.to_string();
    let settings = client_settings(&drill, &plan, &environment).map_err(DrillError::Invalid)?;
    let app_role = environment.variable("APP_DATABASE_ROLE").map_err(DrillError::Invalid)?.to_string();

    // One clock times the drill: the client's writes, the probe, the fault and the report.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let started_at = clock.now();
    say(&format!(
        "drill {}: plan {}, fault {}, environment {}",
        drill.name,
        plan.name,
        drill.fault.as_str(),
        environment.name
    ));
    if let Some(l) = &latency {
        say(&format!(
            "latency profile {} at time scale {} (the environment's delays are rescaled in the report)",
            l.profile.display(),
            l.time_scale
        ));
    }
    client::prepare_table(&primary_dsn, &app_role).await.map_err(DrillError::Broken)?;
    let http = crate::steps::http_client();
    say(&format!(
        "client: one write every {} ms through {} (DNS cached for {})",
        settings.interval.as_millis(),
        settings.record,
        dns_ttl_label(&drill)
    ));
    let writer = Client::start(http.clone(), settings.clone(), clock.clone());
    tokio::time::sleep(WARM_UP).await;
    if let Some(lag) = drill.replica_lag {
        say(&format!("cutting the DR database off from the primary {lag} before the fault"));
        heartbeat::cut_replication(&dr_dsn).await.map_err(DrillError::Broken)?;
        tokio::time::sleep(lag.0).await;
    }

    let injected_at = clock.now();
    say(&format!("injecting the fault: {}", drill.fault.describe()));
    action(inject, &environment).await.map_err(DrillError::Broken)?;
    let probe = Probe::start(http, dr_health.clone(), clock.clone());
    let run_env = (&environment, environment_path.as_path(), var_args.as_slice());
    let failover = run_plan(&plan_path, Direction::Failover, Some(injected_at), run_env, options).await?;
    let healthy_at = probe.stop();
    say(&format!("the client keeps writing for {} (grace period)", humantime::format_duration(drill.client_grace())));
    tokio::time::sleep(drill.client_grace()).await;
    let attempts = writer.stop();

    let mut runs = vec![run_report(&options.state_dir, &failover, &plan.failover)?];
    let failover_view =
        load_run(&StateDir::new(&options.state_dir), &failover).map_err(|e| DrillError::Broken(e.to_string()))?;
    let approval = evidence::approval(&failover_view, &plan.failover);
    let unreachable = evidence::unreachable_steps(&failover_view);
    let failover_ok = runs[0].state == RunStatus::Succeeded;
    let promoted_at = promotion_time(&runs[0]);
    let candidates = match failover_ok {
        true => [(&plan.regions.secondary, &dr_dsn), (&plan.regions.primary, &primary_dsn)],
        false => [(&plan.regions.primary, &primary_dsn), (&plan.regions.secondary, &dr_dsn)],
    };
    let mut final_primary = None;
    for (region, dsn) in candidates {
        if client::is_primary(dsn).await {
            final_primary = Some((region.clone(), client::present(dsn).await.map_err(DrillError::Broken)?));
            break;
        }
    }
    let present = final_primary.as_ref().map(|(_, p)| p.clone()).unwrap_or_default();
    let facts =
        Facts { fault_at: injected_at, promoted_at, old_primary_region: &plan.regions.primary, present: &present };
    let measured = measure::measure(&attempts, &facts);
    let dr_ready = healthy_at.map(|t| t.duration_since(injected_at).unwrap_or_default());

    if drill.failback && failover_ok {
        say("repairing the primary region");
        action(&environment.actions.repair, &environment).await.map_err(DrillError::Broken)?;
        let failback = run_plan(&plan_path, Direction::Failback, None, run_env, options).await?;
        runs.push(run_report(&options.state_dir, &failback, &plan.failback)?);
        if runs[1].state == RunStatus::Succeeded {
            say("restoring the environment");
            action(&environment.actions.restore, &environment).await.map_err(DrillError::Broken)?;
        }
    }
    let back_on_primary = runs.len() == 2 && runs[1].state == RunStatus::Succeeded;
    let cleanup = heartbeat::drop_table(if back_on_primary { &primary_dsn } else { &dr_dsn }).await;
    let checks = checks(&drill, &environment, cleanup).await;

    let (rto_objective, rpo_objective) = objectives(&drill, &plan);
    let final_region = final_primary.as_ref().map(|(region, _)| region.as_str());
    let objectives = ObjectivesReport {
        rto: evidence::measurement(rto_objective, measured.rto, rto_detail(&measured, &settings, &drill)),
        rpo: evidence::measurement(
            rpo_objective,
            final_region.map(|_| measured.rpo),
            rpo_detail(&measured, final_region),
        ),
        dr_ready_s: dr_ready.map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
    };
    let timing = match (&latency, &environment.delays_log) {
        (Some(latency), Some(log)) => Some(
            latency::timing(latency, Path::new(log), injected_at, measured.rto, plan.objectives.rto)
                .map_err(DrillError::Broken)?,
        ),
        _ => None,
    };
    let check_triples: Vec<_> = checks.iter().map(|c| (c.name.clone(), c.passed, c.detail.clone())).collect();
    let mut outcome = evidence::outcome(&[("RTO", &objectives.rto), ("RPO", &objectives.rpo)], &runs, &check_triples);
    if !measured.split_brain.is_empty() && !drill.allow_split_brain {
        outcome.passed = false;
        outcome.failures.insert(
            0,
            format!(
                "split brain: {} writes acknowledged by the old primary ({}) after the DR database was promoted at {}: \
                 fence the old primary before promoting (pg.fence), or set `allow_split_brain: true`",
                measured.split_brain.len(),
                plan.regions.primary,
                promoted_at.map(rfc3339).unwrap_or_default()
            ),
        );
    }
    if let Some(t) = &timing
        && t.rescaled_met == Some(false)
    {
        outcome.passed = false;
        outcome.failures.push(format!(
            "the RTO rescaled to real time under {} is {:.1} s, over the plan's RTO of {} s: in production this plan would \
             miss its objective",
            t.profile,
            t.rescaled_rto_s.unwrap_or_default(),
            t.plan_rto_s
        ));
    }
    let deviations = evidence::deviations(&runs, &unreachable);
    let remediation = evidence::remediation(&outcome);
    let provenance = evidence::provenance(approval, &plan, path, &environment_path);
    let client_report =
        evidence::client_report(&measured, &attempts, &drill, dns_ttl_label(&drill), promoted_at, final_region);
    let report = DrillReport {
        schema_version: SCHEMA_VERSION,
        drill: drill.name.clone(),
        plan: plan.name.clone(),
        environment: environment.name.clone(),
        host: hostname(),
        provenance,
        started_at: rfc3339(started_at),
        finished_at: rfc3339(clock.now()),
        fault: FaultReport {
            kind: drill.fault.as_str().into(),
            description: drill.fault.describe().into(),
            injected_at: rfc3339(injected_at),
        },
        objectives,
        client: client_report,
        runs,
        checks,
        outcome,
        deviations,
        remediation,
        timing,
    };
    let stamp: String = humantime::format_rfc3339_seconds(started_at).to_string().replace([':', '-'], "");
    let dir = options.reports_dir.join(&drill.name).join(stamp);
    let files = report::write_all(&report, &dir)
        .map_err(|e| DrillError::Broken(format!("cannot write the reports to {}: {e}", dir.display())))?;
    Ok(Finished { report, files })
}

/// Step types whose end is the DR database's promotion.
const PROMOTIONS: &[&str] = &["pg.promote", "aws.rds.promote_replica", "aws.rds.global_failover"];

/// When the failover's promotion step succeeded, to the millisecond the journal's report keeps.
fn promotion_time(failover: &RunReport) -> Option<SystemTime> {
    let step = failover
        .steps
        .iter()
        .find(|s| PROMOTIONS.contains(&s.step_type.as_str()) && s.state == StepStatus::Succeeded)?;
    humantime::parse_rfc3339(step.finished_at.as_deref()?).ok()
}

/// Where the client resolves and writes, from the plan and the environment.
fn client_settings(drill: &DrillDefinition, plan: &Plan, environment: &Environment) -> Result<ClientSettings, String> {
    Ok(ClientSettings {
        interval: drill.client_interval(),
        dns_ttl: drill.client_dns_ttl.map(|d| d.0),
        aws_endpoint: environment.variable("AWS_ENDPOINT_URL")?.to_string(),
        aws_access_key: (
            environment.variable("AWS_ACCESS_KEY_ID")?.to_string(),
            environment.variable("AWS_SECRET_ACCESS_KEY")?.to_string(),
        ),
        zone_id: environment.variable("API_ZONE_ID")?.to_string(),
        record: "api.example.com".into(),
        regions: vec![plan.regions.primary.clone(), plan.regions.secondary.clone()],
        app_url: environment.variable("API_URL")?.to_string(),
    })
}

fn dns_ttl_label(drill: &DrillDefinition) -> String {
    match drill.client_dns_ttl {
        Some(ttl) => format!("{ttl} (client_dns_ttl)"),
        None => format!("the record's TTL ({} s for an alias)", client::ALIAS_TTL.as_secs()),
    }
}

fn rto_detail(m: &Measured, settings: &ClientSettings, drill: &DrillDefinition) -> String {
    let how = format!(
        "{} resolved from Route53 every {} ms and cached for {}",
        settings.record,
        settings.interval.as_millis(),
        dns_ttl_label(drill)
    );
    match (m.rto, m.recovered_at) {
        (Some(_), Some(at)) => {
            format!(
                "from the fault to the first acknowledged client write after the outage (at {}), through {how}",
                rfc3339(at)
            )
        }
        (Some(_), None) => format!("no client write after the fault failed or was lost, through {how}"),
        (None, _) => format!("no client write survived after the outage began, through {how}"),
    }
}

fn rpo_detail(m: &Measured, final_region: Option<&str>) -> String {
    let Some(region) = final_region else {
        return "no database was primary at the end: the lost writes cannot be counted".into();
    };
    match (m.lost_first_at, m.lost_last_at) {
        (Some(first), Some(last)) => format!(
            "{} acknowledged client writes missing from the final primary ({region}), committed from {} to {}; \
             measured from the last surviving write before them to the last lost one",
            m.lost.len(),
            rfc3339(first),
            rfc3339(last)
        ),
        _ => format!("every acknowledged client write ({}) is present in the final primary ({region})", m.acknowledged),
    }
}

/// The objectives the drill is judged by: its own, else the plan's.
fn objectives(drill: &DrillDefinition, plan: &Plan) -> (Duration, Duration) {
    let own = drill.objectives.as_ref();
    let rto = own.and_then(|o| o.rto).map_or(plan.objectives.rto, |d| d.0);
    let rpo = own.and_then(|o| o.rpo).map_or(plan.objectives.rpo, |d| d.0);
    (rto, rpo)
}

fn say(line: &str) {
    crate::errln!("{} == {line}", humantime::format_rfc3339_seconds(crate::clock::wall_now()));
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
    (environment, environment_path, var_args): (&Environment, &Path, &[String]),
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
    command.arg("--environment-vars").arg(environment_path).args(var_args);
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
