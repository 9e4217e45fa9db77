//! Latency profiles (`drills/profiles/*.yaml`): how long the slow cloud operations take, as a p50
//! and a p95 each. The drill environment applies the same file; `plan show --forecast` reads it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plan::diagnostic::{Diagnostic, PlanErrors};
use crate::plan::suggest::closest;
use crate::plan::yaml::{self, Node, Value};
use crate::plan::{DURATION_HELP, parse_duration};

/// The operations a profile may give, and what each is.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("route53.change", "a Route53 change, PENDING until INSYNC"),
    ("rds.promote_read_replica", "an RDS read-replica promotion, available → modifying → available"),
    ("rds.create_read_replica", "an RDS read replica's creation, until available"),
    ("secretsmanager.put_secret_value", "a Secrets Manager PutSecretValue"),
    ("kube.pod_ready", "a new or restarted Kubernetes pod, until Ready"),
];

/// One operation's distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub p50: Duration,
    pub p95: Duration,
}

/// A latency profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub path: PathBuf,
    pub operations: BTreeMap<String, Figures>,
}

/// `aws-typical` → `drills/profiles/aws-typical.yaml`; a path is taken as given.
pub fn resolve(profile: &str, profiles_dir: &Path) -> PathBuf {
    let as_path = Path::new(profile);
    if as_path.extension().is_some() || profile.contains('/') {
        return as_path.to_path_buf();
    }
    profiles_dir.join(format!("{profile}.yaml"))
}

/// Reads a profile; every problem is reported with its line and column.
pub fn load(path: &Path) -> Result<Profile, PlanErrors> {
    let bytes = std::fs::read(path).map_err(|e| PlanErrors::unreadable(path, &e))?;
    let source = PlanErrors::decode(path, bytes)?;
    parse(path, &source)
}

/// Parses profile text; `path` names it in messages.
pub fn parse(path: &Path, source: &str) -> Result<Profile, PlanErrors> {
    let root = yaml::parse(source).map_err(|e| {
        PlanErrors::new(path, source, vec![Diagnostic::new(e.pos, "", format!("invalid YAML: {}", e.message))])
    })?;
    let mut diags = Vec::new();
    let name = root.get("name").and_then(Node::as_str).map(str::to_string);
    if name.is_none() {
        diags.push(
            Diagnostic::new(root.pos, "name", "the profile has no `name:`")
                .help("add `name: aws-typical` (the file's name)"),
        );
    }
    let mut operations = BTreeMap::new();
    match root.get("operations").map(|n| (n, n.as_map())) {
        Some((_, Some(entries))) => {
            for (key, value) in entries {
                if let Some((name, figures)) = operation(key, value, &mut diags) {
                    operations.insert(name, figures);
                }
            }
        }
        Some((node, None)) => diags.push(
            Diagnostic::new(node.pos, "operations", format!("expected a mapping, found {}", node.kind()))
                .help("write `route53.change: {p50: 60s, p95: 120s}` and so on under `operations:`"),
        ),
        None => diags.push(
            Diagnostic::new(root.pos, "operations", "the profile has no `operations:`")
                .help("add `operations:` with `{p50, p95}` for each operation it knows"),
        ),
    }
    match diags.is_empty() {
        true => Ok(Profile { name: name.unwrap_or_default(), path: path.to_path_buf(), operations }),
        false => Err(PlanErrors::new(path, source, diags)),
    }
}

fn operation(key: &Node, value: &Node, diags: &mut Vec<Diagnostic>) -> Option<(String, Figures)> {
    let known: Vec<&str> = OPERATIONS.iter().map(|(n, _)| *n).collect();
    let name = key.as_str().unwrap_or_default().to_string();
    let field = format!("operations.{name}");
    if !known.contains(&name.as_str()) {
        let help = match closest(&name, known.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? Operations: {}", known.join(", ")),
            None => format!("operations: {}", known.join(", ")),
        };
        diags.push(Diagnostic::new(key.pos, &field, format!("unknown operation `{name}`")).help(help));
        return None;
    }
    let Value::Map(entries) = &value.value else {
        diags.push(
            Diagnostic::new(value.pos, &field, format!("expected {{p50, p95}}, found {}", value.kind()))
                .help("write `{p50: 60s, p95: 120s}`"),
        );
        return None;
    };
    let mut get = |which: &str| -> Option<Duration> {
        let Some((_, node)) = entries.iter().find(|(k, _)| k.as_str() == Some(which)) else {
            diags.push(
                Diagnostic::new(value.pos, &field, format!("`{which}` is missing")).help("give both p50 and p95"),
            );
            return None;
        };
        match node.as_str().map(parse_duration) {
            Some(Ok(d)) if !d.is_zero() => Some(d),
            Some(Ok(_)) => {
                diags.push(
                    Diagnostic::new(node.pos, format!("{field}.{which}"), "must be more than 0s").help(DURATION_HELP),
                );
                None
            }
            Some(Err(e)) => {
                diags.push(Diagnostic::new(node.pos, format!("{field}.{which}"), e).help(DURATION_HELP));
                None
            }
            None => {
                diags.push(
                    Diagnostic::new(
                        node.pos,
                        format!("{field}.{which}"),
                        format!("expected a duration, found {}", node.kind()),
                    )
                    .help(DURATION_HELP),
                );
                None
            }
        }
    };
    let (p50, p95) = (get("p50"), get("p95"));
    for (k, _) in entries.iter().filter(|(k, _)| !matches!(k.as_str(), Some("p50" | "p95"))) {
        diags.push(
            Diagnostic::new(k.pos, &field, format!("unknown key `{}`", k.as_str().unwrap_or("?")))
                .help("only p50 and p95"),
        );
    }
    let (p50, p95) = (p50?, p95?);
    if p50 > p95 {
        diags.push(
            Diagnostic::new(value.pos, &field, "p50 is above p95").help("the median cannot exceed the 95th percentile"),
        );
        return None;
    }
    Some((name, Figures { p50, p95 }))
}
