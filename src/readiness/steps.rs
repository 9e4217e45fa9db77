//! Each step's part of a check: its variables are set, it can be built from what is known before
//! the run, and its `preflight` passes. All steps of a direction run concurrently.

use std::sync::Arc;

use futures::future::join_all;

use super::{Item, bounded};
use crate::clock::{Clock, SystemClock};
use crate::plan::template::{self, Reference, Scope};
use crate::plan::yaml::{Node, Value};
use crate::plan::{Direction, Plan, StepSpec};
use crate::step::{BuildContext, Finding, Registry, Severity, StepContext};

/// Every step of `direction`, checked concurrently, in plan order.
pub async fn all(plan: &Plan, direction: Direction, registry: &Registry) -> Vec<Item> {
    let checks = plan.steps(direction).iter().map(|spec| async move {
        let started = tokio::time::Instant::now();
        let mut findings = one(plan, direction, registry, spec).await;
        created_earlier(plan, direction, spec, &mut findings);
        let duration_s = started.elapsed().as_secs_f64();
        findings.into_iter().map(move |finding| Item {
            direction: direction.to_string(),
            step: spec.id.clone(),
            step_type: spec.step_type.clone(),
            duration_s,
            finding,
        })
    });
    join_all(checks).await.into_iter().flatten().collect()
}

/// A replica the step promotes may not exist yet because an earlier step of the same run creates it
/// (the failback's re-protection, `aws.rds.create_replica`): then its absence is expected, and the
/// promotion's own checks wait for the run.
fn created_earlier(plan: &Plan, direction: Direction, spec: &StepSpec, findings: &mut [Finding]) {
    let replica = |s: &StepSpec| s.with.to_json().get("replica").and_then(|v| v.as_str().map(str::to_string));
    let Some(wanted) = replica(spec) else { return };
    let steps = plan.steps(direction);
    let mut seen: Vec<&str> = Vec::new();
    let mut todo: Vec<&str> = spec.after.iter().map(String::as_str).collect();
    while let Some(id) = todo.pop() {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        let Some(earlier) = steps.iter().find(|s| s.id == id) else { continue };
        if earlier.step_type == "aws.rds.create_replica" && replica(earlier).as_deref() == Some(wanted.as_str()) {
            for finding in findings.iter_mut().filter(|f| f.severity == Severity::Problem) {
                *finding = Finding::ok(
                    &finding.check,
                    format!(
                        "`{wanted}` is created by step `{id}` earlier in this run; it is checked when the run gets there"
                    ),
                );
            }
            return;
        }
        todo.extend(earlier.after.iter().map(String::as_str));
    }
}

/// The environment variables a step names, by where: `{{ env.NAME }}` in any parameter, and the
/// value of any `*_env` parameter (`url_env`, `dsn_env`, `primary_dsn_env`).
pub fn named_variables(with: &Node) -> Vec<(String, String)> {
    let mut names = Vec::new();
    for (_, reference) in template::references(with) {
        if let Ok(Reference::Env(name)) = reference {
            names.push((name.clone(), format!("`{{{{ env.{name} }}}}`")));
        }
    }
    if let Value::Map(entries) = &with.value {
        for (key, value) in entries {
            if let (Some(key), Some(name)) = (key.as_str(), value.as_str())
                && key.ends_with("_env")
                && !name.contains("{{")
            {
                names.push((name.to_string(), format!("`with.{key}`")));
            }
        }
    }
    names.sort();
    names.dedup_by(|a, b| a.0 == b.0);
    names
}

/// Problems for each variable `with` names that is not set (or empty).
pub fn unset_variables(with: &Node) -> Vec<Finding> {
    named_variables(with)
        .into_iter()
        .filter(|(name, _)| std::env::var(name).map_or(true, |v| v.trim().is_empty()))
        .map(|(name, place)| {
            Finding::problem(
                "env_set",
                format!("the environment variable {name} ({place}) is not set"),
                format!("export {name} in the environment that runs drctl (shell, systemd unit, CronJob)"),
            )
        })
        .collect()
}

/// The outputs of earlier steps a step's parameters use: only known once those steps ran.
fn run_time_references(with: &Node) -> Vec<String> {
    let mut names: Vec<String> = template::references(with)
        .into_iter()
        .filter_map(|(_, r)| match r {
            Ok(Reference::StepOutput { step, output, .. }) => Some(format!("steps.{step}.outputs.{output}")),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

async fn one(plan: &Plan, direction: Direction, registry: &Registry, spec: &StepSpec) -> Vec<Finding> {
    let unset = unset_variables(&spec.with);
    if !unset.is_empty() {
        return unset;
    }
    let mut findings = Vec::new();
    let later = run_time_references(&spec.with);
    if !later.is_empty() {
        findings.push(Finding::ok(
            "run_time",
            format!(
                "parameters that use {} are known only at run time; the step's other parameters were checked",
                later.join(", ")
            ),
        ));
    }
    let mut scope = Scope::default();
    scope.variables.extend(plan.variables());
    scope.variables.insert("run.direction".into(), direction.to_string());
    scope.variables.insert("run.id".into(), "check".into());
    let built = template::render(&spec.with, &scope, true).and_then(|with| {
        let kind = registry.get(&spec.step_type).ok_or_else(|| format!("unknown step type `{}`", spec.step_type))?;
        kind.build(&with, &BuildContext { plan, direction }).map_err(|e| e.message)
    });
    let step = match built {
        Ok(step) => step,
        Err(e) if !later.is_empty() => {
            findings.push(Finding::warning(
                "parameters",
                format!("cannot be built before the run ({e}); it is checked when the run reaches it"),
                "nothing to do unless the run fails here",
            ));
            return findings;
        }
        Err(e) => {
            findings.push(Finding::problem("parameters", e, "fix the step's `with:` parameters"));
            return findings;
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ctx = StepContext {
        run_id: "check".into(),
        step_id: spec.id.clone(),
        attempt: 1,
        first_started_at: clock.now(),
        clock,
    };
    findings.extend(bounded("preflight", &format!("the preflight of step `{}`", spec.id), step.preflight(&ctx)).await);
    findings
}
