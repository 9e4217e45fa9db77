//! `--dry-run`: what each step would do, in execution order, changing nothing.

use crate::plan::graph::Graph;
use crate::plan::template::{self, Scope};
use crate::plan::{Direction, Plan};
use crate::step::{BuildContext, Registry};

/// One step of a dry run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DryRunStep {
    pub id: String,
    /// 0 for steps that start at once; steps of the same wave run concurrently.
    pub wave: usize,
    pub after: Vec<String>,
    /// What the step would do; outputs of earlier steps appear as `<steps.ID.outputs.NAME>`.
    pub action: String,
}

/// Describes every step of `direction` without running anything.
pub fn dry_run(plan: &Plan, direction: Direction, registry: &Registry) -> Vec<DryRunStep> {
    let steps = plan.steps(direction);
    let graph = Graph::of(steps);
    let order = graph.order().unwrap_or_else(|_| (0..steps.len()).collect());
    let waves = graph.waves(&order);
    let mut scope = Scope::default();
    scope.variables.extend(plan.variables());
    scope.variables.insert("run.direction".into(), direction.to_string());
    let mut result: Vec<DryRunStep> = order
        .iter()
        .map(|&i| {
            let spec = &steps[i];
            let action = template::render(&spec.with, &scope, true)
                .map_err(|e| e.to_string())
                .and_then(|with| {
                    let kind = registry.get(&spec.step_type).ok_or("unknown step type")?;
                    kind.build(&with, &BuildContext { plan, direction }).map(|s| s.describe()).map_err(|e| e.message)
                })
                .unwrap_or_else(|e| format!("cannot describe: {e}"));
            DryRunStep { id: spec.id.clone(), wave: waves[i], after: spec.after.clone(), action }
        })
        .collect();
    result.sort_by_key(|s| s.wave);
    result
}
