//! The contract between the engine and step types.
//!
//! Every step has the same life: *observe* the world (is the effect already there?), *act*, *poll*
//! until the effect is real, *verify*. Observe-before-act is what makes a resumed or repeated run safe.
//! The engine drives these phases; it knows nothing of what a step touches.
//!
//! **What a step learns is journaled, not kept.** A step is built afresh for every run and every
//! resume, and takes `&self`: it holds no state between phases. What `act` learns and the later
//! phases need (the record's previous target, a change id, that a promotion was accepted) is its
//! [`Receipt`], which the engine writes to the journal (`step_acted`, synced) before anything else
//! happens. `poll` and `verify` get the receipt back, in the same process or after a crash, so a
//! step's outputs are the same whether or not its process died. A receipt never holds a secret
//! value. A step that learns nothing returns [`Receipt::NONE`], which is not journaled; such a step
//! observes again when resumed.
//!
//! **The engine owns waiting.** `poll` looks once and says [`Progress::Done`], `Waiting(why)` or
//! `Failed(error)`; the engine calls it at once, then backs off from about 100 ms to the step's
//! [`Step::poll_interval`], tolerates a few consecutive retryable poll errors, and quotes the last
//! `why` if the step times out. No step type sleeps or loops.
//!
//! **Markers in the world.** Between `act`'s change and its `step_acted` record reaching the disk,
//! a crash loses the receipt: the resumed step observes afresh. Only where that window matters
//! does a step also leave a marker in the world, which its `observe` reads back:
//!
//! - `aws.rds.promote_replica` tags the instance (`drctl:promoted`, with the lag it was let through
//!   with) right after AWS accepts `PromoteReadReplica`. A promoted instance can look like a replica
//!   for a while (moto keeps the source field), and promoting again, or gating again on a lag that
//!   no longer exists, must not happen; the tag also gives a crashed run its measured lag back.
//! - `aws.rds.fence` tags the instance (`drctl:fenced-from`) with the security groups it replaces,
//!   before replacing them: a fenced instance no longer says what it was in, and those groups are
//!   what failback needs (`previous_security_groups`); the SIGKILL trial in `tests/kill_aws.rs`
//!   showed them lost without it.
//! - `k8s.restart` and `k8s.rollout_undo` write an annotation naming the run and step in the same
//!   patch as their change: restarting or undoing again is not idempotent, and a patch and its
//!   marker are one atomic write, so no crash separates them.
//!
//! No other step type needs one: their change is idempotent (Route53's UPSERT, a scale, an apply)
//! or derived from the run and step (a Secrets Manager rotation's request token), so observing
//! again after a lost receipt finds the effect; what is lost is at most a value from before the
//! change (Route53's `previous_target`, a scale's `previous_replicas`), reported as found.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Clock;
use crate::plan::de::{DeError, from_node};
pub use crate::plan::params::{ParamProblem, PlanContext};
use crate::plan::yaml::Node;
use crate::plan::{Direction, OnFailure, Plan};

mod outputs;
pub use outputs::{OutputSpec, OutputType, Presence};

/// What a step hands to the steps that depend on it (`{{ steps.ID.outputs.NAME }}`).
/// Values are journaled and shown: a secret's value never belongs here, only a reference to it.
pub type Outputs = BTreeMap<String, String>;

/// What observation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The effect is already in place; the step succeeds without acting.
    Done(Outputs),
    /// The effect is absent: act.
    NotDone,
    /// The change is under way already (an earlier attempt acted and its receipt was lost with its
    /// process, or AWS is still applying it): the engine polls and verifies with this receipt
    /// instead of acting again.
    InProgress(Receipt),
}

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Transient: throttling, a 5xx, a connection reset, a check that has not passed yet.
    Retryable,
    /// Retrying gives the same answer: bad input, not found, access denied, refused by the operator.
    Fatal,
}

/// A step's failure: what went wrong and, where known, what the operator should do.
/// The message must never contain a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    pub kind: ErrorKind,
    pub message: String,
}

impl StepError {
    /// A failure that may pass on a later attempt.
    pub fn retryable(message: impl Into<String>) -> Self {
        StepError { kind: ErrorKind::Retryable, message: message.into() }
    }

    /// A failure that no retry will fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        StepError { kind: ErrorKind::Fatal, message: message.into() }
    }

    /// Whether the engine may try again.
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Retryable
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StepError {}

/// What `act` learned that the later phases need: the record's previous target, a change id, that
/// a promotion was accepted. The engine journals it (`step_acted`) before anything else happens and
/// hands it to [`Step::poll`] and [`Step::verify`], in this process or after a crash. It is shown in
/// the journal: never a secret value, only references to one.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Receipt(serde_json::Value);

impl Receipt {
    /// A step that learned nothing worth keeping; not journaled.
    pub const NONE: Receipt = Receipt(serde_json::Value::Null);

    /// The receipt holding `what` (a step type's own serializable struct).
    pub fn of<T: Serialize>(what: &T) -> Receipt {
        Receipt(serde_json::to_value(what).expect("a receipt is plain data and always serializes"))
    }

    /// The step type's struct back. A receipt another version of drctl wrote in another shape is a
    /// fatal error saying so.
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        serde_json::from_value(self.0.clone()).map_err(|e| {
            StepError::fatal(format!(
                "the step's journaled receipt cannot be read ({e}); it was written by another version of drctl: \
                 finish the run with that version, or abandon it and start a new run"
            ))
        })
    }

    /// Whether the step learned nothing.
    pub fn is_none(&self) -> bool {
        self.0.is_null()
    }
}

/// What one [`Step::poll`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The effect is real: the engine verifies.
    Done,
    /// Not yet, and why ("2 of 3 pods ready; app-7d9f: ImagePullBackOff"): the engine polls again
    /// and quotes the last reason if the step times out. No secret values.
    Waiting(String),
    /// The look failed. A retryable error is tolerated a few times in a row (journaled as
    /// `step_wait_error`); a fatal one ends the attempt at once.
    Failed(StepError),
}

impl Progress {
    /// `Failed` for an error, else the progress: lets a poll use `?` inside.
    pub fn of(result: Result<Progress, StepError>) -> Progress {
        result.unwrap_or_else(Progress::Failed)
    }
}

/// How often the engine polls a step that does not say ([`Step::poll_interval`]).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// What the engine tells a step about the run it is part of.
#[derive(Clone)]
pub struct StepContext {
    pub run_id: String,
    pub step_id: String,
    /// 1 for the first attempt in this process.
    pub attempt: u32,
    /// When this step first started, across resumes (from the journal). A `wait` step uses it so a
    /// resumed run waits only for what is left.
    pub first_started_at: SystemTime,
    /// The run's one source of time.
    pub clock: Arc<dyn Clock>,
}

impl StepContext {
    /// Sleeps on the run's clock (so tests need not sleep for real). Not for waiting on an effect:
    /// that is [`Step::poll`]'s job, and the engine's.
    pub async fn sleep(&self, duration: Duration) {
        self.clock.sleep(duration).await
    }
}

/// One configured step, ready to run. Built by a step type from the plan's `with:` parameters after
/// templates are rendered. It keeps no state between phases: what `act` learns goes in its
/// [`Receipt`] (see the module docs).
#[async_trait]
pub trait Step: Send + Sync {
    /// One line saying what the step does, for `--dry-run`, progress and reports. No secret values.
    fn describe(&self) -> String;

    /// Looks at the world without changing it: is the effect already there?
    async fn observe(&self, ctx: &StepContext) -> Result<Observation, StepError>;

    /// Makes the change and returns what it learned. Called only after `observe` said `NotDone`.
    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError>;

    /// Looks once whether the change is real yet (a record in sync, a replica promoted). Never
    /// sleeps or loops: the engine calls it again. Most steps need nothing.
    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> Progress {
        Progress::Done
    }

    /// The longest the engine waits between two polls (it starts at about 100 ms and backs off).
    fn poll_interval(&self) -> Duration {
        DEFAULT_POLL_INTERVAL
    }

    /// Confirms the effect and returns the step's outputs, from the world and the receipt.
    async fn verify(&self, ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError>;

    /// Read-only: could this step run now, and would it succeed as far as can be known without
    /// acting? Never writes. Most steps have nothing to check (no findings).
    async fn preflight(&self, _ctx: &StepContext) -> Vec<Finding> {
        Vec::new()
    }
}

/// How bad a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Checked and fine.
    Ok,
    /// The step may still succeed, but something deserves attention.
    Warning,
    /// The step would fail (or could not be checked at all) as things stand.
    Problem,
}

/// One result of a read-only [`Step::preflight`] check: which check, how it went, and what to do.
/// Never holds a secret value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// A short stable name (`replica_streaming`, `rbac`, `deployment_exists`): a metrics label.
    pub check: String,
    pub severity: Severity,
    /// What was found.
    pub message: String,
    /// What to do about it; empty for an ok finding.
    pub fix: String,
    /// A replica's lag in seconds, when the check measured one (`drctl_replica_lag_seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
}

impl Finding {
    /// A check that passed.
    pub fn ok(check: &str, message: impl Into<String>) -> Finding {
        Finding {
            check: check.into(),
            severity: Severity::Ok,
            message: message.into(),
            fix: String::new(),
            lag_seconds: None,
        }
    }

    /// Something worth attention that does not stop the step.
    pub fn warning(check: &str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { severity: Severity::Warning, fix: fix.into(), ..Finding::ok(check, message) }
    }

    /// Something that would make the step fail.
    pub fn problem(check: &str, message: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { severity: Severity::Problem, fix: fix.into(), ..Finding::ok(check, message) }
    }

    /// Ok with `ok_message` when `result` is, else a problem quoting the error, with `fix`.
    pub fn of<T>(check: &str, result: &Result<T, StepError>, ok_message: impl Into<String>, fix: &str) -> Finding {
        match result {
            Ok(_) => Finding::ok(check, ok_message),
            Err(e) => Finding::problem(check, e.message.clone(), fix),
        }
    }

    /// The same finding with a measured lag.
    pub fn with_lag(mut self, seconds: f64) -> Finding {
        self.lag_seconds = Some(seconds);
        self
    }
}

/// A step type as plans name it (`http.check`): how to check and build its parameters, what outputs
/// it promises, and its parameters' JSON Schema. Implemented once per type through [`TypedStep`].
pub trait StepKind: Send + Sync {
    /// The name plans use in `type:`.
    fn name(&self) -> &'static str;

    /// One sentence on what the type does, for `--help`-like listings and the schema.
    fn summary(&self) -> &'static str;

    /// The outputs a successful step of this type sets, typed; templates may name only these.
    fn outputs(&self) -> &'static [OutputSpec];

    /// How plans and the engine treat steps of this type.
    fn policy(&self) -> TypePolicy;

    /// Checks `with:` parameters without building anything (templates left unrendered).
    fn check(&self, with: &Node) -> Result<(), DeError>;

    /// Checks well-formed `with:` parameters against the rest of the plan (files beside it, the
    /// step's timeout). Parameters that do not parse pass: [`StepKind::check`] reports them.
    fn check_in_plan(&self, with: &Node, plan: &PlanContext) -> Result<(), DeError>;

    /// Builds a runnable step from rendered `with:` parameters.
    fn build(&self, with: &Node, context: &BuildContext) -> Result<Box<dyn Step>, DeError>;

    /// The JSON Schema of the `with:` parameters.
    fn params_schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema;

    /// What `drctl explain` says beyond the parameters' schema and the outputs' declarations: a
    /// description, an example, and how the step fails.
    fn docs(&self) -> StepDocs {
        StepDocs::NONE
    }
}

/// Reference text of a step type for `drctl explain` and `docs/steps.md`. Parameters are documented
/// by their own doc comments (through the JSON Schema), outputs by their [`OutputSpec`]s; this holds
/// what neither says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepDocs {
    /// What the type does, in a few sentences (the summary says it in one).
    pub description: &'static str,
    /// A `with:` block that validates, as YAML without the `with:` line and without indentation.
    pub example: &'static str,
    /// How the step fails and what is retried, where that is worth saying; empty otherwise.
    pub failure: &'static str,
}

impl StepDocs {
    /// No reference text: tests require every built-in type to have some.
    pub const NONE: StepDocs = StepDocs { description: "", example: "", failure: "" };
}

/// How plans and the engine treat every step of a type, beyond its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypePolicy {
    /// A pure check (it changes nothing): its success reads "passed", never "already done".
    pub check: bool,
    /// The step's timeout when the plan sets none; `None` takes the plan's default.
    pub default_timeout: Option<Duration>,
    /// Whether `retries` may be set (and the plan's default retries apply).
    pub retries: bool,
    /// What a failure does to the run when the plan does not say.
    pub on_failure: OnFailure,
}

impl TypePolicy {
    /// A step that changes the world: plan defaults apply, a failure stops the run.
    pub const ACTION: TypePolicy =
        TypePolicy { check: false, default_timeout: None, retries: true, on_failure: OnFailure::Stop };
    /// A pure check: like an action, but its success reads "passed".
    pub const CHECK: TypePolicy = TypePolicy { check: true, ..TypePolicy::ACTION };
}

/// The typed way to write a step type: parameters are a plain serde struct; everything else in
/// [`StepKind`] follows from it.
pub trait TypedStep: Send + Sync + 'static {
    /// The `with:` parameters.
    type Params: DeserializeOwned + JsonSchema;
    /// The name plans use in `type:`.
    const NAME: &'static str;
    /// One sentence on what the type does.
    const SUMMARY: &'static str;
    /// The outputs a successful step sets, each with its type and meaning.
    const OUTPUTS: &'static [OutputSpec];
    /// How plans and the engine treat the type; most types change something ([`TypePolicy::ACTION`]).
    const POLICY: TypePolicy = TypePolicy::ACTION;
    /// Reference text for `drctl explain`.
    const DOCS: StepDocs = StepDocs::NONE;

    /// Builds the runnable step.
    fn build(&self, params: Self::Params, context: &BuildContext) -> Box<dyn Step>;

    /// Checks parameters against the rest of the plan; an error names the `with:` key at fault.
    fn check_in_plan(_params: &Self::Params, _plan: &PlanContext) -> Result<(), ParamProblem> {
        Ok(())
    }
}

impl<T: TypedStep> StepKind for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn summary(&self) -> &'static str {
        T::SUMMARY
    }

    fn outputs(&self) -> &'static [OutputSpec] {
        T::OUTPUTS
    }

    fn policy(&self) -> TypePolicy {
        T::POLICY
    }

    fn check(&self, with: &Node) -> Result<(), DeError> {
        from_node::<T::Params>(with).map(drop)
    }

    fn check_in_plan(&self, with: &Node, plan: &PlanContext) -> Result<(), DeError> {
        let Ok(params) = from_node::<T::Params>(with) else { return Ok(()) };
        T::check_in_plan(&params, plan).map_err(|p| p.locate(with))
    }

    fn build(&self, with: &Node, context: &BuildContext) -> Result<Box<dyn Step>, DeError> {
        Ok(TypedStep::build(self, from_node(with)?, context))
    }

    fn params_schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<T::Params>()
    }

    fn docs(&self) -> StepDocs {
        T::DOCS
    }
}

/// What a step type may know of the run it is built for.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    pub plan: &'a Plan,
    pub direction: Direction,
}

impl BuildContext<'_> {
    /// The region this run moves to: the secondary for a failover, the primary for a failback.
    /// Steps that take a region default to it.
    pub fn target_region(&self) -> &str {
        match self.direction {
            Direction::Failover => &self.plan.regions.secondary,
            Direction::Failback => &self.plan.regions.primary,
        }
    }

    /// The Kubernetes context of the region this run moves to, when the plan names contexts.
    pub fn target_context(&self) -> Option<&str> {
        let contexts = self.plan.kubernetes.as_ref()?;
        Some(match self.direction {
            Direction::Failover => &contexts.secondary,
            Direction::Failback => &contexts.primary,
        })
    }

    /// The region this run moves away from.
    pub fn source_region(&self) -> &str {
        match self.direction {
            Direction::Failover => &self.plan.regions.primary,
            Direction::Failback => &self.plan.regions.secondary,
        }
    }
}

/// The step types a plan may use, by name.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Arc<dyn StepKind>>,
}

impl Registry {
    /// Adds a step type, replacing one of the same name.
    pub fn register(&mut self, kind: impl StepKind + 'static) -> &mut Self {
        self.kinds.insert(kind.name(), Arc::new(kind));
        self
    }

    /// The step type called `name`.
    pub fn get(&self, name: &str) -> Option<&dyn StepKind> {
        self.kinds.get(name).map(|k| k.as_ref())
    }

    /// Every step type, by name.
    pub fn kinds(&self) -> impl Iterator<Item = &dyn StepKind> {
        self.kinds.values().map(|k| k.as_ref())
    }

    /// The names of every step type, for error messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
}
