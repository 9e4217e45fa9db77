//! What the engine tells the world. The engine never prints: reporters turn these events into a
//! progress display, JSON lines or reports.

use std::time::SystemTime;

use serde::Serialize;

use crate::plan::Direction;
use crate::step::Outputs;

/// A step's phase within an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Observe,
    Act,
    Wait,
    Verify,
}

/// A step as displays name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepInfo {
    pub id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub step_type: String,
    /// Already succeeded in an earlier process of this run.
    pub done: bool,
}

/// Something that happened in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        plan: String,
        direction: Direction,
        resumed: bool,
        steps: Vec<StepInfo>,
    },
    StepStarted {
        step: String,
        attempt: u32,
    },
    StepPhase {
        step: String,
        phase: Phase,
    },
    StepRetrying {
        step: String,
        attempt: u32,
        error: String,
        delay_ms: u64,
    },
    /// `state` is the step's label, as `drctl status` and reports word it: `succeeded`, `passed`
    /// (a check) or `already done` (found in place, nothing changed).
    StepSucceeded {
        step: String,
        state: &'static str,
        already_done: bool,
        passed: bool,
        outputs: Outputs,
        elapsed_ms: u64,
    },
    /// `continued`: the step's `on_failure` is `continue`, so the run goes on (a warning).
    StepFailed {
        step: String,
        error: String,
        continued: bool,
        elapsed_ms: u64,
    },
    StepSkipped {
        step: String,
        reason: String,
    },
    RunInterrupted {
        reason: String,
    },
    RunFinished {
        succeeded: bool,
        message: String,
        elapsed_ms: u64,
    },
}

/// Receives events as they happen. Implementations must be quick: they run on the engine's loop.
pub trait Reporter: Send + Sync {
    fn event(&self, at: SystemTime, event: &Event);
}

/// Sends every event to several reporters.
pub struct Fanout(pub Vec<Box<dyn Reporter>>);

impl Reporter for Fanout {
    fn event(&self, at: SystemTime, event: &Event) {
        for reporter in &self.0 {
            reporter.event(at, event);
        }
    }
}

/// Discards events (benchmarks, tests).
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _at: SystemTime, _event: &Event) {}
}
