//! The `drctl` command line.

mod approver;
mod drill_cmd;
mod explain;
mod plan_cmd;
mod run_cmd;
mod status;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::exit_code;

/// drctl: disaster-recovery failover and failback, journaled and resumable, with measured RTO.
#[derive(Debug, Parser)]
#[command(name = "drctl", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: Global,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Where runs' journals and plan locks are kept.
    #[arg(long, global = true, env = "DRCTL_STATE_DIR", default_value = ".drctl")]
    state_dir: PathBuf,
    /// Where `--plan NAME` looks for NAME.yaml.
    #[arg(long, global = true, env = "DRCTL_PLANS_DIR", default_value = "plans")]
    plans_dir: PathBuf,
    /// `human`: progress and tables; `json`: one JSON object per line on standard output.
    #[arg(long, global = true, value_enum, default_value_t = Output::Human)]
    output: Output,
    /// More log detail on standard error (-v: info, -vv: debug, -vvv: trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fail over to the plan's secondary region (runs the plan's `failover` steps).
    Failover(run_cmd::RunArgs),
    /// Return to the primary region (runs the plan's `failback` steps).
    Failback(run_cmd::RunArgs),
    /// Continue an interrupted, crashed or failed run from its journal.
    Resume(run_cmd::ResumeArgs),
    /// Give up on an unfinished run so its plan can run afresh.
    Abandon(run_cmd::AbandonArgs),
    /// List runs, or show one run's steps with their times.
    Status(status::StatusArgs),
    /// Check, show or describe plan files.
    #[command(subcommand)]
    Plan(plan_cmd::PlanCommand),
    /// Run a DR drill against an emulated environment, or show past drills.
    #[command(subcommand)]
    Drill(drill_cmd::DrillCommand),
    /// Describe the step types: one type's parameters, defaults, example and outputs.
    Explain(explain::ExplainArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Runs drctl with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit_code::USAGE } else { exit_code::OK });
        }
    };
    init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit_code::STATE_ERROR);
        }
    };
    let code = runtime.block_on(dispatch(cli));
    // Step tasks still blocked on a terminal read must not keep the process alive.
    runtime.shutdown_background();
    ExitCode::from(code)
}

async fn dispatch(cli: Cli) -> u8 {
    let global = cli.global;
    match cli.command {
        Command::Failover(args) => run_cmd::run(&global, args, crate::plan::Direction::Failover).await,
        Command::Failback(args) => run_cmd::run(&global, args, crate::plan::Direction::Failback).await,
        Command::Resume(args) => run_cmd::resume(&global, args).await,
        Command::Abandon(args) => run_cmd::abandon(&global, args),
        Command::Status(args) => status::status(&global, args),
        Command::Plan(command) => plan_cmd::plan(&global, command),
        Command::Drill(command) => drill_cmd::drill(&global, command).await,
        Command::Explain(args) => explain::explain(&global, args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "drctl", &mut std::io::stdout());
            exit_code::OK
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "drctl=info,warn",
        2 => "drctl=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

/// Whether standard error is a terminal a person watches.
fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// Parses `--incident-start`: RFC 3339 (`2026-11-22T07:00:00Z`) or a time ago (`20m`).
fn parse_incident_start(text: &str) -> Result<SystemTime, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t);
    }
    let ago = text.strip_suffix(" ago").unwrap_or(text);
    match crate::plan::parse_duration(ago) {
        Ok(d) => SystemTime::now().checked_sub(d).ok_or_else(|| "too long ago".to_string()),
        Err(_) => Err(format!("`{text}` is neither an RFC 3339 time (2026-11-22T07:00:00Z) nor a time ago (20m)")),
    }
}

/// Step types for reading plans when nothing will run, so no approval is ever asked.
fn checking_registry() -> crate::step::Registry {
    crate::steps::builtin(&crate::steps::Services::for_checking())
}
