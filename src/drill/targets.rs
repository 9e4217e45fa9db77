//! What a drill's plan will actually reach, for the safety fence: not only the endpoints
//! `env.json` declares, but the AWS endpoint the plan's runs will use, the API server of every
//! kubeconfig context the plan names, and every URL among the environment's variables (a real
//! chat webhook is a leak too). A drill must not be one typo away from production.

use std::collections::BTreeSet;
use std::path::Path;

use kube::config::Kubeconfig;

use super::environment::Environment;
use crate::plan::Plan;

/// What stands for AWS itself when nothing points the plan's calls elsewhere.
const REAL_AWS: &str = "https://amazonaws.com (no aws.endpoint_url in the plan, no AWS_ENDPOINT_URL)";

/// Every endpoint the drill and its plan will touch, named for `--allow-live`.
pub fn endpoints(plan: &Plan, environment: &Environment) -> Result<Vec<(String, String)>, String> {
    let mut all = environment.all_endpoints();
    let aws = plan.aws.endpoint_url.clone().or_else(|| environment.variables.get("AWS_ENDPOINT_URL").cloned());
    all.push(("aws.plan".into(), aws.unwrap_or_else(|| REAL_AWS.into())));
    for (name, value) in &environment.variables {
        if let Some(origin) = origin(value) {
            all.push((format!("variables.{name}"), origin));
        }
    }
    // The plan's variables as the drill resolves them: one the environment does not override keeps
    // production's value, and the fence must see it.
    for var in &plan.vars {
        if let Some(origin) = origin(&var.value.to_string()) {
            all.push((format!("vars.{}", var.name), origin));
        }
    }
    let contexts = contexts_of(plan);
    if !contexts.is_empty() {
        let path = environment.variables.get("KUBECONFIG").ok_or_else(|| {
            format!(
                "the plan uses Kubernetes contexts ({}) but the environment `{}` sets no KUBECONFIG",
                contexts.iter().cloned().collect::<Vec<_>>().join(", "),
                environment.name
            )
        })?;
        all.extend(servers(Path::new(path), &contexts)?);
    }
    Ok(all)
}

/// `scheme://host:port` of an http(s) URL, with `/…` where a path followed: a webhook's path is
/// its secret, and the fence prints what it refuses.
fn origin(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once("://").filter(|(s, _)| matches!(*s, "http" | "https"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let more = if rest.len() > authority.len() { "/…" } else { "" };
    Some(format!("{scheme}://{host}{more}"))
}

/// The kubeconfig contexts the plan names: its `kubernetes:` pair and every literal `context:`.
fn contexts_of(plan: &Plan) -> BTreeSet<String> {
    let mut contexts: BTreeSet<String> = BTreeSet::new();
    if let Some(pair) = &plan.kubernetes {
        contexts.extend([pair.primary.clone(), pair.secondary.clone()]);
    }
    for step in plan.failover.iter().chain(&plan.failback) {
        if let Some(context) = step.with.get("context").and_then(|c| c.as_str()).filter(|c| !c.contains("{{")) {
            contexts.insert(context.to_string());
        }
    }
    contexts
}

/// `kubernetes.context.NAME` → the API server of each context, from the kubeconfig at `path`.
fn servers(path: &Path, contexts: &BTreeSet<String>) -> Result<Vec<(String, String)>, String> {
    let config = Kubeconfig::read_from(path)
        .map_err(|e| format!("cannot read the environment's kubeconfig {}: {e}", path.display()))?;
    contexts
        .iter()
        .map(|name| {
            let context = config.contexts.iter().find(|c| &c.name == name).and_then(|c| c.context.as_ref());
            let cluster = context.and_then(|c| config.clusters.iter().find(|k| k.name == c.cluster));
            let server = cluster.and_then(|k| k.cluster.as_ref()).and_then(|k| k.server.clone()).ok_or_else(|| {
                format!("the plan uses the Kubernetes context `{name}`, which {} does not define", path.display())
            })?;
            Ok((format!("kubernetes.context.{name}"), server))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn a_url_is_shown_without_its_path_or_credentials() {
        assert_eq!(
            origin("https://hooks.slack.com/services/T0/B0/secret").as_deref(),
            Some("https://hooks.slack.com/…")
        );
        assert_eq!(origin("http://user:pw@127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(origin("postgres://drctl@127.0.0.1:1/x"), None);
        assert_eq!(origin("us-east-1"), None);
    }
}
