//! One step's life on its own task: attempts with retries, the step's timeout, and the records it
//! sends the engine (acknowledged once synced) before it goes on.

use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};

use super::events::Phase;
use super::executor::{FromStep, StepResult};
use super::retry::RetryPolicy;
use super::wait::{LastWhy, WaitJournal, WaitPolicy, timeout_message};
use crate::clock::human_duration;
use crate::journal::Record;
use crate::plan::StepSpec;
use crate::step::{Observation, Outputs, Receipt, Step, StepContext, StepError};

/// One step's life on its own task.
pub(super) struct StepTask {
    pub(super) step: Box<dyn Step>,
    pub(super) spec: StepSpec,
    pub(super) context: StepContext,
    /// What the step learned when it acted, in this process or (from the journal) before.
    pub(super) receipt: Option<Receipt>,
    pub(super) retry: RetryPolicy,
    pub(super) wait: WaitPolicy,
    pub(super) tx: mpsc::UnboundedSender<FromStep>,
    /// The last retryable error (of an attempt or a poll), for the timeout message.
    pub(super) last_error: Mutex<Option<String>>,
    /// The step's last `Waiting(why)`, for the timeout message.
    pub(super) last_why: LastWhy,
}

impl StepTask {
    /// Attempts until success, a fatal error, retries used up, or the step's timeout.
    pub(super) async fn run(mut self) -> StepResult {
        let mut receipt = self.receipt.take();
        let this = &self;
        let attempts = async {
            let mut ctx = this.context.clone();
            // A step with a journaled receipt acted before this process.
            let mut acted = receipt.is_some();
            loop {
                match this.attempt(&ctx, &mut acted, &mut receipt).await {
                    // A step that acted in an earlier attempt did change the world, even if this
                    // attempt's observation then found the effect in place.
                    Ok((outputs, found_in_place)) => return Ok((outputs, found_in_place && !acted)),
                    Err(e) if e.is_retryable() && ctx.attempt <= this.spec.retries => {
                        let delay = this.retry.delay(ctx.attempt, fastrand::f64());
                        *this.last_error.lock().expect("not poisoned") = Some(e.message.clone());
                        let delay_ms = delay.as_millis() as u64;
                        let record = Record::StepRetrying {
                            step: this.spec.id.clone(),
                            attempt: ctx.attempt,
                            error: e.message,
                            delay_ms,
                        };
                        this.journal(record).await.map_err(|e| e.message)?;
                        ctx.clock.sleep(delay).await;
                        ctx.attempt += 1;
                        let record = Record::StepStarted { step: this.spec.id.clone(), attempt: ctx.attempt };
                        this.journal(record).await.map_err(|e| e.message)?;
                    }
                    Err(e) if e.is_retryable() && ctx.attempt > 1 => {
                        return Err(format!("{} (gave up after {} attempts)", e.message, ctx.attempt));
                    }
                    Err(e) => return Err(e.message),
                }
            }
        };
        tokio::select! {
            result = attempts => result,
            () = self.context.clock.sleep(self.spec.timeout) => {
                let last_error = self.last_error.lock().expect("not poisoned").take();
                let last_why = self.last_why.lock().expect("not poisoned").take();
                Err(timeout_message(&human_duration(self.spec.timeout), last_why.as_deref(), last_error.as_deref()))
            }
        }
    }

    /// One observe → act → poll → verify pass; `true` with the outputs when observation found the
    /// effect already in place. With a receipt (the step acted in an earlier attempt or before a
    /// crash) it neither observes nor acts again: it polls and verifies with what it learned.
    async fn attempt(
        &self,
        ctx: &StepContext,
        acted: &mut bool,
        receipt: &mut Option<Receipt>,
    ) -> Result<(Outputs, bool), StepError> {
        let current = match receipt {
            Some(r) => r.clone(),
            None => {
                self.phase(Phase::Observe);
                match self.step.observe(ctx).await? {
                    Observation::Done(outputs) => return Ok((outputs, true)),
                    Observation::InProgress(found) => return self.settle(ctx, &found).await.map(|o| (o, false)),
                    Observation::NotDone => {}
                }
                self.journal(Record::StepActing { step: self.spec.id.clone(), attempt: ctx.attempt }).await?;
                *acted = true;
                let learned = self.step.act(ctx).await?;
                // Journaled before anything else happens; a step that learned nothing observes again
                // if it is resumed, so it costs no sync.
                if !learned.is_none() {
                    let record = Record::StepActed {
                        step: self.spec.id.clone(),
                        attempt: ctx.attempt,
                        receipt: learned.clone(),
                    };
                    self.journal(record).await?;
                    *receipt = Some(learned.clone());
                }
                learned
            }
        };
        Ok((self.settle(ctx, &current).await?, false))
    }

    /// Polls until the step's effect is real, then verifies it.
    async fn settle(&self, ctx: &StepContext, receipt: &Receipt) -> Result<Outputs, StepError> {
        self.phase(Phase::Wait);
        let journal = Attempt { task: self, ctx };
        super::wait::wait(self.step.as_ref(), ctx, receipt, self.wait, &journal, &self.last_why).await?;
        self.phase(Phase::Verify);
        self.step.verify(ctx, receipt).await
    }

    fn phase(&self, phase: Phase) {
        let _ = self.tx.send(FromStep::Phase(self.spec.id.clone(), phase));
    }

    /// Sends a record to the engine and waits until it is on disk. Without that, the step must not
    /// go on: an unjournaled change could not be resumed safely.
    async fn journal(&self, record: Record) -> Result<(), StepError> {
        let (ack, synced) = oneshot::channel();
        let sent = self.tx.send(FromStep::Record(record, ack)).is_ok();
        match sent && synced.await.is_ok() {
            true => Ok(()),
            false => {
                Err(StepError::fatal("the journal could not be written; the step stopped before changing anything"))
            }
        }
    }
}

/// One attempt of a step task, as the wait loop journals it.
struct Attempt<'a> {
    task: &'a StepTask,
    ctx: &'a StepContext,
}

#[async_trait::async_trait]
impl WaitJournal for Attempt<'_> {
    async fn wait_error(&self, error: &StepError, consecutive: u32) -> Result<(), StepError> {
        *self.task.last_error.lock().expect("not poisoned") = Some(error.message.clone());
        let record = Record::StepWaitError {
            step: self.task.spec.id.clone(),
            attempt: self.ctx.attempt,
            error: error.message.clone(),
            consecutive,
        };
        self.task.journal(record).await
    }
}
