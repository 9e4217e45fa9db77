//! What a drill found, as one serializable value: the evidence every report format renders. Its
//! JSON form is the stable, published machine-readable report (`drills/drill-report.schema.json`);
//! `schema_version` changes when a field changes meaning or goes away.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::state::{RunState, StepState};

/// The version of the report's JSON form.
pub const SCHEMA_VERSION: u32 = 2;

/// One drill: its fault, both runs, the measured objectives, the checks, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillReport {
    /// The version of this JSON form (2: the client's traffic replaced the heartbeats); it changes
    /// when a field changes meaning or goes away.
    pub schema_version: u32,
    /// The drill's name (from its definition in `drills/`).
    pub drill: String,
    /// The plan the drill ran.
    pub plan: String,
    /// The environment it ran against (`local`).
    pub environment: String,
    /// The host drctl ran on.
    pub host: String,
    /// Who ran it, what ran, against what: the evidence's provenance.
    pub provenance: Provenance,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC.
    pub finished_at: String,
    /// The injected fault.
    pub fault: FaultReport,
    /// RTO and RPO against the objectives.
    pub objectives: ObjectivesReport,
    /// The synthetic client's traffic through the public name: what the RTO, the RPO and the
    /// split-brain count are measured from.
    pub client: ClientReport,
    /// The failover, then (when the drill fails back) the failback.
    pub runs: Vec<RunReport>,
    /// Checks after the drill: state back on the primary, nothing left behind.
    pub checks: Vec<CheckReport>,
    /// The verdict.
    pub outcome: Outcome,
    /// Where the drill departed from a clean run: retried steps, best-effort steps that found
    /// their target unreachable, steps that did not succeed.
    pub deviations: Vec<String>,
    /// One item per failed check or objective, for a person to own and date.
    pub remediation: Vec<RemediationItem>,
    /// The latency profile the environment applied and the RTO rescaled to real time (absent
    /// when the environment applied none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<TimingReport>,
}

/// A drill under a latency profile: the measured RTO, and the RTO rescaled to real time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimingReport {
    /// The profile file the environment applied.
    pub profile: String,
    /// How fast the emulated operations ran (0.02: fifty times as fast as the profile).
    pub time_scale: f64,
    /// With a seed, the delays were sampled from the profile's distributions; without, p50.
    pub seed: Option<u64>,
    /// The RTO as measured in the drill (seconds), emulated delays at `time_scale` included.
    pub measured_rto_s: Option<f64>,
    /// The part of the measured RTO during which an emulated delay ran (the union of the logged
    /// delays, clipped to the RTO window), in seconds.
    pub emulated_s: f64,
    /// The RTO rescaled to real time: the emulated part divided by `time_scale`, the rest as measured.
    pub rescaled_rto_s: Option<f64>,
    /// The plan's RTO, which the rescaled figure is held to.
    pub plan_rto_s: f64,
    /// Whether the rescaled RTO is within the plan's RTO.
    pub rescaled_met: Option<bool>,
    /// How the rescaled RTO is computed, in words.
    pub method: String,
    /// The environment's delays that overlap the RTO window, as it logged them.
    pub delays: Vec<DelayReport>,
}

/// One delay the environment applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelayReport {
    /// The profile's operation (`route53.change`...).
    pub operation: String,
    /// What it delayed, when the environment says.
    pub resource: Option<String>,
    /// RFC 3339 with milliseconds.
    pub start: String,
    pub end: String,
    /// The delay applied (scaled), in seconds.
    pub delay_s: f64,
    /// The profile's figure before scaling, in seconds.
    pub profile_s: Option<f64>,
}

/// Who ran the drill, with which drctl, plan and definition, against which environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The OS user that ran `drctl drill run`.
    pub user: String,
    /// How the failover was approved: the approval step's journaled method when it records one,
    /// else `--yes` (a drill runs its plan unattended).
    pub approval: String,
    /// `drctl --version`.
    pub drctl_version: String,
    /// The git commit drctl was built from, when built from git.
    pub git_commit: Option<String>,
    /// The plan file and the SHA-256 of its bytes.
    pub plan_file: String,
    pub plan_sha256: String,
    /// The drill definition and the SHA-256 of its bytes.
    pub drill_file: String,
    pub drill_sha256: String,
    /// The environment's inventory when the drill started (`inventory.json` next to `env.json`):
    /// kind → objects.
    pub inventory: std::collections::BTreeMap<String, Vec<String>>,
}

/// Something to fix, with an owner and a due date left blank for a person to fill in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemediationItem {
    pub item: String,
    pub owner: String,
    pub due: String,
}

/// The fault the drill injected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultReport {
    /// `database_stop`, `health_fail`, `api_fail` or `partition`.
    pub kind: String,
    /// In words: "the primary database (127.0.0.1:5433) stopped hard (pg_ctl stop -m immediate)".
    pub description: String,
    /// RFC 3339, UTC: the RTO's start.
    pub injected_at: String,
}

/// RTO and RPO, as clients lived them, and the secondary figure from the DR region's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectivesReport {
    /// The headline RTO: from the fault to the first acknowledged client write after the outage,
    /// through the public name.
    pub rto: Measurement,
    /// The window of acknowledged client writes missing from the database that is primary at the
    /// end.
    pub rpo: Measurement,
    /// "DR ready after X s" (secondary): from the fault to the DR region's first healthy answer to
    /// its own health endpoint, which clients do not reach before DNS points there.
    pub dr_ready_s: Option<f64>,
}

/// One objective and what was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Measurement {
    /// The objective, in seconds.
    pub objective_s: f64,
    /// What was measured, in seconds; `None` when it could not be (the DR side never got healthy).
    pub measured_s: Option<f64>,
    /// Whether the objective was met; `None` when not measured.
    pub met: Option<bool>,
    /// How it was measured, in one sentence.
    pub detail: String,
}

/// The synthetic client's record: one write per interval through the public name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientReport {
    /// The time between two attempts, in milliseconds.
    pub interval_ms: u64,
    /// How long a DNS answer was cached: `5s (client_dns_ttl)` or the record's.
    pub dns_ttl: String,
    /// Writes attempted, from before the fault to the grace period's end after the failover.
    pub attempts: u64,
    /// Writes an app acknowledged as committed.
    pub acknowledged: u64,
    /// Writes refused, unanswered, or not sent (the name did not resolve).
    pub failed: u64,
    /// RFC 3339: the first attempt at or after the fault that did not survive.
    pub outage_started_at: Option<String>,
    /// RFC 3339: the acknowledgement of the first surviving write after the last one that did not.
    pub recovered_at: Option<String>,
    /// RFC 3339: the DR database's promotion (its step's end in the failover journal).
    pub promoted_at: Option<String>,
    /// The region whose database was primary at the end, where surviving writes were counted.
    pub final_primary: Option<String>,
    /// Acknowledged writes missing from the final primary.
    pub lost_writes: u64,
    /// RFC 3339 commit times of the first and the last lost write.
    pub lost_first_at: Option<String>,
    pub lost_last_at: Option<String>,
    /// Writes the old primary acknowledged after the promotion (split brain); part of the lost
    /// writes when missing.
    pub split_brain_writes: u64,
    /// Whether the drill allows split-brain writes (`allow_split_brain`).
    pub allow_split_brain: bool,
    /// Every attempt, in order.
    pub writes: Vec<ClientWrite>,
}

/// One client attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientWrite {
    pub seq: u64,
    /// RFC 3339: when the attempt started.
    pub at: String,
    /// The region the public name resolved to.
    pub region: Option<String>,
    /// `survived`, `lost`, `split_brain` or `failed`.
    pub fate: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// One run of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    /// `failover` or `failback`.
    pub direction: String,
    pub run_id: String,
    /// `succeeded`, `failed`, `interrupted`...
    pub state: RunStatus,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The run's own RTO (its start to its `marks_recovery` step), in seconds.
    pub rto_s: Option<f64>,
    /// Step ids on the critical path to recovery, in order.
    pub critical_path: Vec<String>,
    pub steps: Vec<StepReport>,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    pub id: String,
    /// The plan's `name`, else the id.
    pub name: String,
    /// The step type (`kube.scale`).
    pub step_type: String,
    /// `succeeded`, `passed` (a check), `failed`, `skipped`, `pending`...
    pub state: StepStatus,
    /// RFC 3339, UTC; `None` for a step that never started.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_s: Option<f64>,
    pub attempts: u32,
    /// Observation found the effect in place; nothing was changed.
    pub already_done: bool,
    pub error: Option<String>,
    /// It failed with `on_failure: continue`: a warning, and the run went on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continued: bool,
    /// How an approval step was given ("typed by alice on /dev/pts/3", "--yes, by ci").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// The steps it ran after.
    pub after: Vec<String>,
}

/// A check made after the drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckReport {
    pub name: String,
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

/// The verdict: passed when every objective was met, both runs succeeded and every check passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub passed: bool,
    /// Why not, one sentence each: "RPO missed: 2.3 s of writes lost against an objective of 0 s
    /// (2.3 s over)".
    pub failures: Vec<String>,
}

/// A run's state as the report gives it: the engine's [`RunState`] without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Interrupted,
    Abandoned,
}

impl From<&RunState> for RunStatus {
    fn from(state: &RunState) -> Self {
        match state {
            RunState::Running => RunStatus::Running,
            RunState::Succeeded => RunStatus::Succeeded,
            RunState::Failed { .. } => RunStatus::Failed,
            RunState::Interrupted { .. } => RunStatus::Interrupted,
            RunState::Abandoned => RunStatus::Abandoned,
        }
    }
}

impl RunStatus {
    /// The word the JSON form and every report use.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Abandoned => "abandoned",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step's state as the report gives it: the engine's [`StepState`] without its details, a
/// check's success told apart as `passed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Pending,
    Observing,
    Acting,
    Retrying,
    Succeeded,
    /// A check that passed.
    Passed,
    Failed,
    Skipped,
}

impl From<&StepState> for StepStatus {
    fn from(state: &StepState) -> Self {
        match state {
            StepState::Pending => StepStatus::Pending,
            StepState::Running { acting: false, .. } => StepStatus::Observing,
            StepState::Running { acting: true, .. } => StepStatus::Acting,
            StepState::Backoff { .. } => StepStatus::Retrying,
            StepState::Succeeded { passed: true, .. } => StepStatus::Passed,
            StepState::Succeeded { .. } => StepStatus::Succeeded,
            StepState::Failed { .. } => StepStatus::Failed,
            StepState::Skipped { .. } => StepStatus::Skipped,
        }
    }
}

impl StepStatus {
    /// The word the JSON form and every report use.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Observing => "observing",
            StepStatus::Acting => "acting",
            StepStatus::Retrying => "retrying",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Passed => "passed",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }

    /// It succeeded, as an action or as a check.
    pub fn succeeded(self) -> bool {
        matches!(self, StepStatus::Succeeded | StepStatus::Passed)
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
