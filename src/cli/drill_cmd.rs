//! `drctl drill run` and `drctl drill history`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Global;
use crate::drill::report::history::Reports;
use crate::drill::report::model::{DrillReport, Measurement};
use crate::drill::runner::{self, DrillError, DrillOptions};
use crate::exit_code;

/// Drills: a plan run against an emulated environment, with a fault, measured RTO and RPO, and
/// evidence.
#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Run a drill (drills/NAME.yaml): inject its fault, fail over, measure RTO and RPO, fail back,
    /// check, and write the reports. Exits 1 when an objective is missed or a check fails.
    Run(RunArgs),
    /// Past drills' RTO and RPO, oldest first, with their trend.
    History(HistoryArgs),
    /// Print the environment's `up` flags for a drill's latency profile (for localstack/drill.sh).
    #[command(hide = true)]
    UpFlags(UpFlagsArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The drill: a name in the drills directory, or a path to its YAML.
    drill: String,
    /// Where drill definitions are found by name.
    #[arg(long, default_value = "drills")]
    drills_dir: PathBuf,
    /// Let the drill touch this non-local endpoint (by the environment's name for it: `aws`,
    /// `kubernetes.dr`, `postgres.primary`...). Without it, anything but 127.0.0.1 is refused.
    #[arg(long = "allow-live", value_name = "NAME")]
    allow_live: Vec<String>,
    /// Where reports go (default: STATE_DIR/drills).
    #[arg(long)]
    reports_dir: Option<PathBuf>,
    /// The environment's description (`env.json`), instead of the drill's `environment`.
    #[arg(long, value_name = "ENV_JSON")]
    environment: Option<PathBuf>,
    /// Override a plan variable in the drill's runs (repeatable; wins over the environment's vars).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    var: Vec<String>,
    /// Override plan variables in the drill's runs from a YAML file of `NAME: VALUE`.
    #[arg(long = "vars", value_name = "FILE")]
    vars_file: Option<PathBuf>,
    /// The latency profile the environment applies (instead of the drill's `profile:`): a name
    /// under --profiles-dir or a path. The environment must have been started with it.
    #[arg(long, value_name = "PROFILE")]
    profile: Option<String>,
    /// How fast the profile's delays run (instead of the drill's `time_scale:`), such as 0.02.
    #[arg(long, value_name = "X")]
    time_scale: Option<f64>,
    /// Sample the delays with this seed (instead of the drill's `seed:`).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Where `--profile NAME` and the drill's `profile:` look for NAME.yaml.
    #[arg(long, value_name = "DIR", default_value = "drills/profiles")]
    profiles_dir: PathBuf,
}

/// `drctl drill up-flags DRILL`: the `localstack/env/up` flags that apply the drill's latency
/// profile (none without one), for localstack/drill.sh.
#[derive(Debug, Args)]
pub struct UpFlagsArgs {
    drill: String,
    #[arg(long, default_value = "drills")]
    drills_dir: PathBuf,
    #[arg(long)]
    profile: Option<String>,
    #[arg(long)]
    time_scale: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, default_value = "drills/profiles")]
    profiles_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this drill.
    drill: Option<String>,
    /// Where reports are (default: STATE_DIR/drills).
    #[arg(long)]
    reports_dir: Option<PathBuf>,
}

/// Runs a drill subcommand; returns the exit code.
pub async fn drill(global: &Global, command: DrillCommand) -> u8 {
    match command {
        DrillCommand::Run(args) => run(global, args).await,
        DrillCommand::UpFlags(args) => up_flags(&args),
        DrillCommand::History(args) => {
            let reports = match reports(global, args.reports_dir, None) {
                Ok(reports) => reports,
                Err(code) => return code,
            };
            match reports.history(args.drill.as_deref()) {
                Ok(text) => {
                    crate::out!("{text}");
                    exit_code::OK
                }
                Err(e) => {
                    crate::errln!("error: cannot read the drill reports in {}: {e}", reports.describe());
                    exit_code::STATE_ERROR
                }
            }
        }
    }
}

/// Where drill reports are read: `--reports-dir`, else the state store's `drills/` when it is on
/// S3, else the local state directory's `drills/` (`--state DIR` or STATE_DIR). `Err` holds the
/// exit code (the store's location is bad).
pub fn reports(global: &Global, reports_dir: Option<PathBuf>, plan: Option<&crate::plan::Plan>) -> Result<Reports, u8> {
    if let Some(dir) = reports_dir {
        return Ok(Reports::Dir(dir));
    }
    let store = super::state_cmd::open_or_exit(global, plan)?;
    let info = store.describe();
    Ok(match info.kind {
        "s3" => Reports::Store(store),
        _ => Reports::Dir(PathBuf::from(info.location).join("drills")),
    })
}

/// Saves a finished drill's report files to the state store when it is on S3 (they are written
/// locally first, as always): `drills/DRILL/STAMP/NAME`, each created once.
fn save_to_store(global: &Global, finished: &runner::Finished) -> Result<(), u8> {
    let Reports::Store(store) = reports(global, None, None)? else { return Ok(()) };
    for file in &finished.files {
        let stamp = file.parent().and_then(|d| d.file_name()).and_then(|s| s.to_str()).unwrap_or_default();
        let name = file.file_name().and_then(|s| s.to_str()).unwrap_or_default();
        let path = format!("{}/{stamp}/{name}", finished.report.drill);
        let saved = std::fs::read(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))
            .and_then(|body| store.save_drill_file(&path, &body).map_err(|e| e.to_string()));
        if let Err(e) = saved {
            crate::errln!("error: the drill's reports were written locally but not saved to the state store: {e}");
            return Err(exit_code::STATE_ERROR);
        }
    }
    crate::outln!("saved to {}/drills/{}/", store.describe().location.trim_end_matches('/'), finished.report.drill);
    Ok(())
}

async fn run(global: &Global, args: RunArgs) -> u8 {
    let path = crate::drill::definition::resolve(&args.drill, &args.drills_dir);
    let drctl = match std::env::current_exe() {
        Ok(path) => path,
        Err(e) => {
            crate::errln!("error: cannot find the drctl binary to run the plan with: {e}");
            return exit_code::STATE_ERROR;
        }
    };
    let mut overrides = crate::plan::vars::Overrides::default();
    let mut var_args = Vec::new();
    if let Some(file) = &args.vars_file {
        var_args.extend(["--vars".to_string(), file.display().to_string()]);
    }
    for pair in &args.var {
        var_args.extend(["--var".to_string(), pair.clone()]);
    }
    let read = args.vars_file.as_deref().map_or(Ok(()), |f| overrides.file(f));
    if let Err(e) = read.and_then(|()| overrides.command_line(&args.var)) {
        crate::errln!("error: {e}");
        return exit_code::PLAN_INVALID;
    }
    let options = DrillOptions {
        state_dir: global.state_dir.clone(),
        plans_dir: global.plans_dir.clone(),
        reports_dir: args.reports_dir.unwrap_or_else(|| global.state_dir.join("drills")),
        allow_live: args.allow_live,
        environment: args.environment,
        drctl,
        overrides,
        var_args,
        latency: runner::LatencyArgs {
            profile: args.profile,
            time_scale: args.time_scale,
            seed: args.seed,
            profiles_dir: args.profiles_dir,
        },
    };
    match runner::run(&path, &options).await {
        Ok(finished) => {
            crate::outln!("{}", summary(&finished.report));
            crate::outln!("reports:");
            for file in &finished.files {
                crate::outln!("  {}", file.display());
            }
            if let Err(code) = save_to_store(global, &finished) {
                return code;
            }
            if finished.report.outcome.passed { exit_code::OK } else { exit_code::RUN_FAILED }
        }
        Err(DrillError::Invalid(message)) => {
            crate::errln!("error: {message}");
            exit_code::PLAN_INVALID
        }
        Err(DrillError::Fenced(refused)) => {
            crate::errln!("error: the safety fence refused to run the drill {}:", path.display());
            for line in refused {
                crate::errln!("  {line}");
            }
            exit_code::REFUSED
        }
        Err(DrillError::Broken(message)) => {
            crate::errln!("error: the drill stopped: {message}");
            crate::errln!("  the environment may be half-way; reset it with localstack/env/down && localstack/env/up");
            exit_code::RUN_FAILED
        }
    }
}

fn up_flags(args: &UpFlagsArgs) -> u8 {
    let path = crate::drill::definition::resolve(&args.drill, &args.drills_dir);
    let latency = crate::drill::definition::load(&path).and_then(|drill| {
        let wanted = runner::LatencyArgs {
            profile: args.profile.clone(),
            time_scale: args.time_scale,
            seed: args.seed,
            profiles_dir: args.profiles_dir.clone(),
        };
        runner::wanted_latency(&drill, &wanted)
    });
    match latency {
        Ok(latency) => {
            crate::outln!("{}", latency.map(|l| l.up_flags().join(" ")).unwrap_or_default());
            exit_code::OK
        }
        Err(e) => {
            crate::errln!("error: {e}");
            exit_code::PLAN_INVALID
        }
    }
}

/// The verdict, the objectives table and the failures.
pub fn summary(report: &DrillReport) -> String {
    let verdict = if report.outcome.passed { "PASSED" } else { "FAILED" };
    let mut text = format!("\ndrill {} (plan {}, fault {}): {verdict}\n", report.drill, report.plan, report.fault.kind);
    text.push_str("  objective  target      measured    result\n");
    for (name, m) in [("RTO", &report.objectives.rto), ("RPO", &report.objectives.rpo)] {
        text.push_str(&format!("  {name:9}  {:<10}  {:<10}  {}\n", seconds(m.objective_s), measured(m), result(m)));
    }
    let c = &report.client;
    text.push_str(&format!(
        "  client writes: {} attempted, {} acknowledged, {} lost, {} split brain\n",
        c.attempts, c.acknowledged, c.lost_writes, c.split_brain_writes
    ));
    if let Some(t) = &report.timing {
        let rescaled = t.rescaled_rto_s.map_or("-".into(), seconds);
        let met = match t.rescaled_met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        text.push_str(&format!(
            "  RTO rescaled to real time: {rescaled} against the plan's {} ({met}); measured {} with {} of emulated delays \
             at time scale {} ({})\n",
            seconds(t.plan_rto_s),
            t.measured_rto_s.map_or("-".into(), seconds),
            seconds(t.emulated_s),
            t.time_scale,
            t.profile
        ));
        text.push_str("  (rescaled: the emulated delays stretched by 1/scale, everything else as measured)\n");
    }
    let passed = report.checks.iter().filter(|c| c.passed).count();
    text.push_str(&format!("  checks: {passed} of {} passed\n", report.checks.len()));
    for failure in &report.outcome.failures {
        text.push_str(&format!("  ✗ {failure}\n"));
    }
    text
}

fn seconds(s: f64) -> String {
    format!("{s:.3} s").replace(".000 s", " s")
}

fn measured(m: &Measurement) -> String {
    m.measured_s.map_or("-".into(), seconds)
}

fn result(m: &Measurement) -> String {
    match (m.met, m.measured_s) {
        (Some(true), _) => "met".into(),
        (Some(false), Some(v)) => format!("MISSED by {}", seconds(v - m.objective_s)),
        _ => "not measured".into(),
    }
}
