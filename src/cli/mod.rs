//! The `drctl` command line.

mod approver;
mod check_cmd;
mod drill_cmd;
mod explain;
mod plan_cmd;
mod run_cmd;
mod state_cmd;
mod status;
mod vars_args;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

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
    /// Shared state: `s3://BUCKET/PREFIX` (or a directory). Overrides a plan's `state:` and --state-dir.
    #[arg(long, global = true, env = "DRCTL_STATE", value_name = "LOCATION")]
    state: Option<String>,
    /// How long the holder of a plan lock on S3 may go without renewing its lease (default 60s).
    #[arg(long, global = true, env = "DRCTL_STATE_LEASE", value_name = "DURATION", value_parser = crate::plan::parse_duration)]
    state_lease: Option<Duration>,
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
    /// Is the plan ready to run now? Every step's read-only preflight and the plan's checks.
    Check(check_cmd::CheckArgs),
    /// Check, show or describe plan files.
    #[command(subcommand)]
    Plan(plan_cmd::PlanCommand),
    /// Run a DR drill against an emulated environment, or show past drills.
    #[command(subcommand)]
    Drill(drill_cmd::DrillCommand),
    /// Where runs and locks are kept: show it, or migrate it between a directory and S3.
    #[command(subcommand)]
    State(state_cmd::StateCommand),
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
            crate::errln!("error: cannot start the async runtime: {e}");
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
        Command::Check(args) => check_cmd::check(&global, args).await,
        Command::Plan(command) => plan_cmd::plan(&global, command),
        Command::Drill(command) => drill_cmd::drill(&global, command).await,
        Command::Explain(args) => explain::explain(&global, args),
        Command::State(command) => state_cmd::state(&global, command),
        Command::Completions { shell } => {
            // Generated whole, then written quietly: clap_complete panics when its writer fails.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "drctl", &mut script);
            crate::report::console::Stream::Out.write_bytes(&script);
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
    // Colours only for a person at a terminal; a closed stderr drops log lines instead of panicking.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::report::console::QuietStderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Whether standard error is a terminal a person watches.
fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// How far ahead of this machine's clock an `--incident-start` may be and still count (as now):
/// the clock of the system that saw the outage may run a little ahead of this one.
const INCIDENT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Parses `--incident-start`: RFC 3339 (`2026-11-22T07:00:00Z`) or a time ago (`20m`). The time must
/// be after 1970 and not in the future; up to [`INCIDENT_CLOCK_SKEW`] ahead is taken as now.
fn parse_incident_start(text: &str) -> Result<SystemTime, String> {
    incident_start_at(text, crate::clock::wall_now())
}

fn incident_start_at(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let start = match humantime::parse_rfc3339_weak(text) {
        Ok(t) => t,
        Err(humantime::TimestampError::OutOfRange) => {
            return Err(format!(
                "`{text}` is out of range: the year must be 1970 or later, and the month, day and time real"
            ));
        }
        Err(humantime::TimestampError::InvalidFormat | humantime::TimestampError::InvalidDigit) => {
            let ago = text.strip_suffix(" ago").unwrap_or(text);
            // humantime's own reading, not the plan's durations: their limits are for steps.
            let Ok(ago) = humantime::parse_duration(ago.trim()) else {
                return Err(format!(
                    "`{text}` is neither an RFC 3339 time (2026-11-22T07:00:00Z) nor a time ago (20m)"
                ));
            };
            match now.checked_sub(ago).filter(|t| *t >= SystemTime::UNIX_EPOCH) {
                Some(t) => t,
                None => return Err(format!("`{text}` ago is before 1970; give how long ago the outage began")),
            }
        }
    };
    match start.duration_since(now) {
        Ok(ahead) if ahead > INCIDENT_CLOCK_SKEW => Err(format!(
            "`{text}` is {} in the future (this machine's clock says {}); the incident start is when the outage \
             began. Times without `Z` or an offset are UTC",
            crate::clock::human_duration(ahead),
            humantime::format_rfc3339_seconds(now)
        )),
        // Within the allowed skew: the outage began now, as far as this machine can tell.
        Ok(_) => Ok(now),
        Err(_) => Ok(start),
    }
}

/// Step types for reading plans when nothing will run, so no approval is ever asked.
fn checking_registry() -> crate::step::Registry {
    crate::steps::builtin(&crate::steps::Services::for_checking())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn incident_start_is_a_time_or_a_time_ago() {
        let now = at("2026-11-22T07:30:00Z");
        assert_eq!(incident_start_at("2026-11-22T07:00:00Z", now), Ok(at("2026-11-22T07:00:00Z")));
        assert_eq!(incident_start_at("20m", now), Ok(at("2026-11-22T07:10:00Z")));
        assert_eq!(incident_start_at("1h ago", now), Ok(at("2026-11-22T06:30:00Z")));
        let e = incident_start_at("yesterday", now).unwrap_err();
        assert!(e.contains("neither an RFC 3339 time"), "{e}");
    }

    #[test]
    fn incident_start_before_1970_is_refused_saying_so() {
        let now = at("2026-11-22T07:30:00Z");
        for text in ["1000y", "99999999h", "57years"] {
            let e = incident_start_at(text, now).unwrap_err();
            assert_eq!(e, format!("`{text}` ago is before 1970; give how long ago the outage began"));
        }
        let e = incident_start_at("0001-01-01T00:00:00Z", now).unwrap_err();
        assert!(e.contains("the year must be 1970 or later"), "{e}");
    }

    #[test]
    fn incident_start_in_the_future_is_refused_beyond_the_clock_skew() {
        let now = at("2026-11-22T07:30:00Z");
        let e = incident_start_at("2026-11-22T08:00:00Z", now).unwrap_err();
        assert!(e.contains("is 30m 00s in the future (this machine's clock says 2026-11-22T07:30:00Z)"), "{e}");
        assert_eq!(incident_start_at("2026-11-22T07:30:45Z", now), Ok(now), "within the skew counts as now");
        assert!(incident_start_at("2026-11-22T07:31:01Z", now).is_err());
    }
}
