//! Engine tests with scripted in-process steps under a paused clock: retries, timeouts, concurrency,
//! failure propagation and resume, without sleeping for real.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::events::Silent;
use super::lifecycle::{RunOptions, begin, resume};
use super::retry::RetryPolicy;
use super::state::{RunState, StepState};
use super::*;
use crate::clock::{Clock, TokioClock};
use crate::journal::StateDir;
use crate::plan::{Direction, Plan, parse};
use crate::step::{BuildContext, Observation, Outputs, Receipt, Registry, Step, StepContext, StepError, TypedStep};

/// What scripted steps did, shared with the test.
#[derive(Default)]
struct World {
    /// Step id → number of `act` calls.
    acts: BTreeMap<String, u32>,
    /// (step id, start, end) of each act, on the clock.
    spans: Vec<(String, SystemTime, SystemTime)>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ScriptParams {
    /// How long `act` takes.
    #[serde(default)]
    takes_ms: u64,
    /// Retryable failures before the first success.
    #[serde(default)]
    fail_times: u32,
    /// Fail with a fatal error.
    #[serde(default)]
    fatal: bool,
    /// Output `value` set to this.
    #[serde(default)]
    value: String,
    /// Panic in `act`, like a buggy step type.
    #[serde(default)]
    panic: bool,
    /// Poll forever, saying this is what the step waits for.
    #[serde(default)]
    waiting_for: Option<String>,
}

struct Script(Arc<Mutex<World>>);

impl TypedStep for Script {
    type Params = ScriptParams;
    const NAME: &'static str = "script";
    const SUMMARY: &'static str = "A scripted step for engine tests.";
    const OUTPUTS: &'static [crate::step::OutputSpec] = &[crate::step::OutputSpec::string("value", "The value.")];

    fn build(&self, params: ScriptParams, _: &BuildContext) -> Box<dyn Step> {
        Box::new(ScriptStep { params, world: self.0.clone() })
    }
}

struct ScriptStep {
    params: ScriptParams,
    world: Arc<Mutex<World>>,
}

#[async_trait]
impl Step for ScriptStep {
    fn describe(&self) -> String {
        format!("script taking {}ms", self.params.takes_ms)
    }

    async fn observe(&self, ctx: &StepContext) -> Result<Observation, StepError> {
        let done = self.world.lock().unwrap().spans.iter().any(|(id, ..)| *id == ctx.step_id);
        Ok(if done { Observation::Done(self.outputs()) } else { Observation::NotDone })
    }

    async fn poll(&self, _ctx: &StepContext, _receipt: &Receipt) -> crate::step::Progress {
        match &self.params.waiting_for {
            Some(what) => crate::step::Progress::Waiting(what.clone()),
            None => crate::step::Progress::Done,
        }
    }

    async fn act(&self, ctx: &StepContext) -> Result<Receipt, StepError> {
        let start = ctx.clock.now();
        let acts = {
            let mut world = self.world.lock().unwrap();
            let n = world.acts.entry(ctx.step_id.clone()).or_default();
            *n += 1;
            *n
        };
        ctx.sleep(Duration::from_millis(self.params.takes_ms)).await;
        assert!(!self.params.panic, "scripted panic");
        if self.params.fatal {
            return Err(StepError::fatal("scripted fatal error"));
        }
        if acts <= self.params.fail_times {
            return Err(StepError::retryable(format!("scripted failure {acts}")));
        }
        self.world.lock().unwrap().spans.push((ctx.step_id.clone(), start, ctx.clock.now()));
        Ok(Receipt::NONE)
    }

    async fn verify(&self, _ctx: &StepContext, _receipt: &Receipt) -> Result<Outputs, StepError> {
        Ok(self.outputs())
    }
}

impl ScriptStep {
    fn outputs(&self) -> Outputs {
        Outputs::from([("value".to_string(), self.params.value.clone())])
    }
}

struct Fixture {
    world: Arc<Mutex<World>>,
    engine: Engine,
    state: StateDir,
}

fn fixture() -> Fixture {
    let world = Arc::new(Mutex::new(World::default()));
    let mut registry = Registry::default();
    registry.register(Script(world.clone()));
    let clock: Arc<dyn Clock> =
        Arc::new(TokioClock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)));
    let retry = RetryPolicy { base: Duration::from_secs(1), max: Duration::from_secs(8) };
    let engine = Engine { registry, clock, reporter: Arc::new(Silent), retry, wait: Default::default() };
    Fixture { world, engine, state: StateDir::new(crate::journal::tests::tempdir()) }
}

fn plan(f: &Fixture, failover: &str) -> Plan {
    let text = format!(
        "name: p\nregions: {{primary: a, secondary: b}}\nobjectives: {{rto: 15m, rpo: 5m}}\n\
         failover:\n{failover}failback:\n  - {{id: back, type: script}}\n"
    );
    parse(Path::new("p.yaml"), &text, &f.engine.registry).unwrap_or_else(|e| panic!("{e}"))
}

async fn run(f: &Fixture, plan: &Plan) -> (RunState, super::state::RunView) {
    // Tests run a plan again on purpose (to see what is found in place): each run is a new one.
    let options = RunOptions { new_run: true, ..RunOptions::default() };
    let mut active = begin(&f.state, plan, Direction::Failover, f.engine.clock.as_ref(), &options).unwrap();
    let mut never = std::pin::pin!(std::future::pending::<String>());
    let state = f.engine.execute(plan, &mut active.journal, &mut active.view, never.as_mut()).await.unwrap();
    (state, active.view)
}

#[tokio::test(start_paused = true)]
async fn independent_steps_overlap_and_the_run_takes_the_critical_path() {
    let f = fixture();
    let p = plan(
        &f,
        "  - {id: a, type: script, with: {takes_ms: 1000}}\n  - {id: b, type: script, with: {takes_ms: 1000}}\n  - {id: c, type: script, after: [a, b]}\n",
    );
    let (state, view) = run(&f, &p).await;
    assert_eq!(state, RunState::Succeeded);
    let world = f.world.lock().unwrap();
    let span = |id: &str| world.spans.iter().find(|s| s.0 == id).cloned().unwrap();
    let (a, b, c) = (span("a"), span("b"), span("c"));
    assert!(a.1 < b.2 && b.1 < a.2, "a and b overlap");
    assert!(c.1 >= a.2 && c.1 >= b.2, "c starts after both");
    assert_eq!(view.finished_at.unwrap().duration_since(view.started_at).unwrap(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_with_backoff() {
    let f = fixture();
    let p = plan(&f, "  - {id: flaky, type: script, retries: 2, with: {fail_times: 2}}\n");
    let (state, view) = run(&f, &p).await;
    assert_eq!(state, RunState::Succeeded);
    assert_eq!(f.world.lock().unwrap().acts["flaky"], 3);
    assert_eq!(view.step("flaky").unwrap().attempts, 3);
}

#[tokio::test(start_paused = true)]
async fn retries_run_out_and_fatal_errors_are_not_retried() {
    let f = fixture();
    let p = plan(
        &f,
        "  - {id: flaky, type: script, retries: 1, with: {fail_times: 5}}\n  - {id: bad, type: script, retries: 3, with: {fatal: true}}\n",
    );
    let (state, view) = run(&f, &p).await;
    let RunState::Failed { message } = state else { panic!("{state:?}") };
    assert!(message.contains("failed"), "{message}");
    assert_eq!(f.world.lock().unwrap().acts["flaky"], 2);
    assert_eq!(f.world.lock().unwrap().acts["bad"], 1);
    let StepState::Failed { error, .. } = &view.step("flaky").unwrap().state else { panic!() };
    assert_eq!(error, "scripted failure 2 (gave up after 2 attempts)");
}

#[tokio::test(start_paused = true)]
async fn a_step_past_its_timeout_fails_the_run_naming_it() {
    let f = fixture();
    let p = plan(&f, "  - {id: slow, type: script, timeout: 5s, with: {takes_ms: 60000}}\n");
    let (state, _) = run(&f, &p).await;
    assert_eq!(state, RunState::Failed { message: "step `slow` failed: timed out after 5.0s".into() });
}

#[tokio::test(start_paused = true)]
async fn a_timeout_says_what_the_step_was_waiting_for() {
    let f = fixture();
    let with = "{takes_ms: 10, waiting_for: '2 of 3 pods ready; app-1 (ImagePullBackOff)'}";
    let p = plan(&f, &format!("  - {{id: slow, type: script, timeout: 5s, with: {with}}}\n"));
    let (state, _) = run(&f, &p).await;
    let message = "step `slow` failed: timed out after 5.0s waiting for 2 of 3 pods ready; app-1 (ImagePullBackOff)";
    assert_eq!(state, RunState::Failed { message: message.into() });
}

#[tokio::test(start_paused = true)]
async fn a_failure_skips_dependants_and_lets_running_steps_finish() {
    let f = fixture();
    let p = plan(
        &f,
        "  - {id: bad, type: script, with: {fatal: true, takes_ms: 10}}\n  - {id: long, type: script, with: {takes_ms: 5000}}\n  - {id: after-bad, type: script, after: [bad]}\n  - {id: after-long, type: script, after: [long]}\n",
    );
    let (state, view) = run(&f, &p).await;
    assert!(matches!(state, RunState::Failed { .. }));
    assert_eq!(view.step("long").unwrap().state.label(), "succeeded");
    assert_eq!(view.step("after-bad").unwrap().state.label(), "skipped");
    assert_eq!(view.step("after-long").unwrap().state.label(), "pending", "no new step starts after a failure");
}

#[tokio::test(start_paused = true)]
async fn outputs_flow_into_templates() {
    let f = fixture();
    let p = plan(
        &f,
        "  - {id: a, type: script, with: {value: db.example}}\n  - {id: b, type: script, after: [a], with: {value: 'postgres://{{ steps.a.outputs.value }}/app'}}\n",
    );
    let (_, view) = run(&f, &p).await;
    let StepState::Succeeded { outputs, .. } = &view.step("b").unwrap().state else { panic!() };
    assert_eq!(outputs["value"], "postgres://db.example/app");
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_run_resumes_without_repeating_finished_steps() {
    let f = fixture();
    let p = plan(&f, "  - {id: a, type: script}\n  - {id: b, type: script, after: [a], with: {takes_ms: 10000}}\n");
    let mut active = begin(&f.state, &p, Direction::Failover, f.engine.clock.as_ref(), &RunOptions::default()).unwrap();
    let clock = f.engine.clock.clone();
    let mut ctrl_c = std::pin::pin!(async move {
        clock.sleep(Duration::from_secs(5)).await;
        "Ctrl-C".to_string()
    });
    let state = f.engine.execute(&p, &mut active.journal, &mut active.view, ctrl_c.as_mut()).await.unwrap();
    assert_eq!(state, RunState::Interrupted { reason: "Ctrl-C".into() });
    let run_id = active.view.run_id.clone();
    drop(active);

    let mut active = resume(&f.state, &run_id, &p, f.engine.clock.as_ref(), &RunOptions::default()).unwrap();
    let mut never = std::pin::pin!(std::future::pending::<String>());
    let state = f.engine.execute(&p, &mut active.journal, &mut active.view, never.as_mut()).await.unwrap();
    assert_eq!(state, RunState::Succeeded);
    let world = f.world.lock().unwrap();
    assert_eq!(world.acts["a"], 1, "a succeeded before the interruption and is not run again");
    assert_eq!(world.acts["b"], 2, "b was cut off mid-act, observed absent, and acted again");
}

#[tokio::test(start_paused = true)]
async fn a_changed_plan_is_refused_on_resume_unless_allowed() {
    let f = fixture();
    let p = plan(&f, "  - {id: a, type: script, with: {takes_ms: 10000}}\n");
    let active = begin(&f.state, &p, Direction::Failover, f.engine.clock.as_ref(), &RunOptions::default()).unwrap();
    let run_id = active.view.run_id.clone();
    drop(active); // a crash: the run stays "running"
    let changed = plan(&f, "  - {id: a, type: script, with: {takes_ms: 20000}}\n");
    let err = resume(&f.state, &run_id, &changed, f.engine.clock.as_ref(), &RunOptions::default()).err().unwrap();
    assert!(err.to_string().contains("changed since run"), "{err}");
    let allow = RunOptions { allow_plan_change: true, ..RunOptions::default() };
    resume(&f.state, &run_id, &changed, f.engine.clock.as_ref(), &allow).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_panicking_step_type_fails_its_step_not_the_process() {
    let f = fixture();
    let p = plan(&f, "  - {id: buggy, type: script, with: {panic: true}}\n  - {id: fine, type: script}\n");
    let (state, view) = run(&f, &p).await;
    let RunState::Failed { message } = state else { panic!("{state:?}") };
    assert!(message.starts_with("step `buggy` failed: the step type failed unexpectedly"), "{message}");
    assert_eq!(view.step("fine").unwrap().state.label(), "succeeded");
}

#[tokio::test(start_paused = true)]
async fn a_forced_resume_with_a_changed_plan_runs_its_new_steps() {
    let f = fixture();
    let p = plan(&f, "  - {id: a, type: script}\n  - {id: b, type: script, after: [a], with: {fatal: true}}\n");
    let (state, view) = run(&f, &p).await;
    assert!(matches!(state, RunState::Failed { .. }));
    let fixed = plan(&f, "  - {id: a, type: script}\n  - {id: c, type: script, after: [a]}\n");
    let allow = RunOptions { allow_plan_change: true, ..RunOptions::default() };
    let mut active = resume(&f.state, &view.run_id, &fixed, f.engine.clock.as_ref(), &allow).unwrap();
    let mut never = std::pin::pin!(std::future::pending::<String>());
    let state = f.engine.execute(&fixed, &mut active.journal, &mut active.view, never.as_mut()).await.unwrap();
    assert_eq!(state, RunState::Succeeded);
    let ids: Vec<&str> = active.view.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a", "c"], "the run follows the new plan's steps");
    let world = f.world.lock().unwrap();
    assert_eq!((world.acts["a"], world.acts["c"]), (1, 1));
}

#[path = "on_failure_tests.rs"]
mod on_failure;
