//! `drctl plan validate | show | schema`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::vars_args::VarArgs;
use super::{Global, Output, checking_registry};
use crate::clock::human_duration;
use crate::exit_code;
use crate::plan::graph::Graph;
use crate::plan::schema::plan_schema;
use crate::plan::{self, Direction, Plan};
use crate::report::json::print_json_line;

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Check plan files; every problem is reported with file:line:column, the field, and a fix.
    Validate {
        /// Plan files (or names in the plans directory).
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Print a plan's steps in execution order as a graph, with the critical path.
    Show {
        /// The plan file (or a name in the plans directory).
        file: String,
        /// Which step list to show; both when omitted.
        #[arg(long, value_enum)]
        direction: Option<DirectionArg>,
        #[command(flatten)]
        vars: VarArgs,
        /// Forecast the RTO of the critical path from a latency profile (a name in the profiles
        /// directory, such as `aws-typical`, or a path): p50, p95 and an upper bound, step by step.
        #[arg(long, value_name = "PROFILE")]
        forecast: Option<String>,
        /// Where `--forecast NAME` looks for NAME.yaml.
        #[arg(long, value_name = "DIR", default_value = "drills/profiles")]
        profiles_dir: PathBuf,
    },
    /// Print the plans' JSON Schema, as in plans/drctl-plan.schema.json (for editors: put
    /// `# yaml-language-server: $schema=drctl-plan.schema.json` at the top of a plan in plans/).
    Schema,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DirectionArg {
    Failover,
    Failback,
}

pub fn plan(global: &Global, command: PlanCommand) -> u8 {
    match command {
        PlanCommand::Validate { files } => validate(global, &files),
        PlanCommand::Show { file, direction, vars, forecast, profiles_dir } => {
            let forecast = forecast.map(|f| crate::plan::forecast::profile::resolve(&f, &profiles_dir));
            show(global, &file, direction, &vars, forecast.as_deref())
        }
        PlanCommand::Schema => {
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&plan_schema(&checking_registry())).expect("schemas serialize")
            );
            exit_code::OK
        }
    }
}

fn validate(global: &Global, files: &[String]) -> u8 {
    let registry = checking_registry();
    let mut code = exit_code::OK;
    for file in files {
        let path: PathBuf = plan::resolve_path(file, &global.plans_dir);
        match plan::load(&path, &registry) {
            Ok(plan) => match global.output {
                Output::Human => crate::outln!(
                    "{}: ok (plan {}, {} failover steps, {} failback steps)",
                    path.display(),
                    plan.name,
                    plan.failover.len(),
                    plan.failback.len()
                ),
                Output::Json => print_json_line(&json!({ "file": path, "valid": true, "problems": [] })),
            },
            Err(errors) => {
                code = exit_code::PLAN_INVALID;
                match global.output {
                    Output::Human => crate::errln!("{errors}"),
                    Output::Json => {
                        let problems: Vec<_> = errors
                            .diagnostics
                            .iter()
                            .map(|d| json!({ "line": d.pos.line, "column": d.pos.col, "field": d.path, "message": d.message, "help": d.help }))
                            .collect();
                        print_json_line(&json!({ "file": path, "valid": false, "problems": problems }));
                    }
                }
            }
        }
    }
    code
}

fn show(
    global: &Global,
    file: &str,
    direction: Option<DirectionArg>,
    vars: &VarArgs,
    forecast: Option<&std::path::Path>,
) -> u8 {
    let path = plan::resolve_path(file, &global.plans_dir);
    let profile = match forecast.map(crate::plan::forecast::profile::load).transpose() {
        Ok(profile) => profile,
        Err(errors) => {
            crate::errln!("{errors}");
            return exit_code::PLAN_INVALID;
        }
    };
    let plan = match vars.load_plan(&path, &checking_registry()) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let directions = match direction {
        Some(DirectionArg::Failover) => vec![Direction::Failover],
        Some(DirectionArg::Failback) => vec![Direction::Failback],
        None => vec![Direction::Failover, Direction::Failback],
    };
    crate::outln!(
        "plan {} ({} → {}), RTO {}, RPO {}",
        plan.name,
        plan.regions.primary,
        plan.regions.secondary,
        human_duration(plan.objectives.rto),
        human_duration(plan.objectives.rpo)
    );
    crate::out!("{}", plan::vars::render(&plan.vars));
    if plan.state.is_some() || global.state.is_some() {
        match super::state_cmd::open(global, Some(&plan)) {
            Ok(store) => {
                let info = store.describe();
                crate::outln!("state: {} (region {})", info.location, info.region.as_deref().unwrap_or("not set"));
                if let Some(warning) = super::state_cmd::primary_region_warning(&store, &plan) {
                    crate::outln!("warning: {warning}");
                }
            }
            Err(e) => crate::outln!("state: {e}"),
        }
    }
    for direction in directions {
        crate::out!("{}", render_graph(&plan, direction));
        if let Some(profile) = &profile {
            let forecast = crate::plan::forecast::forecast(&plan, direction, profile);
            crate::out!("{}", crate::plan::forecast::render(&forecast, profile));
        }
    }
    exit_code::OK
}

/// The steps of `direction` in waves (steps of a wave run concurrently), and the critical path by
/// timeout budget compared with the RTO.
pub fn render_graph(plan: &Plan, direction: Direction) -> String {
    let steps = plan.steps(direction);
    let graph = Graph::of(steps);
    let order = graph.order().expect("a validated plan has no cycle");
    let waves = graph.waves(&order);
    // The RTO ends at the step marked `marks_recovery`, so that is where the path that matters ends.
    let recovery = steps.iter().rposition(|s| s.marks_recovery);
    let (critical, budget) = graph.critical_path(&order, recovery, |i| steps[i].timeout);
    let mut out = format!("\n{direction}:\n");
    let width = steps.iter().map(|s| s.id.len()).max().unwrap_or(0);
    let type_width = steps.iter().map(|s| s.step_type.len()).max().unwrap_or(0);
    for wave in 0..=waves.iter().copied().max().unwrap_or(0) {
        let members: Vec<usize> = order.iter().copied().filter(|&i| waves[i] == wave).collect();
        let parallel = if members.len() > 1 { format!("  ({} in parallel)", members.len()) } else { String::new() };
        out.push_str(&format!("  wave {}{parallel}\n", wave + 1));
        for i in members {
            let s = &steps[i];
            let mark = if critical.contains(&i) { '*' } else { ' ' };
            let after = if s.after.is_empty() { String::new() } else { format!("  after {}", s.after.join(", ")) };
            let recovery = if s.marks_recovery { "  [RTO ends here]" } else { "" };
            out.push_str(&format!(
                "   {mark} {:width$}  {:type_width$}  timeout {:>7}, retries {}{after}{recovery}\n",
                s.id,
                s.step_type,
                human_duration(s.timeout),
                s.retries
            ));
        }
    }
    let path: Vec<&str> = critical.iter().map(|&i| steps[i].id.as_str()).collect();
    let until = if recovery.is_some() { " to recovery" } else { "" };
    out.push_str(&format!(
        "  critical path{until} (*): {} — worst case {} of timeouts",
        path.join(" → "),
        human_duration(budget)
    ));
    if direction == Direction::Failover && budget > plan.objectives.rto {
        let over = budget.saturating_sub(plan.objectives.rto);
        out.push_str(&format!(
            ", {} over the RTO of {} if every step used its whole timeout",
            human_duration(over),
            human_duration(plan.objectives.rto)
        ));
    }
    out.push('\n');
    out
}
