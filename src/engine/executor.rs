//! Runs a plan direction: starts every step whose dependencies succeeded, concurrently, drives each
//! through observe → act → wait → verify with retries and a timeout, and journals every transition
//! (synced) before the run moves on.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::events::{Event, Phase, Reporter, StepInfo};
use super::retry::RetryPolicy;
use super::state::{InvalidTransition, RunState, RunView, StepState, step_of};
use super::step_task::StepTask;
use super::wait::WaitPolicy;
use crate::clock::Clock;
use crate::journal::{Entry, Journal, JournalError, Record};
use crate::plan::graph::Graph;
use crate::plan::template::{self, Scope};
use crate::plan::{OnFailure, Plan, StepSpec};
use crate::step::{BuildContext, Outputs, Registry, Step, StepContext};

/// Executes runs. Holds no run state: that lives in the journal and the [`RunView`] folded from it.
pub struct Engine {
    pub registry: Registry,
    pub clock: Arc<dyn Clock>,
    pub reporter: Arc<dyn Reporter>,
    pub retry: RetryPolicy,
    /// How steps are polled after they act.
    pub wait: WaitPolicy,
}

/// Why a run could not go on (as opposed to a step failing, which is a normal outcome).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Invalid(#[from] InvalidTransition),
}

/// A step's final result as its task reports it.
pub(super) type StepResult = Result<(Outputs, bool), String>;

/// A message from a step task to the engine loop; records are acknowledged once synced to disk.
pub(super) enum FromStep {
    Record(Record, oneshot::Sender<()>),
    Phase(String, Phase),
}

impl Engine {
    /// Runs the steps of `view.direction` that have not succeeded, until all succeed, one fails, or
    /// `interrupt` completes (with the reason). Returns the run's final state.
    pub async fn execute(
        &self,
        plan: &Plan,
        journal: &mut Journal,
        view: &mut RunView,
        interrupt: Pin<&mut (dyn Future<Output = String> + Send)>,
    ) -> Result<RunState, EngineError> {
        let specs = plan.steps(view.direction);
        let graph = Graph::of(specs);
        let order = graph.order().unwrap_or_else(|_| (0..specs.len()).collect());
        let mut view_index = Vec::with_capacity(specs.len());
        for spec in specs {
            let index = view.steps.iter().position(|s| s.id == spec.id).ok_or_else(|| InvalidTransition {
                seq: 0,
                message: format!(
                    "the run's journal has no step `{}`; resume with the plan the run started with",
                    spec.id
                ),
            })?;
            view_index.push(index);
        }
        let mut run = Loop {
            engine: self,
            plan,
            specs,
            graph,
            order,
            view_index,
            journal,
            view,
            staged: Vec::new(),
            failure: None,
            warnings: Vec::new(),
        };
        run.announce();
        run.drive(interrupt).await
    }
}

struct Loop<'a> {
    engine: &'a Engine,
    plan: &'a Plan,
    specs: &'a [StepSpec],
    graph: Graph,
    order: Vec<usize>,
    /// Where each plan step sits in `view.steps`.
    view_index: Vec<usize>,
    journal: &'a mut Journal,
    view: &'a mut RunView,
    /// The first failure, which ends the run once running steps finish.
    failure: Option<String>,
    /// Steps that failed with `on_failure: continue`, in the order they failed.
    warnings: Vec<String>,
    /// Records applied to the view but not yet synced to the journal.
    staged: Vec<Entry>,
}

impl Loop<'_> {
    fn announce(&self) {
        let steps = self
            .specs
            .iter()
            .enumerate()
            .map(|(i, s)| StepInfo {
                id: s.id.clone(),
                title: s.title().to_string(),
                step_type: s.step_type.clone(),
                done: matches!(self.state(i), StepState::Succeeded { .. }),
            })
            .collect();
        let event = Event::RunStarted {
            run_id: self.view.run_id.clone(),
            plan: self.view.plan.clone(),
            direction: self.view.direction,
            resumed: self.view.resumes > 0,
            steps,
        };
        self.engine.reporter.event(self.engine.clock.now(), &event);
    }

    /// The state of step `i` (an index into the plan's step list).
    fn state(&self, i: usize) -> &StepState {
        &self.view.steps[self.view_index[i]].state
    }

    async fn drive(
        &mut self,
        mut interrupt: Pin<&mut (dyn Future<Output = String> + Send)>,
    ) -> Result<RunState, EngineError> {
        let (tx, mut rx) = mpsc::unbounded_channel::<FromStep>();
        let mut tasks: JoinSet<(usize, StepResult)> = JoinSet::new();
        // Which step each task runs, so a step type's panic fails its step instead of the run.
        let mut task_steps: HashMap<tokio::task::Id, usize> = HashMap::new();
        loop {
            self.schedule(&tx, &mut tasks, &mut task_steps)?;
            if tasks.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                reason = &mut interrupt => {
                    tasks.abort_all();
                    self.commit(vec![Record::RunInterrupted { reason }])?;
                    return Ok(self.view.state.clone());
                }
                Some(message) = rx.recv() => {
                    let mut batch = vec![message];
                    while let Ok(more) = rx.try_recv() {
                        batch.push(more);
                    }
                    self.take_messages(batch)?;
                }
                Some(joined) = tasks.join_next_with_id() => {
                    // Every step that finished meanwhile too: their records go out in one commit.
                    let mut finished = vec![joined];
                    while let Some(more) = tasks.try_join_next_with_id() {
                        finished.push(more);
                    }
                    for joined in finished {
                        let (index, result) = match joined {
                            Ok((_, (index, result))) => (index, result),
                            Err(e) => {
                                let index = task_steps[&e.id()];
                                (index, Err(format!("the step type failed unexpectedly (a bug in drctl): {e}")))
                            }
                        };
                        self.finish_step(index, result)?;
                    }
                }
            }
        }
        let (succeeded, message) = match (&self.failure, self.warnings.as_slice()) {
            (Some(message), _) => (false, message.clone()),
            (None, []) => (true, format!("{} completed", self.view.direction)),
            (None, failed) => {
                let ids: Vec<String> = failed.iter().map(|id| format!("`{id}`")).collect();
                let direction = self.view.direction;
                let ids = ids.join(", ");
                (
                    true,
                    format!(
                        "{direction} completed with warnings: {ids} failed and the run went on (on_failure: continue)"
                    ),
                )
            }
        };
        self.commit(vec![Record::RunFinished { succeeded, message }])?;
        Ok(self.view.state.clone())
    }

    /// Journals skips and starts for every step that became ready, then spawns the started ones.
    fn schedule(
        &mut self,
        tx: &mpsc::UnboundedSender<FromStep>,
        tasks: &mut JoinSet<(usize, StepResult)>,
        task_steps: &mut HashMap<tokio::task::Id, usize>,
    ) -> Result<(), EngineError> {
        let mut starting = Vec::new();
        // In dependency order, so a skip staged here is seen by the steps after it.
        for position in 0..self.order.len() {
            let i = self.order[position];
            if *self.state(i) != StepState::Pending {
                continue;
            }
            let deps = &self.graph.deps[i];
            let blocked_by = deps.iter().find(|&&d| {
                matches!(self.state(d), StepState::Failed { continued: false, .. } | StepState::Skipped { .. })
            });
            if let Some(&dep) = blocked_by {
                let reason = format!("not run: it runs after `{}`, which did not succeed", self.specs[dep].id);
                self.stage(vec![Record::StepSkipped { step: self.specs[i].id.clone(), reason }])?;
            } else if self.failure.is_none() && deps.iter().all(|&d| self.state(d).lets_dependants_run()) {
                self.stage(vec![Record::StepStarted { step: self.specs[i].id.clone(), attempt: 1 }])?;
                starting.push(i);
            }
        }
        // One sync for the records of finished steps and of the steps they unblock.
        self.flush()?;
        for i in starting {
            let spec = &self.specs[i];
            match self.build(spec) {
                Ok(step) => {
                    let task = StepTask {
                        step,
                        spec: spec.clone(),
                        context: self.context(spec),
                        receipt: self.view.step(&spec.id).and_then(|s| s.receipt.clone()),
                        retry: self.engine.retry,
                        wait: self.engine.wait,
                        tx: tx.clone(),
                        last_error: Default::default(),
                        last_why: Default::default(),
                    };
                    let handle = tasks.spawn(async move { (i, task.run().await) });
                    task_steps.insert(handle.id(), i);
                }
                Err(error) => self.finish_step(i, Err(error))?,
            }
        }
        Ok(())
    }

    /// Renders the step's templates with the outputs of the steps it runs after, and builds it.
    fn build(&self, spec: &StepSpec) -> Result<Box<dyn Step>, String> {
        let mut scope = Scope::default();
        scope.variables.extend(self.plan.variables());
        scope.variables.insert("run.id".into(), self.view.run_id.clone());
        scope.variables.insert("run.direction".into(), self.view.direction.to_string());
        for step in &self.view.steps {
            if let StepState::Succeeded { outputs, .. } = &step.state {
                scope.outputs.insert(step.id.clone(), outputs.clone());
            }
        }
        let with =
            template::render(&spec.with, &scope, false).map_err(|e| format!("cannot fill in its parameters: {e}"))?;
        let kind = self
            .engine
            .registry
            .get(&spec.step_type)
            .ok_or_else(|| format!("unknown step type `{}`", spec.step_type))?;
        let context = BuildContext { plan: self.plan, direction: self.view.direction };
        kind.build(&with, &context).map_err(|e| format!("invalid parameter `with.{}`: {}", e.path, e.message))
    }

    fn context(&self, spec: &StepSpec) -> StepContext {
        let started = self.view.step(&spec.id).and_then(|s| s.started_at);
        StepContext {
            run_id: self.view.run_id.clone(),
            step_id: spec.id.clone(),
            attempt: 1,
            first_started_at: started.unwrap_or_else(|| self.engine.clock.now()),
            clock: self.engine.clock.clone(),
        }
    }

    fn take_messages(&mut self, batch: Vec<FromStep>) -> Result<(), EngineError> {
        let mut records = Vec::new();
        let mut acks = Vec::new();
        for message in batch {
            match message {
                FromStep::Record(record, ack) => {
                    records.push(record);
                    acks.push(ack);
                }
                FromStep::Phase(step, phase) => {
                    self.engine.reporter.event(self.engine.clock.now(), &Event::StepPhase { step, phase });
                }
            }
        }
        if !records.is_empty() {
            self.commit(records)?;
        }
        for ack in acks {
            let _ = ack.send(());
        }
        Ok(())
    }

    fn finish_step(&mut self, index: usize, result: StepResult) -> Result<(), EngineError> {
        let spec = &self.specs[index];
        let id = spec.id.clone();
        // A step that emits other outputs than its type declares has a bug: it fails.
        let declared = self.engine.registry.get(&spec.step_type).map(|k| k.outputs()).unwrap_or_default();
        let result = result.and_then(|(outputs, found)| {
            super::outputs::check(&spec.step_type, declared, &outputs).map(|()| (outputs, found))
        });
        let record = match result {
            Ok((outputs, found_in_place)) => {
                // A check that passed changed nothing whether or not it had to wait: it "passed".
                let passed = self.engine.registry.get(&spec.step_type).is_some_and(|k| k.policy().check);
                Record::StepSucceeded { step: id, outputs, already_done: found_in_place && !passed, passed }
            }
            Err(error) if spec.on_failure == OnFailure::Continue => {
                self.warnings.push(id.clone());
                Record::StepFailed { step: id, error, continued: true }
            }
            Err(error) => {
                self.failure.get_or_insert_with(|| format!("step `{id}` failed: {error}"));
                Record::StepFailed { step: id, error, continued: false }
            }
        };
        // Flushed with the records of the steps this one unblocks: a chain syncs once per step
        // boundary, not twice.
        self.stage(vec![record])
    }

    /// Applies records to the view and queues them for the journal. Nothing may act on them (no
    /// step spawned, no step acknowledged) until [`Loop::flush`] has synced them.
    fn stage(&mut self, records: Vec<Record>) -> Result<(), EngineError> {
        let at = self.engine.clock.now();
        for record in records {
            let entry = Entry { seq: self.journal.next_seq() + self.staged.len() as u64, at, record };
            self.view.apply(&entry)?;
            self.staged.push(entry);
        }
        Ok(())
    }

    /// Writes and syncs the staged records in one batch, then reports them.
    fn flush(&mut self) -> Result<(), EngineError> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let entries = std::mem::take(&mut self.staged);
        self.journal.write(&entries)?;
        for entry in &entries {
            if let Some(event) = self.event_for(&entry.record, entry.at) {
                self.engine.reporter.event(entry.at, &event);
            }
        }
        Ok(())
    }

    /// Stages and flushes.
    fn commit(&mut self, records: Vec<Record>) -> Result<(), EngineError> {
        self.stage(records)?;
        self.flush()
    }

    fn event_for(&self, record: &Record, now: SystemTime) -> Option<Event> {
        let elapsed_ms = |since: Option<SystemTime>| {
            since.and_then(|s| now.duration_since(s).ok()).map_or(0, |d| d.as_millis() as u64)
        };
        let step_started = step_of(record).and_then(|id| self.view.step(id)).and_then(|s| s.started_at);
        Some(match record.clone() {
            Record::StepStarted { step, attempt } => Event::StepStarted { step, attempt },
            Record::StepActing { step, .. } => Event::StepPhase { step, phase: Phase::Act },
            Record::StepRetrying { step, attempt, error, delay_ms } => {
                Event::StepRetrying { step, attempt, error, delay_ms }
            }
            Record::StepSucceeded { step, outputs, already_done, passed } => {
                let state = self.view.step(&step).map_or("succeeded", |s| s.state.label());
                Event::StepSucceeded {
                    step,
                    state,
                    already_done,
                    passed,
                    outputs,
                    elapsed_ms: elapsed_ms(step_started),
                }
            }
            Record::StepFailed { step, error, continued } => {
                Event::StepFailed { step, error, continued, elapsed_ms: elapsed_ms(step_started) }
            }
            Record::StepSkipped { step, reason } => Event::StepSkipped { step, reason },
            Record::RunInterrupted { reason } => Event::RunInterrupted { reason },
            Record::RunFinished { succeeded, message } => {
                Event::RunFinished { succeeded, message, elapsed_ms: elapsed_ms(Some(self.view.started_at)) }
            }
            Record::RunStarted { .. }
            | Record::RunResumed { .. }
            | Record::RunAbandoned { .. }
            | Record::LockTakenOver { .. }
            | Record::StepActed { .. }
            | Record::StepWaitError { .. } => return None,
        })
    }
}
