//! The engine's one wait loop: after a step acts, poll it until its effect is real. Every step type
//! waits the same way, with the same tolerance of transient errors, and says why it is waiting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::step::{Progress, Receipt, Step, StepContext, StepError};

/// How the engine polls a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// The pause after the first look (which is at once); it doubles up to the step's poll interval.
    pub first_delay: Duration,
    /// Retryable poll errors tolerated in a row; one more fails the attempt with that error.
    pub tolerated_errors: u32,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy { first_delay: Duration::from_millis(100), tolerated_errors: 3 }
    }
}

impl WaitPolicy {
    /// The pause after look number `look` (1-based): `first_delay * 2^(look-1)`, capped at
    /// `interval`. An effect that takes 200 ms is seen about 300 ms after acting; a minutes-long one
    /// costs one look per `interval`.
    pub fn delay(&self, look: u32, interval: Duration) -> Duration {
        let factor = 1u32.checked_shl(look.saturating_sub(1)).unwrap_or(u32::MAX);
        self.first_delay.saturating_mul(factor).min(interval)
    }
}

/// Where the wait loop journals tolerated errors (the step's task; a recorder in tests).
#[async_trait]
pub(crate) trait WaitJournal: Send + Sync {
    /// Journals a retryable poll error, the `consecutive`-th in a row. An error stops the wait.
    async fn wait_error(&self, error: &StepError, consecutive: u32) -> Result<(), StepError>;
}

/// The last `Waiting(why)` of a step, kept by the engine for its timeout message.
pub(crate) type LastWhy = Arc<Mutex<Option<String>>>;

/// Polls `step` until it is done (at once, then backing off to its poll interval). Fails with a
/// fatal poll error at once, and with a retryable one when more than the tolerated number came in a
/// row. The step's timeout is the caller's: this loop runs until cancelled.
pub(crate) async fn wait(
    step: &dyn Step,
    ctx: &StepContext,
    receipt: &Receipt,
    policy: WaitPolicy,
    journal: &dyn WaitJournal,
    last_why: &LastWhy,
) -> Result<(), StepError> {
    let interval = step.poll_interval();
    let mut errors = 0u32;
    for look in 1u32.. {
        match step.poll(ctx, receipt).await {
            Progress::Done => return Ok(()),
            Progress::Waiting(why) => {
                errors = 0;
                *last_why.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
            }
            Progress::Failed(error) if !error.is_retryable() => return Err(error),
            Progress::Failed(error) => {
                errors += 1;
                if errors > policy.tolerated_errors {
                    let message = format!("{} ({errors} failed looks in a row)", error.message);
                    return Err(StepError::retryable(message));
                }
                journal.wait_error(&error, errors).await?;
            }
        }
        ctx.clock.sleep(policy.delay(look, interval)).await;
    }
    unreachable!("a step is polled until done, failed or cancelled")
}

/// The message of a step that timed out: the same for every step type, quoting what it last
/// waited for and its last error.
pub(crate) fn timeout_message(timeout: &str, waiting_for: Option<&str>, last_error: Option<&str>) -> String {
    let waiting = waiting_for.map(|w| format!(" waiting for {w}")).unwrap_or_default();
    let cause = last_error.map(|e| format!("; last error: {e}")).unwrap_or_default();
    format!("timed out after {timeout}{waiting}{cause}")
}

#[cfg(test)]
#[path = "wait_tests.rs"]
mod tests;
