//! `drctl plan show --forecast PROFILE`: the RTO a plan's critical path should take on the cloud,
//! from a latency profile's p50 and p95 of the slow operations, and honest about the rest: steps
//! the profile knows nothing about count as 0 in the forecast and as their timeout in the upper
//! bound, and what no plan step covers (detection, a person's approval, clients' DNS caches) is
//! named, not guessed.

pub mod profile;

use std::time::Duration;

pub use profile::{Figures, Profile};

use super::graph::Graph;
use super::{Direction, Plan, StepSpec};
use crate::clock::human_duration;

/// How a step's time is forecast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// The profile's figures for this operation.
    Profiled(&'static str),
    /// A fixed time the plan states (`wait`).
    Fixed,
    /// A check assumed to pass at its first probe; at most attempts × interval.
    Check,
    /// A person's decision: not modelled (0 when the run has --yes).
    Approval,
    /// The profile has no figures for it: 0 in the forecast, its timeout in the upper bound.
    NotModelled,
}

impl Basis {
    /// The words the forecast table prints.
    pub fn label(&self) -> String {
        match self {
            Basis::Profiled(op) => format!("profile: {op}"),
            Basis::Fixed => "fixed: the plan's duration".into(),
            Basis::Check => "check: healthy at the first probe (≤ attempts × interval)".into(),
            Basis::Approval => "a person: not modelled (0 with --yes)".into(),
            Basis::NotModelled => "API call, not in the profile: 0 (≤ timeout)".into(),
        }
    }
}

/// One step's forecast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepForecast {
    pub id: String,
    pub step_type: String,
    pub basis: Basis,
    pub p50: Duration,
    pub p95: Duration,
    /// The most it can take: p95 where profiled, else the step's timeout (or attempts × interval).
    pub bound: Duration,
    /// The step's own timeout: a forecast beyond it means the step would fail, not be slow.
    pub timeout: Duration,
}

/// The profile operation a step type's waiting is made of, if any.
pub fn operation_of(step_type: &str) -> Option<&'static str> {
    match step_type {
        t if t.starts_with("aws.route53.") => Some("route53.change"),
        "aws.rds.promote_replica" => Some("rds.promote_read_replica"),
        "aws.rds.create_replica" => Some("rds.create_read_replica"),
        "aws.secrets.put" | "aws.secrets.rotate" => Some("secretsmanager.put_secret_value"),
        "kube.scale" | "kube.set_env" | "kube.rollout_restart" | "kube.rollout_undo" => Some("kube.pod_ready"),
        _ => None,
    }
}

/// One step under `profile`.
pub fn step(spec: &StepSpec, profile: &Profile) -> StepForecast {
    let (basis, p50, p95, bound) = match (operation_of(&spec.step_type), spec.step_type.as_str()) {
        (Some(op), _) if profile.operations.contains_key(op) => {
            let f = profile.operations[op];
            (Basis::Profiled(op), f.p50, f.p95, f.p95)
        }
        (_, "wait") => {
            let d = duration_param(spec, "duration").unwrap_or(spec.timeout).min(spec.timeout);
            (Basis::Fixed, d, d, d)
        }
        (_, "http.check" | "kube.check_cluster" | "pg.check") => {
            let attempts = spec.with.get("attempts").and_then(|n| match n.value {
                super::yaml::Value::Int(a) => u32::try_from(a).ok(),
                _ => None,
            });
            let bound = match (attempts, duration_param(spec, "interval")) {
                (Some(a), Some(i)) => (i * a).min(spec.timeout),
                _ => spec.timeout,
            };
            (Basis::Check, Duration::ZERO, Duration::ZERO, bound)
        }
        (_, "approval") => (Basis::Approval, Duration::ZERO, Duration::ZERO, spec.timeout),
        _ => (Basis::NotModelled, Duration::ZERO, Duration::ZERO, spec.timeout),
    };
    StepForecast {
        id: spec.id.clone(),
        step_type: spec.step_type.clone(),
        basis,
        p50,
        p95,
        bound,
        timeout: spec.timeout,
    }
}

fn duration_param(spec: &StepSpec, key: &str) -> Option<Duration> {
    spec.with.get(key).and_then(|n| n.as_str()).and_then(|s| super::parse_duration(s).ok())
}

/// A direction's forecast: its critical path (by p50) to the recovery step, and the totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forecast {
    pub direction: Direction,
    /// The critical path by p50, in order.
    pub path: Vec<StepForecast>,
    /// The longest path by each figure (they may take different paths).
    pub p50: Duration,
    pub p95: Duration,
    pub bound: Duration,
    pub rto: Duration,
}

/// The forecast of `direction` of `plan` under `profile`.
pub fn forecast(plan: &Plan, direction: Direction, profile: &Profile) -> Forecast {
    let steps = plan.steps(direction);
    let each: Vec<StepForecast> = steps.iter().map(|s| step(s, profile)).collect();
    let graph = Graph::of(steps);
    let order = graph.order().expect("a validated plan has no cycle");
    let recovery = steps.iter().rposition(|s| s.marks_recovery);
    let (path, p50) = graph.critical_path(&order, recovery, |i| each[i].p50);
    let (_, p95) = graph.critical_path(&order, recovery, |i| each[i].p95);
    let (_, bound) = graph.critical_path(&order, recovery, |i| each[i].bound);
    Forecast {
        direction,
        path: path.into_iter().map(|i| each[i].clone()).collect(),
        p50,
        p95,
        bound,
        rto: plan.objectives.rto,
    }
}

/// The forecast as the terminal shows it.
pub fn render(f: &Forecast, profile: &Profile) -> String {
    let until = f.path.last().map(|s| format!(" to recovery ({})", s.id)).unwrap_or_default();
    let mut out = format!(
        "\nRTO forecast of the {}{until} under profile {} ({}):\n",
        f.direction,
        profile.name,
        profile.path.display()
    );
    let id_w = f.path.iter().map(|s| s.id.len()).max().unwrap_or(4).max(4);
    let basis_w = f.path.iter().map(|s| s.basis.label().chars().count()).max().unwrap_or(5);
    out.push_str(&format!("  {:id_w$}  {:basis_w$}  {:>9}  {:>9}  {:>9}\n", "step", "model", "p50", "p95", "bound"));
    for s in &f.path {
        let label = s.basis.label();
        let pad = basis_w - label.chars().count();
        out.push_str(&format!(
            "  {:id_w$}  {label}{}  {:>9}  {:>9}  {:>9}\n",
            s.id,
            " ".repeat(pad),
            short(s.p50),
            short(s.p95),
            short(s.bound)
        ));
    }
    for s in f.path.iter().filter(|s| s.p95 > s.timeout) {
        let which = if s.p50 > s.timeout { "p50" } else { "p95" };
        out.push_str(&format!(
            "  ! {}: its {which} ({}) is beyond its timeout of {}: at that speed the step fails instead of finishing\n",
            s.id,
            human_duration(if which == "p50" { s.p50 } else { s.p95 }),
            human_duration(s.timeout)
        ));
    }
    let verdict = |d: Duration| match d <= f.rto {
        true => format!("within, {} to spare", human_duration(f.rto - d)),
        false => format!("OVER by {}", human_duration(d - f.rto)),
    };
    out.push_str(&format!(
        "  forecast p50 {}: {} the RTO of {}\n",
        human_duration(f.p50),
        verdict(f.p50),
        human_duration(f.rto)
    ));
    out.push_str(&format!("  forecast p95 {}: {}\n", human_duration(f.p95), verdict(f.p95)));
    out.push_str(&format!(
        "  upper bound {} (p95 where profiled, each other step's timeout or attempts × interval): {}\n",
        human_duration(f.bound),
        verdict(f.bound)
    ));
    out.push_str(
        "  modelled: the profile's slow operations on the critical path (each step waits for one), the plan's fixed waits.\n  \
         not modelled (0 here): API calls the profile has no figures for, checks beyond their first probe, a person's \
         approval, the time before the failover starts (detection, paging, the decision) and clients' DNS caches after \
         the record moves (up to its TTL).\n",
    );
    out
}

/// `6m 16s`, `0s`, `1h 02m`.
fn short(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    human_duration(d)
}

#[cfg(test)]
mod tests;
