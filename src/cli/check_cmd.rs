//! `drctl check`: is the plan ready to run now? Read-only; exits 0 ready, 1 not ready, 2 usage,
//! 3 invalid plan. `--serve` keeps checking and exposes the gauges on `/metrics`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Global, Output};
use crate::exit_code;
use crate::plan::{self, Direction, Plan};
use crate::readiness::{self, Options, Report, metrics, render};
use crate::step::Registry;
use crate::steps::{self, RefuseWithoutTerminal, Services};

/// Which of the plan's directions to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    Failover,
    Failback,
    Both,
}

/// Options of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plan: a name in the plans directory (`us-west-2` → plans/us-west-2.yaml) or a path.
    #[arg(long)]
    plan: String,
    /// The direction(s) to check.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    direction: Which,
    /// Warnings make the plan not ready (exit 1) too.
    #[arg(long)]
    strict: bool,
    /// The oldest the plan's last passing drill may be (`35d`), or `off` not to check.
    #[arg(long, value_name = "AGE", default_value = "35d", value_parser = parse_age)]
    max_drill_age: DrillAge,
    /// Where drill reports are (default: STATE_DIR/drills).
    #[arg(long)]
    reports_dir: Option<PathBuf>,
    /// Show the checks that passed too, not only problems and warnings.
    #[arg(long)]
    all: bool,
    /// Also write the findings as JUnit XML to this file (`-`: standard output instead of the table).
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Write the gauges here for node_exporter's textfile collector (atomically; name it *.prom).
    #[arg(long, value_name = "PATH")]
    metrics_file: Option<PathBuf>,
    /// Keep checking, and serve the gauges on http://ADDR/metrics (such as 0.0.0.0:9464).
    #[arg(long, value_name = "ADDR")]
    serve: Option<std::net::SocketAddr>,
    /// With --serve: how often to check.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::plan::parse_duration, requires = "serve")]
    every: Duration,
    /// Send every AWS call to this endpoint (moto, LocalStack).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    #[command(flatten)]
    vars: super::vars_args::VarArgs,
}

/// `--max-drill-age`: an age, or `None` for `off`.
#[derive(Debug, Clone, Copy)]
struct DrillAge(Option<Duration>);

fn parse_age(text: &str) -> Result<DrillAge, String> {
    if text == "off" {
        return Ok(DrillAge(None));
    }
    humantime::parse_duration(text)
        .map(|age| DrillAge(Some(age)))
        .map_err(|e| format!("`{text}`: {e}; give an age such as 35d, or off"))
}

/// Runs `drctl check`.
pub async fn check(global: &Global, args: CheckArgs) -> u8 {
    let path = plan::resolve_path(&args.plan, &global.plans_dir);
    let services = Services {
        http: steps::http_client(),
        approver: Arc::new(RefuseWithoutTerminal),
        aws: Arc::new(crate::aws::Aws::new(args.endpoint_url.clone())),
        kube: Arc::default(),
        accept_data_loss: None,
    };
    let registry = steps::builtin(&services);
    let plan = match args.vars.load_plan(&path, &registry) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let reports = match super::drill_cmd::reports(global, args.reports_dir.clone(), Some(&plan)) {
        Ok(reports) => reports,
        Err(code) => return code,
    };
    let options = Options {
        directions: match args.direction {
            Which::Failover => vec![Direction::Failover],
            Which::Failback => vec![Direction::Failback],
            Which::Both => vec![Direction::Failover, Direction::Failback],
        },
        reports,
        state_dir: global.state_dir.clone(),
        max_drill_age: args.max_drill_age.0,
        endpoint_url: args.endpoint_url.clone(),
    };
    match args.serve {
        Some(addr) => serve(global, &args, &plan, &registry, &options, addr).await,
        None => {
            let report = readiness::check(&plan, &registry, &options).await;
            publish(global, &args, &report)
        }
    }
}

/// Prints the report and writes its files; the exit code it calls for.
fn publish(global: &Global, args: &CheckArgs, report: &Report) -> u8 {
    let mut code = if report.ready(args.strict) { exit_code::OK } else { exit_code::RUN_FAILED };
    match (&args.junit, global.output) {
        (Some(path), _) if path.as_os_str() == "-" => crate::out!("{}", render::junit(report, args.strict)),
        (_, Output::Json) => crate::outln!("{}", render::json(report, args.strict)),
        (_, Output::Human) => crate::out!("{}", render::table(report, args.strict, args.all)),
    }
    if let Some(path) = args.junit.as_ref().filter(|p| p.as_os_str() != "-")
        && let Err(e) = std::fs::write(path, render::junit(report, args.strict))
    {
        crate::errln!("error: cannot write the JUnit report {}: {e}", path.display());
        code = exit_code::STATE_ERROR;
    }
    if let Some(path) = &args.metrics_file
        && let Err(e) = metrics::write_file(path, &metrics::render(report))
    {
        crate::errln!("error: cannot write the metrics file {}: {e}", path.display());
        code = exit_code::STATE_ERROR;
    }
    code
}

/// Checks every `--every`, serving the latest gauges on `/metrics`, until SIGTERM or Ctrl-C.
async fn serve(
    global: &Global,
    args: &CheckArgs,
    plan: &Plan,
    registry: &Registry,
    options: &Options,
    addr: std::net::SocketAddr,
) -> u8 {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            crate::errln!("error: cannot listen on {addr}: {e}; pick a free address with --serve");
            return exit_code::USAGE;
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    crate::errln!(
        "serving readiness gauges on http://{bound}/metrics, checking every {}",
        crate::clock::human_duration(args.every)
    );
    let latest = Arc::new(Mutex::new(String::new()));
    let server = tokio::spawn(answer_scrapes(listener, latest.clone()));
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let report = readiness::check(plan, registry, options).await;
        *latest.lock().unwrap_or_else(|e| e.into_inner()) = metrics::render(&report);
        publish(global, args, &report);
        tokio::select! {
            _ = tokio::time::sleep(args.every) => {}
            _ = &mut stop => break,
        }
    }
    server.abort();
    exit_code::OK
}

/// Answers every HTTP request: `/metrics` with the latest gauges, anything else 404.
async fn answer_scrapes(listener: tokio::net::TcpListener, latest: Arc<Mutex<String>>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        let latest = latest.clone();
        tokio::spawn(async move {
            let mut request = vec![0u8; 4096];
            let n = stream.read(&mut request).await.unwrap_or(0);
            let line = String::from_utf8_lossy(&request[..n]);
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = if path == "/metrics" || path.starts_with("/metrics?") {
                let text = latest.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if text.is_empty() {
                    ("503 Service Unavailable", "the first check is running\n".to_string())
                } else {
                    ("200 OK", text)
                }
            } else {
                ("404 Not Found", "only /metrics is served\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// `failover --dry-run`'s preflight: the same checks as `drctl check` of that direction (without
/// the drill age). Prints what is not ok and a verdict; whether the run could succeed.
pub async fn dry_run_preflight(
    global: &Global,
    plan: &Plan,
    direction: Direction,
    registry: &Registry,
    endpoint_url: Option<String>,
) -> bool {
    let options = Options {
        directions: vec![direction],
        reports: crate::drill::report::history::Reports::Dir(global.state_dir.join("drills")),
        state_dir: global.state_dir.clone(),
        max_drill_age: None,
        endpoint_url,
    };
    let report = readiness::check(plan, registry, &options).await;
    let ready = report.ready(false);
    match global.output {
        Output::Json => {
            crate::outln!("{}", serde_json::json!({ "event": "preflight", "report": render::json(&report, false) }))
        }
        Output::Human => {
            crate::outln!("preflight (read-only, the checks of `drctl check --direction {direction}`):");
            crate::out!("{}", render::table(&report, false, false));
            if ready {
                crate::outln!("preflight: ready");
            } else {
                crate::outln!(
                    "preflight: NOT READY: the run could not succeed as things stand; fix the problems above"
                );
            }
        }
    }
    ready
}

/// The unset variables step `step_id` names, as one message ("" when all are set): a dry run shows
/// them as errors instead of rendering `<env.NAME>` into the step's description.
pub fn unset_variables(plan: &Plan, direction: Direction, step_id: &str) -> String {
    let Some(spec) = plan.steps(direction).iter().find(|s| s.id == step_id) else { return String::new() };
    let unset = readiness::steps::unset_variables(&spec.with);
    unset.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; ")
}
