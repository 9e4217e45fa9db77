//! Drill definitions (`drills/*.yaml`): which plan, which environment, which fault, the
//! objectives, whether to fail back, and which checks must pass afterwards.

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::plan::de::from_node;
use crate::plan::yaml::parse;
use crate::steps::HumanDuration;

/// A drill, as `drills/NAME.yaml` writes it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillDefinition {
    /// The drill's name, used for its reports' directory and in `drctl drill history`.
    pub name: String,
    /// What the drill proves, for the report.
    #[serde(default)]
    pub description: Option<String>,
    /// The plan to run (a name in the plans directory, or a path).
    pub plan: String,
    /// The environment description that `localstack/env/up` writes (`env.json`), relative to the
    /// repository root (default `.drctl/env/env.json`).
    #[serde(default = "default_environment")]
    pub environment: String,
    /// The fault to inject into the primary region.
    pub fault: Fault,
    /// The objectives to judge the drill by (default: the plan's).
    #[serde(default)]
    pub objectives: Option<DrillObjectives>,
    /// How often the synthetic client resolves `api.example.com` and commits one numbered write
    /// through the region it resolved (default 100ms). RTO and RPO are measured to within one
    /// interval.
    #[serde(default)]
    pub client_interval: Option<HumanDuration>,
    /// How long the client caches a DNS answer, instead of the record's TTL (an alias record's is
    /// the target's: 60 s for a load balancer). Resolvers cache, and that is part of the RTO.
    #[serde(default)]
    pub client_dns_ttl: Option<HumanDuration>,
    /// How long the client keeps writing after the failover ends (default 10s): recovery that
    /// clients see later than that is not seen at all.
    #[serde(default)]
    pub client_grace: Option<HumanDuration>,
    /// Pass even when the old primary acknowledged writes after the promotion (split brain).
    /// Default false: any split-brain write fails the drill.
    #[serde(default)]
    pub allow_split_brain: bool,
    /// Cut the DR database off from the primary this long before the fault (its WAL receiver is
    /// stopped), so the failover has writes to lose: how a drill proves that the RPO measurement
    /// and the objective work. Default: no cut, replication as it is.
    #[serde(default)]
    pub replica_lag: Option<HumanDuration>,
    /// A latency profile the environment applies (a name under drills/profiles/, such as
    /// `aws-typical`, or a path): the report then gives the RTO rescaled to real time too.
    #[serde(default)]
    pub profile: Option<String>,
    /// How fast the profile's delays run in the drill (default 1; 0.02 in CI: fifty times as fast).
    #[serde(default)]
    pub time_scale: Option<f64>,
    /// Sample each delay from the profile's distribution with this seed instead of taking its p50.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Values of the plan's variables for this drill (over the environment's), such as
    /// `max_replica_lag: 0s`; `drctl drill run --var` wins over them.
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
    /// Fail back after the failover (default true).
    #[serde(default = "yes")]
    pub failback: bool,
    /// The environment's checks that must pass after the drill (default: every check it offers):
    /// state back on the primary, nothing left behind.
    #[serde(default)]
    pub checks: Option<Vec<String>>,
}

/// The faults a drill can inject into the primary region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The primary database stops hard (`pg_ctl stop -m immediate`).
    DatabaseStop,
    /// The primary region's health endpoint fails.
    HealthFail,
    /// The primary region's Kubernetes API answers 503 to everything.
    ApiFail,
    /// The DR database is cut off from the primary and the primary region's health fails, while
    /// the old primary database and app stay up and writable.
    Partition,
}

impl Fault {
    /// The name the environment's `actions.inject` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::DatabaseStop => "database_stop",
            Fault::HealthFail => "health_fail",
            Fault::ApiFail => "api_fail",
            Fault::Partition => "partition",
        }
    }

    /// What the fault does, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Fault::DatabaseStop => "the primary database stopped hard (pg_ctl stop -m immediate)",
            Fault::HealthFail => "the primary region's health endpoint answered 503",
            Fault::ApiFail => "the primary region's Kubernetes API answered 503 to every call",
            Fault::Partition => {
                "the DR database was cut off from the primary and the primary region's health failed; the old \
                 primary database and app stayed up and writable"
            }
        }
    }
}

/// Objectives that override the plan's.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillObjectives {
    #[serde(default)]
    pub rto: Option<HumanDuration>,
    #[serde(default)]
    pub rpo: Option<HumanDuration>,
}

fn default_environment() -> String {
    ".drctl/env/env.json".into()
}

fn yes() -> bool {
    true
}

impl DrillDefinition {
    /// The client's interval between writes.
    pub fn client_interval(&self) -> Duration {
        self.client_interval.map_or(Duration::from_millis(100), |d| d.0)
    }

    /// How long the client writes after the failover ends.
    pub fn client_grace(&self) -> Duration {
        self.client_grace.map_or(Duration::from_secs(10), |d| d.0)
    }
}

/// Reads a drill definition; errors name the file, line and column, and the field.
pub fn load(path: &Path) -> Result<DrillDefinition, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read drill {}: {e}", path.display()))?;
    let node = parse(&text).map_err(|e| format!("{}:{}: {}", path.display(), e.pos, e.message))?;
    from_node::<DrillDefinition>(&node).map_err(|e| {
        let field = if e.path.is_empty() { String::new() } else { format!("{}: ", e.path) };
        format!("{}:{}: {field}{}", path.display(), e.pos, e.message)
    })
}

/// Where `--drill NAME` is found: a path as given, else `drills/NAME.yaml`.
pub fn resolve(drill: &str, drills_dir: &Path) -> PathBuf {
    let path = PathBuf::from(drill);
    if path.exists() || drill.ends_with(".yaml") || drill.contains('/') {
        return path;
    }
    drills_dir.join(format!("{drill}.yaml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<DrillDefinition, String> {
        let dir = std::env::temp_dir().join(format!("drctl-drill-def-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.yaml");
        std::fs::write(&path, text).unwrap();
        let result = load(&path);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    #[test]
    fn a_definition_names_its_plan_and_fault() {
        let d = parse_text("name: monthly\nplan: us-west-2\nfault: database_stop\nobjectives: {rpo: 0s}\n").unwrap();
        assert_eq!(d.fault, Fault::DatabaseStop);
        assert!(d.failback);
        assert_eq!(d.environment, ".drctl/env/env.json");
        assert_eq!(d.objectives.as_ref().unwrap().rpo.unwrap().0, Duration::ZERO);
        assert_eq!(d.client_interval(), Duration::from_millis(100));
        assert_eq!(d.client_grace(), Duration::from_secs(10));
        assert!(d.client_dns_ttl.is_none() && !d.allow_split_brain);
    }

    #[test]
    fn mistakes_name_the_line_and_field() {
        let e = parse_text("name: monthly\nplan: p\nfault: disk_full\n").unwrap_err();
        assert!(e.contains("d.yaml:3:8: fault: "), "{e}");
        let e = parse_text("name: monthly\nplan: p\nfault: api_fail\nfailbak: true\n").unwrap_err();
        assert!(e.contains(":4:1") && e.contains("failbak"), "{e}");
    }
}
