//! What a drill found, as one serializable value: the evidence every report format renders. Its
//! JSON form is the stable, published machine-readable report (`drills/drill-report.schema.json`);
//! `schema_version` changes when a field changes meaning or goes away.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The version of the report's JSON form.
pub const SCHEMA_VERSION: u32 = 1;

/// One drill: its fault, both runs, the measured objectives, the checks, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillReport {
    /// The version of this JSON form (1); it changes when a field changes meaning or goes away.
    pub schema_version: u32,
    /// The drill's name (from its definition in `drills/`).
    pub drill: String,
    /// The plan the drill ran.
    pub plan: String,
    /// The environment it ran against (`local`).
    pub environment: String,
    /// The host drctl ran on.
    pub host: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC.
    pub finished_at: String,
    /// The injected fault.
    pub fault: FaultReport,
    /// RTO and RPO against the objectives.
    pub objectives: ObjectivesReport,
    /// The heartbeats that make the RPO a measurement, not an estimate.
    pub heartbeats: HeartbeatReport,
    /// The failover, then (when the drill fails back) the failback.
    pub runs: Vec<RunReport>,
    /// Checks after the drill: state back on the primary, nothing left behind.
    pub checks: Vec<CheckReport>,
    /// The verdict.
    pub outcome: Outcome,
}

/// The fault the drill injected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultReport {
    /// `database_stop`, `health_fail` or `api_fail`.
    pub kind: String,
    /// In words: "the primary database (127.0.0.1:5433) stopped hard (pg_ctl stop -m immediate)".
    pub description: String,
    /// RFC 3339, UTC: the RTO's start.
    pub injected_at: String,
}

/// RTO and RPO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectivesReport {
    /// From the fault to the first healthy answer of the DR region's health check.
    pub rto: Measurement,
    /// From the last heartbeat committed on the old primary to the last one present on the new.
    pub rpo: Measurement,
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

/// The heartbeat writer's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatReport {
    /// How often a heartbeat was committed, in milliseconds.
    pub interval_ms: u64,
    /// Heartbeats the old primary acknowledged as committed.
    pub committed: u64,
    /// The sequence number of the last heartbeat committed on the old primary.
    pub last_committed_seq: Option<u64>,
    /// Its commit time (RFC 3339, the old primary's clock).
    pub last_committed_at: Option<String>,
    /// The sequence number of the last heartbeat present on the new primary after the failover.
    pub last_present_seq: Option<u64>,
    /// Its commit time (RFC 3339, the old primary's clock, replicated).
    pub last_present_at: Option<String>,
    /// Committed heartbeats missing on the new primary: the data the failover lost.
    pub lost: u64,
}

/// One run of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunReport {
    /// `failover` or `failback`.
    pub direction: String,
    pub run_id: String,
    /// `succeeded`, `failed`, `interrupted`...
    pub state: String,
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
    pub state: String,
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
