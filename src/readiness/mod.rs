//! Readiness (`drctl check`): a plan evaluated against the live world, read-only. Every step's
//! [`Step::preflight`](crate::step::Step::preflight) runs concurrently, with plan-level checks on
//! top (credentials, contexts, variables, DNS TTL and timeouts against the RTO, the state store,
//! the last passing drill). The result is a [`Report`]: rendered as a table, JSON or JUnit
//! ([`render`]), or Prometheus gauges ([`metrics`]).

pub mod metrics;
pub mod plan_checks;
pub mod render;
pub mod steps;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use futures::future::join_all;

use crate::plan::{Direction, Plan};
use crate::step::{Finding, Registry, Severity};

/// How long one check may take before it counts as a problem (an API that hangs is not ready).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// The `step` label of findings about the plan as a whole.
pub const PLAN_STEP: &str = "plan";
/// The `direction` label of findings that hold for both directions.
pub const ANY_DIRECTION: &str = "any";

/// What `drctl check` evaluates, beyond the plan.
#[derive(Debug, Clone)]
pub struct Options {
    pub directions: Vec<Direction>,
    /// Where drill reports are (`drctl drill history` reads the same).
    pub reports: crate::drill::report::history::Reports,
    /// The state store (journals and locks).
    pub state_dir: PathBuf,
    /// The oldest a last passing drill may be; `None`: not checked (`--max-drill-age off`).
    pub max_drill_age: Option<Duration>,
    /// `--endpoint-url`, else the plan's or AWS_ENDPOINT_URL.
    pub endpoint_url: Option<String>,
}

/// One finding, placed: which direction and step it is about.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Item {
    /// `failover`, `failback`, or [`ANY_DIRECTION`].
    pub direction: String,
    /// The step's id, or [`PLAN_STEP`].
    pub step: String,
    /// The step's type (empty for plan-level findings).
    pub step_type: String,
    /// How long the step's checks took (the plan's checks: all of them together), in seconds.
    pub duration_s: f64,
    #[serde(flatten)]
    pub finding: Finding,
}

/// The last passing drill of a plan (for `drctl_last_drill_timestamp_seconds`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LastDrill {
    pub drill: String,
    /// When it started, seconds since the Unix epoch.
    pub started_at_s: f64,
}

/// Everything one `drctl check` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub plan: String,
    pub directions: Vec<Direction>,
    pub items: Vec<Item>,
    pub last_drills: Vec<LastDrill>,
    /// Wall time of the whole check.
    pub duration_s: f64,
    /// When it finished, seconds since the Unix epoch.
    pub checked_at_s: f64,
}

impl Report {
    /// How many findings have `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.items.iter().filter(|i| i.finding.severity == severity).count()
    }

    /// Ready: no problem (and, with `strict`, no warning either).
    pub fn ready(&self, strict: bool) -> bool {
        self.count(Severity::Problem) == 0 && (!strict || self.count(Severity::Warning) == 0)
    }

    /// Ready in one direction (plan-wide findings count for both).
    pub fn ready_in(&self, direction: Direction, strict: bool) -> bool {
        let name = direction.to_string();
        self.items.iter().filter(|i| i.direction == name || i.direction == ANY_DIRECTION).all(|i| {
            match i.finding.severity {
                Severity::Ok => true,
                Severity::Warning => !strict,
                Severity::Problem => false,
            }
        })
    }
}

/// Runs every check of `plan` at once and gathers the findings, plan-level ones first, then each
/// direction's steps in plan order.
pub async fn check(plan: &Plan, registry: &Registry, options: &Options) -> Report {
    let started = tokio::time::Instant::now();
    let plan_level = async {
        let started = tokio::time::Instant::now();
        let mut items = plan_checks::all(plan, options).await;
        let duration_s = started.elapsed().as_secs_f64();
        items.iter_mut().for_each(|i| i.duration_s = duration_s);
        items
    };
    let per_step = options.directions.iter().map(|&d| steps::all(plan, d, registry));
    let (plan_items, step_items) = futures::join!(plan_level, join_all(per_step));
    let mut items = plan_items;
    items.extend(step_items.into_iter().flatten());
    let last_drills = plan_checks::last_passing_drills(plan, &options.reports).unwrap_or_default();
    Report {
        plan: plan.name.clone(),
        directions: options.directions.clone(),
        items,
        last_drills,
        duration_s: started.elapsed().as_secs_f64(),
        checked_at_s: crate::clock::wall_now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
    }
}

/// `future`, or a problem finding if it takes longer than [`CHECK_TIMEOUT`].
pub(crate) async fn bounded<F>(check: &str, what: &str, future: F) -> Vec<Finding>
where
    F: std::future::Future<Output = Vec<Finding>>,
{
    match tokio::time::timeout(CHECK_TIMEOUT, future).await {
        Ok(findings) => findings,
        Err(_) => vec![Finding::problem(
            check,
            format!("{what} did not answer within {}", crate::clock::human_duration(CHECK_TIMEOUT)),
            "find out why the service hangs (network, firewall, an overloaded API server)",
        )],
    }
}
