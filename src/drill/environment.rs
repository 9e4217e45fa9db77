//! The emulated environment a drill runs against, as `localstack/env/up` describes it in
//! `env.json`: the variables the plan's steps read, the endpoints the safety fence checks, and the
//! commands that inject faults, repair the primary, restore the environment and check its state.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// `env.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Environment {
    /// `local`.
    pub name: String,
    /// Environment variables for the plan's runs (endpoints, DSNs, URLs, the kubeconfig).
    pub variables: BTreeMap<String, String>,
    /// Every endpoint the drill or the plan will touch, for the safety fence.
    pub endpoints: Endpoints,
    pub actions: Actions,
    /// Values of the plan's variables in this environment (`{{ vars.NAME }}`): they override the
    /// plan's production values for the drill's runs.
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
    /// The latency profile the environment applies (its path), if any.
    #[serde(default)]
    pub profile: Option<String>,
    /// How fast the profile's delays run (0.02: fifty times as fast).
    #[serde(default)]
    pub time_scale: Option<f64>,
    /// With a seed the delays are sampled; without, each is its p50.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Where every applied delay is logged (JSON lines).
    #[serde(default)]
    pub delays_log: Option<String>,
}

/// Endpoints by service.
#[derive(Debug, Clone, Deserialize)]
pub struct Endpoints {
    pub aws: String,
    pub kubernetes: BTreeMap<String, String>,
    pub postgres: BTreeMap<String, String>,
    pub health: String,
}

/// Commands (argv) the drill runs.
#[derive(Debug, Clone, Deserialize)]
pub struct Actions {
    /// Fault name → the command that injects it into the primary region.
    pub inject: BTreeMap<String, Vec<String>>,
    /// After the failover: the primary region comes back (its database rebuilt as a standby).
    pub repair: Vec<String>,
    /// After the failback: the environment as it was before the drill.
    pub restore: Vec<String>,
    /// Check name → a command that exits 0 when the check passes and prints one line of detail.
    pub checks: BTreeMap<String, Vec<String>>,
}

impl Environment {
    /// Reads `env.json`.
    pub fn load(path: &Path) -> Result<Environment, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("cannot read the drill environment {}: {e}; start it with `localstack/env/up`", path.display())
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))
    }

    /// A variable the environment must define.
    pub fn variable(&self, name: &str) -> Result<&str, String> {
        self.variables
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("the drill environment defines no `{name}` variable"))
    }

    /// Every endpoint, named, for the safety fence.
    pub fn all_endpoints(&self) -> Vec<(String, String)> {
        let mut all =
            vec![("aws".to_string(), self.endpoints.aws.clone()), ("health".into(), self.endpoints.health.clone())];
        for (name, url) in &self.endpoints.kubernetes {
            all.push((format!("kubernetes.{name}"), url.clone()));
        }
        for (name, address) in &self.endpoints.postgres {
            all.push((format!("postgres.{name}"), address.clone()));
        }
        all
    }
}
