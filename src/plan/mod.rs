//! Plans: YAML files that say what a failover and a failback do, step by step.
//!
//! A plan names its regions and Kubernetes contexts, its objectives (RTO, RPO) and two step lists.
//! Steps declare dependencies with `after`; steps with no path between them run concurrently.

pub mod de;
pub mod diagnostic;
pub mod explain;
pub mod forecast;
pub mod graph;
mod load;
pub mod params;
mod references;
pub mod schema;
mod suggest;
pub mod template;
pub mod vars;
pub mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use diagnostic::{Diagnostic, PlanErrors};
pub use load::{load, load_with, parse, parse_with};
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
    /// Where runs' journals and the plan's lock live (`state:`), when on S3; otherwise the local
    /// state directory.
    pub state: Option<StateSettings>,
    pub objectives: Objectives,
    pub failover: Vec<StepSpec>,
    pub failback: Vec<StepSpec>,
    /// Where the plan was read from.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes: a resumed run refuses a plan that changed underneath it.
    pub digest: String,
    /// The plan's variables with the values this load resolved (`vars:` and the overrides).
    pub vars: Vec<vars::ResolvedVar>,
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

/// A plan's `state:`: S3 state shared by everyone who runs the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSettings {
    pub bucket: String,
    /// Empty, or ending in `/`.
    pub prefix: String,
    /// The bucket's region: put it in the region failed over to, or a third one.
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    /// The lock's lease (default 60s).
    pub lease: Option<Duration>,
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
            state: None,
            objectives: Objectives { rto: Duration::from_secs(900), rpo: Duration::from_secs(300) },
            failover: Vec::new(),
            failback: Vec::new(),
            path: PathBuf::from(format!("{name}.yaml")),
            digest: String::new(),
            vars: Vec::new(),
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

/// The longest duration drctl accepts anywhere: 366 days. Longer is a typo (`99999999h`), and the
/// limit keeps every deadline computed from a duration (`Instant + d`) far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// Why a file could not be read, as the end of a sentence: "it does not exist".
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// How to write a duration, for the help line of any duration error.
pub const DURATION_HELP: &str = "write it like 90s, 15m or 1h30m (units: ms, s, m, h, d; at most 366d)";

/// Parses a human duration: `90s`, `15m`, `1h30m`, `500ms`, `1d`. Whole numbers each followed by
/// one of the units `ms`, `s`, `m` (minutes), `h`, `d`, optionally separated by spaces; at most
/// [`MAX_DURATION`]. Zero is allowed here; callers refuse it where it makes no sense.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("the duration is empty".to_string());
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{trimmed}` has no unit"));
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{trimmed}` is not a duration"));
        }
        let unit_len = rest[digits..].bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[digits..digits + unit_len];
        let millis_per: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{trimmed}` is not a duration")),
            other => return Err(format!("`{other}` in `{trimmed}` is not a unit")),
        };
        let too_long = || format!("`{trimmed}` is longer than 366d, the longest duration allowed");
        let count: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        let millis = count.checked_mul(millis_per).ok_or_else(too_long)?;
        total = total.checked_add(Duration::from_millis(millis)).ok_or_else(too_long)?;
        if total > MAX_DURATION {
            return Err(too_long());
        }
        rest = rest[digits + unit_len..].trim_start();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_documented_units_only() {
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 1m 30s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("366d"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("5M").unwrap_err(), "`M` in `5M` is not a unit");
        assert!(parse_duration("2weeks").unwrap_err().contains("not a unit"));
        assert!(parse_duration("5").unwrap_err().contains("has no unit"));
        assert!(parse_duration("1,5h").unwrap_err().contains("is not a duration"));
        assert!(parse_duration("1.5h").unwrap_err().contains("is not a duration"));
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("h").unwrap_err().contains("is not a duration"));
    }

    #[test]
    // The point is that the real clocks' `now` plus any duration does not overflow.
    #[allow(clippy::disallowed_methods)]
    fn absurd_durations_are_refused_and_none_overflows_a_deadline() {
        for text in ["99999999h", "367d", "4000000000000000h", "99999999999999999999999s", "366d1ms"] {
            assert!(
                parse_duration(text).unwrap_err().contains("longer than 366d, the longest duration allowed"),
                "{text}"
            );
        }
        // Whatever parses can be added to now, on either clock.
        let d = parse_duration("365d23h59m59s999ms").unwrap();
        assert!(std::time::Instant::now().checked_add(d).is_some());
        assert!(std::time::SystemTime::now().checked_add(d).is_some());
    }
}
