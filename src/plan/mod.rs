//! Plans: YAML files that say what a failover and a failback do, step by step.
//!
//! A plan names its regions and Kubernetes contexts, its objectives (RTO, RPO) and two step lists.
//! Steps declare dependencies with `after`; steps with no path between them run concurrently.

pub mod de;
pub mod diagnostic;
pub mod explain;
pub mod graph;
mod load;
pub mod schema;
pub mod template;
pub mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use diagnostic::{Diagnostic, PlanErrors};
pub use load::{load, parse};
use yaml::{Node, Pos};

/// A validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub description: Option<String>,
    pub regions: Pair,
    /// Kubernetes contexts of the primary and secondary clusters, when the plan uses Kubernetes.
    pub kubernetes: Option<Pair>,
    /// How AWS is reached, when the plan's steps use it.
    pub aws: AwsSettings,
    pub objectives: Objectives,
    pub failover: Vec<StepSpec>,
    pub failback: Vec<StepSpec>,
    /// Where the plan was read from.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes: a resumed run refuses a plan that changed underneath it.
    pub digest: String,
}

/// A primary and a secondary (DR) name: regions or Kubernetes contexts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub primary: String,
    pub secondary: String,
}

/// Where AWS API calls go. Both fields are optional: the SDK's standard chain (environment,
/// profiles, SSO, `AWS_ENDPOINT_URL`) applies to what is not set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// Send every AWS call here (an emulator such as moto or LocalStack); `--endpoint-url` overrides.
    pub endpoint_url: Option<String>,
    /// The shared-config profile to use.
    pub profile: Option<String>,
}

/// Recovery objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Objectives {
    /// Recovery time objective: the longest acceptable outage.
    pub rto: Duration,
    /// Recovery point objective: the most data (as time) that may be lost.
    pub rpo: Duration,
}

/// One step as the plan declares it; parameters stay a YAML node until templates are rendered.
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub id: String,
    pub step_type: String,
    /// A human title; defaults to the id.
    pub name: Option<String>,
    pub with: Node,
    pub after: Vec<String>,
    /// The whole step's budget, retries included.
    pub timeout: Duration,
    /// Further attempts after a retryable failure.
    pub retries: u32,
    /// This step's success ends the outage: RTO is measured to it.
    pub marks_recovery: bool,
    /// What the step's failure does to the run.
    pub on_failure: OnFailure,
    /// Where the step starts in the file.
    pub pos: Pos,
}

impl StepSpec {
    /// The step's title for people.
    pub fn title(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// What a step's failure does to the run (`on_failure:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// The run fails once running steps finish; steps after this one do not run.
    #[default]
    Stop,
    /// The failure is journaled and reported as a warning; the run goes on, steps after this one
    /// included (they may not use its outputs).
    Continue,
}

impl OnFailure {
    /// The word plans use.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Stop => "stop",
            OnFailure::Continue => "continue",
        }
    }
}

/// Which of a plan's step lists a run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Move to the secondary region.
    Failover,
    /// Return to the primary region.
    Failback,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Failover => "failover",
            Direction::Failback => "failback",
        })
    }
}

impl Plan {
    /// The steps of one direction.
    pub fn steps(&self, direction: Direction) -> &[StepSpec] {
        match direction {
            Direction::Failover => &self.failover,
            Direction::Failback => &self.failback,
        }
    }

    /// A plan with no steps, for building steps outside a run (tests, tools).
    pub fn minimal(name: &str, primary: &str, secondary: &str) -> Plan {
        Plan {
            name: name.to_string(),
            description: None,
            regions: Pair { primary: primary.to_string(), secondary: secondary.to_string() },
            kubernetes: None,
            aws: AwsSettings::default(),
            objectives: Objectives { rto: Duration::from_secs(900), rpo: Duration::from_secs(300) },
            failover: Vec::new(),
            failback: Vec::new(),
            path: PathBuf::from(format!("{name}.yaml")),
            digest: String::new(),
        }
    }

    /// Template variables this plan provides (`plan.*`).
    pub fn variables(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("plan.name".to_string(), self.name.clone()),
            ("plan.regions.primary".to_string(), self.regions.primary.clone()),
            ("plan.regions.secondary".to_string(), self.regions.secondary.clone()),
        ];
        if let Some(k) = &self.kubernetes {
            vars.push(("plan.kubernetes.primary".to_string(), k.primary.clone()));
            vars.push(("plan.kubernetes.secondary".to_string(), k.secondary.clone()));
        }
        vars
    }
}

/// Finds a plan by name (`us-west-2` → `plans/us-west-2.yaml`) or takes a path as given.
pub fn resolve_path(plan: &str, plans_dir: &Path) -> PathBuf {
    let as_path = Path::new(plan);
    if as_path.extension().is_some() || plan.contains('/') || as_path.exists() {
        return as_path.to_path_buf();
    }
    let yaml = plans_dir.join(format!("{plan}.yaml"));
    if !yaml.exists() && plans_dir.join(format!("{plan}.yml")).exists() {
        return plans_dir.join(format!("{plan}.yml"));
    }
    yaml
}

/// Parses a human duration: `90s`, `15m`, `1h30m`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|_| format!("`{text}` is not a duration"))
}
